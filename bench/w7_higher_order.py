"""W7: second derivatives of the case-study loss (MLP 10-5-5-1, sigmoid units, BCE on
N=1000 samples, float64), its 91 parameters as one vector.

- Hessian-vector product of W1's loss (each library's linear layer, sigmoid and
  binary cross-entropy: ``F.linear``, ``F.binary_cross_entropy``): ``ag.hvp`` (the
  gradient with ``create_graph=True``, then the derivative of gradient · v) against
  PyTorch's double backward (``torch.autograd.grad(..., create_graph=True)`` twice);
- the same product of W5's loss, written with elementary ops in both libraries
  (``@``, ``+``, sigmoid, clip, log, mean): each op's own backward recorded, no fused
  layer or loss;
- the full 91 × 91 Hessian of W1's loss: ``ag.hessian`` (one backward pass through the
  gradient's graph per parameter) against ``torch.autograd.functional.hessian``.
"""

from __future__ import annotations

import numpy as np

import autograd as ag

from .common import Table, best_time
from .w1_case_study import SIZES, problem
from .w5_gradcheck import _problem, chainrule_loss


def of_one_vector(loss, shapes):
    """A loss of the parameters, as a function of the 91 of them in one vector."""

    def flat_loss(flat):
        parts, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(flat[k:k + n].reshape(s))
            k += n
        return loss(*parts)

    return flat_loss


def layer_shapes(weight_first: bool) -> list:
    """(W, b) shapes per layer: W as (in, out) for ``x @ W``, or (out, in) as a linear
    layer holds it."""
    shapes = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        shapes += [(fan_out, fan_in) if weight_first else (fan_in, fan_out), (fan_out,)]
    return shapes


def w1_loss(F, sigmoid, X, y):
    """W1's loss of its parameters, for a library's ``F`` (functional) and sigmoid."""

    def loss(*params):
        h = X
        for i in range(0, len(params), 2):
            h = sigmoid(F.linear(h, params[i], params[i + 1]))
        return F.binary_cross_entropy(h, y)

    return loss


def torch_elementary_loss(torch, X, y):
    """W5's chainrule loss, op for op, in PyTorch."""

    def loss(*params):
        h = X
        for i in range(0, len(params), 2):
            h = torch.sigmoid(h @ params[i] + params[i + 1])
        p = h.clamp(1e-12, 1 - 1e-12)
        return -(y * p.log() + (1 - y) * (1 - p).log()).mean()

    return loss


def hvp_table(title, ours, theirs, flat, v, torch, target):
    base = "PyTorch CPU" if torch is not None else "chainrule"
    table = Table(title, baseline=base, unit="per product")
    table.add("chainrule", best_time(lambda: ag.hvp(ours, flat, v), repeat=5))
    if torch is None:
        return table
    tv = torch.from_numpy(v)

    def torch_hvp():
        p = torch.tensor(flat, requires_grad=True)
        (g,) = torch.autograd.grad(theirs(p), p, create_graph=True)
        return torch.autograd.grad(g @ tv, p)[0]

    agree = float(np.max(np.abs(ag.hvp(ours, flat, v)[1] - torch_hvp().numpy())))
    table.add("PyTorch CPU", best_time(torch_hvp, repeat=5))
    table.notes.append(f"the products agree to {agree:.1e}; PyTorch runs one thread")
    if target:
        table.target("no slower than PyTorch's double backward",
                     table.ratio("chainrule", "PyTorch CPU") <= 1.0)
    return table


def run() -> list:
    try:
        import torch
    except ImportError:
        return tables(None)
    # one thread: these products are small, and on a busy machine PyTorch's OpenMP
    # threads wait for each other at every op (measured: 100x slower with two)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tables(torch)
    finally:
        torch.set_num_threads(threads)


def tables(torch) -> list:
    import nn.functional as F

    X, y, weights = problem()
    flat = np.concatenate([a.reshape(-1) for layer in weights for a in layer])
    assert flat.size == 91
    v = np.random.default_rng(1).standard_normal(flat.size)
    shapes = layer_shapes(weight_first=True)
    loss = of_one_vector(w1_loss(F, ag.Tensor.sigmoid, ag.Tensor(X), y), shapes)
    tloss = None
    if torch is not None:
        tloss = of_one_vector(w1_loss(torch.nn.functional, torch.sigmoid,
                                      torch.from_numpy(X), torch.from_numpy(y)), shapes)
    out = [hvp_table("W7 Hessian-vector product of W1's case-study loss, 91 parameters",
                     loss, tloss, flat, v, torch, target=True)]

    X5, y5, weights5 = _problem()
    flat5 = np.concatenate([w.reshape(-1) for w in weights5])
    shapes5 = layer_shapes(weight_first=False)
    loss5 = of_one_vector(chainrule_loss(X5, y5), shapes5)
    tloss5 = None
    if torch is not None:
        tloss5 = of_one_vector(torch_elementary_loss(torch, torch.from_numpy(X5),
                                                     torch.from_numpy(y5)), shapes5)
    elementary = hvp_table("W7 the same product, the loss written with elementary ops "
                           "(W5's) in both libraries", loss5, tloss5, flat5, v, torch,
                           target=False)
    elementary.notes.append("no target: the one above is the case study as each library "
                            "writes it")
    out.append(elementary)

    base = "PyTorch CPU" if torch is not None else "chainrule"
    t_hess = Table("W7 full Hessian (91 × 91) of W1's case-study loss", baseline=base,
                   unit="per Hessian")
    t_hess.add("chainrule", best_time(lambda: ag.hessian(loss)(flat), repeat=7,
                                      min_time=0.0))
    if torch is not None:
        t_hess.add("PyTorch CPU", best_time(
            lambda: torch.autograd.functional.hessian(tloss, torch.from_numpy(flat)),
            repeat=7, min_time=0.0))
        t_hess.target("no slower than torch.autograd.functional.hessian",
                      t_hess.ratio("chainrule", "PyTorch CPU") <= 1.0)
    out.append(t_hess)
    return out
