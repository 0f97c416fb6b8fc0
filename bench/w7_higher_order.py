"""W7: second derivatives of the case-study loss (W5's: MLP 10-5-5-1, sigmoid units,
BCE on N=1000 samples, float64), its 91 parameters as one vector.

- Hessian-vector product: ``ag.hvp`` (the gradient with ``create_graph=True``, then
  the derivative of gradient · v) against PyTorch's double backward
  (``torch.autograd.grad(..., create_graph=True)`` twice);
- the full 91 × 91 Hessian: ``ag.hessian`` (one backward pass through the gradient's
  graph per parameter) against ``torch.autograd.functional.hessian``.
"""

from __future__ import annotations

import numpy as np

import autograd as ag

from .common import Table, best_time
from .w5_gradcheck import SIZES, _problem, chainrule_loss, torch_loss


def _shapes():
    shapes = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes


def of_one_vector(loss, shapes):
    """W5's loss of the parameters, as a function of the 91 of them in one vector."""

    def flat_loss(flat):
        parts, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(flat[k:k + n].reshape(s))
            k += n
        return loss(*parts)

    return flat_loss


def run() -> list:
    try:
        import torch
    except ImportError:
        torch = None
    X, y, weights = _problem()
    shapes = _shapes()
    flat = np.concatenate([w.reshape(-1) for w in weights])
    assert flat.size == 91
    v = np.random.default_rng(1).standard_normal(flat.size)
    loss = of_one_vector(chainrule_loss(X, y), shapes)
    base = "PyTorch CPU" if torch is not None else "chainrule"
    t_hvp = Table("W7 Hessian-vector product of the case-study loss, 91 parameters",
                  baseline=base, unit="per product")
    t_hess = Table("W7 full Hessian (91 × 91) of the case-study loss", baseline=base,
                   unit="per Hessian")
    t_hvp.add("chainrule", best_time(lambda: ag.hvp(loss, flat, v), repeat=5))
    t_hess.add("chainrule", best_time(lambda: ag.hessian(loss)(flat), repeat=7,
                                      min_time=0.0))
    if torch is not None:
        # one thread: these products are small, and on a busy machine PyTorch's OpenMP
        # threads wait for each other at every op (measured: 100x slower with two)
        torch.set_num_threads(1)
        tloss = of_one_vector(torch_loss(torch, X, y), shapes)
        tv = torch.from_numpy(v)

        def torch_hvp():
            p = torch.tensor(flat, requires_grad=True)
            (g,) = torch.autograd.grad(tloss(p), p, create_graph=True)
            return torch.autograd.grad(g @ tv, p)[0]

        ours = ag.hvp(loss, flat, v)[1]
        agree = float(np.max(np.abs(ours - torch_hvp().numpy())))
        t_hvp.add("PyTorch CPU", best_time(torch_hvp, repeat=5))
        t_hvp.notes.append(f"the products agree to {agree:.1e}; PyTorch runs one thread")
        t_hvp.target("no slower than PyTorch's double backward",
                     t_hvp.ratio("chainrule", "PyTorch CPU") <= 1.0)
        t_hess.add("PyTorch CPU", best_time(
            lambda: torch.autograd.functional.hessian(tloss, torch.from_numpy(flat)),
            repeat=7, min_time=0.0))
        t_hess.target("no slower than torch.autograd.functional.hessian",
                      t_hess.ratio("chainrule", "PyTorch CPU") <= 1.0)
    return [t_hvp, t_hess]
