"""squeeze / unsqueeze / flatten, logsumexp, var / std, norm and cumsum at the places
the op table's random draws rarely reach: infinities, empty axes, zero variance, the
zero vector, 0-d tensors, float32, PyTorch's argument names, and the errors PyTorch
raises. Values and gradients against PyTorch float64 (``compare`` of test_ops_torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import require_module

import autograd as ag

torch = require_module("torch", "the PyTorch oracle")

INF = math.inf


def run_both(ours, theirs, x, upstream=None):
    """Outputs and input gradients, ours and PyTorch's, for one input array."""
    a = ag.Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    t = torch.tensor(np.array(x, dtype=np.float64), requires_grad=True)
    out, ref = ours(a), theirs(t)
    g = np.ones(out.shape) if upstream is None else np.asarray(upstream, dtype=np.float64)
    out.backward(g)
    ref.backward(torch.from_numpy(np.array(g)))
    return out.data, ref.detach().numpy(), a.grad, t.grad.numpy()


def agree(ours, theirs, x, upstream=None):
    got, ref, ga, gt = run_both(ours, theirs, x, upstream)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ga, gt, rtol=1e-12, atol=1e-12)
    assert np.array_equal(np.isnan(ga), np.isnan(gt))


# ------------------------------------------------------------------------ logsumexp


@pytest.mark.parametrize("x", [
    [-INF, -INF, 1.0],  # -inf terms add nothing and get gradient 0
    [-INF, -INF],  # all -inf: -inf, and PyTorch's NaN gradient (exp(-inf - -inf))
    [INF, 1.0],  # +inf: inf, gradient NaN at the inf, 0 elsewhere
    [800.0, 800.0, -800.0],  # no overflow: shifted by the maximum
])
def test_logsumexp_infinities_and_large_values(x):
    agree(lambda a: a.logsumexp(0), lambda t: torch.logsumexp(t, 0), x)


def test_logsumexp_over_an_empty_axis_is_minus_inf():
    agree(lambda a: a.logsumexp(axis=1), lambda t: torch.logsumexp(t, 1), np.zeros((2, 0)))
    agree(lambda a: a.logsumexp(axis=1), lambda t: torch.logsumexp(t, 1), np.zeros((0, 3)))
    assert ag.logsumexp(np.zeros(0)).item() == -INF


def test_logsumexp_keeps_float32():
    x = ag.Tensor(np.array([[1.0, 2.0], [3.0, 90.0]], dtype=np.float32), requires_grad=True)
    y = x.logsumexp(dim=1, keepdim=True)
    assert y.dtype == np.float32 and y.shape == (2, 1)
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.sum(axis=1), [1.0, 1.0], rtol=1e-6)


# ------------------------------------------------------------------------ var / std


