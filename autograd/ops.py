"""Every primitive op: forward and backward side by side, on plain NumPy arrays.

Reading one class teaches the chain rule for that op: ``backward`` receives
``grad = dL/d(out)`` and returns ``dL/d(input) = grad * d(out)/d(input)`` for each input
(``None`` for an input that needs none). Gradients may come back in the broadcast
shape of the output: the engine sums them down to each input's shape.

What pictures and messages show about an op sits on the op too (see ``Function``):
``rule``, its local derivative as text (the step-through shows it); ``symbol``, drawn in
its graph node; ``infix``, its operator in expressions; ``hint``, advice in anomaly mode.

The built-in ops set ``ctx.saved = (...)`` directly: that is all
``ctx.save_for_backward(...)`` does, without the cost of a call on the forward hot path.
"""

from __future__ import annotations

import math

import numpy as np

from .function import Function, ShapeError, weak_scalar

__all__ = [
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "MatMul",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Tanh",
    "Sigmoid",
    "Relu",
    "Clip",
    "Maximum",
    "Minimum",
    "Where",
    "Sum",
    "Mean",
    "Max",
    "Min",
    "Softmax",
    "LogSoftmax",
    "Reshape",
    "Transpose",
    "GetItem",
    "Concat",
    "Stack",
    # shapes, reductions and scans
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "LogSumExp",
    "Var",
    "Std",
    "Norm",
    "CumSum",
]

# ----------------------------------------------------------------------- helpers


