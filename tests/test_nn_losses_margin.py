"""L1, smooth L1, Huber, hinge-embedding and multi-margin losses against PyTorch.

Values and input gradients in float64 to 1e-10, with points placed on the kinks (a
difference of exactly 0 or ±beta, a margin term of exactly 0), every reduction, the
modules, float32, and the errors PyTorch raises (we also raise where it broadcasts).
"""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]


def compare(ours, theirs, x, target, tol=1e-10):
    xa = ag.Tensor(x, requires_grad=True)
    out = ours(xa, target)
    xt = torch.tensor(x, requires_grad=True)
    ref = theirs(xt, torch.as_tensor(target))
    g = np.linspace(0.5, 1.5, out.size).reshape(out.shape)
    out.backward(g)
    ref.backward(torch.as_tensor(g, dtype=ref.dtype))
    assert out.dtype == x.dtype and out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=tol, atol=tol)


def _regression_pair():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)) * 2
    t = rng.normal(size=(4, 5))
    t[0, :3] = x[0, :3]  # difference exactly 0
    t[1, 0], t[1, 1] = x[1, 0] - 1.0, x[1, 1] + 1.0  # exactly ±1 (beta, delta = 1)
    t[2, 0], t[2, 1] = x[2, 0] - 0.5, x[2, 1] + 0.5  # exactly ±0.5
    return x, t


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_loss(reduction):
    x, t = _regression_pair()
    compare(lambda a, b: F.l1_loss(a, b, reduction=reduction),
            lambda a, b: TF.l1_loss(a, b, reduction=reduction), x, t)
    compare(lambda a, b: nn.L1Loss(reduction=reduction)(a, b),
            torch.nn.L1Loss(reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0, 3.0])
def test_smooth_l1_loss(reduction, beta):
    x, t = _regression_pair()
    compare(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
            lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta), x, t)
    compare(lambda a, b: nn.SmoothL1Loss(reduction=reduction, beta=beta)(a, b),
            torch.nn.SmoothL1Loss(reduction=reduction, beta=beta), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.5, 2.5])
def test_huber_loss(reduction, delta):
    x, t = _regression_pair()
    compare(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta),
            lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=delta), x, t)
    compare(lambda a, b: nn.HuberLoss(reduction=reduction, delta=delta)(a, b),
            torch.nn.HuberLoss(reduction=reduction, delta=delta), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_embedding_loss(reduction, margin):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6))
    x[0, 0] = margin  # margin - x exactly 0: the kink
    t = np.where(rng.random((3, 6)) > 0.5, 1.0, -1.0)
    t[0, 0] = -1.0
    t[2, :2] = 0.0  # neither 1 nor -1: both terms count, as in PyTorch
    compare(lambda a, b: F.hinge_embedding_loss(a, b, margin=margin, reduction=reduction),
            lambda a, b: TF.hinge_embedding_loss(a, b, margin=margin, reduction=reduction),
            x, t)
    compare(lambda a, b: nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(a, b),
            torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss(reduction, p, weighted):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    x[0, (y[0] + 1) % 4] = x[0, y[0]] - 1.0  # a term exactly at the margin
    w = rng.random(4) + 0.5 if weighted else None
    wt = None if w is None else torch.tensor(w)
    compare(lambda a, b: F.multi_margin_loss(a, y, p=p, weight=w, reduction=reduction),
            lambda a, b: TF.multi_margin_loss(a, torch.tensor(y), p=p, weight=wt,
                                              reduction=reduction), x, y)
    compare(lambda a, b: nn.MultiMarginLoss(p=p, margin=0.7, weight=w,
                                            reduction=reduction)(a, y),
            lambda a, b: torch.nn.MultiMarginLoss(p=p, margin=0.7, weight=wt,
                                                  reduction=reduction)(a, torch.tensor(y)),
            x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multi_margin_loss_one_sample(reduction):
    x = np.array([0.2, -1.0, 0.9])
    compare(lambda a, b: F.multi_margin_loss(a, 2, reduction=reduction),
            lambda a, b: TF.multi_margin_loss(a, torch.tensor(2), reduction=reduction), x, 2)


def test_float32_stays_float32():
    x32 = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    t32 = np.zeros((3, 4), np.float32)
    for loss in (F.l1_loss(ag.Tensor(x32), t32), F.smooth_l1_loss(ag.Tensor(x32), t32),
                 F.huber_loss(ag.Tensor(x32), t32),
                 F.hinge_embedding_loss(ag.Tensor(x32), np.ones((3, 4))),
                 F.multi_margin_loss(ag.Tensor(x32), np.array([0, 1, 3]))):
        assert loss.dtype == np.float32


@pytest.mark.parametrize("loss", [F.l1_loss, F.smooth_l1_loss, F.huber_loss,
                                  F.hinge_embedding_loss])
def test_mismatched_shapes_raise_naming_both(loss):
    # PyTorch warns and broadcasts (4,) against (4, 1) into (4, 4); we refuse
    with pytest.raises(ag.ShapeError, match=r"\(4,\).*\(4, 1\)"):
        loss(ag.Tensor(np.ones((4, 1))), np.ones(4))


def test_errors_as_pytorch_raises_them():
    x = ag.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, np.ones((2, 3)), beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        F.huber_loss(x, np.ones((2, 3)), delta=0.0)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        F.multi_margin_loss(x, np.array([0, 1]), p=3)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(IndexError, match="class index"):
        F.multi_margin_loss(x, np.array([0, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.multi_margin_loss(x, np.array([0.0, 1.0]))
    with pytest.raises(ag.ShapeError, match=r"weight must have shape \(3,\)"):
        F.multi_margin_loss(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(x, np.ones((2, 3)), reduction="avg")
