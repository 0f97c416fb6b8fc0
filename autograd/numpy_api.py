"""NumPy functions on Tensors: they keep the graph, or they refuse.

NumPy lets a type take over its functions when one of the arguments is of that type:
``__array_ufunc__`` for ufuncs (``np.exp``, ``np.add``, and the operators of an ndarray or
a NumPy scalar, ``arr * t``, which NumPy turns into ufunc calls; NEP 13) and
``__array_function__`` for the rest of the API (``np.sum``, ``np.concatenate``; NEP 18).
``Tensor``'s class body installs the two hooks defined here. Without them NumPy would
compute on the values and hand back a plain array: the graph silently dropped.

The rule, for every NumPy function or ufunc called with a Tensor among its arguments:

1. **Differentiable: it runs the ``ag`` op.** Where NumPy computes exactly what one ``ag``
   op computes, the call is that op and returns a Tensor in the graph: ``np.exp(t)`` is
   ``t.exp()``, ``np.sum(t, axis=0)`` is ``t.sum(axis=0)``, ``np.concatenate([a, b])`` is
   ``ag.concat([a, b])``. Binary ufuncs go through Tensor's operators, so
   ``np.multiply(2.0, t)``, ``np.float64(2.0) * t`` and ``arr * t`` are ``t.__rmul__(...)``,
   exactly ``2.0 * t``. NumPy's argument names are accepted; an argument the op has no
   use for (``dtype=``, ``where=``, ``order='F'``) is refused, unless it has NumPy's
   default value. ``dispatch_table()`` lists them all.
2. **No derivative to carry: it answers on the values.** A function whose answer has no
   derivative to pass on runs on ``t.data``: questions about the array (``np.shape``,
   ``np.ndim``, ``np.result_type``, ``np.zeros_like``), tests and comparisons
   (``np.isfinite``, ``np.greater``, ``np.allclose``), positions and counts
   (``np.argmax``, ``np.count_nonzero``), and the step functions ``np.sign``,
   ``np.floor``, ``np.ceil``, ``np.trunc``, ``np.rint``, whose derivative is 0 wherever it
   exists (PyTorch gives them a zero gradient; here no gradient flows through them, which
   adds up to the same). A ufunc answers with a Tensor that does not require grad, as
   ``t > 0`` does (``arr < t`` must equal ``t > arr``); any other function answers as NumPy
   does on the values (an ndarray, a number, a tuple). ``answered()`` lists them.
3. **Everything else refuses** with a ``TypeError`` naming the function and the way out:
   the ``ag`` spelling where there is one (``np.average(t)``: ``t.mean(axis)``),
   or "not differentiable yet" for ops a later version adds (``np.convolve``),
   and always the deliberate exit from the graph: call it on the values,
   ``np.convolve(t.data, ...)`` (or ``t.detach().numpy()``).

``out=`` is refused whenever a Tensor takes part (``arr += t`` too): a Tensor in a graph is
never changed in place, and writing a result into an ndarray would drop the graph.

Tensor's own operators (``x * y``, ``x.exp()``) never come through here. Converting a
Tensor (``np.asarray(t)``, and so a list *of* Tensors, which NumPy's protocols do not
see: ``np.sum([t, u])``) goes through ``Tensor.__array__``: it gives the values of a
tensor that does not require grad and refuses one that does (use ``ag.stack``).
"""

from __future__ import annotations

import inspect
import operator
from typing import NamedTuple

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

# tensor.py imports this module before it defines Tensor (the class body installs the two
# hooks), so the class is looked up as ``_tensor.Tensor`` when NumPy calls in.
from . import ops
from . import tensor as _tensor

__all__ = ["array_ufunc", "array_function", "dispatch_table", "answered"]