def _expand(grad, shape, axis, keepdims):
    """Broadcast a reduction's gradient back over the reduced axes."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, _normalize_axes(axis, len(shape)))
    return np.broadcast_to(grad, shape)


def _normalize_axes(axis, ndim):
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim if ndim else a for a in axes)


def _masked(grad, weight):
    """``grad * weight`` for a 0/1 (or ½ at ties) ``weight``: the backward of an op whose
    local derivative is 0 off a mask (relu, clip, max). Where the weight is 0 the result
    is 0 even for an infinite gradient, as in PyTorch, not 0 · inf = NaN. (``np.where``
    is several times slower than a product, so it runs only when the product holds an
    inf or a NaN, which one dot product of the result with itself tells.)"""
    out = grad * weight
    flat = out.reshape(-1) if type(out) is np.ndarray else out
    if np.isfinite(np.dot(flat, flat)):
        return out
    return np.where(weight != 0, out, 0)


def _reduce(fn, a, axis, keepdims):
    """``fn(a, axis, keepdims)``, a NumPy reduction, with our message for a bad axis."""
    try:
        return fn(a, axis=axis, keepdims=keepdims)
    except (np.exceptions.AxisError, TypeError):
        _check_axes(fn.__name__, a, axis)
        raise


def _check_axes(op, a, axis):
    """Raise ``AxisError`` naming the op and shape when ``axis`` does not fit ``a``."""
    ndim = np.ndim(a)
    for ax in axis if isinstance(axis, (tuple, list)) else (axis,):
        if ax is None:
            continue
        if not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int, a tuple of ints or None, got "
                            f"{ax!r}")
        if not -max(ndim, 1) <= ax < max(ndim, 1):
            raise np.exceptions.AxisError(
                f"{op}: axis {ax} is out of range for a tensor of shape {np.shape(a)} "
                f"({ndim} dimensions): axes run from {-ndim} to {ndim - 1}"
                if ndim else f"{op}: axis {ax} does not exist on a 0-d tensor; use "
                "axis=None (or 0 or -1)")


def _bool_error(op, symbol, fix, *arrays) -> TypeError:
    dtypes = " and ".join(str(np.result_type(a)) for a in arrays)
    return TypeError(f"{op}: the {symbol} operator is not defined for boolean tensors "
                     f"(dtypes {dtypes}); use {fix}, or convert to numbers first "
                     "(ag.Tensor(values, dtype=np.float64))")


# ----------------------------------------------------------------------- arithmetic


class Add(Function):
    rule = "d(a+b)/da = 1,  d(a+b)/db = 1"
    symbol = "+"
    infix = "+"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    rule = "d(a-b)/da = 1,  d(a-b)/db = -1"
    symbol = "−"
    infix = "-"

    @staticmethod
    def forward(ctx, a, b):
        try:
            return a - b
        except TypeError:
            raise _bool_error("sub", "-", "a ^ b (logical xor)", a, b) from None

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    rule = "d(a*b)/da = b,  d(a*b)/db = a"
    symbol = "×"
    infix = "*"

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        # keep only what backward reads (x * 0.5 need not keep x alive)
        ctx.saved = (a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    rule = "d(a/b)/da = 1/b,  d(a/b)/db = -a/b²"
    symbol = "÷"
    infix = "/"
    hint = "division by zero (or 0/0): add a small epsilon to the denominator"

    @staticmethod
    def forward(ctx, a, b):
        ctx.saved = (a if ctx.needs_input_grad[1] else None, b)  # a only for d/db
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        ga = grad / b if need_a else None
        gb = -grad * a / (b * b) if need_b else None
        return ga, gb


class Neg(Function):
    rule = "d(-a)/da = -1"
    symbol = "−x"
    infix = "-"

    @staticmethod
    def forward(ctx, a):
        try:
            return -a
        except TypeError:
            raise _bool_error("neg", "-", "~a (logical not)", a) from None

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    rule = "d(a**p)/da = p·a**(p-1),  d(a**p)/dp = a**p·log(a)"
    symbol = "^"
    infix = "**"
    hint = "a negative base to a fractional power is NaN, and 0 to a negative power is inf"

    @staticmethod
    def forward(ctx, a, p):
        try:
            out = _power(a, p)
        except ValueError as err:
            if "negative integer powers" not in str(err):
                raise  # a broadcast error: function.py names the shapes
            raise ValueError(
                f"pow: an integer tensor (dtype {np.result_type(a)}) to a negative integer "
                "power is not an integer; make the base floating-point first "
                "(ag.Tensor(values, dtype=np.float64))") from None
        ctx.saved = (a, p, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, p, out = ctx.saved
        need_a, need_p = ctx.needs_input_grad
        ga = None
        if need_a:  # p·a**(p-1), and 0 where p == 0 (a**0 is flat even at a = 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = grad * p * _power(a, p - 1)
                zero = p == 0
                if zero is True or (zero is not False and np.any(zero)):
                    ga = np.where(zero, 0.0, ga)
        gp = None
        if need_p:
            # d/dp is 0 where a == 0 (0**p is flat in p for p > 0), as in PyTorch
            with np.errstate(divide="ignore", invalid="ignore"):
                # 0 only where a == 0 and p >= 0; 0**p for p < 0 is inf, and so is d/dp
                flat = (a == 0) & (p >= 0)
                gp = grad * np.where(flat, 0.0, out * np.log(np.where(flat, 1.0, a)))
        return ga, gp


def _power(a, p):
    """``a ** p``; a number power of ±½ as PyTorch computes it, sqrt(a) and 1 / sqrt(a)
    (at -0 they give -0 and -inf, where ``**`` gives +0 and +inf)."""
    if isinstance(p, (float, np.floating)):
        if p == 0.5:
            return np.sqrt(a)
        if p == -0.5:
            with np.errstate(divide="ignore"):
                return 1 / np.sqrt(a)
    return a**p


class MatMul(Function):
    rule = "d(A@B)/dA = G@Bᵀ,  d(A@B)/dB = Aᵀ@G"
    symbol = "@"
    infix = "@"

    @staticmethod
    def forward(ctx, a, b):
        if not isinstance(a, np.ndarray):  # lists and numbers, as the other operators take
            a = np.asarray(a)
        if not isinstance(b, np.ndarray):
            b = np.asarray(b)
        a_nd, b_nd = a.ndim, b.ndim
        if a_nd == 0 or b_nd == 0:
            raise ShapeError(
                f"matmul: operands must be at least 1-D, got shapes {np.shape(a)} and "
                f"{np.shape(b)}; use * to multiply by a scalar"
            )
        k_a = a.shape[-1]
        k_b = b.shape[-2] if b_nd > 1 else b.shape[0]
        if k_a != k_b:
            sa, sb = tuple(a.shape), tuple(b.shape)
            raise ShapeError(
                f"matmul: shapes {sa} and {sb} do not fit: the last dimension of the "
                f"first ({k_a}) must equal the "
                f"{'second-to-last' if b_nd > 1 else 'only'} dimension of the second "
                f"({k_b}). For {sa} @ B, B needs shape ({k_a}, ...)"
                + (f"; did you mean x @ w.T (shape {sb[::-1]})?" if b_nd == 2
                   and sb[1] == k_a else "")
            )
        ctx.saved = (a, b)
        try:
            return a @ b
        except ValueError:  # only the batch dimensions are left to disagree
            raise ShapeError(
                f"matmul: shapes {a.shape} and {b.shape}: the batch dimensions "
                f"{a.shape[:-2]} and {b.shape[:-2]} do not broadcast. matmul multiplies "
                "the last two dimensions as matrices and broadcasts the dimensions before "
                "them (aligned from the right, each pair equal or 1): give both the same "
                "batch shape, or 1 where one operand is shared") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar out
            return (grad * b if need_a else None), (grad * a if need_b else None)
        # treat a 1-D operand as a matrix with one row (a) or one column (b)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if b.ndim == 1:
            g2 = g2[..., None]
        ga = gb = None
        if need_a:
            ga = g2 @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if need_b:
            gb = np.swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb


# ----------------------------------------------------------------------- elementwise


class Exp(Function):
    rule = "d(exp a)/da = exp a"
    symbol = "exp"
    hint = ("exp overflows to inf above about 709 (float64) or 88 (float32): subtract the "
            "maximum first, or use softmax / log_softmax")

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0]


class Log(Function):
    rule = "d(log a)/da = 1/a"
    symbol = "log"
    hint = ("log is NaN for negative inputs and -inf at 0: clip the input "
            "(x.clip(min=1e-12)) or use a stable form (log_softmax, "
            "binary_cross_entropy_with_logits)")

    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.saved[0]


class Sqrt(Function):
    rule = "d(√a)/da = 1/(2√a)"
    symbol = "√"
    hint = ("sqrt is NaN for negative inputs, and its gradient is inf at 0: add a small "
            "epsilon (sqrt(x + 1e-12))")

    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad / (2 * ctx.saved[0])


class Abs(Function):
    rule = "d|a|/da = sign(a)  (0 at a = 0)"
    symbol = "|x|"

    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.sign(ctx.saved[0])


class Tanh(Function):
    rule = "d(tanh a)/da = 1 - tanh²a"
    symbol = "tanh"

    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        y = ctx.saved[0]
        return grad * (1 - y * y)


class Sigmoid(Function):
    rule = "dσ(a)/da = σ(a)(1 - σ(a))"
    symbol = "σ"

    @staticmethod
    def forward(ctx, a):
        # 1 / (1 + exp(-a)): 4 passes over the data. Where exp(-a) overflows (a < -709
        # in float64, < -88 in float32) it is inf and the result 0, which is σ(a)
        # rounded to the dtype (PyTorch computes it the same way); no NaN, no warning.
        with np.errstate(over="ignore"):
            out = 1.0 / (1.0 + np.exp(-a))
        ctx.saved = (out,)
        return out

    @staticmethod
    def backward(ctx, grad):
        s = ctx.saved[0]
        return grad * s * (1 - s)


class Relu(Function):
    rule = "d relu(a)/da = 1 if a > 0 else 0"
    symbol = "relu"

    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a > 0,)
        # +0 for negatives and -inf (a * mask gives -0 and NaN), and -0 for -0 as in
        # PyTorch: where both are zeros np.maximum returns its second argument
        return np.maximum(0, a)

    @staticmethod
    def backward(ctx, grad):
        return _masked(grad, ctx.saved[0])


class Clip(Function):
    rule = "d clip(a, lo, hi)/da = 1 if lo ≤ a ≤ hi else 0"
    symbol = "clip"

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        if isinstance(lo, np.generic) or isinstance(hi, np.generic):
            lo, hi = weak_scalar(lo, a), weak_scalar(hi, a)  # x32.clip(max=np.float64(1))
        ctx.saved = (a,)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (a,), lo, hi = ctx.saved, ctx.lo, ctx.hi
        inside = np.ones(np.shape(a), dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        return _masked(grad, inside)


class _Pick(Function):
    """Elementwise max / min of two inputs: the gradient goes to the input picked;
    where they tie, each gets half (as in PyTorch)."""

    pick = None  # np.maximum or np.minimum
    wins = None  # np.greater or np.less: where input a is the one picked

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.saved = (a, b)
        return cls.pick(a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved
        wa = cls.wins(a, b) + 0.5 * (a == b)  # a's share: 1, ½ at a tie, or 0
        need_a, need_b = ctx.needs_input_grad
        return (_masked(grad, wa) if need_a else None), (_masked(grad, 1 - wa) if need_b
                                                          else None)


class Maximum(_Pick):
    rule = "d max(a,b)/da = 1 where a > b, ½ where a = b"
    symbol = "max"
    pick = staticmethod(np.maximum)
    wins = staticmethod(np.greater)


class Minimum(_Pick):
    rule = "d min(a,b)/da = 1 where a < b, ½ where a = b"
    symbol = "min"
    pick = staticmethod(np.minimum)
    wins = staticmethod(np.less)


class Where(Function):
    rule = "d where(c, a, b)/da = c,  /db = not c"
    symbol = "where"

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond, dtype=bool)
        ctx.saved = (cond,)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved
        _, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros((), grad.dtype)
        return (
            None,
            np.where(cond, grad, zero) if need_a else None,
            np.where(cond, zero, grad) if need_b else None,
        )


# ----------------------------------------------------------------------- reductions


class Sum(Function):
    rule = "d(Σa)/da_i = 1"
    symbol = "Σ"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = np.shape(a), axis, keepdims
        return _reduce(np.sum, a, axis, keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.shape, ctx.axis, ctx.keepdims)


class Mean(Function):
    rule = "d(mean a)/da_i = 1/n"
    symbol = "mean"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        size = np.size(a)
        if size:
            out = _reduce(np.mean, a, axis, keepdims)
            n = size // max(np.size(out), 1)
        else:  # the mean of nothing is NaN (NumPy would warn), an empty axis stays empty
            out, n = _reduce(np.sum, a, axis, keepdims) * np.nan, 1
        ctx.shape, ctx.axis, ctx.keepdims, ctx.n = np.shape(a), axis, keepdims, n
        return out

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad / ctx.n, ctx.shape, ctx.axis, ctx.keepdims)


class _Extremum(Function):
    """max / min over axes; ties share the gradient equally (documented behaviour)."""

    reduce = None

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        try:
            out = _reduce(cls.reduce, a, axis, keepdims)
        except np.exceptions.AxisError:
            raise
        except ValueError:  # NumPy: a zero-size reduction has no identity
            raise ValueError(
                f"{cls.__name__.lower()}: tensor of shape {np.shape(a)} has no values along "
                f"axis={axis} to take the {cls.__name__.lower()} of; reduce along an axis "
                "of nonzero length") from None
        ctx.saved = (a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        return out

    @staticmethod
    def backward(ctx, grad):
        (a, out), axis, keepdims = ctx.saved, ctx.axis, ctx.keepdims
        shape = np.shape(a)
        hit = a == _expand(out, shape, axis, keepdims)
        count = np.sum(hit, axis=axis, keepdims=True)
        return _masked(_expand(grad, shape, axis, keepdims), hit / count)


class Max(_Extremum):
    rule = "d max(a)/da_i = 1 at the maximum (split equally among ties)"
    symbol = "max"
    reduce = staticmethod(np.max)


class Min(_Extremum):
    rule = "d min(a)/da_i = 1 at the minimum (split equally among ties)"
    symbol = "min"
    reduce = staticmethod(np.min)


class Softmax(Function):
    rule = "d softmax/da: s ⊙ (g - Σ g⊙s)"
    symbol = "softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        _check_axes("softmax", a, axis)
        if np.size(a) == 0:  # nothing to normalise: an empty result, as in NumPy/PyTorch
            ctx.saved, ctx.axis = (a,), axis
            return np.array(a, dtype=np.result_type(a, np.float16))
        z = np.exp(a - np.max(a, axis=axis, keepdims=True))
        out = z / np.sum(z, axis=axis, keepdims=True)
        ctx.saved = (out,)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved
        return s * (grad - np.sum(grad * s, axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    rule = "d log_softmax/da: g - softmax ⊙ Σ g"
    symbol = "log softmax"

    @staticmethod
    def forward(ctx, a, axis=-1):
        _check_axes("log_softmax", a, axis)
        if np.size(a) == 0:
            ctx.saved, ctx.axis = (a,), axis
            return np.array(a, dtype=np.result_type(a, np.float16))
        shifted = a - np.max(a, axis=axis, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.saved = (out,)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True)


# ----------------------------------------------------------------------- shape


class Reshape(Function):
    rule = "reshape: the gradient is reshaped back"
    symbol = "reshape"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = np.shape(a)
        try:
            return np.reshape(a, shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape shape {np.shape(a)} ({np.size(a)} elements) "
                f"into {shape}; the sizes must multiply to {np.size(a)} "
                "(use -1 for one inferred dimension)"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return np.reshape(grad, ctx.shape)


class Transpose(Function):
    rule = "transpose: the gradient is transposed back"
    symbol = "ᵀ"

    @staticmethod
    def forward(ctx, a, axes=None):
        if axes is not None:
            _check_axes("transpose", a, axes)
            if len(axes) != np.ndim(a) or len(set(np.mod(axes, max(np.ndim(a), 1)))) != len(axes):
                raise ValueError(
                    f"transpose: axes {tuple(axes)} are not a permutation of the {np.ndim(a)} "
                    f"axes of shape {np.shape(a)}; name each axis once, e.g. "
                    f"{tuple(reversed(range(np.ndim(a))))}")
        out = np.transpose(a, axes)
        # negative axes normalised, so that argsort in backward inverts the permutation
        ctx.axes = None if axes is None else tuple(ax % np.ndim(a) for ax in axes)
        return out

    @staticmethod
    def backward(ctx, grad):
        axes = ctx.axes
        return np.transpose(grad, None if axes is None else np.argsort(axes))


def _is_basic_index(idx) -> bool:
    """True when no element can be selected twice (so backward may assign)."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    for p in parts:
        if isinstance(p, (slice, int, np.integer)) or p is None or p is Ellipsis:
            continue
        if isinstance(p, np.ndarray) and p.dtype == bool:
            continue
        return False
    return True


