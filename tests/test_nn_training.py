"""fit / evaluate / History, and learning real tasks to a stated accuracy."""

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F


def test_case_study_mlp_sigmoid_bce_reaches_90_percent():
    X, y = nn.data.make_case_study(n=1000, d=10, seed=0)
    train, val, test = nn.data.train_val_test_split(X, y, stratify=True, rng=0)
    nn.manual_seed(0)
    model = nn.MLP([10, 5, 5, 1], activation="sigmoid", output_activation="sigmoid")
    opt = nn.optim.Adam(model.parameters(), lr=0.02)
    history = nn.fit(model, nn.BCELoss(), opt, train=train, val=val, epochs=200,
                     batch_size=64, metrics=["accuracy"], progress=False, rng=0)
    assert len(history) == 200
    assert history["loss"][-1] < history["loss"][0]
    result = nn.evaluate(model, nn.BCELoss(), *test, metrics=["accuracy"])
    assert result["accuracy"] >= 0.9, result


def test_breast_cancer_small_mlp():
    pytest.importorskip("sklearn")
    train, val, test = nn.data.load_breast_cancer(seed=0)
    nn.manual_seed(0)
    model = nn.MLP([30, 16, 1], activation="relu")
    opt = nn.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    hist = nn.fit(model, nn.BCEWithLogitsLoss(), opt, train=train, val=val, epochs=100,
                  batch_size=32, metrics=["accuracy"], early_stopping=15, progress=False,
                  rng=0)
    acc = nn.evaluate(model, nn.BCEWithLogitsLoss(), *test, metrics=["accuracy"])["accuracy"]
    assert acc >= 0.94, (acc, hist)


def test_digits_small_mlp():
    pytest.importorskip("sklearn")
    train, val, test = nn.data.load_digits(seed=0)
    nn.manual_seed(0)
    model = nn.MLP([64, 64, 10], activation="relu")
    opt = nn.optim.Adam(model.parameters(), lr=3e-3)
    hist = nn.fit(model, nn.CrossEntropyLoss(), opt, train=train, val=val, epochs=40,
                  batch_size=64, metrics=["accuracy"], early_stopping=8, progress=False,
                  rng=0)
    acc = nn.evaluate(model, nn.CrossEntropyLoss(), *test, metrics=["accuracy"])["accuracy"]
    assert acc >= 0.95, (acc, hist)


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float).reshape(-1, 1)
    return X, y


def test_fit_is_reproducible_with_a_seed():
    X, y = _tiny()

    def run():
        nn.manual_seed(3)
        m = nn.MLP([3, 8, 1], dropout=0.2)
        h = nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
                   train=(X, y), epochs=5, batch_size=16, progress=False)
        return h["loss"], m.state_dict()

    (l1, s1), (l2, s2) = run(), run()
    assert l1 == l2
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k])


def test_early_stopping_restores_the_best_weights():
    X, y = _tiny()
    Xv, yv = _tiny(1)
    nn.manual_seed(0)
    m = nn.MLP([3, 16, 1])
    snapshots = {}

    class Keep:
        def on_epoch_end(self, epoch, history, model):
            snapshots[epoch] = model.state_dict()

    # a learning rate this large makes the validation loss wander: early stopping fires
    h = nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=3.0, momentum=0.9),
               train=(X, y), val=(Xv, yv), epochs=200, batch_size=8, early_stopping=3,
               progress=False, callbacks=[Keep()])
    assert h.stopped_epoch is not None and h.stopped_epoch < 200
    assert h.stopped_epoch == len(h) == max(snapshots)
    best = h.best_epoch
    assert h["val_loss"][best - 1] == min(h["val_loss"])
    assert h.stopped_epoch - best == 3
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[best][k])
    # and the restored model has the best validation loss
    assert nn.evaluate(m, nn.BCEWithLogitsLoss(), Xv, yv)["loss"] == pytest.approx(
        min(h["val_loss"]))


