"""draw_graph: DOT content, colours, size guard, deep graphs, rendering with real dot."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import needs_dot

import autograd as ag
from autograd.viz.style import PALETTE
from autograd.viz.text import array_lines


def _nodes(source: str, prefix: str) -> list:
    """Node statements whose id starts with ``prefix`` (t: tensors, op: ops, ...)."""
    return re.findall(rf"^\s*({prefix}\d+) \[", source, flags=re.M)


def _edges(source: str) -> list:
    return re.findall(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$", source, flags=re.M)


def _small_graph():
    x = ag.Tensor([1.0, 2.0, 3.0], name="x")
    w = ag.Tensor([0.5, -1.0, 2.0], requires_grad=True, name="w")
    b = ag.Tensor(0.1, requires_grad=True, name="b")
    y = ((x * w).sum() + b).sigmoid()
    y.name = "y"
    return x, w, b, y


def test_labels_names_symbols_and_node_counts():
    x, w, b, y = _small_graph()
    src = ag.draw_graph(y).source
    # 5 tensors (x, w, b and 3 results: x*w, sum, +b ... y) -> x, w, b, v, v, v, y = 6
    tensors = _nodes(src, "t")
    ops = _nodes(src, "op")
    assert len(ops) == 4  # ×, Σ, +, σ
    assert len(tensors) == 7
    for name in ("<B>x</B>", "<B>w</B>", "<B>b</B>", "<B>y</B>"):
        assert name in src
    for sym in ('label="×"', 'label="Σ"', 'label="+"', 'label="σ"'):
        assert sym in src
    # shapes and small data are printed; no gradient before backward
    assert "(3,)" in src and "scalar" in src
    assert "data&#160;[0.5,&#160;-1,&#160;2]" in src
    assert "grad&#160;" not in src
    # roles are told apart by colour, and the legend names them
    for kind in ("parameter", "input", "output", "intermediate"):
        fill, border = PALETTE[kind]
        assert f'COLOR="{border}"' in src, kind
    assert "parameter (requires grad)" in src and "input / data" in src


def test_edges_coloured_and_thickened_by_gradient():
    x, w, b, y = _small_graph()
    before = ag.draw_graph(y).source
    assert "penwidth=4" not in before
    assert PALETTE["grad_hi"] not in before
    y.backward()
    src = ag.draw_graph(y).source
    assert "grad&#160;" in src  # leaves show their gradient now
    edges = {(a, b_): attrs for a, b_, attrs in _edges(src)}
    # w (t0) and b feed ops; after backward those edges carry a colour from the ramp
    w_edge = next(attrs for (a, _), attrs in edges.items()
                  if a == "t0")
    assert "penwidth=" in w_edge and "tooltip=" in w_edge
    # the input x carries no gradient: dashed grey
    x_id = re.search(r"^\s*(t\d+) \[.*<B>x</B>", src, flags=re.M).group(1)
    x_edge = next(attrs for (a, _), attrs in edges.items() if a == x_id)
    assert "dashed" in x_edge and PALETTE["nograd"] in x_edge


def test_color_by_data_or_nothing():
    y = _small_graph()[-1]
    by_data = ag.draw_graph(y, color_by="data").source
    assert "|x| mean: " in by_data and "edges: mean |value|" in by_data
    plain = ag.draw_graph(y, color_by=None).source
    assert "mean: " not in plain and "edges: mean" not in plain


def test_legend_names_only_what_is_drawn():
    w = ag.Tensor([0.5, -1.0, 2.0], requires_grad=True, name="w")
    loss = (w.tanh() * w).sum()
    # forward only, every edge can carry a gradient: no dashed edge, no gradient ramp
    src = ag.draw_graph(loss).source
    assert "dashed" not in src
    assert "no gradient" not in src and "edges: mean" not in src and "zero" not in src
    assert ">op</FONT>" in src and ">parameter (requires grad)</FONT>" in src
    assert ">input / data</FONT>" not in src and ">constant</FONT>" not in src
    # an input into an op: its edge is dashed, and the legend says what dashes mean
    y = _small_graph()[-1]
    for color_by in ("grad", None):
        src = ag.draw_graph(y, color_by=color_by).source
        assert "dashed" in src and "- - no gradient" in src, color_by
    # once a gradient is known on an edge the ramp appears; a zero one adds the dots
    v = ag.Tensor([0.5, -1.0, 2.0], requires_grad=True, name="v")
    total = v.tanh().sum()
    total.backward()
    after = ag.draw_graph(total).source
    assert "edges: mean |gradient|" in after and "no gradient" not in after
    assert "zero" not in after
    r = ag.Tensor([-1.0, -2.0], requires_grad=True, name="r")
    dead = r.relu().sum()
    dead.backward()
    assert "···· zero" in ag.draw_graph(dead).source
    # a lone tensor: no ops, no edges, no edge legend
    lone = ag.draw_graph(ag.Tensor([1.0, 2.0], name="a")).source
    assert ">op</FONT>" not in lone and "edges:" not in lone and "gradient" not in lone


def test_box_rows_keep_clear_of_the_right_border():
    # every monospace row ends in a spacer cell that grows with the longest row
    x = ag.Tensor(np.linspace(-0.003142, 0.0674, 5).reshape(5, 1), requires_grad=True,
                  name="x")
    src = ag.draw_graph((x * 2.0).sum()).source
    label = re.search(r"^\s*t0 \[label=<(.*)>", src, flags=re.M).group(1)
    line = array_lines(x.data)[0]
    assert len(line) > 45  # a long (5, 1) row
    m = re.search(r'data&#160;\[.*?</TD><TD WIDTH="(\d+)"></TD></TR>', label)
    assert m, label
    assert int(m.group(1)) >= 3 + 0.03 * 5.4 * len("data " + line)
    assert 'COLSPAN="2"' in label  # the title band spans the text and the spacer
    # the same in a collapsed module's box (|g| rows)
    loss, _ = _scoped_net()
    loss.backward()
    mod = ag.draw_graph(loss, collapse_modules="always").source
    rows = re.findall(r'\|g\| [^<]*</FONT></TD>(<TD WIDTH="\d+"></TD>)?</TR>', mod)
    assert rows and all(rows), rows


def test_nan_and_inf_gradients_are_red():
    x = ag.Tensor([0.0, 4.0], requires_grad=True, name="x")
    y = x.sqrt().sum()
    with np.errstate(divide="ignore"):
        y.backward()  # d sqrt/dx = inf at 0
    src = ag.draw_graph(y).source
    assert PALETTE["bad"] in src
    assert "NaN / Inf" in src  # legend entry appears when needed
    z = ag.Tensor([1.0, 4.0], requires_grad=True, name="z")
    ok = z.sqrt().sum()
    ok.backward()
    assert PALETTE["bad"] not in ag.draw_graph(ok).source


def test_trace_gives_every_edge_a_gradient():
    x, w, b, y = _small_graph()
    tr = ag.trace_backward(y)
    src = ag.draw_graph(y, grads=tr).source
    for a, b_, attrs in _edges(src):
        if a.startswith("c") or "dashed" in (attrs or ""):
            continue
        assert "tooltip=" in attrs, (a, b_, attrs)  # a known gradient magnitude


def test_deterministic_source_and_stable_ids():
    src1 = ag.draw_graph(_small_graph()[-1]).source
    src2 = ag.draw_graph(_small_graph()[-1]).source
    assert src1 == src2
    assert "0x" not in src1  # no memory addresses


def test_constants_and_op_details():
    x = ag.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    y = (x * 2.5).sum(axis=0).clip(min=0.0)[1:]
    src = ag.draw_graph(y).source
    assert len(_nodes(src, "c")) == 1 and re.search(r"c0 \[label=\"?2\.5\b", src)
    assert "axis=0" in src and "min=0" in src and "[1:]" in src


def test_name_scopes_become_clusters_with_parameters_inside():
    w = ag.Tensor(np.ones((3, 2)), requires_grad=True, name="layer.weight")
    x = ag.Tensor(np.ones((4, 3)), name="x")
    with ag.name_scope("layer"):
        h = (x @ w).tanh()
    out = h.sum()
    src = ag.draw_graph(out).source
    m = re.search(r"subgraph cluster_\d+ \{(.*?)\n\t\}", src, flags=re.S)
    assert m and 'label=layer' in m.group(1)
    body = m.group(1)
    assert "layer.weight" in body  # the parameter sits in its module's cluster
    assert "<B>x</B>" not in body  # the input does not


def test_a_module_cluster_says_what_the_module_is():
    """An nn module's scope carries its class: the cluster reads ``0 · Linear`` (as
    PyTorch prints ``(0): Linear``), a bare name scope just its name."""
    import nn

    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    x = ag.Tensor(np.ones((4, 3)), name="x")
    with ag.name_scope("head"):
        h = model(x)
    assert h._ctx.scope == "head.1" and h._ctx.scope_kinds == (("head.1", "Tanh"),)
    src = ag.draw_graph(h.sum()).source
    labels = {re.search(r'id="scope:([^"]*)"', ln).group(1):
              re.search(r'label=(?:"([^"]*)"|(\S+))', ln).group(1, 2)
              for ln in src.splitlines() if 'id="scope:' in ln}
    assert labels == {"head": (None, "head"),  # no kind given: the name alone
                      "head.0": ("head.0 · Linear", None),
                      "head.1": ("head.1 · Tanh", None)}


def _scoped_net(n_layers=6, width=3):
    x = ag.Tensor(np.ones((2, width)), name="x")
    h = x
    params = []
    for i in range(n_layers):
        w = ag.Tensor(np.eye(width) * 0.5, requires_grad=True, name=f"layers.{i}.weight")
        params.append(w)
        with ag.name_scope("layers"), ag.name_scope(str(i)):
            h = (h @ w).tanh()
    return h.sum(), params


def test_size_guard_collapses_modules():
    loss, _ = _scoped_net()
    full = ag.draw_graph(loss, max_nodes=None)
    n_full = len(re.findall(r"^\s*\w+ \[label", full.source, flags=re.M))
    small = ag.draw_graph(loss, max_nodes=15).source
    modules = _nodes(small, "m")
    assert len(modules) == 6  # one box per layer
    assert "layers.3" in small and "@ tanh" in small
    n_small = len(re.findall(r"^\s*\w+ \[label", small, flags=re.M))
    assert n_small <= 15 < n_full
    # expanding one module keeps its ops
    one_open = ag.draw_graph(loss, max_nodes=40, collapse_modules="always",
                             expand=["layers.2"]).source
    assert len(_nodes(one_open, "m")) == 5


def test_size_guard_raises_a_helpful_error():
    loss, _ = _scoped_net()
    with pytest.raises(ValueError, match=r"max_nodes=10.*Draw less"):
        ag.draw_graph(loss, max_nodes=10, collapse_modules=False)
    # modules collapsed and still too big: the same clear error
    with pytest.raises(ValueError, match="max_nodes=None for no limit"):
        ag.draw_graph(loss, max_nodes=3)
    with pytest.raises(ValueError, match="expand"):
        ag.draw_graph(loss, expand=["nope"])


def test_deep_graph_3000_ops_is_drawn_iteratively():
    x = ag.Tensor(1.0, requires_grad=True, name="x")
    y = x
    for _ in range(3000):
        y = y * 1.0001
    with pytest.raises(ValueError, match="9001 nodes"):
        ag.draw_graph(y)  # 3001 tensors, 3000 ops, 3000 constants; no modules to collapse
    g = ag.draw_graph(y, max_nodes=None, show_data=False, legend=False)
    assert len(_nodes(g.source, "op")) == 3000
    assert len(_nodes(g.source, "t")) == 3001
    assert len(_nodes(g.source, "c")) == 3000


def test_array_lines_small_and_large():
    assert array_lines(np.float64(0.5)) == ["0.5"]
    assert array_lines(np.array([1.0, -2.0])) == ["[1, -2]"]
    assert array_lines(np.array([[1.0], [2.0]])) == ["[1, 2]ᵀ"]
    assert array_lines(np.array([[1.0, 2.0], [3.0, 4.0]])) == ["[[1, 2],", " [3, 4]]"]
    big = np.linspace(-1, 3, 100)
    assert array_lines(big) == ["-1 … 3"]
    big[3] = np.nan
    assert array_lines(big)[1] == "1 NaN/Inf"


def test_bad_arguments():
    y = _small_graph()[-1]
    with pytest.raises(TypeError, match="expected a Tensor"):
        ag.draw_graph(np.ones(3))
    with pytest.raises(ValueError, match="rankdir"):
        ag.draw_graph(y, rankdir="UP")
    with pytest.raises(ValueError, match="color_by"):
        ag.draw_graph(y, color_by="size")


def test_missing_dot_says_how_to_install(monkeypatch, tmp_path):
    g = ag.draw_graph(_small_graph()[-1])
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    assert g.source.startswith("digraph")  # the DOT text needs no install
    with pytest.raises(ag.GraphvizNotFoundError, match="apt-get install graphviz"):
        g.save(tmp_path / "g.svg")
    with pytest.raises(ag.GraphvizNotFoundError, match="apt-get install graphviz"):
        g._repr_mimebundle_()


@needs_dot
def test_renders_svg_and_png_with_real_dot(tmp_path):
    x, w, b, y = _small_graph()
    y.backward()
    g = ag.draw_graph(y, title="a small graph")
    path = g.save(tmp_path / "sub" / "graph.svg")
    svg = open(path, encoding="utf-8").read()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert svg.count('class="node') == 11  # 7 tensors + 4 ops
    assert "a small graph" in svg and ">w<" in svg
    png = g.save(tmp_path / "graph.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert g.save(tmp_path / "graph.gv").endswith("graph.gv")  # DOT source, as graphviz does
    assert (tmp_path / "graph.gv").read_text().startswith("digraph")
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


@needs_dot
def test_collapsed_nn_style_graph_renders(tmp_path):
    loss, params = _scoped_net()
    loss.backward()
    g = ag.draw_graph(loss, collapse_modules="always")
    svg = g.svg()
    assert svg.count('class="node module') == 6
    assert "|g|" in svg  # parameter gradients summarised inside module boxes


def test_none_inputs_are_not_drawn():
    """An op given ``None`` for an optional input (a convolution without bias) shows no
    constant for it: no "NoneType" box, in the drawing or in the trace."""
    rng = np.random.default_rng(0)
    x = ag.Tensor(rng.normal(size=(1, 2, 5, 5)), name="x")
    w = ag.Tensor(rng.normal(size=(3, 2, 3, 3)), requires_grad=True, name="w")
    y = ag.functional.conv2d(x, w).sum()
    model = ag.viz.model.GraphModel.build(y)
    assert not [n for n in model.nodes.values() if isinstance(n, ag.viz.model.ConstNode)]
    assert "NoneType" not in ag.draw_graph(y).source
    trace = ag.trace_backward(y)
    assert "NoneType" not in trace.draw(1).source
    (conv,) = [s for s in trace.steps if s.kind == "op" and s.op.startswith("Conv")]
    assert "None" not in conv.expression and "(x, w" in conv.expression


def test_unnamed_results_of_named_inputs_are_named_by_their_expression():
    """Outside any module, a result made from named inputs is named after the short
    expression that made it, in draw_graph and in the trace alike; a long one, one with
    an unnamed input, or a second result of the same expression stays v<k>."""
    a = ag.Tensor(2.0, requires_grad=True, name="a")
    b = ag.Tensor(3.0, requires_grad=True, name="b")
    c = ag.Tensor(-1.0, requires_grad=True, name="c")
    u = ag.Tensor(0.5, requires_grad=True)  # unnamed leaf: v<k>
    h = (a + b) * c  # (a+b)*c: parentheses where they are needed
    t = (a * b + c).tanh()  # tanh(a*b+c): 11 characters
    long = t * h  # tanh(a*b+c)*((a+b)*c): too long
    again = a * b  # a*b again: not a second a*b
    ua = u * a  # an unnamed input
    root = (long + ua + again).sum()
    model = ag.viz.model.GraphModel.build(root)
    labels = {n.tensor: n.label for n in model.nodes.values()
              if isinstance(n, ag.viz.model.TensorNode)}
    assert labels[h] == "(a+b)*c" and labels[t] == "tanh(a*b+c)"
    for x in (long, again, u, ua):
        assert re.fullmatch(r"v\d+", labels[x]), labels[x]
    assert "a*b" in labels.values() and "a+b" in labels.values()
    src = ag.draw_graph(root).source
    for name in ("(a+b)*c", "tanh(a*b+c)", "a*b+c"):
        assert f">{name}<" in src
    trace = ag.trace_backward(root)
    assert {s.label for s in trace.steps if s.kind == "op"} >= {"(a+b)*c", "tanh(a*b+c)"}
    step = next(s for s in trace.steps if s.label == "tanh(a*b+c)")
    assert step.expression == "tanh(a*b+c)"
    assert "dL/d(a*b+c) += dL/d(tanh(a*b+c))" in step.describe()