def test_std_gradient_at_zero_variance_is_zero_as_in_torch():
    agree(lambda a: a.std(), lambda t: t.std(correction=0), [1.5, 1.5, 1.5])
    agree(lambda a: a.std(axis=1, ddof=1), lambda t: t.std(dim=1),
          [[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])


@pytest.mark.parametrize("kwargs, torch_kwargs", [
    ({"ddof": 1}, {"correction": 1}),
    ({"unbiased": True}, {"unbiased": True}),
    ({"unbiased": False}, {"unbiased": False}),
    ({"correction": 2}, {"correction": 2}),
    ({"dim": 0, "keepdim": True, "correction": 0}, {"dim": 0, "keepdim": True,
                                                    "correction": 0}),
    ({"axis": (0, 1)}, {"dim": (0, 1), "correction": 0}),
])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_take_numpy_and_torch_arguments(name, kwargs, torch_kwargs):
    x = np.random.default_rng(0).standard_normal((4, 3))
    agree(lambda a: getattr(a, name)(**kwargs), lambda t: getattr(t, name)(**torch_kwargs), x)


def test_var_default_is_numpys_ddof_0():
    x = np.array([1.0, 2.0, 4.0])
    assert ag.var(x).item() == pytest.approx(np.var(x))
    assert ag.std(x, ddof=1).item() == pytest.approx(np.std(x, ddof=1))


@pytest.mark.filterwarnings("ignore:var.*degrees of freedom")
def test_var_with_too_few_values_is_nan_as_in_torch():
    x = ag.Tensor([3.0])
    assert math.isnan(x.var(ddof=1).item())
    assert math.isnan(torch.tensor([3.0]).var().item())


def test_var_keeps_float32():
    x = ag.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    y = x.std(axis=1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


# ------------------------------------------------------------------------ norm


@pytest.mark.parametrize("p", [1, 2, INF])
def test_norm_at_the_zero_vector_has_torchs_gradient(p):
    agree(lambda a: a.norm(p), lambda t: torch.linalg.vector_norm(t, p), np.zeros(3))
    agree(lambda a: a.norm(p, axis=1), lambda t: torch.linalg.vector_norm(t, p, dim=1),
          [[0.0, 0.0], [3.0, -4.0]])


def test_norm_inf_splits_ties_and_follows_signs():
    agree(lambda a: a.norm(INF, axis=-1), lambda t: torch.linalg.vector_norm(t, INF, dim=-1),
          [[3.0, -3.0, 1.0], [-2.0, 0.5, 1.0]])


def test_norm_torch_spelling_and_numpy_function():
    x = np.array([[3.0, -4.0], [1.0, 2.0]])
    agree(lambda a: a.norm(p=1, dim=0, keepdim=True),
          lambda t: torch.linalg.vector_norm(t, 1, dim=0, keepdim=True), x)
    agree(lambda a: np.linalg.norm(a, axis=1), lambda t: torch.linalg.vector_norm(t, dim=1), x)


def test_norm_errors_name_the_op():
    x = ag.Tensor(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="norm: the inf-norm .* empty axis"):
        x.norm(INF, axis=1)
    with pytest.raises(ValueError, match="ord=3"):
        x.norm(3)
    with pytest.raises(TypeError, match="both ord=1 and p=2"):
        x.norm(1, p=2)
    assert x.norm(axis=1).shape == (2,)  # the 2-norm of nothing is 0, as in PyTorch


# ------------------------------------------------------------------------ cumsum


def test_cumsum_gradient_is_the_reversed_cumsum():
    x = ag.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.cumsum(0).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(x.grad, [111.0, 110.0, 100.0])


def test_cumsum_flat_0d_and_torch_spelling():
    agree(lambda a: a.cumsum(), lambda t: t.reshape(-1).cumsum(0), np.arange(6.0).reshape(2, 3))
    agree(lambda a: a.cumsum(dim=0), lambda t: t.cumsum(dim=0), np.array(2.5))
    agree(lambda a: np.cumsum(a, axis=-1), lambda t: t.cumsum(-1), np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError, match="cumsum: axis 2"):
        ag.cumsum(np.ones((2, 3)), 2)


# ------------------------------------------------------------------------ shapes


def test_squeeze_unsqueeze_flatten_shapes_as_torch():
    x = np.ones((2, 1, 3, 1))
    t = torch.ones(2, 1, 3, 1)
    assert ag.squeeze(x).shape == tuple(t.squeeze().shape)
    assert ag.squeeze(x, dim=(1, 3)).shape == tuple(t.squeeze((1, 3)).shape)
    assert ag.squeeze(x, 0).shape == tuple(t.squeeze(0).shape)  # length 2: left
    assert ag.unsqueeze(x, -1).shape == tuple(t.unsqueeze(-1).shape)
    assert ag.expand_dims(x, (0, 2)).shape == np.expand_dims(x, (0, 2)).shape
    assert ag.flatten(x, 1).shape == tuple(t.flatten(1).shape)
    assert ag.flatten(x, 1, 2).shape == tuple(t.flatten(1, 2).shape)
    assert ag.flatten(np.array(1.0)).shape == (1,)
    assert ag.flatten(np.ones((2, 0, 3)), 1).shape == (2, 0)


def test_shape_ops_draw_their_own_symbol_and_pass_the_gradient_back():
    x = ag.Tensor(np.arange(6.0).reshape(2, 1, 3), requires_grad=True)
    for y, symbol in [(x.squeeze(), "squeeze"), (x.unsqueeze(0), "unsqueeze"),
                      (x.flatten(), "flatten")]:
        assert type(y.grad_fn).symbol == symbol
        x.grad = None
        (y * np.arange(6.0).reshape(y.shape)).sum().backward()
        np.testing.assert_array_equal(x.grad, np.arange(6.0).reshape(2, 1, 3))


def test_shape_op_errors_name_the_op_and_shape():
    x = ag.Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"flatten: start_dim=2 comes after end_dim=1"):
        x.flatten(2, 1)
    with pytest.raises(np.exceptions.AxisError, match=r"unsqueeze: axis 4 .* \(2, 3, 4\)"):
        x.unsqueeze(4)
    with pytest.raises(np.exceptions.AxisError, match=r"squeeze: axis 3 .* \(2, 3, 4\)"):
        x.squeeze(3)
    with pytest.raises(ValueError):
        np.squeeze(x, 0)  # NumPy's rule: only an axis of length 1
