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

from .export import onnx_node
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
    # padding, gathering, sorting, einsum
    "Pad",
    "TakeAlongAxis",
    "IndexAdd",
    "ScatterAdd",
    "Sort",
    "TopK",
    "Einsum",
    # convolution
    "Conv1d",
    "Conv2d",
    # pooling
    "MaxPool2d",
    "AvgPool2d",
]

# ----------------------------------------------------------------------- helpers


def _expand(grad, shape, axis, keepdims):
    """Broadcast a reduction's gradient back over the reduced axes."""
    if axis is not None and not keepdims:  # the reduced axes back, of length 1
        axes = _normalize_axes(axis, len(shape))
        grad = grad.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    if isinstance(grad, _ARRAYS):
        return np.broadcast_to(grad, shape)
    return BroadcastTo.apply(grad, shape=tuple(shape))  # a Tensor: the op, directly


def _normalize_axes(axis, ndim):
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim if ndim else a for a in axes)


def _masked(grad, weight):
    """``grad * weight`` for a 0/1 (or ½ at ties) ``weight``: the backward of an op whose
    local derivative is 0 off a mask (relu, clip, max). Where the weight is 0 the result
    is 0 even for an infinite gradient, as in PyTorch, not 0 · inf = NaN. (``np.where``
    is several times slower than a product, so it runs only when the product holds an
    inf or a NaN, which one dot product of the result with itself tells.)"""
    if not isinstance(grad, _ARRAYS):  # a Tensor (create_graph): where, always
        if weight.dtype == bool:
            return Where.apply(weight, grad, 0)  # one recorded op
        return Where.apply(weight != 0, grad * weight, 0)
    out = grad * weight
    flat = out.reshape(-1) if type(out) is np.ndarray else out
    if np.isfinite(np.dot(flat, flat)):
        return out
    return np.where(weight != 0, out, 0)


_ARRAYS = (np.ndarray, np.generic)


def _cast(x, dtype):
    """``x`` in ``dtype``; a Tensor (a backward running under create_graph) as it is."""
    return x.astype(dtype, copy=False) if isinstance(x, _ARRAYS) else x


def _axis_index(ndim, axis, part) -> tuple:
    """The index that takes ``part`` (a slice or an int) along ``axis``: indexing, which
    works on arrays and Tensors alike."""
    idx = [slice(None)] * ndim
    idx[axis] = part
    return tuple(idx)


def _scatter(grad, shape, index, accumulate=True):
    """Zeros of ``shape`` with ``grad`` added at ``index`` (repeats add up; with
    ``accumulate=False`` each place is written once): the adjoint of ``a[index]``, what
    the backward of every indexing op computes. On a Tensor (a backward under
    create_graph) it is the op ``Scatter``, whose own backward is indexing again."""
    if isinstance(grad, _ARRAYS):
        return _scatter_values(grad, shape, index, accumulate)
    return Scatter.apply(grad, shape=shape, index=index, accumulate=accumulate)


def _scatter_values(grad, shape, index, accumulate):
    out = np.zeros(shape, dtype=grad.dtype)
    if accumulate:
        np.add.at(out, index, grad)
    else:
        out[index] = grad
    return out


