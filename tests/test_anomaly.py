"""detect_anomaly: the first NaN/Inf names the op, its inputs' ranges and the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import autograd as ag
from autograd import anomaly
from autograd.function import get_anomaly_hook


def _here() -> str:
    """``file:line`` of the caller's line."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def test_forward_nan_names_op_line_and_input_range():
    x = ag.Tensor([-1.0, 2.0, 0.5], requires_grad=True, name="x")
    with ag.detect_anomaly():
        h = x * 2.0
        with pytest.raises(ag.AnomalyError) as info, np.errstate(invalid="ignore"):
            where = _here(); h.log()  # noqa: E702
    err = info.value
    msg = str(err)
    assert err.op == "Log" and err.phase == "forward" and err.where == where
    assert msg.startswith("Log produced 1 NaN (of 3 values) in the forward pass")
    assert f"created: {where}" in msg
    assert "h.log()" in msg  # the source line itself
    assert "input 0: shape (3,), range [-2, 4]" in msg
    assert "Hint: log is NaN for negative inputs" in msg


def test_backward_inf_names_op_and_the_line_that_created_it():
    x = ag.Tensor([0.0, 4.0], requires_grad=True, name="x")
    with ag.detect_anomaly():
        where = _here(); r = x.sqrt()  # noqa: E702
        loss = r.sum()
        with pytest.raises(ag.AnomalyError) as info, np.errstate(divide="ignore"):
            loss.backward()
    err = info.value
    msg = str(err)
    assert err.op == "Sqrt" and err.phase == "backward" and err.where == where
    assert "Sqrt.backward produced 1 Inf (of 2 values) in the backward pass" in msg
    assert f"created: {where}" in msg and "x.sqrt()" in msg
    assert "input 0 (x): shape (2,), range [0, 4]" in msg
    assert "gradient sent to input 0 (x)" in msg
    assert "rule:    d(√a)/da = 1/(2√a)" in msg


def test_nan_already_in_the_data_is_blamed_on_the_data():
    x = ag.Tensor([np.nan, 1.0], requires_grad=True, name="x")
    with ag.detect_anomaly(), pytest.raises(ag.AnomalyError, match="already in its input"):
        x + 1.0


def test_created_at_is_recorded_and_hook_restored():
    assert get_anomaly_hook() is None
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    outside = x * 3.0
    assert outside.grad_fn.created_at is None
    with ag.detect_anomaly() as mode:
        assert get_anomaly_hook() is mode
        where = _here(); y = x * 3.0  # noqa: E702
        with ag.detect_anomaly():  # nested: restores the outer one
            pass
        assert get_anomaly_hook() is mode
        y.sum().backward()  # finite: nothing raised
    assert get_anomaly_hook() is None
    assert y.grad_fn.created_at == where  # the user's line, not autograd/tensor.py
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_hook_restored_after_an_error_and_usable_as_decorator():
    @ag.detect_anomaly()
    def bad():
        with np.errstate(all="ignore"):
            return ag.Tensor([1.0, 0.0], requires_grad=True) / 0.0

    with pytest.raises(ag.AnomalyError, match="Div produced"):
        bad()
    assert get_anomaly_hook() is None


def test_a_decorated_function_may_call_itself():
    """One decorator object serves every call: a recursive call gets its own, and the
    outermost one puts back what it found (a shared object crashed on NumPy's errstate
    token and left its hook installed)."""
    @ag.detect_anomaly()
    def depth(n):
        assert get_anomaly_hook() is not None
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3
    assert get_anomaly_hook() is None


def test_check_nan_off_only_records_locations():
    x = ag.Tensor([-1.0], requires_grad=True)
    with ag.detect_anomaly(check_nan=False), np.errstate(invalid="ignore"):
        y = x.log()
    assert np.isnan(y.data).all()
    assert y.grad_fn.created_at.startswith(__file__)


def test_trace_and_drawing_show_where_ops_were_made():
    x = ag.Tensor([1.0, 2.0], requires_grad=True, name="x")
    with ag.detect_anomaly():
        where = _here(); loss = (x * x).sum()  # noqa: E702
    trace = ag.trace_backward(loss)
    assert trace[1].created_at == where
    assert f"made at {where}" in trace[1].describe()
    assert f"made at {where}" in ag.draw_graph(loss).source  # in the tooltip


def test_ops_made_inside_a_library_point_at_the_users_line(monkeypatch):
    """Ops that a registered library (nn, or any package built on autograd) makes for
    the user are blamed on the user's line that called it, not on the library's."""
    import types

    lib = types.ModuleType("mylib.layers")
    exec("def half_log(t):\n    return t.log() * 0.5\n", lib.__dict__)
    x = ag.Tensor([-1.0, 1.0], requires_grad=True)

    def blamed() -> str:
        with ag.detect_anomaly(), np.errstate(invalid="ignore"):
            with pytest.raises(ag.AnomalyError) as info:
                lib.half_log(x)
        return info.value.where

    assert blamed().endswith(":2")  # not registered: the library's own line
    monkeypatch.setattr(anomaly, "_LIBRARIES", set(anomaly._LIBRARIES))
    ag.register_library("mylib")
    where = blamed()
    assert where.startswith(__file__) and not where.endswith(":2")

    import nn

    layer = nn.Linear(2, 1)
    with ag.detect_anomaly(), pytest.raises(ag.AnomalyError) as info:
        where = _here(); layer(ag.Tensor([[np.inf, 0.0]]))  # noqa: E702
    assert info.value.where == where  # nn registers itself


@pytest.mark.parametrize("how", ["create_graph", "ag.grad", "ag.jacobian"])
def test_every_backward_pass_is_watched(how):
    """Anomaly mode names the op whatever runs the backward pass: the first-order loop,
    the create_graph pass on Tensors, or the array pass of grad/jacobian rows."""
    x = ag.Tensor([0.0, 4.0], requires_grad=True, name="x")
    with ag.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(ag.AnomalyError) as info:
            if how == "create_graph":
                x.sqrt().sum().backward(create_graph=True)
            elif how == "ag.grad":
                ag.grad(lambda t: t.sqrt().sum())(np.array([0.0, 4.0]))
            else:
                ag.jacobian(lambda t: t.sqrt())(np.array([0.0, 4.0]))
    assert info.value.op == "Sqrt" and info.value.phase == "backward"
