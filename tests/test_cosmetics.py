"""Small things a learner sees: the numbers a report prints, a bar's colour, stray warnings."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import autograd as ag
import nn


def test_gradcheck_relative_error_is_not_zero_beside_a_nonzero_absolute_error():
    x = ag.Tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    result = ag.gradcheck(lambda t: (t * t).exp().sum(), [x])
    check = result.inputs[0]
    assert result.passed and check.max_abs_err > 0
    assert 0 < check.max_rel_err < 1e-6
    shown = re.search(r"max rel err (\S+)", result.report()).group(1)
    assert float(shown) == pytest.approx(check.max_rel_err, rel=1e-2)
    assert f"<td>{shown}</td>" in result._repr_html_()
    fast = ag.gradcheck(lambda t: (t * t).exp().sum(), [x], fast_mode=True).inputs[0]
    assert fast.max_abs_err == 0 or fast.max_rel_err > 0


def test_gradcheck_relative_error_where_every_derivative_is_zero():
    x = ag.Tensor(np.zeros(3), requires_grad=True)
    result = ag.gradcheck(lambda t: (t * t).sum(), [x])
    assert result.passed and "max rel err n/a" in result.report()


class _RecordingBar:
    """Stands in for tqdm: records what a notebook bar would be closed with (tqdm's
    notebook bar turns red when closed with n < total)."""

    closed: list = []

    def __init__(self, total=None, **kwargs):
        self.total, self.n, self.desc = total, 0, kwargs.get("desc", "")

    def update(self, k=1):
        self.n += k

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, desc, refresh=True):
        self.desc = desc

    def close(self):
        _RecordingBar.closed.append((self.n, self.total, self.desc))


@pytest.fixture
def recording_bar(monkeypatch):
    tqdm_auto = pytest.importorskip("tqdm.auto")
    monkeypatch.setattr(tqdm_auto, "tqdm", _RecordingBar)
    _RecordingBar.closed = []
    return _RecordingBar.closed


def _fit(epochs, **kwargs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3))
    y = (X[:, :1] > 0).astype(float)
    nn.manual_seed(0)
    m = nn.MLP([3, 8, 1])
    return nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=3.0,
                                                           momentum=0.9),
                  train=(X, y), val=(X[:8], y[:8]), epochs=epochs, batch_size=8,
                  progress=True, **kwargs)


def test_progress_bar_ends_full_when_early_stopping_ends_training(recording_bar):
    history = _fit(200, early_stopping=2)
    assert history.stopped_epoch is not None and history.stopped_epoch < 200
    (n, total, desc) = recording_bar[-1]
    assert n == total == history.stopped_epoch  # full: not a failure
    assert f"stopped early: {n} of 200 epochs" in desc


def test_progress_bar_still_ends_short_on_an_error(recording_bar):
    class Boom:
        def on_epoch_end(self, epoch, history, model):
            if epoch == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _fit(10, callbacks=[Boom()])
    n, total, _ = recording_bar[-1]
    assert n < total


def test_anomaly_mode_report_comes_without_numpys_warnings():
    x = ag.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ag.AnomalyError, match="Log"), ag.detect_anomaly():
            x.log()
        with pytest.raises(ag.AnomalyError), ag.detect_anomaly():
            (x * 0.0).sqrt().sum().backward()
    assert [str(w.message) for w in record if w.category is RuntimeWarning] == []
    # outside anomaly mode NumPy's warnings are as they were
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        x.log()
