"""Losses and activations: values and gradients against PyTorch, stability, errors."""

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]


def ours_and_torch(fn_ours, fn_torch, x, *consts, grad_out=None):
    """Value and input gradient of both implementations on float64 ``x``."""
    xa = ag.Tensor(x, requires_grad=True)
    out = fn_ours(xa, *consts)
    xt = torch.tensor(x, requires_grad=True)
    ref = fn_torch(xt, *[torch.as_tensor(c) for c in consts])
    g = np.ones(out.shape) if grad_out is None else grad_out
    out.backward(g)
    ref.backward(torch.as_tensor(g))
    return out.data, xa.grad, ref.detach().numpy(), xt.grad.numpy()


def check(fn_ours, fn_torch, x, *consts, rtol=1e-10, atol=1e-12):
    v, g, rv, rg = ours_and_torch(fn_ours, fn_torch, x, *consts)
    np.testing.assert_allclose(v, rv, rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, rg, rtol=rtol, atol=atol)


rng = np.random.default_rng(0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    check(lambda a, t: F.mse_loss(a, t, reduction=reduction),
          lambda a, t: TF.mse_loss(a, t, reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    p = rng.uniform(0.02, 0.98, (8, 1))
    y = rng.uniform(0, 1, (8, 1))  # soft targets too
    check(lambda a, t: F.binary_cross_entropy(a, t, reduction=reduction),
          lambda a, t: TF.binary_cross_entropy(a, t, reduction=reduction), p, y, rtol=1e-9)


def test_binary_cross_entropy_clamps_log_like_pytorch():
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    ours = F.binary_cross_entropy(ag.Tensor(p), y, reduction="none").data
    ref = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(ours, ref)  # 100 where the log is clamped, 0 where exact
    pt = ag.Tensor(p, requires_grad=True)
    F.binary_cross_entropy(pt, y).backward()
    assert np.all(np.isfinite(pt.grad))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    z = rng.standard_normal((7, 2)) * 3
    y = (rng.uniform(size=(7, 2)) > 0.5).astype(float)
    check(lambda a, t: F.binary_cross_entropy_with_logits(a, t, reduction=reduction),
          lambda a, t: TF.binary_cross_entropy_with_logits(a, t, reduction=reduction), z, y)


def test_bce_with_logits_extreme_logits():
    z = np.array([-800.0, -100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0, 800.0] * 2)
    y = np.array([0.0] * 9 + [1.0] * 9)
    v, g, rv, rg = ours_and_torch(
        lambda a, t: F.binary_cross_entropy_with_logits(a, t, reduction="none"),
        lambda a, t: TF.binary_cross_entropy_with_logits(a, t, reduction="none"), z, y)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, rv, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-15)
    exact = np.where(y == 1, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))  # -log σ(±z)
    np.testing.assert_allclose(v, exact, rtol=1e-12, atol=2e-16)
    # the loss of a confidently wrong logit is the logit itself
    assert v[0 + 9] == pytest.approx(800.0) and v[8] == pytest.approx(800.0)
    # at exactly z = 0 the gradient is sigmoid(0) - y = ±0.5
    assert g[4] == pytest.approx(0.5) and g[13] == pytest.approx(-0.5)


def test_bce_with_logits_weights():
    z = rng.standard_normal((5, 3))
    y = (rng.uniform(size=(5, 3)) > 0.5).astype(float)
    w = rng.uniform(0.5, 2, (3,))
    pw = rng.uniform(0.5, 3, (3,))
    check(lambda a, t: F.binary_cross_entropy_with_logits(a, t, weight=w, pos_weight=pw),
          lambda a, t: TF.binary_cross_entropy_with_logits(
              a, t, weight=torch.tensor(w), pos_weight=torch.tensor(pw)), z, y)
    z2 = np.array([[-800.0, 800.0, 0.0]])
    v, g, rv, rg = ours_and_torch(
        lambda a, t: F.binary_cross_entropy_with_logits(a, t, pos_weight=pw, reduction="none"),
        lambda a, t: TF.binary_cross_entropy_with_logits(a, t, pos_weight=torch.tensor(pw),
                                                         reduction="none"),
        z2, np.array([[1.0, 0.0, 1.0]]))
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    np.testing.assert_allclose(g, rg, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_indices(reduction):
    z = rng.standard_normal((6, 4)) * 2
    t = np.array([0, 3, 1, 1, 2, 3])
    check(lambda a, c: F.cross_entropy(a, c, reduction=reduction),
          lambda a, c: TF.cross_entropy(a, c, reduction=reduction), z, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets(reduction):
    z = rng.standard_normal((5, 3))
    p = rng.dirichlet(np.ones(3), size=5)
    check(lambda a, c: F.cross_entropy(a, c, reduction=reduction),
          lambda a, c: TF.cross_entropy(a, c, reduction=reduction), z, p)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    logp = np.log(rng.dirichlet(np.ones(4), size=6))
    t = np.array([3, 0, 1, 1, 2, 0])
    check(lambda a, c: F.nll_loss(a, c, reduction=reduction),
          lambda a, c: TF.nll_loss(a, c, reduction=reduction), logp, t)
    z = ag.Tensor(rng.standard_normal((6, 4)))
    assert nn.NLLLoss(reduction=reduction)(F.log_softmax(z), t).data == pytest.approx(
        nn.CrossEntropyLoss(reduction=reduction)(z, t).data)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_and_nll_are_one_op_each_with_a_reduction_argument(reduction):
    # one class per loss whatever the reduction: the graph node is that class itself,
    # and apply takes the reduction as a keyword, as the functions do
    p = ag.Tensor(rng.uniform(0.1, 0.9, (4, 3)), requires_grad=True)
    y = (rng.uniform(size=(4, 3)) > 0.5).astype(float)
    bce = F.binary_cross_entropy(p, y, reduction=reduction)
    assert type(bce.grad_fn) is F.BinaryCrossEntropyFunction
    direct = F.BinaryCrossEntropyFunction.apply(p, y, reduction=reduction)
    np.testing.assert_array_equal(direct.data, bce.data)

    z = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = np.array([2, 0, 1, 1])
    for loss in (F.nll_loss(z.log_softmax(), t, reduction=reduction),
                 F.cross_entropy(z, t, reduction=reduction)):
        assert type(loss.grad_fn) is F.NLLLossFunction
    direct = F.NLLLossFunction.apply(z, t, reduction=reduction)
    np.testing.assert_array_equal(direct.data, F.nll_loss(z, t, reduction=reduction).data)
    # the gradient is -1 at each row's target class (divided by N for the mean)
    direct.backward(np.ones(direct.shape))
    expected = np.zeros((4, 3))
    expected[np.arange(4), t] = -1.0 / (4 if reduction == "mean" else 1)
    np.testing.assert_allclose(z.grad, expected)


def test_bce_and_nll_ops_refuse_an_unknown_reduction():
    p = ag.Tensor(np.full((2, 1), 0.5), requires_grad=True)
    with pytest.raises(ValueError, match="BinaryCrossEntropy.*reduction.*'avg'"):
        F.BinaryCrossEntropyFunction.apply(p, np.ones((2, 1)), reduction="avg")
    with pytest.raises(ValueError, match="NLLLoss.*reduction.*'avg'"):
        F.NLLLossFunction.apply(p, np.array([0, 0]), reduction="avg")


def test_cross_entropy_float32_stays_float32():
    z = ag.Tensor(rng.standard_normal((5, 3)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(z, np.array([0, 1, 2, 1, 0]))
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32


def test_cross_entropy_extreme_logits_and_single_sample():
    z = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 100.0]])
    t = np.array([1, 1])
    v, g, rv, rg = ours_and_torch(lambda a, c: F.cross_entropy(a, c, reduction="none"),
                                  lambda a, c: TF.cross_entropy(a, c, reduction="none"), z, t)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-300)
    check(lambda a, c: F.cross_entropy(a, c), lambda a, c: TF.cross_entropy(a, c),
          rng.standard_normal(4), np.array(2))


def test_loss_modules_use_pytorch_names():
    z = rng.standard_normal((4, 1))
    y = (rng.uniform(size=(4, 1)) > 0.5).astype(float)
    zt = ag.Tensor(z)
    assert nn.BCEWithLogitsLoss()(zt, y).item() == pytest.approx(
        torch.nn.BCEWithLogitsLoss()(torch.tensor(z), torch.tensor(y)).item())
    p = 1 / (1 + np.exp(-z))
    assert nn.BCELoss(reduction="sum")(ag.Tensor(p), y).item() == pytest.approx(
        torch.nn.BCELoss(reduction="sum")(torch.tensor(p), torch.tensor(y)).item())
    assert nn.MSELoss()(zt, y).item() == pytest.approx(
        torch.nn.MSELoss()(torch.tensor(z), torch.tensor(y)).item())
    logits = rng.standard_normal((4, 3))
    c = np.array([0, 2, 1, 0])
    assert nn.CrossEntropyLoss()(ag.Tensor(logits), c).item() == pytest.approx(
        torch.nn.CrossEntropyLoss()(torch.tensor(logits), torch.tensor(c)).item())
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_activations_against_torch():
    x = rng.standard_normal((4, 5)) * 3
    check(F.relu, torch.relu, x)
    check(F.sigmoid, torch.sigmoid, x)
    check(F.tanh, torch.tanh, x)
    check(lambda a: F.leaky_relu(a, 0.1), lambda a: TF.leaky_relu(a, 0.1), x)
    check(lambda a: F.softmax(a, axis=1), lambda a: torch.softmax(a, 1), x)
    check(lambda a: F.log_softmax(a, axis=0), lambda a: torch.log_softmax(a, 0), x)
    check(lambda a: nn.LeakyReLU(0.2)(a), torch.nn.LeakyReLU(0.2), x)


# ----------------------------------------------------------------------- errors


def test_target_shape_mismatch_names_both_shapes():
    out = ag.Tensor(np.full((10, 1), 0.5))
    with pytest.raises(ag.ShapeError, match=r"target shape \(10,\) does not match input "
                                            r"shape \(10, 1\).*reshape\(-1, 1\)"):
        F.binary_cross_entropy(out, np.zeros(10))
    with pytest.raises(ag.ShapeError, match=r"\(10, 2\).*\(10, 1\)"):
        F.mse_loss(out, np.zeros((10, 2)))
    with pytest.raises(ag.ShapeError, match="target shape"):
        F.binary_cross_entropy_with_logits(out, np.zeros((1, 10)))


def test_cross_entropy_bad_class_index_is_named():
    z = ag.Tensor(np.zeros((4, 3)))
    with pytest.raises(IndexError, match=r"target\[2\] = 3 is not a class index.*"
                                         r"3 classes.*0\.\.2"):
        F.cross_entropy(z, np.array([0, 1, 3, 2]))
    with pytest.raises(IndexError, match=r"target\[0\] = -1"):
        F.cross_entropy(z, np.array([-1, 1, 0, 2]))
    with pytest.raises(ag.ShapeError, match=r"class-index target has shape \(3,\), "
                                            r"expected \(4,\)"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="astype\\(int\\)"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ag.ShapeError, match=r"\(N, C\)"):
        F.cross_entropy(ag.Tensor(np.zeros((2, 3, 4))), np.zeros(2, dtype=int))
    with pytest.raises(IndexError, match=r"target\[1\] = 7"):
        F.nll_loss(z, np.array([0, 7, 0, 0]))
    with pytest.raises(TypeError, match="astype"):
        F.nll_loss(z, np.zeros(4))


def test_bce_refuses_logits_and_bad_reduction():
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(ag.Tensor(np.array([[2.5]])), np.array([[1.0]]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse_loss(ag.Tensor(np.zeros(2)), np.zeros(2), reduction="avg")


# ----------------------------------------------------------------------- gradcheck


def test_gradcheck_losses():
    z = ag.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    y01 = (rng.uniform(size=(5, 3)) > 0.5).astype(float)
    ag.gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, y01), [z])
    ag.gradcheck(lambda a: F.mse_loss(a, y01, reduction="sum"), [z])
    ag.gradcheck(lambda a: F.cross_entropy(a, np.array([0, 2, 1, 1, 0])), [z])
    ag.gradcheck(lambda a: F.cross_entropy(a, np.array([0, 2, 1, 1, 0]), reduction="sum"), [z])
    ag.gradcheck(lambda a: F.nll_loss(a, np.array([1, 2, 1, 0, 0]), reduction="none"), [z])
    ag.gradcheck(lambda a: F.binary_cross_entropy(a.sigmoid(), y01, reduction="sum"), [z])
    probs = rng.dirichlet(np.ones(3), 5)
    ag.gradcheck(lambda a: F.cross_entropy(a, probs), [z])
    p = ag.Tensor(rng.uniform(0.1, 0.9, (5, 3)), requires_grad=True)
    ag.gradcheck(lambda a: F.binary_cross_entropy(a, y01), [p])
    # the target may be differentiated too
    t = ag.Tensor(rng.uniform(size=(5, 3)), requires_grad=True)
    ag.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b), [z, t])


def test_l2_penalty_matches_weight_decay():
    m = nn.MLP([3, 4, 2], rng=0)
    pen = F.l2_penalty(m, 0.1)
    expected = 0.05 * sum((p.data**2).sum() for p in m.parameters() if p.ndim == 2)
    assert pen.item() == pytest.approx(expected)
    pen.backward()
    np.testing.assert_allclose(m.layers[0].weight.grad, 0.1 * m.layers[0].weight.data)
    assert m.layers[0].bias.grad is None
    full = nn.l2_penalty(m.parameters(), 0.1, include_bias=True).item()
    assert full > expected
