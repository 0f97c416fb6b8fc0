"""``Tensor``: an ndarray that remembers how it was made.

The class is a thin shell: every differentiable method is a one-line ``Op.apply`` call
(the ops and their gradients live in ``ops.py``), and ``backward`` drains the engine's
step generator (``engine.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import function as _fn
from . import numpy_api
from .hooks import RemovableHandle

__all__ = ["Tensor"]

_Number = (int, float, np.number)


def _as_index(idx):
    """Tensors and lists inside an index become ndarrays."""
    if isinstance(idx, tuple):
        return tuple(_as_index(i) for i in idx)
    if isinstance(idx, Tensor):
        return idx.numpy()
    if isinstance(idx, list):  # [] selects nothing: indices, not the float64 NumPy guesses
        return np.asarray(idx) if idx else np.zeros(0, dtype=np.intp)
    return idx


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None, name=None)``: ``data`` is anything
    ``np.asarray`` accepts. Python floats become the default dtype (float64, see
    ``set_default_dtype``); NumPy arrays keep their dtype. Only floating tensors can
    require grad.
    """

    __slots__ = ("_data", "requires_grad", "_ctx", "_seq", "__dict__", "__weakref__")
    # rarely set, so kept out of the per-op path: read from the class until assigned
    grad = None
    name = None
    _hooks = None
    _retains = False
    _watched = False  # has hooks or retains its grad: one check in the backward loop
    _written = -1  # when its values were last changed in place (``engine.note_write``)
    # NumPy's functions and ufuncs on a Tensor keep the graph or refuse (numpy_api.py)
    __array_ufunc__ = numpy_api.array_ufunc
    __array_function__ = numpy_api.array_function
    __hash__ = object.__hash__  # by identity: tensors are graph nodes, == is elementwise

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data._data
        arr = _as_values(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            complex_hint = (" Complex gradients are not supported (they need conjugation); "
                            "split into real and imaginary parts." if arr.dtype.kind == "c"
                            else "")
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype "
                f"{arr.dtype}. Pass float data or dtype=np.float64 (or float32)."
                + complex_hint)
        self._data = arr
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._seq = next(_fn.creation_order)
        if name is not None:
            self.name = name

    # ------------------------------------------------------------------ array view
    @property
    def data(self) -> np.ndarray:
        """The values: the tensor's own array (no copy), as an ndarray.

        Writing into it changes the tensor outside the graph (``t.data[...] = v``,
        ``p.data -= lr * p.grad``); the write is noted, so an op that saved these
        values for backward raises instead of computing a gradient from the new ones.
        """
        view = self._array().view(DataView)
        view._owner = self
        return view

    @data.setter
    def data(self, value) -> None:
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"Tensor.data: values must be numbers, got dtype {arr.dtype}")
        if self.requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"Tensor.data: this tensor requires grad, so its values must be "
                            f"floating-point, got dtype {arr.dtype}")
        self._data = arr
        engine.note_write(self)

    def _array(self) -> np.ndarray:
        """The values as an ndarray (an op may have left a NumPy scalar)."""
        d = self._data
        if type(d) is not np.ndarray:
            d = self._data = np.asarray(d)
        return d

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def grad_fn(self):
        """The op that made this tensor (a ``Function`` instance), None for a leaf."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def item(self):
        return self._data.item()

    def numpy(self) -> np.ndarray:
        """The values as an ndarray sharing the tensor's memory.

        For a tensor that requires grad it is a read-only view (writing raises), since
        a write would bypass the graph unnoticed; ``t.detach().numpy().copy()`` gives
        an array of your own, and ``t.data`` writes that the graph is told about.
        """
        d = self._array()
        if self.requires_grad:
            d = d.view()
            d.setflags(write=False)
        return d

    def __array__(self, dtype=None, copy=None):
        # NumPy converting a tensor that requires grad (np.asarray(t), np.sum([t, u]))
        # would drop its graph without a word: refused, as PyTorch refuses it
        if self.requires_grad:
            raise TypeError(
                f"NumPy tried to convert a tensor of shape {self.shape} that requires grad "
                "to an array, which would drop it from the graph. For a result with "
                "gradients use ag ops (ag.stack([t, u]).sum(axis=0) rather than "
                "np.sum([t, u])); for the values alone, t.detach().numpy() or t.data.")
        d = self.numpy()
        if dtype is not None and d.dtype != dtype:
            return d.astype(dtype)
        return d.copy() if copy else d

    def tolist(self):
        return self._data.tolist()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __repr__(self) -> str:
        body = np.array2string(np.asarray(self._data), separator=", ", prefix="Tensor(")
        extra = ""
        if self.name:
            extra += f", name={self.name!r}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self._data.dtype != np.float64:
            extra += f", dtype={self._data.dtype}"
        return f"Tensor({body}{extra})"

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is dL/d(self); it may be left out when ``self`` holds one value.
        The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
        ``create_graph=True`` records the backward pass too: ``.grad`` is then a Tensor
        with a graph, which can be differentiated again (``retain_graph`` defaults to
        True then, as in PyTorch); otherwise ``.grad`` is an ndarray.
        """
        if create_graph:
            engine.graph_backward(self, gradient,
                                  retain_graph=True if retain_graph is None else retain_graph)
        else:
            engine.run_backward(self, gradient, bool(retain_graph))

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares memory)."""
        return Tensor._leaf(self._data)

    @classmethod
    def _leaf(cls, data) -> Tensor:
        t = cls.__new__(cls)
        t._data, t.requires_grad, t._ctx, t._seq = data, False, None, next(_fn.creation_order)
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_: only leaf tensors can stop requiring grad; "
                               "use .detach()")
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: dtype {self._data.dtype} cannot require grad")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------------ in place
    # PyTorch's in-place methods, for changing values outside the graph (an optimiser
    # step under no_grad()). A node that saved the old values then refuses backward.
    def add_(self, other) -> Tensor:
        return self._in_place(np.add, other)

    def sub_(self, other) -> Tensor:
        return self._in_place(np.subtract, other)

    def mul_(self, other) -> Tensor:
        return self._in_place(np.multiply, other)

    def div_(self, other) -> Tensor:
        return self._in_place(np.divide, other)

    def copy_(self, src) -> Tensor:
        return self._in_place(None, src)

    def fill_(self, value) -> Tensor:
        return self._in_place(None, value)

    def zero_(self) -> Tensor:
        return self._in_place(None, 0)

    def _in_place(self, ufunc, other) -> Tensor:
        if self.requires_grad and _fn.is_grad_enabled():
            raise RuntimeError(
                f"in-place change of a tensor of shape {self.shape} that requires grad: "
                "the graph cannot follow it. Do it under ag.no_grad() (as an optimiser "
                "step does), or build a new tensor (x = x + y).")
        d = self._data
        if type(d) is not np.ndarray:
            d = self._array()
        if isinstance(other, Tensor):
            other = other._data
        try:
            if ufunc is None:
                np.copyto(d, other, casting="same_kind")
            else:
                ufunc(d, other, out=d)  # (casting "same_kind": float64 into float32 is fine)
        except (ValueError, TypeError) as err:
            raise type(err)(f"in-place op on a tensor of shape {self.shape} and dtype "
                            f"{self.dtype}: {err}") from None
        engine.note_write(self)
        return self

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self.requires_grad:  # as PyTorch: backward would never reach it
            raise RuntimeError("retain_grad: this tensor does not require grad, so backward "
                               "never computes a gradient for it (was it made under "
                               "no_grad(), or from inputs without requires_grad=True?)")
        self._retains = self._watched = True

    def register_hook(self, hook) -> RemovableHandle:
        """``hook(grad) -> new grad or None`` runs when this tensor's gradient is ready.
        Returns a ``RemovableHandle``: ``.remove()`` it, or use it in a ``with``."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = {}
            self._watched = True
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return apply_2(Add, self, other)

    def __radd__(self, other):
        return apply_2(Add, other, self)

    def __sub__(self, other):
        return apply_2(Sub, self, other)

    def __rsub__(self, other):
        return apply_2(Sub, other, self)

    def __mul__(self, other):
        return apply_2(Mul, self, other)

    def __rmul__(self, other):
        return apply_2(Mul, other, self)

    def __truediv__(self, other):
        return apply_2(Div, self, other)

    def __rtruediv__(self, other):
        return apply_2(Div, other, self)

    def __pow__(self, other):
        return apply_2(Pow, self, other)

    def __rpow__(self, other):
        return apply_2(Pow, other, self)

    def __matmul__(self, other):
        return apply_2(MatMul, self, other)

    def __rmatmul__(self, other):
        return apply_2(MatMul, other, self)

    def __neg__(self):
        return apply_1(Neg, self)

    def __pos__(self):
        return self

    # comparisons: no gradient, a boolean tensor
    def __eq__(self, other):
        return Tensor._leaf(self._data == _raw(other))

    def __ne__(self, other):
        return Tensor._leaf(self._data != _raw(other))

    def __lt__(self, other):
        return Tensor._leaf(self._data < _raw(other))

    def __le__(self, other):
        return Tensor._leaf(self._data <= _raw(other))

    def __gt__(self, other):
        return Tensor._leaf(self._data > _raw(other))

    def __ge__(self, other):
        return Tensor._leaf(self._data >= _raw(other))

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, idx):
        return ops.GetItem.apply(self, idx=_as_index(idx))

    def __setitem__(self, idx, value):
        raise TypeError(
            "Tensor does not support item assignment: a tensor in a graph is never "
            "changed in place. Build a new one (ag.where(mask, new, t), ag.concat), "
            "or edit raw values outside the graph with t.data[idx] = value."
        )

    # ------------------------------------------------------------------ elementwise
    def exp(self):
        return apply_1(Exp, self)

    def log(self):
        return apply_1(Log, self)

    def sqrt(self):
        return apply_1(Sqrt, self)

    def abs(self):
        return apply_1(Abs, self)

    def tanh(self):
        return apply_1(Tanh, self)

    def sigmoid(self):
        return apply_1(Sigmoid, self)

    def relu(self):
        return apply_1(Relu, self)

    def clip(self, min=None, max=None):
        return ops.Clip.apply(self, lo=min, hi=max)

    def pow(self, exponent):
        return apply_2(Pow, self, exponent)

    def matmul(self, other):
        return apply_2(MatMul, self, other)

    # ------------------------------------------------------------------ reductions
    # NumPy's axis= / keepdims=, or PyTorch's dim= / keepdim= (max and min give the
    # values, as torch.amax / torch.amin do)
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("sum", axis, keepdims, dim, keepdim)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("mean", axis, keepdims, dim, keepdim)
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("max", axis, keepdims, dim, keepdim)
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("min", axis, keepdims, dim, keepdim)
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis=-1, *, dim=None):
        axis, _ = _reduction_args("softmax", axis, False, dim, default_axis=-1)
        return ops.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1, *, dim=None):
        axis, _ = _reduction_args("log_softmax", axis, False, dim, default_axis=-1)
        return ops.LogSoftmax.apply(self, axis=axis)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return ops.Transpose.apply(self, axes=None)

    # ------------------------------------------------------------------ erf
    def erf(self):
        return ops.Erf.apply(self)

    # ------------------------------------------------------------------ shapes,
    # reductions and scans. NumPy's axis= / keepdims= or PyTorch's dim= / keepdim=
    def squeeze(self, axis=None, *, dim=None):
        """Drop size-1 axes: all of them, or those of ``axis`` (an axis whose length is
        not 1 stays, as in ``torch.squeeze``; ``np.squeeze`` raises there)."""
        axis, _ = _reduction_args("squeeze", axis, False, dim)
        return ops.Squeeze.apply(self, axis=axis)

    def unsqueeze(self, dim):
        """A new size-1 axis at ``dim`` (``torch.unsqueeze``; ``expand_dims`` in NumPy)."""
        return ops.Unsqueeze.apply(self, axis=dim)

    def expand_dims(self, axis):
        """New size-1 axes at ``axis``, an int or a tuple (``np.expand_dims``)."""
        return ops.Unsqueeze.apply(self, axis=tuple(axis) if isinstance(axis, list) else axis)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge axes ``start_dim`` to ``end_dim`` into one (``torch.flatten``; a 0-d
        tensor gives shape (1,))."""
        return ops.Flatten.apply(self, start_dim=start_dim, end_dim=end_dim)

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """``log(exp(t).sum(axis))`` without overflow: shifted by the maximum."""
        axis, keepdims = _reduction_args("logsumexp", axis, keepdims, dim, keepdim)
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None, correction=None):
        """Variance, dividing by ``n - ddof``. NumPy's default ``ddof=0``, also with
        ``dim=``; PyTorch's ``unbiased=True`` is ``ddof=1``, ``correction=c`` is ``ddof=c``."""
        axis, keepdims = _reduction_args("var", axis, keepdims, dim, keepdim)
        ddof = _ddof("var", ddof, unbiased, correction)
        return ops.Var.apply(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None, correction=None):
        """Standard deviation, ``var(...).sqrt()`` with a gradient of 0 where it is 0
        (as PyTorch); arguments as ``var``."""
        axis, keepdims = _reduction_args("std", axis, keepdims, dim, keepdim)
        ddof = _ddof("std", ddof, unbiased, correction)
        return ops.Std.apply(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def norm(self, ord=2, axis=None, keepdims=False, *, p=None, dim=None, keepdim=None):
        """Vector p-norm over ``axis`` (all values by default) for ``ord`` (PyTorch: ``p``)
        1, 2 or inf, as ``torch.linalg.vector_norm``; the 2-norm's gradient at 0 is 0."""
        axis, keepdims = _reduction_args("norm", axis, keepdims, dim, keepdim)
        if p is not None:
            if ord != 2:
                raise TypeError(f"norm: got both ord={ord!r} and p={p!r}; give one (ord= "
                                "is NumPy's name, p= PyTorch's)")
            ord = p
        return ops.Norm.apply(self, ord=ord, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None, *, dim=None):
        """Running sum along ``axis`` (PyTorch: ``dim``); ``axis=None`` runs over the
        flattened values, as ``np.cumsum``."""
        axis, _ = _reduction_args("cumsum", axis, False, dim)
        return ops.CumSum.apply(self, axis=axis)

    # ------------------------------------------------------------------ padding,
    # gathering and scattering, sorting (ag.pad, ag.take_along_axis, ag.einsum
    # are in functional.py)
    def gather(self, dim, index):
        """``torch.gather``: ``out[i][j] = self[i][index[i][j]]`` for ``dim=1``; ``index``
        has as many dimensions as ``self``, integers from 0 to the dim's length."""
        return ops.TakeAlongAxis.apply(self, indices=_raw(index), axis=dim, gather=True)

    def index_add(self, dim, index, source, *, alpha=1):
        """PyTorch's ``index_add``: a copy of ``self`` with ``alpha * source`` added at
        ``index`` (1-D) along ``dim``; repeated indices add up. Gradients reach both."""
        return ops.IndexAdd.apply(self, source, axis=dim, index=_raw(index), alpha=alpha)

    def scatter_add(self, dim, index, src):
        """PyTorch's ``scatter_add`` (the adjoint of ``gather``): a copy of ``self`` with
        ``src[i][j]`` added at ``[i][index[i][j]]`` for ``dim=1``; repeats add up."""
        return ops.ScatterAdd.apply(self, src, axis=dim, index=_raw(index))

    def sort(self, axis=-1, descending=False, *, dim=None, stable=True):
        """``values, indices = t.sort(dim)`` as in PyTorch: the sorted values (with a
        gradient back to where each came from) and their positions, an int64 ndarray.
        The sort is stable (equal values keep their order; NaN sorts as largest), as
        ``torch.sort(stable=True)``."""
        axis, _ = _reduction_args("sort", axis, False, dim, default_axis=-1)
        _check_axis("sort", self, axis)
        order = ops.sort_order(self._data, axis, descending)
        return SortResult(ops.Sort.apply(self, indices=order, axis=axis), order)

    def topk(self, k, dim=-1, largest=True, sorted=True, *, axis=None):
        """``values, indices = t.topk(k, dim)`` as in PyTorch: the ``k`` largest (or, with
        ``largest=False``, smallest) values along ``dim``, in order, and their positions.
        Among equal values the first positions win (PyTorch leaves ties unspecified)."""
        if axis is not None:
            dim = axis
        _check_axis("topk", self, dim)
        n = self.shape[dim] if self.ndim else 1
        if not 0 <= k <= n:
            raise IndexError(f"topk: k={k} is out of range for dim {dim} of size {n} "
                             f"(shape {self.shape}); k must be from 0 to {n}")
        order = ops.sort_order(self._data, dim, descending=largest)
        if self.ndim:
            order = np.take(order, np.arange(k), axis=dim)
        return SortResult(ops.TopK.apply(self, indices=order, axis=dim), order)


_NUMERIC_KINDS = "biufc"


def _as_values(data, dtype) -> np.ndarray:
    """``data`` as a new tensor's array: numbers only, Python floats in the default dtype."""
    if data is None:
        raise TypeError("Tensor: data is None; pass numbers (a number, a list of numbers "
                        "or an array)")
    try:
        if dtype is not None:
            arr = np.array(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)):
            arr = np.array(data)
        else:
            arr = np.asarray(data)
            if arr.dtype.kind == "f":
                arr = arr.astype(_fn.get_default_dtype(), copy=False)
    except (ValueError, TypeError) as err:
        raise TypeError(f"Tensor: cannot make numbers of {type(data).__name__} data "
                        f"({err}); pass a number, a (nested, rectangular) list of numbers "
                        "or an array") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        found = ("None or other non-numbers" if arr.dtype.kind == "O"
                 else f"dtype {arr.dtype}")
        raise TypeError(f"Tensor: data must be numbers (bool, int, float), got {found} "
                        f"from {type(data).__name__} {_short_repr(data)}; convert it first "
                        "(e.g. float(x)), and use np.nan for missing values")
    return arr


