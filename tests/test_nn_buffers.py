"""Module buffers: state that is saved and loaded with the weights but never trained
(a batch norm's running statistics), as PyTorch's ``register_buffer``."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn


class RunningMean(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.linear = nn.Linear(n, n)
        self.register_buffer("running_mean", np.zeros(n))
        self.register_buffer("num_batches_tracked", np.array(0))
        self.register_buffer("scratch", np.ones(n), persistent=False)

    def forward(self, x):
        self.running_mean = 0.9 * self.running_mean.data + 0.1 * x.data.mean(axis=0)
        self.num_batches_tracked = self.num_batches_tracked.data + 1
        return self.linear(x)


def test_buffers_are_state_but_not_parameters():
    model = nn.Sequential(RunningMean(3))
    assert [n for n, _ in model.named_parameters()] == ["0.linear.weight", "0.linear.bias"]
    assert [n for n, _ in model.named_buffers()] == [
        "0.running_mean", "0.num_batches_tracked", "0.scratch"]
    # PyTorch's order: a module's own parameters and persistent buffers, then its
    # children's (what torch.nn gives for the same module)
    assert list(model.state_dict()) == ["0.running_mean", "0.num_batches_tracked",
                                        "0.linear.weight", "0.linear.bias"]
    assert all(not b.requires_grad for b in model.buffers())


def test_an_optimiser_never_moves_a_buffer():
    model = RunningMean(2)
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    x = ag.Tensor(np.ones((4, 2)))
    model(x).sum().backward()
    opt.step()
    np.testing.assert_allclose(model.running_mean.data, [0.1, 0.1])
    assert model.num_batches_tracked.item() == 1
    assert model.num_batches_tracked.dtype.kind == "i"


def test_buffers_round_trip_through_state_dict_and_files(tmp_path):
    a, b = RunningMean(3), RunningMean(3)
    a(ag.Tensor(np.arange(6.0).reshape(2, 3)))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.running_mean.data, a.running_mean.data)
    assert b.num_batches_tracked.item() == 1
    path = tmp_path / "m.npz"
    nn.save(a, path)
    c = RunningMean(3)
    c.load_state_dict(nn.load(path))
    np.testing.assert_array_equal(c.running_mean.data, a.running_mean.data)


def test_a_missing_buffer_is_a_missing_key():
    state = RunningMean(3).state_dict()
    del state["running_mean"]
    with pytest.raises(nn.StateDictError, match="missing key.*running_mean"):
        RunningMean(3).load_state_dict(state)


def test_buffer_names_and_values_are_checked():
    m = RunningMean(2)
    with pytest.raises(KeyError, match="already has an attribute 'linear'"):
        m.register_buffer("linear", np.zeros(2))
    with pytest.raises(KeyError, match="without '.'"):
        m.register_buffer("a.b", np.zeros(2))
    with pytest.raises(TypeError, match="is a buffer"):
        m.running_mean = nn.Parameter(np.zeros(2))
    m.register_buffer("absent", None)
    assert m.absent is None and "absent" not in m.state_dict()
    del m.running_mean
    assert "running_mean" not in m.state_dict()
