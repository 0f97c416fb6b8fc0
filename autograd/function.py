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

This module also holds the modes: grad mode (``no_grad`` / ``enable_grad``), the name
scope that modules open and the anomaly-mode hook, each per thread as in PyTorch, and
the default dtype.
"""

from __future__ import annotations

import contextlib
import itertools
import threading

import numpy as np

from .broadcasting import check_pair as _check_pair
from .switch import Switch

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


class _State:
    """One thread's modes. Only its own thread reads or changes it."""

    __slots__ = ("grad_enabled", "scope", "kinds", "anomaly")

    def __init__(self):
        self.grad_enabled = True
        self.scope = ""  # dotted name scope opened by ``name_scope`` ("layers.0")
        self.kinds = ()  # (scope, kind) of the open scopes given a kind: ("layers.0", "Linear")
        # set by ``anomaly.detect_anomaly``: an object whose on_forward(ctx, out, arrays)
        # runs after every op and on_backward(ctx, grad, sent) after every node's backward
        self.anomaly = None

    def changed(self) -> None:
        """Call after changing a mode: keeps ``_changed_threads`` true to this thread."""
        if self.grad_enabled and not self.scope and self.anomaly is None:
            _changed_threads.discard(_thread_id())
        else:
            _changed_threads.add(_thread_id())


class _Modes(threading.local):
    def __init__(self):  # runs once in each thread that uses it: the defaults
        self.state = _State()


_modes = _Modes()  # ``_modes.state``: the calling thread's modes
# The threads whose modes are not the defaults (recording, no scope, no anomaly mode).
# While it is empty an op reads nothing else; adding and discarding are atomic. (A
# thread that ends inside no_grad() stays listed: ops then read their thread's modes.)
_changed_threads: set = set()
_thread_id = threading.get_ident


_default_dtype = np.dtype(np.float64)  # process-wide, as in PyTorch

_Tensor = None  # set by tensor.py once the class exists (tensor.py imports this module)


def register_tensor_type(cls):
    global _Tensor
    _Tensor = cls


def tensor_type():
    """The ``Tensor`` class (defined in tensor.py, which imports this module)."""
    return _Tensor


def is_grad_enabled() -> bool:
    """Whether new ops are recorded for backward (in the calling thread)."""
    return _modes.state.grad_enabled


def _set_grad_mode(mode: bool) -> None:
    state = _modes.state
    if state.grad_enabled is not mode:
        state.grad_enabled = mode
        state.changed()


class set_grad_enabled(Switch):
    """Turn graph recording on or off, as PyTorch's ``torch.set_grad_enabled``.

    ``ag.set_grad_enabled(False)`` as a plain call switches recording off for the
    calling thread from then on; ``with ag.set_grad_enabled(False): ...`` (or as a
    decorator) switches it only inside, restoring the previous mode on the way out.
    """

    get = staticmethod(is_grad_enabled)
    set = staticmethod(_set_grad_mode)


class no_grad(set_grad_enabled):
    """Context manager / decorator: ops inside record no graph (evaluation, updates)."""

    def __init__(self):
        self.mode, self._prev, self._armed = False, [], False