def _reduce(fn, a, axis, keepdims):
    """``fn(a, axis, keepdims)``, a NumPy reduction, with our message for a bad axis."""
    if fn is np.sum or fn is np.mean:
        rows = sum_rows(a, axis, keepdims)
        if rows is not None:  # (a mean as NumPy takes it: the sum, divided by the count)
            return rows if fn is np.sum else rows / (a.size // rows.size)
    try:
        return fn(a, axis=axis, keepdims=keepdims)
    except (np.exceptions.AxisError, TypeError):
        _check_axes(fn.__name__, a, axis)
        raise


_ONES: dict = {}
_LEADING = [tuple(range(k)) for k in range(65)]  # leading axes (0, ..., k-1): NumPy has <= 64


def sum_rows(a, axis, keepdims=False):
    """The sum of ``a`` over its leading axes (``axis`` 0, or 0 to k-1), as a product with
    a vector of ones, for a C-contiguous float array; None for any other sum.

    NumPy adds the rows of a matrix one after another: 2-20x slower than BLAS on the
    tall, narrow gradients that a bias or a broadcast batch sums (a 1000 x 5 matrix:
    21 us against 3 us), and less accurate (BLAS keeps several partial sums). The
    gradient of every bias broadcast over a batch is such a sum."""
    if type(a) is not np.ndarray:
        return None
    nd = a.ndim
    if type(axis) is int:
        k = 1 if -nd <= axis < nd and axis % nd == 0 else 0
    elif type(axis) is tuple:
        k = len(axis)
        if k >= nd or axis != _LEADING[k]:
            return None
    else:
        return None
    if not 0 < k < nd or not a.flags.c_contiguous:
        return None
    char = a.dtype.char
    if char not in "fd":
        return None
    shape = a.shape
    m = shape[0] if k == 1 else math.prod(shape[:k])
    if m < 2 or a.size == 0:
        return None
    ones = _ONES.get((m, char))
    if ones is None:
        if len(_ONES) > 32:
            _ONES.clear()
        ones = _ONES[(m, char)] = np.ones(m, a.dtype)
        ones.flags.writeable = False
    if nd == 2:  # a matrix: its column sums
        out = ones @ a
        return out[None] if keepdims else out
    out = ones @ a.reshape(m, -1)
    return out.reshape((1,) * k + shape[k:] if keepdims else shape[k:])


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
    onnx = onnx_node("Add")

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
    onnx = onnx_node("Sub")

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
    onnx = onnx_node("Mul")

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
    onnx = onnx_node("Div")

    @staticmethod
    def forward(ctx, a, b):
        ctx.saved = (a if ctx.needs_input_grad[1] else None, b)  # a only for d/db
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        ga = grad / b if need_a else None
        gb = -grad * (a / b / b) if need_b else None  # rounded as PyTorch rounds it
        return ga, gb


class Neg(Function):
    rule = "d(-a)/da = -1"
    symbol = "−x"
    infix = "-"
    onnx = onnx_node("Neg")

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
    onnx = onnx_node("Pow")

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
                flat = np.logical_and(a == 0, p >= 0)
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


def _matrix_t(x):
    """``x`` with its last two axes swapped: each matrix of a stack transposed (``.T``
    for one matrix, which on a Tensor is the quickest spelling)."""
    return x.T if x.ndim == 2 else np.swapaxes(x, -1, -2)


class MatMul(Function):
    rule = "d(A@B)/dA = G@Bᵀ,  d(A@B)/dB = Aᵀ@G"
    symbol = "@"
    infix = "@"
    onnx = onnx_node("MatMul")

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
        if k_a == 1 and b_nd == 2 and a_nd >= 2:
            # one product per entry: PyTorch's matrix product gives it exactly (a lone
            # product -0 stays -0), where BLAS adds it to +0
            return a * b
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
            ga = g2 @ _matrix_t(b2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if need_b:
            gb = _matrix_t(a2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb


# ----------------------------------------------------------------------- elementwise


class Exp(Function):
    rule = "d(exp a)/da = exp a"
    symbol = "exp"
    hint = ("exp overflows to inf above about 709 (float64) or 88 (float32): subtract the "
            "maximum first, or use softmax / log_softmax")
    onnx = onnx_node("Exp")

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
    onnx = onnx_node("Log")

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
    onnx = onnx_node("Sqrt")

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
    onnx = onnx_node("Abs")

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
    onnx = onnx_node("Tanh")

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
    onnx = onnx_node("Sigmoid")

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
    onnx = onnx_node("Relu")

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
    def onnx(ctx, g, inputs, out):
        bounds = [None if b is None else g.const(b, out.dtype) for b in (ctx.lo, ctx.hi)]
        return g.node("Clip", inputs[:1] + bounds)

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
        if not isinstance(a, _ARRAYS):  # a Tensor (create_graph): the mask needs its values
            a = a._data
        if lo is None and hi is None:
            inside = np.ones(np.shape(a), dtype=bool)
        elif hi is None:
            inside = a >= lo
        elif lo is None:
            inside = a <= hi
        else:
            inside = (a >= lo) & (a <= hi)
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
    onnx = onnx_node("Max")


class Minimum(_Pick):
    rule = "d min(a,b)/da = 1 where a < b, ½ where a = b"
    symbol = "min"
    pick = staticmethod(np.minimum)
    wins = staticmethod(np.less)
    onnx = onnx_node("Min")


class Where(Function):
    rule = "d where(c, a, b)/da = c,  /db = not c"
    symbol = "where"
    onnx = onnx_node("Where")

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
    def onnx(ctx, g, inputs, out):
        axes = [] if ctx.axis is None else [g.ints(ctx.axis)]
        return g.node("ReduceSum", inputs + axes, keepdims=int(bool(ctx.keepdims)))

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
    def onnx(ctx, g, inputs, out):
        return g.node("ReduceMean", inputs, **_onnx_axes(ctx))

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

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("ReduceMax", inputs, **_onnx_axes(ctx))


class Min(_Extremum):
    rule = "d min(a)/da_i = 1 at the minimum (split equally among ties)"
    symbol = "min"
    reduce = staticmethod(np.min)

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("ReduceMin", inputs, **_onnx_axes(ctx))


class Softmax(Function):
    rule = "d softmax/da: s ⊙ (g - Σ g⊙s)"
    symbol = "softmax"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("Softmax", inputs, axis=_onnx_axis("softmax", ctx.axis))

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
    def onnx(ctx, g, inputs, out):
        return g.node("LogSoftmax", inputs, axis=_onnx_axis("log_softmax", ctx.axis))

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


class _Regroup(Function):
    """An op that only regroups the same values into another shape: the gradient is
    the upstream gradient reshaped back to the input's shape."""

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)  # (the method: quicker on a Tensor than np.reshape)

    @staticmethod
    def onnx(ctx, g, inputs, out):  # reshape, squeeze, unsqueeze, flatten
        return g.reshape(inputs[0], ctx.shape, np.shape(out))


class Reshape(_Regroup):
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


class Transpose(Function):
    rule = "transpose: the gradient is transposed back"
    symbol = "ᵀ"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        perm = ctx.axes if ctx.axes is not None else tuple(reversed(range(np.ndim(out))))
        return g.node("Transpose", inputs, perm=[int(a) for a in perm])

    @staticmethod
    def forward(ctx, a, axes=None):
        nd = np.ndim(a)
        if axes is not None:
            _check_axes("transpose", a, axes)
            if len(axes) != nd or len({int(ax) % max(nd, 1) for ax in axes}) != len(axes):
                raise ValueError(
                    f"transpose: axes {tuple(axes)} are not a permutation of the {nd} "
                    f"axes of shape {np.shape(a)}; name each axis once, e.g. "
                    f"{tuple(reversed(range(nd)))}")
        out = np.transpose(a, axes)
        # negative axes normalised, so that argsort in backward inverts the permutation
        ctx.axes = None if axes is None else tuple(ax % nd for ax in axes)
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
    def onnx(ctx, g, inputs, out):
        idx = ctx.idx
        if isinstance(idx, np.ndarray) and idx.dtype.kind in "iu":  # rows: an embedding
            return g.node("Gather", [inputs[0], g.value(idx)], axis=0)
        return _onnx_basic_index(g, inputs[0], idx, ctx.shape)

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
        return _scatter(grad, ctx.shape, ctx.idx, accumulate=not _is_basic_index(ctx.idx))


class Concat(Function):
    rule = "concat: the gradient is split back into the pieces"
    symbol = "concat"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("Concat", inputs, axis=int(ctx.axis))

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        sizes = [np.shape(a)[axis] if np.ndim(a) else 1 for a in arrays]
        ctx.splits, ctx.axis = np.cumsum([0] + sizes).tolist(), axis
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"concat: shapes {shapes} must agree on every axis but "
                             f"axis={axis}: {err}") from None

    @staticmethod
    def backward(ctx, grad):
        cuts, nd = ctx.splits, np.ndim(grad)
        return tuple(grad[_axis_index(nd, ctx.axis, slice(lo, hi))]
                     for lo, hi in zip(cuts[:-1], cuts[1:]))


class Stack(Function):
    rule = "stack: the gradient is unstacked back into the pieces"
    symbol = "stack"

    @staticmethod
    def onnx(ctx, g, inputs, out):  # each piece gets the new axis, then one Concat
        axis = ctx.axis % np.ndim(out)
        pieces = [g.node("Unsqueeze", [x, g.ints([axis])]) for x in inputs]
        return g.node("Concat", pieces, axis=axis)

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
        nd = np.ndim(grad)
        return tuple(grad[_axis_index(nd, ctx.axis, i)] for i in range(ctx.n))


# ----------------------------------------------------------------------- erf

__all__ += ["Erf"]

_ERF = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; libm's, element by element


class Erf(Function):
    rule = "d(erf a)/da = 2/√π · exp(-a²)"
    symbol = "erf"
    onnx = onnx_node("Erf")

    @staticmethod
    def forward(ctx, a):
        ctx.saved = (a,)
        # float32 in, float32 out
        return np.asarray(_ERF(a), dtype=a.dtype if a.dtype.kind == "f" else np.float64)

    @staticmethod
    def backward(ctx, grad):
        a = ctx.saved[0]
        return grad * _cast(np.exp(-(a * a)) * (2.0 / np.sqrt(np.pi)), grad.dtype)


# ----------------------------------------------------------------------- shapes,
# reductions and scans: squeeze, unsqueeze, flatten, logsumexp, var, std, norm, cumsum


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
    def onnx(ctx, g, inputs, out):
        return g.node("ReduceLogSumExp", inputs, **_onnx_axes(ctx))

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
        ctx.axis, ctx.keepdims = axis, keepdims
        if not keepdims:
            out = np.reshape(out, () if axis is None else np.squeeze(out, axis).shape)
        ctx.saved = (a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        shape = np.shape(a)
        grad = _expand(grad, shape, ctx.axis, ctx.keepdims)
        out = _expand(out, shape, ctx.axis, ctx.keepdims)
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


def _variance(ctx, op, a, axis, ddof, keepdims):
    """What var and std share: the deviations from the mean and the variance; records
    the axes and the degrees of freedom on ``ctx``."""
    if np.result_type(a).kind not in "fc":
        a = np.asarray(a, dtype=np.float64)
    d, n = _moment_args(op, a, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.sum(d * d, axis=axis, keepdims=keepdims) / max(n - ddof, 0)
    ctx.axis, ctx.keepdims, ctx.dof = axis, keepdims, n - ddof
    return d, var


class Var(Function):
    rule = "d var(a)/da_i = 2 (a_i - mean a) / (n - ddof)"
    symbol = "var"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return _onnx_variance(ctx, g, inputs[0], out)

    @staticmethod
    def forward(ctx, a, axis=None, ddof=0, keepdims=False):
        d, out = _variance(ctx, "var", a, axis, ddof, keepdims)
        ctx.saved = (a,)  # the deviations are computed again: d is not an input
        return out

    @staticmethod
    def backward(ctx, grad):
        d, _ = _moment_args("var", ctx.saved[0], ctx.axis)
        grad = _expand(grad, np.shape(d), ctx.axis, ctx.keepdims)
        return _var_grad(grad, d, ctx.dof, ctx.axis is None or np.ndim(d) == 0)


def _var_grad(grad, d, dof, whole):
    """``grad · 2d / dof``; with no degrees of freedom left, PyTorch's answer: over the
    whole tensor inf (NaN where d = 0), along axes the quotient as it falls."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if dof <= 0 and whole:
            return grad * _cast(np.where(d == 0, np.nan, np.inf), d.dtype)
        return d.dtype.type(2.0 / dof if dof else np.inf) * grad * d  # PyTorch's order


class Std(Function):
    rule = "d std(a)/da_i = (a_i - mean a) / ((n - ddof) · std a)  (0 where std a = 0)"
    symbol = "std"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("Sqrt", [_onnx_variance(ctx, g, inputs[0], out)])

    @staticmethod
    def forward(ctx, a, axis=None, ddof=0, keepdims=False):
        d, var = _variance(ctx, "std", a, axis, ddof, keepdims)
        out = np.sqrt(var)
        ctx.saved = (a, out)  # the deviations are computed again: d is not an input
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        d, _ = _moment_args("std", a, ctx.axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = _cast(np.where(out == 0, 0, grad / (out * 2)), d.dtype)
        half = _expand(half, np.shape(d), ctx.axis, ctx.keepdims)
        return _var_grad(half, d, ctx.dof, ctx.axis is None or np.ndim(d) == 0)


class Norm(Function):
    rule = ("d‖a‖₂/da = a/‖a‖₂ (0 at a = 0),  d‖a‖₁/da = sign a,  "
            "d‖a‖∞/da = sign a at the largest |a_i| (split among ties)")
    symbol = "‖x‖"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        if ctx.ord == np.inf:
            return g.node("ReduceMax", [g.node("Abs", inputs)], **_onnx_axes(ctx))
        return g.node("ReduceL1" if ctx.ord == 1 else "ReduceL2", inputs, **_onnx_axes(ctx))

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
                scale = _cast(np.where(out == 0, 0, grad / out), a.dtype)
            return a * _expand(scale, shape, axis, keepdims)
        absa = np.abs(a)
        hit = absa == _expand(out, shape, axis, keepdims)
        count = np.sum(hit, axis=axis, keepdims=True)
        return _masked(_expand(grad, shape, axis, keepdims), np.sign(a) * hit / count)


class CumSum(Function):
    rule = "d cumsum(a)_j/da_i = 1 for i ≤ j: the gradient is cumsum'd in reverse"
    symbol = "cumsum"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        x = inputs[0]
        if not ctx.shape:
            return g.node("Identity", [x])
        if len(ctx.shape) != np.ndim(out):  # axis=None: over the flattened values
            x = g.reshape(x, ctx.shape, np.shape(out))
        return g.node("CumSum", [x, g.const(np.int64(ctx.axis))])

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
            back = _axis_index(np.ndim(grad), axis, slice(None, None, -1))  # reversed
            grad = np.cumsum(grad[back], axis=axis)[back]
        return np.reshape(grad, ctx.shape)


# ----------------------------------------------------------------------- padding,
# gathering and scattering, sorting, einsum


def _integer_indices(op, index) -> np.ndarray:
    """``index`` as an integer array, or a TypeError naming ``op``."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu" and not (index.dtype.kind == "f" and index.size == 0):
        raise TypeError(f"{op}: indices must be integers, got dtype {index.dtype}; "
                        "convert them (np.asarray(index, dtype=np.int64))")
    return index.astype(np.intp, copy=False)


def _pad_pairs(pad_width, ndim):
    """NumPy's ``pad_width`` (n, (before, after) or one pair per axis) as ndim pairs."""
    widths = np.asarray(pad_width)
    if widths.size and widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    if ndim == 0:  # nothing to pad: a 0-d tensor comes back as it is
        return []
    try:
        pairs = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit {ndim} dimensions; "
                         "give n, (before, after), or one (before, after) pair per "
                         "axis") from None
    if pairs.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    if np.any(pairs < 0):
        raise ValueError(f"pad: pad_width {pad_width!r} holds a negative width; pad adds "
                         "values (crop with t[slices] instead)")
    return [(int(b), int(e)) for b, e in pairs]


class Pad(Function):
    """Constant padding, NumPy's ``pad_width``: one ``(before, after)`` pair per axis,
    first axis first. ``torch.nn.functional.pad`` takes the pairs from the *last* axis
    backwards, flattened: NumPy's ``((0, 0), (1, 2), (3, 4))`` is PyTorch's
    ``(3, 4, 1, 2)``."""

    rule = "d pad(a)/da: the gradient with the padding cut off"
    symbol = "pad"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        if not ctx.window:
            return g.node("Identity", inputs)
        before = [w.start for w in ctx.window]
        after = [n - w.stop for w, n in zip(ctx.window, np.shape(out))]
        # the constant is read back from the output, at a place that is padding
        corner = next(((0,) * d + (0 if b else -1,) for d, (b, e) in
                       enumerate(zip(before, after)) if b or e), None)
        value = 0.0 if corner is None else out[corner + (0,) * (out.ndim - len(corner))]
        return g.node("Pad", [inputs[0], g.ints(before + after), g.const(value, out.dtype)],
                      mode="constant")

    @staticmethod
    def forward(ctx, a, pad_width=0, value=0.0):
        pairs = _pad_pairs(pad_width, np.ndim(a))
        ctx.window = tuple(slice(b, b + n) for (b, _), n in zip(pairs, np.shape(a)))
        if not pairs:
            return np.array(a, copy=True)
        return np.pad(a, pairs, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.window]


def _along(index, axis, shape):
    """The integer-array index that picks ``a[..., index[...], ...]`` along ``axis`` with
    every other axis running alongside ``index`` (``shape``: how far each runs)."""
    nd = len(shape)
    parts = []
    for d in range(nd):
        if d == axis:
            parts.append(index)
        else:
            sides = [1] * nd
            sides[d] = shape[d]
            parts.append(np.arange(shape[d]).reshape(sides))
    return tuple(parts)


class TakeAlongAxis(Function):
    """``np.take_along_axis`` (``indices`` broadcast against ``a`` off ``axis``, negative
    indices count from the end) or, with ``gather=True``, ``torch.gather`` (``indices``
    as many dimensions as ``a``, no larger off ``axis``, from 0 to the axis length)."""

    rule = "d a[idx along axis]/da: the gradient scattered back to idx (repeats summed)"
    symbol = "gather"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        x, nd = inputs[0], len(ctx.shape)
        if not nd:
            return g.node("Identity", [x])
        axis = ctx.axis
        idx = _onnx_indices(g, "take_along_axis", ctx.index[axis])
        # take_along_axis broadcasts the indices and the input against each other off
        # the axis; GatherElements wants them expanded to the output's shape
        want_idx = np.shape(out)
        want_x = want_idx[:axis] + (ctx.shape[axis],) + want_idx[axis + 1:]
        idx, x = (_onnx_expand(g, idx, np.shape(ctx.index[axis]), want_idx, x),
                  _onnx_expand(g, x, ctx.shape, want_x, idx))
        return g.node("GatherElements", [x, idx], axis=axis)

    @staticmethod
    def forward(ctx, a, indices=None, axis=-1, gather=False):
        op = "gather" if gather else "take_along_axis"
        idx = _integer_indices(op, indices)
        shape, nd = np.shape(a), np.ndim(a)
        if idx.ndim != nd:
            raise ShapeError(f"{op}: indices of shape {idx.shape} for a tensor of shape "
                             f"{shape}: both need the same number of dimensions ({nd})")
        _check_axes(op, a, axis)
        axis = axis % max(nd, 1)
        if nd == 0:
            ctx.shape, ctx.index = shape, ()
            return np.array(a, copy=True)
        n = shape[axis]
        if gather:
            if any(i > s for d, (i, s) in enumerate(zip(idx.shape, shape)) if d != axis):
                raise ShapeError(f"gather: index of shape {idx.shape} is larger than the "
                                 f"input {shape} off dim {axis}; each other dimension of "
                                 "index must be at most the input's")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"gather: index holds {idx.min()}..{idx.max()}, out of "
                                 f"range for dim {axis} of size {n} (0 to {n - 1})")
            runs = idx.shape
        else:
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"take_along_axis: indices hold {idx.min()}..{idx.max()}, "
                                 f"out of range for axis {axis} of size {n}")
            try:
                np.broadcast_shapes(shape[:axis] + shape[axis + 1:],
                                    idx.shape[:axis] + idx.shape[axis + 1:])
            except ValueError:
                raise ShapeError(f"take_along_axis: indices of shape {idx.shape} do not "
                                 f"broadcast with shape {shape} off axis {axis}") from None
            runs = shape
        ctx.shape, ctx.index, ctx.axis = shape, _along(idx, axis, runs), axis
        return a[ctx.index]

    @staticmethod
    def backward(ctx, grad):
        return _scatter(grad, ctx.shape, ctx.index)


