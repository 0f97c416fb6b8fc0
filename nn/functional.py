"""Activations, dropout and losses as plain functions (``import nn.functional as F``).

Most functions here are compositions of autograd's public ops: their gradient comes
from the chain rule through those ops, and their graph can be drawn and stepped
through op by op. Four sit on the hot path of every training step and are single ops
instead (``ag.Function`` subclasses, forward and backward side by side, checked against
finite differences and PyTorch in the tests): ``linear`` (``LinearFunction``, the
dense layer), ``binary_cross_entropy`` and ``nll_loss`` (which ``cross_entropy``
applies after ``log_softmax``, as PyTorch does), and ``batch_norm`` in training
(``BatchNormFunction``). One node instead of four to ten makes a step markedly faster.
The activations ``leaky_relu``, ``elu`` and ``softplus`` are single ops as well
(``LeakyReluFunction``, ``EluFunction``, ``SoftplusFunction``): their masks come from
inside the op, so they export to ONNX, and their second derivatives are PyTorch's.

Losses take ``(input, target)``: ``input`` is the model's output (a Tensor), ``target``
an array or Tensor, and ``reduction`` is ``"mean"`` (the default: the average over all
elements, or over samples for ``cross_entropy``), ``"sum"`` or ``"none"`` (one loss per
element / sample). Shapes are checked: a mismatch raises an error naming both shapes.
"""

from __future__ import annotations

import math

import numpy as np

import autograd as ag

from .init import get_rng

__all__ = [
    "relu", "sigmoid", "tanh", "leaky_relu", "softmax", "log_softmax", "dropout", "linear",
    "LinearFunction", "BinaryCrossEntropyFunction",
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "nll_loss", "NLLLossFunction",
    "l2_penalty",
    "gelu", "silu", "elu", "softplus", "layer_norm", "embedding", "kl_div",
    "conv1d", "conv2d",
    "max_pool2d", "avg_pool2d", "batch_norm",
    "BatchNormFunction",
    "LeakyReluFunction", "EluFunction", "SoftplusFunction",
]

_REDUCTIONS = ("mean", "sum", "none")


def _tensor(x) -> ag.Tensor:
    return x if isinstance(x, ag.Tensor) else ag.Tensor(x)


# ------------------------------------------------------------------------ activations


def relu(x) -> ag.Tensor:
    """max(x, 0) elementwise."""
    return _tensor(x).relu()


def sigmoid(x) -> ag.Tensor:
    """1 / (1 + exp(-x)), computed without overflow for any x."""
    return _tensor(x).sigmoid()


def tanh(x) -> ag.Tensor:
    return _tensor(x).tanh()


def leaky_relu(x, negative_slope: float = 0.01) -> ag.Tensor:
    """x where x > 0, else ``negative_slope * x`` (the slope is also the gradient at 0).
    One op (``LeakyReluFunction``)."""
    return LeakyReluFunction.apply(_tensor(x), negative_slope=negative_slope)


def softmax(x, axis: int = -1, *, dim=None) -> ag.Tensor:
    """exp(x) / Σ exp(x) along ``axis`` (or PyTorch's ``dim``; shifted by the max: no
    overflow)."""
    return _tensor(x).softmax(axis=axis, dim=dim)


def log_softmax(x, axis: int = -1, *, dim=None) -> ag.Tensor:
    """x - log Σ exp(x) along ``axis`` (or PyTorch's ``dim``; log-sum-exp stable)."""
    return _tensor(x).log_softmax(axis=axis, dim=dim)


def dropout(x, p: float = 0.5, training: bool = True, rng=None) -> ag.Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    1/(1-p), so the expected value is unchanged. The identity when ``training`` is False
    (or ``p`` is 0). ``rng``: a Generator or seed (default: the ``nn.manual_seed`` one).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    x = _tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * np.zeros(x.shape, dtype=x.dtype)
    keep = get_rng(rng).random(x.shape) >= p
    scale = keep.astype(x.dtype)
    scale *= 1.0 / (1.0 - p)
    return x * scale


_ONES: dict = {}