# ------------------------------------------------------------------------------ the hooks


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """``Tensor.__array_ufunc__`` (NEP 13): a ufunc called with a Tensor among its inputs
    or outputs (``np.exp(t)``, ``np.add(2.0, t)``, ``arr * t``)."""
    # the hot case first: an operator with an ndarray or NumPy scalar on the left and the
    # Tensor on the right (arr * t, np.float64(2) * t): Tensor's reflected operator
    if method == "__call__" and len(inputs) == 2 and inputs[1] is self and not kwargs:
        reflected = _REFLECTED.get(ufunc)
        a = inputs[0]
        if reflected is not None and (type(a) is np.ndarray or isinstance(a, np.generic)):
            return getattr(self, reflected)(a)
    if _foreign(inputs):
        return NotImplemented  # another array type is involved: let it (or NumPy) answer
    entry = _UFUNCS.get((ufunc, method))
    if entry is not None and not kwargs:  # the common case: np.exp(t), np.float64(2) * t
        return entry.handler(*inputs)
    name = _ufunc_name(ufunc, method)
    if any(o is not None for o in kwargs.get("out", ())):
        raise _out_error(name)
    if method == "at":
        raise _in_place_error(name)
    if ufunc in _ANSWERED_UFUNCS:
        return _tensor.Tensor(getattr(ufunc, method)(*_values(inputs), **kwargs))
    if entry is None:
        raise _refusal(name, ufunc if method == "__call__" else (ufunc, method))
    if entry.positional is None:  # a plain call: keyword arguments only at their defaults
        _check_defaults(name, entry.ag, kwargs, _UFUNC_DEFAULTS)
        return entry.handler(*inputs)
    return _call(name, entry, inputs, kwargs)


def array_function(self, func, types, args, kwargs):
    """``Tensor.__array_function__`` (NEP 18): any other NumPy function called with a
    Tensor among the arguments NumPy looks at (``np.sum(t)``, ``np.concatenate([a, t])``)."""
    Tensor = _tensor.Tensor
    for t in types:
        if t is not Tensor and not issubclass(t, (Tensor, np.ndarray)):
            return NotImplemented
    if kwargs.get("out") is not None:
        raise _out_error(_function_name(func))
    if func in _ANSWERED_FUNCTIONS:
        return func(*_values(args), **_values(kwargs))
    entry = _FUNCTIONS.get(func)
    if entry is None:
        raise _refusal(_function_name(func), func)
    return _call(func, entry, args, kwargs)


def _call(func, entry, args, kwargs):
    """Run ``entry``'s handler on NumPy's arguments, refusing those it takes only at
    NumPy's default value (``func``: the NumPy function, or its name for messages)."""
    fixed = entry.fixed
    if not fixed or (len(args) <= entry.free and not kwargs):  # nothing fixed was given
        return entry.handler(*args, **kwargs)
    given = {k: v for k, v in zip(entry.positional, args) if k in fixed}
    given.update((k, v) for k, v in kwargs.items() if k in fixed)
    if given:
        name = func if isinstance(func, str) else _function_name(func)
        _check_defaults(name, entry.ag, given, fixed)
    return entry.handler(*args, **kwargs)


# ------------------------------------------------------------------------------ tables


class _Entry(NamedTuple):
    """One dispatched NumPy callable: the handler that runs the ag op and its ``ag``
    spelling (for messages and docs). A handler written with NumPy's signature also has
    the names of its positional parameters and the arguments it accepts only at NumPy's
    default (``fixed``: name -> default); a plain ufunc call gets its inputs alone."""

    handler: object
    ag: str
    positional: tuple | None = None
    fixed: dict | None = None
    free: int = 0  # how many positional arguments come before the first fixed one


def _entry(handler, ag: str) -> _Entry:
    """An entry for a handler written with NumPy's signature (``_Fixed`` defaults)."""
    params = inspect.signature(handler).parameters.values()
    positional = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                            p.POSITIONAL_OR_KEYWORD))
    fixed = {p.name: p.default.default for p in params if isinstance(p.default, _Fixed)}
    free = next((i for i, name in enumerate(positional) if name in fixed), len(positional))
    return _Entry(handler, ag, positional, fixed, free)


class _Fixed:
    """Default of a NumPy argument the ag op has no use for: given with NumPy's default
    value (``order='C'``) it is accepted, any other value is refused."""

    __slots__ = ("default",)

    def __init__(self, default):
        self.default = default

    def __repr__(self) -> str:
        return f"{self.default!r} (only)"


_ONLY_NONE, _ONLY_TRUE, _ONLY_C = _Fixed(None), _Fixed(True), _Fixed("C")
_ONLY_SAME_KIND = _Fixed("same_kind")
_ONLY_FALSE = _Fixed(False)
_ONLY_CONSTANT, _ONLY_K, _ONLY_SAFE = _Fixed("constant"), _Fixed("K"), _Fixed("safe")
# ufunc keyword arguments (NumPy passes only the ones given) and their defaults
_UFUNC_DEFAULTS = {"where": True, "casting": "same_kind", "order": "K", "dtype": None,
                   "subok": True, "signature": None}