class IndexAdd(Function):
    """PyTorch's ``index_add``: ``out = a`` with ``alpha * source[..., i, ...]`` added to
    ``out[..., index[i], ...]`` along ``axis`` (repeated indices add up)."""

    rule = "d/da = 1,  d/dsource = alpha · grad[..., index, ...]"
    symbol = "index_add"

    @staticmethod
    def forward(ctx, a, source, axis=0, index=None, alpha=1):
        idx = _integer_indices("index_add", index)
        sa, ss, nd = np.shape(a), np.shape(source), np.ndim(a)
        _check_axes("index_add", a, axis)
        axis = axis % max(nd, 1)
        if idx.ndim > 1:
            raise ShapeError(f"index_add: index must be 1-D, got shape {idx.shape}")
        if nd == 0:
            raise ShapeError("index_add: a 0-d tensor has no dimension to add along; "
                             "reshape it to (1,) first")
        idx = idx.reshape(-1)
        want = sa[:axis] + (idx.size,) + sa[axis + 1:]
        if ss != want:
            raise ShapeError(f"index_add: source of shape {ss} for a tensor of shape {sa} "
                             f"and {idx.size} indices along dim {axis}: source needs shape "
                             f"{want}")
        n = sa[axis]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index_add: index holds {idx.min()}..{idx.max()}, out of "
                             f"range for dim {axis} of size {n} (0 to {n - 1})")
        where = (slice(None),) * axis + (idx,)
        if isinstance(alpha, np.generic):
            alpha = weak_scalar(alpha, source)  # x32.index_add(..., alpha=np.float64(2))
        out = np.array(a, dtype=np.result_type(a, source), copy=True)
        np.add.at(out, where, source * alpha if alpha != 1 else source)
        ctx.where, ctx.alpha = where, alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        gs = None
        if ctx.needs_input_grad[1]:
            gs = grad[ctx.where]
            if ctx.alpha != 1:
                gs = gs * ctx.alpha
        return grad, gs