def _ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of n ones (cached: the batch size rarely changes)."""
    key = (n, dtype)
    v = _ONES.get(key)
    if v is None:
        if len(_ONES) > 16:
            _ONES.clear()
        v = _ONES[key] = np.ones(n, dtype=dtype)
        v.flags.writeable = False
    return v


class LinearFunction(ag.Function):
    """y = x·Wᵀ + b as one op: one graph node per layer, as a hand-written layer is.

    The chain rule through it, with G = dL/dy:
    dL/dx = G·W,   dL/dW = Gᵀ·x (summed over the batch),   dL/db = Σ_batch G.
    """

    name = "Linear"
    rule = "y = x·Wᵀ + b:  dL/dx = G·W,  dL/dW = Gᵀ·x,  dL/db = Σₙ G"
    symbol = "linear"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        x, weight, bias = inputs
        if out.ndim == 2:  # one Gemm: x·Wᵀ + b
            return g.node("Gemm", [x, weight, bias], transB=1)
        y = g.node("MatMul", [x, g.node("Transpose", [weight], perm=[1, 0])])
        return y if bias is None else g.node("Add", [y, bias])

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        wt = weight.T
        if wt.size <= 4096:
            # BLAS multiplies by a small transposed matrix faster once it is contiguous
            # (measured: about 2x for the case study's layers); large ones it takes as is
            wt = wt.copy()
        # one input feature: each output is one product, exact as in PyTorch (a lone
        # product -0 stays -0, where BLAS would add it to +0)
        out = x * wt if wt.shape[0] == 1 and x.ndim >= 2 else x @ wt
        if bias is not None:
            if bias.dtype == out.dtype:
                out += bias  # out is a fresh array: add in place
            else:
                out = out + bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = grad @ weight if need_x else None
        gw = gb = None
        # one sample (in,) or extra leading axes: as a matrix of rows (every size
        # spelled out: -1 is ambiguous when a dimension is 0)
        g2 = grad if grad.ndim == 2 else grad.reshape(math.prod(grad.shape[:-1]),
                                                      grad.shape[-1])
        if need_w:
            x2 = x if x.ndim == 2 else x.reshape(g2.shape[0], x.shape[-1])
            gw = g2.T @ x2
        if need_b:
            # the column sums, as a matrix-vector product: BLAS sums a tall, narrow
            # gradient several times faster than g2.sum(axis=0)
            gb = _ones(g2.shape[0], g2.dtype) @ g2
        return gx, gw, gb


def linear(x, weight, bias=None) -> ag.Tensor:
    """``x @ weight.T + bias``, with ``weight`` of shape (out_features, in_features).

    ``x`` has shape (..., in_features); the result (..., out_features). Computed as one
    op (``LinearFunction``), whose gradient is the textbook one for a dense layer.
    """
    if not isinstance(x, ag.Tensor):
        x = ag.Tensor(x)
    n_in = x.shape[-1] if x.ndim else 0
    if weight.ndim != 2 or n_in != weight.shape[1] or (
            bias is not None and bias.shape != (weight.shape[0],)):
        if weight.ndim == 2 and n_in == weight.shape[1]:
            raise ag.ShapeError(
                f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},) for a "
                f"weight of shape {weight.shape}")
        raise ag.ShapeError(
            f"linear: input of shape {x.shape} has {n_in} features but the weight of "
            f"shape {weight.shape} (out_features, in_features) expects "
            f"{weight.shape[-1]}; reshape the input to (batch, {weight.shape[-1]}) or "
            f"build the layer with in_features={n_in}")
    return LinearFunction.apply(x, weight, bias)


# ------------------------------------------------------------------------ loss helpers


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: ag.Tensor, reduction: str, op: str) -> ag.Tensor:
    _check_reduction(reduction, op)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _target(target, input: ag.Tensor, op: str):
    """The target as an array in the input's dtype (or a Tensor, left as it is)."""
    if isinstance(target, ag.Tensor):
        t = target
    else:
        t = np.asarray(target)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{op}: target must hold numbers, got dtype {t.dtype}")
        t = t.astype(input.dtype, copy=False)
    if t.shape != input.shape:
        hint = ""
        if t.shape == input.shape[:-1] and input.shape[-1:] == (1,):
            hint = " e.g. target.reshape(-1, 1), or flatten the output with out.reshape(-1)"
        elif input.shape == t.shape[:-1] and t.shape[-1:] == (1,):
            hint = " e.g. target.reshape(-1), or keep the output as a column"
        raise ag.ShapeError(
            f"{op}: target shape {tuple(t.shape)} does not match input shape "
            f"{tuple(input.shape)}; they must be equal (no broadcasting in losses, which "
            f"would silently average the wrong pairs):{hint or ' reshape one of them'}")
    return t


def _weighted(loss, weight, input, op):
    if weight is None:
        return loss
    w = weight if isinstance(weight, ag.Tensor) else np.asarray(weight, dtype=input.dtype)
    try:
        np.broadcast_shapes(np.shape(w), loss.shape)
    except ValueError:
        raise ag.ShapeError(f"{op}: weight of shape {np.shape(w)} does not broadcast to the "
                            f"loss shape {loss.shape}") from None
    return loss * w


# ------------------------------------------------------------------------ losses


def mse_loss(input, target, reduction: str = "mean") -> ag.Tensor:
    """Mean squared error: (input - target)² averaged (``reduction="mean"``)."""
    input = _tensor(input)
    d = input - _target(target, input, "mse_loss")
    return _reduce(d * d, reduction, "mse_loss")


