"""Callbacks for ``nn.fit``: early stopping and the progress bar.

``fit`` is an epoch loop; everything optional around it is a callback, an object with
some of the methods ``on_train_begin``, ``on_batch_end``, ``on_epoch_end``,
``on_train_end`` and ``on_exception`` (the protocol is spelled out in ``nn.fit``'s
docstring). ``fit(early_stopping=..., progress=...)`` builds the two below; pass them
yourself (``callbacks=[nn.EarlyStopping(5, monitor="val_loss")]``) to set them up
differently. ``nn.GradFlowRecorder`` is another one.
"""

from __future__ import annotations

import math

__all__ = ["EarlyStopping", "ProgressBar"]


class EarlyStopping:
    """Stop training once the monitored loss stops improving, and keep the best weights.

    ``EarlyStopping(patience, min_delta=0.0, restore_best=True, monitor="val_loss")``.
    After each epoch it reads the epoch's ``monitor`` value from the history (lower is
    better). An epoch improves on the best so far if its value is lower by more than
    ``min_delta``; after ``patience`` epochs in a row without an improvement it asks
    ``fit`` to stop. With ``restore_best``, a copy of the best epoch's weights is kept
    and loaded back into the model when training ends.

    It keeps ``history.best_epoch`` at the epoch it counts as the best. Attributes:
    ``best_epoch``, ``best`` (its value), ``wait`` (epochs since the last improvement).
    One object can serve several ``fit`` calls: each starts afresh.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, restore_best: bool = True,
                 monitor: str = "val_loss"):
        if int(patience) < 1:
            raise ValueError(f"EarlyStopping: patience (fit's early_stopping=) is a number "
                             f"of epochs, at least 1; got {patience}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.monitor = monitor
        self.on_train_begin(None)

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"restore_best={self.restore_best}, monitor={self.monitor!r})")

    def on_train_begin(self, model) -> None:
        self.best = math.inf
        self.best_epoch = None
        self.wait = 0
        self._best_state = None

    def on_epoch_end(self, epoch: int, history, model) -> bool:
        if self.monitor not in history:
            raise ValueError(
                f"EarlyStopping watches {self.monitor!r}, which this training does not "
                f"record (recorded: {sorted(history.keys())}); give fit validation data, "
                "nn.fit(..., val=(X_val, y_val)), or monitor another quantity")
        value = history[self.monitor][-1]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_state = model.state_dict()  # a copy
        else:
            self.wait += 1
        history.best_epoch = self.best_epoch
        return self.wait >= self.patience

    def on_train_end(self, history, model) -> None:
        if self._best_state is not None:
            model.load_state_dict(self._best_state)
            self._best_state = None


class ProgressBar:
    """A tqdm progress bar over epochs, showing the last epoch's losses and metrics.

    ``ProgressBar(epochs=None, desc="fit")``: ``epochs`` is the bar's total (``fit``
    passes its own). Without tqdm installed nothing is shown. ``bar`` is the tqdm bar
    while training runs, None otherwise; the bar is closed however training ends.
    """

    def __init__(self, epochs: int | None = None, desc: str = "fit"):
        self.epochs = epochs
        self.desc = desc
        self.bar = None

    def on_train_begin(self, model) -> None:
        self._close()
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=self.epochs, desc=self.desc, unit="epoch", leave=True)

    def on_epoch_end(self, epoch: int, history, model) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in history.last().items()},
                                 refresh=False)

    def on_train_end(self, history, model) -> None:
        bar = self.bar
        if bar is not None and getattr(history, "stopped_epoch", None) is not None:
            # stopped early on purpose: the bar ends full (a notebook bar closed short of
            # its total turns red, as for an error), saying where it stopped
            planned, bar.total = bar.total, bar.n
            bar.set_description(f"{self.desc} (stopped early: {bar.n} of {planned} epochs)",
                                refresh=False)
        self._close()

    def on_exception(self, error, model) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
