"""Double backward of every op of the table (``tests/opinfo.py``): second derivatives
against PyTorch float64 and against finite differences of the first.

For each form of each row, on the inputs the row's family and domains draw (the same
shapes and broadcasting pairs as the first-order tests):

- **PyTorch float64**: the first derivative ``g = vᵀ ∂out/∂x`` for a random upstream
  gradient ``v`` (itself a leaf), computed with ``create_graph=True``, then the
  derivative of ``Σ g · w`` for random ``w``: a Hessian-vector product of ``vᵀ out``
  with respect to each input, and the derivative with respect to ``v``; all to 1e-10
  (a row's ``tol["double_backward"]`` loosens that where PyTorch's own formula is the
  approximate one, and a test here checks ours against the closed form instead);
- **gradgradcheck**: the same second derivatives against central differences of the
  first.

Every row is here: no op of the table lacks a double backward. (What a custom
``Function`` without one does under ``create_graph=True`` is tested in
``test_higher_order.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opinfo import ROWS, HypothesisPicker, RandomPicker, forms, make_case, torch_params
from values import seeds

import autograd as ag

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=10, deadline=None)
TOL = dict(rtol=1e-10, atol=1e-10)

FORMS = [pytest.param(name, i, id=label) for name, i, label in forms()]


def double_backward(case, seed):
    """Our second derivatives and PyTorch's, for one case."""
    rng = np.random.default_rng(seed)
    form = case.form
    ours = [ag.Tensor(a, requires_grad=rg) for a, rg in zip(case.arrays, case.requires_grad)]
    theirs = [torch.tensor(a, requires_grad=rg)
              for a, rg in zip(case.arrays, case.requires_grad)]
    out = form.call("ours", **case.bind(ours))
    ref = form.call("theirs", **torch_params(case.bind(theirs)))
    v_np = rng.standard_normal(out.shape)
    v = ag.Tensor(v_np, requires_grad=True)
    tv = torch.tensor(v_np, requires_grad=True)
    live = [i for i, rg in enumerate(case.requires_grad) if rg]
    g = ag.engine.graph_backward(out, v, inputs=[ours[i] for i in live])
    tg = torch.autograd.grad(ref, [theirs[i] for i in live], tv, create_graph=True,
                             allow_unused=True)
    ws = [rng.standard_normal(case.arrays[i].shape) for i in live]
    total = sum(((gi * w).sum() for gi, w in zip(g, ws) if gi is not None),
                start=ag.Tensor(0.0))
    ttotal = sum(((gi * torch.from_numpy(w)).sum() for gi, w in zip(tg, ws)
                  if gi is not None), start=torch.tensor(0.0, dtype=torch.float64))
    wrt = [ours[i] for i in live] + [v]
    twrt = [theirs[i] for i in live] + [tv]
    second = (ag.engine.graph_backward(total, inputs=wrt, create_graph=False)
              if total.requires_grad else [None] * len(wrt))
    tsecond = (torch.autograd.grad(ttotal, twrt, allow_unused=True)
               if ttotal.requires_grad else [None] * len(twrt))
    return g, tg, second, tsecond, wrt


def check_against_torch(case, seed):
    g, tg, second, tsecond, wrt = double_backward(case, seed)
    tol = {**TOL, **case.row.tol.get("double_backward", {})}
    for i, (a, b) in enumerate(zip(g, tg)):
        a = np.zeros(wrt[i].shape) if a is None else a.numpy()
        b = np.zeros(wrt[i].shape) if b is None else b.detach().numpy(force=True)
        np.testing.assert_allclose(a, b, **TOL, err_msg=f"first derivative {i}")
    for i, (a, b) in enumerate(zip(second, tsecond)):
        a = np.zeros(wrt[i].shape) if a is None else a.numpy()
        b = np.zeros(wrt[i].shape) if b is None else b.numpy(force=True)
        what = "the upstream gradient" if i == len(wrt) - 1 else f"input {i}"
        np.testing.assert_allclose(a, b, **tol, err_msg=f"second derivative wrt {what}")


@pytest.mark.parametrize("name,index", FORMS)
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_double_backward_against_torch(name, index, data, seed):
    check_against_torch(make_case(HypothesisPicker(data), ROWS[name], index), seed)


@pytest.mark.parametrize("name,index", FORMS)
def test_gradgradcheck(name, index):
    for k in range(2):
        case = make_case(RandomPicker(np.random.default_rng(100 + k)), ROWS[name], index)
        inputs = [ag.Tensor(a, requires_grad=rg)
                  for a, rg in zip(case.arrays, case.requires_grad)]

        def fn(*tensors, case=case):
            return case.form.call("ours", **case.bind(tensors))

        tol = case.row.tol.get("gradcheck", {})
        assert ag.gradgradcheck(fn, inputs, seed=k, **tol)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_second_derivatives_are_the_closed_form(reduction):
    """PyTorch adds 1e-12 to p and to 1 - p in the denominators of its BCE double
    backward, so it is off by about 1e-12 / p relatively, more where the two terms of
    the result cancel: the table's row compares with it to 1e-8. Ours is exact: here
    against the closed forms d²L/dp² = (p² - 2py + y) / (p(1-p))² and
    d²L/dp dy = -1 / (p(1-p)), times the upstream gradient."""
    import nn.functional as F

    rng = np.random.default_rng(0)
    p, y = rng.uniform(0.01, 0.99, (4, 5)), rng.uniform(0, 1, (4, 5))
    pt, yt = ag.Tensor(p, requires_grad=True), ag.Tensor(y, requires_grad=True)
    out = F.binary_cross_entropy(pt, yt, reduction=reduction)
    v = rng.standard_normal(out.shape)
    wp, wy = rng.standard_normal(p.shape), rng.standard_normal(p.shape)
    gp, gy = ag.engine.graph_backward(out, ag.Tensor(v), inputs=[pt, yt])
    total = (gp * wp).sum() + (gy * wy).sum()
    dp, dy = ag.engine.graph_backward(total, inputs=[pt, yt], create_graph=False)

    scale = v / p.size if reduction == "mean" else v  # dL/dloss per element
    q = p * (1 - p)
    d_pp, d_py = (p * p - 2 * p * y + y) / (q * q), -1 / q
    np.testing.assert_allclose(dp.numpy(), scale * (wp * d_pp + wy * d_py), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(dy.numpy(), scale * wp * d_py, rtol=1e-12, atol=1e-13)
