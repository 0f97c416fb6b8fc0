"""Numbers, shapes and arrays as short text: what boxes, captions and panels print.

Every picture and every explanation formats values the same way: four significant
digits, ``nan`` / ``inf`` spelled out, small arrays in full and large ones as a range.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_number", "shape_text", "array_lines", "short"]


def format_number(x) -> str:
    """One number, short: 4 significant digits, ``nan``/``inf`` spelled out."""
    x = float(x.real) if isinstance(x, complex) else float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.4g}"


def shape_text(shape) -> str:
    """``"scalar"``, ``"(3,)"`` or ``"(2, 3)"``."""
    if len(shape) == 0:
        return "scalar"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(n) for n in shape) + ")"


def array_lines(a, max_elements: int = 6) -> list:
    """Text lines showing an array: all values when small, a summary when large."""
    a = np.asarray(a)
    if a.size == 0:
        return ["[]"]
    if a.dtype.kind not in "fciub":
        return [f"<{a.dtype}>"]
    if a.ndim == 0:
        return [format_number(a.item())]
    if a.size <= max_elements and a.ndim <= 2:
        if a.ndim == 1:
            return ["[" + ", ".join(format_number(v) for v in a) + "]"]
        if a.shape[1] == 1 and a.shape[0] > 1:  # a column: one line, transposed
            return ["[" + ", ".join(format_number(v) for v in a[:, 0]) + "]ᵀ"]
        rows = ["[" + ", ".join(format_number(v) for v in row) + "]" for row in a]
        return ["[" + rows[0] + ("," if len(rows) > 1 else "]")] + [
            " " + r + ("," if k < len(rows) - 1 else "]") for k, r in enumerate(rows[1:], 1)
        ]
    af = a.astype(np.float64, copy=False) if a.dtype.kind != "c" else np.abs(a)
    finite = np.isfinite(af)
    bad = a.size - int(finite.sum())
    if bad == a.size:
        return [f"all {a.size} non-finite"]
    vals = af[finite]
    lines = [f"{format_number(vals.min())} … {format_number(vals.max())}"]
    if bad:
        lines.append(f"{bad} NaN/Inf")
    return lines


def short(g, max_elements: int = 3) -> str:
    """An array in one short line (values when small, a summary when large); ``?`` for
    None (no gradient has arrived yet)."""
    if g is None:
        return "?"
    lines = array_lines(g, max_elements)
    if len(lines) == 1:
        return lines[0]
    if np.asarray(g).size <= max_elements:
        return " ".join(s.strip() for s in lines)
    return lines[0] + f" (shape {tuple(np.shape(g))})"
