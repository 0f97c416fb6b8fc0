"""micrograd's two engine tests (sanity_check, more_ops) on 0-d Tensors.

Each expression is written once and run on chainrule 0-d tensors and on PyTorch float64
scalars; torch computes the expected values and gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag

torch = pytest.importorskip("torch")


def sanity_check(x):
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return y


def more_ops(a, b):
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def _ours(*values):
    return [ag.Tensor(v, requires_grad=True) for v in values]


def _theirs(*values):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]


@pytest.mark.parametrize("x0", [-4.0, 0.5, 3.0])
def test_sanity_check(x0):
    (x,) = _ours(x0)
    (xt,) = _theirs(x0)
    y, yt = sanity_check(x), sanity_check(xt)
    assert y.shape == () and y.dtype == np.float64
    y.backward()
    yt.backward()
    assert y.item() == pytest.approx(yt.item(), rel=1e-12)
    assert x.grad.shape == ()
    assert float(x.grad) == pytest.approx(xt.grad.item(), rel=1e-12)


@pytest.mark.parametrize("a0,b0", [(-4.0, 2.0), (1.5, -0.5), (0.7, 0.3)])
def test_more_ops(a0, b0):
    a, b = _ours(a0, b0)
    at, bt = _theirs(a0, b0)
    g, gt = more_ops(a, b), more_ops(at, bt)
    assert g.shape == ()
    g.backward()
    gt.backward()
    assert g.item() == pytest.approx(gt.item(), rel=1e-12)
    assert float(a.grad) == pytest.approx(at.grad.item(), rel=1e-12)
    assert float(b.grad) == pytest.approx(bt.grad.item(), rel=1e-12)


def test_more_ops_gradcheck():
    a, b = _ours(-4.0, 2.0)
    assert ag.gradcheck(more_ops, [a, b], rtol=1e-6)
