"""The backward engine: the chain rule applied to a recorded graph.

Read it in two parts.

1. ``reference_backward``: backpropagation as a learner expects it, in about twenty
   lines. Order the graph so that every tensor comes after its inputs, walk that order
   backwards, and at each op apply the chain rule: the gradient arriving at the op's
   output, times the op's local derivative (its ``backward``), is what each input
   receives; inputs used several times add up what they receive.
2. ``backward_steps``: the same algorithm, made fast and observable. It is the loop
   ``Tensor.backward()`` runs; the step-through viewer and anomaly mode read the very
   same steps. It finds the order on the way (no sorting pass), frees each node as soon
   as it is done, and yields one ``BackwardStep`` per node.

Both call ``chain_rule`` for the step at one node (run the op's backward, check what
it returned, sum each gradient down to its input's shape with ``unbroadcast``, the only
place broadcasting is undone) and ``accumulate`` to add a gradient into a leaf's
``.grad``. A property test checks that both give the same gradients on random graphs.
"""

from __future__ import annotations

import sys
from collections import deque
from heapq import heappop, heappush, heappushpop
from typing import NamedTuple

import numpy as np

from . import function as _fn
from . import ops as _ops
from .function import ShapeError

__all__ = ["BackwardStep", "backward_steps", "reference_backward", "chain_rule",
           "accumulate", "topological_order", "unbroadcast", "graph_backward",
           "once_differentiable", "backward_order", "array_vjp"]


# =========================================================================== reference


def reference_backward(root, gradient=None) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``: the plain algorithm.

    ``Tensor.backward`` computes the same gradients with ``backward_steps`` (which also
    runs hooks, frees the graph and can be stepped through).
    """
    grads = {root: seed_gradient(root, gradient)}  # dL/dt for every t reached so far
    for node in reversed(topological_order(root)):  # outputs before their inputs
        g = grads.pop(node, None)
        if g is None:
            continue  # no gradient reaches this tensor
        if node._ctx is None:  # a leaf: its gradient is complete
            accumulate(node, g)
            continue
        for parent, g_parent in chain_rule(node, g):  # dL/dparent = dL/dnode · dnode/dparent
            grads[parent] = grads[parent] + g_parent if parent in grads else g_parent


def topological_order(root) -> list:
    """Tensors that ``root`` depends on through gradient-carrying edges, inputs first.

    The order is creation order (every tensor is made after its inputs). The walk uses
    an explicit stack, so depth is no limit.
    """
    seen = {root}
    stack = [root]
    while stack:
        ctx = stack.pop()._ctx
        if ctx is not None:
            for p, need in zip(ctx.parents, ctx.needs_input_grad):
                if need and p not in seen:
                    seen.add(p)
                    stack.append(p)
    return sorted(seen, key=_creation_order)


def _creation_order(t):
    return t._seq


# =========================================================================== one node


def chain_rule(node, g) -> list:
    """The chain rule at one op: ``(parent, dL/dparent)`` for each input that needs a
    gradient, given ``g = dL/dnode``. Each gradient has its parent's shape and dtype."""
    ctx = node._ctx
    return [(p, fit_gradient(ctx, p, gp)) for p, need, gp
            in zip(ctx.parents, ctx.needs_input_grad, local_backward(node, g))
            if need and gp is not None]


def local_backward(node, g) -> tuple:
    """What the op that made ``node`` sends back to its inputs: its ``backward`` run on
    ``g = dL/dnode``, one entry per input (None where there is none), not yet fitted."""
    ctx = node._ctx
    if ctx._released:
        raise _fn.released_error(ctx)
    if node._seq < last_write:  # a tensor was written in place after this op ran
        _check_saved(node, ctx)
    out = ctx.backward(ctx, g)
    if type(out) is not tuple:
        out = (out,)
    if len(out) != len(ctx.parents):
        raise _count_error(ctx, out)
    return out


