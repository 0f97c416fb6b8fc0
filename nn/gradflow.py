"""Gradient flow: how big are the gradients in each layer, and does each layer learn?

Two views, both matplotlib Figures:

- ``grad_flow(model)``, right after a ``loss.backward()``: per parameter (or per layer)
  the mean and max |gradient| on a log scale, and the grad:data ratio ‖g‖/‖w‖.
  Parameters whose gradient is exactly zero, missing (``.grad is None``: not used by
  the loss, or cut off) or NaN/Inf are flagged in red.
- ``GradFlowRecorder``: a ``fit`` callback (or call it yourself) that records the same
  statistics every ``every`` steps, plus the update:data ratio ‖Δw‖/‖w‖ of each
  optimizer step, and plots their history. A common rule of thumb: updates around
  1e-3 of the weights (the dashed guide line) mean a healthy learning rate; far below,
  the layer barely learns; far above, training is unstable.

``vanishing_gradients_example()`` shows the classic failure: in a deep MLP of sigmoid
units with default initialisation the gradient shrinks layer after layer on its way back
to the input, while a ReLU MLP with He initialisation keeps it level.

Everything here uses the public API only: ``model.named_parameters()``, ``.grad``,
``.data``.
"""

from __future__ import annotations

import math

import numpy as np

import autograd as ag

from .layers import MLP

__all__ = ["grad_flow", "GradFlowRecorder", "vanishing_gradients_example", "grad_stats"]

_BAR = "#8FB3DE"      # mean |grad|
_MAX = "#0B2F6B"      # max |grad|
_RATIO = "#3E9A45"    # grad : data
_FLAG = "#D62728"     # zero / missing / NaN
_GUIDE = 1e-3         # update : data rule of thumb


# --------------------------------------------------------------------------- statistics


def _group_name(name: str, by: str) -> str:
    if by == "parameter":
        return name
    return name.rsplit(".", 1)[0] if "." in name else name


def grad_stats(model, by: str = "parameter") -> dict:
    """Gradient statistics of every parameter (``by="parameter"``) or every layer
    (``by="layer"``: the parameters of one module pooled, e.g. ``layers.0``).

    Returns ``{name: {"mean": mean |g|, "max": max |g|, "ratio": ‖g‖/‖w‖,
    "flag": None | "zero" | "missing" | "nan", "size": number of values}}``, in the
    order of ``model.named_parameters()``. Statistics are NaN where they do not exist
    (a missing gradient) or are not finite.
    """
    if by not in ("parameter", "layer"):
        raise ValueError(f"grad_flow: by must be 'parameter' or 'layer', got {by!r}")
    groups: dict = {}
    for name, p in model.named_parameters():
        groups.setdefault(_group_name(name, by), []).append(p)
    if not groups:
        raise ValueError("grad_flow: the model has no parameters")
    out = {}
    for name, params in groups.items():
        grads = [p.grad for p in params]
        size = int(sum(p.size for p in params))
        if all(g is None for g in grads):
            out[name] = {"mean": math.nan, "max": math.nan, "ratio": math.nan,
                         "flag": "missing", "size": size}
            continue
        g = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in grads
                            if x is not None])
        w = np.concatenate([np.ravel(p.numpy().astype(np.float64)) for p in params])
        flag = None
        if not np.all(np.isfinite(g)):
            flag = "nan"
        elif any(x is None for x in grads):
            flag = "missing"
        elif not np.any(g):
            flag = "zero"
        finite = np.isfinite(g)
        ga = np.abs(g[finite]) if finite.any() else np.array([math.nan])
        w_norm = float(np.linalg.norm(w))
        g_norm = float(np.linalg.norm(g)) if flag != "nan" else math.nan
        out[name] = {
            "mean": float(ga.mean()) if flag != "nan" else math.nan,
            "max": float(ga.max()) if flag != "nan" else math.nan,
            "ratio": g_norm / w_norm if w_norm > 0 else math.nan,
            "flag": flag,
            "size": size,
        }
    return out


_FLAG_TEXT = {"zero": "zero grad", "missing": "no grad", "nan": "NaN / Inf"}


def _log_limits(values) -> tuple:
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return 1e-8, 1.0
    lo, hi = min(pos), max(pos)
    return lo / 4, hi * 4


# --------------------------------------------------------------------------- grad_flow


