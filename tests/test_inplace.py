"""Values an op saved for backward cannot change unnoticed: a write through ``.data``,
an in-place method or an optimiser step makes that op's backward raise (PyTorch's
"modified by an inplace operation"); writes that backward does not depend on pass."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn

CHANGED = "was changed in place"


def _leaf(values, name=None):
    return ag.Tensor(np.array(values, dtype=np.float64), requires_grad=True, name=name)


def test_optimizer_step_between_two_losses_raises_at_the_second_backward():
    model = nn.Linear(3, 1)
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    x = ag.Tensor(np.ones((4, 3)))
    loss1 = model(x).sum()
    loss2 = (model(x) ** 2).sum()  # built on the same weights
    loss1.backward()
    opt.step()  # changes the weights loss2 saved
    with pytest.raises(RuntimeError, match=CHANGED):
        loss2.backward()


def test_optimizer_steps_after_backward_keep_working_in_place():
    model = nn.Linear(3, 1)
    opt = nn.optim.Adam(model.parameters(), lr=0.1)
    x = ag.Tensor(np.ones((4, 3)))
    w = model.weight.data.view(np.ndarray)
    for _ in range(3):
        opt.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        opt.step()
    assert np.shares_memory(model.weight.data, w)  # updated in place, not replaced


@pytest.mark.parametrize("write", [
    lambda t: t.data.__setitem__(Ellipsis, 0.0),
    lambda t: t.data.__setitem__(0, 5.0),
    lambda t: t.data[1:].fill(2.0),
    lambda t: np.copyto(t.data, 3.0),
    lambda t: np.multiply(t.data, 2.0, out=t.data),
    lambda t: t.data.reshape(-1).__setitem__(0, 1.0),
], ids=["data[...]=", "data[0]=", "slice.fill", "copyto", "ufunc out=", "view of view"])
def test_a_write_through_data_to_a_saved_tensor_raises_at_backward(write):
    w = _leaf([1.0, 2.0, 3.0], name="w")
    loss = (w * w).sum()  # Mul saves w
    write(w)
    with pytest.raises(RuntimeError, match=r"Mul\.backward: an input 'w' of shape \(3,\)"):
        loss.backward()


def test_the_in_place_idiom_data_minus_equals_is_noticed():
    w = _leaf([1.0, 2.0])
    loss = (w.exp()).sum()  # Exp saves its output, not w
    y = w * w
    w.data -= 0.5
    loss.backward()  # exp's saved output did not change
    with pytest.raises(RuntimeError, match=CHANGED):
        y.sum().backward()


def test_writing_the_output_an_op_saved_raises():
    x = _leaf([0.0, 1.0])
    y = x.exp()  # saves y itself
    z = y.sum()
    y.data[...] = 0.0
    with pytest.raises(RuntimeError, match=r"Exp\.backward: its output"):
        z.backward()


def test_writes_backward_does_not_depend_on_pass():
    x = _leaf([1.0, 2.0])
    y = (x + 1.0).sum()  # Add saves nothing
    x.data[...] = 7.0
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    w = _leaf([1.0, 2.0])
    z = (w * 3.0).sum()
    w.data = np.array([5.0, 6.0])  # replaced, not written: Mul's saved array is intact
    z.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_a_constant_input_written_after_forward_raises():
    x = ag.Tensor(np.ones((2, 3)))
    w = _leaf(np.ones((3, 1)))
    loss = (x @ w).sum()  # MatMul saves x for dL/dw
    x.data[0, 0] = 10.0
    with pytest.raises(RuntimeError, match=r"MatMul\.backward: an input of shape \(2, 3\)"):
        loss.backward()


def test_numpy_of_a_tensor_that_requires_grad_is_a_read_only_view():
    w = _leaf([1.0, 2.0])
    view = w.numpy()
    assert np.shares_memory(view, w.data)
    with pytest.raises(ValueError, match="read-only"):
        view[:] = 0.0
    with pytest.raises(TypeError, match="would drop it from the graph"):
        np.asarray(w)  # as PyTorch refuses it
    with pytest.raises(TypeError, match="would drop it from the graph"):
        np.sum([w, w])
    c = ag.Tensor([1.0, 2.0])  # no grad: numpy() shares memory and is writable
    c.numpy()[0] = 5.0
    assert c.data[0] == 5.0


def test_in_place_methods_under_no_grad_are_noticed():
    w = _leaf([1.0, 2.0])
    loss = (w * w).sum()
    with ag.no_grad():
        w.sub_(np.array([0.1, 0.1])).mul_(2.0)
    np.testing.assert_allclose(w.data, [1.8, 3.8])
    with pytest.raises(RuntimeError, match=CHANGED):
        loss.backward()


def test_in_place_methods_refuse_a_tensor_in_the_graph():
    w = _leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="under ag.no_grad"):
        w.add_(1.0)
    c = ag.Tensor([1.0, 2.0])
    c.add_(ag.Tensor([1.0, 1.0])).zero_()
    np.testing.assert_array_equal(c.data, [0.0, 0.0])
    with ag.no_grad():
        w.copy_(np.array([3.0, 4.0]))
        w.fill_(1.5)
    np.testing.assert_array_equal(w.data, [1.5, 1.5])


def test_computing_with_data_gives_plain_arrays():
    w = _leaf([1.0, 2.0])
    assert type(w.data * 2) is np.ndarray
    assert type(w.data.sum()) is np.float64
    for new_array in (w.data.copy(), w.data.astype(np.float32), w.data.dot(w.data),
                      w.data.argmax(), w.data.flatten(), np.copy(w.data)):
        assert type(new_array) in (np.ndarray, np.float64, np.intp), type(new_array)
    loss = (w * w).sum()
    copy = w.data.copy()
    copy[...] = 0.0  # writing a copy is not writing w
    loss.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])
    assert repr(w.data).startswith("array(")