_UFUNCS: dict = {}  # (ufunc, method) -> _Entry
_REFLECTED: dict = {}  # binary ufunc -> the name of Tensor's reflected operator
_FUNCTIONS: dict = {}  # NumPy function -> _Entry


def _operator(name: str):
    """``np.<ufunc>(a, b)`` as Tensor's operator: ``a * b`` itself when ``a`` is a Tensor,
    else ``b.__rmul__(a)`` (``np.float64(2.0) * t``, ``arr * t``), as Python would call it.
    (Python's ``a * b`` would hand a NumPy ``a`` back to NumPy, hence the explicit call.)"""
    forward, reflected = getattr(operator, name), f"__r{name}__"

    def call(a, b):
        if isinstance(a, _tensor.Tensor):
            return forward(a, b)
        return getattr(b, reflected)(a)

    return call


for _uf, _name, _ag in [(np.add, "add", "a + b"), (np.subtract, "sub", "a - b"),
                       (np.multiply, "mul", "a * b"), (np.true_divide, "truediv", "a / b"),
                       (np.power, "pow", "a ** b"), (np.matmul, "matmul", "a @ b")]:
    _UFUNCS[_uf, "__call__"] = _Entry(_operator(_name), _ag)
    _REFLECTED[_uf] = f"__r{_name}__"
for _uf, _name in [(np.negative, "__neg__"), (np.positive, "__pos__"), (np.exp, "exp"),
                   (np.log, "log"), (np.sqrt, "sqrt"), (np.absolute, "abs"), (np.tanh, "tanh")]:
    _UFUNCS[_uf, "__call__"] = _Entry(operator.methodcaller(_name), f"t.{_name}()")
_UFUNCS[np.square, "__call__"] = _Entry(lambda x: x**2, "t ** 2")
_UFUNCS[np.maximum, "__call__"] = _Entry(ops.Maximum.apply, "ag.maximum(a, b)")
_UFUNCS[np.minimum, "__call__"] = _Entry(ops.Minimum.apply, "ag.minimum(a, b)")


def _reduction(method_name: str) -> _Entry:
    """``np.add.reduce`` and co.: NumPy's ``ufunc.reduce`` (default ``axis=0``) as the
    reduction method of Tensor."""

    def reduce(array, axis=0, dtype=_ONLY_NONE, out=_ONLY_NONE, keepdims=False,
               initial=_ONLY_NONE, where=_ONLY_TRUE):
        return getattr(array, method_name)(axis=axis, keepdims=keepdims)

    return _entry(reduce, f"t.{method_name}(axis=0, keepdims)")


_UFUNCS[np.add, "reduce"] = _reduction("sum")
_UFUNCS[np.maximum, "reduce"] = _reduction("max")
_UFUNCS[np.minimum, "reduce"] = _reduction("min")
del _uf, _name, _ag


def _implements(*funcs, ag: str):
    """Register a handler written with NumPy's signature for ``funcs``; its ``_Fixed``
    defaults mark the arguments accepted only at NumPy's default."""

    def register(handler):
        entry = _entry(handler, ag)
        for func in funcs:
            _FUNCTIONS[func] = entry
        return handler

    return register


@_implements(np.sum, ag="t.sum(axis, keepdims)")
def _sum(a, axis=None, dtype=_ONLY_NONE, out=_ONLY_NONE, keepdims=False, initial=_ONLY_NONE,
         where=_ONLY_TRUE):
    return a.sum(axis=axis, keepdims=keepdims)


@_implements(np.mean, ag="t.mean(axis, keepdims)")
def _mean(a, axis=None, dtype=_ONLY_NONE, out=_ONLY_NONE, keepdims=False, *, where=_ONLY_TRUE):
    return a.mean(axis=axis, keepdims=keepdims)


@_implements(np.max, np.amax, ag="t.max(axis, keepdims)")
def _max(a, axis=None, out=_ONLY_NONE, keepdims=False, initial=_ONLY_NONE, where=_ONLY_TRUE):
    return a.max(axis=axis, keepdims=keepdims)