def _count_error(ctx, out) -> RuntimeError:
    return RuntimeError(
        f"{ctx.name}.backward returned {len(out)} gradient(s) but forward took "
        f"{len(ctx.parents)} input(s); return one per input (None where there is none)")


def fit_gradient(ctx, p, gp):
    """``gp`` as a gradient for input ``p`` of ``ctx``: in ``p``'s shape (broadcasting
    undone) and dtype. Numbers are accepted; anything else that is not an array raises."""
    pdata = p._data
    kind = type(gp)
    # two NumPy scalars of one type have the same shape () and dtype: nothing to do
    if kind is not type(pdata) or kind is _ndarray:
        if kind is not _ndarray and not isinstance(gp, np.generic):
            gp = _as_gradient(ctx, gp)
        if gp.shape != pdata.shape:
            gp = _fit_shape(ctx, gp, pdata.shape)
        if gp.dtype is not pdata.dtype and gp.dtype != pdata.dtype:
            gp = _fit_dtype(ctx, p, gp)
    return gp


def accumulate(node, g) -> None:
    """Add ``g`` into ``node.grad``, an array the node owns, in the node's dtype.

    The ownership rule: ``.grad`` never shares memory with anything else, so that
    changing it in place (an optimiser does) changes nothing else. A first gradient is
    copied, unless nothing else can see it: a fresh array (not a view) whose only
    reference is the engine's (checked with CPython's reference count; where an
    interpreter has none, ``TAKE_UNSHARED`` is False and every first gradient is copied).
    """
    if node.grad is None:
        if (TAKE_UNSHARED and type(g) is _ndarray and g.base is None
                and g.dtype is node._data.dtype and sys.getrefcount(g) <= _ALONE):
            node.grad = g
        else:
            node.grad = np.array(g, dtype=node._data.dtype)
    else:
        node.grad = node.grad + g


def _references_when_alone() -> int:
    """What ``sys.getrefcount`` reports for an array held only by a caller's local
    variable and passed on as an argument: the count ``accumulate`` sees for a gradient
    that nothing outside the backward loop refers to."""

    def probe(a):
        return sys.getrefcount(a)

    a = np.empty(1)
    return probe(a)


TAKE_UNSHARED = hasattr(sys, "getrefcount")  # False: always copy (see ``accumulate``)
_ALONE = _references_when_alone() if TAKE_UNSHARED else 0


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        return np.broadcast_to(grad, shape)
    inner = tuple(i + extra for i, n in enumerate(shape)
                  if n == 1 and grad.shape[i + extra] != 1)
    axes = tuple(range(extra)) + inner
    if axes:
        # one sum; with leading axes only, no reshape after it (one op on Tensors),
        # else the summed inner axes kept as 1s and the leading ones dropped below
        keep = bool(inner)
        rows = _ops.sum_rows(grad, axes, keep)  # on an array, as the Sum op sums
        grad = grad.sum(axis=axes, keepdims=keep) if rows is None else rows
        if not keep:
            extra = 0
    if grad.shape[extra:] != shape:  # not a broadcast of shape: a wrong gradient
        raise ValueError(f"unbroadcast: shape {grad.shape} is not a broadcast of {shape}")
    return grad.reshape(shape) if extra else grad