def grad_flow(model, *, by: str = "parameter", axes=None, title: str | None = None,
              figsize=None):
    """Plot the gradient of every parameter (or layer) after ``loss.backward()``.

    Top panel: mean |grad| (bars) and max |grad| (dark ticks) on a log scale, the
    parameters in network order (input on the left, output on the right). Bottom panel:
    the grad:data ratio ‖g‖/‖w‖. Zero, missing and NaN/Inf gradients cannot sit on a
    log scale: their column is shaded red and labelled, and their name is red.

    ``by``: ``"parameter"`` or ``"layer"``. ``axes``: two matplotlib Axes to draw into
    (e.g. to compare models side by side); by default a new Figure is made.
    Returns the matplotlib Figure.
    """
    stats = grad_stats(model, by)
    names = list(stats)
    x = np.arange(len(names))
    own = axes is None
    if own:
        import matplotlib.pyplot as plt  # on first use: import nn needs no matplotlib

        width = max(6.0, 0.55 * len(names) + 2.5)
        fig, axes = plt.subplots(2, 1, figsize=figsize or (width, 5.6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    ax_g, ax_r = axes
    fig = ax_g.figure
    mean = np.array([stats[n]["mean"] for n in names])
    mx = np.array([stats[n]["max"] for n in names])
    ratio = np.array([stats[n]["ratio"] for n in names])
    flags = [stats[n]["flag"] for n in names]

    ok = np.isfinite(mean) & (mean > 0)
    ax_g.bar(x[ok], mean[ok], width=0.6, color=_BAR, edgecolor="#5B86BD", lw=0.6,
             label="mean |grad|", zorder=2)
    okm = np.isfinite(mx) & (mx > 0)
    ax_g.scatter(x[okm], mx[okm], marker="_", s=260, linewidths=2.4, color=_MAX,
                 label="max |grad|", zorder=3)
    ax_g.set_yscale("log")
    lo, hi = _log_limits(list(mean) + list(mx))
    ax_g.set_ylim(lo, hi * 8)  # headroom for the legend
    for a, n in ((ax_g, "|gradient|"), (ax_r, "‖grad‖ / ‖weight‖")):
        a.set_ylabel(n)
        a.grid(axis="y", which="major", alpha=0.3, zorder=0)
        a.spines[["top", "right"]].set_visible(False)

    okr = np.isfinite(ratio) & (ratio > 0)
    ax_r.bar(x[okr], ratio[okr], width=0.6, color=_RATIO, alpha=0.8, label="grad : data",
             zorder=2)
    ax_r.set_yscale("log")
    ax_r.set_ylim(*_log_limits(ratio))

    for i, f in enumerate(flags):
        if f is None:
            continue
        for a in (ax_g, ax_r):
            a.axvspan(i - 0.4, i + 0.4, color=_FLAG, alpha=0.12, lw=0, zorder=1)
        ax_g.text(i, 0.5, _FLAG_TEXT[f], transform=ax_g.get_xaxis_transform(),
                  rotation=90, ha="center", va="center", color=_FLAG, fontsize=9,
                  fontweight="bold", fontfamily="sans-serif", zorder=4)
    ax_r.set_xticks(x)
    ax_r.set_xticklabels(names, rotation=35, ha="right", fontsize=9)
    for label, f in zip(ax_r.get_xticklabels(), flags):
        if f is not None:
            label.set_color(_FLAG)
            label.set_fontweight("bold")
    ax_r.set_xlim(-0.6, len(names) - 0.4)
    handles, labels = ax_g.get_legend_handles_labels()
    if any(flags):
        from matplotlib.patches import Patch

        handles.append(Patch(color=_FLAG, alpha=0.25))
        labels.append("flagged: zero / no / NaN grad")
    ax_g.legend(handles, labels, fontsize=8, loc="upper left", frameon=False, ncol=3)
    n_flag = sum(f is not None for f in flags)
    head = title or "Gradient flow"
    if n_flag:
        head += f"  ({n_flag} flagged)"
    ax_g.set_title(head, loc="left", fontsize=11, fontweight="bold")
    ax_r.set_xlabel("input  →  output" if by == "layer" else "parameter (input → output)",
                    fontsize=9, color="#555555")
    if own:
        fig.tight_layout()
        plt.close(fig)
    return fig


# --------------------------------------------------------------------------- recorder


class GradFlowRecorder:
    """Record per-layer gradient statistics during training, and plot their history.

    Use it as a ``fit`` callback::

        rec = nn.GradFlowRecorder(every=10)
        nn.fit(model, loss_fn, opt, train=(X, y), epochs=20, callbacks=[rec])
        rec.plot()

    or in your own loop, after ``optimizer.step()``: ``rec.on_batch_end(step, model)``
    (call ``rec.on_train_begin(model)`` before the first step to also get the first
    update). Every ``every`` steps it records, per layer (``by="layer"``) or per
    parameter: mean and max |grad|, the grad:data ratio ‖g‖/‖w‖ and the update:data
    ratio ‖Δw‖/‖w‖ of the step just taken. Zero, missing and NaN gradients are listed in
    ``flags`` as ``(step, name, kind)``.

    Attributes: ``steps`` (the steps recorded), ``stats`` (``{name: {"mean": [...],
    "max": [...], "ratio": [...], "update": [...]}}``), ``flags``.
    """

    def __init__(self, every: int = 1, by: str = "layer"):
        if int(every) < 1:
            raise ValueError(f"GradFlowRecorder: every must be >= 1, got {every}")
        if by not in ("parameter", "layer"):
            raise ValueError(f"GradFlowRecorder: by must be 'parameter' or 'layer', got {by!r}")
        self.every = int(every)
        self.by = by
        self.steps: list = []
        self.stats: dict = {}
        self.flags: list = []
        self._snapshot = None  # parameter values before the step to be recorded

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return (f"GradFlowRecorder({len(self.steps)} records of {len(self.stats)} "
                f"{self.by}s, every={self.every}, {len(self.flags)} flags)")

    # -- callback protocol of nn.fit -------------------------------------------------
    def on_train_begin(self, model) -> None:
        if self.every == 1:  # step 1 is recorded: keep the values it starts from
            self._snapshot = self._values(model)

    def on_batch_end(self, step: int, model) -> None:
        if step % self.every == 0:
            self.record(model, step)
        if (step + 1) % self.every == 0:
            self._snapshot = self._values(model)

    # -- recording -------------------------------------------------------------------
    @staticmethod
    def _values(model) -> dict:
        return {name: np.array(p.numpy(), dtype=np.float64)
                for name, p in model.named_parameters()}

    def record(self, model, step: int | None = None) -> None:
        """Record the current gradients (and the update since the last snapshot)."""
        if step is None:
            step = self.steps[-1] + 1 if self.steps else 1
        stats = grad_stats(model, self.by)
        updates = self._update_ratios(model)
        n_before = len(self.steps)
        self.steps.append(int(step))
        for name, s in stats.items():
            rec = self.stats.setdefault(
                name, {k: [math.nan] * n_before for k in ("mean", "max", "ratio", "update")})
            for k in ("mean", "max", "ratio"):
                rec[k].append(s[k])
            rec["update"].append(updates.get(name, math.nan))
            if s["flag"]:
                self.flags.append((int(step), name, s["flag"]))
        self._snapshot = None

    def _update_ratios(self, model) -> dict:
        snap = self._snapshot
        if snap is None:
            return {}
        delta: dict = {}
        weight: dict = {}
        for name, p in model.named_parameters():
            if name not in snap:
                continue
            key = _group_name(name, self.by)
            w = np.asarray(p.numpy(), dtype=np.float64)
            delta[key] = delta.get(key, 0.0) + float(np.sum((w - snap[name]) ** 2))
            weight[key] = weight.get(key, 0.0) + float(np.sum(w * w))
        return {k: math.sqrt(delta[k]) / math.sqrt(weight[k]) if weight[k] > 0 else math.nan
                for k in delta}

    # -- plotting --------------------------------------------------------------------
    def plot(self, figsize=None):
        """Three panels over training steps, one line per layer (input light, output
        dark): mean |grad|, grad:data ratio and update:data ratio (with the 1e-3 guide).
        Flagged gradients are marked with red crosses along the bottom. The legend sits
        to the right of the panels, in more columns when there are many layers."""
        if not self.steps:
            raise ValueError("GradFlowRecorder.plot: nothing recorded yet; pass the "
                             "recorder to nn.fit(..., callbacks=[rec]) or call "
                             "rec.on_batch_end(step, model) after each optimizer step")
        import matplotlib.pyplot as plt

        names = list(self.stats)
        # one legend for all three panels, outside them on the right: it never covers a
        # curve, however many layers there are (long lists wrap into more columns)
        n_entries = len(names) + 1 + bool(self.flags)
        ncol = math.ceil(n_entries / 18)
        width = 14 + 1.4 * ncol
        fig, axes = plt.subplots(1, 3, figsize=figsize or (width, 4.2), sharex=True)
        cmap = plt.get_cmap("viridis")
        colors = {n: cmap(0.85 - 0.75 * i / max(1, len(names) - 1))
                  for i, n in enumerate(names)}
        steps = np.array(self.steps)
        panels = (("mean", "mean |gradient|"), ("ratio", "‖grad‖ / ‖weight‖"),
                  ("update", "update : data  ‖Δw‖ / ‖w‖"))
        handles, labels = [], []
        for col, (ax, (key, label)) in enumerate(zip(axes, panels)):
            for n in names:
                v = np.array(self.stats[n][key], dtype=np.float64)
                v = np.where(v > 0, v, np.nan)
                (line,) = ax.plot(steps, v, color=colors[n], lw=1.6, label=n)
                if col == 0:
                    handles.append(line)
                    labels.append(n)
            ax.set_yscale("log")
            ax.set_title(label, loc="left", fontsize=10, fontweight="bold")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3, which="major")
            ax.spines[["top", "right"]].set_visible(False)
            if self.flags:
                fx = [s for s, _, _ in self.flags]
                marks = ax.scatter(fx, [0.03] * len(fx), transform=ax.get_xaxis_transform(),
                                   marker="x", color=_FLAG, s=30, zorder=5, clip_on=False,
                                   label="zero / no / NaN grad")
        guide = axes[2]
        updates = [x for n in names for x in self.stats[n]["update"] if x > 0]
        if updates:
            lo, hi = _log_limits(updates)
            guide.set_ylim(min(lo, _GUIDE / 3), max(hi, _GUIDE * 3))
        else:
            guide.set_ylim(_GUIDE / 100, _GUIDE * 100)
        handles.append(guide.axhline(_GUIDE, color="#555555", ls="--", lw=1.2,
                                     label="1e-3 guide"))
        labels.append("1e-3 guide")
        if self.flags:
            handles.append(marks)
            labels.append("zero / no / NaN grad")
        if not updates:
            guide.text(0.5, 0.5, "no updates recorded\n(use as a fit callback)",
                       transform=guide.transAxes, ha="center", va="center", color="#777777")
        guide.legend(handles, labels, fontsize=8, frameon=False, title=self.by,
                     title_fontsize=8, loc="upper left", bbox_to_anchor=(1.03, 1.0),
                     borderaxespad=0.0, ncol=ncol, alignment="left")
        fig.suptitle("Gradient flow during training", x=0.01, ha="left", fontsize=12,
                     fontweight="bold")
        fig.tight_layout()
        plt.close(fig)
        return fig


# --------------------------------------------------------------------------- example


def vanishing_gradients_example(depth: int = 10, width: int = 32, n: int = 256,
                                seed: int = 0):
    """A ready example of vanishing gradients; returns a matplotlib Figure.

    Two MLPs of ``depth`` hidden layers of ``width`` units see the same batch and the
    same loss (mean squared error against random targets), and one backward pass each:

    - sigmoid units with the default initialisation: each layer multiplies the
      gradient by σ' ≤ 1/4 times a small weight, so it shrinks by orders of magnitude
      on its way back to the first layer (left);
    - ReLU units with He initialisation (weights ~ N(0, 2/fan_in)): the gradient keeps
      its size from the last layer to the first (right).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width))
    Y = rng.normal(size=(n, 1))
    sizes = [width] * (depth + 1) + [1]
    models = {
        "Deep sigmoid MLP, default init": MLP(sizes, activation="sigmoid"),
        "ReLU MLP, He init": MLP(sizes, activation="relu"),
    }
    sig, relu = models.values()
    for _, p in sig.named_parameters():  # the usual default: U(±1/√fan_in)
        fan_in = p.data.shape[1] if p.data.ndim == 2 else width  # every layer has width inputs
        bound = 1.0 / math.sqrt(fan_in)
        p.data[...] = rng.uniform(-bound, bound, p.data.shape)
    for _, p in relu.named_parameters():
        if p.data.ndim == 2:  # weight (out, in): He normal, fan_in = in
            p.data[...] = rng.normal(0.0, math.sqrt(2.0 / p.data.shape[1]), p.data.shape)
        else:
            p.data[...] = 0.0
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 6.2), sharex="col",
                             gridspec_kw={"height_ratios": [3, 2]})
    for col, (title, model) in enumerate(models.items()):
        out = model(ag.Tensor(X))
        loss = ((out - Y) ** 2).mean()
        loss.backward()
        grad_flow(model, by="layer", axes=(axes[0, col], axes[1, col]), title=title)
    for row in axes:  # one scale per row, so the two models compare at a glance
        lo = min(a.get_ylim()[0] for a in row)
        hi = max(a.get_ylim()[1] for a in row)
        for a in row:
            a.set_ylim(lo, hi)
    fig.suptitle(f"Vanishing gradients: {depth} hidden layers of {width} units",
                 x=0.01, ha="left", fontsize=12, fontweight="bold")
    fig.tight_layout()
    plt.close(fig)
    return fig
