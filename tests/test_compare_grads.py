"""``ag.compare_grads``: gradients derived by hand against the engine's, in a table
(exact / close / max abs diff) that says which entry differs, and errors that name the
entry and both shapes."""

import numpy as np
import pytest

import autograd as ag


def _tanh_graph():
    x = ag.Tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), requires_grad=True)
    h = x.tanh()
    h.retain_grad()
    (h * h).sum().backward()
    return x, h


def test_hand_derived_gradients_of_a_small_graph_are_close():
    x, h = _tanh_graph()
    dh = 2 * h.numpy()
    dx = dh * (1 - h.numpy() ** 2)
    result = ag.compare_grads({"h": (dh, h), "x": (dx, x), "x as array": (dx, x.grad)})
    assert result.passed and bool(result)
    assert [r.name for r in result.rows] == ["h", "x", "x as array"]
    assert result["h"].exact and result["h"].max_abs_diff == 0.0
    assert result["x"].close and result["x"].shape == (2, 3)
    assert ag.compare_grads({"x": (dx, x)}, check=True).passed
    text = str(result)
    assert text.splitlines()[0].split() == ["gradient", "shape", "exact", "close", "max",
                                            "abs", "diff"]
    assert "all close" in text and "<table>" in result._repr_html_()


def test_a_wrong_derivation_is_reported_and_raises_with_check():
    x, h = _tanh_graph()
    dh = 2 * h.numpy()
    wrong = dh * (1 - h.numpy())  # forgot the square: d tanh = 1 - tanh²
    result = ag.compare_grads({"h": (dh, h), "x": (wrong, x)})
    assert not result.passed and not bool(result)
    assert result["h"].close and not result["x"].close and not result["x"].exact
    expected = np.abs(wrong - x.grad).max()
    assert result["x"].max_abs_diff == pytest.approx(expected) and expected > 0.1
    assert "NOT close: x" in str(result) and "<-- not close" in str(result)
    with pytest.raises(ag.GradMismatchError, match="NOT close: x") as info:
        ag.compare_grads({"h": (dh, h), "x": (wrong, x)}, check=True)
    assert isinstance(info.value, AssertionError)
    assert info.value.comparison["x"].max_abs_diff == result["x"].max_abs_diff


def test_close_but_not_exact_and_the_tolerances():
    g = np.array([1.0, 2.0, 3.0])
    nudged = g + 1e-12
    r = ag.compare_grads({"g": (nudged, g)})
    assert r["g"].close and not r["g"].exact
    assert r["g"].max_abs_diff == pytest.approx(1e-12, rel=1e-3)
    assert not ag.compare_grads({"g": (g + 1e-3, g)}).passed
    assert ag.compare_grads({"g": (g + 1e-3, g)}, rtol=0, atol=1e-2).passed


def test_shape_mismatch_names_the_entry_and_both_shapes():
    W = ag.Tensor(np.ones((3, 2)), requires_grad=True)
    (W * 2.0).sum().backward()
    with pytest.raises(ag.ShapeError,
                       match=r"'dW': .*shape \(2, 3\) but the engine's has shape \(3, 2\) "
                             r"\(transposed\?\)"):
        ag.compare_grads({"dW": (np.full((2, 3), 2.0), W)})
    with pytest.raises(ag.ShapeError, match=r"'b': .*shape \(1, 2\) .* shape \(2,\)"):
        ag.compare_grads({"b": (np.ones((1, 2)), np.ones(2))})  # no broadcasting


def test_a_tensor_without_grad_and_bad_arguments():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0  # not retained
    y.sum().backward()
    with pytest.raises(ValueError, match=r"'y': .*no \.grad; call \.retain_grad\(\)"):
        ag.compare_grads({"y": (np.ones(2), y)})
    with pytest.raises(ValueError, match="does not require grad"):
        ag.compare_grads({"c": (np.ones(2), ag.Tensor([1.0, 2.0]))})
    with pytest.raises(TypeError, match="expected a mapping"):
        ag.compare_grads([("x", np.ones(2), x)])
    with pytest.raises(TypeError, match=r"'x': expected a pair"):
        ag.compare_grads({"x": np.ones(2)})
    with pytest.raises(ValueError, match="nothing to compare"):
        ag.compare_grads({})
    with pytest.raises(KeyError, match="no entry named 'z'"):
        ag.compare_grads({"x": (x.grad, x)})["z"]