class GetItem(Function):
    rule = "d a[idx]/da: the gradient scattered back to idx (summed over repeats)"
    symbol = "[ ]"

    @staticmethod
    def forward(ctx, a, idx):
        ctx.shape, ctx.idx = np.shape(a), idx
        try:
            return a[idx]
        except IndexError as err:
            raise IndexError(f"getitem: index {idx!r} does not fit shape {np.shape(a)}: "
                             f"{err}") from None

    @staticmethod
    def backward(ctx, grad):
        shape, idx = ctx.shape, ctx.idx
        out = np.zeros(shape, dtype=grad.dtype)
        if _is_basic_index(idx):
            out[idx] = grad
        else:
            np.add.at(out, idx, grad)
        return out


class Concat(Function):
    rule = "concat: the gradient is split back into the pieces"
    symbol = "concat"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        sizes = [np.shape(a)[axis] if np.ndim(a) else 1 for a in arrays]
        ctx.splits, ctx.axis = np.cumsum(sizes)[:-1], axis
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"concat: shapes {shapes} must agree on every axis but "
                             f"axis={axis}: {err}") from None

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


class Stack(Function):
    rule = "stack: the gradient is unstacked back into the pieces"
    symbol = "stack"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.n, ctx.axis = len(arrays), axis
        try:
            return np.stack(arrays, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"stack: all inputs need the same shape, got {shapes}: "
                             f"{err}") from None

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.take(grad, i, axis=ctx.axis) for i in range(ctx.n))


