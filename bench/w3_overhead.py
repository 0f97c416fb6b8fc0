"""W3: per-op overhead. A chain of 1000 ops (x*0.5, +0.1, tanh, repeated), forward and
backward, on a 0-d and on a (64,) tensor. Reported per op (forward + backward).

micrograd's ``Value`` has no ``tanh``; the bench gives it one in micrograd's own style
(a closure for the local backward), so every library runs the same chain.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import autograd as ag

from .common import Table, best_time

N_OPS = 999  # 333 rounds of (mul, add, tanh)
ROUNDS = N_OPS // 3


def chainrule_chain(x0):
    x = ag.Tensor(x0, requires_grad=True)
    y = x
    for _ in range(ROUNDS):
        y = (y * 0.5 + 0.1).tanh()
    y.backward(np.ones_like(y.data))
    return x.grad


def numpy_chain(x0):
    """Hand-written forward (keeping what backward needs) and backward."""
    y = np.array(x0, dtype=np.float64)
    outs = []
    for _ in range(ROUNDS):
        y = np.tanh(y * 0.5 + 0.1)
        outs.append(y)
    g = np.ones_like(y)
    for t in reversed(outs):
        g = g * (1 - t * t) * 0.5
    return g


def _micrograd_value():
    try:
        from micrograd.engine import Value
    except ImportError:
        return None
    if not hasattr(Value, "tanh"):
        def tanh(self):
            t = math.tanh(self.data)
            out = Value(t, (self,), "tanh")

            def _backward():
                self.grad += (1 - t * t) * out.grad

            out._backward = _backward
            return out

        Value.tanh = tanh
    return Value


def micrograd_chain(Value):
    # micrograd sorts its graph recursively: a 999-op chain needs a higher limit
    if sys.getrecursionlimit() < 10_000:
        sys.setrecursionlimit(10_000)
    x = Value(0.3)
    y = x
    for _ in range(ROUNDS):
        y = (y * 0.5 + 0.1).tanh()
    y.backward()
    return x.grad


def torch_chain(torch, x0):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(ROUNDS):
        y = torch.tanh(y * 0.5 + 0.1)
    y.backward(torch.ones_like(y))
    return x.grad


def run() -> list:
    try:
        import torch
    except ImportError:
        torch = None
    Value = _micrograd_value()
    tables = []
    for label, x0 in (("0-d", 0.3), ("(64,)", np.full(64, 0.3))):
        t = Table(f"W3 per-op overhead, {label} tensor: 999-op chain, forward + backward",
                  baseline="PyTorch CPU" if torch is not None else "NumPy by hand",
                  unit="per op")
        t.add("chainrule", best_time(lambda: chainrule_chain(x0), repeat=5) / N_OPS)
        t.add("NumPy by hand", best_time(lambda: numpy_chain(x0), repeat=5) / N_OPS)
        if torch is not None:
            xt = x0 if np.ndim(x0) == 0 else x0.copy()
            t.add("PyTorch CPU", best_time(lambda: torch_chain(torch, xt), repeat=5) / N_OPS)
        if label == "0-d" and Value is not None:
            t.add("micrograd", best_time(lambda: micrograd_chain(Value), repeat=5) / N_OPS)
            t.target("0-d: chainrule no slower than micrograd per op",
                     t.rows["chainrule"] <= t.rows["micrograd"])
        if label != "0-d" and torch is not None:
            t.target("(64,): chainrule at most 0.55× PyTorch per op",
                     t.ratio("chainrule", "PyTorch CPU") <= 0.55)
        tables.append(t)
    return tables