def test_early_stopping_and_progress_bar_are_callbacks(capsys):
    # fit's early_stopping= and progress= build these callbacks; passed by hand they
    # train exactly the same
    X, y = _tiny()
    Xv, yv = _tiny(1)

    def run(**kwargs):
        nn.manual_seed(0)
        m = nn.MLP([3, 16, 1])
        h = nn.fit(m, nn.BCEWithLogitsLoss(),
                   nn.optim.SGD(m.parameters(), lr=3.0, momentum=0.9), train=(X, y),
                   val=(Xv, yv), epochs=200, batch_size=8, **kwargs)
        return h, m.state_dict()

    h1, s1 = run(early_stopping=3, progress=False)
    stopper = nn.EarlyStopping(patience=3)
    h2, s2 = run(callbacks=[stopper, nn.ProgressBar(epochs=200)], progress=False)
    assert h1.stopped_epoch is not None and h1.stopped_epoch < 200
    assert h2.history == h1.history
    assert (h2.best_epoch, h2.stopped_epoch) == (h1.best_epoch, h1.stopped_epoch)
    assert stopper.best_epoch == h1.best_epoch
    for k, v in s1.items():
        np.testing.assert_array_equal(s2[k], v)
    err = capsys.readouterr().err
    # stopped early on purpose: the bar ends full (not red in a notebook) and says so
    assert f"stopped early: {h1.stopped_epoch} of 200 epochs" in err and "val_loss=" in err
    assert f"{h1.stopped_epoch}/{h1.stopped_epoch}" in err
    # a callback object is reusable: a second fit starts from a clean state
    h3, _ = run(callbacks=[stopper], progress=False)
    assert h3.history == h1.history and stopper.best_epoch == h1.best_epoch


def test_early_stopping_min_delta_and_without_restoring():
    X, y = _tiny()
    Xv, yv = _tiny(1)
    nn.manual_seed(0)
    m = nn.MLP([3, 16, 1])

    class Last:
        def on_epoch_end(self, epoch, history, model):
            self.state = model.state_dict()

    stopper, last = nn.EarlyStopping(patience=2, min_delta=1e9, restore_best=False), Last()
    h = nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
               train=(X, y), val=(Xv, yv), epochs=50, callbacks=[stopper, last],
               progress=False)
    # nothing improves on the first epoch by 1e9: it stays the best, training stops 2
    # epochs later, and the last weights are kept
    assert (stopper.best_epoch, h.best_epoch, h.stopped_epoch) == (1, 1, 3)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, last.state[k])


def test_early_stopping_callback_needs_validation_data():
    X, y = _tiny()
    m = nn.MLP([3, 4, 1], rng=0)
    with pytest.raises(ValueError, match="'val_loss'.*val=\\(X_val, y_val\\)"):
        nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
               train=(X, y), epochs=3, callbacks=[nn.EarlyStopping(2)], progress=False)
    with pytest.raises(ValueError, match="patience"):
        nn.EarlyStopping(0)
    with pytest.raises(TypeError, match=r"class EarlyStopping; pass an instance"):
        nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
               train=(X, y), callbacks=[nn.EarlyStopping], progress=False)


def test_callbacks_hear_of_an_error_and_the_bar_is_closed():
    X, y = _tiny()
    X = X.copy()
    X[0, 0] = np.nan
    m = nn.MLP([3, 4, 1], rng=0)
    seen = []

    class Watch:
        def on_exception(self, error, model):
            seen.append(type(error))

        def on_train_end(self, history, model):
            seen.append("end")

    bar = nn.ProgressBar()
    with pytest.raises(nn.NaNLossError):
        nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
               train=(X, y), epochs=3, callbacks=[bar, Watch()], progress=False)
    assert seen == [nn.NaNLossError]  # on_train_end is for training that ran its course
    assert bar.bar is None  # closed, not left dangling


def test_nan_loss_stops_with_a_clear_message():
    X, y = _tiny()
    X = X.copy()
    X[5, 1] = np.nan
    m = nn.MLP([3, 4, 1])
    before = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises(nn.NaNLossError, match=r"loss is nan at epoch 1, batch 1.*learning "
                                              r"rate"):
        nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1),
               train=(X, y), epochs=3, batch_size=None, progress=False)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # the bad step was not applied


