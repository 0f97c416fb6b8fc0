"""Weight initialisation, and the random generator every part of ``nn`` draws from.

All randomness in ``nn`` (initial weights, dropout masks, shuffling, data splits) comes
from a ``numpy.random.Generator``. Functions that draw take an ``rng=`` argument; when
it is left out they use the package-wide generator, which ``nn.manual_seed(s)`` resets::

    nn.manual_seed(0)
    model = nn.MLP([10, 5, 5, 1])      # the same weights on every run

``rng=`` may be a ``Generator`` or an int seed (a fresh generator from that seed).

The initialisers fill a Parameter's values in place and return it, like PyTorch's
``torch.nn.init`` functions; the *fan-in* of a weight of shape ``(out, in)`` is ``in``
and its *fan-out* is ``out`` (PyTorch's ``Linear`` layout).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "manual_seed", "default_rng", "get_rng", "calculate_gain",
    "uniform_", "normal_", "zeros_", "ones_", "constant_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the package-wide generator to ``seed`` (and return it)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng() -> np.random.Generator:
    """The package-wide generator (the one ``manual_seed`` resets)."""
    return _rng


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` if it is a Generator, a new one if it is an int seed, else the default."""
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, "
                    f"got {type(rng).__name__}")


# ------------------------------------------------------------------------- helpers


def _array(tensor) -> np.ndarray:
    """The ndarray behind a Tensor/Parameter (or the array itself), filled in place."""
    data = tensor if isinstance(tensor, np.ndarray) else getattr(tensor, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"init: expected a Tensor or ndarray, got {type(tensor).__name__}")
    return data


def _fans(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            f"init: fan-in and fan-out need a weight with at least 2 dimensions, got "
            f"shape {tuple(shape)}; initialise 1-D biases with uniform_/zeros_ instead")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale for a nonlinearity (PyTorch's table).

    linear/sigmoid: 1, tanh: 5/3, relu: √2, leaky_relu: √(2 / (1 + slope²)).
    """
    name = nonlinearity.lower()
    if name in ("linear", "identity", "sigmoid"):
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one "
                     "of linear, sigmoid, tanh, relu, leaky_relu")


def _fill(tensor, values):
    data = _array(tensor)
    data[...] = values
    return tensor


# ------------------------------------------------------------------------- initialisers


def uniform_(tensor, a: float = 0.0, b: float = 1.0, rng=None):
    """Fill with draws from U(a, b)."""
    data = _array(tensor)
    return _fill(tensor, get_rng(rng).uniform(a, b, size=data.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, rng=None):
    """Fill with draws from N(mean, std²)."""
    data = _array(tensor)
    return _fill(tensor, get_rng(rng).normal(mean, std, size=data.shape))


def zeros_(tensor):
    """Fill with 0."""
    return _fill(tensor, 0)


def ones_(tensor):
    """Fill with 1."""
    return _fill(tensor, 1)


def constant_(tensor, value: float):
    """Fill with ``value``."""
    return _fill(tensor, value)


def xavier_uniform_(tensor, gain: float = 1.0, rng=None):
    """Glorot: U(-a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_array(tensor).shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(tensor, gain: float = 1.0, rng=None):
    """Glorot: N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_array(tensor).shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = _fans(_array(tensor).shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", rng=None):
    """He: U(-b, b) with b = gain·√(3 / fan). ``a`` is the leaky-ReLU slope in the gain.

    ``nn.Linear`` uses ``a=√5``, which gives PyTorch's bound 1/√fan_in.
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", rng=None):
    """He: N(0, std²) with std = gain / √fan."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), rng=rng)
