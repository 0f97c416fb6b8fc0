"""``Function``: the one mechanism every op (built-in or custom) goes through.

An op is a subclass with two static methods on plain NumPy arrays::

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return 2 * x * grad

    y = Square.apply(t)

``apply`` unwraps Tensor arguments to arrays, runs ``forward`` and, when a gradient is
needed, records the call: the instance of the op class *is* the graph node (``ctx``),
holding the parents, ``needs_input_grad`` and the saved arrays. ``backward`` returns one
gradient per positional argument of ``forward`` (``None`` where there is none), in the
broadcast shape of the output if that is easier: the engine sums it down to each
parent's shape.

This module also holds the global modes: grad mode (``no_grad`` / ``enable_grad``),
the default dtype, the name scope that modules open, and the anomaly-mode hooks.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

__all__ = [
    "Function",
    "ShapeError",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "set_default_dtype",
    "get_default_dtype",
    "name_scope",
    "current_scope",
    "get_anomaly_hook",
    "set_anomaly_hook",
]

# ---------------------------------------------------------------------------- modes

_grad_enabled = True
_default_dtype = np.dtype(np.float64)
_scope = ""  # dotted name scope opened by ``name_scope`` (e.g. "layers.0")
# set by ``trace.detect_anomaly``: an object whose on_forward(ctx, out, arrays) runs after
# every op and on_backward(ctx, grad, sent) after every node's backward
_anomaly = None

_Tensor = None  # set by tensor.py once the class exists (tensor.py imports this module)


def _register_tensor_type(cls):
    global _Tensor
    _Tensor = cls


def is_grad_enabled() -> bool:
    """Whether new ops are recorded for backward."""
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn graph recording on or off inside a ``with`` block (or a decorated function)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class no_grad(set_grad_enabled):
    """Context manager / decorator: ops inside record no graph (evaluation, updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Context manager / decorator: record the graph even inside ``no_grad``."""

    def __init__(self):
        super().__init__(True)


def set_default_dtype(dtype) -> None:
    """Set the float dtype for tensors made from Python floats (float64 or float32)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dt}")
    _default_dtype = dt


def get_default_dtype() -> np.dtype:
    return _default_dtype


class name_scope(contextlib.ContextDecorator):
    """Prefix for the ops created inside: ``nn`` opens one per module call.

    Every node records the scope it was created in (``ctx.scope``), which is how a
    graph drawing can group the ops of one layer without ``autograd`` knowing ``nn``.
    ``with name_scope("layers"): ...`` yields the full dotted scope. (A class rather
    than a generator: entered once per module call, it must be cheap.)
    """

    __slots__ = ("name", "prev")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> str:
        global _scope
        self.prev = prev = _scope
        name = self.name
        _scope = f"{prev}.{name}" if prev and name else (name or prev)
        return _scope

    def __exit__(self, *exc) -> bool:
        global _scope
        _scope = self.prev
        return False


def current_scope() -> str:
    return _scope


def get_anomaly_hook():
    """The object anomaly mode installed (see ``anomaly.detect_anomaly``), or None."""
    return _anomaly


def set_anomaly_hook(hook) -> None:
    """Install ``hook`` (or None): after every op ``hook.on_forward(ctx, out, arrays)``
    runs, and after every node's backward ``hook.on_backward(ctx, grad, sent)``."""
    global _anomaly
    _anomaly = hook


# ---------------------------------------------------------------------------- errors


class ShapeError(ValueError):
    """Operands whose shapes do not fit an op; the message names op, shapes and a fix."""


def _shape_of(a):
    return tuple(np.shape(a))


def _broadcast_message(op: str, arrays, err: Exception) -> str:
    shapes = " and ".join(str(_shape_of(a)) for a in arrays if hasattr(a, "shape"))
    return (
        f"{op}: cannot broadcast shapes {shapes}. Aligned from the right, each pair of "
        f"dimensions must be equal or one of them 1. Reshape or index an operand so they "
        f"line up (e.g. b.reshape(-1, 1) for a column). NumPy said: {err}"
    )


# ---------------------------------------------------------------------------- Function

_seq = itertools.count()  # creation order: a tensor is always made after its inputs