def test_history_plot_and_metrics():
    import matplotlib.figure

    X, y = _tiny()
    m = nn.MLP([3, 8, 1], output_activation="sigmoid", rng=0)
    h = nn.fit(m, F.binary_cross_entropy, nn.optim.Adam(m.parameters(), lr=0.05),
               train=(X[:80], y[:80]), val=(X[80:], y[80:]), epochs=4, batch_size=20,
               metrics=["accuracy"], progress=False)
    assert set(h.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h["val_accuracy"]) == 4 and all(0 <= a <= 1 for a in h["accuracy"])
    assert h.epoch == [1, 2, 3, 4]
    fig = h.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2
    assert "History(4 epochs" in repr(h)
    with pytest.raises(KeyError, match="recorded"):
        h["f1"]


def test_callbacks_and_custom_metrics():
    X, y = _tiny()
    m = nn.MLP([3, 4, 1], rng=0)
    events = []

    class Recorder:
        def on_train_begin(self, model):
            events.append("begin")

        def on_batch_end(self, step, model):
            # the gradients of this batch are still there
            assert all(p.grad is not None for p in model.parameters())
            events.append(step)

        def on_epoch_end(self, epoch, history, model):
            events.append(f"epoch{epoch}")
            return epoch == 2  # ask to stop

        def on_train_end(self, history, model):
            events.append("end")

    h = nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.SGD(m.parameters(), lr=0.1), train=(X, y),
               epochs=10, batch_size=60, metrics={"mean_out": lambda o, t: float(o.mean())},
               callbacks=[Recorder(), object()], progress=False)
    assert events == ["begin", 1, 2, "epoch1", 3, 4, "epoch2", "end"]
    assert h.stopped_epoch == 2 and "mean_out" in h


def test_evaluation_runs_in_eval_mode_without_graph():
    X, y = _tiny()
    m = nn.MLP([3, 8, 1], dropout=0.5, rng=0)
    p1 = nn.predict(m, X)
    p2 = nn.predict(m, X, batch_size=7)
    np.testing.assert_allclose(p1, p2)  # no dropout noise, batching does not matter
    assert m.training  # the mode was restored
    seen = []
    m.register_forward_hook(lambda mod, inp, out: seen.append((mod.training, out.grad_fn)))
    nn.evaluate(m, nn.BCEWithLogitsLoss(), X, y)
    assert seen == [(False, None)]


def test_fit_progress_bar_and_argument_errors(capsys):
    X, y = _tiny()
    m = nn.MLP([3, 4, 1], rng=0)
    opt = nn.optim.SGD(m.parameters(), lr=0.1)
    nn.fit(m, nn.BCEWithLogitsLoss(), opt, train=(X, y), epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err
    with pytest.raises(ValueError, match="val="):
        nn.fit(m, nn.BCEWithLogitsLoss(), opt, train=(X, y), early_stopping=3, progress=False)
    with pytest.raises(ValueError, match="120 inputs but 5 targets"):
        nn.fit(m, nn.BCEWithLogitsLoss(), opt, train=(X, y[:5]), progress=False)
    with pytest.raises(ValueError, match="one-value Tensor"):
        nn.fit(m, nn.BCEWithLogitsLoss(reduction="none"), opt, train=(X, y), progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        nn.fit(m, nn.BCEWithLogitsLoss(), opt, train=(X, y), metrics=["f1"], progress=False)


def test_float32_model_trains_on_float64_data():
    X, y = _tiny()
    m = nn.MLP([3, 8, 1], dtype=np.float32, rng=0)
    nn.fit(m, nn.BCEWithLogitsLoss(), nn.optim.Adam(m.parameters(), lr=0.01), train=(X, y),
           epochs=2, progress=False)
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert nn.predict(m, X).dtype == np.float32


def test_accuracy_metric():
    assert nn.accuracy(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1])) == 0.5
    assert nn.accuracy(np.array([[0.7], [0.2]]), np.array([[1.0], [0.0]])) == 1.0
    assert nn.accuracy(np.array([[-1.0], [2.0]]), np.array([[1.0], [1.0]]), logits=True) == 0.5
    assert nn.accuracy(ag.Tensor(np.array([[3.0, 1.0]])), np.array([[1.0, 0.0]])) == 1.0
