"""How pictures look: the palette, the fonts, and how gradient sizes become colours.

Shared by the DOT labels, the renderer and the trace frames, so that every drawing
(and the legend under it) uses one set of colours.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

__all__ = ["PALETTE", "FONT", "MONO", "MONO_ADVANCE", "mix", "magnitude", "Scale",
           "edge_kind"]

#: Colours used by every drawing (fill, border) per kind of node, and for edges.
PALETTE = {
    "parameter": ("#E4F3E1", "#3E9A45"),      # leaves that require grad: what learns
    "input": ("#E2EDFB", "#2F6FD0"),          # leaves without grad: data, targets
    "intermediate": ("#F6F7F9", "#9AA1A9"),   # results of ops
    "output": ("#EFE6F8", "#7B3FB5"),         # the tensor drawn from (the loss)
    "constant": ("#FFFFFF", "#B8BDC3"),       # plain numbers / arrays passed to an op
    "module": ("#F1F4F8", "#546E7A"),         # a collapsed nn module
    "op": ("#37474F", "#263238"),             # op circles (dark, white symbol)
    "current": ("#FFF4CC", "#F2A900"),        # the node a trace frame is at
    "edge": "#9AA1A9",                        # edge with no gradient known (yet)
    "nograd": "#B4BAC1",                      # edge along which no gradient flows
    "zero": "#B0B5BA",                        # edge whose gradient is exactly zero
    "grad_lo": "#A9C4E4",                     # small gradient ...
    "grad_hi": "#0B2F6B",                     # ... large gradient
    "bad": "#D62728",                         # NaN or Inf
    "hot": "#F2A900",                         # edges being filled in a trace frame
    "text": "#263238",
    "muted": "#6B7480",
    "data_text": "#37474F",
    "grad_text": "#1550A8",
}

FONT = "Helvetica"
MONO = "Courier"
MONO_ADVANCE = 0.6 * 9  # points per character of the 9 pt monospace rows in boxes


def mix(c0: str, c1: str, t: float) -> str:
    """The colour a fraction ``t`` of the way from ``#RRGGBB`` ``c0`` to ``c1``."""
    a = [int(c0[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(c1[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(a, b))


_MAGNITUDES: dict = {}  # id(array) -> (weak reference to it, its magnitude)


def magnitude(a) -> float:
    """Mean |value| of an array, or ``math.inf`` if it holds NaN or Inf.

    Remembered per array object while it lives: the frames of a trace ask for the
    same gradients' sizes once per frame."""
    if isinstance(a, np.ndarray):
        hit = _MAGNITUDES.get(id(a))
        if hit is not None and hit[0]() is a:
            return hit[1]
        m = _magnitude(a)
        if len(_MAGNITUDES) > 50_000:
            _MAGNITUDES.clear()
        _MAGNITUDES[id(a)] = (weakref.ref(a), m)
        return m
    return _magnitude(a)


def _magnitude(a) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    if a.dtype.kind not in "fc":
        return float(np.mean(np.abs(a))) if a.dtype.kind in "iub" else 0.0
    if not np.all(np.isfinite(a)):
        return math.inf
    return float(np.mean(np.abs(a)))


class Scale:
    """Maps a magnitude to 0..1 on a log scale spanning at most six decades, from the
    magnitudes it is built from (the largest maps to 1)."""

    def __init__(self, magnitudes):
        pos = [m for m in magnitudes if m > 0 and math.isfinite(m)]
        self.hi = max(pos) if pos else 1.0
        lo = min(pos) if pos else 1.0
        self.span = min(max(math.log10(self.hi / lo), 1.0), 6.0)

    def __call__(self, m: float) -> float:
        if m <= 0:
            return 0.0
        return max(0.0, 1.0 - math.log10(self.hi / m) / self.span) if m < self.hi else 1.0


def edge_kind(carries_grad: bool, value, metric: str | None) -> str | None:
    """How an edge is drawn: ``"nograd"`` (dashed), ``"bad"`` (NaN/Inf, red),
    ``"zero"`` (dotted), ``"ramp"`` (coloured by size) or None (plain grey).

    ``value`` is what colours it (a gradient or a value, per ``metric``: ``"grad"``,
    ``"data"`` or None), None when unknown.
    """
    if not carries_grad and metric != "data":
        return "nograd"
    if metric is None or value is None:
        return None
    m = magnitude(value)
    return "bad" if m == math.inf else ("zero" if m == 0 else "ramp")
