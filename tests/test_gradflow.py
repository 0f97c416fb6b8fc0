"""Gradient-flow views: grad_flow figures, flagged layers, the recorder, the example."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import autograd as ag  # noqa: E402
import nn  # noqa: E402
from nn.gradflow import grad_stats, vanishing_gradients_example  # noqa: E402

RED = (0xD6 / 255, 0x27 / 255, 0x28 / 255, 1.0)


def _model_after_backward(seed=0):
    nn.manual_seed(seed)
    model = nn.MLP([4, 6, 5, 1], activation="tanh")
    rng = np.random.default_rng(seed)
    x = ag.Tensor(rng.normal(size=(16, 4)))
    loss = ((model(x) - rng.normal(size=(16, 1))) ** 2).mean()
    loss.backward()
    return model


def test_grad_stats_numbers():
    model = _model_after_backward()
    stats = grad_stats(model)
    names = [n for n, _ in model.named_parameters()]
    assert list(stats) == names
    for name, p in model.named_parameters():
        s = stats[name]
        assert s["flag"] is None
        assert math.isclose(s["mean"], np.abs(p.grad).mean())
        assert math.isclose(s["max"], np.abs(p.grad).max())
        assert math.isclose(s["ratio"], np.linalg.norm(p.grad) / np.linalg.norm(p.data))
    layers = grad_stats(model, by="layer")
    assert list(layers) == ["layers.0", "layers.2", "layers.4"]
    w, b = model.layers[0].weight, model.layers[0].bias
    pooled = np.abs(np.concatenate([w.grad.ravel(), b.grad.ravel()]))
    assert math.isclose(layers["layers.0"]["mean"], pooled.mean())
    with pytest.raises(ValueError, match="by must be"):
        grad_stats(model, by="neuron")
    # re-exported at the top of nn, next to grad_flow
    assert nn.grad_stats is grad_stats and "grad_stats" in nn.__all__


def test_grad_flow_figure_axes_and_bars():
    model = _model_after_backward()
    fig = nn.grad_flow(model)
    ax_g, ax_r = fig.axes
    assert ax_g.get_yscale() == "log" and ax_r.get_yscale() == "log"
    assert ax_g.get_ylabel() == "|gradient|" and "weight" in ax_r.get_ylabel()
    names = [n for n, _ in model.named_parameters()]
    assert [t.get_text() for t in ax_r.get_xticklabels()] == names
    bars = [p.get_height() for p in ax_g.containers[0]]
    expected = [np.abs(p.grad).mean() for _, p in model.named_parameters()]
    np.testing.assert_allclose(bars, expected)
    assert ax_g.get_title(loc="left") == "Gradient flow"
    labels = ax_g.get_legend().get_texts()
    assert {t.get_text() for t in labels} == {"mean |grad|", "max |grad|"}


def test_zero_missing_and_nan_gradients_are_flagged():
    model = _model_after_backward()
    model.layers[0].bias.grad[...] = 0.0
    model.layers[2].weight.grad = None
    model.layers[4].weight.grad[0, 0] = np.nan
    stats = grad_stats(model)
    assert stats["layers.0.bias"]["flag"] == "zero"
    assert stats["layers.2.weight"]["flag"] == "missing"
    assert stats["layers.4.weight"]["flag"] == "nan"
    fig = nn.grad_flow(model)
    ax_g, ax_r = fig.axes
    assert ax_g.get_title(loc="left") == "Gradient flow  (3 flagged)"
    texts = sorted(t.get_text() for t in ax_g.texts)
    assert texts == ["NaN / Inf", "no grad", "zero grad"]
    red = {t.get_text() for t in ax_r.get_xticklabels()
           if matplotlib.colors.to_rgba(t.get_color()) == RED}
    assert red == {"layers.0.bias", "layers.2.weight", "layers.4.weight"}
    # only the finite, non-zero gradients get bars
    assert len(ax_g.containers[0]) == 6 - 3
    # by layer: a layer with any NaN is flagged as a whole
    assert grad_stats(model, by="layer")["layers.4"]["flag"] == "nan"


def test_recorder_as_fit_callback():
    nn.manual_seed(1)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 3))
    y = (X[:, :1] > 0).astype(float)
    model = nn.MLP([3, 4, 1], activation="relu", output_activation="sigmoid")
    rec = nn.GradFlowRecorder(every=2)
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    nn.fit(model, nn.BCELoss(), opt, train=(X, y), epochs=3, batch_size=16,
           callbacks=[rec], progress=False, shuffle=False)
    assert rec.steps == [2, 4, 6, 8, 10, 12]  # 4 batches x 3 epochs, every 2nd
    assert list(rec.stats) == ["layers.0", "layers.2"]
    for s in rec.stats.values():
        assert len(s["mean"]) == len(s["update"]) == 6
        upd = np.array(s["update"])
        assert np.all(np.isfinite(upd)) and np.all(upd > 0)
    # the update ratio is exactly ‖Δw‖/‖w‖ of the recorded step: lr * ‖g‖ / ‖w‖ for SGD
    s = rec.stats["layers.2"]
    np.testing.assert_allclose(s["update"], 0.1 * np.array(s["ratio"]), rtol=0.3)
    fig = rec.plot()
    assert len(fig.axes) == 3
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    guide = [ln for ln in fig.axes[2].lines if list(ln.get_ydata()) == [1e-3, 1e-3]]
    assert len(guide) == 1
    texts = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert texts == list(rec.stats) + ["1e-3 guide"]


def _legend_clear_of_panels(fig):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends
    for legend in legends:
        box = legend.get_window_extent()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 + 1  # inside the figure
        for ax in fig.axes:  # and clear of every panel
            assert not box.overlaps(ax.get_window_extent()), ax.get_title(loc="left")


@pytest.mark.parametrize("n_layers", [3, 12])
def test_recorder_legend_never_covers_the_curves(n_layers):
    nn.manual_seed(0)
    model = nn.MLP([4] + [6] * (n_layers - 1) + [1], activation="tanh")
    rec = nn.GradFlowRecorder(by="layer")
    x = ag.Tensor(np.random.default_rng(0).normal(size=(8, 4)))
    for _ in range(3):
        model.zero_grad()
        (model(x) ** 2).mean().backward()
        rec.record(model)
    fig = rec.plot()
    assert len(rec.stats) == n_layers
    _legend_clear_of_panels(fig)
    # by parameter, with a flag: more entries wrap into columns, still outside the panels
    model.layers[0].bias.grad = np.zeros_like(model.layers[0].bias.data)
    rec2 = nn.GradFlowRecorder(by="parameter")
    rec2.record(model)
    fig2 = rec2.plot()
    texts = [t.get_text() for t in fig2.axes[2].get_legend().get_texts()]
    assert texts[-2:] == ["1e-3 guide", "zero / no / NaN grad"]
    _legend_clear_of_panels(fig2)


def test_recorder_flags_and_manual_use():
    model = _model_after_backward()
    rec = nn.GradFlowRecorder(by="parameter")
    with pytest.raises(ValueError, match="nothing recorded"):
        rec.plot()
    rec.record(model)
    model.layers[4].bias.grad = np.zeros_like(model.layers[4].bias.data)
    rec.record(model)
    assert rec.steps == [1, 2]
    assert rec.flags == [(2, "layers.4.bias", "zero")]
    assert math.isnan(rec.stats["layers.0.weight"]["update"][0])  # no step was taken
    fig = rec.plot()
    assert any(c.get_offsets().shape[0] == 1 for c in fig.axes[0].collections)  # red ×
    with pytest.raises(ValueError, match="every"):
        nn.GradFlowRecorder(every=0)


def test_vanishing_gradients_example():
    fig = vanishing_gradients_example(depth=8, width=16, n=64)
    sig_g, relu_g = fig.axes[0], fig.axes[1]  # top row: |gradient| per layer
    sig = [p.get_height() for p in sig_g.containers[0]]
    relu = [p.get_height() for p in relu_g.containers[0]]
    assert len(sig) == len(relu) == 9
    assert sig[0] / sig[-1] < 1e-4  # the first layer's gradient has all but vanished
    assert relu[0] / relu[-1] > 1e-2
    assert "Vanishing gradients" in fig._suptitle.get_text()
