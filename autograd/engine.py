"""The backward engine: one loop, written once.

``backward_steps(root, gradient)`` is a generator. It orders the graph (an iterative
depth-first search, so a graph 100,000 nodes deep is fine), then visits the nodes from
the root back to the leaves. At each node it runs the tensor's hooks, applies the chain
rule through the op's ``backward`` (upstream gradient in, one gradient per parent out),
sums each parent gradient down to the parent's shape (``unbroadcast``, the only place
broadcasting is undone) and adds it to what that parent has received so far. Each visit
yields a ``BackwardStep``.

``Tensor.backward()`` drains this generator; the step-through viewer (``trace``) and
anomaly mode read the very same steps.
"""

from __future__ import annotations

import sys
from collections import deque
from heapq import heappop, heappush, heappushpop
from typing import NamedTuple

import numpy as np

from . import function as _fn

__all__ = ["BackwardStep", "backward_steps", "topological_order", "unbroadcast"]


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


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        return np.broadcast_to(grad, shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape[extra:] != shape:  # not a broadcast of shape: a wrong gradient
        raise ValueError(f"unbroadcast: shape {grad.shape} is not a broadcast of {shape}")
    return grad.reshape(shape) if extra else grad


def topological_order(root) -> list:
    """Tensors that ``root`` depends on through gradient-carrying edges, parents first.

    The order is creation order (every tensor is made after its inputs), which is the
    order the backward loop visits in reverse. The walk uses an explicit stack, so
    depth is no limit.
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


def _seed(root, gradient):
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
    g = gradient._data if isinstance(gradient, _fn._Tensor) else np.asarray(gradient)
    if g.shape != data.shape:
        raise ShapeError(
            f"backward: gradient has shape {g.shape} but the output has shape "
            f"{tuple(data.shape)}; pass a gradient of the output's shape"
        )
    return g.astype(data.dtype, copy=False)


ShapeError = _fn.ShapeError


def _run_hooks(node, g):
    for hook in list(node._hooks.values()):
        r = hook(g)
        if r is not None:
            r = r._data if isinstance(r, _fn._Tensor) else np.asarray(r)
            if r.shape != g.shape:
                raise ShapeError(
                    f"hook {hook!r}: returned a gradient of shape {r.shape}, "
                    f"expected {g.shape}"
                )
            g = r
    return g


def _watch(node, g):
    """What a tensor with hooks or ``retain_grad()`` needs when its gradient is ready."""
    if node._hooks:
        g = _run_hooks(node, g)
    if node._retains and node._ctx is not None:  # a leaf stores its gradient anyway
        _store_grad(node, g)
    return g


def _references_when_alone() -> int:
    """What ``sys.getrefcount`` reports for an array held only by a caller's local
    variable and passed on as an argument: the count ``_store_grad`` sees for a
    gradient that nothing outside the backward loop refers to."""
    if not hasattr(sys, "getrefcount"):  # not CPython: always copy
        return 0

    def probe(a):
        return sys.getrefcount(a)

    a = np.empty(1)
    return probe(a)


_ALONE = _references_when_alone()


def _store_grad(node, g):
    """Accumulate into ``node.grad``, an array the node owns, in the node's dtype.

    A first gradient that nothing else refers to (not a view, not an array an op, a
    hook, another tensor or a recorded step still holds) is taken as it is; any
    other is copied, so that changing ``.grad`` in place never changes anything else.
    """
    if node.grad is None:
        if (type(g) is np.ndarray and g.base is None and g.dtype is node._data.dtype
                and sys.getrefcount(g) <= _ALONE):
            node.grad = g
        else:
            node.grad = np.array(g, dtype=node._data.dtype)
    else:
        node.grad = node.grad + g


def backward_steps(root, gradient=None, retain_graph: bool = False, *, record: bool = True):
    """Yield a ``BackwardStep`` per node, from ``root`` back to the leaves.

    ``record=False`` yields ``None`` instead of each step: the same loop, without
    writing down what it did (``Tensor.backward`` drains it that way).

    Nodes wait in a heap keyed by creation order; the newest waiting node is taken
    next. Everything that consumes a tensor was created after it, so by the time a
    tensor is taken, every contribution to its gradient has arrived: this is a reverse
    topological order found on the way, without a separate sorting pass.

    The newest parent that a step makes ready is held beside the heap, with its
    gradient (``nxt``, ``nxt_g``): it goes next unless a newer node waits. In a chain
    of ops it always goes next, so a chain never touches the heap.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph. Create the "
            "inputs with requires_grad=True, and do not compute it under no_grad()."
        )
    grads = {}  # what each node waiting in the heap has received so far
    heap = []  # (-creation order, node): the newest on top
    anomaly = _fn._anomaly
    detail = record or anomaly is not None  # someone reads what each step sent
    node, g = root, _seed(root, gradient)  # the node visited now, with its gradient
    while True:
        if node._watched:  # hooks, retain_grad
            g = _watch(node, g)
        ctx = node._ctx
        nxt = nxt_g = None
        if ctx is None:
            _store_grad(node, g)
            yield _new_step(BackwardStep, (node, g, ())) if record else None
        else:
            if ctx._released:
                raise _fn._released_error(ctx)
            out = ctx.backward(ctx, g)
            parents = ctx.parents
            if type(out) is not tuple:
                out = (out,)
            if len(out) != len(parents):
                raise RuntimeError(
                    f"{ctx.name}.backward returned {len(out)} gradient(s) but forward took "
                    f"{len(parents)} input(s); return one per input (None where there is "
                    "none)"
                )
            sent = ()
            for p, need, gp in zip(parents, ctx.needs_input_grad, out):
                if not need or gp is None:
                    continue
                pdata = p._data
                kind = type(gp)
                # two NumPy scalars of one type have the same shape () and dtype
                if kind is not type(pdata) or kind is _ndarray:
                    if gp.shape != pdata.shape:
                        gp = _fit_shape(ctx, gp, pdata.shape)
                    if gp.dtype is not pdata.dtype and gp.dtype != pdata.dtype:
                        gp = _fit_dtype(ctx, p, gp)
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
                if detail:
                    sent += ((p, gp),)
            if anomaly is not None:
                anomaly.on_backward(ctx, g, sent)
            if not retain_graph:  # free the node: its saved arrays go, a rerun raises
                ctx.saved = ()
                ctx._released = True
            yield _new_step(BackwardStep, (node, g, sent)) if record else None
            out = sent = gp = None  # hold no gradient beyond its step (see _store_grad)
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
