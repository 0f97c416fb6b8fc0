"""Functions over several tensors, and the functional forms of differentiation."""

from __future__ import annotations

import functools

import numpy as np

from . import ops
from .function import no_grad
from .tensor import Tensor

__all__ = ["concat", "stack", "where", "maximum", "minimum", "grad", "value_and_grad",
           "squeeze", "unsqueeze", "expand_dims", "flatten", "logsumexp", "var", "std", "norm",
           "cumsum", "pad", "take_along_axis", "index_add", "scatter_add", "einsum",
           "conv1d", "conv2d", "max_pool2d", "avg_pool2d"]


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
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        args = list(args)
        leaves = []
        for i in nums:
            if i >= len(args):
                raise TypeError(f"grad: argnums={argnums} but only {len(args)} "
                                "positional argument(s) were given")
            a = args[i]
            data = a.data if isinstance(a, Tensor) else a
            leaf = Tensor(data)
            if leaf.dtype.kind != "f":  # ints and bools are differentiated as float64
                leaf = Tensor(leaf.data, dtype=np.float64)
            leaf.requires_grad = True
            args[i] = leaf
            leaves.append(leaf)
        out = fn(*args, **kwargs)
        if not isinstance(out, Tensor) or out.size != 1:
            shape = out.shape if isinstance(out, Tensor) else type(out).__name__
            raise TypeError(f"grad: the function must return a one-value Tensor, got {shape}")
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
    columns). One op (``ops.Conv2d``): one graph node."""
    return ops.Conv2d.apply(x, weight, bias, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """PyTorch's ``conv1d``: ``x`` (N, C, L) or unbatched (C, L), ``weight``
    (out_channels, C / groups, k), ``bias`` (out_channels,) or None; ``stride``,
    ``padding`` and ``dilation`` an int (or a 1-tuple). One op (``ops.Conv1d``)."""
    return ops.Conv1d.apply(x, weight, bias, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
