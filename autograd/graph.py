"""Drawing a computation graph: ``draw_graph(root)`` returns a ``graphviz.Digraph``.

The picture is the forward pass as a learner thinks of it: one box per tensor (its
name, shape, and for small tensors its values and gradient) and one small circle per op
(``+``, ``×``, ``@``, ``σ``, ``Σ``, ...) between the op's inputs and its result::

    x ──▶ (@) ──▶ v2 ──▶ (+) ──▶ v4 ──▶ (σ) ──▶ y
    W ──▶             b ──▶

Colours tell the roles apart (parameters, inputs, intermediates, the output; a legend
sits under the drawing). Once gradients are known, edges are coloured and thickened by
the size of the gradient flowing back along them; NaN or Inf is drawn in red.

The graph is walked with the engine's own ``topological_order`` (iterative, so a graph
thousands of ops deep is fine). Node ids follow that order, so the same graph always
gives the same DOT source. The DOT text is available without Graphviz installed
(``g.source``); rendering it (``g.save("graph.svg")``, inline display in Jupyter) needs
the ``dot`` program.

Graphs built by ``nn`` modules carry a name scope on every op (``ctx.scope``); their ops
are grouped in one cluster per module, and a graph too large to draw is shrunk by
collapsing each module into a single box (see ``max_nodes`` and ``collapse_modules``).

``trace.py`` reuses this module to draw every frame of a step-through of backward.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from html import escape

import graphviz
import numpy as np

from .engine import topological_order
from .tensor import Tensor

__all__ = ["draw_graph", "GraphDrawing", "GraphvizNotFoundError", "PALETTE", "op_symbol"]

# --------------------------------------------------------------------------- palette

#: Colours used by every drawing (fill, border) per kind of node, and for edges.
PALETTE = {
    "parameter": ("#E4F3E1", "#3E9A45"),      # leaves that require grad: what learns
    "input": ("#E2EDFB", "#2F6FD0"),          # leaves without grad: data, targets
    "intermediate": ("#F6F7F9", "#9AA1A9"),   # results of ops
    "output": ("#EFE6F8", "#7B3FB5"),         # the tensor drawn from (the loss)
    "constant": ("#FFFFFF", "#B8BDC3"),       # plain numbers / arrays passed to an op
    "module": ("#F1F4F8", "#546E7A"),         # a collapsed nn module
    "op": ("#37474F", "#263238"),             # op circles (dark, white symbol)
    "current": ("#FFF4CC", "#F2A900"),        # the node a trace frame is at
    "edge": "#9AA1A9",                        # edge with no gradient known (yet)
    "nograd": "#B4BAC1",                      # edge along which no gradient flows
    "zero": "#B0B5BA",                        # edge whose gradient is exactly zero
    "grad_lo": "#A9C4E4",                     # small gradient ...
    "grad_hi": "#0B2F6B",                     # ... large gradient
    "bad": "#D62728",                         # NaN or Inf
    "hot": "#F2A900",                         # edges being filled in a trace frame
    "text": "#263238",
    "muted": "#6B7480",
    "data_text": "#37474F",
    "grad_text": "#1550A8",
}

_FONT = "Helvetica"
_MONO = "Courier"
_MONO_ADVANCE = 0.6 * 9  # points per character of the 9 pt monospace rows in boxes

_SYMBOLS = {
    "Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Neg": "−x", "Pow": "^",
    "MatMul": "@", "Exp": "exp", "Log": "log", "Sqrt": "√", "Abs": "|x|",
    "Tanh": "tanh", "Sigmoid": "σ", "Relu": "relu", "Clip": "clip",
    "Maximum": "max", "Minimum": "min", "Where": "where",
    "Sum": "Σ", "Mean": "mean", "Max": "max", "Min": "min",
    "Softmax": "softmax", "LogSoftmax": "log softmax",
    "Reshape": "reshape", "Transpose": "ᵀ", "GetItem": "[ ]",
    "Concat": "concat", "Stack": "stack",
}

_RENDER_FORMATS = {"svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps", "webp"}


def op_symbol(ctx) -> str:
    """The short symbol drawn for an op (``×`` for Mul, ``σ`` for Sigmoid, ...).

    A custom ``Function`` may set a class attribute ``symbol = "..."``; otherwise its
    class name is drawn.
    """
    sym = getattr(ctx, "symbol", None)
    if isinstance(sym, str) and sym:
        return sym
    name = type(ctx).__name__
    if name in _SYMBOLS:
        return _SYMBOLS[name]
    # "BinaryCrossEntropyFunction" -> "binary cross entropy"
    base = re.sub(r"(Function|Op|Fn)$", "", name) or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).lower()


# --------------------------------------------------------------------------- errors


class GraphvizNotFoundError(RuntimeError):
    """Raised when a drawing is rendered but Graphviz's ``dot`` program is missing."""


_INSTALL_HINT = (
    "Rendering a graph needs Graphviz's `dot` program, which was not found on PATH. "
    "Install it: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS) or `conda install graphviz` (or run `make system-deps`). "
    "The DOT text itself needs no install: use `.source`."
)


class GraphDrawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that saves in one call and explains a missing ``dot``.

    - ``g.save("graph.svg")`` / ``"graph.png"`` / ``"graph.pdf"``: renders and writes
      the picture (any other suffix, e.g. ``.gv``, writes the DOT source as usual);
    - ``g.svg()``: the SVG text;
    - in Jupyter the drawing displays inline.
    """

    def pipe(self, *args, **kwargs):
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(_INSTALL_HINT) from None

    def render(self, *args, **kwargs):
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(_INSTALL_HINT) from None

    def svg(self) -> str:
        """Render with ``dot`` and return the SVG text."""
        return self.pipe(format="svg", encoding="utf-8")

    def save(self, filename=None, directory=None, *, dpi: int = 144, **kwargs) -> str:
        """Write the drawing. The suffix picks the format: ``.svg .png .pdf ...`` are
        rendered with ``dot`` (raster images at ``dpi``); anything else (``.gv``,
        ``.dot``) gets the DOT source. Returns the path written."""
        if filename is not None:
            path = os.fspath(filename)
            if directory is not None:
                path = os.path.join(os.fspath(directory), path)
            fmt = os.path.splitext(path)[1].lstrip(".").lower()
            if fmt in _RENDER_FORMATS:
                src = self
                if fmt in ("png", "jpg", "jpeg", "gif", "webp") and "dpi=" not in self.source:
                    src = self.copy()
                    src.attr(dpi=str(dpi))
                return write_file(path, src.pipe(format=fmt))
        return super().save(filename, directory=directory, **kwargs)


def write_file(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` through a ``.part`` file renamed over it (so a failed
    write never leaves half a file), making the directory if needed. Returns ``path``."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- the model


@dataclass
class _TensorNode:
    id: str
    tensor: object
    kind: str  # parameter | input | intermediate | output
    label: str  # the name shown: tensor.name, or "v<k>"
    named: bool
    scope: str = ""


@dataclass
class _OpNode:
    id: str
    ctx: object
    out: str  # id of the tensor node it produces
    symbol: str
    detail: str
    scope: str = ""


@dataclass
class _ConstNode:
    id: str
    text: str
    scope: str = ""


@dataclass
class _Edge:
    src: str
    dst: str
    tensor: str | None  # the tensor node whose value flows along it (None: a constant)
    op: str
    pos: int | None  # argument position for an edge into an op; None for op -> result
    carries_grad: bool


@dataclass
class GraphModel:
    """The graph behind a drawing: nodes in a fixed order, edges, and module scopes.

    Built once from a root tensor (``GraphModel.build``); a drawing is a view of it
    with gradients and highlights laid on top (see ``_State``).
    """

    nodes: dict = field(default_factory=dict)  # id -> node, in drawing order
    edges: list = field(default_factory=list)
    ids: dict = field(default_factory=dict)  # Tensor -> tensor node id
    root: str = ""
    op_of: dict = field(default_factory=dict)  # tensor node id -> op id making it
    in_edges: dict = field(default_factory=dict)  # op id -> edge indices, argument order
    out_edge: dict = field(default_factory=dict)  # op id -> edge index
    uses: dict = field(default_factory=dict)  # tensor id -> grad-carrying edges into ops

    @classmethod
    def build(cls, root) -> GraphModel:
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: expected a Tensor, got {type(root).__name__}")
        m = cls()
        order = topological_order(root) if root.requires_grad else [root]
        n_ops = n_const = 0

        def add_tensor(t, kind):
            k = len(m.ids)
            tid = f"t{k}"
            named = bool(t.name)
            # unnamed tensors are v0, v1, ...; an unnamed root is L, as in dL/dx
            label = t.name if named else ("L" if t is root else f"v{k}")
            m.ids[t] = tid
            m.nodes[tid] = _TensorNode(tid, t, kind, label, named or t is root)
            return tid

        for t in order:
            ctx = t._ctx
            if ctx is None:
                kind = "output" if t is root else ("parameter" if t.requires_grad else "input")
                add_tensor(t, kind)
                continue
            oid = f"op{n_ops}"
            n_ops += 1
            needs = ctx.needs_input_grad
            pending = []
            for j, p in enumerate(ctx.parents):
                if isinstance(p, Tensor):
                    if p not in m.ids:
                        add_tensor(p, "parameter" if p.requires_grad else "input")
                    carries = bool(needs[j]) if j < len(needs) else False
                    pending.append(_Edge(m.ids[p], oid, m.ids[p], oid, j, carries))
                else:
                    cid = f"c{n_const}"
                    n_const += 1
                    m.nodes[cid] = _ConstNode(cid, _const_text(p), ctx.scope)
                    pending.append(_Edge(cid, oid, None, oid, j, False))
            m.nodes[oid] = _OpNode(oid, ctx, "", op_symbol(ctx), _op_detail(ctx), ctx.scope)
            tid = add_tensor(t, "output" if t is root else "intermediate")
            m.nodes[tid].scope = ctx.scope
            m.nodes[oid].out = tid
            m.op_of[tid] = oid
            m.in_edges[oid] = []
            for e in pending:
                m.in_edges[oid].append(len(m.edges))
                if e.carries_grad:
                    m.uses.setdefault(e.tensor, []).append(len(m.edges))
                m.edges.append(e)
            m.out_edge[oid] = len(m.edges)
            m.edges.append(_Edge(oid, tid, tid, oid, None, True))
        m.root = m.ids[root]
        m._place_parameters()
        return m

    def _place_parameters(self):
        """Put a named leaf (``layers.0.weight``) into the cluster of its module.

        A leaf belongs to scope S when one of the ops using it lies in S (or deeper)
        and S ends with the leaf's dotted prefix (``layers.0``).
        """
        for e in self.edges:
            if e.pos is None or e.tensor is None:
                continue
            node = self.nodes[e.tensor]
            if node.kind != "parameter" or not node.named or "." not in node.label:
                continue
            prefix = node.label.rsplit(".", 1)[0]
            scope = self.nodes[e.op].scope
            parts = scope.split(".") if scope else []
            for k in range(len(parts), 0, -1):
                s = ".".join(parts[:k])
                if s == prefix or s.endswith("." + prefix):
                    if len(s) > len(node.scope):
                        node.scope = s
                    break

    # -- module scopes ---------------------------------------------------------------
    def scopes(self) -> list:
        """Every scope (and enclosing scope) used by a node, in first-seen order."""
        seen = {}
        for node in self.nodes.values():
            s = node.scope
            if not s:
                continue
            parts = s.split(".")
            for k in range(1, len(parts) + 1):
                seen.setdefault(".".join(parts[:k]), None)
        return list(seen)


def _const_text(value) -> str:
    a = np.asarray(value)
    if a.dtype == object:
        return type(value).__name__
    if a.size == 1 and a.ndim == 0:
        if a.dtype == bool:
            return str(bool(a))
        return _num(a.item()) if a.dtype.kind in "fc" else str(a.item())
    kind = "mask" if a.dtype == bool else "array"
    return f"{kind} {_shape_text(a.shape)}"


def _op_detail(ctx) -> str:
    """Small text under an op's symbol: the axis of a reduction, an index, bounds."""
    name = type(ctx).__name__
    parts = []
    axis = getattr(ctx, "axis", None)
    if axis is not None:
        parts.append(f"axis={axis}")
    if getattr(ctx, "keepdims", False):
        parts.append("keepdims")
    if name == "GetItem":
        parts.append(_index_text(getattr(ctx, "idx", None)))
    if name == "Clip":
        lo, hi = getattr(ctx, "lo", None), getattr(ctx, "hi", None)
        if lo is not None and hi is not None:
            parts.append(f"[{_num(lo)}, {_num(hi)}]")
        elif lo is not None:
            parts.append(f"min={_num(lo)}")
        elif hi is not None:
            parts.append(f"max={_num(hi)}")
    if name == "Transpose" and getattr(ctx, "axes", None) is not None:
        parts.append(f"axes={tuple(int(a) for a in ctx.axes)}")
    return "  ".join(p for p in parts if p)