@_implements(np.min, np.amin, ag="t.min(axis, keepdims)")
def _min(a, axis=None, out=_ONLY_NONE, keepdims=False, initial=_ONLY_NONE, where=_ONLY_TRUE):
    return a.min(axis=axis, keepdims=keepdims)


@_implements(np.concatenate, ag="ag.concat(arrays, axis)")
def _concatenate(arrays, axis=0, out=_ONLY_NONE, *, dtype=_ONLY_NONE, casting=_ONLY_SAME_KIND):
    if axis is None:  # NumPy flattens every input first
        arrays = [ops.Reshape.apply(a, shape=(-1,)) for a in arrays]
        axis = 0
    return ops.Concat.apply(*arrays, axis=axis)


@_implements(np.stack, ag="ag.stack(arrays, axis)")
def _stack(arrays, axis=0, out=_ONLY_NONE, *, dtype=_ONLY_NONE, casting=_ONLY_SAME_KIND):
    return ops.Stack.apply(*arrays, axis=axis)


_MISSING = object()


@_implements(np.where, ag="ag.where(condition, x, y)")
def _where(condition, x=_MISSING, y=_MISSING):
    if x is _MISSING and y is _MISSING:  # np.where(condition): indices, no derivative
        return np.where(_values(condition))
    if x is _MISSING or y is _MISSING:
        raise ValueError("np.where: give both x and y, or neither")
    if isinstance(condition, _tensor.Tensor):
        condition = _values(condition)
    return ops.Where.apply(condition, x, y)


@_implements(np.reshape, ag="t.reshape(shape)")
def _reshape(a, shape=None, order=_ONLY_C, *, newshape=None, copy=_ONLY_NONE):
    return a.reshape(newshape if shape is None else shape)


@_implements(np.ravel, ag="t.flatten()")
def _ravel(a, order=_ONLY_C):
    return a.flatten()


@_implements(np.squeeze, ag="t.squeeze(axis)")
def _squeeze(a, axis=None):
    np.squeeze(_values(a), axis)  # NumPy's checks: unlike torch, an axis of length > 1 raises
    return a.squeeze(tuple(axis) if isinstance(axis, list) else axis)


@_implements(np.expand_dims, ag="t.expand_dims(axis)")
def _expand_dims(a, axis):
    return a.expand_dims(axis)


def _shape_tuple(shape) -> tuple:
    return tuple(int(n) for n in shape) if isinstance(shape, (tuple, list)) else (int(shape),)


@_implements(np.broadcast_to, ag="ag.broadcast_to(t, shape)")
def _broadcast_to(array, shape, subok=_ONLY_FALSE):
    return ops.BroadcastTo.apply(array, shape=_shape_tuple(shape))


@_implements(np.transpose, ag="t.transpose(axes)")
def _transpose(a, axes=None):
    return a.T if axes is None else a.transpose(tuple(axes))


@_implements(np.swapaxes, ag="t.transpose(axes with axis1 and axis2 swapped)")
def _swapaxes(a, axis1, axis2):
    axes = list(range(a.ndim))
    i, j = normalize_axis_index(axis1, a.ndim), normalize_axis_index(axis2, a.ndim)
    axes[i], axes[j] = j, i
    return a.transpose(tuple(axes))