def seed_gradient(root, gradient):
    """dL/droot: ones for a single value, else the ``gradient=`` the caller passed."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph. Create the "
            "inputs with requires_grad=True, and do not compute it under no_grad()."
        )
    data = root._data
    if gradient is None:
        if data.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {tuple(data.shape)}, not a single "
                "value, so there is no implicit seed gradient. Reduce it first "
                "(e.g. y.sum().backward() or y.mean().backward()) or pass "
                "gradient= an array of the same shape (dL/dy)."
            )
        return np.ones(data.shape, data.dtype)  # (np.ones_like is slower on a 0-d value)
    g = gradient._data if isinstance(gradient, _fn.tensor_type()) else np.asarray(gradient)
    if g.shape != data.shape:
        raise ShapeError(
            f"backward: gradient has shape {g.shape} but the output has shape "
            f"{tuple(data.shape)}; pass a gradient of the output's shape"
        )
    return g.astype(data.dtype, copy=False)


# Writes in place are stamped on the clock that orders tensors (``creation_order``):
# a write stamped after a node's output was made happened after its op saved its values.
last_write = -1  # the stamp of the latest write


def note_write(tensor) -> None:
    """Record that ``tensor``'s values were changed in place (an optimiser step, a write
    through ``.data``): a node that saved them before then refuses to run backward."""
    global last_write
    last_write = tensor._written = next(_fn.creation_order)


def _check_saved(node, ctx) -> None:
    """Raise if a tensor whose values ``ctx`` saved for backward was written since."""
    saved = [s for s in ctx.saved if isinstance(s, np.ndarray)]
    Tensor = _fn.tensor_type()
    for t in (node, *ctx.parents):
        if (isinstance(t, Tensor) and t._written > node._seq
                and any(np.may_share_memory(s, t._data) for s in saved)):
            who = "its output" if t is node else "an input"
            name = f" {t.name!r}" if t.name else ""
            raise RuntimeError(
                f"{ctx.name}.backward: {who}{name} of shape {t.shape} was changed in "
                f"place after {ctx.name} saved it for backward (by an optimiser step, a "
                "write through .data, or the like), so the gradient would use the new "
                f"values. Run backward before changing it (e.g. loss.backward() before "
                "optimizer.step()), compute the forward pass again after the change, or "
                "change a copy.")


# =========================================================================== the loop


class BackwardStep(NamedTuple):
    """One visit of the backward loop.

    ``node``: the Tensor whose gradient is now complete; ``grad``: that gradient
    (dL/dnode); ``sent``: ``(parent, gradient)`` pairs, what the chain rule passed to
    each parent (empty for a leaf, whose gradient went into ``.grad``).
    """

    node: object
    grad: np.ndarray
    sent: tuple


_new_step = tuple.__new__  # _new_step(BackwardStep, (node, grad, sent)): the fastest way
_ndarray = np.ndarray


def _watch(node, g):
    """What a tensor with hooks or ``retain_grad()`` needs when its gradient is ready."""
    for hook in list(node._hooks.values()) if node._hooks else ():
        r = hook(g)
        if r is not None:
            r = r._data if isinstance(r, _fn.tensor_type()) else np.asarray(r)
            if r.shape != g.shape:
                raise ShapeError(
                    f"hook {hook!r}: returned a gradient of shape {r.shape}, "
                    f"expected {g.shape}"
                )
            g = r
    if node._retains and node._ctx is not None:  # a leaf stores its gradient anyway
        accumulate(node, g)
    return g


def backward_steps(root, gradient=None, retain_graph: bool = False, *, record: bool = True):
    """Yield a ``BackwardStep`` per node, from ``root`` back to the leaves.

    ``record=False`` yields ``None`` instead of each step: the same loop, without
    writing down what it did (``Tensor.backward`` drains it that way).

    This is ``reference_backward`` with the order found on the way: nodes wait in a
    heap keyed by creation order and the newest waiting node is taken next. Everything
    that consumes a tensor was created after it, so by the time a tensor is taken,
    every contribution to its gradient has arrived.

    The newest parent that a step makes ready is held beside the heap, with its
    gradient (``nxt``, ``nxt_g``): it goes next unless a newer node waits. In a chain
    of ops it always goes next, so a chain never touches the heap.
    """
    grads = {}  # what each node waiting in the heap has received so far
    heap = []  # (-creation order, node): the newest on top
    anomaly = _fn.get_anomaly_hook()
    detail = record or anomaly is not None  # someone reads what each step sent
    node, g = root, seed_gradient(root, gradient)  # the node visited now, with its gradient
    while True:
        if node._watched:  # hooks, retain_grad
            g = _watch(node, g)
        ctx = node._ctx
        nxt = nxt_g = None
        if ctx is None:
            accumulate(node, g)
            yield _new_step(BackwardStep, (node, g, ())) if record else None
        else:
            # chain_rule(node, g) and local_backward spelled out, as the hot path: one
            # pass over the inputs, no list, no call but the op's own backward
            if ctx._released:
                raise _fn.released_error(ctx)
            if node._seq < last_write:
                _check_saved(node, ctx)
            out = ctx.backward(ctx, g)
            if type(out) is not tuple:
                out = (out,)
            parents = ctx.parents
            if len(out) != len(parents):
                raise _count_error(ctx, out)
            sent = ()
            for p, need, gp in zip(parents, ctx.needs_input_grad, out):
                if not need or gp is None:
                    continue
                pdata = p._data  # fit_gradient, unless gp already fits (the usual case)
                kind = type(gp)
                if kind is not type(pdata) or (kind is _ndarray and (
                        gp.shape != pdata.shape or gp.dtype is not pdata.dtype)):
                    gp = fit_gradient(ctx, p, gp)
                if detail:
                    sent += ((p, gp),)
                if p is nxt:  # the same input twice (x * x)
                    nxt_g = nxt_g + gp
                else:
                    prev = grads.get(p)
                    if prev is not None:
                        grads[p] = prev + gp
                    elif nxt is None:
                        nxt, nxt_g = p, gp
                    elif p._seq > nxt._seq:
                        grads[nxt] = nxt_g
                        heappush(heap, (-nxt._seq, nxt))
                        nxt, nxt_g = p, gp
                    else:
                        grads[p] = gp
                        heappush(heap, (-p._seq, p))
            if anomaly is not None:
                anomaly.on_backward(ctx, g, sent)
            if not retain_graph:  # free the node: its saved arrays go, a rerun raises
                ctx.saved = ()
                ctx._released = True
            yield _new_step(BackwardStep, (node, g, sent)) if record else None
            out = sent = gp = None  # hold no gradient beyond its step (see accumulate)
        if nxt is not None:
            if heap and heap[0][0] < -nxt._seq:  # a newer node waits: it goes first
                grads[nxt] = nxt_g
                node = heappushpop(heap, (-nxt._seq, nxt))[1]
                g = grads.pop(node)
            else:
                node, g = nxt, nxt_g
        elif heap:
            node = heappop(heap)[1]
            g = grads.pop(node)
        else:
            return


def _as_gradient(ctx, gp):
    """A gradient that backward returned as something other than an array."""
    if isinstance(gp, (bool, int, float)):
        return np.asarray(gp)
    raise TypeError(
        f"{ctx.name}.backward returned a gradient of type {type(gp).__name__}; return a "
        "NumPy array (or a number, or None for an input without a gradient) per input")


def _fit_dtype(ctx, parent, grad):
    dtype = parent._data.dtype
    if dtype.kind not in "fc":
        made_by = parent._ctx.name if parent._ctx is not None else "a leaf"
        raise TypeError(
            f"{ctx.name}.backward: its input (made by {made_by}) has dtype {dtype}, which "
            "cannot carry a gradient; ops on tensors that require grad must return a "
            "float dtype (cast inside the op's forward)"
        )
    return grad.astype(dtype)


def _fit_shape(ctx, grad, shape):
    try:
        return unbroadcast(grad, shape)
    except ValueError:
        raise ShapeError(
            f"{ctx.name}.backward: a gradient of shape {grad.shape} cannot be summed to "
            f"its input's shape {shape}; backward must return each input's gradient in "
            "that input's shape or the output's (broadcast) shape"
        ) from None


def run_backward(root, gradient=None, retain_graph: bool = False) -> None:
    """Drain ``backward_steps``: what ``Tensor.backward`` does."""
    deque(backward_steps(root, gradient, retain_graph, record=False), maxlen=0)


# =========================================================================== create_graph
# Derivatives of derivatives. With ``create_graph=True`` the backward pass is itself
# recorded: each op's ``backward`` runs on Tensors instead of arrays (the upstream
# gradient, and the inputs and outputs its saved arrays came from), with grad mode on,
# so the very formula that gives first derivatives records the graph of the gradient.
# One formula per op: nothing here knows any op. The first-order loop above is untouched.


def graph_backward(root, gradient=None, inputs=None, retain_graph: bool = True,
                   create_graph: bool = True):
    """Backpropagate from ``root`` recording the graph of every gradient.

    ``inputs=None``: add each leaf's gradient (a Tensor) into its ``.grad``, as
    ``backward(create_graph=True)``. Otherwise a list of the gradients (Tensors, or None
    where ``root`` does not depend on the input) of ``root`` with respect to ``inputs``,
    leaving every ``.grad`` alone, as ``torch.autograd.grad``. ``create_graph=False``
    runs the same Tensor loop without recording (gradients of chosen inputs only).

    The whole pass runs in one grad mode, on when recording (as PyTorch's engine does):
    each op's backward, the sums of gradients that meet at a tensor and the hooks.
    """
    Tensor = _fn.tensor_type()
    if not create_graph and inputs is not None:
        return _array_grads(root, gradient, inputs, retain_graph, Tensor)
    grads = {root: _seed_tensor(root, gradient, Tensor)}
    wanted = None if inputs is None else {id(t): None for t in inputs}
    # anomaly mode checks what each op's backward sends, as in the first-order loop; the
    # ops that a backward formula runs on Tensors are not checked one by one (their
    # forward is that backward's arithmetic)
    anomaly = _fn.get_anomaly_hook()
    if anomaly is not None:
        _fn.set_anomaly_hook(None)
    try:
        with _fn.enable_grad() if create_graph else _fn.no_grad():
            _graph_pass(root, grads, wanted, retain_graph, create_graph, anomaly, Tensor)
    finally:
        if anomaly is not None:
            _fn.set_anomaly_hook(anomaly)
    if wanted is not None:
        return [wanted[id(t)] for t in inputs]
    return None


def _graph_pass(root, grads, wanted, retain_graph, create_graph, anomaly, Tensor) -> None:
    """The loop of ``graph_backward``."""
    for node in backward_order(root):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node._watched:
            g = _watch_tensor(node, g, Tensor)
        if wanted is not None and id(node) in wanted:
            wanted[id(node)] = g
        ctx = node._ctx
        if ctx is None:
            if wanted is None:
                node.grad = g if node.grad is None else node.grad + g
            continue
        sent = _graph_chain_rule(node, g, Tensor, create_graph)
        for parent, gp in sent:
            prev = grads.get(parent)
            grads[parent] = gp if prev is None else prev + gp
        if anomaly is not None:  # the values, as the first-order loop hands them
            anomaly.on_backward(ctx, g._data, [(p, gp._data) for p, gp in sent])
        if not retain_graph:
            ctx.saved = ()
            ctx._released = True


def _array_grads(root, gradient, inputs, retain_graph, Tensor) -> list:
    """``graph_backward(..., create_graph=False)``: the gradients of chosen inputs by
    the first-order chain rule on arrays (as ``reference_backward``), as Tensors that
    carry no graph; no ``.grad`` is touched."""
    if isinstance(gradient, Tensor):
        gradient = gradient._data
    order = backward_order(root)
    got = array_vjp(order, root, seed_gradient(root, gradient), inputs, retain_graph)
    return [None if g is None else Tensor._leaf(g) for g in got]


def backward_order(root) -> list:
    """The nodes that a backward pass from ``root`` visits, outputs before their inputs
    (``topological_order`` reversed): found once, it serves any number of passes
    (``array_vjp``), one per row of a Jacobian."""
    order = topological_order(root)
    order.reverse()
    return order


def array_vjp(order, root, seed, inputs, retain_graph: bool = True) -> list:
    """d(root · seed)/d(inputs) as arrays (None where ``root`` does not depend on an
    input): the first-order chain rule on arrays along ``order`` (``backward_order(root)``),
    leaving every ``.grad`` alone. Hooks see each gradient as a Tensor, as under
    ``create_graph``."""
    grads = {root: seed}
    wanted = {id(t): None for t in inputs}
    anomaly = _fn.get_anomaly_hook()
    for node in order:
        g = grads.pop(node, None)
        if g is None:
            continue
        if node._watched:
            g = _watch_tensor(node, _fn.tensor_type()._leaf(g), _fn.tensor_type())._data
        if id(node) in wanted:
            wanted[id(node)] = g
        ctx = node._ctx
        if ctx is None:
            continue
        # chain_rule(node, g) spelled out, as in backward_steps: no list, no call but
        # the op's own backward where the gradients already fit
        if ctx._released:
            raise _fn.released_error(ctx)
        if node._seq < last_write:
            _check_saved(node, ctx)
        out = ctx.backward(ctx, g)
        if type(out) is not tuple:
            out = (out,)
        parents = ctx.parents
        if len(out) != len(parents):
            raise _count_error(ctx, out)
        for p, need, gp in zip(parents, ctx.needs_input_grad, out):
            if not need or gp is None:
                continue
            pdata = p._data
            kind = type(gp)
            if kind is not type(pdata) or (kind is _ndarray and (
                    gp.shape != pdata.shape or gp.dtype is not pdata.dtype)):
                gp = fit_gradient(ctx, p, gp)
            prev = grads.get(p)
            grads[p] = gp if prev is None else prev + gp
        if anomaly is not None:
            anomaly.on_backward(ctx, g, [(p, gp) for p, gp in zip(parents, out)
                                         if gp is not None])
        if not retain_graph:
            ctx.saved = ()
            ctx._released = True
    return [wanted[id(t)] for t in inputs]


def _seed_tensor(root, gradient, Tensor):
    if isinstance(gradient, Tensor):
        if gradient.shape != root.shape:
            raise ShapeError(
                f"backward: gradient has shape {gradient.shape} but the output has shape "
                f"{tuple(root.shape)}; pass a gradient of the output's shape")
        return gradient  # it may carry a graph of its own (a vector-Jacobian product)
    return Tensor._leaf(seed_gradient(root, gradient))


def _watch_tensor(node, g, Tensor):
    """Hooks and ``retain_grad`` under ``create_graph``: the gradient is a Tensor."""
    for hook in list(node._hooks.values()) if node._hooks else ():
        r = hook(g)
        if r is not None:
            r = r if isinstance(r, Tensor) else Tensor(r)
            if r.shape != g.shape:
                raise ShapeError(f"hook {hook!r}: returned a gradient of shape {r.shape}, "
                                 f"expected {g.shape}")
            g = r
    if node._retains and node._ctx is not None:
        node.grad = g if node.grad is None else node.grad + g
    return g


def _graph_chain_rule(node, g, Tensor, record=True) -> list:
    """``chain_rule`` on Tensors: ``(parent, dL/dparent)`` pairs whose gradients carry
    the graph of how they were computed (``record``: the grad mode its caller set)."""
    ctx = node._ctx
    if ctx._released:
        raise _fn.released_error(ctx)
    if node._seq < last_write:
        _check_saved(node, ctx)
    out = _backward_on_tensors(ctx, node, g, Tensor)
    if type(out) is not tuple:
        out = (out,)
    parents = ctx.parents
    if len(out) != len(parents):
        raise _count_error(ctx, out)
    sent = []
    for p, need, gp in zip(parents, ctx.needs_input_grad, out):
        if not need or gp is None:
            continue
        if type(gp) is not Tensor and not isinstance(gp, Tensor):
            if (record and isinstance(gp, np.ndarray) and gp.ndim and gp.size
                    and _tracked(g, parents, Tensor)):
                raise RuntimeError(
                    f"{ctx.name}.backward returned a NumPy array under create_graph=True, "
                    "so the gradient left the graph and its own derivative would be "
                    "missing. Write backward with operations that work on Tensors (the "
                    "operators, np.* functions that dispatch to ops), or mark it "
                    "@once_differentiable to refuse double backward")
            gp = Tensor._leaf(np.asarray(gp))
        if gp._data.shape != p.shape:
            gp = _fit_shape(ctx, gp, p.shape)
        sent.append((p, gp))
    return sent


def _tracked(g, parents, Tensor) -> bool:
    """Whether a gradient at this op should carry a graph: the upstream gradient or an
    input of the op requires grad."""
    return g.requires_grad or any(isinstance(p, Tensor) and p.requires_grad for p in parents)


def differentiable_backward(ctx, node, g, record=True):
    """Run ``ctx.backward`` on Tensors with grad mode on (``record``; else off): its
    saved arrays replaced by the Tensors they came from, so that what it computes
    records a graph.

    Raises, naming the op, where that cannot give the right derivative: a backward
    marked ``once_differentiable``, a saved array that is neither an input nor the
    output (an intermediate result: its graph is unknown), or a backward that fails on
    Tensors (in-place writes, ``np.add.at``, ``out=``)."""
    with _fn.enable_grad() if record else _fn.no_grad():
        return _backward_on_tensors(ctx, node, g, _fn.tensor_type())


def _backward_on_tensors(ctx, node, g, Tensor):
    """``differentiable_backward`` in the grad mode that its caller set."""
    backward = ctx.backward
    if getattr(backward, "once_differentiable", False):
        raise RuntimeError(
            f"{ctx.name}: its backward is marked once_differentiable, so there is no "
            "derivative of its gradient (no double backward). Call backward without "
            f"create_graph=True, or write {ctx.name}.backward with operations that work "
            "on Tensors")
    saved = ctx.saved
    if saved:
        parents = ctx.parents
        n = len(parents)
        tensors = []
        for i, s in enumerate(saved):
            if i < n and getattr(parents[i], "_data", None) is s and s is not None:
                tensors.append(parents[i])  # saved in the order of the inputs: Mul, ...
            else:
                tensors.append(_saved_tensor(ctx, node, i, s))
        ctx.saved = tuple(tensors)
    try:
        return backward(ctx, g)
    except Exception as err:
        raise RuntimeError(
            f"{ctx.name}: its backward cannot run on Tensors, so it has no double backward "
            f"(create_graph=True): {type(err).__name__}: {err}") from err
    finally:
        ctx.saved = saved


def _saved_tensor(ctx, node, i, s):
    """The Tensor that saved array ``s`` (the ``i``-th) came from: an input of ``ctx``
    or its output. Non-float arrays (masks, indices) and constants stay as they are."""
    if s is None or isinstance(s, _fn.tensor_type()):
        return s
    parents = ctx.parents
    Tensor = _fn.tensor_type()
    if i < len(parents) and isinstance(parents[i], Tensor) and parents[i]._data is s:
        return parents[i]  # saved in the order of the inputs: Mul, MatMul, ...
    if node._data is s:
        return node
    for p in parents:
        if p is s:
            return s  # a constant input (an array, not a Tensor)
        if isinstance(p, Tensor) and p._data is s:
            return p
    dtype = getattr(s, "dtype", None)
    if dtype is None or dtype.kind not in "fc":
        return s
    if np.ndim(s) == 0 and any(not isinstance(p, Tensor) for p in parents):
        return s  # a number the op was given (np.float64(2) * x32 holds it converted)
    raise RuntimeError(
        f"{ctx.name}: it has no double backward yet: its forward saves an array of shape "
        f"{np.shape(s)} computed inside the op, which is neither an input nor the output, "
        "so the graph of its gradient is unknown. Save inputs and outputs only "
        "(ctx.saved = (a, out)) and compute the rest in backward")


def once_differentiable(backward):
    """Mark a ``backward`` as giving first derivatives only (PyTorch's decorator of the
    same name): under ``create_graph=True`` the engine refuses it, naming the op, rather
    than compute a gradient whose own derivative would be wrong."""
    backward.once_differentiable = True
    return backward
