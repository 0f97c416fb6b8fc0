"""Functions over several tensors, and the functional forms of differentiation."""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from . import engine, ops
from .function import enable_grad, no_grad
from .tensor import Tensor

__all__ = ["concat", "stack", "where", "maximum", "minimum", "grad", "value_and_grad",
           "squeeze", "unsqueeze", "expand_dims", "flatten", "logsumexp", "var", "std", "norm",
           "cumsum", "pad", "take_along_axis", "index_add", "scatter_add", "einsum",
           "conv1d", "conv2d", "max_pool2d", "avg_pool2d",
           "broadcast_to", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian", "hvp"]


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate``)."""
    return ops.Concat.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors along a new axis (``np.stack``)."""
    return ops.Stack.apply(*tensors, axis=axis)


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y`` (``np.where``); no gradient to the mask."""
    cond = condition.numpy() if isinstance(condition, Tensor) else condition
    return ops.Where.apply(cond, x, y)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; at ties each side gets half the gradient."""
    return ops.Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum; at ties each side gets half the gradient."""
    return ops.Minimum.apply(a, b)


# ----------------------------------------------------------------- padding, gathering, einsum


def pad(t, pad_width, value=0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width``: ``n`` (every side of every axis),
    ``(before, after)`` (every axis) or one ``(before, after)`` pair per axis, first
    axis first. ``torch.nn.functional.pad(x, p, value=v)`` lists the pairs the other way
    round, from the last axis backwards and flattened: ``ag.pad(t, ((0, 0), (1, 2), (3,
    4)))`` is ``F.pad(x, (3, 4, 1, 2))``. The gradient is the output's with the padding
    cut off."""
    return ops.Pad.apply(t, pad_width=pad_width, value=value)


def take_along_axis(t, indices, axis) -> Tensor:
    """``np.take_along_axis``: ``t``'s values at ``indices`` along ``axis`` (``indices``
    broadcast against ``t`` on the other axes; ``axis=None`` reads the flattened
    tensor). PyTorch's ``torch.gather(t, dim, index)`` is ``t.gather(dim, index)``. The
    gradient is scattered back, repeats summed."""
    idx = indices.numpy() if isinstance(indices, Tensor) else indices
    if axis is None:
        t, axis = ops.Reshape.apply(t, shape=(-1,)), 0
    return ops.TakeAlongAxis.apply(t, indices=idx, axis=axis)


def index_add(t, dim, index, source, *, alpha=1) -> Tensor:
    """``t.index_add(dim, index, source)``, PyTorch's ``index_add``: a copy of ``t``
    with ``alpha * source[..., i, ...]`` added to ``t[..., index[i], ...]`` along
    ``dim``, repeated indices adding up; gradients reach ``t`` and ``source``. (The
    scatter-add of an embedding's backward: ``torch.scatter_add`` with a 1-D index.)"""
    return t.index_add(dim, index, source, alpha=alpha)


def scatter_add(t, dim, index, src) -> Tensor:
    """``torch.scatter_add(t, dim, index, src)``, the adjoint of ``t.gather(dim,
    index)``: ``src[i][j]`` added to ``t[i][index[i][j]]`` for ``dim=1``, repeats adding
    up; gradients reach ``t`` and ``src`` (0 where ``index`` does not reach)."""
    return t.scatter_add(dim, index, src)


