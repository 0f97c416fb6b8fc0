"""The training loop: ``fit``, ``evaluate``, ``predict``, ``History`` and metrics.

::

    history = nn.fit(model, nn.BCELoss(), nn.optim.Adam(model.parameters(), lr=1e-2),
                     train=(X_train, y_train), val=(X_val, y_val), epochs=200,
                     batch_size=32, metrics=["accuracy"], early_stopping=20)
    history.plot()          # loss and accuracy per epoch, training vs validation
    nn.evaluate(model, nn.BCELoss(), X_test, y_test, metrics=["accuracy"])

Each training step is ``optimizer.zero_grad(); loss = loss_fn(model(x), y);
loss.backward(); optimizer.step()``. After every epoch the model is evaluated on the
validation set in eval mode (Dropout off) under ``ag.no_grad()``. ``fit`` itself is
only that epoch loop: early stopping, the progress bar and anything else around it are
callbacks (``nn.EarlyStopping``, ``nn.ProgressBar``, ``nn.GradFlowRecorder`` or your
own; see ``fit``).
"""

from __future__ import annotations

import math

import numpy as np

import autograd as ag

from . import functional as F
from .callbacks import EarlyStopping, ProgressBar
from .data import batches
from .init import get_rng
from .losses import BCEWithLogitsLoss

__all__ = ["fit", "evaluate", "predict", "History", "NaNLossError", "accuracy"]


class NaNLossError(FloatingPointError):
    """The training loss became NaN or infinite; training was stopped."""


# ---------------------------------------------------------------------- metrics


def accuracy(output, target, logits: bool = False) -> float:
    """Fraction of correct predictions.

    Several output columns: the predicted class is the argmax (targets are class
    indices, or one-hot / probability rows). One column (or a vector): a binary
    prediction, positive where output > 0.5 (probabilities) or > 0 with
    ``logits=True``; targets are 0/1.
    """
    out = np.asarray(output.numpy() if isinstance(output, ag.Tensor) else output)
    tgt = np.asarray(target.numpy() if isinstance(target, ag.Tensor) else target)
    if out.ndim == 2 and out.shape[1] > 1:
        pred = out.argmax(axis=1)
        true = tgt.argmax(axis=1) if tgt.ndim == 2 else tgt
    else:
        pred = out.reshape(-1) > (0.0 if logits else 0.5)
        true = tgt.reshape(-1) > 0.5
    if pred.shape != true.shape:
        raise ValueError(f"accuracy: {pred.shape[0]} predictions (output {out.shape}) "
                         f"but target of shape {tgt.shape}")
    return float(np.mean(pred == true)) if pred.size else float("nan")


def _accuracy_metric(logits: bool):
    def metric(output, target):
        return accuracy(output, target, logits=logits)

    metric.__name__ = "accuracy"
    return metric


def _is_logit_loss(loss_fn) -> bool:
    return isinstance(loss_fn, BCEWithLogitsLoss) or \
        loss_fn is F.binary_cross_entropy_with_logits


def _resolve_metrics(metrics, loss_fn) -> dict:
    """``{name: fn(output ndarray, target ndarray) -> float}``."""
    if metrics is None:
        return {}
    if isinstance(metrics, (str,)) or callable(metrics):
        metrics = [metrics]
    items = metrics.items() if isinstance(metrics, dict) else [(None, m) for m in metrics]
    out = {}
    for name, m in items:
        if isinstance(m, str):
            key = m.lower()
            if key not in ("accuracy", "acc"):
                raise ValueError(f"fit: unknown metric {m!r}; use 'accuracy' or pass a "
                                 "function metric(output, target) -> float")
            out[name or "accuracy"] = _accuracy_metric(_is_logit_loss(loss_fn))
        elif callable(m):
            out[name or getattr(m, "__name__", f"metric{len(out)}")] = m
        else:
            raise TypeError(f"fit: a metric must be a name or a function, got {m!r}")
    return out


# ---------------------------------------------------------------------- history