@_implements(np.moveaxis, ag="t.transpose(axes with source moved to destination)")
def _moveaxis(a, source, destination):
    source = normalize_axis_tuple(source, a.ndim, "source")
    destination = normalize_axis_tuple(destination, a.ndim, "destination")
    if len(source) != len(destination):
        raise ValueError("np.moveaxis: source and destination need the same number of "
                         f"axes, got {len(source)} and {len(destination)}")
    axes = [n for n in range(a.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        axes.insert(dest, src)
    return a.transpose(tuple(axes))


@_implements(np.clip, ag="t.clip(min, max)")
def _clip(a, a_min=None, a_max=None, out=_ONLY_NONE, *, min=None, max=None, **kwargs):
    if kwargs:
        raise TypeError(f"np.clip: argument(s) {_names(kwargs)} are not supported on a "
                        "Tensor (the ag op has no such argument); use t.clip(min, max)")
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if not isinstance(a, _tensor.Tensor) or isinstance(lo, _tensor.Tensor) \
            or isinstance(hi, _tensor.Tensor):
        raise TypeError("np.clip: only the clipped array may be a Tensor; t.clip takes "
                        "numbers or arrays as bounds. For bounds with a gradient write "
                        "ag.minimum(ag.maximum(t, lo), hi); for values only, clip t.data")
    return a.clip(lo, hi)


@_implements(np.dot, ag="a @ b (1-D and 2-D operands)")
def _dot(a, b, out=_ONLY_NONE):
    nd_a, nd_b = _ndim(a), _ndim(b)
    if not (1 <= nd_a <= 2 and 1 <= nd_b <= 2):
        raise TypeError(
            f"np.dot on a Tensor: operands of {nd_a} and {nd_b} dimensions. np.dot is "
            "dispatched only where it equals matmul (1-D and 2-D operands): use a * b for "
            "a 0-d operand and a @ b (np.matmul, batched over leading axes) otherwise; "
            "np.dot(t.data, ...) leaves the graph on purpose")
    return _operator("matmul")(a, b)


# var, std, cumsum, vector norms

_NO_VALUE = np._NoValue  # NumPy's marker for an argument not given


def _moment_ddof(name, ddof, correction):
    if correction is _NO_VALUE:
        return ddof
    if ddof != 0:
        raise ValueError(f"{name}: ddof and correction are the same argument; give one")
    return correction


@_implements(np.var, ag="t.var(axis, ddof, keepdims)")
def _var(a, axis=None, dtype=_ONLY_NONE, out=_ONLY_NONE, ddof=0, keepdims=False, *,
         where=_ONLY_TRUE, mean=_ONLY_NONE, correction=_NO_VALUE):
    ddof = _moment_ddof("np.var", ddof, correction)
    return a.var(axis=axis, ddof=ddof, keepdims=bool(keepdims))


@_implements(np.std, ag="t.std(axis, ddof, keepdims)")
def _std(a, axis=None, dtype=_ONLY_NONE, out=_ONLY_NONE, ddof=0, keepdims=False, *,
         where=_ONLY_TRUE, mean=_ONLY_NONE, correction=_NO_VALUE):
    ddof = _moment_ddof("np.std", ddof, correction)
    return a.std(axis=axis, ddof=ddof, keepdims=bool(keepdims))


@_implements(np.cumsum, ag="t.cumsum(axis)")
def _cumsum(a, axis=None, dtype=_ONLY_NONE, out=_ONLY_NONE):
    return a.cumsum(axis)


def _accumulate(array, axis=0, dtype=_ONLY_NONE, out=_ONLY_NONE):
    return array.cumsum(axis)


_UFUNCS[np.add, "accumulate"] = _entry(_accumulate, "t.cumsum(axis=0)")


@_implements(np.linalg.norm, ag="t.norm(ord, axis, keepdims) (vector norms)")
def _norm(x, ord=None, axis=None, keepdims=False):
    whole = axis is None or (isinstance(axis, (tuple, list)) and len(axis) > 1)
    if ord is not None and whole and not (axis is None and _ndim(x) <= 1):
        raise TypeError(
            f"np.linalg.norm on a Tensor: ord={ord!r} over {'all axes' if axis is None else axis}"
            " of a tensor of "
            f"{_ndim(x)} dimensions is a matrix norm, which has no ag op; vector norms are "
            "dispatched: t.norm(ord, axis) along one axis, or ord=None (the 2-norm of all "
            "values). np.linalg.norm(t.data, ...) leaves the graph on purpose")
    axis = tuple(axis) if isinstance(axis, list) else axis
    return x.norm(2 if ord is None else ord, axis=axis, keepdims=keepdims)


# padding, gathering, sorting, einsum


@_implements(np.pad, ag="ag.pad(t, pad_width, value)")
def _pad(array, pad_width, mode=_ONLY_CONSTANT, *, constant_values=0, **kwargs):
    if kwargs or np.ndim(constant_values) or not isinstance(array, _tensor.Tensor):
        raise TypeError("np.pad on a Tensor: only mode='constant' with one constant value "
                        "(constant_values=v) and the padded array a Tensor; use "
                        "ag.pad(t, pad_width, value=v), or np.pad(t.data, ...) to leave "
                        "the graph on purpose")
    return ops.Pad.apply(array, pad_width=pad_width, value=constant_values)


@_implements(np.take_along_axis, ag="ag.take_along_axis(t, indices, axis)")
def _take_along_axis(arr, indices, axis=-1):
    if isinstance(indices, _tensor.Tensor):
        indices = _values(indices)
    if axis is None:  # NumPy reads the flattened array
        arr, axis = arr.reshape(-1), 0
    return ops.TakeAlongAxis.apply(arr, indices=indices, axis=axis)


@_implements(np.sort, ag="t.sort(axis).values")
def _sort(a, axis=-1, kind=None, order=_ONLY_NONE, *, stable=None):
    # every kind gives the same values; the gradient follows the stable order
    if axis is None:  # NumPy sorts the flattened array
        a, axis = a.reshape(-1), -1
    return a.sort(axis).values


@_implements(np.einsum, ag="ag.einsum(subscripts, *tensors)")
def _einsum(*operands, out=_ONLY_NONE, optimize=False, dtype=_ONLY_NONE, order=_ONLY_K,
            casting=_ONLY_SAFE):
    if not operands or not isinstance(operands[0], str):
        raise TypeError("np.einsum on a Tensor: give the subscripts as a string "
                        "('ij,jk->ik'); the sublist form is not supported")
    # optimize only changes the order of the products, not the result
    return ops.Einsum.apply(*operands[1:], subscripts=operands[0])


# answers on the values (rule 2); ufuncs give a Tensor that does not require grad
_ANSWERED_UFUNCS = frozenset({
    np.equal, np.not_equal, np.greater, np.greater_equal, np.less, np.less_equal,
    np.isfinite, np.isinf, np.isnan, np.signbit,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert,
    np.sign, np.floor, np.ceil, np.trunc, np.rint,  # step functions: derivative 0
})
_ANSWERED_FUNCTIONS = frozenset({
    np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.iscomplexobj,
    np.isrealobj, np.iscomplex, np.isreal, np.isposinf, np.isneginf,
    np.isclose, np.allclose, np.array_equal, np.array_equiv,
    np.any, np.all, np.count_nonzero, np.nonzero, np.flatnonzero, np.argwhere,
    np.argmax, np.argmin, np.argsort, np.searchsorted,
    np.zeros_like, np.ones_like, np.empty_like, np.full_like,
    np.shares_memory, np.may_share_memory,
})

# ------------------------------------------------------------------------------ refusals

_LATER = "is not differentiable in chainrule yet (a later version adds it)"
_NO_OP = "has no ag op of its own"
# refused callables with something better to say than the generic message (a function,
# a ufunc call, or (ufunc, method)): (why it is refused, the ag spelling or "" if none)
_REFUSED = {
    np.convolve: (_LATER, ""),
    np.average: (_NO_OP, "t.mean(axis), or (t * w).sum(axis) / w.sum(axis)"),
    np.fmax: (_NO_OP + " (it ignores NaN)", "ag.maximum(a, b), which propagates NaN"),
    np.fmin: (_NO_OP + " (it ignores NaN)", "ag.minimum(a, b), which propagates NaN"),
    np.float_power: (_NO_OP, "t ** p"),
    np.reciprocal: (_NO_OP, "1 / t"),
    np.exp2: (_NO_OP, "2.0 ** t"),
    np.log2: (_NO_OP, "t.log() / np.log(2)"),
    np.log10: (_NO_OP, "t.log() / np.log(10)"),
    np.round: (_NO_OP, "np.rint(t), a step function (no gradient flows)"),
    np.around: (_NO_OP, "np.rint(t), a step function (no gradient flows)"),
    np.copy: (_NO_OP, "t itself (a Tensor in a graph is never changed in place), or "
                      "t.detach() for the values alone"),
    np.flip: (_NO_OP, "t[::-1] (indexing keeps the graph)"),
    np.take: (_NO_OP, "t[idx] (indexing keeps the graph)"),
    np.diff: (_NO_OP, "t[1:] - t[:-1]"),
    np.outer: (_NO_OP, "a.reshape(-1, 1) * b.reshape(1, -1)"),
    (np.multiply, "outer"): (_NO_OP, "a.reshape(-1, 1) * b.reshape(1, -1)"),
    np.inner: (_NO_OP, "a @ b for 1-D a and b"),
    np.vdot: (_NO_OP, "a.reshape(-1) @ b.reshape(-1)"),
    np.tensordot: (_NO_OP, "a @ b, after reshape/transpose"),
    np.hstack: (_NO_OP, "ag.concat(tensors, axis)"),
    np.vstack: (_NO_OP, "ag.concat(tensors, axis) or ag.stack"),
    np.column_stack: (_NO_OP, "ag.stack(tensors, axis=1)"),
    np.nansum: (_NO_OP, "ag.where(np.isnan(t), 0.0, t).sum()"),
}


def _refusal(name: str, key) -> TypeError:
    why, ag = _REFUSED.get(key, ("has no differentiable version in chainrule", ""))
    instead = f" Within the graph: {ag}." if ag else ""
    return TypeError(
        f"{name} on a Tensor {why}, and computing it on the values would silently drop "
        f"the graph.{instead} To leave the graph on purpose, call it on the values: "
        f"{name}(t.data, ...) (or t.detach().numpy())."
    )


def _out_error(name: str) -> TypeError:
    return TypeError(
        f"{name}: out= cannot be used with a Tensor: a Tensor in a graph is never changed "
        f"in place, and writing the result into an ndarray would drop the graph (arr += t "
        f"is out=arr). Use the returned Tensor (y = {name}(...)), or {name}(t.data, ..., "
        "out=...) to work on the values outside the graph."
    )


def _in_place_error(name: str) -> TypeError:
    return TypeError(f"{name} changes its first argument in place, and a Tensor in a graph "
                     "is never changed in place: build a new Tensor (ag.where, indexing), "
                     f"or call {name} on t.data outside the graph.")


def _check_defaults(name: str, ag: str, given: dict, defaults: dict) -> None:
    """Refuse each argument in ``given`` that is not in ``defaults`` at its value there."""
    bad = [k for k, v in given.items() if k not in defaults or not _is_default(v, defaults[k])]
    if "out" in bad:
        raise _out_error(name)
    if bad:
        raise TypeError(
            f"{name} on a Tensor: argument(s) {_names(bad)} are not supported (the ag op "
            f"has no such argument, so the call cannot keep the graph). Leave them out "
            f"({ag}), or call {name} on t.data to work on the values outside the graph."
        )


def _is_default(value, default) -> bool:
    return value is default or (type(value) is type(default) and value == default)


def _names(keys) -> str:
    return ", ".join(f"{k}=" for k in keys)


# ------------------------------------------------------------------------------ helpers


_PLAIN_TYPES: set = set()  # types seen among the inputs that are not another array library's


def _foreign(objs) -> bool:
    """True if another array library's type (with its own __array_ufunc__) is among
    ``objs``: NumPy then asks it instead."""
    for x in objs:
        cls = type(x)
        if cls not in _PLAIN_TYPES:
            if hasattr(cls, "__array_ufunc__") and not issubclass(
                    cls, (_tensor.Tensor, np.ndarray, np.generic)):
                return True
            _PLAIN_TYPES.add(cls)
    return False


def _values(obj):
    """``obj`` with every Tensor replaced by a read-only view of its values (a function
    answering on the values cannot write into a Tensor through it)."""
    if isinstance(obj, _tensor.Tensor):
        view = obj.data.view(np.ndarray)
        view.flags.writeable = False
        return view
    if isinstance(obj, (list, tuple)):
        return type(obj)(_values(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _values(v) for k, v in obj.items()}
    return obj


def _ndim(x) -> int:
    return x.ndim if isinstance(x, _tensor.Tensor) else np.ndim(x)


def _function_name(func) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    prefix = "np." + module[len("numpy."):] + "." if module.startswith("numpy.") else "np."
    return prefix + func.__name__


def _ufunc_name(ufunc, method: str) -> str:
    return f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")


def dispatch_table() -> dict:
    """``{"np.exp": "t.exp()", ...}``: every NumPy callable that runs an ag op on Tensors
    (rule 1 of this module), with the ag spelling it runs."""
    table = {_ufunc_name(uf, method): e.ag for (uf, method), e in _UFUNCS.items()}
    table.update((_function_name(f), e.ag) for f, e in _FUNCTIONS.items())
    return table


def answered() -> list:
    """The NumPy callables that answer on a Tensor's values (rule 2 of this module)."""
    return sorted((_ufunc_name(f, "__call__") for f in _ANSWERED_UFUNCS),
                  key=str) + sorted(_function_name(f) for f in _ANSWERED_FUNCTIONS)
