"""W5: gradient checking. The case-study loss (MLP 10-5-5-1, sigmoid units, BCE on
N=1000 samples with D=10 features, float64) checked over all 91 parameters, element by
element and in fast mode (random directional derivatives), against
``torch.autograd.gradcheck`` on the same weights and data.

The network is written with autograd's primitives here, so this measures the engine
and ``gradcheck`` alone.
"""

from __future__ import annotations

import numpy as np

import autograd as ag

from .common import Table, best_time

SIZES = (10, 5, 5, 1)
N = 1000


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, SIZES[0]))
    y = (X[:, :3].sum(axis=1) + np.sin(X[:, 3]) > 0).astype(np.float64)[:, None]
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        weights.append(rng.uniform(-bound, bound, (fan_out,)))
    return X, y, weights


def chainrule_loss(X, y):
    def loss(*params):
        h = X
        for i in range(0, len(params), 2):
            h = (h @ params[i] + params[i + 1]).sigmoid()
        p = h.clip(1e-12, 1 - 1e-12)
        return -(y * p.log() + (1 - y) * (1 - p).log()).mean()

    return loss


def torch_loss(torch, X, y):
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def loss(*params):
        h = Xt
        for i in range(0, len(params), 2):
            h = torch.sigmoid(h @ params[i] + params[i + 1])
        return torch.nn.functional.binary_cross_entropy(h, yt)

    return loss


def run() -> list:
    try:
        import torch
    except ImportError:
        torch = None
    X, y, weights = _problem()
    params = [ag.Tensor(w, requires_grad=True) for w in weights]
    assert sum(p.size for p in params) == 91
    loss = chainrule_loss(X, y)
    tables = []
    for fast in (False, True):
        t = Table(f"W5 gradcheck of the case-study loss, 91 parameters"
                  f"{', fast mode' if fast else ''}",
                  baseline="PyTorch CPU" if torch is not None else "chainrule",
                  unit="per check")
        t.add("chainrule", best_time(
            lambda: ag.gradcheck(loss, params, fast_mode=fast), repeat=3, min_time=0.0))
        if torch is not None:
            tparams = [torch.tensor(w, requires_grad=True) for w in weights]
            tloss = torch_loss(torch, X, y)
            t.add("PyTorch CPU", best_time(
                lambda: torch.autograd.gradcheck(tloss, tparams, fast_mode=fast),
                repeat=3, min_time=0.0))
            t.target("no slower than torch.autograd.gradcheck"
                     + (" (fast mode)" if fast else ""),
                     t.ratio("chainrule", "PyTorch CPU") <= 1.0)
        tables.append(t)
    return tables