class BinaryCrossEntropyFunction(ag.Function):
    """Binary cross-entropy of probabilities as one op (PyTorch's formulas).

    loss = -[y·log p + (1-y)·log(1-p)], each log clamped at -100;
    dL/dp = (p - y) / max(p(1-p), 1e-12),  dL/dy = log(1-p) - log p (not clamped: ±inf
    at p = 0 or 1).
    ``apply(p, y, reduction="mean")``: the reduction ("mean", "sum" or "none") is
    applied inside the op.
    """

    name = "BinaryCrossEntropy"
    rule = "dL/dp = (p - y) / (p(1 - p)),  dL/dy = log(1-p) - log p"
    symbol = "binary cross entropy"

    @staticmethod
    def forward(ctx, p, y, reduction="mean"):
        _check_reduction(reduction, "BinaryCrossEntropyFunction.apply")
        # log 0 = -inf, then clamped to -100; p outside [0, 1] gives NaN, which the
        # caller turns into an error
        # (computed into arrays of our own, so that a 0-d p is updated in place too)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = np.log(p, out=np.empty_like(p))
            log_q = np.subtract(1.0, p, out=np.empty_like(p))
            np.log(log_q, out=log_q)
            np.maximum(log_p, -100.0, out=log_p)
        np.maximum(log_q, -100.0, out=log_q)
        diff = log_p
        diff -= log_q  # log p - log(1-p); loss = -(log(1-p) + y·diff)
        ctx.save_for_backward(p, y)
        ctx.reduction = reduction
        if reduction == "none":
            loss = diff * y
            loss += log_q
            return np.negative(loss, out=loss) if loss.ndim else -loss  # (0-d: a scalar)
        # 0 - (...), not -(...): an empty or all-zero loss is +0, as in PyTorch
        total = 0.0 - (np.add.reduce(log_q, axis=None) + np.vdot(diff, y))
        return total / p.size if reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.saved
        if ctx.reduction == "mean":
            grad = grad / p.size
        gp = gy = None
        if ctx.needs_input_grad[0]:
            gp = (p - y) / np.maximum((1.0 - p) * p, 1e-12) * grad
        if ctx.needs_input_grad[1]:  # log(1-p) - log p, unclamped
            with np.errstate(divide="ignore", invalid="ignore"):
                gy = (np.log(1.0 - p) - np.log(p)) * grad
        return gp, gy


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> ag.Tensor:
    """-[y·log p + (1-y)·log(1-p)] for probabilities ``input`` = p in [0, 1].

    Each log is clamped at -100 (as PyTorch does), so p = 0 or 1 gives a large finite
    loss instead of inf, and the gradient (p - y)/(p(1-p)) stays finite. For raw scores
    (logits), use ``binary_cross_entropy_with_logits``, which is exact for any logit.
    One op in the graph (``BinaryCrossEntropyFunction``): this loss sits on the hot
    path of small sigmoid networks, where each extra node costs time.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    p = _tensor(input)
    y = _target(target, p, "binary_cross_entropy")
    fused = weight is None
    loss = BinaryCrossEntropyFunction.apply(p, y, reduction=reduction if fused else "none")
    # an input outside [0, 1] (or NaN) makes a NaN loss: only then look for the culprit
    value = loss.numpy()
    if (value != value) if value.ndim == 0 else np.isnan(value).any():
        vals = p.numpy()
        outside = ~((vals >= 0) & (vals <= 1))
        if outside.any():
            raise ValueError(
                f"binary_cross_entropy: input must hold probabilities in [0, 1], found "
                f"{vals[outside].flat[0]}. If the model outputs raw scores (no sigmoid at "
                "the end), use binary_cross_entropy_with_logits (nn.BCEWithLogitsLoss)")
    if fused:
        return loss
    return _reduce(_weighted(loss, weight, p, "binary_cross_entropy"), reduction,
                   "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction: str = "mean") -> ag.Tensor:
    """Binary cross-entropy of sigmoid(z) for logits ``input`` = z, stable for any z.

    Uses -[y·log σ(z) + (1-y)·log(1-σ(z))] = max(z, 0) - z·y + log(1 + exp(-|z|)):
    ``exp`` only ever sees a non-positive number, so z = ±1000 gives the exact loss.
    The gradient is σ(z) - y. ``pos_weight`` scales the loss of positive targets.
    """
    z = _tensor(input)
    y = _target(target, z, "binary_cross_entropy_with_logits")
    log1p_exp = (1.0 + (-z.abs()).exp()).log()  # log(1 + exp(-|z|)), in (0, log 2]
    if pos_weight is None:
        loss = ag.maximum(z, 0.0) - z * y + log1p_exp
    else:
        pw = pos_weight if isinstance(pos_weight, ag.Tensor) else np.asarray(
            pos_weight, dtype=z.dtype)
        # (1-y)·z + (1 + (pw-1)·y)·softplus(-z), with softplus(-z) = max(-z,0) + log1p_exp
        loss = (1.0 - y) * z + (1.0 + (pw - 1.0) * y) * (ag.maximum(-z, 0.0) + log1p_exp)
    return _reduce(_weighted(loss, weight, z, "binary_cross_entropy_with_logits"),
                   reduction, "binary_cross_entropy_with_logits")


class NLLLossFunction(ag.Function):
    """Negative log-likelihood of class indices as one op: -logp[n, target[n]].

    ``apply(logp, target, reduction="mean")``: ``logp`` holds log-probabilities (N, C)
    (or (C,) for one sample), ``target`` the class indices. The gradient is -1 (÷N for
    the mean) at each sample's target class and 0 elsewhere.
    """

    name = "NLLLoss"
    rule = "dL/dlogp[n, c] = -1 (÷N for the mean) where c = target[n], else 0"
    symbol = "nll loss"

    @staticmethod
    def forward(ctx, logp, target, reduction="mean"):
        _check_reduction(reduction, "NLLLossFunction.apply")
        idx = (np.arange(len(target)), target) if logp.ndim == 2 else (target,)
        picked = logp[idx]
        ctx.idx, ctx.shape, ctx.n, ctx.reduction = idx, logp.shape, picked.size, reduction
        if reduction == "none":  # -x per sample; one unbatched sample sums (0 - x), as
            return np.negative(picked) if logp.ndim == 2 else 0.0 - picked  # PyTorch
        total = 0.0 - np.add.reduce(picked, axis=None)
        return total / ctx.n if reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad):
        if ctx.reduction == "mean":
            grad = grad / ctx.n
        target = np.zeros(ctx.shape, dtype=bool)  # each row's target class, once
        target[ctx.idx] = True
        g = -grad
        if ctx.reduction == "none" and len(ctx.shape) == 2:
            g = g[:, None]  # one value per row
        return np.where(target, g, 0), None


def _class_indices(t, shape, op: str) -> np.ndarray:
    """Check integer class targets against logits of ``shape``; name a bad index."""
    if t.shape != shape[:-1]:
        raise ag.ShapeError(
            f"{op}: class-index target has shape {t.shape}, expected {shape[:-1]} (one "
            f"index per row of the input of shape {shape}). For one-hot or probability "
            f"targets pass floats of shape {shape}")
    n_classes = shape[-1]
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        where = tuple(int(i) for i in np.argwhere((t < 0) | (t >= n_classes))[0])
        pos = f"target[{where[0]}]" if where else "target"
        raise IndexError(
            f"{op}: {pos} = {int(t[where])} is not a class index: the input of shape "
            f"{shape} has {n_classes} classes, so indices run 0..{n_classes - 1}")
    return t


def _check_logits(z: ag.Tensor, op: str) -> None:
    if z.ndim not in (1, 2):
        raise ag.ShapeError(f"{op}: input must be of shape (N, C) or (C,), got shape "
                            f"{z.shape}; reshape it to (-1, n_classes)")


def nll_loss(input, target, reduction: str = "mean") -> ag.Tensor:
    """Negative log-likelihood: -input[n, target[n]] for log-probabilities ``input``
    (N, C) (e.g. ``log_softmax`` output) and integer class indices ``target`` (N,)."""
    op = "nll_loss"
    z = _tensor(input)
    _check_logits(z, op)
    _check_reduction(reduction, op)
    t = np.asarray(target.numpy() if isinstance(target, ag.Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be integer class indices, got dtype {t.dtype}"
                        + (" (pass y.astype(int))" if t.dtype.kind == "f" else ""))
    return NLLLossFunction.apply(z, _class_indices(t, z.shape, op), reduction=reduction)


def cross_entropy(input, target, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> ag.Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) (or (C,) for one sample).

    ``target`` is either integer class indices of shape (N,) (or a scalar), giving
    -log softmax(input)[n, target[n]], or class probabilities of the input's shape,
    giving -Σ_c target[n, c]·log softmax(input)[n, c]. Computed as
    ``nll_loss(log_softmax(input), target)`` (PyTorch's decomposition): log-sum-exp
    with the max subtracted, so large logits do not overflow. ``reduction="mean"``
    averages over the N samples. ``label_smoothing`` = ε mixes the target with the
    uniform distribution over the C classes (PyTorch's formula): class indices give
    (1-ε)·nll + ε/C·Σ_c -log softmax(input)[n, c]; probabilities become (1-ε)·p + ε/C.
    """
    z = _tensor(input)
    op = "cross_entropy"
    _check_logits(z, op)
    _check_reduction(reduction, op)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    t = target.numpy() if isinstance(target, ag.Tensor) and not target.requires_grad else target
    if not isinstance(t, ag.Tensor):
        t = np.asarray(t)
    if isinstance(t, np.ndarray) and t.dtype.kind in "iu":
        t = _class_indices(t, z.shape, op)
        logp = z.log_softmax(axis=-1)
        nll = NLLLossFunction.apply(logp, t, reduction=reduction)
        if eps == 0.0:
            return nll
        smooth = _reduce(-logp.sum(axis=-1), reduction, op)
        return (1.0 - eps) * nll + (eps / z.shape[-1]) * smooth
    if isinstance(t, np.ndarray) and t.dtype.kind != "f":
        raise TypeError(f"{op}: target must be integer class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    if tuple(t.shape) != z.shape:
        if tuple(t.shape) == z.shape[:-1]:
            raise TypeError(
                f"{op}: target has float dtype and shape {tuple(t.shape)}: class indices "
                f"must be integers (pass y.astype(int)); probability targets must have the "
                f"input's shape {z.shape}")
        raise ag.ShapeError(
            f"{op}: target shape {tuple(t.shape)} fits neither class indices "
            f"{z.shape[:-1]} nor class probabilities {z.shape} for input of shape {z.shape}")
    if isinstance(t, np.ndarray):
        t = t.astype(z.dtype, copy=False)
    if eps != 0.0:
        t = t * (1.0 - eps) + eps / z.shape[-1]
    per_sample = (z.log_softmax(axis=-1) * t).sum(axis=-1)
    return -_reduce(per_sample, reduction, op)


def l2_penalty(params, weight_decay: float, include_bias: bool = False) -> ag.Tensor:
    """``weight_decay / 2 · Σ ||W||²`` over the weights, to add to a loss.

    ``params``: a Module or an iterable of Parameters. Only parameters with two or more
    dimensions (weight matrices) count unless ``include_bias=True``. The ½ makes its
    gradient ``weight_decay · W``, exactly what ``SGD(weight_decay=...)`` adds; since
    that decays every parameter, ``loss + F.l2_penalty(model, lam, include_bias=True)``
    with plain SGD trains like ``weight_decay=lam``.
    """
    if hasattr(params, "parameters"):
        params = params.parameters()
    total = None
    for p in params:
        if p.ndim < 2 and not include_bias:
            continue
        sq = (p * p).sum()
        total = sq if total is None else total + sq
    if total is None:
        return ag.Tensor(0.0)
    return total * (0.5 * weight_decay)


# ------------------------------------------------------------------------
# more activations, layer norm, embedding lookup, KL divergence (compositions of ops)

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x, approximate: str = "none") -> ag.Tensor:
    """x·Φ(x), Φ the standard normal CDF: ``x/2·(1 + erf(x/√2))``; with
    ``approximate="tanh"``, ``x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``."""
    x = _tensor(x)
    if approximate == "none":
        return 0.5 * x * (1.0 + (x * _SQRT_HALF).erf())
    if approximate == "tanh":
        return 0.5 * x * (1.0 + (_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))).tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x) -> ag.Tensor:
    """x·σ(x) (also called swish)."""
    x = _tensor(x)
    return x * x.sigmoid()


