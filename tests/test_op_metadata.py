"""Op metadata lives on the op: rule, symbol, infix and hint are class attributes that
the drawings, the step-through and anomaly mode read, for built-in and custom ops alike."""

from __future__ import annotations

import re

import numpy as np
import pytest

import autograd as ag
import nn
from autograd import ops


class SmoothMax(ag.Function):
    """log(e^a + e^b), computed naively (it overflows for inputs above about 709)."""

    rule = "d(a⊕b)/da = e^a / (e^a + e^b),  d(a⊕b)/db = e^b / (e^a + e^b)"
    symbol = "⊕"
    infix = "⊕"
    hint = "the naive log(e^a + e^b) overflows above about 709: use np.logaddexp"

    @staticmethod
    def forward(ctx, a, b):
        out = np.log(np.exp(a) + np.exp(b))
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        return grad * np.exp(a - out), grad * np.exp(b - out)


class Complement(ag.Function):
    """1 - a, written as a prefix operator."""

    rule = "d(1 - a)/da = -1"
    infix = "~"

    @staticmethod
    def forward(ctx, a):
        return 1.0 - a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class HalfSquareFunction(ag.Function):
    """a² / 2 with no metadata at all: everything falls back to the class name."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return 0.5 * a * a

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0]


def _graph():
    a = ag.Tensor([1.0, 2.0], requires_grad=True, name="a")
    b = ag.Tensor([0.5, 3.0], requires_grad=True, name="b")
    m = SmoothMax.apply(a, b)
    m.name = "m"
    c = Complement.apply(m)
    c.name = "c"
    h = HalfSquareFunction.apply(c)
    h.name = "h"
    return (a, b), h.sum()


def test_custom_op_is_drawn_with_its_symbol():
    _, loss = _graph()
    src = ag.draw_graph(loss).source
    assert 'label="⊕"' in src and "tooltip=SmoothMax" in src
    assert 'label="half\nsquare"' in src  # no symbol: the class name in words
    # an infix-only op has no symbol of its own: its class name is drawn
    assert "label=complement" in src


def test_custom_op_is_explained_step_by_step():
    (a, b), loss = _graph()
    trace = ag.trace_backward(loss)
    steps = {s.op: s for s in trace if s.kind == "op"}
    smooth = steps["SmoothMax"]
    assert smooth.expression == "m = a ⊕ b"  # infix between the operands
    assert smooth.rule == SmoothMax.rule
    assert f"local rule (SmoothMax): {SmoothMax.rule}" in smooth.describe()
    assert steps["Complement"].expression == "c = ~m"  # one operand: a prefix
    assert steps["HalfSquareFunction"].expression == "h = half_square(c)"
    assert steps["HalfSquareFunction"].rule is None
    # and the gradients are the ones backward gives
    ag.gradcheck(lambda a, b: _smooth_loss(a, b), [a, b])
    np.testing.assert_allclose(a.grad, -(1 - np.logaddexp(a.data, b.data))
                               * np.exp(a.data - np.logaddexp(a.data, b.data)))


def _smooth_loss(a, b):
    return HalfSquareFunction.apply(Complement.apply(SmoothMax.apply(a, b))).sum()


def test_custom_op_hint_in_the_anomaly_message():
    big = ag.Tensor([800.0, 1.0], requires_grad=True, name="big")
    b = ag.Tensor([0.5, 3.0], requires_grad=True, name="b")
    with ag.detect_anomaly(), np.errstate(over="ignore"):
        with pytest.raises(ag.AnomalyError) as info:
            SmoothMax.apply(big, b)
    msg = str(info.value)
    assert info.value.op == "SmoothMax"
    assert "op:      SmoothMax (⊕)" in msg
    assert f"Hint: {SmoothMax.hint}." in msg
    # an op without a hint gets no hint line
    x = ag.Tensor([1e200], requires_grad=True)
    with ag.detect_anomaly(), np.errstate(over="ignore"):
        with pytest.raises(ag.AnomalyError) as info:
            HalfSquareFunction.apply(x)
    assert "Hint" not in str(info.value) and "(half square)" in str(info.value)


@pytest.mark.parametrize("name", ops.__all__)
def test_every_builtin_op_declares_its_rule_and_symbol(name):
    cls = getattr(ops, name)
    assert isinstance(cls.rule, str) and cls.rule, name
    assert isinstance(cls.symbol, str) and cls.symbol, name


def test_builtin_metadata_reaches_the_pictures():
    x = ag.Tensor([4.0, 9.0], requires_grad=True, name="x")
    y = (-(x.sqrt() / 2.0)).sum()
    trace = ag.trace_backward(y)
    exprs = [s.expression for s in trace if s.kind == "op"]
    # results named after their short expressions, in parentheses where they must be
    assert exprs == ["L = Σ(-(√(x)/2))", "-(√(x)/2)", "√(x) / 2", "√(x)"]
    src = ag.draw_graph(y).source
    for sym in ("Σ", "−x", "÷", "√"):
        assert f'label="{sym}"' in src
    z = ag.Tensor([-1.0], requires_grad=True)
    with ag.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(ag.AnomalyError, match=re.escape(f"Hint: {ops.Sqrt.hint}.")):
            z.sqrt()


def test_nn_ops_are_drawn_by_their_names():
    layer = nn.Linear(3, 2)
    x = ag.Tensor(np.ones((4, 3)))
    loss = nn.functional.cross_entropy(layer(x), np.array([0, 1, 1, 0]))
    src = ag.draw_graph(loss).source
    assert "label=linear" in src and 'label="nll loss"' in src
