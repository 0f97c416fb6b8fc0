"""Timing and the side-by-side table every workload prints."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def cycle_batches(items):
    """The next item at each call, round and round."""
    return itertools.cycle(items).__next__


def training_step(model, opt, batches, loss_fn):
    """``step()`` for any library: the next of ``batches`` (pairs already in the
    library's types) through ``model`` and ``loss_fn(out, labels)``, backward, then
    ``opt.step()``; it returns the loss."""
    next_batch = cycle_batches(batches)

    def step():
        x, labels = next_batch()
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
        return loss

    return step


def best_time(fn, *, repeat: int = 7, min_time: float = 0.05) -> float:
    """Best seconds per call of ``fn()`` over ``repeat`` rounds of >= ``min_time`` each."""
    fn()  # warm up
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_time or number >= 1 << 20:
            break
        number *= 2
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return best


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@dataclass
class Table:
    """One workload: times per library, shown as ratios to ``baseline``."""

    title: str
    baseline: str
    unit: str = "per call"
    column: str = "time"  # what the numbers are
    fmt: Callable = fmt_time  # how one number is written
    rows: dict = field(default_factory=dict)  # name -> seconds (or None: not available)
    notes: list = field(default_factory=list)
    targets: list = field(default_factory=list)  # (description, met: bool)

    def add(self, name: str, seconds: float | None) -> None:
        self.rows[name] = seconds

    def ratio(self, name: str, to: str | None = None) -> float | None:
        a, b = self.rows.get(name), self.rows.get(to or self.baseline)
        return None if a is None or b is None else a / b

    def target(self, description: str, met: bool) -> None:
        self.targets.append((description, bool(met)))

    def markdown(self) -> str:
        base = self.rows.get(self.baseline)
        lines = [f"**{self.title}**", "",
                 f"| library | {self.column} ({self.unit}) | × {self.baseline} |",
                 "|---|---:|---:|"]
        for name, t in self.rows.items():
            if t is None:
                lines.append(f"| {name} | n/a | n/a |")
            else:
                ratio = f"{t / base:.2f}" if base else "n/a"
                lines.append(f"| {name} | {self.fmt(t)} | {ratio} |")
        for desc, met in self.targets:
            lines.append(f"\n- target: {desc}: **{'met' if met else 'missed'}**")
        for note in self.notes:
            lines.append(f"\n- {note}")
        return "\n".join(lines) + "\n"
