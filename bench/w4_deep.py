"""W4: deep graphs. A chain of n tanh ops on a 0-d tensor; backward timed on its own.

micrograd is left out: its recursive topological sort cannot walk 10,000 nodes.
"""

from __future__ import annotations

import numpy as np

import autograd as ag

from .common import Table, best_time

DEPTHS = (1_000, 10_000, 100_000)


def _chainrule(n):
    def build():
        x = ag.Tensor(0.3, requires_grad=True)
        y = x
        for _ in range(n):
            y = y.tanh()
        return x, y

    def backward(state):
        x, y = state
        y.backward(retain_graph=True)

    return build, backward


def _numpy(n):
    def build():
        y = np.float64(0.3)
        outs = []
        for _ in range(n):
            y = np.tanh(y)
            outs.append(y)
        return outs

    def backward(outs):
        g = np.float64(1.0)
        for t in reversed(outs):
            g = g * (1 - t * t)
        return g

    return build, backward


def _torch(torch, n):
    def build():
        x = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(n):
            y = torch.tanh(y)
        return x, y

    def backward(state):
        x, y = state
        y.backward(retain_graph=True)

    return build, backward


def _time_backward(pair, repeat):
    build, backward = pair
    state = build()
    return best_time(lambda: backward(state), repeat=repeat, min_time=0.0)


def run() -> list:
    try:
        import torch
    except ImportError:
        torch = None
    tables = []
    for n in DEPTHS:
        repeat = 5 if n < 100_000 else 3
        t = Table(f"W4 deep chain: backward through {n:,} tanh ops (0-d)",
                  baseline="PyTorch CPU" if torch is not None else "NumPy by hand",
                  unit="backward")
        t.add("chainrule", _time_backward(_chainrule(n), repeat))
        t.add("NumPy by hand", _time_backward(_numpy(n), repeat))
        if torch is not None:
            t.add("PyTorch CPU", _time_backward(_torch(torch, n), repeat))
            if n == 100_000:
                t.target("backward of 1e5 ops at most 1/3 of PyTorch's time",
                         t.ratio("chainrule", "PyTorch CPU") <= 1 / 3)
        tables.append(t)
    return tables
