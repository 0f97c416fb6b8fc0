"""``numerical_grad`` and ``gradcheck``: catching wrong gradients and reporting them."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from values import cube_function, leaf

import autograd as ag

# ----------------------------------------------------------------- deliberately wrong ops


def square_off_at(index, factor):
    """x**2 whose backward is off by ``factor`` at one element only."""

    class BadSquare(ag.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            g = 2 * x * grad
            g[index] *= factor
            return g

    return BadSquare


WrongCube = cube_function(2.0)  # 2x**2 instead of 3x**2 everywhere
GoodCube = cube_function(3.0)


class ReluOneAtZero(ag.Function):
    """relu with derivative 1 at 0 (numerically the central difference there is 1/2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * (x >= 0)


class AbsOneAtZero(ag.Function):
    """|x| with derivative +1 at 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.where(x >= 0, 1.0, -1.0)


def _parse_report_line(report: str, index: tuple):
    """analytic and numeric values printed for one index of the report."""
    num = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"
    m = re.search(re.escape(f"index {index}") + rf": analytic {num}, numeric {num}", report)
    assert m, f"no line for index {index} in:\n{report}"
    return float(m.group(1)), float(m.group(2))


def test_wrong_element_is_named_in_the_report():
    rng = np.random.default_rng(0)
    w = leaf(rng.uniform(0.5, 2.0, (3, 4)), name="w")
    bad = square_off_at((1, 2), 1.5)
    with pytest.raises(ag.GradcheckError) as info:
        ag.gradcheck(lambda t: bad.apply(t).sum(), [w])
    report = str(info.value)
    assert "input 0" in report and "'w'" in report
    analytic, numeric = _parse_report_line(report, (1, 2))
    assert analytic == pytest.approx(1.5 * 2 * w.data[1, 2], rel=1e-8)
    assert numeric == pytest.approx(2 * w.data[1, 2], rel=1e-6)
    # exactly one element is out of tolerance, and it is that one
    (check,) = info.value.result.inputs
    assert check.n_bad == 1 and not check.passed
    assert [m.index for m in check.mismatches] == [(1, 2)]
    assert check.mismatches[0].kink is None and "kink" not in report
    assert "1 element" in report


def test_wrong_element_found_through_non_scalar_output():
    rng = np.random.default_rng(1)
    x = leaf(rng.uniform(0.5, 2.0, (2, 3, 2)), name="x")
    bad = square_off_at((0, 2, 1), 0.0)
    result = ag.gradcheck(lambda t: bad.apply(t) * 3.0, [x], raise_exception=False)
    assert not result
    assert [m.index for m in result.inputs[0].mismatches] == [(0, 2, 1)]


def test_wrong_formula_flags_every_element():
    x = leaf([0.5, -1.0, 2.0])
    result = ag.gradcheck(lambda t: WrongCube.apply(t).sum(), [x], raise_exception=False)
    assert not result and result.passed is False
    check = result.inputs[0]
    assert check.n_bad == 3
    assert {m.index for m in check.mismatches} == {(0,), (1,), (2,)}
    worst = check.mismatches[0]  # reported worst first: x = 2 has the largest error
    assert worst.index == (2,)
    assert worst.analytic == pytest.approx(2 * 2.0**2)
    assert worst.numeric == pytest.approx(3 * 2.0**2, rel=1e-6)
    assert worst.abs_err == pytest.approx(4.0, rel=1e-6)


def test_second_input_is_the_wrong_one():
    class MulWrongB(ag.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved
            return grad * b, grad * b  # d/db should be grad * a

    a = leaf([1.0, 2.0], name="a")
    b = leaf([3.0, -1.0], name="b")
    with pytest.raises(ag.GradcheckError) as info:
        ag.gradcheck(lambda x, y: MulWrongB.apply(x, y).sum(), [a, b])
    res = info.value.result
    assert res.inputs[0].passed and not res.inputs[1].passed
    report = str(info.value)
    assert "input 1 ('b')" in report
    assert re.search(r"input 0 \('a'\).*ok", report)


def test_correct_functions_pass():
    rng = np.random.default_rng(2)
    a, b = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal((4, 2)))
    res = ag.gradcheck(lambda x, y: (x @ y).tanh().sum(), [a, b])
    assert res and res.passed and all(c.passed for c in res.inputs)
    assert ag.gradcheck(lambda t: GoodCube.apply(t), [leaf(rng.standard_normal(5))])
    assert "passed" in res.report()


def test_single_tensor_and_constant_inputs():
    x = leaf([0.3, 0.4])
    assert ag.gradcheck(lambda t: (t * t).sum(), x)  # a bare Tensor is fine
    c = ag.Tensor([1.0, 2.0])  # not checked: does not require grad
    res = ag.gradcheck(lambda t, k, s: (t * k * s).sum(), [x, c, 2.0])
    assert [i.position for i in res.inputs] == [0]
    with pytest.raises(ValueError):
        ag.gradcheck(lambda k: k.sum(), [c])


def test_float32_input_warns():
    x = leaf([0.5, 1.5], dtype=np.float32)
    with pytest.warns(UserWarning, match="float64"):
        ag.gradcheck(lambda t: (t * t).sum(), [x], eps=1e-2, atol=1e-2, rtol=1e-2,
                     raise_exception=False)


def test_float64_input_does_not_warn():
    x = leaf([0.5, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ag.gradcheck(lambda t: (t * t).sum(), [x])


@pytest.mark.parametrize("op", [ReluOneAtZero, AbsOneAtZero], ids=lambda c: c.__name__)
def test_mismatch_on_a_kink_is_labelled(op):
    x = leaf([-1.0, 0.0, 2.0])
    with pytest.raises(ag.GradcheckError) as info:
        ag.gradcheck(lambda t: op.apply(t).sum(), [x])
    (check,) = info.value.result.inputs
    assert [m.index for m in check.mismatches] == [(1,)]
    assert check.mismatches[0].kink is not None
    left, right = check.mismatches[0].kink
    expected = (0.0, 1.0) if op is ReluOneAtZero else (-1.0, 1.0)
    assert (left, right) == pytest.approx(expected, abs=1e-6)
    line = next(ln for ln in str(info.value).splitlines() if "index (1,)" in ln)
    assert "kink" in line


def test_builtin_relu_at_zero_is_reported_as_a_kink():
    """The engine's relu uses 0 at 0; central differences say 1/2: a kink mismatch."""
    x = leaf([0.0, 1.0])
    res = ag.gradcheck(lambda t: t.relu().sum(), [x], raise_exception=False)
    assert not res
    assert all(m.kink is not None for m in res.inputs[0].mismatches)


def test_fast_mode():
    rng = np.random.default_rng(3)
    x = leaf(rng.uniform(0.5, 2.0, (4, 5)))
    assert ag.gradcheck(lambda t: GoodCube.apply(t).sum(), [x], fast_mode=True)
    assert ag.gradcheck(lambda t: (GoodCube.apply(t) * 2.0).tanh(), [x], fast_mode=True)
    with pytest.raises(ag.GradcheckError) as info:
        ag.gradcheck(lambda t: WrongCube.apply(t).sum(), [x], fast_mode=True)
    assert info.value.result.fast_mode
    res = ag.gradcheck(lambda t: WrongCube.apply(t).sum(), [x], fast_mode=True,
                       raise_exception=False)
    assert not res


def test_fast_mode_several_seeds_catch_the_wrong_one():
    x = leaf(np.random.default_rng(4).uniform(0.5, 2.0, 6))
    for seed in range(5):
        res = ag.gradcheck(lambda t: WrongCube.apply(t) * 1.0, [x], fast_mode=True,
                           seed=seed, raise_exception=False)
        assert not res


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("op", [GoodCube, WrongCube], ids=lambda c: c.__name__)
def test_inputs_restored_bitwise_and_grads_kept(fast, op):
    rng = np.random.default_rng(5)
    x = leaf(rng.standard_normal((3, 3)) * np.pi)  # values that do not survive +eps-eps
    y = leaf(rng.standard_normal(3) / 7)
    before_x, before_y = x.data.copy(), y.data.copy()
    data_obj = x.data
    x.grad = np.full((3, 3), 7.0)
    y.grad = None
    ag.gradcheck(lambda a, b: (op.apply(a) @ b).sum(), [x, y], fast_mode=fast,
                 raise_exception=False)
    assert x.data.tobytes() == before_x.tobytes()
    assert y.data.tobytes() == before_y.tobytes()
    assert np.shares_memory(x.data, data_obj)
    np.testing.assert_array_equal(x.grad, np.full((3, 3), 7.0))
    assert y.grad is None


def test_fn_closing_over_parameters():
    """Inputs are perturbed in place, so fn may ignore its arguments and read the
    parameters from a closure (as a loss over a model's parameters does)."""
    w = leaf(np.random.default_rng(6).standard_normal((2, 3)), name="w")
    x = ag.Tensor(np.random.default_rng(7).standard_normal((4, 2)))
    assert ag.gradcheck(lambda *_: (x @ w).sigmoid().sum(), [w])
    # ...and a wrong gradient is still caught when the input is only closed over
    bad = square_off_at((0, 1), 3.0)
    res = ag.gradcheck(lambda *_: bad.apply(w).sum(), [w], raise_exception=False)
    assert [m.index for m in res.inputs[0].mismatches] == [(0, 1)]
    # a fn that takes no arguments at all is called as fn()
    assert ag.gradcheck(lambda: (x @ w).sigmoid().sum(), [w])
    res = ag.gradcheck(lambda: bad.apply(w).sum(), [w], raise_exception=False)
    assert [m.index for m in res.inputs[0].mismatches] == [(0, 1)]
    assert ag.numerical_grad(lambda: (w * w).sum(), [w])[0] == pytest.approx(2 * w.data)


def test_html_repr_is_a_table():
    x = leaf([0.5, -1.0, 2.0], name="x")
    ok = ag.gradcheck(lambda t: GoodCube.apply(t).sum(), [x])
    html_ok = ok._repr_html_()
    assert "<table" in html_ok and "</table>" in html_ok and "<tr" in html_ok
    bad = ag.gradcheck(lambda t: WrongCube.apply(t).sum(), [x], raise_exception=False)
    html_bad = bad._repr_html_()
    assert "<table" in html_bad and "(2,)" in html_bad and "mismatch" in html_bad
    assert "input 0" in html_bad


def test_tolerances_are_honoured():
    x = leaf([1.0, 2.0])
    bad = square_off_at((1,), 1.0 + 1e-4)  # relative error 1e-4
    assert ag.gradcheck(lambda t: bad.apply(t).sum(), [x], rtol=1e-3)
    assert not ag.gradcheck(lambda t: bad.apply(t).sum(), [x], rtol=1e-6, atol=1e-9,
                            raise_exception=False)


# ----------------------------------------------------------------- numerical_grad


def test_numerical_grad_of_numpy_functions():
    """Functions computed in NumPy (not with chainrule's ops): known derivatives."""
    x = leaf(np.linspace(-1.0, 1.0, 5))
    (g,) = ag.numerical_grad(lambda t: ag.Tensor(np.sin(t.data).sum()), [x])
    np.testing.assert_allclose(g, np.cos(x.data), rtol=1e-7, atol=1e-9)
    y = leaf([0.5, 1.5, 2.5])
    gx, gy = ag.numerical_grad(lambda a, b: ag.Tensor(np.exp(a.data[:3]) @ np.log(b.data)),
                               [x, y])
    np.testing.assert_allclose(gx[:3], np.exp(x.data[:3]) * np.log(y.data), rtol=1e-7)
    np.testing.assert_array_equal(gx[3:], 0.0)
    np.testing.assert_allclose(gy, np.exp(x.data[:3]) / y.data, rtol=1e-7)


def test_numerical_grad_with_grad_output_and_errors():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = np.array([[1.0, -1.0], [0.5, 2.0]])
    (g,) = ag.numerical_grad(lambda t: t * t, [x], grad_output=v)
    np.testing.assert_allclose(g, 2 * x.data * v, rtol=1e-7)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        ag.numerical_grad(lambda t: t * t, [x])


def test_numerical_grad_restores_inputs():
    x = leaf(np.random.default_rng(8).standard_normal(4) * 1e3)
    before = x.data.copy()
    ag.numerical_grad(lambda t: (t**2).sum(), [x])
    assert x.data.tobytes() == before.tobytes()


def test_numerical_grad_non_float_inputs_get_zeros():
    x = leaf([1.0, 2.0])
    k = ag.Tensor([3, 4])
    gx, gk = ag.numerical_grad(lambda a, b: (a * b).sum(), [x, k])
    np.testing.assert_allclose(gx, [3.0, 4.0], rtol=1e-7)
    np.testing.assert_array_equal(gk, [0, 0])