# ----------------------------------------------------------------------- erf

__all__ += ["Erf"]

_ERF = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; libm's, element by element


class Erf(Function):
    rule = "d(erf a)/da = 2/√π · exp(-a²)"
    symbol = "erf"

    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        # float32 in, float32 out
        return np.asarray(_ERF(a), dtype=a.dtype if a.dtype.kind == "f" else np.float64)

    @staticmethod
    def backward(ctx, grad):
        a = ctx.saved[0]
        return grad * (np.exp(-(a * a)) * (2.0 / np.sqrt(np.pi))).astype(grad.dtype,
                                                                        copy=False)


# ----------------------------------------------------------------------- shapes,
# reductions and scans: squeeze, unsqueeze, flatten, logsumexp, var, std, norm, cumsum


class _Regroup(Function):
    """An op that only regroups the same values into another shape: the gradient is
    the upstream gradient reshaped back to the input's shape."""

    @staticmethod
    def backward(ctx, grad):
        return np.reshape(grad, ctx.shape)


class Squeeze(_Regroup):
    rule = "squeeze: the gradient is reshaped back (the size-1 axes return)"
    symbol = "squeeze"

    @staticmethod
    def forward(ctx, a, axis=None):
        shape = np.shape(a)
        ctx.shape = shape
        if axis is None:
            return np.reshape(a, tuple(n for n in shape if n != 1))
        _check_axes("squeeze", a, axis)
        # as torch.squeeze: an axis whose length is not 1 is left in place
        drop = {ax % max(len(shape), 1) for ax in (axis if isinstance(axis, tuple) else (axis,))}
        return np.reshape(a, tuple(n for i, n in enumerate(shape) if not (i in drop and n == 1)))


