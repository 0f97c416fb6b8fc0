"""Bad input gets our own message naming the op, the shapes or dtype, and the fix;
custom Functions that misbehave are named; non-numbers never become tensors."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag


def _leaf(values):
    return ag.Tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------- inputs


@pytest.mark.parametrize("data", [None, [1.0, None], "abc", ["a", "b"], [[1.0], [1.0, 2.0]],
                                  {"a": 1}])
def test_non_numeric_data_is_refused_at_construction(data):
    with pytest.raises(TypeError, match="Tensor: "):
        ag.Tensor(data)


def test_numbers_of_every_kind_are_accepted():
    assert ag.Tensor(True).dtype == np.bool_
    assert ag.Tensor([1, 2]).dtype.kind == "i"
    assert ag.Tensor([1, 2.5]).dtype == np.float64
    assert ag.Tensor(np.array([1j])).dtype.kind == "c"  # complex, without grad


def test_complex_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="Complex gradients are not supported"):
        ag.Tensor(np.array([1 + 2j]), requires_grad=True)
    with pytest.raises(TypeError, match="cannot require grad"):
        ag.Tensor(np.array([1 + 2j])).requires_grad_()


def test_matmul_accepts_array_likes():
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x @ [1.0, 2.0]
    np.testing.assert_array_equal(y.data, [5.0, 11.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 2.0], [1.0, 2.0]])
    z = [[1.0, 0.0]] @ x
    np.testing.assert_array_equal(z.data, [[1.0, 2.0]])


# ----------------------------------------------------------------- op errors


def test_integer_to_a_negative_power_names_pow():
    with pytest.raises(ValueError, match="pow: an integer tensor .* make the base floating"):
        ag.Tensor([1, 2]) ** -1


def test_bool_minus_bool_names_the_op_and_the_fix():
    with pytest.raises(TypeError, match=r"sub: the - operator is not defined for boolean .* \^"):
        ag.Tensor([True]) - ag.Tensor([False])
    with pytest.raises(TypeError, match="neg: .* ~a"):
        -ag.Tensor([True])


@pytest.mark.parametrize("call, op", [
    (lambda x: x.sum(axis=2), "sum"),
    (lambda x: x.mean(axis=-3), "mean"),
    (lambda x: x.max(axis=(0, 5)), "max"),
    (lambda x: x.softmax(axis=2), "softmax"),
    (lambda x: x.log_softmax(axis=-3), "log_softmax"),
    (lambda x: x.transpose(0, 2), "transpose"),
])
def test_a_bad_axis_names_the_op_and_the_shape(call, op):
    x = _leaf(np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError, match=rf"{op}: axis -?\d is out of range for "
                       r"a tensor of shape \(2, 3\)"):
        call(x)


def test_transpose_with_a_repeated_axis_is_refused():
    with pytest.raises(ValueError, match="not a permutation"):
        _leaf(np.ones((2, 3))).transpose(0, 0)


def test_batched_matmul_names_the_batch_dimensions():
    a, b = _leaf(np.ones((2, 3, 4))), _leaf(np.ones((5, 4, 2)))
    with pytest.raises(ag.ShapeError, match=r"batch dimensions \(2,\) and \(5,\)") as info:
        a @ b
    assert "reshape(-1, 1)" not in str(info.value)


def test_a_custom_forwards_own_broadcast_message_passes_unchanged():
    class Picky(ag.Function):
        @staticmethod
        def forward(ctx, a):
            raise ValueError("Picky cannot broadcast its own way")

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(ValueError) as info:
        Picky.apply(_leaf([1.0]))
    assert str(info.value) == "Picky cannot broadcast its own way"
    assert type(info.value) is ValueError


# ----------------------------------------------------------------- custom Functions


class Double(ag.Function):
    @staticmethod
    def forward(ctx, a, scale=2.0):
        ctx.scale = scale
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale


def test_a_tensor_passed_by_keyword_is_refused_not_dropped():
    x, s = _leaf([1.0]), _leaf([3.0])
    with pytest.raises(TypeError, match=r"Double.apply: the Tensor passed as keyword argument "
                       r"scale= would not be tracked"):
        Double.apply(x, scale=s)
    assert Double.apply(x, scale=3.0).data[0] == 3.0  # numbers as options are fine


@pytest.mark.parametrize("result, what", [(None, "NoneType"), ("text", "str"),
                                          ([None], "list")])
def test_forward_returning_a_non_array_names_the_function(result, what):
    class Broken(ag.Function):
        @staticmethod
        def forward(ctx, a):
            return result

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(TypeError, match=rf"Broken.forward returned {what}"):
        Broken.apply(_leaf([1.0]))


def test_forward_returning_a_tensor_says_to_return_arrays():
    class ReturnsTensor(ag.Function):
        @staticmethod
        def forward(ctx, a):
            return ag.Tensor(a)

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(TypeError, match=r"returned a Tensor.*t\.data"):
        ReturnsTensor.apply(_leaf([1.0]))


def test_backward_may_return_a_python_number():
    class Thrice(ag.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 3

        @staticmethod
        def backward(ctx, grad):
            return 3.0  # d(3a)/da, broadcast by the engine

    x = _leaf([1.0, 2.0])
    Thrice.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    assert x.grad.dtype == np.float64


def test_backward_returning_something_else_names_the_function():
    class Wrong(ag.Function):
        @staticmethod
        def forward(ctx, a):
            return a

        @staticmethod
        def backward(ctx, grad):
            return "grad"

    with pytest.raises(TypeError, match="Wrong.backward returned a gradient of type str"):
        Wrong.apply(_leaf([1.0])).sum().backward()
