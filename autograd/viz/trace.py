"""Seeing backward happen: ``trace_backward(loss)`` records a ``BackwardTrace``.

``trace_backward(loss)`` *is* ``loss.backward()``: it drains the engine's own step
generator (``engine.backward_steps``, the loop ``Tensor.backward`` runs) and writes down
what each step did, so the leaves' ``.grad`` afterwards are exactly what ``backward()``
gives. The record is a list of steps:

- step 0: the forward graph with every value, and the seed gradient dL/dL = 1;
- one step per node, in the order the engine visits them (reverse topological order):
  the gradient arriving at the node, the op's local derivative rule as text
  (``d(a*b)/da = b``), what the chain rule sent to each input, and all gradients
  accumulated so far;
- a last step with the leaves' gradients.

Every step can be drawn (``trace.draw(i)``), browsed in Jupyter (``trace.widget()``) or
exported as one standalone HTML page with Previous / Next buttons (``trace.to_html``).
Recording needs neither Graphviz nor ipywidgets; drawing and the widget import them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..engine import backward_steps
from ..tensor import Tensor
from . import explain, page
from .backend import dot_module
from .collapse import check_size, plan_collapse
from .files import write_file
from .model import GraphModel, TensorNode
from .style import Scale, magnitude
from .text import array_lines, short
from .view import DrawOptions, Overlay

__all__ = ["trace_backward", "BackwardTrace", "TraceStep"]

# above this many nodes, the viewer folds each module into one box until a step enters it
FOLD_MIN_NODES = 40


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
        Its name in the drawings: ``tensor.name``; when unnamed, where it was made
        (``layers.1.sigmoid``), a short expression (``a*b``) or ``v<k>``.
    op : str or None
        The op that made the tensor (class name, e.g. ``"Mul"``) for an ``"op"`` step.
    expression : str
        How the tensor was made, e.g. ``"v5 = σ(v4)"`` (``"a * b"`` for ``a*b``).
    rule : str or None
        The op's local derivative as text (the op class's ``rule``).
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
        return explain.describe(self._trace, self)


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
        self._leaf_grads: dict = {}  # tensor id -> this pass's dL/dleaf (a copy)
        # leaves that held a gradient before the pass: {label: .grad before / after}
        self.earlier_grads: dict = {}
        self.accumulated_grads: dict = {}
        self._scale = Scale([])
        self._plan = None
        self._svg_cache: dict = {}
        self._frames = None
        self._acc: list = []  # per step: gradients received so far (``_accumulate``)
        self._looks: dict = {}  # labels already built for a frame (``dot.render``)

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
        return {self.model.nodes[tid].label: g for tid, g in self._accumulate(i).items()}

    def ledger(self, i: int) -> list:
        """After step ``i``, per tensor that has received a gradient: ``(label, gradient
        so far, complete, received in this step)``, in the order they first got one."""
        i = range(len(self))[i]
        step = self.steps[i]
        fresh = {tid for tid, _ in self._events[i]}
        if step.tensor is not None:
            fresh.add(self.model.ids[step.tensor])
        rows = []
        for tid, g in self._accumulate(i).items():
            done = self._complete.get(tid)
            complete = done is not None and done[0] <= i
            rows.append((self.model.nodes[tid].label, g, complete, tid in fresh))
        return rows

    def leaf_grads(self) -> dict:
        """``{label: dL/dleaf}`` of this pass for every leaf (copies): the leaves' ``.grad``
        unless some held a gradient before the pass (see ``earlier_grads``)."""
        return {self.model.nodes[tid].label: g for tid, g in self._leaf_grads.items()}

    def _accumulate(self, i: int) -> dict:
        """``{tensor id: gradient received so far}`` after step ``i``; kept, so that an
        unchanged sum is the same array in every later frame (what ``dot.render``'s
        cache of labels goes by)."""
        while len(self._acc) <= i:
            k = len(self._acc)
            acc = dict(self._acc[-1]) if self._acc else {}
            for tid, g in self._events[k]:
                prev = acc.get(tid)
                acc[tid] = g if prev is None else prev + g
            self._acc.append(acc)
        return dict(self._acc[i])

    # -- what a frame shows ----------------------------------------------------------
    def overlay(self, i: int, *, caption: bool = True) -> Overlay:
        """What frame ``i`` shows: gradients so far, statuses, highlights."""
        i = range(len(self))[i]
        step = self.steps[i]
        m = self.model
        acc = self._accumulate(i)
        tensor_grads, status = {}, {}
        for tid, node in m.nodes.items():
            if not isinstance(node, TensorNode) or not node.tensor.requires_grad:
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
            current = set(self._leaf_grads)
        elif step.tensor is not None:
            tid = m.ids[step.tensor]
            current.add(tid)
            oid = m.op_of.get(tid)
            if oid is not None and step.kind == "op":
                current.add(oid)
                out_edge = m.out_edge[oid]
                for e, (k, g) in self._edge_sent.items():
                    if k == i:
                        hot[e] = "" if e == out_edge else short(g, 4)
        cap = f"Step {i} of {len(self) - 1}: {explain.headline(step)}" if caption else ""
        return Overlay(tensor_grads=tensor_grads, status=status, edge_grads=edge_grads,
                       current=current, hot=hot, pad=self._pad, scale=self._scale,
                       caption=cap)

    def final_overlay(self, model: GraphModel) -> Overlay:
        """The gradients of the whole pass laid on ``model`` (for ``draw_graph(grads=)``),
        matched by tensor and by (op, argument position), so ``model`` may be built from
        any tensor of the traced graph."""
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
        return Overlay(tensor_grads=tg, edge_grads=eg)

    # -- drawing ---------------------------------------------------------------------
    def _draw_plan(self) -> dict:
        if self._plan is None:
            o = self._options
            plan = plan_collapse(self.model, o["max_nodes"], o["collapse_modules"],
                                 o["expand"])
            check_size(self.model, plan, o["max_nodes"], who="trace.draw")
            self._plan = plan
        return self._plan

    def draw(self, i: int = -1, *, caption: bool = True, legend: bool = True,
             statements_only: bool = False):
        """Draw step ``i`` (default: the last) as a ``graphviz.Digraph``.

        The node whose gradient is complete at this step is highlighted (gold), with
        the op that made it; the edges along which gradient is sent in this step are
        thick and gold (hover one to see the value sent). Boxes show the gradient
        accumulated so far (grey while more may still arrive, blue once complete, ``?``
        before any has arrived). Every frame has the same layout, so stepping through
        does not jump.
        """
        dot = dot_module()
        o = self._options
        opts = DrawOptions(show_data=o["show_data"], show_grad=True, rankdir=o["rankdir"],
                           color_by="grad", legend=legend, max_elements=o["max_elements"],
                           trace=True)
        return dot.render(self.model, self.overlay(i, caption=caption), opts,
                          self._draw_plan(), statements_only=statements_only,
                          cache=self._looks)

    def svg(self, i: int) -> str:
        """Step ``i`` rendered to SVG text (cached), without caption."""
        i = range(len(self))[i]
        if i not in self._svg_cache:
            self._svg_cache[i] = self._render_svg(i)
        return self._svg_cache[i]

    def _render_svg(self, i: int) -> str:
        return page.clean_svg(self.draw(i, caption=False).svg())

    def frames(self):
        """Every frame, rendered at once (``frames.Frames``: one layout, each distinct
        look of a node drawn once; ``.svg(i)`` is frame ``i``'s SVG text)."""
        if self._frames is None:
            self._draw_plan()  # the size error, before any work
            dot_module()  # and the missing-Graphviz one
            from .frames import compose

            base = min(1, len(self) - 1)  # a frame with a step highlighted: full legend
            drawings = [self.draw(i, caption=False, statements_only=i != base)
                        for i in range(len(self))]
            self._frames = compose(drawings, base=base)
        return self._frames

    def _all_svgs(self) -> list:
        f = self.frames()
        return [f.svg(i) for i in range(len(self))]

    def step_scopes(self) -> list | None:
        """Per step, the module scope it works in (``"layers.1"``; ``""`` outside any,
        ``"*"`` for the last step, which shows every leaf), for the viewer to open the
        module of the current step and keep the others folded; None for a graph of at
        most ``FOLD_MIN_NODES`` nodes, whose modules stay open."""
        m = self.model
        if len(m.nodes) <= FOLD_MIN_NODES or not m.scopes():
            return None
        return ["*" if s.kind == "done" else
                m.nodes[m.ids[s.tensor]].scope if s.tensor is not None else ""
                for s in self.steps]

    # -- Jupyter and HTML ------------------------------------------------------------
    def widget(self):
        """An ipywidgets view: a slider, Previous / Next, the frame and a numbers panel."""
        try:
            from .widget import trace_widget
        except ImportError as err:
            if (err.name or "").partition(".")[0] != "ipywidgets":
                raise
            raise ImportError("trace.widget() needs ipywidgets: pip install ipywidgets "
                              "(or use trace.to_html(path) for a standalone page)") from None
        return trace_widget(self)

    def to_html(self, path, title: str = "Backpropagation, step by step") -> str:
        """Write one self-contained HTML page with every step; returns the path.

        The page needs no network: the frames are inline SVG. Buttons "Previous" and
        "Next", the arrow keys (and Home / End) and a slider move between steps; a
        label says "Step k of n"; a side panel shows the step's numbers and rule.
        """
        panels = [explain.panel_html(self, s) for s in self.steps]
        html = page.page(title, self.frames(), panels, self.step_scopes())
        return write_file(os.fspath(path), html.encode("utf-8"))


def trace_backward(root, gradient=None, retain_graph: bool = False, *,
                   show_data: bool = True, rankdir: str = "auto", max_nodes: int | None = 200,
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
    m = GraphModel.build(root)
    earlier = _earlier_grads(m)
    options = dict(show_data=show_data, rankdir=rankdir, max_nodes=max_nodes,
                   collapse_modules=collapse_modules, expand=tuple(expand),
                   max_elements=max_elements)
    tr = BackwardTrace(root, m, options)
    rid = m.root
    seed = (np.ones_like(root._data) if gradient is None
            else np.asarray(gradient._data if isinstance(gradient, Tensor) else gradient))
    tr.steps.append(TraceStep(0, "forward", root, m.nodes[rid].label, grad=seed, _trace=tr))
    tr._events.append([(rid, seed)])
    pad: dict = {}  # tensor id -> (lines, width) of the widest gradient text it shows

    def note(tid, g):
        lines = array_lines(g, max_elements)
        n_lines, width = pad.get(tid, (1, 1))
        pad[tid] = (max(n_lines, len(lines)), max(width, *(len(s) for s in lines)))

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
            k, "op", st.node, node.label, op=ctx.name,
            expression=explain.expression(m, oid), rule=getattr(ctx, "rule", None) or None,
            grad=st.grad, sent=tuple(sent), created_at=ctx.created_at, _trace=tr))
        tr._events.append(events)
    for tid, node in m.nodes.items():
        if (isinstance(node, TensorNode) and node.tensor._ctx is None
                and node.tensor.requires_grad and node.tensor.grad is not None):
            tr._leaf_grads[tid] = _grad_values(node.tensor)
            if tid in earlier:  # show this pass's gradient; .grad holds the sum
                tr.earlier_grads[node.label] = earlier[tid]
                tr.accumulated_grads[node.label] = tr._leaf_grads[tid]
                done = tr._complete.get(tid)
                tr._leaf_grads[tid] = (np.zeros_like(earlier[tid]) if done is None
                                       else np.asarray(done[1]))
            note(tid, tr._leaf_grads[tid])
    tr.steps.append(TraceStep(len(tr.steps), "done", None, "", _trace=tr))
    tr._events.append([])
    tr._pad = pad
    tr._scale = Scale([magnitude(g) for _, g in tr._edge_sent.values()])
    return tr