def _index_text(idx) -> str:
    items = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for i in items:
        if isinstance(i, slice):
            s = "" if i.start is None else str(i.start)
            s += ":" + ("" if i.stop is None else str(i.stop))
            if i.step is not None:
                s += f":{i.step}"
            out.append(s)
        elif i is None:
            out.append("None")
        elif i is Ellipsis:
            out.append("...")
        elif isinstance(i, np.ndarray):
            out.append(f"{'mask' if i.dtype == bool else 'idx'}{_shape_text(i.shape)}")
        else:
            out.append(str(i))
    text = "[" + ", ".join(out) + "]"
    return text if len(text) <= 24 else text[:21] + "…]"


# --------------------------------------------------------------------------- formatting


def _num(x) -> str:
    """One number, short: 4 significant digits, ``nan``/``inf`` spelled out."""
    x = float(x.real) if isinstance(x, complex) else float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _shape_text(shape) -> str:
    if len(shape) == 0:
        return "scalar"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(n) for n in shape) + ")"


def array_lines(a, max_elements: int = 6) -> list:
    """Text lines showing an array: all values when small, a summary when large."""
    a = np.asarray(a)
    if a.size == 0:
        return ["[]"]
    if a.dtype.kind not in "fciub":
        return [f"<{a.dtype}>"]
    if a.ndim == 0:
        return [_num(a.item())]
    if a.size <= max_elements and a.ndim <= 2:
        if a.ndim == 1:
            return ["[" + ", ".join(_num(v) for v in a) + "]"]
        if a.shape[1] == 1 and a.shape[0] > 1:  # a column: one line, transposed
            return ["[" + ", ".join(_num(v) for v in a[:, 0]) + "]ᵀ"]
        rows = ["[" + ", ".join(_num(v) for v in row) + "]" for row in a]
        return ["[" + rows[0] + ("," if len(rows) > 1 else "]")] + [
            " " + r + ("," if k < len(rows) - 1 else "]") for k, r in enumerate(rows[1:], 1)
        ]
    af = a.astype(np.float64, copy=False) if a.dtype.kind != "c" else np.abs(a)
    finite = np.isfinite(af)
    bad = a.size - int(finite.sum())
    if bad == a.size:
        return [f"all {a.size} non-finite"]
    vals = af[finite]
    line = f"{_num(vals.min())} … {_num(vals.max())}"
    lines = [line]
    if bad:
        lines.append(f"{bad} NaN/Inf")
    return lines


def _magnitude(a):
    """Mean |value| of an array, or ``math.inf`` if it holds NaN or Inf."""
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    if a.dtype.kind not in "fc":
        return float(np.mean(np.abs(a))) if a.dtype.kind in "iub" else 0.0
    if not np.all(np.isfinite(a)):
        return math.inf
    return float(np.mean(np.abs(a)))