class ScatterAdd(Function):
    """PyTorch's ``scatter_add``, the adjoint of ``gather``: ``out = a`` with
    ``source[i][j]`` added to ``out[i][index[i][j]]`` (``dim=1``); ``index`` has as many
    dimensions as ``a``, is no larger than ``source`` anywhere nor than ``a`` off
    ``dim``, and only the part of ``source`` that ``index`` covers is added."""

    rule = "d/da = 1,  d/dsource = grad gathered at index (0 where index does not reach)"
    symbol = "scatter_add"

    @staticmethod
    def forward(ctx, a, source, axis=0, index=None):
        idx = _integer_indices("scatter_add", index)
        sa, ss, nd = np.shape(a), np.shape(source), np.ndim(a)
        _check_axes("scatter_add", a, axis)
        axis = axis % max(nd, 1)
        if idx.ndim != nd or np.ndim(source) != nd:
            raise ShapeError(f"scatter_add: index {idx.shape} and source {ss} need as many "
                             f"dimensions as the tensor {sa} ({nd})")
        if any(i > n for i, n in zip(idx.shape, ss)) or any(
                i > n for d, (i, n) in enumerate(zip(idx.shape, sa)) if d != axis):
            raise ShapeError(f"scatter_add: index of shape {idx.shape} must be no larger "
                             f"than source {ss} in any dimension, nor than the tensor {sa} "
                             f"off dim {axis}")
        n = sa[axis] if nd else 1
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"scatter_add: index holds {idx.min()}..{idx.max()}, out of "
                             f"range for dim {axis} of size {n} (0 to {n - 1})")
        ctx.crop = tuple(slice(0, i) for i in idx.shape)
        ctx.where = _along(idx, axis, idx.shape) if nd else ()
        ctx.source_shape = ss
        out = np.array(a, dtype=np.result_type(a, source), copy=True)
        np.add.at(out, ctx.where, source[ctx.crop])
        return out

    @staticmethod
    def backward(ctx, grad):
        gs = None
        if ctx.needs_input_grad[1]:
            gs = _scatter(grad[ctx.where], ctx.source_shape, ctx.crop, accumulate=False)
        return grad, gs


class Sort(Function):
    """The values of ``a`` in the order ``indices`` gives along ``axis`` (the Tensor
    methods ``sort`` and ``topk`` compute the order and pass it): each output element is
    one input element, so the gradient goes back to where that element came from."""

    rule = "d sorted(a)_j/da_i = 1 where element j came from i"
    symbol = "sort"

    @staticmethod
    def onnx(ctx, g, inputs, out):  # sort and topk: the values of one TopK node
        if not ctx.shape:
            return g.node("Identity", inputs)
        axis = ctx.axis % len(ctx.shape)
        a = getattr(ctx.parents[0], "_data", ctx.parents[0])
        # the direction is not an option of the op: the example's result tells it (its
        # first value along the axis is the largest, or the smallest)
        first = np.take(out, [0], axis=axis)
        top, bottom = (first == np.max(a, axis, keepdims=True),
                       first == np.min(a, axis, keepdims=True))
        if np.shape(out)[axis] == 0 or top.all() == bottom.all():
            raise _onnx_error(ctx.symbol, "an example whose values tie along the axis",
                              "export with an example that has distinct values, so the "
                              "direction of the sort can be read from it")
        k = g.ints([np.shape(out)[axis]])
        if type(ctx) is Sort and axis == 0 and g.batch is not None:  # the whole batch
            k = g.node("Slice", [g.node("Shape", [inputs[0]]), g.ints([0]), g.ints([1])])
        values = g.node("TopK", [inputs[0], k], axis=axis, largest=int(top.all()), sorted=1)
        g.nodes[-1].output.append(g.fresh(values + "_indices"))  # its second output
        return values

    @staticmethod
    def forward(ctx, a, indices=None, axis=-1):
        ctx.shape, ctx.axis, ctx.indices = np.shape(a), axis, indices
        if np.ndim(a) == 0:
            return np.array(a, copy=True)
        return np.take_along_axis(a, indices, axis)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.shape:
            return grad
        axis = ctx.axis % len(ctx.shape)  # no repeats along an axis: each place once
        return _scatter(grad, ctx.shape, _along(ctx.indices, axis, np.shape(ctx.indices)),
                        accumulate=False)


class TopK(Sort):
    rule = "d topk(a)_j/da_i = 1 where element j came from i, 0 for the rest"
    symbol = "topk"


def sort_order(a, axis=-1, descending=False) -> np.ndarray:
    """Stable positions that sort ``a`` along ``axis``, as ``torch.sort(stable=True)``:
    equal values keep their order, NaN sorts as the largest value."""
    if np.ndim(a) == 0:
        return np.zeros((), dtype=np.int64)
    if not descending:
        return np.argsort(a, axis=axis, kind="stable")
    # reverse, sort ascending, reverse back: ties keep their order and NaN comes first
    n = np.shape(a)[axis]
    flipped = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - flipped, axis)


def _einsum_terms(subscripts, operands):
    """``(input terms, output term)`` of ``subscripts``; the implicit output is the
    letters that appear once, in alphabetical order, as NumPy and PyTorch take it."""
    if not isinstance(subscripts, str):
        raise TypeError("einsum: subscripts must be a string such as 'ij,jk->ik', got "
                        f"{type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ValueError(f"einsum {subscripts!r}: '...' is not supported; name every axis "
                         "with a letter")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum {subscripts!r}: {len(terms)} operand term(s) for "
                         f"{len(operands)} tensor(s)")
    for term, x in zip(terms, operands):
        if not term.isalpha() and term or len(term) != np.ndim(x):
            raise ValueError(f"einsum {subscripts!r}: term {term!r} for an operand of shape "
                             f"{np.shape(x)}: give one letter per dimension")
    if not arrow:
        letters = "".join(terms)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, output


def _sum_own_letters(terms, arrays, output):
    """Each operand with the letters that only it has (elsewhere absent or of length 1,
    and not in the output) summed out first, as PyTorch does: the same sum, but an inf
    meeting values of both signs gives ±inf as in PyTorch, not NaN."""
    if len(arrays) < 2:
        return arrays
    out = []
    for i, (term, x) in enumerate(zip(terms, arrays)):
        elsewhere = {c for j, (t, y) in enumerate(zip(terms, arrays)) if j != i
                     for c, n in zip(t, np.shape(y)) if n != 1}
        own = tuple(k for k, c in enumerate(term) if term.count(c) == 1 and c not in output
                    and c not in elsewhere and np.shape(x)[k] != 1)
        out.append(np.sum(x, axis=own, keepdims=True) if own else x)
    return out