def _short_repr(data) -> str:
    text = repr(data)
    return text if len(text) <= 40 else text[:37] + "..."


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


class SortResult(NamedTuple):
    """What ``sort`` and ``topk`` return, as PyTorch's ``values, indices``."""

    values: Tensor
    indices: np.ndarray


def _check_axis(op, t, axis):
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: dim must be one int, got {axis!r}")
    ops._check_axes(op, t._data, axis)


def _reduction_args(op, axis, keepdims, dim=None, keepdim=None, default_axis=None):
    """``(axis, keepdims)`` from NumPy's spelling or PyTorch's (``dim``, ``keepdim``)."""
    if dim is not None:
        if axis != default_axis:
            raise TypeError(f"{op}: got both axis={axis!r} and dim={dim!r}; give one "
                            "(axis= is NumPy's name, dim= PyTorch's)")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return (tuple(axis) if isinstance(axis, list) else axis), bool(keepdims)


def _ddof(op, ddof, unbiased, correction):
    """NumPy's ``ddof`` from PyTorch's ``unbiased`` or ``correction``, if given."""
    given = [f"{k}={v!r}" for k, v in (("unbiased", unbiased), ("correction", correction))
             if v is not None]
    if len(given) > 1 or (given and ddof != 0):
        raise TypeError(f"{op}: got {', '.join(given)}" + (f" and ddof={ddof!r}" if ddof
                        else "") + "; give one (ddof= is NumPy's name, unbiased= and "
                        "correction= PyTorch's)")
    if unbiased is not None:
        return 1 if unbiased else 0
    return ddof if correction is None else correction


_fn.register_tensor_type(Tensor)

from . import engine, ops  # noqa: E402  (ops and engine use Tensor; import after it)
from .dataview import DataView  # noqa: E402

# The operators are the forward hot path: ``apply_1(Op, x)`` / ``apply_2(Op, x, y)`` are
# ``Op.apply(x)`` / ``Op.apply(x, y)`` unrolled (see function.py).
from .function import apply_1, apply_2  # noqa: E402
from .ops import (  # noqa: E402
    Abs,
    Add,
    Div,
    Exp,
    Log,
    MatMul,
    Mul,
    Neg,
    Pow,
    Relu,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
)
