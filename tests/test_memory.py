"""The graph is freed by reference counting alone: no cycles, no leaks.

The cycle collector is switched off while the graphs are built and dropped, so any
memory that is released was released by reference counting.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

import numpy as np
import pytest

import autograd as ag

# Run in a fresh interpreter: tracemalloc and the cycle collector see every thread of
# a process, and threads left by other tests (a notebook kernel's client, a browser
# driver) would be measured too.
_MEASURE = """
import gc, json, sys, tracemalloc
import numpy as np
import autograd as ag

steps, keep = int(sys.argv[1]), sys.argv[2] == "keep"
rng = np.random.default_rng(0)
x = ag.Tensor(rng.standard_normal((16, 8)))
w = ag.Tensor(rng.standard_normal((8, 32)), requires_grad=True)
b = ag.Tensor(rng.standard_normal(32), requires_grad=True)
kept = []

def step():
    loss = ((x @ w + b).tanh() * 0.5).sum()
    loss.backward(retain_graph=keep)
    if keep:
        kept.append(loss)  # a leak of every graph, on purpose
    w.grad = None

gc.collect()
gc.disable()
tracemalloc.start()
for _ in range(500):  # warm-up: caches, interned objects, first .grad arrays
    step()
base, _ = tracemalloc.get_traced_memory()
for _ in range(steps):
    step()
current, _ = tracemalloc.get_traced_memory()
garbage = gc.collect()  # cyclic garbage made by the loop, if any
print(json.dumps({"grew": current - base, "garbage": garbage,
                  "b_grad": b.grad is not None}))
"""


def _measure(steps: int, keep: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(steps),
                          "keep" if keep else "drop"],
                         capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_10k_iterations_keep_memory_flat():
    m = _measure(10_000, keep=False)
    # one leaked graph per iteration would be several KB each: tens of MB over the loop
    assert m["grew"] < 1_000_000, f"grew by {m['grew']} bytes"
    assert m["garbage"] < 100, f"the loop left {m['garbage']} objects in reference cycles"
    assert m["b_grad"]  # b accumulated on purpose: one array, not one per step


def test_leak_would_be_detected():
    """The measurement above sees a leak of the same graphs (the test can fail)."""
    m = _measure(200, keep=True)
    assert m["grew"] > 200 * 16 * 32 * 8  # at least one (16, 32) array per graph


def _graph_refs():
    x = ag.Tensor(np.ones((3, 4)), requires_grad=True)
    w = ag.Tensor(np.full((4, 2), 0.5), requires_grad=True)
    h = (x @ w).sigmoid()
    y = (h * h).sum()
    refs = [weakref.ref(t) for t in (h, y)] + [weakref.ref(h.grad_fn), weakref.ref(y.grad_fn)]
    return x, w, y, refs


@pytest.mark.parametrize("mode", ["no_backward", "backward", "retain_graph", "steps"])
def test_graph_unreachable_after_root_is_dropped(mode):
    gc.collect()
    gc.disable()
    try:
        x, w, y, refs = _graph_refs()
        if mode == "backward":
            y.backward()
        elif mode == "retain_graph":
            y.backward(retain_graph=True)
        elif mode == "steps":
            steps = list(ag.backward_steps(y))
            assert steps
            del steps
        assert all(r() is not None for r in refs)  # alive while the root is held
        del y
        dead = [r() is None for r in refs]
    finally:
        gc.enable()
    assert all(dead), f"still alive without the cycle collector: {dead}"
    # the leaves are the caller's and stay usable
    assert x.shape == (3, 4) and w.shape == (4, 2)
    if mode in ("backward", "retain_graph", "steps"):
        assert x.grad is not None and w.grad is not None


def test_saved_arrays_released_after_backward():
    gc.disable()
    try:
        x = ag.Tensor(np.linspace(-1.0, 1.0, 1000), requires_grad=True)
        h = x.relu()  # saves a fresh (1000,) mask for backward
        y = h.sum()
        (mask,) = h.grad_fn.saved
        assert mask.shape == (1000,)
        ref = weakref.ref(mask)
        del mask
        assert ref() is not None
        y.backward()
        assert ref() is None  # freed, although the graph itself is still held
        assert h.grad_fn is not None
    finally:
        gc.enable()


def test_hooks_do_not_keep_graphs_alive():
    gc.disable()
    try:
        x = ag.Tensor(np.ones(3), requires_grad=True)
        h = x * 2.0
        handle = h.register_hook(lambda g: g * 1.0)
        y = h.sum()
        y.backward()
        ref = weakref.ref(h)
        del h, y, handle
        assert ref() is None
    finally:
        gc.enable()
