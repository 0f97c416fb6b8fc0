"""The graph behind every picture, as plain data (no Graphviz here).

``GraphModel.build(root)`` walks the graph that produced ``root`` with the engine's own
``topological_order`` (iterative: a graph thousands of ops deep is fine) and lists:

- one ``TensorNode`` per tensor (its role: parameter, input, intermediate or output);
- one ``OpNode`` per op, with the symbol drawn for it and a short detail (an axis, an
  index, clip bounds);
- one ``ConstNode`` per plain number or array passed to an op (``None`` passed for an
  optional input, such as a convolution's bias, is left out);
- the ``Edge`` list: each input into its op, each op into its result.

Unnamed tensors are named for the learner: an unnamed root ``L``; a result made in a
module after its scope and op (``layers.1.sigmoid``); one made elsewhere from named
inputs after the expression, when short (``a*b``, ``tanh(h)``); any other ``v<k>``.

Node ids follow the topological order, so the same graph always gets the same ids (and
the same DOT source). What an op looks like comes from the op class itself: its
``symbol`` attribute, or a name derived from the class name (see ``op_symbol``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..engine import topological_order
from ..ops import Clip, GetItem, Transpose
from ..tensor import Tensor
from .text import format_number, shape_text

__all__ = ["GraphModel", "TensorNode", "OpNode", "ConstNode", "Edge", "op_symbol",
           "op_detail", "expression_name", "operands", "precedence"]


def op_symbol(ctx) -> str:
    """The short symbol drawn for an op: its class's ``symbol`` (``"×"`` for Mul, ``"σ"``
    for Sigmoid); for a ``Function`` without one, its class name in words
    (``BinaryCrossEntropyFunction`` -> ``"binary cross entropy"``)."""
    sym = getattr(ctx, "symbol", None)
    if isinstance(sym, str) and sym:
        return sym
    name = type(ctx).__name__
    base = re.sub(r"(Function|Op|Fn)$", "", name) or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).lower()


def op_detail(ctx) -> str:
    """Small text under an op's symbol: the axis of a reduction, an index, bounds."""
    parts = []
    axis = getattr(ctx, "axis", None)
    if axis is not None:
        parts.append(f"axis={axis}")
    if getattr(ctx, "keepdims", False):
        parts.append("keepdims")
    if isinstance(ctx, GetItem):
        parts.append(index_text(getattr(ctx, "idx", None)))
    elif isinstance(ctx, Clip):
        lo, hi = getattr(ctx, "lo", None), getattr(ctx, "hi", None)
        if lo is not None and hi is not None:
            parts.append(f"[{format_number(lo)}, {format_number(hi)}]")
        elif lo is not None:
            parts.append(f"min={format_number(lo)}")
        elif hi is not None:
            parts.append(f"max={format_number(hi)}")
    elif isinstance(ctx, Transpose) and getattr(ctx, "axes", None) is not None:
        parts.append(f"axes={tuple(int(a) for a in ctx.axes)}")
    return "  ".join(p for p in parts if p)


def index_text(idx) -> str:
    """An index as written in code, shortened: ``[1:, None, idx(3,)]``."""
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
            out.append(f"{'mask' if i.dtype == bool else 'idx'}{shape_text(i.shape)}")
        else:
            out.append(str(i))
    text = "[" + ", ".join(out) + "]"
    return text if len(text) <= 24 else text[:21] + "…]"


def scoped_name(t, seen: dict) -> str:
    """The name of an unnamed result made inside a module: its scope and op
    (``layers.1.sigmoid``; ``layers.1.sigmoid#2`` for the second such result), or ``""``
    outside any module."""
    ctx = t._ctx
    scope = getattr(ctx, "scope", "") if ctx is not None else ""
    if not scope:
        return ""
    base = re.sub(r"(Function|Op|Fn)$", "", type(ctx).__name__) or type(ctx).__name__
    name = f"{scope}.{re.sub(r'(?<=[a-z0-9])(?=[A-Z])', '_', base).lower()}"
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name}#{seen[name]}"


EXPRESSION_NAME_MAX = 12  # longer expressions leave a result named v<k>


ATOM = 9  # the precedence of a name: never put in parentheses
_PRECEDENCE = {"**": 4, "*": 3, "/": 3, "@": 3, "+": 2, "-": 2}
_UNARY = 3.5  # -a: above * and /, below ** (as in Python: -a**2 is -(a**2))


def precedence(ctx) -> float:
    """How tightly the expression an op writes binds: ``ATOM`` for a call (``tanh(a)``)."""
    infix = getattr(ctx, "infix", None)
    if not infix or isinstance(ctx, (GetItem, Transpose)):
        return ATOM
    if len(ctx.parents) == 1:
        return _UNARY
    return _PRECEDENCE.get(infix, 1)


def operands(ctx, args: list, precs: list) -> list:
    """``args`` as written as the operands of ``ctx``'s operator: in parentheses where
    the expression they stand for binds less tightly (``(a+b)*c``, ``a-(b-c)``, ``(a*b)ᵀ``)."""
    if isinstance(ctx, (GetItem, Transpose)):
        return [f"({a})" if p < ATOM else a for a, p in zip(args, precs)]
    me = precedence(ctx)
    if me == ATOM:
        return list(args)
    out = []
    for k, (a, p) in enumerate(zip(args, precs)):
        right = k == 1
        power = getattr(ctx, "infix", None) == "**"
        wrap = p < me or (p == me and (right != power))  # a-(b-c), (a**b)**c
        out.append(f"({a})" if wrap and p < ATOM else a)
    return out