def _pyplot():
    """matplotlib.pyplot, imported on first use (matplotlib is an optional extra; with
    no display it picks its non-interactive Agg backend by itself)."""
    import matplotlib.pyplot as plt

    return plt


class History:
    """What ``fit`` measured, epoch by epoch.

    ``history["loss"]``, ``history["val_loss"]``, ``history["accuracy"]``,
    ``history["val_accuracy"]``, ... are lists with one value per epoch (``epoch``
    holds the epoch numbers, from 1). ``best_epoch`` is the epoch with the lowest
    validation loss (with early stopping: the best epoch by its ``min_delta``, whose
    weights it restores), ``stopped_epoch`` the epoch early stopping (or another
    callback) ended training at (None if it ran to the end). ``plot()`` draws it.
    """

    def __init__(self):
        self.epoch: list[int] = []
        self.history: dict[str, list] = {}
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._lowest_val_loss = math.inf

    def log(self, epoch: int, values: dict) -> None:
        """Record one epoch's values; a new lowest ``val_loss`` makes it the best epoch."""
        self.epoch.append(epoch)
        for k, v in values.items():
            self.history.setdefault(k, [float("nan")] * (len(self.epoch) - 1)).append(v)
        if values.get("val_loss", math.inf) < self._lowest_val_loss:
            self._lowest_val_loss = values["val_loss"]
            self.best_epoch = epoch

    def __getitem__(self, key: str) -> list:
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"History has no {key!r}; recorded: {sorted(self.history)}") \
                from None

    def __contains__(self, key) -> bool:
        return key in self.history

    def keys(self):
        return self.history.keys()

    def __len__(self) -> int:
        return len(self.epoch)

    def last(self) -> dict:
        """The last epoch's values."""
        return {k: v[-1] for k, v in self.history.items()}

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items()) if self.epoch else ""
        return f"History({len(self)} epochs{': ' + last if last else ''})"

    def plot(self, figsize=None):
        """A matplotlib Figure: one panel per quantity (loss, then each metric), the
        training curve and, when there is one, the validation curve; the best epoch
        is marked."""
        plt = _pyplot()
        names = [k for k in self.history if not k.startswith("val_")]
        names += [k[4:] for k in self.history if k.startswith("val_") and k[4:] not in names]
        if not names:
            names = ["loss"]
        fig, axes = plt.subplots(1, len(names), figsize=figsize or (4.5 * len(names), 3.4),
                                 squeeze=False)
        for ax, name in zip(axes[0], names):
            for key, label, style in ((name, "train", "-"), (f"val_{name}", "validation", "--")):
                if key in self.history:
                    ax.plot(self.epoch, self.history[key], style, label=label)
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch, color="grey", lw=0.8, ls=":", label="best epoch")
            ax.set_xlabel("epoch")
            ax.set_title(name)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize="small")
        fig.tight_layout()
        plt.close(fig)  # returned, not left open in pyplot (no double display in Jupyter)
        return fig


# ---------------------------------------------------------------------- helpers


def _model_dtype(model):
    for p in model.parameters():
        return p.dtype
    return None


def _inputs(X, dtype) -> np.ndarray:
    """``X`` as an array, numbers cast to the model's ``dtype`` (None: left as they are)."""
    X = np.asarray(X)
    if dtype is not None and X.dtype.kind in "biuf" and X.dtype != dtype:
        X = X.astype(dtype)
    return X


def _as_x(X, dtype) -> ag.Tensor:
    return X if isinstance(X, ag.Tensor) else ag.Tensor(_inputs(X, dtype))


def _as_y(y, dtype):
    y = np.asarray(y.numpy() if isinstance(y, ag.Tensor) else y)
    if dtype is not None and y.dtype.kind == "f" and y.dtype != dtype:
        y = y.astype(dtype)
    return y


def _check_pair(pair, what: str):
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError(f"fit: {what} must be a pair (X, y), got {type(pair).__name__}")
    X, y = pair
    if len(X) != len(y):
        raise ValueError(f"fit: {what} has {len(X)} inputs but {len(y)} targets")
    if len(X) == 0:
        raise ValueError(f"fit: {what} is empty")
    return X, y