class Unsqueeze(_Regroup):
    rule = "unsqueeze: the gradient is reshaped back (the new axes go)"
    symbol = "unsqueeze"

    @staticmethod
    def forward(ctx, a, axis):
        ctx.shape = np.shape(a)
        axes = axis if isinstance(axis, tuple) else (axis,)
        nd = np.ndim(a) + len(axes)
        for ax in axes:
            if not isinstance(ax, (int, np.integer)):
                raise TypeError(f"unsqueeze: axis must be an int or a tuple of ints, got {ax!r}")
            if not -nd <= ax < nd:
                raise np.exceptions.AxisError(
                    f"unsqueeze: axis {ax} is out of range for a tensor of shape "
                    f"{np.shape(a)}: a new axis goes at {-nd} to {nd - 1}")
        try:
            return np.expand_dims(a, axis)
        except ValueError:
            raise ValueError(f"unsqueeze: axes {axis} name the same new axis twice") from None


class Flatten(_Regroup):
    rule = "flatten: the gradient is reshaped back"
    symbol = "flatten"

    @staticmethod
    def forward(ctx, a, start_dim=0, end_dim=-1):
        shape = np.shape(a)
        ctx.shape = shape
        _check_axes("flatten", a, (start_dim, end_dim))
        nd = max(len(shape), 1)
        start, end = start_dim % nd, end_dim % nd
        if start > end:
            raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} "
                             f"for shape {shape}; give start_dim <= end_dim")
        if not shape:  # a 0-d tensor flattens to one element, as in PyTorch
            return np.reshape(a, (1,))
        merged = int(np.prod(shape[start:end + 1]))
        return np.reshape(a, shape[:start] + (merged,) + shape[end + 1:])