class Einsum(Function):
    """``np.einsum`` with explicit letters (implicit output allowed). The gradient of each
    operand is another einsum: the output's gradient times the other operands, onto the
    operand's letters (broadcast over letters only it has, summed over its length-1
    axes that broadcast, put on the diagonal for a repeated letter)."""

    rule = "d einsum(…, a, …)/da = einsum(grad, other operands → a's letters)"
    symbol = "einsum"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        for term, x in zip(ctx.terms, ctx.saved):
            if any(n != ctx.sizes[c] for c, n in zip(term, np.shape(x))):
                raise _onnx_error("einsum", f"a length-1 axis that broadcasts (term {term!r}"
                                  f", shape {np.shape(x)})", "ONNX's Einsum broadcasts only "
                                  "over '...'; expand the operand first (broadcast_to)")
        return g.node("Einsum", inputs, equation=",".join(ctx.terms) + "->" + ctx.output)

    @staticmethod
    def forward(ctx, *arrays, subscripts=""):
        terms, output = _einsum_terms(subscripts, arrays)
        sizes = {}  # each letter's length; a length of 1 broadcasts, as in NumPy
        for term, x in zip(terms, arrays):
            for c, n in zip(term, np.shape(x)):
                if n != 1 or c not in sizes:
                    sizes[c] = n
        ctx.saved, ctx.terms, ctx.output, ctx.sizes = arrays, terms, output, sizes
        try:
            # optimize=True contracts by products (tensordot, multiply): a product of a
            # zero and a negative number keeps its sign, as in PyTorch; the plain loop
            # adds each product to +0
            return np.einsum(",".join(terms) + "->" + output, *_sum_own_letters(
                terms, arrays, output), optimize=True)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(x)) for x in arrays)
            raise ShapeError(f"einsum {subscripts!r} on shapes {shapes}: {err}") from None

    @staticmethod
    def backward(ctx, grad):
        arrays, terms, output = ctx.saved, ctx.terms, ctx.output
        grads = []
        for i, (term, x) in enumerate(zip(terms, arrays)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(terms) if j != i]
            known = set(output).union(*others)
            letters = "".join(dict.fromkeys(term))  # each letter once, in order
            reached = "".join(c for c in letters if c in known)
            spec = ",".join([output] + others) + "->" + reached
            g = np.einsum(spec, grad, *(y for j, y in enumerate(arrays) if j != i),
                          optimize=True)
            g = np.expand_dims(g, [k for k, c in enumerate(letters) if c not in known])
            g = np.broadcast_to(g, tuple(ctx.sizes[c] for c in letters))
            own = dict(zip(term, np.shape(x)))
            spread = tuple(k for k, c in enumerate(letters) if own[c] != ctx.sizes[c])
            if spread:  # a length-1 axis of x that broadcast: its gradient summed
                g = g.sum(axis=spread, keepdims=True)
            if len(letters) < len(term):  # a repeated letter: onto the diagonal
                diagonal = tuple(np.arange(own[c]).reshape(
                    [own[c] if k == c else 1 for k in letters]) for c in term)
                g = _scatter(g, np.shape(x), diagonal, accumulate=False)
            grads.append(g)
        return tuple(grads)


# ----------------------------------------------------------------------- convolution


def _conv_tuple(op, name, value, n, least):
    """An int-or-tuple argument of a convolution as ``n`` ints, each at least ``least``."""
    vals = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) != n or not all(isinstance(v, (int, np.integer)) for v in vals):
        raise ValueError(f"{op}: {name} must be an int or {n} ints, got {value!r}")
    if any(v < least for v in vals):
        raise ValueError(f"{op}: {name} must be at least {least}, got {value!r}")
    return tuple(int(v) for v in vals)


def conv_check(op, nsp, x_shape, w_shape, b_shape, stride, padding, dilation, groups):
    """Validate a convolution's shapes and arguments as PyTorch does; returns
    ``(stride, padding, dilation)`` as tuples of ``nsp`` ints."""
    stride = _conv_tuple(op, "stride", stride, nsp, 1)
    padding = _conv_tuple(op, "padding", padding, nsp, 0)
    dilation = _conv_tuple(op, "dilation", dilation, nsp, 1)
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if len(w_shape) != nsp + 2:
        raise ShapeError(f"{op}: weight of shape {tuple(w_shape)}: expected {nsp + 2} "
                         "dimensions (out_channels, in_channels / groups, *kernel)")
    if len(x_shape) not in (nsp + 1, nsp + 2):
        raise ShapeError(f"{op}: input of shape {tuple(x_shape)}: expected {nsp + 2} "
                         f"dimensions (batch, channels, *spatial) or {nsp + 1} (unbatched)")
    c, o = x_shape[-nsp - 1], w_shape[0]
    if o % groups:
        raise ShapeError(f"{op}: groups={groups} does not divide out_channels={o} (weight "
                         f"of shape {tuple(w_shape)}); use a multiple of groups")
    if c % groups:
        raise ShapeError(f"{op}: groups={groups} does not divide the input's {c} channels "
                         f"(input of shape {tuple(x_shape)})")
    if c != w_shape[1] * groups:
        raise ShapeError(f"{op}: input of shape {tuple(x_shape)} has {c} channels, but a "
                         f"weight of shape {tuple(w_shape)} with groups={groups} expects "
                         f"{w_shape[1] * groups}: weight.shape[1] * groups must equal the "
                         "input's channels")
    if b_shape is not None and tuple(b_shape) != (o,):
        raise ShapeError(f"{op}: bias of shape {tuple(b_shape)}, expected ({o},) for a "
                         f"weight of shape {tuple(w_shape)}")
    for n, k, p, d in zip(x_shape[-nsp:], w_shape[2:], padding, dilation):
        if (k - 1) * d + 1 > n + 2 * p:
            raise ShapeError(
                f"{op}: kernel {tuple(w_shape[2:])} (dilation {dilation}) is larger than "
                f"the padded input: input of shape {tuple(x_shape)} with padding "
                f"{padding}; pad more or use a smaller kernel")
    return stride, padding, dilation


