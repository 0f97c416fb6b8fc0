"""The traps of a learner's first hour: each one now says what happened and what to do.

- (n,) with (n, 1) broadcasts into (n, n) silently: a warning, once per line;
- ``backward()`` then ``trace_backward()``: the error and the trace explain it;
- ``draw_graph`` after ``backward()`` says how to see the intermediates' gradients;
- ``make lab`` as root passes ``--allow-root``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _hinge(y, scores):
    return (1 - y * scores).relu().mean()  # micrograd's hinge loss


def _labels_scores(n=6):
    rng = np.random.default_rng(0)
    y = ag.Tensor(np.where(rng.random(n) > 0.5, 1.0, -1.0))
    scores = ag.Tensor(rng.normal(size=(n, 1)), requires_grad=True)
    return y, scores


# ------------------------------------------------------------- (n,) with (n, 1) -> (n, n)


def test_outer_broadcast_warns_with_both_shapes_and_the_fix():
    y, scores = _labels_scores()
    with pytest.warns(ag.BroadcastWarning) as record:
        _hinge(y, scores)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "mul" in msg and "(6,) and (6, 1)" in msg and "(6, 6)" in msg
    assert ".reshape(-1)" in msg and "set_broadcast_warnings(False)" in msg
    assert record[0].filename == __file__  # points at the user's line, not autograd's


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: b / (a * a + 1),
    lambda a, b: ag.maximum(a, b), lambda a, b: ag.minimum(b, a), lambda a, b: b ** a,
])
def test_every_elementwise_pair_warns(op):
    a = ag.Tensor(np.arange(3.0))
    b = ag.Tensor(np.ones((3, 1)))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        op(a, b)
    assert [w.category for w in record if w.category is ag.BroadcastWarning]


def test_once_per_line():
    y, scores = _labels_scores()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        for _ in range(5):
            _hinge(y, scores)
    assert len([w for w in record if w.category is ag.BroadcastWarning]) == 1


@pytest.mark.parametrize("shapes", [
    ((6,), (6,)),          # same shape
    ((6,), (4, 6)),        # a bias row on a batch
    ((6, 1), (1, 6)),      # an outer product, written out
    ((6,), (3, 1)),        # different lengths: not the labels/scores mix-up
    ((1,), (1, 1)),
    ((), (6, 1)),
])
def test_intended_broadcasts_stay_silent(shapes):
    a = ag.Tensor(np.ones(shapes[0]), requires_grad=True)
    b = ag.Tensor(np.ones(shapes[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a * b + b - a).sum().backward()
        (a * 2.0 + 1.0).sum()


def test_the_switch_turns_it_off_per_thread_and_restores():
    y, scores = _labels_scores()
    assert ag.broadcast_warnings_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ag.set_broadcast_warnings(False):
            assert not ag.broadcast_warnings_enabled()
            _hinge(y, scores)
        ag.set_broadcast_warnings(False)
        try:
            _hinge(y, scores)
        finally:
            ag.set_broadcast_warnings(True)
    assert ag.broadcast_warnings_enabled()
    seen = []
    worker = threading.Thread(target=lambda: (ag.set_broadcast_warnings(False),
                                              seen.append(ag.broadcast_warnings_enabled())))
    worker.start()
    worker.join()
    assert seen == [False] and ag.broadcast_warnings_enabled()  # the other thread's own

    @ag.set_broadcast_warnings(False)
    def quiet():
        return _hinge(y, scores)

    assert ag.broadcast_warnings_enabled()  # a decorator changes nothing until called
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet()
    assert ag.broadcast_warnings_enabled()

    @ag.set_broadcast_warnings(False)
    def nested(depth):  # each call restores what it found, in any nesting
        assert not ag.broadcast_warnings_enabled()
        if depth:
            nested(depth - 1)
        return ag.broadcast_warnings_enabled()

    assert not nested(2) and ag.broadcast_warnings_enabled()


@pytest.mark.parametrize("loss", [F.mse_loss, F.binary_cross_entropy,
                                  F.binary_cross_entropy_with_logits])
def test_losses_raise_on_mismatched_shapes(loss):
    p = ag.Tensor(np.full((6, 1), 0.5), requires_grad=True)
    with pytest.raises(ValueError, match=re.escape("(6,)") + ".*" + re.escape("(6, 1)")):
        loss(p, np.ones(6))


# ------------------------------------------------------- backward() then trace_backward()


def _net():
    w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    x = ag.Tensor([2.0, 3.0], name="x")
    return w, ((w * x).tanh() * 2.0).sum()


def test_freed_graph_error_names_zero_grad_and_trace_backward():
    w, loss = _net()
    loss.backward()
    with pytest.raises(RuntimeError) as err, pytest.warns(UserWarning, match="already"):
        ag.trace_backward(loss)
    msg = str(err.value)
    assert "zero_grad()" in msg and "trace_backward" in msg and "retain_graph" in msg


def test_trace_on_leaves_holding_grads_warns_and_shows_this_pass():
    w, loss = _net()
    loss.backward(retain_graph=True)
    once = w.grad.copy()
    with pytest.warns(UserWarning, match=r"w already holds.*zero_grad\(\)"):
        trace = ag.trace_backward(loss)
    np.testing.assert_allclose(w.grad, 2 * once)  # .grad accumulates, as in PyTorch
    np.testing.assert_allclose(trace.leaf_grads()["w"], once)  # this pass alone
    np.testing.assert_allclose(trace.accumulated_grads["w"], 2 * once)
    np.testing.assert_allclose(trace.earlier_grads["w"], once)
    done = trace.overlay(-1)
    np.testing.assert_allclose(done.tensor_grads[trace.model.ids[w]], once)
    from autograd.viz import explain
    text = explain.describe(trace, trace.steps[-1])
    assert "this pass" in text and "zero_grad()" in text
    assert "zero_grad()" in trace.draw(-1).source  # the Done frame's caption says it too
    panel = explain.panel_html(trace, trace.steps[-1])
    assert "dL/dw (this pass)" in panel and "zero_grad()" in panel


def test_trace_on_fresh_leaves_does_not_warn():
    w, loss = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = ag.trace_backward(loss)
    assert trace.earlier_grads == {}
    np.testing.assert_allclose(trace.leaf_grads()["w"], w.grad)


def test_panel_rule_has_a_space_after_the_op_name():
    from autograd.viz import explain

    _, loss = _net()
    trace = ag.trace_backward(loss)
    step = next(s for s in trace.steps if s.op == "Mul")
    text = re.sub(r"<[^>]+>", "", explain.panel_html(trace, step))
    assert "local rule (Mul) d(a*b)/da" in text


# ---------------------------------------------------- draw_graph after a plain backward()


def _caption(drawing) -> str:
    return re.sub(r"<[^>]+>", " ", drawing.source)


def test_draw_after_backward_says_how_to_see_intermediate_grads():
    _, loss = _net()
    loss.backward()
    assert "grads=ag.trace_backward(loss)" in _caption(ag.draw_graph(loss))
    assert "grads=ag.trace_backward(loss)" in _caption(ag.draw_graph(loss, legend=False))


def test_no_note_when_all_gradients_are_shown():
    w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    a = w * 3.0
    h = a.tanh()
    a.retain_grad()
    h.retain_grad()
    loss = h.sum()
    assert "trace_backward" not in _caption(ag.draw_graph(loss))  # before backward
    loss.backward()
    drawing = ag.draw_graph(loss)
    assert "trace_backward" not in _caption(drawing)  # the retained one is shown
    w2, loss2 = _net()
    assert "trace_backward" not in _caption(ag.draw_graph(loss2,
                                                          grads=ag.trace_backward(loss2)))


# ----------------------------------------------------------------------- make lab as root


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("uid,flag", [("0", True), ("1000", False)])
def test_make_lab_allows_root(uid, flag):
    out = subprocess.run(["make", "-n", "lab", f"USER_ID={uid}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if "jupyter lab" in ln)
    assert ("--allow-root" in line) is flag


def test_nn_model_losses_stay_quiet():
    # nn's own losses and layers never trip the warning on well-shaped data
    model = nn.MLP([3, 4, 1])
    x = ag.Tensor(np.ones((5, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(model(x), np.zeros((5, 1))).backward()
