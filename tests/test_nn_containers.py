"""ModuleList and ModuleDict register their modules as PyTorch's do: same state_dict
keys for the same architecture, parameters found by optimisers."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn


def _build(self, lib):
    """The same architecture in either library (``lib`` is ``nn`` or ``torch.nn``)."""
    self.blocks = lib.ModuleList([lib.Linear(3, 3) for _ in range(2)])
    self.heads = lib.ModuleDict({"a": lib.Linear(3, 1), "b": lib.Linear(3, 2)})


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        _build(self, nn)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return {name: head(x) for name, head in self.heads.items()}


def test_state_dict_keys_and_shapes_equal_pytorchs():
    torch = pytest.importorskip("torch")

    class TorchBlocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            _build(self, torch.nn)

    ours = {k: v.shape for k, v in Blocks().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in TorchBlocks().state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_parameters_train_through_the_containers():
    model = Blocks()
    assert len(list(model.parameters())) == 8
    out = model(ag.Tensor(np.ones((4, 3))))
    (out["a"].sum() + out["b"].sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_module_list_behaves_like_a_list():
    layers = nn.ModuleList()
    layers.append(nn.Linear(2, 2)).extend([nn.ReLU(), nn.Linear(2, 1)])
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear)
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 2
    layers[1] = nn.Tanh()
    assert isinstance(layers[1], nn.Tanh)
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                          "2.bias"]
    with pytest.raises(TypeError, match="ModuleList: item 3 is a builtin_function_or_method"):
        layers.append(print)
    with pytest.raises(IndexError, match="ModuleList: index 7 out of range"):
        layers[7]


def test_module_dict_behaves_like_a_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    assert list(heads) == ["a", "b"] and "b" in heads and len(heads) == 2
    del heads["a"]
    assert list(heads.keys()) == ["b"]
    assert [n for n, _ in heads.named_parameters()] == ["b.weight", "b.bias"]
    with pytest.raises(KeyError, match="no module 'zz'; it has 'b'"):
        heads["zz"]
    with pytest.raises(KeyError, match="without '.'"):
        heads["x.y"] = nn.ReLU()
