"""Layers: ``Linear``, ``MLP``, ``Dropout``, ``Flatten``, ``LayerNorm``, ``Embedding``
and the activation modules."""

from __future__ import annotations

import copy
import math

import numpy as np

import autograd as ag

from . import functional as F
from . import init
from .module import Module, Parameter, Sequential

__all__ = ["Linear", "MLP", "Dropout", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "Identity",
           "Softmax", "LogSoftmax", "GELU", "SiLU", "ELU", "Softplus", "Flatten",
           "LayerNorm", "Embedding", "Conv1d", "Conv2d",
           "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d"]


class Linear(Module):
    """``y = x @ weight.T + bias``: a fully connected layer, in PyTorch's layout.

    ``weight`` has shape (out_features, in_features), ``bias`` shape (out_features,).
    Both start like PyTorch's: U(-1/√in_features, 1/√in_features) (kaiming_uniform with
    a=√5 for the weight). ``dtype``: the parameters' float dtype (default: autograd's
    default, float64). ``rng``: a Generator or seed (default: ``nn.manual_seed``'s).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None,
                 rng=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: sizes must be positive, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = np.dtype(dtype or ag.get_default_dtype())
        rng = init.get_rng(rng)
        w = np.empty((self.out_features, self.in_features))
        init.kaiming_uniform_(w, a=math.sqrt(5), rng=rng)
        self.weight = Parameter(w, dtype=dtype)
        if bias:
            bound = 1.0 / math.sqrt(self.in_features)
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_features), dtype=dtype)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if not isinstance(x, ag.Tensor) or x.shape[-1:] != (self.in_features,):
            return F.linear(x, self.weight, self.bias)  # converts, or explains the shapes
        return F.LinearFunction.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return x.relu()


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope``·x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Identity(Module):
    def forward(self, x):
        return x


class Softmax(Module):
    """Softmax along ``dim`` (PyTorch's name; NumPy's ``axis=`` also accepted)."""

    def __init__(self, dim: int = -1, *, axis=None):
        super().__init__()
        self.axis = self.dim = dim if axis is None else axis

    def forward(self, x):
        return x.softmax(axis=self.axis)

    def extra_repr(self) -> str:
        return f"dim={self.axis}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return x.log_softmax(axis=self.axis)


class Dropout(Module):
    """Inverted dropout: in training mode, zero each input with probability ``p`` and
    scale the survivors by 1/(1-p); in eval mode (``model.eval()``), the identity."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)
        self.rng = rng if rng is None else init.get_rng(rng)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU,
                "identity": Identity, "linear": Identity}


def _activation(spec, what: str) -> Module:
    """A fresh activation module from a name, a Module (copied) or a Module class."""
    if isinstance(spec, str):
        try:
            return _ACTIVATIONS[spec.lower()]()
        except KeyError:
            raise ValueError(f"MLP: unknown {what} {spec!r}; expected one of "
                             f"{sorted(_ACTIVATIONS)} or an nn.Module") from None
    if isinstance(spec, Module):
        return copy.deepcopy(spec)
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec()
    raise TypeError(f"MLP: {what} must be a name like 'relu', an nn.Module or a Module "
                    f"class, got {spec!r}")


class MLP(Module):
    """A multilayer perceptron: Linear layers with an activation between them.

    ``MLP([10, 5, 5, 1], activation="sigmoid")`` is 10 inputs → 5 → 5 → 1 output:
    Linear(10,5), Sigmoid, Linear(5,5), Sigmoid, Linear(5,1), all in ``self.layers``
    (a Sequential, so weights are named ``layers.0.weight`` ...). The last layer is
    linear unless ``output_activation`` is given (e.g. "sigmoid" to output probabilities
    for ``BCELoss``). ``dropout`` > 0 adds a Dropout after every hidden activation.
    ``activation`` is "relu", "tanh", "sigmoid", "leaky_relu", a Module (copied for each
    layer) or a Module class.
    """

    def __init__(self, sizes, activation="relu", dropout: float = 0.0,
                 output_activation=None, bias: bool = True, dtype=None, rng=None):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got "
                             f"{sizes}")
        drop_rng = None if rng is None else init.get_rng(rng)  # None: the default at call time
        rng = drop_rng or init.get_rng(None)
        self.sizes = sizes
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias, dtype=dtype, rng=rng))
            if i < len(sizes) - 2:
                layers.append(_activation(activation, "activation"))
                if dropout > 0:
                    layers.append(Dropout(dropout, rng=drop_rng))
        if output_activation is not None:
            layers.append(_activation(output_activation, "output_activation"))
        self.layers = Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


# ---------------------------------------------------------------------- more layers


class GELU(Module):
    """x·Φ(x) (``approximate="none"``, with erf) or its tanh approximation."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·σ(x)."""

    def forward(self, x):
        return F.silu(x)


