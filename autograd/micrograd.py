"""micrograd's interface on chainrule's engine: bring the lecture's code, get the pictures.

micrograd (Andrej Karpathy's tiny autograd and its lecture) is where many people first
meet backprop. Its code runs here after changing the imports::

    from autograd.micrograd import Value, Neuron, Layer, MLP   # was: from micrograd...

    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    e = a * b; e.label = "e"
    L = (e + 10.0).relu(); L.label = "L"
    L.backward()
    a.grad                      # -3.0, a Python float as in micrograd
    ag.draw_graph(L)            # data and grad in every box

or, on a graph not yet backpropagated, ``ag.trace_backward(L)`` instead of
``L.backward()``: it runs the backward pass itself, one step at a time.

A ``Value`` *is* a 0-d ``Tensor`` (a float64 scalar that requires grad): its operators
run chainrule's ops and its ``backward()`` runs chainrule's engine. What differs from a
plain Tensor is only what micrograd's users rely on: ``data`` and ``grad`` read as Python
floats (``grad`` is 0.0 until a gradient arrives; every ``Value`` keeps its gradient, as
in micrograd, not only the leaves), ``label``, ``_prev`` and ``_op`` describe the graph,
``_backward()`` does one node's step by hand, and ``backward()`` may run again over the
same graph (gradients add up, as in micrograd).

``Neuron``, ``Layer`` and ``MLP(nin, nouts)`` have micrograd's constructors,
``parameters()`` (a list of ``Value``) and ``zero_grad()``, and draw their weights from
``random.uniform(-1, 1)`` in the same order, so a seeded run gives micrograd's numbers.
For real work, ``nn.MLP`` computes a layer as one matrix product instead of a Value per
weight.
"""

from __future__ import annotations

import random

import numpy as np

from .engine import fit_gradient, local_backward
from .tensor import Tensor

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP"]

# micrograd's names for the ops it draws (its ``_op``)
_OP_NAMES = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Neg": "-", "Relu": "ReLU",
             "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sigmoid": "sigmoid"}


class Value(Tensor):
    """A scalar that remembers how it was made: micrograd's ``Value`` as a 0-d Tensor.

    ``Value(data, _children=(), _op='', label='')``. ``_children`` and ``_op`` are
    accepted for code written against micrograd's signature; the graph itself is the one
    the engine records when Values are combined by operators.
    """

    __slots__ = ()  # a Value is a Tensor: same layout, a few properties more

    def __init__(self, data, _children=(), _op: str = "", label: str = ""):
        if isinstance(data, Tensor):
            data = data._data
        value = np.asarray(data, dtype=np.float64)
        if value.shape != ():
            raise ValueError(f"Value: expected one number, got an array of shape "
                             f"{value.shape}; use ag.Tensor for arrays")
        super().__init__(value, requires_grad=True, name=label or None)

    # -- micrograd's attributes ---------------------------------------------------------
    @property
    def data(self) -> float:
        """The value, a Python float (assign to change it: ``p.data += -lr * p.grad``)."""
        return float(self._data)

    @data.setter
    def data(self, value) -> None:
        Tensor.data.fset(self, np.float64(value._data if isinstance(value, Tensor) else value))

    @property
    def grad(self) -> float:
        """dL/d(this value) after ``L.backward()``, a Python float (0.0 before)."""
        g = self.__dict__.get("_grad")
        return 0.0 if g is None else float(g)

    @grad.setter
    def grad(self, value) -> None:  # the engine and zero_grad() assign it
        self.__dict__["_grad"] = None if value is None else np.float64(value)

    @property
    def label(self) -> str:
        """The name drawn in this value's box (``Tensor.name``)."""
        return self.name or ""

    @label.setter
    def label(self, text: str) -> None:
        self.name = text or None

    @property
    def _prev(self) -> set:
        """The Values this one was computed from."""
        ctx = self._ctx
        return set() if ctx is None else {p for p in ctx.parents if isinstance(p, Tensor)}

    @property
    def _op(self) -> str:
        """The op that made this value, in micrograd's spelling ('+', '*', '**2', 'ReLU'),
        or '' for a leaf."""
        ctx = self._ctx
        if ctx is None:
            return ""
        name = type(ctx).__name__
        if name == "Pow" and not isinstance(ctx.parents[1], Tensor):
            return f"**{ctx.parents[1]:g}"
        return _OP_NAMES.get(name, name.lower())

    def _backward(self) -> None:
        """micrograd's one-node step, as the lecture calls it by hand: send this value's
        ``grad`` through its op's local derivative (the op's own ``backward``) to the
        values it was made from, adding to their ``grad``."""
        ctx = self._ctx
        if ctx is None:
            return
        sent = local_backward(self, np.float64(self.grad))
        for p, g in zip(ctx.parents, sent):
            if g is not None and isinstance(p, Value):
                p.grad = p.grad + float(fit_gradient(ctx, p, g))

    def backward(self, gradient=None, retain_graph: bool = True) -> None:
        """Fill ``.grad`` of every Value this one depends on. As in micrograd, the graph is
        kept, so it may run again (gradients then add up: ``zero_grad()`` in between)."""
        Tensor.backward(self, gradient, retain_graph=retain_graph)

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"


def _as_value(t: Tensor) -> Value:
    """An op's result as a Value that keeps its gradient (micrograd keeps every one)."""
    t.__class__ = Value
    t.retain_grad()
    return t


def _lift(name: str):
    method = getattr(Tensor, name)

    def op(self, *args):
        return _as_value(method(self, *args))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``Tensor.{name}`` with a Value as result."
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__",
              "relu", "tanh", "exp", "log", "sigmoid"):
    setattr(Value, _name, _lift(_name))
del _name


# ------------------------------------------------------------------------------- modules


class Module:
    """micrograd's base class: ``parameters()`` and ``zero_grad()``."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list:
        return []


class Neuron(Module):
    """``nin`` weights from U(-1, 1) and a bias 0; the output ``relu(w·x + b)``, or
    ``w·x + b`` with ``nonlin=False``."""

    def __init__(self, nin: int, nonlin: bool = True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = self.b
        for wi, xi in zip(self.w, x):
            act = act + wi * xi
        return act.relu() if self.nonlin else act

    def parameters(self) -> list:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same inputs; one output is returned as a Value, several
    as a list (as in micrograd)."""

    def __init__(self, nin: int, nout: int, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """``MLP(nin, nouts)``: layers of sizes ``nouts``, ReLU after all but the last."""

    def __init__(self, nin: int, nouts: list):
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != last)
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