# ------------------------------------------------------ leaves that already hold gradients


def _grad_values(t) -> np.ndarray:
    """A copy of ``t.grad``'s values (a Tensor after ``backward(create_graph=True)``)."""
    g = t.grad
    return np.array(getattr(g, "_data", g), copy=True)


def _earlier_grads(m: GraphModel) -> dict:
    """{tensor id: copy of .grad} of the leaves that hold a gradient before the pass;
    warns once about them (the pass adds to .grad, so .grad will not be this pass's)."""
    held = {tid: _grad_values(node.tensor) for tid, node in m.nodes.items()
            if isinstance(node, TensorNode) and node.tensor._ctx is None
            and node.tensor.requires_grad and node.tensor.grad is not None}
    held = {tid: g for tid, g in held.items() if np.any(g != 0)}  # zeros: nothing to add to
    if held:
        names = ", ".join(m.nodes[tid].label for tid in list(held)[:5])
        more = f" and {len(held) - 5} more" if len(held) > 5 else ""
        verb = "holds" if len(held) == 1 else "hold"
        warnings.warn(
            f"trace_backward: {names}{more} already {verb} a gradient in .grad (from an "
            "earlier backward). trace_backward runs the backward pass itself and adds "
            "this pass's gradients to .grad, so .grad becomes the sum. The trace shows "
            "this pass's gradients (the accumulated ones are in trace.accumulated_grads). "
            "Call zero_grad() (model.zero_grad(), or t.grad = None) before tracing, and "
            "do not call loss.backward() first.", UserWarning, stacklevel=3)
    return held
