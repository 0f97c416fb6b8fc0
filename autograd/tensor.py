"""``Tensor``: an ndarray that remembers how it was made.

The class is a thin shell: every differentiable method is a one-line ``Op.apply`` call
(the ops and their gradients live in ``ops.py``), and ``backward`` drains the engine's
step generator (``engine.py``).
"""

from __future__ import annotations

import itertools

import numpy as np

from . import function as _fn
from . import numpy_api

__all__ = ["Tensor"]

_Number = (int, float, np.number)
_hook_ids = itertools.count()


class _HookHandle:
    """Returned by ``register_hook``; ``.remove()`` takes the hook off again."""

    __slots__ = ("_hooks", "_id")

    def __init__(self, hooks, hook_id):
        self._hooks, self._id = hooks, hook_id

    def remove(self) -> None:
        self._hooks.pop(self._id, None)


def _as_index(idx):
    """Tensors and lists inside an index become ndarrays."""
    if isinstance(idx, tuple):
        return tuple(_as_index(i) for i in idx)
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, list):
        return np.asarray(idx)
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
    # NumPy's functions and ufuncs on a Tensor keep the graph or refuse (numpy_api.py)
    __array_ufunc__ = numpy_api.array_ufunc
    __array_function__ = numpy_api.array_function
    __hash__ = object.__hash__  # by identity: tensors are graph nodes, == is elementwise

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data._data
        if dtype is not None:
            arr = np.array(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)):
            arr = np.array(data)
        else:
            arr = np.asarray(data)
            if arr.dtype.kind == "f" or arr.dtype == object:
                arr = arr.astype(_fn._default_dtype)
        if requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype "
                f"{arr.dtype}. Pass float data or dtype=np.float64 (or float32)."
            )
        self._data = arr
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._seq = next(_fn._seq)
        if name is not None:
            self.name = name

    # ------------------------------------------------------------------ array view
    @property
    def data(self) -> np.ndarray:
        """The values, as an ndarray (writing into it bypasses the graph)."""
        d = self._data
        if type(d) is not np.ndarray:
            d = self._data = np.asarray(d)
        return d

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

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
        return self.data

    def __array__(self, dtype=None, copy=None):
        d = self.data
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
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is dL/d(self); it may be left out when ``self`` holds one value.
        The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
        """
        engine.run_backward(self, gradient, retain_graph)

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares memory)."""
        return Tensor._leaf(self._data)

    @classmethod
    def _leaf(cls, data) -> Tensor:
        t = cls.__new__(cls)
        t._data, t.requires_grad, t._ctx, t._seq = data, False, None, next(_fn._seq)
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_: only leaf tensors can stop requiring grad; "
                               "use .detach()")
        if requires_grad and self._data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad_: dtype {self._data.dtype} cannot require grad")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        self._retains = self._watched = True

    def register_hook(self, hook) -> _HookHandle:
        """``hook(grad) -> new grad or None`` runs when this tensor's gradient is ready."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = {}
            self._watched = True
        hook_id = next(_hook_ids)
        self._hooks[hook_id] = hook
        return _HookHandle(self._hooks, hook_id)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return _apply_2(Add, self, other)

    def __radd__(self, other):
        return _apply_2(Add, other, self)

    def __sub__(self, other):
        return _apply_2(Sub, self, other)

    def __rsub__(self, other):
        return _apply_2(Sub, other, self)

    def __mul__(self, other):
        return _apply_2(Mul, self, other)

    def __rmul__(self, other):
        return _apply_2(Mul, other, self)

    def __truediv__(self, other):
        return _apply_2(Div, self, other)

    def __rtruediv__(self, other):
        return _apply_2(Div, other, self)

    def __pow__(self, other):
        return _apply_2(Pow, self, other)

    def __rpow__(self, other):
        return _apply_2(Pow, other, self)

    def __matmul__(self, other):
        return _apply_2(MatMul, self, other)

    def __rmatmul__(self, other):
        return _apply_2(MatMul, other, self)

    def __neg__(self):
        return _apply_1(Neg, self)

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
        return _apply_1(Exp, self)

    def log(self):
        return _apply_1(Log, self)

    def sqrt(self):
        return _apply_1(Sqrt, self)

    def abs(self):
        return _apply_1(Abs, self)

    def tanh(self):
        return _apply_1(Tanh, self)

    def sigmoid(self):
        return _apply_1(Sigmoid, self)

    def relu(self):
        return _apply_1(Relu, self)

    def clip(self, min=None, max=None):
        return ops.Clip.apply(self, lo=min, hi=max)

    def pow(self, exponent):
        return _apply_2(Pow, self, exponent)

    def matmul(self, other):
        return _apply_2(MatMul, self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=_axis(axis), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.Mean.apply(self, axis=_axis(axis), keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.Max.apply(self, axis=_axis(axis), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.Min.apply(self, axis=_axis(axis), keepdims=keepdims)

    def softmax(self, axis=-1):
        return ops.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
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


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


_fn._register_tensor_type(Tensor)

from . import engine, ops  # noqa: E402  (ops and engine use Tensor; import after it)

# The operators are the forward hot path: ``_apply_1(Op, x)`` / ``_apply_2(Op, x, y)`` are
# ``Op.apply(x)`` / ``Op.apply(x, y)`` unrolled (see function.py).
from .function import _apply_1, _apply_2  # noqa: E402
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
