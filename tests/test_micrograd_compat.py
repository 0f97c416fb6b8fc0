"""``autograd.micrograd``: micrograd's code, unchanged but for its imports, on chainrule.

Every check runs the same code twice, once on micrograd 0.1.0 itself and once on the
compatibility layer, and compares the numbers (values and gradients, to 1e-12).
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import test_micrograd_parity as parity

import autograd as ag
from autograd import micrograd as ours

micrograd_engine = pytest.importorskip("micrograd.engine")
micrograd_nn = pytest.importorskip("micrograd.nn")

IMPLEMENTATIONS = {
    "micrograd": (micrograd_engine.Value, micrograd_nn.MLP),
    "chainrule": (ours.Value, ours.MLP),
}


def close(a, b):
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


# micrograd's own tests (test/test_engine.py), on its scalars instead of torch's: the
# expressions are test_micrograd_parity's, which runs them on Tensors against torch
def sanity_check(Value):
    x = Value(-4.0)
    y = parity.sanity_check(x)
    y.backward()
    return [x, y], [x.grad]


def more_ops(Value):
    a, b = Value(-4.0), Value(2.0)
    g = parity.more_ops(a, b)
    g.backward()
    return [a, b, g], [a.grad, b.grad]


@pytest.mark.parametrize("expression", [sanity_check, more_ops])
def test_micrograds_own_tests_give_micrograds_numbers(expression):
    theirs_values, theirs_grads = expression(micrograd_engine.Value)
    our_values, our_grads = expression(ours.Value)
    assert all(isinstance(v, ours.Value) for v in our_values)
    assert all(isinstance(g, float) for g in our_grads)
    for t, o in zip(theirs_values, our_values):
        assert close(o.data, t.data)
    for t, o in zip(theirs_grads, our_grads):
        assert close(o, t)


def test_value_interface():
    Value = ours.Value
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    e = a * b
    e.label = "e"
    L = (e + 10.0).relu() ** 2 / 4 - b.exp() + a.tanh()
    assert isinstance(L, Value) and isinstance(L.data, float)
    assert e._prev == {a, b} and e._op == "*" and a._op == "" and a._prev == set()
    assert (e + 1)._op == "+" and (e**2)._op == "**2" and e.relu()._op == "ReLU"
    assert a.grad == 0.0  # before backward, as in micrograd
    L.backward()
    expected_e = (e.data + 10.0) / 2
    assert close(e.grad, expected_e)  # intermediates keep their gradient
    assert close(a.grad, expected_e * b.data + 1 - np.tanh(2.0) ** 2)
    assert close(b.grad, expected_e * a.data - np.exp(-3.0))
    assert repr(a).startswith("Value(data=2.0, grad=")
    a.data += 1.0
    assert a.data == 3.0
    for v in (a, b):
        v.grad = 0
    assert a.grad == 0.0
    with pytest.raises(ValueError, match="one number"):
        Value([1.0, 2.0])


def _moons_run(Value, MLP, steps=4, n=24):
    """micrograd's demo (demo.ipynb): a 2-16-16-1 MLP on make_moons with an SVM
    max-margin loss and L2 regularisation, plain SGD; its code as it is written."""
    from sklearn.datasets import make_moons

    random.seed(1337)
    np.random.seed(1337)
    X, y = make_moons(n_samples=n, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])

    def loss():
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    history = []
    for k in range(steps):
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, acc))
    return history, [p.data for p in model.parameters()]


def test_moons_training_matches_micrograd():
    theirs, theirs_params = _moons_run(*IMPLEMENTATIONS["micrograd"])
    ours_, our_params = _moons_run(*IMPLEMENTATIONS["chainrule"])
    assert len(our_params) == len(theirs_params) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1
    for (tl, ta), (ol, oa) in zip(theirs, ours_):
        assert close(ol, tl) and oa == ta
    assert theirs[-1][0] < theirs[0][0]  # it learns
    np.testing.assert_allclose(our_params, theirs_params, rtol=1e-12, atol=1e-12)


def test_modules_interface():
    random.seed(0)
    model = ours.MLP(3, [4, 4, 1])
    params = model.parameters()
    assert isinstance(params, list) and len(params) == 3 * 4 + 4 + 4 * 4 + 4 + 4 + 1
    assert repr(model).startswith("MLP of [Layer of [ReLUNeuron(3)")
    out = model([1.0, -2.0, 0.5])
    assert isinstance(out, ours.Value)
    assert len(ours.Layer(3, 2)([1.0, 2.0, 3.0])) == 2
    out.backward()
    assert any(p.grad != 0 for p in params)
    model.zero_grad()
    assert all(p.grad == 0 for p in params)


def _lecture_graph():
    Value = ours.Value
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return [a, b, c, e, d, f, L]


def test_draw_graph_shows_data_and_grad_in_every_box():
    values = _lecture_graph()
    values[-1].backward()
    source = ag.draw_graph(values[-1]).source.replace("&#160;", " ")
    for v in values:
        assert f">{v.label}<" in source
    data = re.findall(r">data (-?[\d.]+)<", source)
    grads = re.findall(r">grad (-?[\d.]+)<", source)
    assert sorted(map(float, data)) == sorted(v.data for v in values)
    assert sorted(map(float, grads)) == sorted(v.grad for v in values)


def test_trace_backward_steps_through_a_value_graph():
    values = _lecture_graph()
    trace = ag.trace_backward(values[-1])
    grads = trace.leaf_grads()
    assert grads["a"] == pytest.approx(6.0) and grads["f"] == pytest.approx(4.0)
    e = values[3]
    assert trace.grad(e) == pytest.approx(-2.0)
    assert values[0].grad == pytest.approx(6.0)


def test_the_lectures_manual_backward_by_hand():
    # the lecture first backpropagates by hand: o.grad = 1, then _backward() per node in
    # reverse topological order; the same gradients as backward() on a fresh graph
    def topo(root):
        order, seen = [], set()

        def build(v):
            if v not in seen:
                seen.add(v)
                for child in v._prev:
                    build(child)
                order.append(v)

        build(root)
        return order

    by_hand = _lecture_graph()
    by_hand[-1].grad = 1.0
    for node in reversed(topo(by_hand[-1])):
        node._backward()
    engine = _lecture_graph()
    engine[-1].backward()
    assert [v.grad for v in by_hand] == [v.grad for v in engine]
    assert by_hand[0].grad == 6.0