def predict(model, X, batch_size: int | None = None) -> np.ndarray:
    """The model's outputs for ``X`` as an ndarray, in eval mode under ``no_grad``."""
    was_training = model.training
    model.eval()
    dtype = _model_dtype(model)
    try:
        with ag.no_grad():
            outs = [model(_as_x(xb, dtype)).numpy()
                    for xb in batches(X, None, batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if len(outs) > 1 else outs[0]


def evaluate(model, loss_fn, X, y, batch_size: int | None = None, metrics=None) -> dict:
    """``{"loss": ..., metric: ...}`` of ``model`` on ``(X, y)``, in eval mode under
    ``no_grad`` (the loss averaged over samples, metrics over all outputs at once)."""
    was_training = model.training
    model.eval()
    dtype = _model_dtype(model)
    fns = _resolve_metrics(metrics, loss_fn)
    total, count, outs = 0.0, 0, []
    try:
        with ag.no_grad():
            for xb, yb in batches(X, y, batch_size, shuffle=False):
                out = model(_as_x(xb, dtype))
                total += loss_fn(out, _as_y(yb, dtype)).item() * len(xb)
                count += len(xb)
                outs.append(out.numpy())
    finally:
        model.train(was_training)
    result = {"loss": total / count}
    if fns:
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        y = np.asarray(y)
        result.update({name: float(fn(out, y)) for name, fn in fns.items()})
    return result


def _call(callbacks, method: str, *args) -> bool:
    """Call ``method`` on every callback that has it; True if any of them returned True."""
    stop = False
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None:
            stop = bool(fn(*args)) or stop
    return stop


def _train_epoch(model, loss_fn, optimizer, batch_iter, metrics: dict, callbacks,
                 epoch: int, step: int) -> tuple[dict, int]:
    """One pass over the training batches: ``({"loss": ..., metric: ...}, step)``, the
    loss and metrics averaged over samples, ``step`` the optimizer steps taken so far."""
    model.train()
    total, count = 0.0, 0
    metric_sums = dict.fromkeys(metrics, 0.0)
    for batch, (xb, yb) in enumerate(batch_iter, start=1):
        optimizer.zero_grad()
        out = model(_as_x(xb, None))
        loss = loss_fn(out, yb)
        if not isinstance(loss, ag.Tensor) or loss.size != 1:
            raise ValueError(
                "fit: loss_fn must return a one-value Tensor (e.g. with "
                f"reduction='mean'), got {getattr(loss, 'shape', type(loss).__name__)}")
        value = loss.item()
        if not math.isfinite(value):
            raise NaNLossError(
                f"fit: the training loss is {value} at epoch {epoch}, batch {batch} "
                f"(optimizer step {step + 1}); training stopped before this step "
                "changed the weights. Usual causes: a learning rate too high "
                f"(lr={optimizer.param_groups[0].get('lr')}), NaN/inf in the inputs, "
                "or probabilities of exactly 0/1 fed to a log; lower the learning "
                "rate, check the data (np.isfinite(X).all()), or use a stable loss "
                "such as BCEWithLogitsLoss")
        loss.backward()
        optimizer.step()
        step += 1
        n = len(xb)
        total += value * n
        count += n
        for name, fn in metrics.items():
            metric_sums[name] += float(fn(out.numpy(), yb)) * n
        _call(callbacks, "on_batch_end", step, model)
    values = {"loss": total / count}
    values.update({k: s / count for k, s in metric_sums.items()})
    return values, step


# ---------------------------------------------------------------------- fit


def fit(model, loss_fn, optimizer, train, val=None, epochs: int = 10, batch_size=32,
        metrics=None, early_stopping: int | None = None, restore_best: bool = True,
        min_delta: float = 0.0, shuffle: bool = True, scheduler=None, progress: bool = True,
        callbacks=(), rng=None) -> History:
    """Train ``model`` and return its ``History``.

    - ``loss_fn(output, target)`` -> a one-value Tensor (``nn.BCELoss()``, ``F.mse_loss``);
    - ``optimizer``: from ``nn.optim``, built on ``model.parameters()``;
    - ``train`` / ``val``: ``(X, y)`` arrays (``val`` optional); ``X`` is cast to the
      model's dtype;
    - ``batch_size``: samples per step (None: the full training set);
    - ``metrics``: e.g. ``["accuracy"]`` or ``{"name": fn(output, target)}``; "accuracy"
      thresholds one-column outputs at 0.5, or at 0 when ``loss_fn`` works on logits;
    - ``early_stopping``: stop after this many epochs without a validation loss lower
      than the best by more than ``min_delta``; with ``restore_best`` the best epoch's
      weights are loaded back at the end (an ``nn.EarlyStopping`` callback; without
      it, ``min_delta`` and ``restore_best`` have no effect);
    - ``scheduler``: an ``nn.optim`` schedule, stepped after every epoch;
    - ``progress``: a tqdm bar with the epoch and current losses (an ``nn.ProgressBar``);
    - ``callbacks``: more callbacks, see below; ``rng``: the shuffling Generator or seed.

    Training metrics are averaged over the epoch's batches as they were trained (in
    train mode); validation ones are computed after the epoch, in eval mode. A NaN or
    infinite training loss raises ``NaNLossError`` before it reaches the weights.

    Callbacks are any objects with some of these methods (all optional); ``fit`` calls
    the ones it built from its arguments first, then ``callbacks`` in order::

        on_train_begin(model)                # before the first epoch
        on_batch_end(step, model)            # after optimizer.step(); the parameters'
                                             # .grad still hold this batch's gradients;
                                             # step counts optimizer steps from 1
        on_epoch_end(epoch, history, model)  # after validation and the scheduler step;
                                             # epochs count from 1; return True to stop
                                             # (history.stopped_epoch is then set)
        on_train_end(history, model)         # after the last epoch, or the one a
                                             # callback stopped at
        on_exception(error, model)           # training was interrupted by an error
                                             # (NaNLossError, KeyboardInterrupt, ...),
                                             # which propagates once they all ran;
                                             # on_train_end is then not called
    """
    Xtr, ytr = _check_pair(train, "train")
    if val is not None:
        Xva, yva = _check_pair(val, "val")
    if early_stopping is not None and val is None:
        raise ValueError("fit: early_stopping watches the validation loss; pass "
                         "val=(X_val, y_val)")
    if int(epochs) < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    fns = _resolve_metrics(metrics, loss_fn)
    dtype = _model_dtype(model)
    Xtr = _inputs(Xtr, dtype)
    ytr = _as_y(ytr, dtype)
    rng = get_rng(rng)
    built = []
    if early_stopping is not None:
        built.append(EarlyStopping(early_stopping, min_delta=min_delta,
                                   restore_best=restore_best))
    if progress:
        built.append(ProgressBar(epochs=int(epochs)))
    callbacks = built + list(callbacks or ())
    for cb in callbacks:
        if isinstance(cb, type):
            raise TypeError(f"fit: callbacks holds the class {cb.__name__}; pass an "
                            f"instance, e.g. {cb.__name__}(...)")
    val_batch = None if batch_size is None else max(int(batch_size), 256)

    history = History()
    step = 0
    try:
        _call(callbacks, "on_train_begin", model)
        for epoch in range(1, int(epochs) + 1):
            values, step = _train_epoch(
                model, loss_fn, optimizer,
                batches(Xtr, ytr, batch_size, shuffle=shuffle, rng=rng), fns, callbacks,
                epoch, step)
            if val is not None:
                ev = evaluate(model, loss_fn, Xva, yva, batch_size=val_batch, metrics=fns)
                values.update({f"val_{k}": v for k, v in ev.items()})
            history.log(epoch, values)
            if scheduler is not None:
                scheduler.step()
            if _call(callbacks, "on_epoch_end", epoch, history, model):
                history.stopped_epoch = epoch
                break
    except BaseException as error:
        _call(callbacks, "on_exception", error, model)
        raise
    _call(callbacks, "on_train_end", history, model)
    return history