def _mix(c0: str, c1: str, t: float) -> str:
    a = [int(c0[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(c1[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(a, b))


class _Scale:
    """Maps a magnitude to 0..1 on a log scale spanning at most six decades."""

    def __init__(self, magnitudes):
        pos = [m for m in magnitudes if m > 0 and math.isfinite(m)]
        self.hi = max(pos) if pos else 1.0
        lo = min(pos) if pos else 1.0
        self.span = min(max(math.log10(self.hi / lo), 1.0), 6.0)

    def __call__(self, m: float) -> float:
        if m <= 0:
            return 0.0
        return max(0.0, 1.0 - math.log10(self.hi / m) / self.span) if m < self.hi else 1.0


# --------------------------------------------------------------------------- a view


@dataclass
class _State:
    """What one drawing shows on top of the model.

    ``tensor_grads``: gradients to print in tensor boxes; ``status``: per tensor,
    ``"done"`` / ``"partial"`` / ``"pending"`` in a trace frame (absent otherwise);
    ``edge_grads``: per edge index, the gradient that flowed along it; ``current``:
    node ids to highlight; ``hot``: edge index -> short text, edges being filled now;
    ``pad``: tensor id -> (lines, width) reserved for the gradient text, so every
    frame of a trace has boxes of the same size (and so the same layout).
    """

    tensor_grads: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    edge_grads: dict = field(default_factory=dict)
    current: set = field(default_factory=set)
    hot: dict = field(default_factory=dict)
    pad: dict = field(default_factory=dict)
    scale: _Scale | None = None
    caption: str = ""


@dataclass
class _Options:
    show_data: bool = True
    show_grad: bool = True
    rankdir: str = "LR"
    color_by: str | None = "grad"
    legend: bool = True
    max_elements: int = 6
    title: str | None = None
    trace: bool = False  # drawing a trace frame: legend mentions the highlight


# --------------------------------------------------------------------------- collapsing


def _plan_collapse(model: GraphModel, max_nodes, collapse_modules, expand) -> dict:
    """Decide which module scopes to draw as one box. Returns {scope: module id}.

    ``collapse_modules=True`` collapses only when the graph has more than ``max_nodes``
    nodes: first the innermost modules, then their parents, until it fits.
    ``"always"`` collapses the innermost modules in any case; ``False`` never.
    Scopes named in ``expand`` (and the scopes around them) stay open.
    """
    n = len(model.nodes)
    if collapse_modules not in (True, False, "always"):
        raise ValueError(f"draw_graph: collapse_modules must be True, False or 'always', "
                         f"got {collapse_modules!r}")
    too_big = max_nodes is not None and n > max_nodes
    scopes = model.scopes()
    keep = set()
    for s in expand or ():
        parts = s.split(".")
        keep.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    unknown = [s for s in expand or () if s not in scopes]
    if unknown:
        raise ValueError(f"draw_graph: expand={unknown!r} names no module in this graph; "
                         f"its modules are {scopes!r}")
    plan: dict = {}
    if collapse_modules is False or not scopes or (collapse_modules is True and not too_big):
        return plan
    depth = max(s.count(".") + 1 for s in scopes)
    for d in range(depth, 0, -1):
        chosen = [s for s in scopes if s.count(".") + 1 == d and s not in keep]
        plan = {s: f"m{k}" for k, s in enumerate(chosen)}
        if max_nodes is None or _count_visible(model, plan) <= max_nodes:
            break
        if collapse_modules == "always" and not too_big:
            break
    return plan


def _owner(scope: str, plan: dict) -> str | None:
    """The collapsed scope that contains ``scope``, if any."""
    if not plan or not scope:
        return None
    parts = scope.split(".")
    for k in range(1, len(parts) + 1):
        s = ".".join(parts[:k])
        if s in plan:
            return s
    return None


def _count_visible(model: GraphModel, plan: dict) -> int:
    hidden = sum(1 for node in model.nodes.values() if _owner(node.scope, plan))
    return len(model.nodes) - hidden + len(plan)


# --------------------------------------------------------------------------- rendering


def _font(text: str, *, size=None, color=None, face=None, bold=False) -> str:
    attrs = ""
    if face:
        attrs += f' FACE="{face}"'
    if size:
        attrs += f' POINT-SIZE="{size}"'
    if color:
        attrs += f' COLOR="{color}"'
    body = f"<B>{text}</B>" if bold else text
    return f"<FONT{attrs}>{body}</FONT>" if attrs else body


def _mono_block(prefix: str, lines: list, pad=None) -> str:
    """Monospace lines, the first after ``prefix``, the others aligned under it."""
    lines = list(lines)
    if pad is not None:
        n_lines, width = pad
        lines += [""] * (n_lines - len(lines))
        lines = [ln.ljust(width) for ln in lines]
    indent = " " * len(prefix)
    out = [escape(prefix + lines[0])] + [escape(indent + ln) for ln in lines[1:]]
    return "<BR/>".join(s.replace(" ", "&#160;") for s in out)


def _block_chars(prefix: str, lines: list, pad=None) -> int:
    """Characters in the longest line ``_mono_block`` draws."""
    width = max(len(ln) for ln in lines)
    if pad is not None:
        width = max(width, pad[1])
    return len(prefix) + width


def _right_pad(chars: int) -> int:
    """Width in points of the spacer right of a box's monospace rows (``chars`` long).

    Graphviz sizes a box with its own font metrics; a browser showing the SVG draws the
    text with its own monospace font, which may run a few percent wider (about 2% for
    Chromium on Linux, more when a glyph such as ``ᵀ`` comes from a fallback font).
    The spacer covers 3% of the longest row plus 3 points, so rows never touch the
    right border.
    """
    return 3 + math.ceil(0.03 * _MONO_ADVANCE * chars)


def _tensor_label(node: _TensorNode, grad, status, pad, opts: _Options, current: bool) -> str:
    t = node.tensor
    fill, border = PALETTE[node.kind]
    data = t._data
    if current:
        fill, border = PALETTE["current"]
    head = (_font(escape(node.label), bold=True, color=PALETTE["text"]) if node.named
            else _font(escape(node.label), color=PALETTE["muted"]))
    shape = _shape_text(data.shape)
    if data.dtype != np.float64:
        shape += f" {data.dtype}"
    head += "  " + _font(escape(shape), size=9, color=PALETTE["muted"])
    head = f'<TD BGCOLOR="{fill}" CELLPADDING="4">{head}</TD>'
    rows = []
    chars = 0
    if opts.show_data:
        lines = array_lines(data, opts.max_elements)
        txt = _mono_block("data ", lines)
        chars = _block_chars("data ", lines)
        rows.append('<TD ALIGN="LEFT" BALIGN="LEFT">'
                    + _font(txt, size=9, face=_MONO, color=PALETTE["data_text"]) + "</TD>")
    if opts.show_grad and t.requires_grad and (grad is not None or status or pad):
        color = PALETTE["grad_text"]
        if grad is None:
            lines, color = ["?"], PALETTE["muted"]
        else:
            lines = array_lines(grad, opts.max_elements)
            if _magnitude(grad) == math.inf:
                color = PALETTE["bad"]
            elif status == "partial":
                color = PALETTE["muted"]
        prefix = "grad "
        txt = _mono_block(prefix, lines, pad)
        chars = max(chars, _block_chars(prefix, lines, pad))
        rows.append('<TD ALIGN="LEFT" BALIGN="LEFT">'
                    + _font(txt, size=9, face=_MONO, color=color) + "</TD>")
    style = "rounded"
    if status == "pending":
        style = "rounded,dashed"
    return _box(head, rows, chars, style, border, current)


def _module_label(scope, members, model, tensor_grads, opts, current) -> str:
    fill, border = PALETTE["current"] if current else PALETTE["module"]
    ops = [model.nodes[i] for i in members if isinstance(model.nodes[i], _OpNode)]
    syms = " ".join(o.symbol for o in ops) if len(ops) <= 4 else f"{len(ops)} ops"
    head = (f'<TD BGCOLOR="{fill}" CELLPADDING="4">'
            + _font(escape(scope), bold=True, color=PALETTE["text"]) + "  "
            + _font(escape(syms), size=10, color=PALETTE["muted"]) + "</TD>")
    rows = []
    chars = 0
    for i in members:
        node = model.nodes[i]
        if not isinstance(node, _TensorNode) or node.kind != "parameter":
            continue
        text = f"{node.label.rsplit('.', 1)[-1]} {_shape_text(node.tensor.shape)}"
        g = tensor_grads.get(i)
        if opts.show_grad and g is not None:
            m = _magnitude(g)
            text += "  |g| " + ("NaN/Inf" if m == math.inf else _num(m))
        chars = max(chars, len(text))
        rows.append('<TD ALIGN="LEFT">' + _font(escape(text), size=9, face=_MONO,
                                                 color=PALETTE["data_text"]) + "</TD>")
    outs = [model.nodes[o.out] for o in ops]
    if outs:  # the module's result: its last op's output
        text = f"out {_shape_text(outs[-1].tensor.shape)}"
        chars = max(chars, len(text))
        rows.append('<TD ALIGN="LEFT">' + _font(escape(text), size=9, face=_MONO,
                                                 color=PALETTE["muted"]) + "</TD>")
    return _box(head, rows, chars, "rounded", border, current)


def _box(head: str, rows: list, chars: int, style: str, border: str, current: bool) -> str:
    """The HTML label of a box: a rounded table, thick-bordered when ``current``.

    ``head`` is the coloured title cell, ``rows`` the cells under it: monospace text
    whose longest line has ``chars`` characters. Each row ends in an empty spacer cell
    (``_right_pad``), so the text keeps clear of the right border in any viewer.
    The box sits in an outer cell whose padding makes up for the thinner border, so a
    box has the same size highlighted or not (and a trace's frames the same layout).
    """
    width = 3 if current else 1
    if rows:
        spacer = f'<TD WIDTH="{_right_pad(chars)}"></TD>'
        head = head.replace("<TD ", '<TD COLSPAN="2" ', 1)  # the title spans both
        body = f"<TR>{head}</TR>" + "".join(f"<TR>{cell}{spacer}</TR>" for cell in rows)
    else:
        body = f"<TR>{head}</TR>"
    inner = (f'<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" '
             f'STYLE="{style}" COLOR="{border}" BGCOLOR="white">' + body + "</TABLE>")
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
            f'<TD CELLPADDING="{3 - width}">{inner}</TD></TR></TABLE>>')


def _op_attrs(node: _OpNode, current: bool) -> dict:
    fill, border = PALETTE["op"]
    fontcolor = "white"
    if current:
        fill, border, fontcolor = PALETTE["current"][1], "#B07A00", PALETTE["text"]
    sym = escape(node.symbol)
    short = len(node.symbol) <= 2
    attrs = {
        "shape": "circle" if short else "ellipse",
        "style": "filled",
        "fillcolor": fill,
        "color": border,
        "fontcolor": fontcolor,
        "fontname": _FONT,
        "fontsize": "15" if short else "11",
        "margin": "0.02" if short else "0.06,0.02",
        "width": "0.42",
        "height": "0.42" if short else "0.34",
        "penwidth": "2" if current else "1",
        "tooltip": f"{type(node.ctx).__name__}" + (f" ({node.detail})" if node.detail else ""),
    }
    if node.detail:
        attrs["label"] = f'<{sym}<BR/><FONT POINT-SIZE="8">{escape(node.detail)}</FONT>>'
        attrs["shape"] = "ellipse"
        attrs["fontsize"] = "13" if short else "11"
    else:
        attrs["label"] = _wrap_words(node.symbol)
    return attrs


def _wrap_words(text: str, width: int = 10) -> str:
    """Break a long op name over two lines at the space nearest its middle."""
    if len(text) <= width or " " not in text:
        return text
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "\n" + text[cut + 1:]


def _edge_kind(carries_grad: bool, value, metric: str | None) -> str | None:
    """How an edge is drawn: ``"nograd"`` (dashed), ``"bad"`` (NaN/Inf, red),
    ``"zero"`` (dotted), ``"ramp"`` (coloured by size) or None (plain grey)."""
    if not carries_grad and metric != "data":
        return "nograd"
    if metric is None or value is None:
        return None
    m = _magnitude(value)
    return "bad" if m == math.inf else ("zero" if m == 0 else "ramp")


def _edge_attrs(edge: _Edge, value, scale: _Scale, metric: str) -> dict:
    kind = _edge_kind(edge.carries_grad, value, metric)
    if kind == "nograd":
        return {"color": PALETTE["nograd"], "style": "dashed", "arrowsize": "0.6",
                "penwidth": "1"}
    if kind is None:
        return {"color": PALETTE["edge"], "penwidth": "1.1", "arrowsize": "0.7"}
    m = _magnitude(value)
    label = "|∂L|" if metric == "grad" else "|x|"
    if kind == "bad":
        return {"color": PALETTE["bad"], "penwidth": "3.2", "arrowsize": "0.9",
                "tooltip": f"{label}: NaN/Inf"}
    if kind == "zero":
        return {"color": PALETTE["zero"], "style": "dotted", "penwidth": "1.6",
                "arrowsize": "0.7", "tooltip": f"{label} mean: 0"}
    t = scale(m)
    return {"color": _mix(PALETTE["grad_lo"], PALETTE["grad_hi"], t),
            "penwidth": f"{1.0 + 3.6 * t:.2f}", "arrowsize": f"{0.6 + 0.35 * t:.2f}",
            "tooltip": f"{label} mean: {_num(m)}"}


def _legend(kinds: list, opts: _Options, state: _State, edges: set) -> str:
    """The legend under a drawing: an entry for each kind of node in ``kinds`` and each
    kind of edge in ``edges`` (see ``_edge_kind``; ``"hot"``: a trace frame's edges
    being filled), so it names only what the picture shows."""
    words = {"parameter": "parameter (requires grad)", "input": "input / data",
             "intermediate": "intermediate", "output": "output", "constant": "constant",
             "module": "nn module"}
    entries = [(k, 16, 1, words[k]) for k in kinds if k != "op"]
    if "op" in kinds:
        entries.append(("op", 11, 1, "op"))
    if opts.trace:
        entries.append(("current", 16, 2, "current step"))
    cells = []
    for kind, width, border_width, text in entries:
        fill, border = PALETTE[kind]
        cells.append(f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="{border_width}" '
                     f'STYLE="rounded" WIDTH="{width}" HEIGHT="11" FIXEDSIZE="TRUE"></TD>')
        cells.append(_legend_text(text))
    row1 = ('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
            + "".join(cells) + "</TR></TABLE></TD></TR>")
    edge_cells = []
    metric = "|gradient|" if opts.color_by == "grad" else "|value|"
    if "ramp" in edges:
        ramp = "".join(
            f'<TD BGCOLOR="{_mix(PALETTE["grad_lo"], PALETTE["grad_hi"], t)}" WIDTH="10" '
            f'HEIGHT="{int(3 + 5 * t)}" FIXEDSIZE="TRUE"></TD>'
            for t in (0.0, 0.25, 0.5, 0.75, 1.0))
        edge_cells += [
            _legend_text(f"edges: mean {metric}  small"),
            f'<TD><TABLE BORDER="0" CELLSPACING="1" CELLPADDING="0"><TR>{ramp}</TR></TABLE></TD>',
            _legend_text("large (log scale)"),
        ]
    if "zero" in edges:
        edge_cells.append(_legend_text("···· zero", PALETTE["zero"], bold=True))
    if "bad" in edges:
        edge_cells.append(_legend_text("━━ NaN / Inf", PALETTE["bad"], bold=True))
    if "hot" in edges:
        edge_cells.append(_legend_text("━━ gradient sent in this step", "#C68400"))
    if "nograd" in edges:
        edge_cells.append(_legend_text("- - no gradient"))
    rows = row1
    span = '<TR><TD ALIGN="LEFT">'
    if edge_cells:
        rows += (span + '<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
                 + "".join(edge_cells) + "</TR></TABLE></TD></TR>")
    if state.caption:
        rows = (span + _font(escape(state.caption), size=11, color=PALETTE["text"])
                + "</TD></TR>" + rows)
    if opts.title:
        rows = (span + _font(escape(opts.title), size=13, bold=True, color=PALETTE["text"])
                + "</TD></TR>" + rows)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" CELLPADDING="1">'
            + rows + "</TABLE>>")


def _legend_text(text: str, color: str | None = None, bold: bool = False) -> str:
    """A legend cell of small text (grey unless ``color`` is given)."""
    return ('<TD ALIGN="LEFT">' + _font(text, size=9, bold=bold, color=color or PALETTE["muted"])
            + "</TD>")


def render(model: GraphModel, state: _State, opts: _Options, plan: dict) -> GraphDrawing:
    """Draw ``model`` with the gradients / highlights in ``state`` (see ``_State``)."""
    g = GraphDrawing(name="chainrule", format="svg")
    g.attr(rankdir=opts.rankdir, bgcolor="white", fontname=_FONT, nodesep="0.25",
           ranksep="0.35", newrank="true", labeljust="l", labelloc="b", pad="0.2")
    g.attr("node", fontname=_FONT, fontsize="11", shape="plain")
    g.attr("edge", fontname=_FONT, fontsize="8", color=PALETTE["edge"], arrowsize="0.7")

    # which visible node stands for each node (itself, or its collapsed module)
    rep = {}
    members: dict = {s: [] for s in plan}
    for nid, node in model.nodes.items():
        owner = _owner(node.scope, plan)
        rep[nid] = plan[owner] if owner else nid
        if owner:
            members[owner].append(nid)
    scope_of_module = {mid: s for s, mid in plan.items()}

    # node statements, grouped by scope for the clusters
    by_scope: dict = {}
    kinds_seen = []

    def note_kind(k):
        if k not in kinds_seen:
            kinds_seen.append(k)

    emitted_modules = set()
    for nid, node in model.nodes.items():
        r = rep[nid]
        if r != nid:
            if r in emitted_modules:
                continue
            emitted_modules.add(r)
            scope = scope_of_module[r]
            current = any(i in state.current for i in members[scope])
            label = _module_label(scope, members[scope], model, state.tensor_grads, opts,
                                  current)
            parent = scope.rsplit(".", 1)[0] if "." in scope else ""
            by_scope.setdefault(parent, []).append(
                (r, {"label": label, "tooltip": scope, "id": r,
                     "class": "module current" if current else "module"}))
            note_kind("module")
            continue
        current = nid in state.current
        if isinstance(node, _TensorNode):
            label = _tensor_label(node, state.tensor_grads.get(nid), state.status.get(nid),
                                  state.pad.get(nid), opts, current)
            attrs = {"label": label, "id": nid, "tooltip": _tensor_tooltip(node),
                     "class": f"tensor {node.kind}" + (" current" if current else "")}
            note_kind(node.kind)
        elif isinstance(node, _OpNode):
            attrs = _op_attrs(node, current)
            attrs.update(id=nid, **{"class": "op current" if current else "op"})
            note_kind("op")
        else:
            fill, border = PALETTE["constant"]
            attrs = {"label": node.text, "shape": "box", "style": "rounded,filled,dashed",
                     "fillcolor": fill, "color": border, "fontsize": "9",
                     "fontcolor": PALETTE["muted"], "margin": "0.05,0.02", "height": "0.25",
                     "width": "0.3", "id": nid, "class": "constant"}
            note_kind("constant")
        by_scope.setdefault(node.scope, []).append((nid, attrs))

    _emit_clusters(g, by_scope, plan)

    # edges, merged when both ends fall into modules
    metric = opts.color_by
    values = {}
    if metric == "grad":
        values = state.edge_grads
    elif metric == "data":
        values = {i: model.nodes[e.tensor].tensor._data for i, e in enumerate(model.edges)
                  if e.tensor is not None}
    scale = state.scale or _Scale([_magnitude(v) for v in values.values()])
    merged = {}
    for i, e in enumerate(model.edges):
        a, b = rep[e.src], rep[e.dst]
        if a == b:
            continue
        key = (a, b) if a in scope_of_module or b in scope_of_module else i
        prev = merged.get(key)
        if prev is None or _edge_rank(values.get(i)) > _edge_rank(values.get(prev[0][0])):
            merged[key] = ([i] + (prev[0] if prev else []), a, b)
        else:
            prev[0].append(i)
    edges_seen = set()  # how the drawn edges look, for the legend
    for idxs, a, b in merged.values():
        i = idxs[0]
        e = model.edges[i]
        if metric is None:
            attrs = {"color": PALETTE["edge"], "penwidth": "1.1"}
            kind = _edge_kind(e.carries_grad, None, None)
            if kind == "nograd":
                attrs["style"] = "dashed"
        else:
            carries = any(model.edges[k].carries_grad for k in idxs)
            proto = _Edge(e.src, e.dst, e.tensor, e.op, e.pos, carries)
            kind = _edge_kind(carries, values.get(i), metric)
            attrs = _edge_attrs(proto, values.get(i), scale, metric)
        hot = [state.hot[k] for k in idxs if k in state.hot]
        if hot:
            attrs.update(color=PALETTE["hot"], penwidth="3.4", arrowsize="0.9", style="solid")
            if hot[0]:  # the value sent shows on hover (and in the receiving box)
                attrs["tooltip"] = f"sent in this step: {hot[0]}"
            attrs["class"] = "edge hot"
            kind = "hot"
        edges_seen.add(kind)
        if len(idxs) > 1:
            attrs.setdefault("tooltip", f"{len(idxs)} edges")
        g.edge(a, b, **attrs)

    if opts.legend or opts.title or state.caption:
        if opts.legend:
            g.attr(label=_legend(kinds_seen, opts, state, edges_seen))
        else:
            text = " — ".join(x for x in (opts.title, state.caption) if x)
            g.attr(label=text, fontsize="12")
    return g


def _edge_rank(v) -> float:
    if v is None:
        return -1.0
    m = _magnitude(v)
    return 1e308 if m == math.inf else m


def _tensor_tooltip(node: _TensorNode) -> str:
    t = node.tensor
    text = f"{node.label}: {node.kind}, shape {_shape_text(t.shape)}, dtype {t.dtype}"
    ctx = t._ctx
    if ctx is not None and ctx.created_at:
        text += f", made at {ctx.created_at}"
    return text


def _emit_clusters(g: GraphDrawing, by_scope: dict, plan: dict) -> None:
    """Emit node statements inside one nested cluster per (not collapsed) scope."""
    scopes = [s for s in by_scope if s]
    # every enclosing scope of a used scope gets a cluster too
    tree: dict = {"": []}
    order = [""]
    for s in scopes:
        parts = s.split(".")
        for k in range(1, len(parts) + 1):
            p = ".".join(parts[:k])
            if p not in tree:
                tree[p] = []
                order.append(p)
                tree[".".join(parts[:k - 1])].append(p)
    # build innermost first (iteratively: deepest scopes first)
    built: dict = {}
    for s in sorted(order, key=lambda x: -(x.count(".") + 1 if x else 0)):
        sub = g if s == "" else graphviz.Digraph(name=f"cluster_{order.index(s)}")
        if s:
            sub.attr(label=s, style="rounded,dashed", color="#B8C2CC", fontcolor="#546E7A",
                     fontsize="10", bgcolor="#FBFCFD", labeljust="l", margin="10")
        for nid, attrs in by_scope.get(s, []):
            sub.node(nid, **attrs)
        for child in tree[s]:
            sub.subgraph(built[child])
        if s:
            built[s] = sub


# --------------------------------------------------------------------------- public


def known_grads(model: GraphModel, grads=None):
    """Gradients already known for a plain drawing: ``.grad`` attributes, or ``grads``.

    Returns ``(tensor_grads, edge_grads)``. An edge gets a gradient when it is the only
    use of its tensor (then the tensor's gradient is exactly what flowed along it).
    """
    tg, eg = {}, {}
    if grads is not None and hasattr(grads, "final_state"):
        st = grads.final_state(model)
        return dict(st.tensor_grads), dict(st.edge_grads)
    mapping = {}
    if grads is not None:
        for k, v in dict(grads).items():
            mapping[k] = np.asarray(v._data if isinstance(v, Tensor) else v)
    for t, tid in model.ids.items():
        g = mapping.get(t)
        if g is None:
            g = t.grad
        if g is not None and t.requires_grad:
            tg[tid] = g
    for tid, g in tg.items():
        uses = model.uses.get(tid, [])
        if len(uses) == 1:
            eg[uses[0]] = g
        oid = model.op_of.get(tid)
        if oid is not None:
            eg[model.out_edge[oid]] = g
    return tg, eg


def check_size(model: GraphModel, plan: dict, max_nodes, who: str = "draw_graph") -> None:
    """Raise a clear ``ValueError`` when the drawing would still be too big."""
    if max_nodes is None:
        return
    n = _count_visible(model, plan)
    if n > max_nodes:
        full = len(model.nodes)
        after = f" ({n} after collapsing modules)" if plan else ""
        raise ValueError(
            f"{who}: this graph has {full} nodes{after}, more "
            f"than max_nodes={max_nodes}; Graphviz would take a long time on it and the "
            "picture would be unreadable. Draw less: draw an intermediate tensor instead "
            "of the final loss (e.g. one layer's output), use a smaller batch or fewer "
            "loop iterations, build the model from nn modules so it can be collapsed "
            "(collapse_modules=True or 'always'), or raise the limit "
            f"(max_nodes={full}, or max_nodes=None for no limit)."
        )


def draw_graph(root, *, show_data: bool = True, show_grad: bool = True,
               rankdir: str = "LR", color_by: str | None = "grad",
               max_nodes: int | None = 500, collapse_modules=True, expand=(),
               legend: bool = True, grads=None, max_elements: int = 6,
               title: str | None = None) -> GraphDrawing:
    """Draw the graph that produced ``root`` and return a ``graphviz.Digraph``.

    Parameters
    ----------
    root : Tensor
        The tensor to draw from (usually the loss). Every tensor it depends on is drawn.
    show_data, show_grad : bool
        Print each tensor's values / gradient in its box (all values for tensors of at
        most ``max_elements`` elements, a min … max range for bigger ones).
    rankdir : "LR", "TB", "RL" or "BT"
        Direction of the forward pass in the picture.
    color_by : "grad", "data" or None
        What colours and thickens the edges: the mean |gradient| that flowed back along
        them (known after ``backward``: leaves' ``.grad``, tensors that ``retain_grad()``,
        or everything when ``grads=`` a trace), the mean |value| flowing forward, or
        nothing. Dashed edges carry no gradient; NaN / Inf are red.
    max_nodes : int or None
        Size guard. Above it, module clusters are collapsed (``collapse_modules``); if the
        graph still does not fit, a ``ValueError`` explains how to draw less.
    collapse_modules : True, False or "always"
        ``True``: collapse nn modules into one box each only when needed to fit
        ``max_nodes``; ``"always"``: collapse the innermost modules anyway;
        ``False``: never (every op drawn, modules as clusters around their ops).
    expand : iterable of str
        Module scopes (``"layers.0"``) to keep open while others are collapsed.
    legend : bool
        Draw the legend under the graph.
    max_elements : int
        Tensors of at most this many elements show every value; larger ones a range.
    grads : BackwardTrace or mapping {Tensor: array}, optional
        Gradients to show beyond ``.grad``: pass ``ag.trace_backward(loss)`` to see the
        gradient of every intermediate tensor and every edge.
    title : str, optional
        A title above the legend.

    Returns
    -------
    GraphDrawing
        A ``graphviz.Digraph``: ``.source`` is the DOT text; ``.save("graph.svg")``
        renders and writes it; in Jupyter it displays inline.

    Example
    -------
    >>> x = ag.Tensor([1.0, 2.0], name="x")
    >>> w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    >>> loss = (x * w).sum()
    >>> loss.backward()
    >>> ag.draw_graph(loss).save("graph.svg")  # doctest: +SKIP
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"draw_graph: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    if color_by not in ("grad", "data", None):
        raise ValueError(f"draw_graph: color_by must be 'grad', 'data' or None, got {color_by!r}")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError("draw_graph: max_nodes must be a positive int or None")
    model = GraphModel.build(root)
    plan = _plan_collapse(model, max_nodes, collapse_modules, expand)
    check_size(model, plan, max_nodes)
    tg, eg = known_grads(model, grads)
    opts = _Options(show_data=show_data, show_grad=show_grad, rankdir=rankdir,
                    color_by=color_by, legend=legend, max_elements=max_elements, title=title)
    return render(model, _State(tensor_grads=tg, edge_grads=eg), opts, plan)
