"""Grad mode, anomaly mode and name scopes belong to the thread that sets them
(PyTorch's semantics), and ``set_grad_enabled`` works as a call, a ``with`` and a
decorator."""

from __future__ import annotations

import threading

import numpy as np

import autograd as ag


def _records() -> bool:
    return (ag.Tensor([1.0], requires_grad=True) * 2.0).requires_grad


def _in_thread(fn):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("value", fn()))
    t.start()
    t.join()
    return result["value"]


def test_no_grad_in_one_thread_leaves_other_threads_recording():
    inside = threading.Event()
    done = threading.Event()
    seen = {}

    def worker():
        with ag.no_grad():
            seen["worker"] = _records()
            inside.set()
            done.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    seen["main"] = _records()  # while the worker sits inside no_grad()
    done.set()
    t.join()
    assert seen == {"worker": False, "main": True}


def test_racing_threads_entering_and_leaving_no_grad_leave_grad_mode_on():
    """Thread A enters no_grad, then B; A leaves, then B. With one process-wide flag,
    B's exit restores the 'off' it found on entering, and recording stays off for every
    thread; per-thread modes leave it on."""
    step = threading.Barrier(2)
    results = []

    def first():
        for _ in range(20):
            step.wait()
            with ag.no_grad():
                step.wait()  # A is inside
                step.wait()  # B is inside
            step.wait()  # A has left
            step.wait()  # B has left
            results.append(ag.is_grad_enabled())

    def second():
        for _ in range(20):
            step.wait()
            step.wait()  # A is inside
            with ag.no_grad():
                step.wait()  # B is inside
                step.wait()  # A has left
            step.wait()  # B has left
            results.append(ag.is_grad_enabled())

    threads = [threading.Thread(target=fn) for fn in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40 and all(results)
    assert ag.is_grad_enabled() and _records()


def test_a_new_thread_starts_with_default_modes():
    with ag.no_grad(), ag.name_scope("outer"), ag.detect_anomaly():
        state = _in_thread(lambda: (ag.is_grad_enabled(), ag.current_scope(), _records()))
    assert state == (True, "", True)


def test_name_scope_and_anomaly_mode_are_per_thread():
    def worker():
        with ag.name_scope("layer"):
            y = ag.Tensor([1.0], requires_grad=True) * 2.0
        return y.grad_fn.scope, ag.current_scope()

    with ag.name_scope("main"):
        assert _in_thread(worker) == ("layer", "")
        assert ag.current_scope() == "main"


def test_name_scope_as_a_decorator_nests_and_restores_on_every_call():
    """One decorator object serves every call: a recursive call nests its scope, and
    each call puts back the scope it found (a shared object would restore the scope of
    the call that entered last, and leave it open)."""
    seen = []

    @ag.name_scope("block", "Block")
    def f(n):
        if n:
            f(n - 1)
        seen.append(ag.current_scope())
        y = ag.Tensor([1.0], requires_grad=True) * 2.0
        return y.grad_fn.scope_kinds

    kinds = f(2)
    assert seen == ["block.block.block", "block.block", "block"]
    assert kinds == (("block", "Block"),)
    assert ag.current_scope() == ""


def test_set_grad_enabled_as_a_plain_call():
    try:
        ag.set_grad_enabled(False)
        assert not ag.is_grad_enabled() and not _records()
        ag.set_grad_enabled(True)
        assert ag.is_grad_enabled() and _records()
    finally:
        ag.set_grad_enabled(True)


def test_set_grad_enabled_as_a_context_and_a_decorator():
    with ag.set_grad_enabled(False):
        assert not _records()
        with ag.set_grad_enabled(True):
            assert _records()
        assert not _records()
    assert _records()

    @ag.set_grad_enabled(False)
    def evaluate():
        return _records()

    assert ag.is_grad_enabled()  # decorating does not switch the mode
    assert evaluate() is False
    assert ag.is_grad_enabled()

    @ag.no_grad()
    def recursive(n):
        return _records() if n == 0 else recursive(n - 1)

    assert recursive(3) is False and ag.is_grad_enabled()


def test_a_decorated_function_called_from_threads_at_once():
    barrier = threading.Barrier(2)

    @ag.no_grad()
    def inside():
        barrier.wait()
        return ag.is_grad_enabled()

    out = []
    threads = [threading.Thread(target=lambda: out.append(inside())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [False, False]
    assert ag.is_grad_enabled()


def test_modes_restored_after_an_exception():
    try:
        with ag.no_grad():
            raise KeyError
    except KeyError:
        pass
    assert ag.is_grad_enabled()
    np.testing.assert_equal(_records(), True)