class Function:
    """Base class of every op. Subclass it and define ``forward`` and ``backward``.

    Instances are graph nodes (the ``ctx`` passed to forward and backward):

    - ``ctx.save_for_backward(*arrays)`` in forward, ``ctx.saved`` in backward;
    - ``ctx.needs_input_grad``: a bool per positional input of forward;
    - ``ctx.parents``: the positional inputs (Tensors or constants) of the call;
    - ``ctx.scope``: the name scope the op was created in.

    After a backward pass (without ``retain_graph=True``) the node is released: its
    saved arrays are dropped and a second backward through it raises.

    Non-array facts that backward needs (an axis, a shape) can simply be stored as
    attributes (``ctx.axis = axis``); they outlive the saved arrays.
    """

    # slots keep node creation cheap; a subclass may still set any other attribute
    __slots__ = ("parents", "needs_input_grad", "saved", "_released", "__dict__",
                 "__weakref__")
    scope = ""  # set per node when a name scope is open
    # What pictures and messages show about the op, set as class attributes on the op
    # (a custom Function may set them too): ``rule``, its local derivative as text
    # ("d(a*b)/da = b"); ``symbol``, drawn in its graph node ("×"; default: derived from
    # the class name); ``infix``, the operator in step-through expressions ("*"; None
    # for ops written as calls); ``hint``, advice when it makes a NaN or Inf.
    rule = ""
    symbol = None
    infix = None
    hint = None
    created_at = None  # "file:line" of the user code, recorded in anomaly mode

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    # -- saved arrays ---------------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    def __getattr__(self, name):
        # only reached for a slot never set: it reads as its default
        try:
            return _SLOT_DEFAULTS[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}") from None

    # -- naming ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"

    # -- the call -------------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on Tensors (and constants); record it if a gradient is needed."""
        n = len(args)
        if n == 2:  # one or two inputs: almost every op
            return _apply_2(cls, *args, kwargs)
        if n == 1:
            return _apply_1(cls, *args, kwargs)
        Tensor = _Tensor
        ctx = cls()
        arrays = tuple(a._data if isinstance(a, Tensor) else a for a in args)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = _grad_enabled and True in needs
        ctx.needs_input_grad = needs if record else (False,) * n
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as err:
            shape_error = _broadcast_error(ctx, arrays, err)
            if shape_error is None:
                raise
            raise shape_error from None
        return _output(ctx, out, args, record)


# ``Function.apply`` unrolled for one and two positional inputs: the forward hot path
# (Tensor's operators call these directly). They do exactly what the general path above
# does, with the calls spelled out so that CPython can make them fast.


def _apply_1(cls, a, kwargs=None):
    Tensor = _Tensor
    ctx = cls()
    if isinstance(a, Tensor):
        x = a._data
        record = a.requires_grad and _grad_enabled
    else:
        x = a
        record = False
    ctx.needs_input_grad = _TRUE_1 if record else _FALSE_1
    try:
        out = cls.forward(ctx, x, **kwargs) if kwargs else cls.forward(ctx, x)
    except ValueError as err:
        shape_error = _broadcast_error(ctx, (x,), err)
        if shape_error is None:
            raise
        raise shape_error from None
    return _output(ctx, out, (a,), record)


def _apply_2(cls, a, b, kwargs=None):
    Tensor = _Tensor
    ctx = cls()
    if isinstance(a, Tensor):
        x, need_a = a._data, a.requires_grad
    else:
        x, need_a = a, False
    if isinstance(b, Tensor):
        y, need_b = b._data, b.requires_grad
    else:
        y, need_b = b, False
    record = (need_a or need_b) and _grad_enabled
    ctx.needs_input_grad = (need_a, need_b) if record else _FALSE_2
    try:
        out = cls.forward(ctx, x, y, **kwargs) if kwargs else cls.forward(ctx, x, y)
    except ValueError as err:
        shape_error = _broadcast_error(ctx, (x, y), err)
        if shape_error is None:
            raise
        raise shape_error from None
    return _output(ctx, out, (a, b), record)


def _output(ctx, out, args, record):
    """The Tensor that ``apply`` returns; records ``ctx`` as its node if ``record``."""
    if not isinstance(out, _array_types):
        out = np.asarray(out)
    t = _new_object(_Tensor)
    t._data = out
    t._seq = next(_seq)
    if record:
        ctx.parents = args
        ctx._released = False
        if _scope:
            ctx.scope = _scope
        t._ctx = ctx
        t.requires_grad = True
    else:
        t._ctx = None
        t.requires_grad = False
    if _anomaly is not None:
        Tensor = _Tensor
        _anomaly.on_forward(ctx, out, tuple(a._data if isinstance(a, Tensor) else a
                                            for a in args))
    return t


def _broadcast_error(ctx, arrays, err):
    """For NumPy's broadcast error in forward, a ShapeError naming the op and the
    shapes; None for any other ValueError (which goes on as it was)."""
    if isinstance(err, ShapeError) or "broadcast" not in str(err):
        return None
    return ShapeError(_broadcast_message(ctx.name.lower(), arrays, err))


_array_types = (np.ndarray, np.generic)
_new_object = object.__new__
_TRUE_1, _FALSE_1, _FALSE_2 = (True,), (False,), (False, False)
# what a slot that was never set reads as (through ``__getattr__``)
_SLOT_DEFAULTS = {"parents": (), "needs_input_grad": (), "saved": (), "_released": False}


def _released_error(ctx) -> RuntimeError:
    return RuntimeError(
        f"{ctx.name}: trying to run backward through this part of the graph a second "
        "time, but that part of the graph was freed after the first backward. "
        "Pass retain_graph=True to the first .backward() call if you need to backward "
        "through the same graph again."
    )
