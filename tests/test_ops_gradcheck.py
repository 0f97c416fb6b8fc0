"""Every op of the table (``tests/opinfo.py``) against central differences (``ag.gradcheck``).

Each form of each row is called on inputs drawn by hypothesis through the row's family
(shapes, broadcasting partners, axes, indices, ...), with values from its domains (away
from kinks, poles and ties, so only a real bug fails), one input sometimes a constant.
A non-scalar output is checked through gradcheck's random projection, whose seed is
drawn too, so the upstream gradient is random.
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
    missing_rows,
)
from values import leaf, normal, positive, seeds

import autograd as ag
from autograd import ops

SETTINGS = settings(max_examples=20, deadline=None)
FORMS = [pytest.param(name, i, id=label) for name, i, label in forms()]
EXAMPLES = [pytest.param(name, i, id=label) for name, i, label in examples()]


def check(case, seed=0):
    inputs = [leaf(a, name=f"x{i}") if rg else ag.Tensor(a)
              for i, (a, rg) in enumerate(zip(case.arrays, case.requires_grad))]

    def fn(*tensors):
        return case.form.call("ours", **case.bind(tensors))

    result = ag.gradcheck(fn, inputs, seed=seed, **case.row.tol.get("gradcheck", {}))
    assert result  # gradcheck raises on failure; this guards a falsy pass


def test_every_op_has_a_row():
    missing = missing_rows()
    assert not missing, (f"ops in autograd.ops.__all__ without a row in tests/opinfo.py: "
                         f"{missing}. Add one (see CONTRIBUTING.md).")


def test_an_op_without_a_row_is_named(monkeypatch):
    monkeypatch.setattr(ops, "__all__", [*ops.__all__, "Sin"])
    assert missing_rows() == ["Sin"]


@pytest.mark.parametrize("name,index", FORMS)
def test_form_reaches_its_op(name, index):
    """Each form's chainrule code really calls the row's op."""
    row = ROWS[name]
    case = make_case(RandomPicker(np.random.default_rng(0)), row, index)
    tensors = [ag.Tensor(a, requires_grad=True) for a in case.arrays]
    out = case.form.call("ours", **case.bind(tensors))
    assert isinstance(out.grad_fn, row.op), f"{case.form.id} made {out.grad_fn}, not {row.op}"


@pytest.mark.parametrize("name,index", FORMS)
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_gradcheck(name, index, data, seed):
    check(make_case(HypothesisPicker(data), ROWS[name], index), seed=seed)


@pytest.mark.parametrize("name,index", EXAMPLES)
def test_gradcheck_example(name, index):
    check(make_case(RandomPicker(np.random.default_rng(5)), ROWS[name], example=index), seed=7)


# ----------------------------------------------------------------- beyond one call


def test_getitem_repeats_accumulate():
    x = leaf(np.arange(4.0))
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 3.0, 0.0, 1.0])


def test_getitem_tensor_index():
    idx = ag.Tensor(np.array([2, 0, 2]))
    check(fixed_case(ROWS["getitem"], {"a": normal(np.random.default_rng(6), (3, 2))},
                     {"idx": idx}))


def test_transpose_negative_axes_gradient_shape():
    """Inverse permutation of (-1, 0, 1) is (1, 2, 0): the gradient keeps x's shape."""
    x = normal(np.random.default_rng(0), (2, 3, 4))
    for axes in [(-1, 0, 1), (0, -1, -2)]:
        check(fixed_case(ROWS["transpose"], {"a": x}, {"axes": axes}))


def test_where_with_tensor_condition_and_scalar_branch():
    rng = np.random.default_rng(1)
    x = normal(rng, (3, 4))
    mask = ag.Tensor(x < 0)
    inputs = [leaf(x)]
    assert ag.gradcheck(lambda t: ag.where(t > 0, t, 0.0), inputs)
    assert ag.gradcheck(lambda t: ag.where(mask, 1.5, t * 2), inputs)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_composite_expression(data, seed):
    """Several ops and a shared input: gradients from several paths must add up."""
    case = make_case(HypothesisPicker(data), ROWS["add"])
    rng = np.random.default_rng(seed)
    a, b = normal(rng, case.arrays[0].shape), positive(rng, case.arrays[1].shape)

    def f(x, y):
        z = x * y + (x - y).tanh() * x
        return (z.sigmoid() + y.log() * z) / (1.0 + y)

    assert ag.gradcheck(f, [leaf(a), leaf(b)], seed=seed)
