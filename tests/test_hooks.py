"""Hook handles: one class, ``ag.RemovableHandle``, for Tensor and Module hooks."""

import numpy as np
import pytest

import autograd as ag
import nn


def _tensor_hook():
    """A leaf, a hook on it that doubles its gradient, and a function computing its grad."""
    x = ag.Tensor([1.0, 2.0], requires_grad=True)

    def grad():
        x.zero_grad()
        x.sum().backward()
        return x.grad.tolist()

    return x, (lambda g: g * 2.0), grad


def _module_hook():
    """A layer, a forward hook on it that negates its output, and a function calling it."""
    lin = nn.Linear(2, 2, rng=0)
    x = ag.Tensor(np.ones((1, 2)))
    return lin, (lambda mod, inp, out: -out), (lambda: lin(x).data.tolist())


@pytest.mark.parametrize("make", [_tensor_hook, _module_hook], ids=["tensor", "module"])
def test_hook_handles_are_one_shared_class(make):
    obj, hook, run = make()
    register = obj.register_hook if isinstance(obj, ag.Tensor) else obj.register_forward_hook
    plain = run()
    handle = register(hook)
    assert type(handle) is ag.RemovableHandle
    hooked = run()
    assert hooked != plain
    handle.remove()
    handle.remove()  # removing twice is harmless
    assert run() == plain
    # as a context manager, the hook is on inside the block only
    with register(hook) as h:
        assert isinstance(h, ag.RemovableHandle)
        assert run() == hooked
    assert run() == plain


def test_handle_ids_are_distinct_and_removal_leaves_other_hooks():
    x = ag.Tensor([1.0], requires_grad=True)
    a = x.register_hook(lambda g: g * 2.0)
    b = x.register_hook(lambda g: g * 3.0)
    assert a.id != b.id
    a.remove()
    x.sum().backward()
    assert x.grad.tolist() == [3.0]
    assert "RemovableHandle" in repr(b)