def expression_name(ctx, args: list, precs: list, detail: str) -> str:
    """A short name for an unnamed result, written as the expression that made it from
    its inputs' names ``args`` (``a*b``, ``tanh(h)``, ``x[1:]``, ``wᵀ``); ``precs``:
    how tightly each binds (``precedence``). ``""`` when there is no short one: an
    argument without a name, an op with options (an axis) or with a symbol that is not a
    word, or more than ``EXPRESSION_NAME_MAX`` characters."""
    if not args or any(a is None for a in args):
        return ""
    infix = getattr(ctx, "infix", None)
    parts = operands(ctx, args, precs)
    if isinstance(ctx, GetItem) and len(args) == 1:
        text = f"{parts[0]}{detail}"
    elif isinstance(ctx, Transpose) and len(args) == 1 and not detail:
        text = f"{parts[0]}ᵀ"
    elif detail:
        return ""
    elif infix and len(args) in (1, 2):
        text = infix + parts[0] if len(args) == 1 else infix.join(parts)
    else:
        sym = op_symbol(ctx)
        if not (re.fullmatch(r"[A-Za-z_]\w*", sym) or len(sym) == 1):
            return ""
        text = f"{sym}({','.join(args)})"
    return text if len(text) <= EXPRESSION_NAME_MAX else ""


def const_text(value) -> str:
    """How a constant passed to an op is labelled: its value, or its kind and shape."""
    a = np.asarray(value)
    if a.dtype == object:
        return type(value).__name__
    if a.size == 1 and a.ndim == 0:
        if a.dtype == bool:
            return str(bool(a))
        return format_number(a.item()) if a.dtype.kind in "fc" else str(a.item())
    kind = "mask" if a.dtype == bool else "array"
    return f"{kind} {shape_text(a.shape)}"


@dataclass
class TensorNode:
    id: str
    tensor: object
    kind: str  # parameter | input | intermediate | output
    label: str  # the name shown: tensor.name, a scope or an expression, or "v<k>"
    named: bool
    scope: str = ""
    precedence: float = 9  # how tightly its name binds, if an expression (``a+b``: 2)


@dataclass
class OpNode:
    id: str
    ctx: object
    out: str  # id of the tensor node it produces
    symbol: str
    detail: str
    scope: str = ""


@dataclass
class ConstNode:
    id: str
    text: str
    scope: str = ""


@dataclass
class Edge:
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
    with gradients and highlights laid on top (see ``view.Overlay``).
    """

    nodes: dict = field(default_factory=dict)  # id -> node, in drawing order
    edges: list = field(default_factory=list)
    ids: dict = field(default_factory=dict)  # Tensor -> tensor node id
    root: str = ""
    op_of: dict = field(default_factory=dict)  # tensor node id -> op id making it
    in_edges: dict = field(default_factory=dict)  # op id -> edge indices, argument order
    out_edge: dict = field(default_factory=dict)  # op id -> edge index
    uses: dict = field(default_factory=dict)  # tensor id -> grad-carrying edges into ops
    kinds: dict = field(default_factory=dict)  # scope -> what it is ("Linear"), if known

    @classmethod
    def build(cls, root) -> GraphModel:
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: expected a Tensor, got {type(root).__name__}")
        m = cls()
        order = topological_order(root) if root.requires_grad else [root]
        n_ops = n_const = 0

        scoped_names: dict = {}  # "layers.1.sigmoid" -> how many tensors have it
        names: dict = {}  # tensor id -> its name, if it has one (not v<k>)
        taken: set = set()

        def made_from(t) -> str:
            args, precs = [], []
            for p in t._ctx.parents:
                if isinstance(p, Tensor):
                    name = names.get(m.ids[p])
                    prec = m.nodes[m.ids[p]].precedence
                elif p is None:
                    continue
                else:
                    text = const_text(p)
                    name = text if re.fullmatch(r"[\d.e+]+", text) else None
                    prec = ATOM
                args.append(name)
                precs.append(prec)
            text = expression_name(t._ctx, args, precs, op_detail(t._ctx))
            return "" if text in taken else text

        def add_tensor(t, kind):
            k = len(m.ids)
            tid = f"t{k}"
            named = bool(t.name)
            # unnamed: an unnamed root is L (as in dL/dx); a result made inside a module
            # is named after where it was made (scope and op: "layers.1.sigmoid"); one
            # made elsewhere from named inputs, by the expression if short ("a*b",
            # "tanh(h)"); any other is v0, v1, ...
            label = t.name if named else ("L" if t is root else scoped_name(t, scoped_names))
            expr = ""
            if not label and t._ctx is not None:
                label = expr = made_from(t)
            if label:
                names[tid] = label
                taken.add(label)
            label = label or f"v{k}"
            m.ids[t] = tid
            m.nodes[tid] = TensorNode(tid, t, kind, label, named or t is root,
                                      precedence=precedence(t._ctx) if expr else ATOM)
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
                    pending.append(Edge(m.ids[p], oid, m.ids[p], oid, j, carries))
                elif p is None:  # an optional input not given (a conv without bias)
                    continue
                else:
                    cid = f"c{n_const}"
                    n_const += 1
                    m.nodes[cid] = ConstNode(cid, const_text(p), ctx.scope)
                    pending.append(Edge(cid, oid, None, oid, j, False))
            m.nodes[oid] = OpNode(oid, ctx, "", op_symbol(ctx), op_detail(ctx), ctx.scope)
            m.kinds.update(ctx.scope_kinds)
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
            m.edges.append(Edge(oid, tid, tid, oid, None, True))
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

    def scope_title(self, scope: str) -> str:
        """How a module's box is titled: its scope and, when known, its kind
        (``layers.0 · Linear``)."""
        kind = self.kinds.get(scope)
        return f"{scope} · {kind}" if kind else scope

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
