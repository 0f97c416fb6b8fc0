"""Seeing backward happen: ``trace_backward`` and ``detect_anomaly``.

``trace_backward(loss)`` *is* ``loss.backward()``: it drains the engine's own step
generator (``engine.backward_steps``, the loop ``Tensor.backward`` runs) and writes down
what each step did, so the leaves' ``.grad`` afterwards are exactly what ``backward()``
gives. The record, a ``BackwardTrace``, is a list of steps:

- step 0: the forward graph with every value, and the seed gradient dL/dL = 1;
- one step per node, in the order the engine visits them (reverse topological order):
  the gradient arriving at the node, the op's local derivative rule as text
  (``d(a*b)/da = b``), what the chain rule sent to each input, and all gradients
  accumulated so far;
- a last step with the leaves' gradients.

Every step can be drawn (``trace.draw(i)``), browsed in Jupyter (``trace.widget()``) or
exported as one standalone HTML page with Previous / Next buttons (``trace.to_html``).

``detect_anomaly()`` is a context manager: inside it every op remembers the line of
user code that created it, and the first NaN or Inf produced, in forward or in
backward, raises an ``AnomalyError`` naming the op, its inputs' ranges and that line.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape

import numpy as np

from . import _trace_page
from . import function as _fn
from .engine import backward_steps
from .graph import (
    GraphModel,
    _magnitude,
    _num,
    _Options,
    _plan_collapse,
    _Scale,
    _State,
    _TensorNode,
    array_lines,
    check_size,
    op_symbol,
    render,
    write_file,
)
from .tensor import Tensor

__all__ = ["trace_backward", "BackwardTrace", "TraceStep", "detect_anomaly", "AnomalyError",
           "register_library"]


# =========================================================================== the trace


@dataclass
class TraceStep:
    """One step of a traced backward pass.

    Attributes
    ----------
    index : int
        Position in the trace (0 is the forward graph).
    kind : str
        ``"forward"`` (step 0), ``"op"`` (backward through an op), ``"leaf"`` (a leaf's
        gradient is complete and lands in ``.grad``) or ``"done"`` (the last step).
    tensor : Tensor or None
        The tensor whose gradient dL/d(tensor) is complete at this step.
    label : str
        Its name in the drawings (``tensor.name``, or ``v<k>`` when unnamed).
    op : str or None
        The op that made the tensor (class name, e.g. ``"Mul"``) for an ``"op"`` step.
    expression : str
        How the tensor was made, e.g. ``"v5 = σ(v4)"``.
    rule : str or None
        The op's local derivative as text (``Function.rule``).
    grad : ndarray or None
        dL/d(tensor): the gradient arriving here.
    sent : tuple of (label, Tensor, ndarray)
        What the chain rule passed to each input: dL/d(input) += grad · d(tensor)/d(input).
    created_at : str or None
        ``"file:line"`` of the user code that made the op (recorded in anomaly mode).
    """

    index: int
    kind: str
    tensor: object
    label: str
    op: str | None = None
    expression: str = ""
    rule: str | None = None
    grad: np.ndarray | None = None
    sent: tuple = ()
    created_at: str | None = None
    _trace: object = field(default=None, repr=False, compare=False)

    @property
    def accumulated(self) -> dict:
        """Gradients received so far, after this step: ``{label: array}``."""
        return self._trace.accumulated(self.index)

    def describe(self) -> str:
        """One plain-text paragraph saying what happens at this step."""
        return self._trace._describe(self)


class BackwardTrace:
    """A recorded backward pass: ``len(trace)`` steps, ``trace[i]`` is a ``TraceStep``.

    Made by ``trace_backward``. Besides indexing:

    - ``trace.draw(i)``: a ``graphviz.Digraph`` of step ``i`` (current node highlighted,
      the edges being filled drawn thick with their values);
    - ``trace.widget()``: a Jupyter widget (slider, Previous / Next, the picture and a
      panel with the step's numbers);
    - ``trace.to_html(path)``: a self-contained HTML page of all steps;
    - ``trace.grad(t)``: the gradient dL/dt of any tensor ``t`` in the graph, also
      intermediate ones that ``backward()`` does not keep.
    """

    def __init__(self, root, model: GraphModel, draw_options: dict):
        self.root = root
        self.model = model
        self.steps: list = []
        self._options = draw_options
        self._events: list = []  # per step: [(tensor id, contribution), ...]
        self._complete: dict = {}  # tensor id -> (step index, gradient)
        self._edge_sent: dict = {}  # edge index -> (step index, gradient)
        self._pad: dict = {}  # tensor id -> (lines, width) of its widest gradient text
        self._leaf_grads: dict = {}  # tensor id -> .grad after the pass (a copy)
        self._scale = _Scale([])
        self._plan = None
        self._svg_cache: dict = {}

    # -- sequence protocol -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i):
        return self.steps[i]

    def __iter__(self):
        return iter(self.steps)

    def __repr__(self) -> str:
        ops = sum(1 for s in self.steps if s.kind == "op")
        leaves = sum(1 for s in self.steps if s.kind == "leaf")
        return (f"<BackwardTrace of {self.model.nodes[self.model.root].label}: "
                f"{len(self)} steps ({ops} ops, {leaves} leaves)>")

    # -- gradients -------------------------------------------------------------------
    def grad(self, tensor) -> np.ndarray | None:
        """dL/d(tensor) as the engine computed it (None if no gradient reached it)."""
        tid = self.model.ids.get(tensor)
        if tid is None:
            raise KeyError("trace.grad: this tensor is not part of the traced graph")
        entry = self._complete.get(tid)
        return None if entry is None else entry[1]

    def accumulated(self, i: int) -> dict:
        """``{label: gradient received so far}`` after step ``i``."""
        i = range(len(self))[i]
        acc = self._accumulate(i)
        return {self.model.nodes[tid].label: g for tid, g in acc.items()}

    def _accumulate(self, i: int) -> dict:
        acc: dict = {}
        for k in range(i + 1):
            for tid, g in self._events[k]:
                prev = acc.get(tid)
                acc[tid] = g if prev is None else prev + g
        return acc

    # -- drawing ---------------------------------------------------------------------
    def _draw_plan(self):
        if self._plan is None:
            o = self._options
            plan = _plan_collapse(self.model, o["max_nodes"], o["collapse_modules"],
                                  o["expand"])
            check_size(self.model, plan, o["max_nodes"], who="trace.draw")
            self._plan = plan
        return self._plan

    def state(self, i: int, *, caption: bool = True) -> _State:
        """What frame ``i`` shows: gradients so far, statuses, highlights."""
        i = range(len(self))[i]
        step = self.steps[i]
        m = self.model
        acc = self._accumulate(i)
        tensor_grads, status = {}, {}
        for tid, node in m.nodes.items():
            if not isinstance(node, _TensorNode) or not node.tensor.requires_grad:
                continue
            done = self._complete.get(tid)
            if step.kind == "done" and done is not None:
                status[tid] = "done"
                leaf_grad = self._leaf_grads.get(tid)
                tensor_grads[tid] = leaf_grad if leaf_grad is not None else done[1]
            elif done is not None and done[0] <= i:
                status[tid] = "done"
                tensor_grads[tid] = done[1]
            elif tid in acc:
                status[tid] = "partial"
                tensor_grads[tid] = acc[tid]
            else:
                status[tid] = "pending"
        edge_grads = {e: g for e, (k, g) in self._edge_sent.items() if k <= i}
        current, hot = set(), {}
        if step.kind == "done":
            current = {tid for tid in self._leaf_grads}
        elif step.tensor is not None:
            tid = m.ids[step.tensor]
            current.add(tid)
            oid = m.op_of.get(tid)
            if oid is not None and step.kind == "op":
                current.add(oid)
                out_edge = m.out_edge[oid]
                for e, (k, g) in self._edge_sent.items():
                    if k == i:
                        hot[e] = "" if e == out_edge else _short(g, 4)
        cap = ""
        if caption:
            cap = f"Step {i} of {len(self) - 1}: {self._headline(step)}"
        return _State(tensor_grads=tensor_grads, status=status, edge_grads=edge_grads,
                      current=current, hot=hot, pad=self._pad, scale=self._scale,
                      caption=cap)

    def draw(self, i: int = -1, *, caption: bool = True, legend: bool = True):
        """Draw step ``i`` (default: the last) as a ``graphviz.Digraph``.

        The node whose gradient is complete at this step is highlighted (gold), with
        the op that made it; the edges along which gradient is sent in this step are
        thick and gold (hover one to see the value sent). Boxes show the gradient accumulated so
        far (grey while more may still arrive, blue once complete, ``?`` before any has
        arrived). Every frame has the same layout, so stepping through does not jump.
        """
        o = self._options
        opts = _Options(show_data=o["show_data"], show_grad=True, rankdir=o["rankdir"],
                        color_by="grad", legend=legend, max_elements=o["max_elements"],
                        trace=True)
        return render(self.model, self.state(i, caption=caption), opts, self._draw_plan())

    def final_state(self, model: GraphModel) -> _State:
        """The gradients of the whole pass laid on ``model`` (for ``draw_graph(grads=)``)."""
        by_tensor = {self.model.nodes[tid].tensor: g for tid, (_, g) in self._complete.items()}
        for tid, g in self._leaf_grads.items():
            by_tensor[self.model.nodes[tid].tensor] = g
        sent = {}
        for e, (_, g) in self._edge_sent.items():
            edge = self.model.edges[e]
            sent[(self.model.nodes[edge.op].ctx, edge.pos)] = g
        tg, eg = {}, {}
        for t, tid in model.ids.items():
            if t in by_tensor:
                tg[tid] = by_tensor[t]
        for k, edge in enumerate(model.edges):
            ctx = model.nodes[edge.op].ctx
            if edge.pos is None:
                g = by_tensor.get(model.nodes[edge.tensor].tensor)
                if g is not None:
                    eg[k] = g
            elif (ctx, edge.pos) in sent:
                eg[k] = sent[(ctx, edge.pos)]
        return _State(tensor_grads=tg, edge_grads=eg)

    def svg(self, i: int) -> str:
        """Step ``i`` rendered to SVG text (cached), without caption."""
        i = range(len(self))[i]
        if i not in self._svg_cache:
            self._svg_cache[i] = _clean_svg(self.draw(i, caption=False).svg())
        return self._svg_cache[i]

    def _all_svgs(self) -> list:
        missing = [i for i in range(len(self)) if i not in self._svg_cache]
        if missing:
            self._draw_plan()  # raise the size error once, before starting threads
            workers = max(1, min(8, os.cpu_count() or 1))
            with ThreadPoolExecutor(workers) as pool:
                for i, s in zip(missing, pool.map(
                        lambda k: _clean_svg(self.draw(k, caption=False).svg()), missing)):
                    self._svg_cache[i] = s
        return [self._svg_cache[i] for i in range(len(self))]

    # -- text ------------------------------------------------------------------------
    def _headline(self, step: TraceStep) -> str:
        if step.kind == "forward":
            return (f"forward pass done; backward starts at {step.label} with "
                    f"dL/d{step.label} = {_short(step.grad)}")
        if step.kind == "op":
            parents = ", ".join(s[0] for s in step.sent) or "nothing"
            return f"backward through {step.expression}: gradient sent to {parents}"
        if step.kind == "leaf":
            return f"{step.label} is a leaf: its gradient is complete, added to .grad"
        return "backward finished: the leaves' gradients are in .grad"

    def _describe(self, step: TraceStep) -> str:
        lines = [f"Step {step.index} of {len(self) - 1}: {self._headline(step)}."]
        if step.kind == "op":
            lines.append(f"dL/d{step.label} = {_short(step.grad, 8)}")
            if step.rule:
                lines.append(f"local rule ({step.op}): {step.rule}")
            for name, _, g in step.sent:
                lines.append(f"dL/d{name} += dL/d{step.label} · ∂{step.label}/∂{name} "
                             f"= {_short(g, 8)}")
        elif step.kind == "leaf":
            lines.append(f"dL/d{step.label} = {_short(step.grad, 8)}")
        elif step.kind == "done":
            for tid, g in self._leaf_grads.items():
                lines.append(f"{self.model.nodes[tid].label}.grad = {_short(g, 8)}")
        if step.created_at:
            lines.append(f"made at {step.created_at}")
        return "\n".join(lines)

    def _panel_html(self, step: TraceStep) -> str:
        """The side panel of the HTML page / widget for one step."""
        h = []
        title = {"forward": "Forward pass", "op": "Backward through an op",
                 "leaf": "A leaf is complete", "done": "Done"}[step.kind]
        h.append(f"<h2>{escape(title)}</h2>")
        if step.kind not in ("op", "leaf"):
            h.append(f'<p class="headline">{escape(self._headline(step))}.</p>')
        if step.kind == "forward":
            h.append("<p>Every value has been computed (see the boxes). The engine now "
                     "visits the nodes from the output back to the inputs, in reverse "
                     "topological order, so each node's gradient is complete before it "
                     "is passed on.</p>")
            h.append(_kv("seed", f"dL/d{step.label}", step.grad))
        elif step.kind == "op":
            h.append(f'<p class="expr">{escape(step.expression)}</p>')
            sym = step.expression.split("=", 1)[1].strip() if "=" in step.expression else ""
            h.append(f"<p>Every gradient for <b>{escape(step.label)}</b> has arrived. The "
                     f"engine multiplies it by the local derivative of "
                     f"<code>{escape(sym)}</code> and sends the result to each input "
                     "(the chain rule).</p>")
            h.append(_kv("gradient arriving", f"dL/d{step.label}", step.grad))
            if step.rule:
                h.append(f'<div class="rule"><span class="k">local rule ({escape(step.op)})'
                         f'</span><code>{escape(step.rule)}</code></div>')
            if step.sent:
                h.append('<div class="k">chain rule: sent to each input</div>')
                for name, _, g in step.sent:
                    h.append(_kv(None, f"dL/d{name} += dL/d{step.label} · "
                                 f"∂{step.label}/∂{name}", g))
            else:
                h.append("<p>No input of this op needs a gradient.</p>")
        elif step.kind == "leaf":
            h.append(f"<p><b>{escape(step.label)}</b> was not made by an op: its gradient "
                     "is complete and is added to its <code>.grad</code>.</p>")
            h.append(_kv("gradient", f"dL/d{step.label}", step.grad))
        else:
            h.append("<p>Every leaf that requires grad now holds dL/dleaf in "
                     "<code>.grad</code>:</p>")
            for tid, g in self._leaf_grads.items():
                h.append(_kv(None, f"{self.model.nodes[tid].label}.grad", g))
        if step.created_at:
            h.append(f'<p class="where">made at <code>{escape(step.created_at)}</code></p>')
        if step.kind != "done":
            acc = self._accumulate(step.index)
            fresh = {tid for tid, _ in self._events[step.index]}
            if step.tensor is not None:
                fresh.add(self.model.ids[step.tensor])
            if acc:
                rows = []
                for tid, g in acc.items():
                    node = self.model.nodes[tid]
                    done = self._complete.get(tid)
                    state = ("complete" if done is not None and done[0] <= step.index
                             else "so far")
                    cls = ' class="new"' if tid in fresh else ""
                    rows.append(f"<tr{cls}><td>{escape(node.label)}</td><td class='st'>"
                                f"{state}</td><td><code>{escape(_short(g, 6))}</code>"
                                "</td></tr>")
                h.append('<div class="k">gradients accumulated so far</div>'
                         '<table class="acc">' + "".join(rows) + "</table>")
        return "\n".join(h)

    # -- Jupyter ---------------------------------------------------------------------
    def widget(self):
        """An ipywidgets view: a slider, Previous / Next, the frame and a numbers panel."""
        try:
            import ipywidgets as W
        except ImportError:
            raise ImportError("trace.widget() needs ipywidgets: pip install ipywidgets "
                              "(or use trace.to_html(path) for a standalone page)") from None
        n = len(self) - 1
        slider = W.IntSlider(value=0, min=0, max=n, description="Step",
                             continuous_update=False)
        prev = W.Button(description="Previous", icon="arrow-left")
        nxt = W.Button(description="Next", icon="arrow-right")
        label = W.Label()
        fig = W.HTML(layout=W.Layout(width="68%"))
        panel = W.HTML(layout=W.Layout(width="32%"))
        style = f"<style>{_trace_page.PANEL_CSS}</style>"

        def show(change=None):
            i = slider.value
            label.value = f"Step {i} of {n}"
            fig.value = f'<div style="overflow:auto">{self.svg(i)}</div>'
            panel.value = style + self._panel_html(self.steps[i])
            prev.disabled, nxt.disabled = i == 0, i == n

        def move(delta):
            slider.value = min(n, max(0, slider.value + delta))

        prev.on_click(lambda _: move(-1))
        nxt.on_click(lambda _: move(1))
        slider.observe(show, names="value")
        show()
        return W.VBox([W.HBox([prev, nxt, slider, label]), W.HBox([fig, panel])])

    # -- HTML ------------------------------------------------------------------------
    def to_html(self, path, title: str = "Backpropagation, step by step") -> str:
        """Write one self-contained HTML page with every step; returns the path.

        The page needs no network: the frames are inline SVG. Buttons "Previous" and
        "Next", the arrow keys (and Home / End) and a slider move between steps; a
        label says "Step k of n"; a side panel shows the step's numbers and rule.
        """
        frames = self._all_svgs()
        panels = [self._panel_html(s) for s in self.steps]
        page = _trace_page.page(title, frames, panels)
        return write_file(os.fspath(path), page.encode("utf-8"))


def trace_backward(root, gradient=None, retain_graph: bool = False, *,
                   show_data: bool = True, rankdir: str = "LR", max_nodes: int | None = 200,
                   collapse_modules=True, expand=(), max_elements: int = 4) -> BackwardTrace:
    """Run ``root.backward(gradient, retain_graph)`` and record every step of it.

    The steps come from the engine's own generator, so afterwards the leaves' ``.grad``
    are exactly what ``root.backward()`` would have given. The keyword arguments are
    the drawing options used by ``trace.draw`` / ``widget`` / ``to_html`` (as in
    ``draw_graph``; ``max_nodes`` bounds each frame).

    Example
    -------
    >>> w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    >>> loss = (w * w).sum()
    >>> trace = ag.trace_backward(loss)
    >>> len(trace), trace[1].rule
    (5, 'd(Σa)/da_i = 1')
    >>> trace.to_html("backprop.html")  # doctest: +SKIP
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"trace_backward: expected a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise RuntimeError(
            "trace_backward: this tensor does not require grad and has no graph. Create "
            "the inputs with requires_grad=True, and do not compute it under no_grad()."
        )
    model = GraphModel.build(root)
    options = dict(show_data=show_data, rankdir=rankdir, max_nodes=max_nodes,
                   collapse_modules=collapse_modules, expand=tuple(expand),
                   max_elements=max_elements)
    tr = BackwardTrace(root, model, options)
    m = model
    rid = m.root
    seed = (np.ones_like(root._data) if gradient is None
            else np.asarray(gradient._data if isinstance(gradient, Tensor) else gradient))
    tr.steps.append(TraceStep(0, "forward", root, m.nodes[rid].label, grad=seed, _trace=tr))
    tr._events.append([(rid, seed)])
    pad_variants: dict = {}

    def note(tid, g):
        lines = array_lines(g, max_elements)
        n_lines, width = pad_variants.get(tid, (1, 1))
        pad_variants[tid] = (max(n_lines, len(lines)), max(width, *(len(s) for s in lines)))

    acc = {rid: seed}
    note(rid, seed)
    for st in backward_steps(root, gradient, retain_graph):
        k = len(tr.steps)
        tid = m.ids[st.node]
        node = m.nodes[tid]
        tr._complete[tid] = (k, st.grad)
        note(tid, st.grad)
        events = []
        ctx = st.node._ctx
        if ctx is None:
            tr.steps.append(TraceStep(k, "leaf", st.node, node.label, grad=st.grad, _trace=tr))
            tr._events.append(events)
            continue
        oid = m.op_of[tid]
        candidates = [e for e in m.in_edges[oid] if m.edges[e].carries_grad]
        sent = []
        for p, gp in st.sent:
            for j, e in enumerate(candidates):
                if m.nodes[m.edges[e].tensor].tensor is p:
                    del candidates[j]
                    tr._edge_sent[e] = (k, gp)
                    break
            ptid = m.ids[p]
            events.append((ptid, gp))
            acc[ptid] = gp if ptid not in acc else acc[ptid] + gp
            note(ptid, acc[ptid])
            sent.append((m.nodes[ptid].label, p, gp))
        tr._edge_sent[m.out_edge[oid]] = (k, st.grad)
        tr.steps.append(TraceStep(
            k, "op", st.node, node.label, op=type(ctx).__name__,
            expression=_expression(m, oid), rule=getattr(ctx, "rule", None),
            grad=st.grad, sent=tuple(sent), created_at=ctx.created_at, _trace=tr))
        tr._events.append(events)
    leaf_grads = {}
    for tid, node in m.nodes.items():
        if (isinstance(node, _TensorNode) and node.tensor._ctx is None
                and node.tensor.requires_grad and node.tensor.grad is not None):
            leaf_grads[tid] = np.array(node.tensor.grad, copy=True)
            note(tid, leaf_grads[tid])
    tr._leaf_grads = leaf_grads
    tr.steps.append(TraceStep(len(tr.steps), "done", None, "", _trace=tr))
    tr._events.append([])
    tr._pad = pad_variants
    tr._scale = _Scale([_magnitude(g) for _, g in tr._edge_sent.values()])
    return tr