class enable_grad(set_grad_enabled):
    """Context manager / decorator: record the graph even inside ``no_grad``."""

    def __init__(self):
        self.mode, self._prev, self._armed = True, [], False


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
    ``with name_scope("layers"): ...`` yields the full dotted scope. ``kind`` says what
    the scope is (``nn`` gives the module's class, ``"Linear"``): a drawing shows it
    next to the name (``layers.0 · Linear``), and every node made inside records the
    kinds of its open scopes (``ctx.scope_kinds``). (A class rather than a generator:
    entered once per module call, it must be cheap.)
    """

    __slots__ = ("name", "kind", "prev", "prev_kinds")

    def __init__(self, name: str, kind: str = ""):
        self.name = name
        self.kind = kind

    def _recreate_cm(self):  # as a decorator: a fresh one per call (recursion, threads)
        return name_scope(self.name, self.kind)

    def __enter__(self) -> str:
        state = _modes.state
        self.prev = prev = state.scope
        self.prev_kinds = state.kinds
        name = self.name
        state.scope = scope = f"{prev}.{name}" if prev and name else (name or prev)
        if self.kind and name:
            state.kinds += ((scope, self.kind),)
        if not prev:  # the outermost scope: the thread's modes change from the defaults
            state.changed()
        return scope

    def __exit__(self, *exc) -> bool:
        state = _modes.state
        state.scope = self.prev
        state.kinds = self.prev_kinds
        if not self.prev:
            state.changed()
        return False


def current_scope() -> str:
    return _modes.state.scope


def get_anomaly_hook():
    """The object anomaly mode installed in this thread (see ``detect_anomaly``), or None."""
    return _modes.state.anomaly


def set_anomaly_hook(hook) -> None:
    """Install ``hook`` (or None) for the calling thread: after every op
    ``hook.on_forward(ctx, out, arrays)`` runs, and after every node's backward
    ``hook.on_backward(ctx, grad, sent)``."""
    state = _modes.state
    state.anomaly = hook
    state.changed()


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

creation_order = itertools.count()  # a tensor is always made after its inputs


class Function:
    """Base class of every op. Subclass it and define ``forward`` and ``backward``.

    Instances are graph nodes (the ``ctx`` passed to forward and backward):

    - ``ctx.save_for_backward(*arrays)`` in forward, ``ctx.saved`` in backward;
    - ``ctx.needs_input_grad``: a bool per positional input of forward;
    - ``ctx.parents``: the positional inputs (Tensors or constants) of the call;
    - ``ctx.scope``: the name scope the op was created in, and ``ctx.scope_kinds`` the
      ``(scope, kind)`` of the scopes around it that have a kind (see ``name_scope``).

    After a backward pass (without ``retain_graph=True``) the node is released: its
    saved arrays are dropped and a second backward through it raises.

    Non-array facts that backward needs (an axis, a shape) can simply be stored as
    attributes (``ctx.axis = axis``); they outlive the saved arrays.
    """

    # slots keep node creation cheap; a subclass may still set any other attribute
    __slots__ = ("parents", "needs_input_grad", "saved", "_released", "__dict__",
                 "__weakref__")
    scope = ""  # set per node when a name scope is open
    scope_kinds = ()
    # What pictures and messages show about the op, set as class attributes on the op
    # (a custom Function may set them too): ``rule``, its local derivative as text
    # ("d(a*b)/da = b"); ``symbol``, drawn in its graph node ("×"; default: derived from
    # the class name); ``infix``, the operator in step-through expressions ("*"; None
    # for ops written as calls); ``hint``, advice when it makes a NaN or Inf; ``onnx``,
    # how ``export_onnx`` writes it (``onnx_node("Tanh")``, or a static method
    # ``onnx(ctx, g, inputs, out)``: see autograd/export.py; None: it does not export).
    rule = ""
    symbol = None
    infix = None
    hint = None
    onnx = None
    created_at = None  # "file:line" of the user code, recorded in anomaly mode
    # an elementwise op of two inputs: warns when it broadcasts (n,) with (n, 1)
    # (``broadcasting.py``); set on the arithmetic ops at the end of ops.py
    warn_broadcast = False

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
        """Run the op on Tensors (and constants); record it if a gradient is needed.

        Tensors go in as positional arguments (``forward`` receives their arrays in
        order); keyword arguments are options such as ``axis``.
        """
        n = len(args)
        if n == 2:  # one or two inputs: almost every op
            return apply_2(cls, *args, kwargs)
        if n == 1:
            return apply_1(cls, *args, kwargs)
        Tensor = _Tensor
        if kwargs:
            _check_options(cls, kwargs)
        ctx = cls()
        arrays = _weak_scalars(args, tuple(a._data if isinstance(a, Tensor) else a
                                           for a in args))
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        modes = _modes.state if _changed_threads else None
        record = True in needs and (modes is None or modes.grad_enabled)
        ctx.needs_input_grad = needs if record else (False,) * n
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        except ValueError as err:
            shape_error = _broadcast_error(ctx, arrays, err)
            if shape_error is None:
                raise
            raise shape_error from None
        return _output(ctx, out, args, record, modes)


# ``Function.apply`` unrolled for one and two positional inputs: the forward hot path
# (Tensor's operators call these directly). They do exactly what the general path above
# does, with the calls spelled out so that CPython can make them fast.


def apply_1(cls, a, kwargs=None):
    if kwargs:
        _check_options(cls, kwargs)
    ctx = cls()
    modes = _modes.state if _changed_threads else None
    if isinstance(a, _Tensor):
        x = a._data
        record = a.requires_grad and (modes is None or modes.grad_enabled)
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
    return _output(ctx, out, (a,), record, modes)


def apply_2(cls, a, b, kwargs=None):
    if kwargs:
        _check_options(cls, kwargs)
    Tensor = _Tensor
    ctx = cls()
    if isinstance(a, Tensor):
        x, need_a = a._data, a.requires_grad
    else:
        x, need_a = a, False
    if isinstance(b, Tensor):
        y, need_b = b._data, b.requires_grad
        if isinstance(a, _np_generic):  # np.float64(2) * x32 stays float32
            x = weak_scalar(a, y)
    else:
        y, need_b = b, False
        if isinstance(b, _np_generic):
            y = weak_scalar(b, x)
    modes = _modes.state if _changed_threads else None
    record = (need_a or need_b) and (modes is None or modes.grad_enabled)
    ctx.needs_input_grad = (need_a, need_b) if record else _FALSE_2
    try:
        out = cls.forward(ctx, x, y, **kwargs) if kwargs else cls.forward(ctx, x, y)
    except ValueError as err:
        shape_error = _broadcast_error(ctx, (x, y), err)
        if shape_error is None:
            raise
        raise shape_error from None
    if cls.warn_broadcast and type(x) is _ndarray and type(y) is _ndarray and x.ndim != y.ndim:
        _check_pair(cls, x, y)  # (n,) with (n, 1) makes (n, n): warn once per line
    return _output(ctx, out, (a, b), record, modes)


def _output(ctx, out, args, record, modes):
    """The Tensor that ``apply`` returns; records ``ctx`` as its node if ``record``.
    ``modes``: the thread's modes, or None when every thread has the defaults."""
    if not isinstance(out, _array_types):
        out = _checked_output(ctx, out)
    t = _new_object(_Tensor)
    t._data = out
    t._seq = next(creation_order)
    if record:
        ctx.parents = args
        ctx._released = False
        if modes is not None and modes.scope:
            ctx.scope = modes.scope
            if modes.kinds:
                ctx.scope_kinds = modes.kinds
        t._ctx = ctx
        t.requires_grad = True
    else:
        t._ctx = None
        t.requires_grad = False
    if modes is not None and modes.anomaly is not None:
        Tensor = _Tensor
        modes.anomaly.on_forward(ctx, out, tuple(a._data if isinstance(a, Tensor) else a
                                                 for a in args))
    return t


def _checked_output(ctx, out):
    """What forward returned, as an array: numbers (and lists of them) are accepted,
    anything else raises naming the op."""
    if not isinstance(out, _Tensor) and out is not None:
        arr = np.asarray(out)
        if arr.dtype.kind in "biufc":
            return arr
    what = "a Tensor" if isinstance(out, _Tensor) else type(out).__name__
    fix = (" (compute on the arrays forward receives, or return t.data)"
           if isinstance(out, _Tensor) else "")
    raise TypeError(
        f"{ctx.name}.forward returned {what}; forward must return its result as one "
        f"NumPy array (or a number){fix}")


def _check_options(cls, kwargs):
    for key, value in kwargs.items():
        if isinstance(value, _Tensor):
            raise TypeError(
                f"{cls.__name__}.apply: the Tensor passed as keyword argument {key}= would "
                "not be tracked, so no gradient could reach it. Pass tensors as positional "
                f"arguments ({cls.__name__}.apply(x, {key}_tensor)): forward(ctx, *arrays) "
                "receives them in that order; keyword arguments are options (axis=...).")


def weak_scalar(scalar, other):
    """A NumPy scalar next to an array takes the array's float dtype (PyTorch's rule:
    Python and NumPy scalars are weak), so ``x32 / np.sqrt(4.0)`` stays float32.
    Anything else is returned as it is."""
    if not isinstance(scalar, _np_generic):
        return scalar
    dtype = getattr(other, "dtype", None)
    if dtype is not None and dtype.kind == "f" and scalar.dtype.kind in "biuf":
        return dtype.type(scalar)
    return scalar


def _weak_scalars(args: tuple, arrays: tuple) -> tuple:
    """``weak_scalar`` over the inputs of an op with any number of inputs: each NumPy
    scalar constant takes the dtype of the first floating Tensor input."""
    for a in args:
        if isinstance(a, _np_generic):
            break
    else:
        return arrays  # no NumPy scalar: the usual case
    ref = next((d for a, d in zip(args, arrays)
                if isinstance(a, _Tensor) and d.dtype.kind == "f"), None)
    return tuple(weak_scalar(d, ref) if isinstance(a, _np_generic) and d.dtype.kind != "b"
                 else d for a, d in zip(args, arrays))


def _broadcast_error(ctx, arrays, err):
    """For NumPy's broadcast error in forward, a ShapeError naming the op and the
    shapes; None for any other ValueError (which goes on as it was)."""
    # only NumPy's own message: an op's ValueError that mentions broadcasting goes on
    if isinstance(err, ShapeError) or not str(err).startswith(_NUMPY_BROADCAST):
        return None
    return ShapeError(_broadcast_message(ctx.name.lower(), arrays, err))


_NUMPY_BROADCAST = "operands could not be broadcast together"
_array_types = (np.ndarray, np.generic)
_ndarray = np.ndarray
_np_generic = np.generic
_new_object = object.__new__
_TRUE_1, _FALSE_1, _FALSE_2 = (True,), (False,), (False, False)
# what a slot that was never set reads as (through ``__getattr__``)
_SLOT_DEFAULTS = {"parents": (), "needs_input_grad": (), "saved": (), "_released": False}


def released_error(ctx) -> RuntimeError:
    return RuntimeError(
        f"{ctx.name}: trying to run backward through this part of the graph a second "
        "time, but that part of the graph was freed after the first backward. "
        "To look at a backward pass step by step, call ag.trace_backward(loss) instead of "
        "loss.backward(): it runs the backward pass itself. To backward through the same "
        "graph again, pass retain_graph=True to the first .backward() call; gradients then "
        "add up in .grad, so call zero_grad() (or set .grad = None) between the passes."
    )
