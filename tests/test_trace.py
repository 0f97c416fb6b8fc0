"""trace_backward: the recorded steps are the engine's own, frames, widget and HTML."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import needs_dot

import autograd as ag
from autograd.engine import backward_steps


# Each builder makes a fresh graph from the same numbers: (leaves, root).
def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    x = ag.Tensor(rng.normal(size=(4, 3)), name="x")
    w1 = ag.Tensor(rng.normal(size=(3, 5)), requires_grad=True, name="w1")
    b1 = ag.Tensor(rng.normal(size=5), requires_grad=True, name="b1")
    w2 = ag.Tensor(rng.normal(size=(5, 1)), requires_grad=True, name="w2")
    y = ag.Tensor((rng.random((4, 1)) > 0.5).astype(float), name="y")
    p = ((x @ w1 + b1).tanh() @ w2).sigmoid()
    loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    return [w1, b1, w2], loss


def _reuse(seed=0):
    a = ag.Tensor([1.5, -2.0, 0.5], requires_grad=True, name="a")
    b = ag.Tensor([[2.0], [3.0]], requires_grad=True, name="b")
    c = a * a + a * b  # a used three times, b broadcast
    return [a, b], (c.exp() / (1 + c * c)).sum()


def _scalar(seed=0):
    x = ag.Tensor(2.0, requires_grad=True, name="x")
    y = ag.Tensor(-3.0, requires_grad=True, name="y")
    return [x, y], (x * y + x**2) / y


@pytest.mark.parametrize("build", [_mlp, _reuse, _scalar])
def test_leaf_grads_equal_plain_backward(build):
    leaves_ref, root_ref = build()
    root_ref.backward()
    leaves, root = build()
    trace = ag.trace_backward(root)
    for ref, got in zip(leaves_ref, leaves):
        np.testing.assert_array_equal(got.grad, ref.grad)
    # and the last step lists exactly those gradients
    assert trace[-1].kind == "done"
    assert "backward finished" in trace[-1].describe()


@pytest.mark.parametrize("build", [_mlp, _reuse])
def test_steps_are_the_engine_steps(build):
    _, root_ref = build()
    engine = list(backward_steps(root_ref))
    _, root = build()
    trace = ag.trace_backward(root)
    assert len(trace) == len(engine) + 2  # + the forward frame + the final frame
    assert trace[0].kind == "forward"
    np.testing.assert_array_equal(trace[0].grad, np.ones(()))  # seed dL/dL = 1
    for step, ref in zip(trace.steps[1:-1], engine):
        assert (step.kind == "leaf") == (ref.node.grad_fn is None)
        np.testing.assert_array_equal(step.grad, ref.grad)
        assert len(step.sent) == len(ref.sent)
        for (_, _, g), (_, g_ref) in zip(step.sent, ref.sent):
            np.testing.assert_array_equal(g, g_ref)
        if step.kind == "op":
            assert step.rule == type(ref.node.grad_fn).rule
            # "v5 = σ(v4)", or just "a * b" for a result named after it (a*b)
            assert (step.expression.startswith(step.label + " = ")
                    or step.expression.replace(" ", "") == step.label), step.expression


def test_a_step_names_its_op_as_the_op_names_itself():
    """A Function's ``name`` (``LinearFunction`` calls itself ``Linear``), as in the
    drawing and in error messages, not its class name."""
    import nn

    layer = nn.Linear(3, 2)
    trace = ag.trace_backward(layer(ag.Tensor(np.ones((4, 3)))).sum())
    assert [s.op for s in trace if s.kind == "op"] == ["Sum", "Linear"]
    assert "local rule (Linear)" in trace[2].describe()


def test_rules_chain_rule_text_and_accumulation():
    w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    loss = (w * w).sum()
    trace = ag.trace_backward(loss)
    assert len(trace) == 5  # forward, Σ, ×, w (leaf), done
    assert trace[1].op == "Sum" and trace[1].rule == "d(Σa)/da_i = 1"
    assert trace[2].op == "Mul" and trace[2].rule == "d(a*b)/da = b,  d(a*b)/db = a"
    assert trace[2].expression == "w * w"  # the result is named after it: w*w
    assert trace[2].label == "w*w"
    text = trace[2].describe()
    assert "dL/dw += dL/d(w*w) · ∂(w*w)/∂w" in text
    # after the × step w has received both contributions: 2w
    np.testing.assert_allclose(trace[2].accumulated["w"], [1.0, -2.0])
    np.testing.assert_allclose(trace[1].accumulated["w*w"], [1.0, 1.0])
    assert "w" not in trace[1].accumulated
    assert trace[3].kind == "leaf" and trace[3].label == "w"


def test_grad_of_intermediate_equals_retain_grad():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(3, 2))

    def build():
        a = ag.Tensor(data, requires_grad=True, name="a")
        h = (a * 3.0).tanh()
        return h, (h @ np.ones((2, 1))).sum()

    h_ref, root_ref = build()
    h_ref.retain_grad()
    root_ref.backward()
    h, root = build()
    trace = ag.trace_backward(root)
    np.testing.assert_array_equal(trace.grad(h), h_ref.grad)
    with pytest.raises(KeyError):
        trace.grad(ag.Tensor(1.0))


def test_retain_graph_and_gradient_argument():
    x = ag.Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * x
    ag.trace_backward(y, gradient=np.array([1.0, 0.5]), retain_graph=True)
    np.testing.assert_allclose(x.grad, [2.0, 2.0])
    with pytest.warns(UserWarning, match="already holds a gradient"):
        trace = ag.trace_backward(y, gradient=np.array([1.0, 0.5]))
    np.testing.assert_allclose(x.grad, [4.0, 4.0])  # accumulates like backward()
    np.testing.assert_allclose(trace[0].grad, [1.0, 0.5])
    with pytest.raises(RuntimeError, match="retain_graph"), pytest.warns(UserWarning):
        ag.trace_backward(y, gradient=np.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.trace_backward(ag.Tensor([1.0]))


def test_frames_highlight_the_current_node_and_sent_edges():
    _, loss = _mlp()
    trace = ag.trace_backward(loss)
    for i in range(len(trace)):
        src = trace.draw(i).source
        current = re.findall(r"^\s*(\w+) \[.*class=\"[^\"]*current", src, flags=re.M)
        step = trace[i]
        if step.kind == "op":
            tid = trace.model.ids[step.tensor]
            assert tid in current and trace.model.op_of[tid] in current
            assert src.count('class="edge hot"') == len(step.sent) + 1
            assert src.count("tooltip=\"sent in this step: ") == len(step.sent)
        elif step.kind == "leaf":
            assert current == [trace.model.ids[step.tensor]]
        elif step.kind == "done":
            assert len(current) == 3  # the three parameters
        assert f"Step {i} of {len(trace) - 1}" in src
    # pending gradients are '?' at the start; none are left at the end
    assert "grad&#160;?" in trace.draw(0).source
    assert "grad&#160;?" not in trace.draw(-1).source


@needs_dot
def test_every_frame_has_the_same_layout():
    _, loss = _mlp()
    trace = ag.trace_backward(loss)

    def positions(i):
        plain = trace.draw(i, caption=False).pipe(format="plain", encoding="utf-8")
        return [ln.split()[:6] for ln in plain.splitlines() if ln.startswith("node ")]

    first = positions(0)
    assert len(first) > 20
    for i in range(1, len(trace)):
        assert positions(i) == first, f"frame {i} moved"


@needs_dot
def test_html_page_is_self_contained(tmp_path):
    _, loss = _reuse()
    trace = ag.trace_backward(loss)
    path = trace.to_html(tmp_path / "out" / "backprop.html")
    page = open(path, encoding="utf-8").read()
    n = len(trace) - 1
    assert page.startswith("<!DOCTYPE html>")
    assert ">Previous</button>" in page and ">Next</button>" in page
    assert f"Step 0 of {n}" in page and "ArrowLeft" in page and "ArrowRight" in page
    assert re.search(r'<div class="crv-canvas"><svg', page)  # the first frame inline ...
    assert 'class="crv-data"' in page  # a small graph's data: plain JSON in the page
    data = ag.viz.viewer.viewer_data(page)
    assert len(data["changes"]) + 1 == len(data["panels"]) == n + 1  # ... and every frame
    assert data["head"].lstrip().startswith("<svg")
    one = trace.frames()
    frame = list(data["first"])
    for i in range(n + 1):  # the pieces of a frame make that frame's picture
        if i:
            c = data["changes"][i - 1]
            for k in range(0, len(c), 2):
                frame[c[k]] = c[k + 1]
        svg = data["head"] + "".join(data["parts"][k] for k in frame) + data["tail"]
        assert svg == one.svg(i)
        assert svg.count('class="node tensor') == sum(
            1 for nd in trace.model.nodes.values() if hasattr(nd, "tensor"))
    # no network: no external scripts, styles, images or fonts
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert "d(a*b)/da = b" in page  # the local rule is in the side panel


@needs_dot
def test_widget_holds_the_viewer_of_the_page():
    pytest.importorskip("ipywidgets")
    _, loss = _scalar()
    trace = ag.trace_backward(loss)
    w = trace.widget()
    (out,) = w.outputs
    html = out["data"]["text/html"]
    assert "chainruleViewer(" in html and ">Previous</button>" in html
    assert f"Step 0 of {len(trace) - 1}" in html and "local rule" in html.lower()
    # the same viewer as the page; a second widget gets its own element id
    ids = re.findall(r'<div class="crv" id="([^"]+)"', html)
    html2 = trace.widget().outputs[0]["data"]["text/html"]
    assert len(ids) == 1 and ids[0] not in html2