def _short(g, max_elements: int = 3) -> str:
    """A gradient in one short line (values when small, a summary when large)."""
    if g is None:
        return "?"
    lines = array_lines(g, max_elements)
    if len(lines) == 1:
        return lines[0]
    if np.asarray(g).size <= max_elements:
        return " ".join(s.strip() for s in lines)
    return lines[0] + f" (shape {tuple(np.shape(g))})"


_INFIX = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "MatMul": "@", "Pow": "**"}


def _expression(model: GraphModel, oid: str) -> str:
    """``"v5 = σ(v4)"``: how an op's result was made, in the drawing's names."""
    op = model.nodes[oid]
    out = model.nodes[op.out].label
    args = []
    for e in model.in_edges[oid]:
        edge = model.edges[e]
        node = model.nodes[edge.src]
        args.append(node.label if isinstance(node, _TensorNode) else node.text)
    name = type(op.ctx).__name__
    if name == "GetItem" and len(args) == 1:
        rhs = f"{args[0]}{op.detail}"
    elif name == "Transpose" and len(args) == 1:
        rhs = f"{args[0]}ᵀ" + (f"  ({op.detail})" if op.detail else "")
    elif name in _INFIX and len(args) == 2:
        rhs = f"{args[0]} {_INFIX[name]} {args[1]}"
    elif name == "Neg" and len(args) == 1:
        rhs = f"-{args[0]}"
    else:
        fn = op.symbol if len(op.symbol) <= 2 else op.symbol.replace(" ", "_")
        rhs = f"{fn}({', '.join(args)})"
        if op.detail:
            rhs = rhs[:-1] + f", {op.detail})"
    return f"{out} = {rhs}"