def elu(x, alpha: float = 1.0) -> ag.Tensor:
    """x for x > 0, else ``alpha·(exp(x) - 1)`` (slope ``alpha`` at 0, as PyTorch). One op
    (``EluFunction``)."""
    return EluFunction.apply(_tensor(x), alpha=alpha)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> ag.Tensor:
    """log(1 + exp(beta·x)) / beta, and x itself where beta·x > ``threshold``.

    One op (``SoftplusFunction``): exp never overflows, and the gradient is σ(beta·x)
    (1 above the threshold)."""
    return SoftplusFunction.apply(_tensor(x), beta=beta, threshold=threshold)


def layer_norm(input, normalized_shape, weight=None, bias=None,
               eps: float = 1e-5) -> ag.Tensor:
    """(x - mean) / √(var + eps) over the last ``len(normalized_shape)`` dimensions
    (biased variance, as PyTorch), then ``· weight + bias`` when given."""
    x = _tensor(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    k = len(shape)
    if k == 0 or x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ag.ShapeError(f"layer_norm: input of shape {x.shape} does not end with "
                            f"normalized_shape {shape}; pass the shape of its last dims")
    axes = tuple(range(x.ndim - k, x.ndim))
    d = x - x.mean(axis=axes, keepdims=True)
    out = d / ((d * d).mean(axis=axes, keepdims=True) + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(input, weight, padding_idx=None) -> ag.Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer indices:
    output shape ``input.shape + (embedding_dim,)``. The gradient of a row is the sum
    over every place it was picked (indexing's backward); the ``padding_idx`` row gets
    none."""
    idx = np.asarray(input.numpy() if isinstance(input, ag.Tensor) else input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}"
                        + (" (pass idx.astype(int))" if idx.dtype.kind == "f" else ""))
    n = weight.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].flat[0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for a weight of "
                         f"shape {tuple(weight.shape)} (indices run 0..{n - 1})")
    out = weight[idx]
    if padding_idx is not None:
        pad = (idx == (padding_idx % n))[..., None]
        if pad.any():  # same values, no gradient to the padding row
            out = ag.where(pad, out.numpy(), out)
    return out


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> ag.Tensor:
    """KL divergence with log-probabilities ``input``: pointwise
    ``target·(log target - input)`` (0 where target = 0), or with ``log_target=True``
    ``exp(target)·(target - input)``. ``reduction``: "mean" (over all elements, as
    PyTorch), "batchmean" (the sum ÷ batch size: the true KL divergence), "sum", "none".
    """
    op = "kl_div"
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', "
                         f"got {reduction!r}")
    x = _tensor(input)
    t = _target(target, x, op)
    if log_target:
        loss = (t.exp() if isinstance(t, ag.Tensor) else np.exp(t)) * (t - x)
    elif isinstance(t, ag.Tensor):
        zero = t.numpy() == 0
        loss = ag.where(zero, 0.0, t * ag.where(zero, 1.0, t).log()) - t * x
    else:  # 0·log 0 = 0 (xlogy); a negative target gives NaN, as in PyTorch
        with np.errstate(divide="ignore", invalid="ignore"):
            xlogx = np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1.0, t)))
        loss = xlogx.astype(x.dtype, copy=False) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, op)


# ----------------------------------------------------------------------- convolution

conv1d = ag.conv1d
conv2d = ag.conv2d


# ------------------------------------------------------------------- pooling, batch norm


def max_pool2d(input, kernel_size, stride=None, padding=0) -> ag.Tensor:
    """Max pooling over (N, C, H, W) or (C, H, W): ``ag.max_pool2d``."""
    return ag.max_pool2d(_tensor(input), kernel_size, stride, padding)


def avg_pool2d(input, kernel_size, stride=None, padding=0) -> ag.Tensor:
    """Average pooling (zero padding counted) over (N, C, H, W) or (C, H, W):
    ``ag.avg_pool2d``."""
    return ag.avg_pool2d(_tensor(input), kernel_size, stride, padding)


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation of (N, C) or (N, C, ...) over every axis but the channels (1),
    PyTorch's ``F.batch_norm``. Training: normalise with the
    batch's mean and biased variance (one op, ``BatchNormFunction``), and, when
    ``running_mean``/``running_var`` (Tensors or NumPy arrays) are given, move them in
    place towards the batch's mean and unbiased variance by ``momentum``. Otherwise:
    normalise with the running statistics (built from arithmetic, so the gradient is the
    engine's). Then ``· weight + bias`` per channel."""
    x = _tensor(input)
    if x.ndim < 2:
        raise ag.ShapeError(f"batch_norm: input of shape {x.shape}: expected (N, C) or "
                            "(N, C, ...)")
    if not training:
        for name, given in (("running_mean", running_mean), ("running_var", running_var)):
            if given is None:
                raise ValueError(f"batch_norm: {name} must be given in evaluation mode "
                                 "(training=False normalises with the running "
                                 "statistics); pass training=True to use the batch's")
    view = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # a per-channel value, broadcast
    if training:
        count = x.size // max(x.shape[1], 1)
        if training and count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {x.shape}")
        stats = []  # the op hands back the batch's mean and biased variance
        out = BatchNormFunction.apply(x, weight, bias, eps=eps, stats=stats)
        if training and running_mean is not None:
            mean, var = stats
            m = float(momentum)
            _move(running_mean, mean, m)
            _move(running_var, var * (count / (count - 1)), m)
        return out
    mean = _values(running_mean).reshape(view)
    std = np.sqrt(_values(running_var).reshape(view) + eps)
    out = (x - mean.astype(x.dtype, copy=False)) / std.astype(x.dtype, copy=False)
    if weight is not None:
        out = out * weight.reshape(view)
    if bias is not None:
        out = out + bias.reshape(view)
    return out


def _values(t) -> np.ndarray:
    return np.asarray(t.numpy() if isinstance(t, ag.Tensor) else t)


def _move(running, batch, momentum) -> None:
    """``running ← (1 - momentum)·running + momentum·batch``, in place."""
    target = running.data if isinstance(running, ag.Tensor) else running
    target[...] = (1 - momentum) * _values(running) + momentum * batch


# ------------------------------------------------------------------------
# regression and margin losses with PyTorch's names (compositions of ops): l1, smooth l1,
# Huber, hinge embedding, multi-class margin

__all__ += ["l1_loss", "smooth_l1_loss", "huber_loss", "hinge_embedding_loss",
            "multi_margin_loss"]


def l1_loss(input, target, reduction: str = "mean") -> ag.Tensor:
    """Mean absolute error: |input - target| averaged (``reduction="mean"``)."""
    input = _tensor(input)
    d = input - _target(target, input, "l1_loss")
    return _reduce(d.abs(), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> ag.Tensor:
    """``0.5·d²/beta`` where ``|d| < beta``, else ``|d| - 0.5·beta`` (d = input - target):
    quadratic near 0, linear beyond. ``beta=0`` is ``l1_loss``. ``huber_loss`` is
    ``beta`` times this with ``delta = beta``."""
    op = "smooth_l1_loss"
    if beta < 0:
        raise ValueError(f"{op}: beta must be >= 0, got {beta}")
    input = _tensor(input)
    d = input - _target(target, input, op)
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction, op)
    return _reduce(ag.where(ad.data < beta, 0.5 * d * d / beta, ad - 0.5 * beta),
                   reduction, op)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> ag.Tensor:
    """``0.5·d²`` where ``|d| < delta``, else ``delta·(|d| - 0.5·delta)`` (d = input -
    target): squared error for small errors, absolute error (slope ``delta``) for large
    ones, so outliers pull less than in ``mse_loss``."""
    op = "huber_loss"
    if not delta > 0:
        raise ValueError(f"{op}: delta must be > 0, got {delta}")
    input = _tensor(input)
    d = input - _target(target, input, op)
    ad = d.abs()
    return _reduce(ag.where(ad.data < delta, 0.5 * d * d, delta * (ad - 0.5 * delta)),
                   reduction, op)


def hinge_embedding_loss(input, target, margin: float = 1.0,
                         reduction: str = "mean") -> ag.Tensor:
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``
    (``input`` is usually a distance; ``target`` holds 1 or -1, of the input's shape).
    As in PyTorch, another target value counts both terms."""
    op = "hinge_embedding_loss"
    x = _tensor(input)
    t = _target(target, x, op)
    tv = t.numpy() if isinstance(t, ag.Tensor) else t
    pushed = ag.where(tv != 1, (margin - x).clip(min=0.0), 0.0)
    pulled = ag.where(tv != -1, x, 0.0)
    return _reduce(pushed + pulled, reduction, op)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      reduction: str = "mean") -> ag.Tensor:
    """Multi-class hinge loss of scores ``input`` (N, C) (or (C,)) and class indices
    ``target`` (N,): per sample ``Σ_{i≠y} max(0, margin - x[y] + x[i])^p / C``, each term
    times ``weight[y]`` if given. ``p`` is 1 or 2. The SVM loss of the classic courses."""
    op = "multi_margin_loss"
    if p not in (1, 2):
        raise ValueError(f"{op}: p must be 1 or 2, got {p!r}")
    z = _tensor(input)
    _check_logits(z, op)
    _check_reduction(reduction, op)
    one = z.ndim == 1
    t = np.asarray(target.numpy() if isinstance(target, ag.Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be integer class indices, got dtype {t.dtype}"
                        + (" (pass y.astype(int))" if t.dtype.kind == "f" else ""))
    if one:  # one sample: scores (C,), target () or (1,)
        z = z.reshape(1, -1)
        t = t.reshape(-1)
    t = _class_indices(t, z.shape, op)
    n_classes = z.shape[1]
    picked = ag.take_along_axis(z, t[:, None], axis=1)  # x[y], (N, 1)
    terms = (margin - picked + z).relu()
    if p == 2:
        terms = terms * terms
    if weight is not None:
        w = np.asarray(weight.numpy() if isinstance(weight, ag.Tensor) else weight)
        if w.shape != (n_classes,):
            raise ag.ShapeError(f"{op}: weight must have shape ({n_classes},), one per "
                                f"class, got {w.shape}")
        terms = terms * w.astype(z.dtype, copy=False)[t][:, None]
    others = np.arange(n_classes) != t[:, None]  # the target's own term is left out
    per_sample = ag.where(others, terms, 0.0).sum(axis=1) / n_classes
    if one and reduction == "none":
        per_sample = per_sample.reshape(())
    return _reduce(per_sample, reduction, op)

# ------------------------------------------------------------------ batch norm, one op


class BatchNormFunction(ag.Function):
    """Batch normalisation with the batch's statistics (training mode), one op: per
    channel (axis 1) of x (N, C, ...), with μ and σ² the mean and biased variance over
    the other m = N·... values,

        x̂ = (x - μ) / √(σ² + eps),   y = γ·x̂ + β   (γ = weight, β = bias; each optional).

    The chain rule through μ and σ² (they depend on every x of the channel) folds into
    one expression, with G = dL/dy:

        dL/dβ = Σ G,   dL/dγ = Σ G·x̂,
        dL/dx = γ/√(σ² + eps) · (G - Σ G / m - x̂ · Σ G·x̂ / m).

    ``stats``, when a list is given, receives (μ, σ²) per channel (for the running
    statistics)."""

    rule = ("x̂ = (x-μ)/√(σ²+eps), y = γ·x̂ + β:  dL/dx = γ/√(σ²+eps)·(G - mean(G) - "
            "x̂·mean(G·x̂)),  dL/dγ = Σ G·x̂,  dL/dβ = Σ G")
    symbol = "batchnorm"
    hint = ("a NaN or Inf in one sample spreads to its whole channel through the mean "
            "and the variance")

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5, stats=None):
        ctx.axes = (0,) + tuple(range(2, x.ndim))
        ctx.view = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        ctx.eps = float(eps)  # a Python float: weak, float32 stays float32
        xhat, mean, var = BatchNormFunction.normalise(ctx, x)
        if stats is not None:
            stats[:] = [mean.reshape(-1), var.reshape(-1)]
        out = xhat * weight.reshape(ctx.view) if weight is not None else xhat
        if bias is not None:
            b = bias.reshape(ctx.view)
            if np.result_type(out, b) == out.dtype:
                out += b
            else:
                out = out + b
        ctx.saved = (x, weight)  # inputs only: backward rebuilds x̂ (on Tensors too)
        return out

    @staticmethod
    def normalise(ctx, x):
        """(x̂, μ, σ²) of ``x`` per channel. The same operations in forward and backward
        (on arrays, or on Tensors under ``create_graph``), so both see the same x̂."""
        mean = x.mean(axis=ctx.axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=ctx.axes, keepdims=True)
        return xc * (1 / np.sqrt(var + ctx.eps)), mean, var

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        axes, view = ctx.axes, ctx.view
        xhat, _, var = BatchNormFunction.normalise(ctx, x)
        sum_g = grad.sum(axis=axes, keepdims=True)
        sum_gx = (grad * xhat).sum(axis=axes, keepdims=True)
        gx = None
        if need_x:
            m = grad.size // grad.shape[1]
            scale = 1 / np.sqrt(var + ctx.eps)
            if weight is not None:
                scale = scale * weight.reshape(view)
            gx = (grad - sum_g / m - xhat * (sum_gx / m)) * scale
        gw = sum_gx.reshape(-1) if need_w else None
        gb = sum_g.reshape(-1) if need_b else None
        return gx, gw, gb


# ------------------------------------------------- leaky relu, elu and softplus, one op each
# (one node each in the graph, exported as ONNX's LeakyRelu, Elu and Softplus; their
# second derivatives are PyTorch's)

_ARRAYS = (np.ndarray, np.generic)


def _data(x) -> np.ndarray:
    """The values of a saved input: the array, or the Tensor's (a backward running on
    Tensors under ``create_graph``)."""
    return x if isinstance(x, _ARRAYS) else x.data


def _below_zero(x):
    """min(x, 0), with derivative 1 below 0 and 0 from 0 up (PyTorch's mask for ELU's
    second derivative, x < 0; on Tensors, a tie in np.minimum would share it). On arrays
    np.minimum: the same values, many times faster than np.where on a mask of mixed
    signs."""
    if isinstance(x, _ARRAYS):
        return np.minimum(0.0, x)
    return np.where(x.data >= 0, 0.0, x)


def _sigmoid(z):
    """σ(z) of an array (without the Tensor around it), or of a Tensor (the op)."""
    if isinstance(z, _ARRAYS):
        with np.errstate(over="ignore"):  # exp(-z) = inf below -709: σ = 0
            return 1.0 / (1.0 + np.exp(-z))
    return z.sigmoid()


def _factor(mask, if_true: float, if_false: float, dtype) -> np.ndarray:
    """``if_true`` where ``mask``, else ``if_false``: exactly those two numbers, to
    multiply by. (A lookup in a table of two, which runs several times faster than
    np.where on a mask of mixed signs, where the branches of np.where mispredict.)"""
    table = np.array([if_false, if_true], dtype=dtype)
    return table.take(np.asarray(mask).view(np.uint8))


class LeakyReluFunction(ag.Function):
    """x where x > 0, else s·x (s = ``negative_slope``), with derivative 1 or s; s at 0,
    as PyTorch. ``apply(x, negative_slope=0.01)``."""

    name = "LeakyRelu"
    rule = "d leaky_relu(x)/dx = 1 if x > 0 else negative_slope"
    symbol = "leaky relu"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("LeakyRelu", inputs, alpha=ctx.slope)

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        ctx.slope = float(negative_slope)  # a Python float: float32 stays float32
        pos = x > 0
        ctx.saved = (pos,)
        # x·1 or x·s, as PyTorch: -0 stays -0, and s = 0 gives NaN at -inf
        return x * _factor(pos, 1.0, ctx.slope, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (pos,) = ctx.saved
        # grad·1 or grad·s, a constant factor: on Tensors (create_graph) the second
        # derivative is 0. grad·s, not a masked 0, where s = 0: PyTorch gives 0·inf = NaN
        # there too
        return grad * _factor(pos, 1.0, ctx.slope, grad.dtype)


class EluFunction(ag.Function):
    """x for x > 0, else α·(exp(x) - 1) (α = ``alpha``); derivative 1, else α·exp(x)
    (α at 0, as PyTorch). ``apply(x, alpha=1.0)``.

    The second derivative is α·exp(x) below 0 and 0 from 0 up: at 0 itself PyTorch's
    double backward gives 0 (its mask is x < 0), so the backward on Tensors takes exp
    of x only where x < 0, and of a constant 0 at 0."""

    name = "Elu"
    rule = "d elu(x)/dx = 1 if x > 0 else alpha·exp(x)"
    symbol = "elu"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        return g.node("Elu", inputs, alpha=ctx.alpha)

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        ctx.alpha = float(alpha)
        pos = x > 0
        ctx.saved = (x, pos)
        # α·expm1(min(x, 0)) + max(x, 0): expm1 never overflows, and each side adds an
        # exact 0 to the other (where both are zeros, np.minimum and np.maximum return
        # their second argument: -0 stays -0, as in PyTorch; NaN stays NaN)
        out = np.expm1(np.minimum(0.0, x))
        if ctx.alpha != 1.0:
            out = out * ctx.alpha
        out += np.maximum(0.0, x)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, pos = ctx.saved
        e = np.exp(_below_zero(x))  # exp(x) below 0, 1 from 0 up
        if ctx.alpha != 1.0:
            grad = grad * _factor(pos, 1.0, ctx.alpha, grad.dtype)
        return grad * e  # PyTorch's order: grad·α·exp(x)


class SoftplusFunction(ag.Function):
    """log(1 + exp(z)) / β with z = β·x (β = ``beta``), and x itself where z >
    ``threshold``; derivative σ(z), and 1 above the threshold.
    ``apply(x, beta=1.0, threshold=20.0)``.

    Computed as (max(z, 0) + log1p(exp(-|z|))) / β: exp never overflows. PyTorch's
    second derivative is β·σ(z)(1 - σ(z)) where z < threshold and 0 elsewhere (at the
    threshold too), which the backward below reproduces on Tensors."""

    name = "Softplus"
    rule = "d softplus(x)/dx = σ(beta·x), 1 where beta·x > threshold"
    symbol = "softplus"

    @staticmethod
    def onnx(ctx, g, inputs, out):
        # ONNX's Softplus is log(1 + exp(x)), with neither beta nor threshold: for
        # beta ≠ 1 it runs on beta·x and the result is divided by beta. Above the
        # threshold the op returns x where Softplus gives x + log1p(exp(-beta·x)) / beta:
        # they differ by less than exp(-threshold) / beta, which at the default 20 is
        # below the file's rounding of x there (float32, or float64 from a threshold of
        # about 34). Only for a lower threshold does the file switch to x, with a Where
        x = inputs[0]
        z = x
        if ctx.beta != 1.0:
            z = g.node("Mul", [x, g.const(ctx.beta, out.dtype)])
        soft = g.node("Softplus", [z])
        if ctx.beta != 1.0:
            soft = g.node("Div", [soft, g.const(ctx.beta, out.dtype)])
        eps = np.finfo(g.dtype or out.dtype).eps
        if math.exp(-ctx.threshold) <= eps / 2 * abs(ctx.threshold):
            return soft
        above = g.node("Greater", [z, g.const(ctx.threshold, out.dtype)])
        return g.node("Where", [above, x, soft])

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        ctx.beta, ctx.threshold = float(beta), float(threshold)
        ctx.saved = (x,)
        z = x * ctx.beta if ctx.beta != 1.0 else x
        out = np.log1p(np.exp(-np.abs(z)))
        out += np.maximum(z, 0.0)
        if ctx.beta != 1.0:
            out /= ctx.beta
        above = z > ctx.threshold
        return np.where(above, x, out) if above.any() else out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        beta, threshold = ctx.beta, ctx.threshold
        z = x * beta if beta != 1.0 else x
        zd = _data(z)
        # σ(z) below the threshold, 1 above it; σ of a constant from the threshold up, as
        # PyTorch's second derivative is 0 there (its mask is z < threshold). NaN stays
        # NaN. (Both masks are mostly of one side: quick wheres.)
        s = _sigmoid(np.where(zd >= threshold, threshold, z))
        return np.where(zd > threshold, grad, grad * s)