class _Conv(Function):
    """Cross-correlation of ``x`` (N, C, *spatial) with ``weight`` (O, C/groups, *kernel)
    plus ``bias`` (O,), as PyTorch's convolutions. The windows of the padded input are a
    strided view; one copy lays them out as columns (N, groups, C/groups·kernel, positions)
    ("im2col"), and the output is one batched matmul of each group's kernels (as rows)
    with those columns. Backward: dL/dW is the output's gradient times the same columns
    (transposed), summed over the batch (``ConvWeightGrad``); dL/dx is each kernel's
    transpose times the output's gradient, every tap's share put back where that tap read
    (one strided slice per tap, so a loop over the kernel's taps, never over pixels:
    ``ConvInputGrad``); dL/db sums the gradient over the batch and positions. On arrays
    the two run as NumPy; on Tensors (create_graph) they are ops whose own backwards are
    convolutions and each other, so a convolution has derivatives of every order."""

    nsp = 2
    hint = "a NaN or Inf in the input or the weight spreads to every window that reads it"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        stride, padding, dilation, groups, unbatched, _ = ctx.conf
        if unbatched:
            raise _onnx_error(ctx.symbol, "an input without a batch axis",
                              "export with a batch: x[None]")
        return g.node("Conv", inputs, strides=list(stride), pads=list(padding) * 2,
                      dilations=list(dilation), group=int(groups))

    @classmethod
    def forward(cls, ctx, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        nsp, op = cls.nsp, cls.symbol
        stride, padding, dilation = conv_check(op, nsp, np.shape(x), np.shape(weight),
                                               None if bias is None else np.shape(bias),
                                               stride, padding, dilation, groups)
        unbatched = np.ndim(x) == nsp + 1
        given = x
        if unbatched:
            x = x[None]
        n, o, g = x.shape[0], weight.shape[0], groups
        xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding)) if any(
            padding) else x
        cols, out_sp = cls._columns(xp, weight.shape[2:], stride, dilation, g)
        out = np.matmul(weight.reshape(g, o // g, -1), cols)  # (N, G, O/G, positions)
        out = out.reshape((n, o) + out_sp)
        if bias is not None:
            b = bias.reshape((o,) + (1,) * nsp)
            if np.result_type(out, b) == out.dtype:
                out += b
            else:
                out = out + b
        else:  # the sums start from +0, as PyTorch's: a lone product -0 becomes +0
            out += 0.0
        # the input as given (the Tensor it came from replaces it under create_graph);
        # the columns, a function of it, ride along as a cache
        ctx.saved = (given, weight,
                     _Cache(cols) if ctx.needs_input_grad[1] else None)
        ctx.conf = (stride, padding, dilation, groups, unbatched, xp.shape)
        return out[0] if unbatched else out

    @classmethod
    def _columns(cls, xp, k, stride, dilation, groups):
        """The windows of the padded input ``xp`` as columns: an (N, G, C/G·prod(k),
        prod(out)) array (one copy; rows ordered channel, then kernel tap) and the
        output's spatial shape."""
        nsp = cls.nsp
        span = tuple((kd - 1) * d + 1 for kd, d in zip(k, dilation))
        axes = tuple(range(2, 2 + nsp))
        win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=axes)
        index = (slice(None),) * 2 + tuple(slice(None, None, s) for s in stride) + tuple(
            slice(None, None, d) for d in dilation)
        win = win[index]  # (N, C, *out, *k), a view
        out_sp = win.shape[2:2 + nsp]
        # (N, C, *k, *out): positions innermost, read along the input's rows
        win = win.transpose((0, 1) + tuple(range(2 + nsp, 2 + 2 * nsp)) + axes)
        n, c = xp.shape[:2]
        return win.reshape(n, groups, -1, math.prod(out_sp)), out_sp

    @classmethod
    def backward(cls, ctx, grad):
        x, weight, cols = ctx.saved
        stride, padding, dilation, g, unbatched, _ = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad
        if unbatched:
            x, grad = x[None], grad[None]
        conf = dict(stride=stride, padding=padding, dilation=dilation, groups=g)
        gx = gw = gb = None
        if need_b:
            o = weight.shape[0]
            gb = grad.reshape(grad.shape[0], g, o // g, -1).sum(axis=3).sum(axis=0)
            gb = gb.reshape(o)
        if need_w:  # a correlation of the input with the gradient
            gw = _call(ConvWeightGrad, x, grad, weight_shape=weight.shape,
                       cols=None if cols is None else cols.array, **conf)
        if need_x:  # a transposed convolution of the gradient with the weight
            gx = _call(ConvInputGrad, grad, weight, input_shape=x.shape, **conf)
            if unbatched:
                gx = gx[0]
        return gx, gw, gb

    @staticmethod
    def _scatter_taps(gg, wt, taps_shape, xp_shape, stride, dilation):
        """dL/d(padded input): every tap's share Wᵀ·G (matmuls), added back where that
        tap read, one slice per tap. With stride 1 the output's positions are laid out
        on the input's grid (the gradient widened with zeros to the input's width) and
        the batch innermost, so that each tap's share is one contiguous block of the
        flattened input, shifted by the tap's offset, and Wᵀ·G is one matmul per group;
        otherwise one strided slice per tap."""
        n, c = taps_shape[:2]
        k, out_sp, sizes = taps_shape[2:], gg.shape[3:], xp_shape[2:]
        nsp = len(k)
        # the grid has positions no window has, whose zero gradient meets the weight
        # there: only when the weight is finite (0·inf would be NaN)
        if all(st == 1 for st in stride) and (wt.dtype.kind not in "fc"
                                               or np.isfinite(wt).all()):
            rest = math.prod(sizes[1:])
            g, og = gg.shape[1:3]
            # (G, O/G, out0, *sizes[1:], N), the batch innermost
            wide = np.zeros((g, og, out_sp[0]) + tuple(sizes[1:]) + (n,), dtype=gg.dtype)
            wide[(slice(None),) * 3 + tuple(slice(m) for m in out_sp[1:])] = gg.transpose(
                (1, 2) + tuple(range(3, 3 + nsp)) + (0,))
            taps = np.matmul(wt, wide.reshape(g, og, -1))  # (G, C/G·prod(k), run·N)
            taps = taps.reshape(c, math.prod(k), -1)
            flat = np.zeros((c, (math.prod(sizes) + rest) * n), dtype=taps.dtype)
            run = taps.shape[-1]
            steps = [d * math.prod(sizes[a + 1:]) * n for a, d in enumerate(dilation)]
            for t, tap in enumerate(np.ndindex(*k)):
                off = sum(i * st for i, st in zip(tap, steps))
                flat[:, off:off + run] += taps[:, t]
            flat = flat[:, :math.prod(sizes) * n].reshape((c,) + tuple(sizes) + (n,))
            return np.moveaxis(flat, -1, 0)
        taps = np.matmul(wt, gg.reshape(gg.shape[:3] + (-1,)))
        taps = taps.reshape(tuple(taps_shape) + tuple(out_sp))
        gxp = np.zeros(xp_shape, dtype=taps.dtype)
        for tap in np.ndindex(*k):  # a loop over the kernel's taps, not over pixels
            where = tuple(slice(t * d, t * d + s * (m - 1) + 1, s)
                          for t, d, s, m in zip(tap, dilation, stride, out_sp))
            gxp[(slice(None), slice(None)) + where] += taps[(slice(None),) * 2 + tap]
        return gxp


class Conv2d(_Conv):
    rule = ("y = Σ_c,i,j W[o,c,i,j]·x[c, s·h+d·i, s·w+d·j] + b:  dL/dW = Σ G·windows(x),"
            "  dL/dx = Σ_taps G·W placed back,  dL/db = Σ G")
    symbol = "conv2d"
    nsp = 2


class Conv1d(_Conv):
    rule = ("y = Σ_c,i W[o,c,i]·x[c, s·l+d·i] + b:  dL/dW = Σ G·windows(x),"
            "  dL/dx = Σ_taps G·W placed back,  dL/db = Σ G")
    symbol = "conv1d"
    nsp = 1


class _Cache:
    """An array that ``forward`` keeps for ``backward`` only to save work (a function of
    the inputs, such as a convolution's columns), not a value of the graph: under
    create_graph it is passed through as it is, and a backward on Tensors ignores it."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _call(op, *args, **options):
    """``op`` applied to ``args``: on arrays alone the array it computes (a first-order
    backward stays on arrays); with a Tensor among them, a Tensor that records ``op``
    (a backward running under create_graph)."""
    out = op.apply(*args, **options)
    return out._data if all(a is None or isinstance(a, _ARRAYS) for a in args) else out


def _conv_op(nsp):
    return Conv1d if nsp == 1 else Conv2d


class ConvInputGrad(Function):
    """dL/dx of a convolution: the transposed convolution of the output's gradient
    ``grad`` (N, O, *out) with ``weight`` (O, C/groups, *kernel), an input of shape
    ``input_shape`` (PyTorch's ``nn.grad.conv2d_input``). Each kernel's transpose times
    the gradient (matmuls), every tap's share added back where that tap read (one slice
    per tap), the padding cut off. Linear in each argument, so its own backward is a
    convolution (for ``grad``) and ``ConvWeightGrad`` (for ``weight``). ``stride``,
    ``padding``, ``dilation``: tuples, as the convolution checked them."""

    rule = ("dx = Σ_taps Wᵀ·G placed back:  d/dG = conv(h, W),"
            "  d/dW = conv_weight_grad(h, G)")
    symbol = "conv_input_grad"
    hint = "a NaN or Inf in the gradient or the weight spreads to every input it read"

    @staticmethod
    def forward(ctx, grad, weight, input_shape=(), stride=1, padding=0, dilation=1,
                groups=1):
        n, c = input_shape[:2]
        o, k, g = weight.shape[0], weight.shape[2:], groups
        out_sp = grad.shape[2:]
        xp_shape = (n, c) + tuple(m + 2 * p for m, p in zip(input_shape[2:], padding))
        gxp = _Conv._scatter_taps(grad.reshape((n, g, o // g) + out_sp),
                                  weight.reshape(g, o // g, -1).transpose(0, 2, 1),
                                  (n, c) + tuple(k), xp_shape, stride, dilation)
        crop = tuple(slice(p, p + m) for p, m in zip(padding, input_shape[2:]))
        ctx.saved = (grad, weight)
        ctx.conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return np.ascontiguousarray(gxp[(slice(None), slice(None)) + crop])

    @staticmethod
    def backward(ctx, h):
        grad, weight = ctx.saved
        need_g, need_w = ctx.needs_input_grad
        conv = _conv_op(np.ndim(weight) - 2)
        return (_call(conv, h, weight, None, **ctx.conf) if need_g else None,
                _call(ConvWeightGrad, h, grad, weight_shape=weight.shape, **ctx.conf)
                if need_w else None)


class ConvWeightGrad(Function):
    """dL/dW of a convolution: the correlation of the input ``x`` (N, C, *spatial) with
    the output's gradient ``grad`` (N, O, *out), a weight of shape ``weight_shape``
    (PyTorch's ``nn.grad.conv2d_weight``): the gradient times the input's windows as
    columns (one batched matmul), summed over the batch. ``cols``: those columns, if
    the convolution's forward already made them. Linear in each argument, so its own
    backward is ``ConvInputGrad`` (for ``x``) and a convolution (for ``grad``). Options
    as ``ConvInputGrad``'s."""

    rule = ("dW = Σ_batch G·windows(x):  d/dx = conv_input_grad(G, h),"
            "  d/dG = conv(x, h)")
    symbol = "conv_weight_grad"
    hint = "a NaN or Inf in the input or the gradient spreads to every weight"

    @staticmethod
    def forward(ctx, x, grad, weight_shape=(), stride=1, padding=0, dilation=1, groups=1,
                cols=None):
        n, o, g = x.shape[0], weight_shape[0], groups
        if cols is None:
            xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding)) if any(
                padding) else x
            cols, _ = _conv_op(len(weight_shape) - 2)._columns(
                xp, weight_shape[2:], stride, dilation, g)
        gg = grad.reshape(n, g, o // g, -1)  # (N, G, O/G, positions)
        # Σ over the batch of G·colsᵀ: (G, O/G, C/G·prod(k))
        gw = np.matmul(gg, cols.transpose(0, 1, 3, 2)).sum(axis=0)
        ctx.saved = (x, grad)
        ctx.conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return gw.reshape(weight_shape)

    @staticmethod
    def backward(ctx, h):
        x, grad = ctx.saved
        need_x, need_g = ctx.needs_input_grad
        conv = _conv_op(np.ndim(h) - 2)
        return (_call(ConvInputGrad, grad, h, input_shape=x.shape, **ctx.conf)
                if need_x else None,
                _call(conv, x, h, None, **ctx.conf) if need_g else None)


# ----------------------------------------------------------------------- pooling


def _pair(op, name, value):
    """``value`` (an int or a pair of ints) as a pair of ints."""
    if isinstance(value, (int, np.integer)):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _pool_geometry(op, shape, kernel_size, stride, padding):
    """Kernel, stride, padding (pairs) and output size (OH, OW) of a 2-D pooling over
    the last two axes of a (C, H, W) or (N, C, H, W) input, checked as PyTorch does."""
    k = _pair(op, "kernel_size", kernel_size)
    s = k if stride is None or stride == () or stride == [] else _pair(op, "stride", stride)
    p = _pair(op, "padding", padding)
    if len(shape) not in (3, 4):
        raise ShapeError(f"{op}: input of shape {shape}: expected (C, H, W) or "
                         "(N, C, H, W)")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size {k} and stride {s} must be positive and "
                         f"padding {p} non-negative")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k}")
    h, w = shape[-2] + 2 * p[0], shape[-1] + 2 * p[1]
    out = ((h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)
    if h < k[0] or w < k[1] or min(out) < 1 or 0 in shape[:-2]:
        raise ShapeError(f"{op}: input of shape {shape} with kernel_size {k}, stride {s} "
                         f"and padding {p} gives an empty output; use a smaller kernel or "
                         "more padding")
    return k, s, p, out


def _windows(x, k, s, out):
    """The pooling windows of a padded (..., H, W) array: a view of shape
    (..., OH, OW, kh, kw), sliding ``s`` at a time."""
    view = np.lib.stride_tricks.sliding_window_view(x, k, axis=(-2, -1))
    return view[..., :s[0] * (out[0] - 1) + 1:s[0], :s[1] * (out[1] - 1) + 1:s[1], :, :]


def _unpool(k, s, p, out, shape, dtype, parts):
    """The gradient of an input of ``shape``: ``parts(i, j)`` (..., OH, OW) added at
    kernel offset (i, j) of each window of the padded input (a loop over the kernel,
    not over pixels), the padding cut off."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = k, s, p, out
    full = np.zeros(shape[:-2] + (shape[-2] + 2 * ph, shape[-1] + 2 * pw), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            full[..., i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += parts(i, j)
    return full[..., ph:ph + shape[-2], pw:pw + shape[-1]]


def _winners(ctx) -> tuple:
    """Where in the input each window's winner of a max pooling sits: an index (one
    integer array per axis, of the output's shape) that ``a[index]`` reads."""
    kw, (sh, sw), (ph, pw), (oh, ow) = ctx.k[1], ctx.s, ctx.p, ctx.out
    i, j = np.divmod(ctx.winner.astype(np.intp), kw)
    lead = ctx.shape[:-2]
    index = tuple(np.arange(m).reshape((m,) + (1,) * (len(lead) - a + 1))
                  for a, m in enumerate(lead))
    return index + (np.arange(oh)[:, None] * sh + i - ph, np.arange(ow) * sw + j - pw)


class MaxPool2d(Function):
    """The largest value of each window over the last two axes (NCHW, PyTorch's
    ``max_pool2d``; the padding is -inf). The gradient goes to the element that won:
    at a tie, the first in the window (row by row); of several NaN, the last, as
    PyTorch's. Forward walks the kernel's taps (a loop over the kernel, not over
    pixels): each tap is a strided view of every window's element at that offset, and a
    running maximum over them keeps the value and the tap that won (saved for
    backward). Under create_graph the backward is a ``Scatter`` of the gradient to the
    winners, whose own backward reads them back (a gather)."""

    rule = "d max(window)/d a_i = 1 for the element that won the window, 0 for the rest"
    symbol = "maxpool"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("MaxPool", inputs, **_onnx_pool(ctx, "max_pool2d"))

    @staticmethod
    def forward(ctx, a, kernel_size=1, stride=None, padding=0):
        k, s, p, out = _pool_geometry("max_pool2d", np.shape(a), kernel_size, stride, padding)
        pairs = [(0, 0)] * (np.ndim(a) - 2) + [(p[0], p[0]), (p[1], p[1])]
        padded = np.pad(a, pairs, constant_values=-np.inf) if p[0] or p[1] else a
        real = np.pad(np.ones(np.shape(a)[-2:], dtype=bool), pairs[-2:]) if p[0] or p[1] \
            else None
        taps = [(Ellipsis, slice(i, i + s[0] * (out[0] - 1) + 1, s[0]),
                 slice(j, j + s[1] * (out[1] - 1) + 1, s[1])) for i, j in np.ndindex(*k)]
        # a running "first largest": a later tap wins only if strictly larger (or a
        # NaN: the last NaN wins) or the first real element of a window that began in
        # the padding; the padding (-inf) never beats a real element
        nan = padded.dtype.kind == "f" and np.isnan(a).any()
        best = padded[taps[0]]
        winner = np.zeros(best.shape, dtype=np.min_scalar_type(len(taps) - 1))
        seen = None if real is None else real[taps[0]]
        for t, where in enumerate(taps[1:], 1):
            v = padded[where]
            take = v > best
            if nan:
                take |= np.isnan(v)
            if seen is not None:
                take |= np.greater(real[where], seen)  # real here, none seen before
                seen = seen | real[where]
            best = np.where(take, v, best)
            winner = np.where(take, t, winner)
        ctx.winner = winner
        ctx.k, ctx.s, ctx.p, ctx.out = k, s, p, out
        ctx.shape, ctx.dtype = np.shape(a), np.result_type(a)
        return best if len(taps) > 1 else best.copy()  # never a view of the input

    @staticmethod
    def backward(ctx, grad):
        if not isinstance(grad, _ARRAYS):  # create_graph: a scatter, whose backward gathers
            return _scatter(grad, ctx.shape, _winners(ctx))
        kw = ctx.k[1]
        return _unpool(ctx.k, ctx.s, ctx.p, ctx.out, ctx.shape, ctx.dtype,
                       lambda i, j: np.where(ctx.winner == i * kw + j, grad, 0))


class AvgPool2d(Function):
    """The mean of each window over the last two axes (NCHW, PyTorch's ``avg_pool2d``
    with ``count_include_pad=True``: zero padding, counted in the kh·kw divisor). Each
    element of a window gets grad / (kh·kw) (``AvgUnpool2d``, whose own backward is this
    op again)."""

    rule = "d mean(window)/d a_i = 1/(kh·kw) for each element of the window"
    symbol = "avgpool"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("AveragePool", inputs, count_include_pad=1,
                      **_onnx_pool(ctx, "avg_pool2d"))

    @staticmethod
    def forward(ctx, a, kernel_size=1, stride=None, padding=0):
        k, s, p, out = _pool_geometry("avg_pool2d", np.shape(a), kernel_size, stride, padding)
        pairs = [(0, 0)] * (np.ndim(a) - 2) + [(p[0], p[0]), (p[1], p[1])]
        win = _windows(np.pad(a, pairs), k, s, out)
        ctx.k, ctx.s, ctx.p, ctx.out = k, s, p, out
        ctx.shape, ctx.dtype = np.shape(a), np.result_type(a)
        return np.mean(win, axis=(-2, -1))

    @staticmethod
    def backward(ctx, grad):
        return _call(AvgUnpool2d, grad, shape=ctx.shape, kernel_size=ctx.k, stride=ctx.s,
                     padding=ctx.p)


class AvgUnpool2d(Function):
    """The backward of ``avg_pool2d``: ``a`` (..., OH, OW), one value per window, shared
    out equally, a / (kh·kw), over the elements of its window in an input of ``shape``
    (overlapping windows add up). Linear in ``a``; its own backward, the mean of each
    window, is ``avg_pool2d`` again."""

    rule = "d unpool(a)/da_w = 1/(kh·kw) for each element of window w: avg_pool2d"
    symbol = "avgunpool"
    hint = "a NaN or Inf in the gradient spreads to every element of its window"

    @staticmethod
    def forward(ctx, a, shape=(), kernel_size=(1, 1), stride=(1, 1), padding=(0, 0)):
        ctx.k, ctx.s, ctx.p = kernel_size, stride, padding
        share = a / (kernel_size[0] * kernel_size[1])
        return _unpool(kernel_size, stride, padding, np.shape(a)[-2:], tuple(shape),
                       share.dtype, lambda i, j: share)

    @staticmethod
    def backward(ctx, grad):
        return _call(AvgPool2d, grad, kernel_size=ctx.k, stride=ctx.s, padding=ctx.p)


# ------------------------------------------------------- broadcast warning (n,) with (n, 1)
# The elementwise ops of two inputs warn once per line of user code when they broadcast a
# (n,) against a (n, 1) into (n, n) (see broadcasting.py).
for _op in (Add, Sub, Mul, Div, Pow, Maximum, Minimum):
    _op.warn_broadcast = True
del _op

# ----------------------------------------------------------------------- ONNX export
# helpers of the ops' ``onnx`` functions (see autograd/export.py)


def _onnx_error(op, what, fix):
    from .export import OnnxExportError

    return OnnxExportError(f"export_onnx: {op} with {what} has no ONNX export: {fix}")


def _onnx_axis(op, axis) -> int:
    if not isinstance(axis, (int, np.integer)):
        raise _onnx_error(op, f"axis={axis!r}", "give one axis")
    return int(axis)


def _onnx_axes(ctx) -> dict:
    """``axes`` and ``keepdims`` of a reduction, as opset 17's attributes."""
    attrs = {"keepdims": int(bool(ctx.keepdims))}
    if ctx.axis is not None:
        axis = ctx.axis if isinstance(ctx.axis, (tuple, list)) else (ctx.axis,)
        attrs["axes"] = [int(a) for a in axis]
    return attrs


def _onnx_variance(ctx, g, x, out) -> str:
    """var over ``ctx.axis``: mean, squared deviations, their sum over n - ddof. When the
    batch axis is reduced, n is counted in the graph (the batch size is free)."""
    axes = None if ctx.axis is None else [g.ints(ctx.axis)]
    mean = g.node("ReduceMean", [x], **{**_onnx_axes(ctx), "keepdims": 1})
    d = g.node("Sub", [x, mean])
    total = g.node("ReduceSum", [g.node("Mul", [d, d])] + (axes or []),
                   keepdims=int(bool(ctx.keepdims)))
    shape = np.shape(ctx.saved[0])
    reduced = range(len(shape)) if ctx.axis is None else _normalize_axes(ctx.axis, len(shape))
    if g.batch is None or 0 not in reduced:
        return g.node("Div", [total, g.const(max(ctx.dof, 0), out.dtype)])
    ones = g.node("Expand", [g.const(1.0, out.dtype), g.node("Shape", [x])])
    n = g.node("ReduceSum", [ones] + (axes or []), keepdims=int(bool(ctx.keepdims)))
    ddof = int(np.prod([shape[a] for a in reduced])) - ctx.dof
    dof = g.node("Relu", [g.node("Sub", [n, g.const(ddof, out.dtype)])])  # max(n - ddof, 0)
    return g.node("Div", [total, dof])


def _onnx_indices(g, op, idx) -> str:
    """The ONNX name of an index array: a graph input, else a constant, which must not
    be as long as the batch (it would not fit another batch size)."""
    entry = g._inputs.get(id(idx))
    if (entry is None or entry[0] is not idx) and g.batch not in (None, 1) and np.ndim(
            idx) and np.shape(idx)[0] == g.batch:
        raise _onnx_error(op, f"constant indices of shape {np.shape(idx)} (as long as the "
                          "batch)", "pass the indices as an input of the exported function, "
                          "or export with dynamic_batch=False")
    return g.value(idx)


def _onnx_expand(g, x, shape, want, other) -> str:
    """``x`` (of ``shape``) broadcast to ``want``; axes already full size stay as they
    are, and a batch axis to fill takes its length from ``other`` (any batch size)."""
    if tuple(shape) == tuple(want):
        return x
    target = g.ints([1 if n == w else w for n, w in zip(shape, want)])
    if g.batch is not None and shape and shape[0] != want[0]:
        batch = g.node("Slice", [g.node("Shape", [other]), g.ints([0]), g.ints([1])])
        target = g.node("Concat", [batch, g.ints([1 if n == w else w for n, w in zip(
            shape[1:], want[1:])])], axis=0)
    return g.node("Expand", [x, target])


def _onnx_pool(ctx, op) -> dict:
    if len(ctx.shape) != 4:
        raise _onnx_error(op, f"input of shape {ctx.shape}", "export with a batch: x[None]")
    return {"kernel_shape": list(ctx.k), "strides": list(ctx.s), "pads": list(ctx.p) * 2}


_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


def _onnx_basic_index(g, x, idx, shape):
    """``x[idx]`` for ints, slices, None and ``...``: one Slice, then Squeeze for the
    ints and Unsqueeze for the Nones. The bounds are written as given (not resolved
    against the example's shape), so a slice over the batch axis fits any batch."""
    items = idx if isinstance(idx, tuple) else (idx,)
    if not all(isinstance(i, (slice, int, np.integer)) or i is None or i is Ellipsis
               for i in items) or sum(i is Ellipsis for i in items) > 1:
        shown = ", ".join(f"a {i.dtype} array of shape {i.shape}" if isinstance(
            i, np.ndarray) else repr(i) for i in (idx if isinstance(idx, tuple) else (idx,)))
        raise _onnx_error("getitem", f"index [{shown}]", "ints, slices, None and ... "
                          "export, and an integer array alone (rows, as an embedding picks)")
    used = sum(i is not None and i is not Ellipsis for i in items)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - used) + items[at + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = pos = 0  # the axis of x an item reads, the axis of the result it makes
    for i in items:
        if i is None:
            unsqueeze.append(pos)
            pos += 1
            continue
        if isinstance(i, slice):
            step = 1 if i.step is None else int(i.step)
            if (i.start, i.stop, step) != (None, None, 1):
                starts.append((0 if step > 0 else -1) if i.start is None else int(i.start))
                ends.append((_INT64_MAX if step > 0 else _INT64_MIN) if i.stop is None
                            else int(i.stop))
                axes.append(axis)
                steps.append(step)
            pos += 1
        else:  # an int: a slice of one, then the axis goes
            starts.append(int(i))
            ends.append(_INT64_MAX if int(i) == -1 else int(i) + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    if starts:
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if squeeze:
        x = g.node("Squeeze", [x, g.ints(squeeze)])
    if unsqueeze:
        x = g.node("Unsqueeze", [x, g.ints(unsqueeze)])
    if not (starts or squeeze or unsqueeze):
        x = g.node("Identity", [x])
    return x

# ----------------------------------------------------------------------- derivatives of
# derivatives: ops that backward formulas call, so that they run on Tensors too

__all__ += ["BroadcastTo"]


class BroadcastTo(Function):
    """``np.broadcast_to`` (PyTorch's ``expand``): the values repeated along new or
    length-1 axes. A reduction's backward spreads its gradient this way."""

    rule = "d broadcast_to(a)/da: the gradient summed over the repeated axes"
    symbol = "broadcast"

    @staticmethod
    def forward(ctx, a, shape=()):
        ctx.shape = np.shape(a)
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(f"broadcast_to: shape {np.shape(a)} cannot be broadcast to "
                             f"{tuple(shape)}: aligned from the right, each dimension must "
                             "equal the target's or be 1") from None

    @staticmethod
    def backward(ctx, grad):
        return grad  # in the output's shape: the engine sums it down to the input's


__all__ += ["Scatter"]


class Scatter(Function):
    """Zeros of ``shape`` with ``a`` added at ``index`` (an index as ``a[index]`` takes;
    repeated places add up, or with ``accumulate=False`` are written once): the adjoint
    of indexing. The backward of ``getitem``, ``gather``, ``sort`` and the like computes
    it; as an op, its own backward (indexing) gives those ops their double backward."""

    rule = "d scatter(a)/da: the gradient read back at index"
    symbol = "scatter"

    @staticmethod
    def forward(ctx, a, shape=(), index=(), accumulate=True):
        ctx.index = index
        return _scatter_values(a, shape, index, accumulate)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.index]  # in the shape a broadcast to: the engine sums it down
