"""Gradient clipping, PyTorch's ``torch.nn.utils``: call between ``loss.backward()``
and ``opt.step()``::

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
"""

from __future__ import annotations

import math

import numpy as np

import autograd as ag

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters) -> list:
    if isinstance(parameters, ag.Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> ag.Tensor:
    """Scale every gradient by ``max_norm / (total_norm + 1e-6)`` when that is below 1.

    ``total_norm`` is the ``norm_type``-norm of all the gradients taken together (as if
    concatenated into one vector; ``inf``: the largest absolute value). Returns it (a
    0-d Tensor), before clipping, as PyTorch does.
    """
    params = _with_grads(parameters)
    norm_type = float(norm_type)
    if not params:
        return ag.Tensor(0.0)
    grads = [np.asarray(p.grad) for p in params]
    if norm_type == math.inf:
        norms = [np.max(np.abs(g), initial=0.0) for g in grads]
        total = float(np.max(norms))
    else:
        norms = [np.sum(np.abs(g) ** norm_type) ** (1.0 / norm_type) for g in grads]
        total = float(np.sum(np.asarray(norms) ** norm_type) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           "gradients is non-finite, so it cannot be clipped; pass "
                           "error_if_nonfinite=False to clip anyway")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    for p, g in zip(params, grads):
        p.grad = g * np.asarray(coef, dtype=g.dtype)
    return ag.Tensor(np.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    v = float(clip_value)
    for p in _with_grads(parameters):
        g = np.asarray(p.grad)
        p.grad = np.clip(g, -v, v).astype(g.dtype, copy=False)