class LogSumExp(Function):
    rule = "d logsumexp(a)/da_i = exp(a_i - logsumexp(a)) = softmax(a)_i"
    symbol = "logsumexp"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        _check_axes("logsumexp", a, axis)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if np.size(a) == 0:  # log of an empty sum: -inf (an empty axis stays empty)
                m = np.zeros((), dtype=np.result_type(a, np.float16))
            else:  # shift by the max (0 where it is infinite: the sum says it all then)
                m = np.max(a, axis=axis, keepdims=True)
                m = np.where(np.isinf(m), 0, m).astype(m.dtype, copy=False)
            out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
        ctx.saved = (a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        if not keepdims:
            out = np.reshape(out, () if axis is None else np.squeeze(out, axis).shape)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        grad = _expand(grad, np.shape(a), ctx.axis, ctx.keepdims)
        with np.errstate(invalid="ignore"):
            return grad * np.exp(a - out)


def _moment_args(op, a, axis):
    """``(deviations from the mean, n)`` of ``a`` over ``axis``: two passes, as PyTorch."""
    _check_axes(op, a, axis)
    if axis is None or np.ndim(a) == 0:
        n = np.size(a) if axis is None else 1
    else:
        n = int(np.prod([np.shape(a)[ax] for ax in _normalize_axes(axis, np.ndim(a))]))
    total = np.sum(a, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        mean = total / n if n else total * np.nan  # the mean of nothing is NaN
    return a - mean, n


class Var(Function):
    rule = "d var(a)/da_i = 2 (a_i - mean a) / (n - ddof)"
    symbol = "var"

    @staticmethod
    def forward(ctx, a, axis=None, ddof=0, keepdims=False):
        if np.result_type(a).kind not in "fc":
            a = np.asarray(a, dtype=np.float64)
        d, n = _moment_args("var", a, axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.sum(d * d, axis=axis, keepdims=keepdims) / max(n - ddof, 0)
        ctx.saved = (d,)
        ctx.axis, ctx.keepdims, ctx.dof = axis, keepdims, n - ddof
        return out

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved
        grad = _expand(grad, np.shape(d), ctx.axis, ctx.keepdims)
        return _var_grad(grad, d, ctx.dof, ctx.axis is None or np.ndim(d) == 0)


def _var_grad(grad, d, dof, whole):
    """``grad · 2d / dof``; with no degrees of freedom left, PyTorch's answer: over the
    whole tensor inf (NaN where d = 0), along axes the quotient as it falls."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if dof <= 0 and whole:
            return grad * np.where(d == 0, np.nan, np.inf).astype(d.dtype)
        return d.dtype.type(2.0 / dof if dof else np.inf) * grad * d  # PyTorch's order


class Std(Function):
    rule = "d std(a)/da_i = (a_i - mean a) / ((n - ddof) · std a)  (0 where std a = 0)"
    symbol = "std"

    @staticmethod
    def forward(ctx, a, axis=None, ddof=0, keepdims=False):
        if np.result_type(a).kind not in "fc":
            a = np.asarray(a, dtype=np.float64)
        d, n = _moment_args("std", a, axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.sqrt(np.sum(d * d, axis=axis, keepdims=keepdims) / max(n - ddof, 0))
        ctx.saved = (d, out)
        ctx.axis, ctx.keepdims, ctx.dof = axis, keepdims, n - ddof
        return out

    @staticmethod
    def backward(ctx, grad):
        d, out = ctx.saved
        with np.errstate(invalid="ignore", divide="ignore"):
            half = np.where(out == 0, 0, grad / (out * 2)).astype(d.dtype, copy=False)
        half = _expand(half, np.shape(d), ctx.axis, ctx.keepdims)
        return _var_grad(half, d, ctx.dof, ctx.axis is None or np.ndim(d) == 0)


class Norm(Function):
    rule = ("d‖a‖₂/da = a/‖a‖₂ (0 at a = 0),  d‖a‖₁/da = sign a,  "
            "d‖a‖∞/da = sign a at the largest |a_i| (split among ties)")
    symbol = "‖x‖"

    @staticmethod
    def forward(ctx, a, ord=2, axis=None, keepdims=False):
        if ord not in (1, 2, np.inf):
            raise ValueError(f"norm: ord={ord!r} is not supported; vector norms take ord=1, "
                             "2 or inf (math.inf)")
        _check_axes("norm", a, axis)
        if np.result_type(a).kind not in "fc":
            a = np.asarray(a, dtype=np.float64)
        if ord == 2:
            out = np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims))
        elif ord == 1:
            out = np.sum(np.abs(a), axis=axis, keepdims=keepdims)
        else:
            try:
                out = np.max(np.abs(a), axis=axis, keepdims=keepdims)
            except ValueError:
                raise ValueError(
                    f"norm: the inf-norm of shape {np.shape(a)} along axis={axis} reduces "
                    "an empty axis, which has no largest value; reduce along an axis of "
                    "nonzero length") from None
        ctx.saved = (a, out)
        ctx.ord, ctx.axis, ctx.keepdims = ord, axis, keepdims
        return out

    @staticmethod
    def backward(ctx, grad):
        (a, out), axis, keepdims = ctx.saved, ctx.axis, ctx.keepdims
        shape = np.shape(a)
        if ctx.ord == 1:
            return _expand(grad, shape, axis, keepdims) * np.sign(a)
        if ctx.ord == 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(out == 0, 0, grad / out).astype(a.dtype, copy=False)
            return a * _expand(scale, shape, axis, keepdims)
        absa = np.abs(a)
        hit = absa == _expand(out, shape, axis, keepdims)
        count = np.sum(hit, axis=axis, keepdims=True)
        return _masked(_expand(grad, shape, axis, keepdims), np.sign(a) * hit / count)


class CumSum(Function):
    rule = "d cumsum(a)_j/da_i = 1 for i ≤ j: the gradient is cumsum'd in reverse"
    symbol = "cumsum"

    @staticmethod
    def forward(ctx, a, axis=None):
        ctx.shape = np.shape(a)
        if axis is None:  # NumPy: over the flattened values
            a = np.reshape(a, -1)
            axis = 0
        else:
            _check_axes("cumsum", a, axis)
        ctx.axis = axis
        if np.ndim(a) == 0:  # PyTorch: a 0-d tensor is its own running sum
            return np.array(a)
        return np.cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        if np.ndim(grad):
            axis = ctx.axis
            grad = np.flip(np.cumsum(np.flip(grad, axis), axis=axis), axis)
        return np.reshape(grad, ctx.shape)
