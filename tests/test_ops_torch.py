"""Values and gradients of every op of the table (``tests/opinfo.py``) against PyTorch
float64, an independent oracle.

Each form of each row runs the same inputs (drawn by hypothesis through the row's
family and domains) through chainrule and through the row's PyTorch equivalent,
backpropagates the same random upstream gradient through both and compares the
outputs and every input's gradient to ~1e-10. Skips when torch is missing (conftest
makes that an error in CI).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opinfo import (
    ROWS,
    HypothesisPicker,
    RandomPicker,
    examples,
    fixed_case,
    forms,
    make_case,
    torch_params,
)
from values import normal, positive, seeds

import autograd as ag

# the op table pairs (n,) with (n, 1) on purpose, to check broadcasting itself
pytestmark = pytest.mark.filterwarnings("ignore::autograd.BroadcastWarning")

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=20, deadline=None)
FORMS = [pytest.param(name, i, id=label) for name, i, label in forms()]
EXAMPLES = [pytest.param(name, i, id=label) for name, i, label in examples()]
TOL = dict(rtol=1e-10, atol=1e-10)


def compare(ag_fn, torch_fn, *arrays, seed=0, requires_grad=None, tol=None):
    """Same inputs, same upstream gradient: outputs and input gradients must agree."""
    tol = tol or TOL
    requires_grad = requires_grad or [True] * len(arrays)
    ours = [ag.Tensor(np.array(a, dtype=np.float64), requires_grad=rg)
            for a, rg in zip(arrays, requires_grad)]
    theirs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=rg)
              for a, rg in zip(arrays, requires_grad)]
    out = ag_fn(*ours)
    ref = torch_fn(*theirs)
    assert out.dtype == np.float64
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **tol)
    v = np.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(v)
    ref.backward(torch.from_numpy(v.copy()))
    for i, (a, t) in enumerate(zip(ours, theirs)):
        if not a.requires_grad:
            assert a.grad is None, f"constant input {i} got a gradient"
            continue
        expected = np.zeros(a.shape) if t.grad is None else t.grad.numpy()
        assert a.grad is not None, f"input {i} got no gradient"
        assert a.grad.shape == a.shape
        np.testing.assert_allclose(a.grad, expected, **tol, err_msg=f"gradient of input {i}")


def compare_case(case, seed=0):
    form = case.form
    compare(lambda *ts: form.call("ours", **case.bind(ts)),
            lambda *ts: form.call("theirs", **torch_params(case.bind(ts))),
            *case.arrays, seed=seed, requires_grad=case.requires_grad,
            tol=case.row.tol.get("torch"))


@pytest.mark.parametrize("name,index", FORMS)
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_against_torch(name, index, data, seed):
    compare_case(make_case(HypothesisPicker(data), ROWS[name], index), seed=seed)


@pytest.mark.parametrize("name,index", EXAMPLES)
def test_example_against_torch(name, index):
    compare_case(make_case(RandomPicker(np.random.default_rng(9)), ROWS[name], example=index),
                 seed=2)


# ----------------------------------------------------------------- ties and extremes


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_ties_match_torch(name):
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 3.0, -1.0])
    compare_case(fixed_case(ROWS[name], {"a": a, "b": b}))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_full_reduction_of_0d(name):
    compare_case(fixed_case(ROWS[name], {"a": np.array(1.7)}, form=1))


@pytest.mark.parametrize("name", ["max", "min"])
def test_extremum_ties_match_torch(name):
    x = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-2.0, 7.0, -2.0, 1.0]])
    for axis, dims in [(None, (0, 1)), (0, 0), (1, 1)]:
        params = {"axis": axis, "dims": dims, "keepdims": False}
        compare_case(fixed_case(ROWS[name], {"a": x}, params))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_large_logits(name):
    x = np.array([[800.0, -800.0, 0.0], [-800.0, -799.0, -800.0], [1e3, 1e3, 1e3]])
    compare_case(fixed_case(ROWS[name], {"a": x}, {"axis": 1}))


def test_sigmoid_large_inputs():
    x = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    compare_case(fixed_case(ROWS["sigmoid"], {"a": x}))


# ----------------------------------------------------------------- compositions


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_composite(data, seed):
    case = make_case(HypothesisPicker(data), ROWS["add"])
    rng = np.random.default_rng(seed)
    a, b = normal(rng, case.arrays[0].shape), positive(rng, case.arrays[1].shape)

    def f(x, y):
        z = x * y + (x - y).tanh() * x
        return ((z.sigmoid() + y.log() * z) / (1.0 + y)).exp().sqrt()

    compare(f, f, a, b, seed=seed)


def test_mlp_like_graph():
    rng = np.random.default_rng(11)
    X, W1, b1, W2 = (normal(rng, s) for s in [(6, 4), (4, 5), (5,), (5, 3)])

    def ours(x, w1, c1, w2):
        h = (x @ w1 + c1).relu()
        return (h @ w2).log_softmax(axis=-1).mean()

    def theirs(x, w1, c1, w2):
        h = torch.relu(x @ w1 + c1)
        return torch.log_softmax(h @ w2, dim=-1).mean()

    compare(ours, theirs, X, W1, b1, W2)