class ELU(Module):
    """x for x > 0, else alpha·(exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + exp(beta·x)) / beta; x where beta·x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one (default: all but the
    batch dimension): (N, C, H, W) → (N, C·H·W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        nd = max(x.ndim, 1)
        start, end = self.start_dim % nd, self.end_dim % nd
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} "
                             f"do not fit an input of shape {x.shape}")
        shape = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        merged = math.prod(shape[start:end + 1])
        return x.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class LayerNorm(Module):
    """Normalise over the last dimensions (``normalized_shape``): (x - mean)/√(var + eps),
    then ``· weight + bias`` (both of shape ``normalized_shape``, starting at 1 and 0)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        shape = ((int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer))
                 else tuple(int(n) for n in normalized_shape))
        self.normalized_shape, self.eps = shape, float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = np.dtype(dtype or ag.get_default_dtype())
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(shape), dtype=dtype)
            if bias:
                self.bias = Parameter(np.zeros(shape), dtype=dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Embedding(Module):
    """A lookup table: ``weight`` (num_embeddings, embedding_dim), starting N(0, 1) as
    PyTorch's; ``emb(idx)`` picks rows by integer indices. The ``padding_idx`` row
    starts at zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None,
                 dtype=None, rng=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx={padding_idx} must be within "
                                 f"num_embeddings={self.num_embeddings}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        dtype = np.dtype(dtype or ag.get_default_dtype())
        w = init.get_rng(rng).standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            w[padding_idx] = 0.0
        self.weight = Parameter(w, dtype=dtype)

    def forward(self, idx):
        return F.embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


# ----------------------------------------------------------------------- convolution


class _ConvNd(Module):
    """Shared by ``Conv1d`` and ``Conv2d``: PyTorch's parameters, names and start.

    ``weight`` has shape (out_channels, in_channels / groups, *kernel_size), ``bias``
    (out_channels,). Both start like PyTorch's: kaiming_uniform with a=√5 for the
    weight, which is U(-1/√fan_in, 1/√fan_in) with fan_in = in_channels / groups ×
    the kernel's size, and the bias from the same bound."""

    nsp = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True, dtype=None,
                 rng=None):
        super().__init__()
        name = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: channels must be positive, got in_channels="
                             f"{in_channels}, out_channels={out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels="
                             f"{in_channels} and out_channels={out_channels}")
        n = self.nsp
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = ag.ops._conv_tuple(name, "kernel_size", kernel_size, n, 1)
        self.stride = ag.ops._conv_tuple(name, "stride", stride, n, 1)
        if isinstance(padding, str):  # "same" or "valid", resolved at each call
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding={padding!r} is not one of 'same', "
                                 "'valid'; give one of them, or the zeros per side as ints")
            if padding == "same" and any(s != 1 for s in ag.ops._conv_tuple(
                    name, "stride", stride, n, 1)):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions; give the padding as ints")
            self.padding = padding
        else:
            self.padding = ag.ops._conv_tuple(name, "padding", padding, n, 0)
        self.dilation = ag.ops._conv_tuple(name, "dilation", dilation, n, 1)
        self.groups = int(groups)
        dtype = np.dtype(dtype or ag.get_default_dtype())
        rng = init.get_rng(rng)
        w = np.empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size)
        init.kaiming_uniform_(w, a=math.sqrt(5), rng=rng)
        self.weight = Parameter(w, dtype=dtype)
        if bias:
            bound = 1.0 / math.sqrt(w[0].size)
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_channels), dtype=dtype)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        fn = F.conv2d if self.nsp == 2 else F.conv1d
        return fn(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                  self.groups)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            text += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W) input, as ``torch.nn.Conv2d``:
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` an int or a pair."""

    nsp = 2


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L) input, as ``torch.nn.Conv1d``."""

    nsp = 1


# ------------------------------------------------------------------- pooling, batch norm


class MaxPool2d(Module):
    """Max pooling over the last two axes of (N, C, H, W): ``F.max_pool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        if stride is None:
            self.stride = kernel_size

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """Average pooling (zero padding counted) over the last two axes of (N, C, H, W):
    ``F.avg_pool2d``."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class _BatchNorm(Module):
    """Batch normalisation per channel (axis 1), PyTorch's layout: ``weight`` (ones) and
    ``bias`` (zeros) of shape (C,), buffers ``running_mean`` (zeros), ``running_var``
    (ones) and ``num_batches_tracked``. ``train()``: normalise with the batch's mean and
    biased variance, and move the running ones towards the batch's mean and unbiased
    variance by ``momentum`` (None: a cumulative average); ``eval()``: normalise with
    the running statistics."""

    _dims = ()  # the input dimensions the layer takes

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = np.dtype(dtype or ag.get_default_dtype())
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c), dtype=dtype)
            self.bias = Parameter(np.zeros(c), dtype=dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dtype))
            self.register_buffer("running_var", np.ones(c, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        name = type(self).__name__
        if x.ndim not in self._dims:
            want = " or ".join(f"{d}-D" for d in self._dims)
            raise ag.ShapeError(f"{name}: expected {want} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ag.ShapeError(f"{name}({self.num_features}): input of shape {x.shape} "
                                f"has {x.shape[1]} channels (dim 1); expected "
                                f"{self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked = self.num_batches_tracked.numpy() + 1
            if self.momentum is None:  # a cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L), per channel C."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W), per channel C."""

    _dims = (4,)