def _kv(key, expr, g) -> str:
    arr = np.asarray(g)
    body = np.array2string(arr, threshold=24, edgeitems=3, max_line_width=46,
                           formatter={"float_kind": _num, "complex_kind": str})
    head = f'<span class="k">{escape(key)}</span> ' if key else ""
    return (f'<div class="kv">{head}<span class="e">{escape(expr)}</span>'
            f"<pre>{escape(body)}</pre></div>")


def _clean_svg(svg: str) -> str:
    """Strip the XML prolog and fixed size so the SVG scales with its container."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'(<svg\b[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    return svg.strip()


# =========================================================================== anomaly mode


class AnomalyError(RuntimeError):
    """The first NaN or Inf seen in anomaly mode. ``.op`` names the op, ``.where`` is the
    ``"file:line"`` of the user code that created it, ``.phase`` is ``"forward"`` or
    ``"backward"``."""

    def __init__(self, message: str, op: str = "", where: str | None = None,
                 phase: str = ""):
        super().__init__(message)
        self.op, self.where, self.phase = op, where, phase


# top-level packages whose frames are library code, not the user's
_LIBRARIES = {__name__.partition(".")[0]}


def register_library(package: str) -> None:
    """Count ``package``'s code as library code: anomaly mode then reports the first line
    outside it (and outside autograd) as where an op was made. A package built on
    autograd (``nn`` does this) calls it with its own name."""
    _LIBRARIES.add(package.partition(".")[0])

_HINTS = {
    "Log": "log is NaN for negative inputs and -inf at 0: clip the input "
           "(x.clip(min=1e-12)) or use a stable form (log_softmax, "
           "binary_cross_entropy_with_logits)",
    "Sqrt": "sqrt is NaN for negative inputs, and its gradient is inf at 0: "
            "add a small epsilon (sqrt(x + 1e-12))",
    "Div": "division by zero (or 0/0): add a small epsilon to the denominator",
    "Exp": "exp overflows to inf above about 709 (float64) or 88 (float32): subtract the "
           "maximum first, or use softmax / log_softmax",
    "Pow": "a negative base to a fractional power is NaN, and 0 to a negative power is inf",
}


def _user_location() -> str | None:
    """``"file:line"`` of the innermost frame outside autograd and registered libraries."""
    f = sys._getframe(2)
    while f is not None:
        module = f.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _LIBRARIES:
            return f"{os.path.abspath(f.f_code.co_filename)}:{f.f_lineno}"
        f = f.f_back
    return None


def _source_line(where: str | None) -> str:
    if not where:
        return ""
    fn, _, line = where.rpartition(":")
    try:
        return linecache.getline(fn, int(line)).strip()
    except (ValueError, OSError):
        return ""


def _range_text(a) -> str:
    a = np.asarray(a)
    if a.dtype.kind not in "fciub":
        return f"dtype {a.dtype}"
    shape = tuple(a.shape)
    if a.size == 0:
        return f"shape {shape}, empty"
    af = a.astype(np.float64, copy=False) if a.dtype.kind != "c" else np.abs(a)
    finite = np.isfinite(af)
    n_bad = a.size - int(finite.sum())
    text = f"shape {shape}"
    if n_bad < a.size:
        vals = af[finite]
        text += f", range [{vals.min():.4g}, {vals.max():.4g}]"
    if n_bad:
        n_nan = int(np.isnan(af).sum())
        text += f", {n_nan} NaN, {n_bad - n_nan} Inf"
    return text


def _nonfinite(a) -> bool:
    a = np.asarray(a)
    return a.dtype.kind in "fc" and a.size > 0 and not np.all(np.isfinite(a))


def _what(a) -> str:
    a = np.asarray(a)
    n_nan = int(np.isnan(a).sum())
    n_inf = int(np.isinf(a).sum())
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} Inf")
    return " and ".join(parts) + f" (of {a.size} value{'s' if a.size != 1 else ''})"


def _input_name(ctx, j) -> str:
    parents = getattr(ctx, "parents", ())
    if j < len(parents) and isinstance(parents[j], Tensor) and parents[j].name:
        return f"input {j} ({parents[j].name})"
    return f"input {j}"


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager (or decorator) that finds where the first NaN / Inf came from.

    Inside it, every op records the ``"file:line"`` of the user code that created it
    (``ctx.created_at``, also shown by ``draw_graph`` and ``trace_backward``), and every
    op's output, and every gradient the backward pass sends, is checked. The first NaN
    or Inf raises ``AnomalyError`` naming the op, the ranges of its inputs and the line
    that created it. It slows each op down (a stack walk and a finiteness check).

    ``with ag.detect_anomaly(): loss = model(x); loss.backward()``
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = _fn.get_anomaly_hook()
        _fn.set_anomaly_hook(self)
        return self

    def __exit__(self, *exc):
        _fn.set_anomaly_hook(self._prev)
        return False

    # -- the hooks Function.apply and the engine call --------------------------------
    def on_forward(self, ctx, out, arrays) -> None:
        where = _user_location()
        ctx.created_at = where
        if not self.check_nan or not _nonfinite(out):
            return
        name = ctx.name
        lines = [f"{name} produced {_what(out)} in the forward pass.",
                 f"  op:      {name} ({op_symbol(ctx)})"]
        lines += _where_lines(where)
        bad_inputs = []
        for j, a in enumerate(arrays):
            if isinstance(a, (np.ndarray, np.generic, float, int)):
                lines.append(f"  {_input_name(ctx, j)}: {_range_text(a)}")
                if _nonfinite(a):
                    bad_inputs.append(j)
        if bad_inputs:
            lines.append("  The NaN/Inf was already in its input: it came from data passed in "
                         "(check the inputs and parameters), not from this op.")
        elif name in _HINTS:
            lines.append(f"  Hint: {_HINTS[name]}.")
        raise AnomalyError("\n".join(lines), op=name, where=where, phase="forward")

    def on_backward(self, ctx, grad, sent) -> None:
        if not self.check_nan:
            return
        bad = [(p, g) for p, g in sent if _nonfinite(g)]
        if not bad and not _nonfinite(grad):
            return
        name = ctx.name
        where = ctx.created_at
        if _nonfinite(grad):
            head = (f"the gradient arriving at {name}'s output is already non-finite "
                    f"({_what(grad)}); it came from the seed gradient passed to backward "
                    "or from a hook")
        else:
            head = f"{name}.backward produced {_what(bad[0][1])} in the backward pass"
        lines = [head + ".", f"  op:      {name} ({op_symbol(ctx)})"]
        lines += _where_lines(where)
        if getattr(ctx, "rule", None):
            lines.append(f"  rule:    {ctx.rule}")
        lines.append(f"  gradient in: {_range_text(grad)}")
        parents = getattr(ctx, "parents", ())
        for j, p in enumerate(parents):
            if isinstance(p, Tensor):
                lines.append(f"  {_input_name(ctx, j)}: {_range_text(p._data)}")
        for p, g in bad:
            j = next((k for k, q in enumerate(parents) if q is p), 0)
            lines.append(f"  gradient sent to {_input_name(ctx, j)}: {_range_text(g)}")
        if name in _HINTS and not _nonfinite(grad):
            lines.append(f"  Hint: {_HINTS[name]}.")
        raise AnomalyError("\n".join(lines), op=name, where=where, phase="backward")


def _where_lines(where) -> list:
    if not where:
        return ["  created: (unknown: the op was made outside detect_anomaly())"]
    out = [f"  created: {where}"]
    src = _source_line(where)
    if src:
        out.append(f"           {src}")
    return out
