"""Values at the edges of an op's domain, against PyTorch float64: a zero local
derivative passes no gradient (not 0 * inf = NaN), relu returns +0, empty tensors give
empty results, and float32 stays float32 next to Python and NumPy scalars."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag

torch = pytest.importorskip("torch")


def _both(fn_ag, fn_torch, *values):
    """Run the same program in both libraries; return (ours, theirs) as
    (output, [gradients])."""
    xs = [ag.Tensor(np.array(v, dtype=np.float64), requires_grad=True) for v in values]
    ts = [torch.tensor(np.array(v, dtype=np.float64), requires_grad=True) for v in values]
    with np.errstate(all="ignore"):
        out = fn_ag(*xs)
        out.sum().backward()
    ref = fn_torch(*ts)
    ref.sum().backward()
    theirs = [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in ts]
    return (out.data, [x.grad for x in xs]), (ref.detach().numpy(), theirs)


ZERO_DERIVATIVE_CASES = {
    "relu then sqrt": (lambda x: x.relu().sqrt(), lambda x: x.relu().sqrt(), [-1.0, 0.0, 4.0]),
    "clip then log": (lambda x: x.clip(min=0.0).log(), lambda x: x.clamp(min=0.0).log(),
                      [-1.0, 2.0]),
    "clip above then log": (lambda x: (-x).clip(max=0.0).abs().sqrt(),
                            lambda x: (-x).clamp(max=0.0).abs().sqrt(), [-1.0, 2.0]),
    "x ** 0": (lambda x: x**0, lambda x: x**0, [0.0, 1.5]),
    "maximum picks a zero": (lambda x: ag.maximum(x, 0.0).sqrt(),
                             lambda x: torch.maximum(x, torch.zeros_like(x)).sqrt(),
                             [-2.0, 9.0]),
    "minimum picks a zero": (lambda x: (-ag.minimum(x, 0.0)).sqrt(),
                             lambda x: (-torch.minimum(x, torch.zeros_like(x))).sqrt(),
                             [3.0, -4.0]),
    "max over a row with a zero": (lambda x: x.max(axis=1).sqrt(),
                                   lambda x: x.max(dim=1).values.sqrt(),
                                   [[0.0, -1.0], [4.0, 1.0]]),
}


@pytest.mark.parametrize("name", list(ZERO_DERIVATIVE_CASES))
def test_a_zero_local_derivative_passes_no_gradient(name):
    fn_ag, fn_torch, value = ZERO_DERIVATIVE_CASES[name]
    (out, grads), (ref, ref_grads) = _both(fn_ag, fn_torch, value)
    np.testing.assert_allclose(out, ref)
    np.testing.assert_allclose(grads[0], ref_grads[0])
    assert not np.any(np.isnan(grads[0])), grads[0]


def test_relu_returns_plus_zero_and_handles_minus_inf():
    x = ag.Tensor([-3.0, -np.inf, 0.0, 2.0])
    y = x.relu().data
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 2.0])
    assert not np.any(np.signbit(y)), "relu of a negative number must be +0"
    with np.errstate(divide="ignore"):
        assert (1 / x.relu()).data[0] == np.inf


def test_relu_gradient_matches_torch_at_minus_inf():
    (out, grads), (ref, ref_grads) = _both(lambda x: x.relu(), torch.relu, [-np.inf, -1.0, 3.0])
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(grads[0], ref_grads[0])


# ----------------------------------------------------------------- empty tensors


@pytest.mark.parametrize("shape, axis", [((0, 3), 1), ((3, 0), 0), ((2, 0, 3), 2)])
@pytest.mark.parametrize("op", ["max", "min"])
def test_reducing_a_nonempty_axis_of_an_empty_tensor(shape, axis, op):
    x = ag.Tensor(np.zeros(shape), requires_grad=True)
    y = getattr(x, op)(axis=axis)
    ref = getattr(torch.zeros(shape, dtype=torch.float64), "amax" if op == "max" else "amin")(
        dim=axis)
    assert y.shape == tuple(ref.shape)
    y.sum().backward()
    assert x.grad.shape == shape


def test_reducing_an_empty_axis_raises_naming_the_op():
    x = ag.Tensor(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"max: tensor of shape \(0, 3\) has no values"):
        x.max(axis=0)
    with pytest.raises(ValueError, match="min"):
        x.min()


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(3, 0), (0, 4)])
def test_softmax_of_an_empty_tensor_is_empty(op, shape):
    x = ag.Tensor(np.zeros(shape), requires_grad=True)
    y = getattr(x, op)(axis=-1)
    ref = getattr(torch, op)(torch.zeros(shape, dtype=torch.float64), dim=-1)
    assert y.shape == tuple(ref.shape) and y.dtype == np.float64
    y.sum().backward()
    assert x.grad.shape == shape


# ----------------------------------------------------------------- weak scalars


def _x32():
    return ag.Tensor(np.array([1.0, 4.0], dtype=np.float32), requires_grad=True)


WEAK_SCALAR_CASES = {
    "x / np.sqrt(4.0)": lambda x: x / np.sqrt(4.0),
    "np.float64(2) * x": lambda x: np.float64(2.0) * x,
    "x * np.float64(2)": lambda x: x * np.float64(2.0),
    "np.float64(1) - x": lambda x: np.float64(1.0) - x,
    "x ** np.float64(2)": lambda x: x ** np.float64(2.0),
    "np.int64(3) + x": lambda x: np.int64(3) + x,
    "maximum(x, np.float64(2))": lambda x: ag.maximum(x, np.float64(2.0)),
    "where(c, x, np.float64(0))": lambda x: ag.where(x.data > 2, x, np.float64(0.0)),
    "x * 2.0": lambda x: x * 2.0,
}


@pytest.mark.parametrize("name", list(WEAK_SCALAR_CASES))
def test_python_and_numpy_scalars_are_weak(name):
    x = _x32()
    y = WEAK_SCALAR_CASES[name](x)
    assert y.dtype == np.float32, f"{name} gave {y.dtype}"
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_weak_scalar_values_match_float64_arithmetic_rounded():
    x = _x32()
    np.testing.assert_allclose((np.float64(2.0) * x / np.sqrt(4.0)).data, x.data, rtol=1e-7)


@pytest.mark.parametrize("sa,sb", [((4, 1), (1, 3)), ((2, 4, 1), (1, 3)), ((1, 2, 4, 1), (1, 3)),
                                   ((4, 1), (2, 1, 3)), ((2, 4, 1), (2, 1, 3)), ((1,), (1, 3)),
                                   ((4, 1), (1,)), ((4, 2), (2, 3))])
def test_the_sign_of_a_zero_product_is_pytorchs(sa, sb):
    """A product over one term is that term: -1 · 0 = -0 when PyTorch multiplies
    matrices (a 2-D right operand, a linear layer on a batch), +0 in its batched and
    vector products and in any longer sum, which starts from +0. (1/x tells them apart:
    -inf or inf.)"""
    import nn.functional as F

    a, b = -np.ones(sa), np.zeros(sb)
    ours = (ag.Tensor(a) @ ag.Tensor(b)).data
    theirs = (torch.tensor(a) @ torch.tensor(b)).numpy()
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
    if len(sb) == 2:  # a linear layer with weight bᵀ
        w = b.T.copy()
        ours = F.linear(ag.Tensor(a), ag.Tensor(w)).data
        theirs = torch.nn.functional.linear(torch.tensor(a), torch.tensor(w)).numpy()
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