def einsum(subscripts, *tensors) -> Tensor:
    """``np.einsum`` / ``torch.einsum`` on tensors: ``'ij,jk->ik'`` (explicit output) or
    ``'ij,jk'`` (implicit: the letters that appear once, alphabetically). Every axis is
    named by a letter (no ``...``). Each operand's gradient is again an einsum."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])  # torch.einsum(eq, [a, b])
    return ops.Einsum.apply(*tensors, subscripts=subscripts)


# ----------------------------------------------------------------------------------- pooling


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """PyTorch's ``max_pool2d`` over the last two axes of (N, C, H, W) or (C, H, W):
    the largest value of each ``kernel_size`` window, windows ``stride`` apart (default:
    ``kernel_size``), ``padding`` of -inf on each side (at most half the kernel). The
    gradient goes to each window's winner (at a tie, the first)."""
    return ops.MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """PyTorch's ``avg_pool2d`` (``count_include_pad=True``) over the last two axes of
    (N, C, H, W) or (C, H, W): the mean of each window, zero padding counted."""
    return ops.AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def value_and_grad(fn, argnums=0):
    """``value_and_grad(f)(*args) -> (f(*args), df/dargs[argnums])``.

    ``f`` must return a single value. The chosen arguments may be arrays, numbers or
    Tensors; each is differentiated as a fresh leaf, so ``f``'s callers are untouched.
    Gradients come back as ndarrays: one, or a tuple when ``argnums`` is a tuple.

    Called inside another differentiating function (``grad``, ``jacobian``,
    ``hessian``, ...), it composes, as JAX's ``grad`` does: a Tensor argument that is
    part of the outer graph is differentiated through rather than detached, and the
    gradients come back as Tensors with a graph (``create_graph=True``), so that
    ``ag.grad(ag.grad(f))`` is the second derivative.
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        nested = _transforms.depth > 0
        args = list(args)
        leaves = []
        for i in nums:
            if i >= len(args):
                raise TypeError(f"grad: argnums={argnums} but only {len(args)} "
                                "positional argument(s) were given")
            a = args[i]
            if nested and isinstance(a, Tensor) and a.requires_grad:
                leaf = a  # part of the outer graph: differentiate through it
            else:
                leaf = _fresh_leaf(a)
            args[i] = leaf
            leaves.append(leaf)
        with _transform():
            out = fn(*args, **kwargs)
        if not isinstance(out, Tensor) or out.size != 1:
            shape = out.shape if isinstance(out, Tensor) else type(out).__name__
            raise TypeError(f"grad: the function must return a one-value Tensor, got {shape}")
        if nested:
            grads = tuple(_zeros_if_none(g, leaf) for g, leaf in zip(
                _graph_grads(out, leaves), leaves))
            return out, (grads[0] if single else grads)
        if out.requires_grad:
            out.backward()
        grads = tuple(leaf.grad if leaf.grad is not None else np.zeros_like(leaf.numpy())
                      for leaf in leaves)
        with no_grad():
            value = out.detach()
        return value, (grads[0] if single else grads)

    return wrapped


def grad(fn, argnums=0):
    """``grad(f)(*args)``: the gradient of a single-valued ``f`` (see ``value_and_grad``)."""
    vg = value_and_grad(fn, argnums)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    return wrapped


# ----------------------------------------------------------------------- the
# functions NumPy / PyTorch have for the Tensor methods (x may be a Tensor, array or list)


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def squeeze(x, axis=None, **kwargs) -> Tensor:
    """``x`` without its size-1 axes (or those of ``axis``), as ``torch.squeeze``."""
    return _tensor(x).squeeze(axis, **kwargs)


def unsqueeze(x, dim) -> Tensor:
    """``x`` with a new size-1 axis at ``dim`` (``torch.unsqueeze``)."""
    return _tensor(x).unsqueeze(dim)


def expand_dims(x, axis) -> Tensor:
    """``x`` with new size-1 axes at ``axis`` (``np.expand_dims``)."""
    return _tensor(x).expand_dims(axis)


def flatten(x, start_dim=0, end_dim=-1) -> Tensor:
    """Axes ``start_dim`` to ``end_dim`` of ``x`` merged into one (``torch.flatten``)."""
    return _tensor(x).flatten(start_dim, end_dim)


def logsumexp(x, axis=None, keepdims=False, **kwargs) -> Tensor:
    """``log(exp(x).sum(axis))``, computed without overflow (``torch.logsumexp``)."""
    return _tensor(x).logsumexp(axis, keepdims, **kwargs)


def var(x, axis=None, ddof=0, keepdims=False, **kwargs) -> Tensor:
    """Variance over ``axis``, dividing by ``n - ddof`` (see ``Tensor.var``)."""
    return _tensor(x).var(axis, ddof, keepdims, **kwargs)


def std(x, axis=None, ddof=0, keepdims=False, **kwargs) -> Tensor:
    """Standard deviation over ``axis`` (see ``Tensor.std``)."""
    return _tensor(x).std(axis, ddof, keepdims, **kwargs)


def norm(x, ord=2, axis=None, keepdims=False, **kwargs) -> Tensor:
    """Vector p-norm (``ord`` 1, 2 or inf) over ``axis`` (``torch.linalg.vector_norm``)."""
    return _tensor(x).norm(ord, axis, keepdims, **kwargs)


def cumsum(x, axis=None, **kwargs) -> Tensor:
    """Running sum along ``axis`` (``np.cumsum``; PyTorch's ``dim=`` too)."""
    return _tensor(x).cumsum(axis, **kwargs)


# ----------------------------------------------------------------------- convolution


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """PyTorch's ``conv2d``: ``x`` (N, C, H, W) or unbatched (C, H, W), ``weight``
    (out_channels, C / groups, kh, kw), ``bias`` (out_channels,) or None. ``stride``,
    ``padding`` (zeros on both sides) and ``dilation`` are an int or a pair (rows,
    columns); ``padding`` may also be ``"valid"`` (none) or ``"same"`` (stride 1: the
    output as large as the input, an odd number of zeros split with the extra one after,
    as in PyTorch). One op (``ops.Conv2d``): one graph node."""
    x, padding = _same_padding("conv2d", 2, x, weight, stride, padding, dilation)
    return ops.Conv2d.apply(x, weight, bias, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """PyTorch's ``conv1d``: ``x`` (N, C, L) or unbatched (C, L), ``weight``
    (out_channels, C / groups, k), ``bias`` (out_channels,) or None; ``stride``,
    ``padding`` and ``dilation`` an int (or a 1-tuple); ``padding`` may also be
    ``"valid"`` or ``"same"``. One op (``ops.Conv1d``)."""
    x, padding = _same_padding("conv1d", 1, x, weight, stride, padding, dilation)
    return ops.Conv1d.apply(x, weight, bias, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def _same_padding(op, nsp, x, weight, stride, padding, dilation):
    """``(x, padding)`` with PyTorch's padding strings resolved: ``"valid"`` is no
    padding; ``"same"`` (stride 1 only) pads ``dilation·(k - 1)`` zeros per spatial axis,
    so the output is as large as the input, half before and half after; where that
    total is odd the one left over goes after, added by a ``pad`` of ``x`` (the
    convolution's own padding is the same on both sides). Ints pass through."""
    if not isinstance(padding, str):
        return x, padding
    if padding == "valid":
        return x, 0
    if padding != "same":
        raise ValueError(f"{op}: padding={padding!r} is not one of 'same', 'valid'; give "
                         "one of them, or the zeros per side as ints")
    if any(s != 1 for s in ops._conv_tuple(op, "stride", stride, nsp, 1)):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         "(the output cannot match the input's size); give the padding "
                         "as ints")
    kernel = np.shape(weight)[2:]
    if len(kernel) != nsp:
        return x, 0  # a weight of the wrong rank: the convolution names the shapes
    dilation = ops._conv_tuple(op, "dilation", dilation, nsp, 1)
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    before = tuple(t // 2 for t in total)
    after = [t - b for t, b in zip(total, before)]
    if after != list(before):
        lead = [(0, 0)] * (np.ndim(x) - nsp)
        x = pad(x, lead + [(0, a - b) for a, b in zip(after, before)])
    return x, before


def broadcast_to(x, shape) -> Tensor:
    """``x`` repeated along new or length-1 axes to ``shape`` (``np.broadcast_to``,
    PyTorch's ``x.expand(shape)``); the gradient is summed back over them."""
    shape = tuple(int(n) for n in shape) if isinstance(shape, (tuple, list)) else (int(shape),)
    return ops.BroadcastTo.apply(_tensor(x), shape=shape)


# ----------------------------------------------------------------------- derivatives of
# derivatives: vjp, jvp, jacobian, jacfwd, hessian, hvp (JAX's and PyTorch's names)


class _Transforms(threading.local):
    def __init__(self):
        self.depth = 0  # how many differentiating functions are running f in this thread


_transforms = _Transforms()


@contextlib.contextmanager
def _transform():
    """While ``f`` runs inside a differentiating function: a ``grad`` called in there
    composes (keeps the graph of its gradient) instead of starting afresh."""
    _transforms.depth += 1
    try:
        with enable_grad():
            yield
    finally:
        _transforms.depth -= 1


def _fresh_leaf(a) -> Tensor:
    data = a.data if isinstance(a, Tensor) else a
    leaf = Tensor(data)
    if leaf.dtype.kind != "f":  # ints and bools are differentiated as float64
        leaf = Tensor(leaf.data, dtype=np.float64)
    leaf.requires_grad = True
    return leaf


def _leaves(args, nums, nested):
    """``args`` with the arguments at ``nums`` made leaves to differentiate (an argument
    of an outer graph, when nested, is differentiated through as it is)."""
    args = list(args)
    for i in nums:
        if i >= len(args):
            raise TypeError(f"argnums={nums} but only {len(args)} positional argument(s) "
                            "were given")
        a = args[i]
        if not (nested and isinstance(a, Tensor) and a.requires_grad):
            args[i] = _fresh_leaf(a)
    return args, [args[i] for i in nums]


def _zeros_if_none(g, like):
    if g is not None:
        return g
    return Tensor(np.zeros(like.shape, like.dtype))


def _graph_grads(out, inputs, seed=None, create_graph=True) -> list:
    """d(out · seed)/d(inputs) as Tensors (None where out does not depend on one);
    with ``create_graph`` they carry their own graph."""
    if not out.requires_grad:
        return [None] * len(inputs)
    return engine.graph_backward(out, seed, inputs=inputs, create_graph=create_graph)


def _result(x, nested):
    """What the caller gets: a Tensor inside another differentiating function, else
    its values as an ndarray."""
    if nested:
        return x
    return x.numpy().copy() if isinstance(x, Tensor) else np.asarray(x)


def _argnums(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def vjp(fn, *primals):
    """``vjp(f, *primals) -> (f(*primals), vjp_fn)``, as ``jax.vjp``:
    ``vjp_fn(cotangent)`` is the tuple of ``cotangentᵀ · ∂f/∂primal`` (one per primal,
    in the primal's shape): reverse mode, one backward pass per call, for any number of
    calls (the graph is kept)."""
    nested = _transforms.depth > 0
    args, leaves = _leaves(primals, range(len(primals)), nested)
    with _transform():
        out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: the function must return a Tensor, got {type(out).__name__}")

    def vjp_fn(cotangent):
        seed = cotangent if isinstance(cotangent, Tensor) else np.asarray(cotangent)
        if np.shape(seed) != out.shape:
            raise ValueError(f"vjp: cotangent of shape {np.shape(seed)} for an output of "
                             f"shape {out.shape}; give one of the output's shape")
        if not isinstance(seed, Tensor):
            seed = Tensor(seed.astype(out.dtype, copy=False))
        grads = _graph_grads(out, leaves, seed, create_graph=nested or seed.requires_grad)
        return tuple(_result(_zeros_if_none(g, x), nested) for g, x in zip(grads, leaves))

    return (out if nested else out.detach()), vjp_fn


def jvp(fn, primals, tangents):
    """``jvp(f, primals, tangents) -> (f(*primals), ∂f/∂primals · tangents)``, as
    ``jax.jvp`` and ``torch.func.jvp``: forward mode, the derivative of ``f`` along a
    direction.

    Built by the double-vjp construction rather than per-op forward rules: the vjp
    ``u ↦ uᵀJ`` is linear in the cotangent ``u``, so differentiating ``(uᵀJ)·t`` with
    respect to ``u`` (a second backward pass, through the graph ``create_graph=True``
    records) gives ``J t``. Every op that has double backward thus has forward mode, with
    no second formula per op to write and keep in agreement with the first; the price
    is two backward passes instead of one forward pass alongside the evaluation.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s); "
                         "give one tangent per primal")
    for p, t in zip(primals, tangents):
        if np.shape(t) != np.shape(p):
            raise ValueError(f"jvp: tangent of shape {np.shape(t)} for a primal of shape "
                             f"{np.shape(p)}; each tangent has its primal's shape")
    nested = _transforms.depth > 0
    args, leaves = _leaves(primals, range(len(primals)), nested)
    with _transform():
        out = fn(*args)
        if not isinstance(out, Tensor):
            raise TypeError(f"jvp: the function must return a Tensor, got "
                            f"{type(out).__name__}")
        u = Tensor(np.zeros(out.shape, out.dtype), requires_grad=True)  # any value: linear
        grads = _graph_grads(out, leaves, u) if out.requires_grad else [None] * len(leaves)
        total = None
        for g, t in zip(grads, tangents):
            if g is None:
                continue
            term = (g * (t if isinstance(t, Tensor) else np.asarray(t, g.dtype))).sum()
            total = term if total is None else total + term
    if total is None or not total.requires_grad:
        tangent_out = Tensor(np.zeros(out.shape, out.dtype))
    else:
        (tangent_out,) = _graph_grads(total, [u], create_graph=nested)
        tangent_out = _zeros_if_none(tangent_out, out)
    return _result(out, nested), _result(tangent_out, nested)


def _jacobian_of(out, leaves, nested):
    """The rows ``∂out[i]/∂leaves`` by one backward pass per output element, stacked into
    ``out.shape + leaf.shape`` per leaf. Nested, each row carries its graph; otherwise
    the rows are first-order passes on arrays along one order of the graph, found once."""
    if not nested:
        return _array_jacobian(out, leaves)
    rows = [[] for _ in leaves]
    for i in range(out.size):
        seed = np.zeros(out.size, out.dtype)
        seed[i] = 1
        grads = _graph_grads(out, leaves, Tensor(seed.reshape(out.shape)), nested)
        for r, g, x in zip(rows, grads, leaves):
            r.append(_zeros_if_none(g, x))
    jac = []
    for r, x in zip(rows, leaves):
        j = stack(r) if r else Tensor(np.zeros((0,) + x.shape, x.dtype))
        jac.append(j.reshape(out.shape + x.shape))
    return jac


def _array_jacobian(out, leaves) -> list:
    """``_jacobian_of`` outside any differentiating function: ndarrays, zeros where
    ``out`` does not depend on a leaf."""
    jac = [np.zeros((out.size,) + x.shape, x.dtype) for x in leaves]
    if out.requires_grad and out.size:
        order = engine.backward_order(out)
        seeds = np.eye(out.size, dtype=out.dtype)
        for i in range(out.size):
            grads = engine.array_vjp(order, out, seeds[i].reshape(out.shape), leaves)
            for j, g in zip(jac, grads):
                if g is not None:
                    j[i] = g
    return [j.reshape(out.shape + x.shape) for j, x in zip(jac, leaves)]


def jacobian(fn, argnums=0):
    """``jacobian(f)(*args)``: the Jacobian ∂f/∂args[argnums] of shape
    ``output.shape + arg.shape``, by reverse mode (one backward pass per output element),
    as ``torch.func.jacrev`` and ``jax.jacrev``; a tuple of them for a tuple ``argnums``.
    The cheap direction when the output is smaller than the input."""
    nums = _argnums(argnums)

    @functools.wraps(fn)
    def wrapped(*args):
        nested = _transforms.depth > 0
        args, leaves = _leaves(args, nums, nested)
        with _transform():
            out = fn(*args)
        if not isinstance(out, Tensor):
            raise TypeError(f"jacobian: the function must return a Tensor, got "
                            f"{type(out).__name__}")
        jac = _jacobian_of(out, leaves, nested)
        return jac[0] if isinstance(argnums, int) else tuple(jac)

    return wrapped


jacrev = jacobian


def jacfwd(fn, argnums=0):
    """``jacfwd(f)(*args)``: the same Jacobian as ``jacobian``, by forward mode (one
    ``jvp`` per input element, along each basis direction), as ``torch.func.jacfwd`` and
    ``jax.jacfwd``. The cheap direction when the input is smaller than the output."""
    nums = _argnums(argnums)

    @functools.wraps(fn)
    def wrapped(*args):
        args = list(args)
        jacs = []
        for k in nums:
            x = args[k]
            shape, dtype = np.shape(x), np.result_type(x.dtype if isinstance(x, Tensor)
                                                        else np.asarray(x), np.float16)
            n = int(np.prod(shape))

            def f_k(xk, k=k):
                return fn(*args[:k], xk, *args[k + 1:])

            columns = []
            out_shape = None
            for j in range(n):
                t = np.zeros(n, dtype)
                t[j] = 1
                _, col = jvp(f_k, (x,), (t.reshape(shape),))
                out_shape = np.shape(col)
                columns.append(col)
            nested = _transforms.depth > 0
            if nested:
                j = (stack(columns, axis=-1) if columns else None)
            else:
                j = np.stack(columns, axis=-1) if columns else None
            if j is None:
                with _transform():
                    out_shape = np.shape(fn(*args))
                j = np.zeros(tuple(out_shape) + shape, dtype)
                jacs.append(Tensor(j) if nested else j)
            else:
                jacs.append(j.reshape(tuple(out_shape) + shape))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapped


def hessian(fn, argnums=0):
    """``hessian(f)(*args)``: the matrix of second derivatives of a single-valued ``f``
    with respect to ``args[argnums]``, of shape ``arg.shape + arg.shape``: the Jacobian
    of the gradient, reverse over reverse (``jacobian(grad(f))``), as
    ``torch.autograd.functional.hessian``. For a tuple ``argnums``, the nested tuple of
    blocks ``H[i][j] = ∂²f/∂args[i]∂args[j]`` (shape ``args[i].shape + args[j].shape``),
    as ``torch.func.hessian`` and ``jax.hessian``.

    The gradient's graph is recorded once; each row is then a first-order backward pass
    through it, on arrays."""
    nums = _argnums(argnums)

    @functools.wraps(fn)
    def wrapped(*args):
        nested = _transforms.depth > 0
        args, leaves = _leaves(args, nums, nested)
        with _transform():
            out = fn(*args)
            if not isinstance(out, Tensor) or out.size != 1:
                shape = out.shape if isinstance(out, Tensor) else type(out).__name__
                raise TypeError(f"hessian: the function must return a one-value Tensor, "
                                f"got {shape}")
            grads = [_zeros_if_none(g, x) for g, x in zip(_graph_grads(out, leaves), leaves)]
        blocks = tuple(tuple(_jacobian_of(g, leaves, nested)) for g in grads)
        return blocks[0][0] if isinstance(argnums, int) else blocks

    return wrapped


def hvp(fn, inputs, v):
    """``hvp(f, x, v) -> (f(x), H v)``, the Hessian of a single-valued ``f`` at ``x``
    times ``v``, as ``torch.autograd.functional.hvp``: two backward passes (the gradient
    with its graph, then the derivative of ``gradient · v``), never the Hessian itself.
    ``x`` and ``v`` may be tuples of arrays (one per argument of ``f``)."""
    single = not isinstance(inputs, (tuple, list))
    xs = (inputs,) if single else tuple(inputs)
    vs = (v,) if single else tuple(v)
    if len(xs) != len(vs) or any(np.shape(a) != np.shape(b) for a, b in zip(xs, vs)):
        raise ValueError(f"hvp: v has shapes {[np.shape(b) for b in vs]} for inputs of "
                         f"shapes {[np.shape(a) for a in xs]}; give one v per input, of its "
                         "shape")
    nested = _transforms.depth > 0
    args, leaves = _leaves(xs, range(len(xs)), nested)
    with _transform():
        out = fn(*args)
        if not isinstance(out, Tensor) or out.size != 1:
            raise TypeError("hvp: the function must return a one-value Tensor")
        grads = _graph_grads(out, leaves)
        total = None
        for g, w in zip(grads, vs):
            if g is None:
                continue
            term = (g * (w if isinstance(w, Tensor) else np.asarray(w, g.dtype))).sum()
            total = term if total is None else total + term
    if total is None:
        hv = [None] * len(leaves)
    else:
        hv = _graph_grads(total, leaves, create_graph=nested)
    hv = tuple(_result(_zeros_if_none(h, x), nested) for h, x in zip(hv, leaves))
    return _result(out, nested), (hv[0] if single else hv)
