"""Anomaly mode: ``detect_anomaly()`` finds where the first NaN or Inf came from.

Inside ``with ag.detect_anomaly():`` every op remembers the line of user code that
created it, and the first NaN or Inf produced, in forward or in backward, raises an
``AnomalyError`` naming the op, its inputs' ranges, that line, and the op's own advice
(its ``hint``). It is an engine hook (``function.set_anomaly_hook``): ``Function.apply``
and the backward loop call it, and it reads only what the op class declares (``symbol``,
``rule``, ``hint``), so a custom ``Function`` is explained like a built-in op.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys

import numpy as np

from .function import get_anomaly_hook, set_anomaly_hook
from .tensor import Tensor
from .viz.model import op_symbol

__all__ = ["detect_anomaly", "AnomalyError", "register_library"]


class AnomalyError(RuntimeError):
    """The first NaN or Inf seen in anomaly mode. ``.op`` names the op, ``.where`` is the
    ``"file:line"`` of the user code that created it, ``.phase`` is ``"forward"`` or
    ``"backward"``."""

    def __init__(self, message: str, op: str = "", where: str | None = None,
                 phase: str = ""):
        super().__init__(message)
        self.op, self.where, self.phase = op, where, phase


# top-level packages whose frames are library code, not the user's
_LIBRARIES = {__name__.partition(".")[0]}


def register_library(package: str) -> None:
    """Count ``package``'s code as library code: anomaly mode then reports the first line
    outside it (and outside autograd) as where an op was made. A package built on
    autograd (``nn`` does this) calls it with its own name."""
    _LIBRARIES.add(package.partition(".")[0])


def _user_location() -> str | None:
    """``"file:line"`` of the innermost frame outside autograd and registered libraries."""
    f = sys._getframe(2)
    while f is not None:
        module = f.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _LIBRARIES:
            return f"{os.path.abspath(f.f_code.co_filename)}:{f.f_lineno}"
        f = f.f_back
    return None


def _source_line(where: str | None) -> str:
    if not where:
        return ""
    fn, _, line = where.rpartition(":")
    try:
        return linecache.getline(fn, int(line)).strip()
    except (ValueError, OSError):
        return ""


def _range_text(a) -> str:
    a = np.asarray(a)
    if a.dtype.kind not in "fciub":
        return f"dtype {a.dtype}"
    shape = tuple(a.shape)
    if a.size == 0:
        return f"shape {shape}, empty"
    af = a.astype(np.float64, copy=False) if a.dtype.kind != "c" else np.abs(a)
    finite = np.isfinite(af)
    n_bad = a.size - int(finite.sum())
    text = f"shape {shape}"
    if n_bad < a.size:
        vals = af[finite]
        text += f", range [{vals.min():.4g}, {vals.max():.4g}]"
    if n_bad:
        n_nan = int(np.isnan(af).sum())
        text += f", {n_nan} NaN, {n_bad - n_nan} Inf"
    return text


def _nonfinite(a) -> bool:
    a = np.asarray(a)
    return a.dtype.kind in "fc" and a.size > 0 and not np.all(np.isfinite(a))


def _what(a) -> str:
    a = np.asarray(a)
    n_nan = int(np.isnan(a).sum())
    n_inf = int(np.isinf(a).sum())
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} Inf")
    return " and ".join(parts) + f" (of {a.size} value{'s' if a.size != 1 else ''})"


def _input_name(ctx, j) -> str:
    parents = getattr(ctx, "parents", ())
    if j < len(parents) and isinstance(parents[j], Tensor) and parents[j].name:
        return f"input {j} ({parents[j].name})"
    return f"input {j}"


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager (or decorator) that finds where the first NaN / Inf came from.

    Inside it, every op records the ``"file:line"`` of the user code that created it
    (``ctx.created_at``, also shown by ``draw_graph`` and ``trace_backward``), and every
    op's output, and every gradient the backward pass sends, is checked. The first NaN
    or Inf raises ``AnomalyError`` naming the op, the ranges of its inputs and the line
    that created it. It slows each op down (a stack walk and a finiteness check).
    Inside, NumPy's floating-point warnings (divide by zero, overflow, invalid value) are
    off: the report says the same about the first one, naming the op and your line.

    ``with ag.detect_anomaly(): loss = model(x); loss.backward()``
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def _recreate_cm(self):  # as a decorator: a fresh one per call (recursion, threads)
        return detect_anomaly(self.check_nan)

    def __enter__(self):
        self._prev = get_anomaly_hook()
        # NumPy's own "divide by zero encountered in log" would only repeat, without the
        # op and the line, what the report says: off inside (per thread, as np.errstate)
        self._quiet = np.errstate(divide="ignore", over="ignore", invalid="ignore")
        if self.check_nan:
            self._quiet.__enter__()
        set_anomaly_hook(self)
        return self

    def __exit__(self, *exc):
        set_anomaly_hook(self._prev)
        if self.check_nan:
            self._quiet.__exit__(*exc)
        return False

    # -- the hooks Function.apply and the engine call --------------------------------
    def on_forward(self, ctx, out, arrays) -> None:
        where = _user_location()
        ctx.created_at = where
        if not self.check_nan or not _nonfinite(out):
            return
        name = ctx.name
        lines = [f"{name} produced {_what(out)} in the forward pass.",
                 f"  op:      {name} ({op_symbol(ctx)})"]
        lines += _where_lines(where)
        bad_inputs = []
        for j, a in enumerate(arrays):
            if isinstance(a, (np.ndarray, np.generic, float, int)):
                lines.append(f"  {_input_name(ctx, j)}: {_range_text(a)}")
                if _nonfinite(a):
                    bad_inputs.append(j)
        if bad_inputs:
            lines.append("  The NaN/Inf was already in its input: it came from data passed in "
                         "(check the inputs and parameters), not from this op.")
        else:
            lines += _hint_lines(ctx)
        raise AnomalyError("\n".join(lines), op=name, where=where, phase="forward")

    def on_backward(self, ctx, grad, sent) -> None:
        if not self.check_nan:
            return
        bad = [(p, g) for p, g in sent if _nonfinite(g)]
        if not bad and not _nonfinite(grad):
            return
        name = ctx.name
        where = ctx.created_at
        if _nonfinite(grad):
            head = (f"the gradient arriving at {name}'s output is already non-finite "
                    f"({_what(grad)}); it came from the seed gradient passed to backward "
                    "or from a hook")
        else:
            head = f"{name}.backward produced {_what(bad[0][1])} in the backward pass"
        lines = [head + ".", f"  op:      {name} ({op_symbol(ctx)})"]
        lines += _where_lines(where)
        if getattr(ctx, "rule", None):
            lines.append(f"  rule:    {ctx.rule}")
        lines.append(f"  gradient in: {_range_text(grad)}")
        parents = getattr(ctx, "parents", ())
        for j, p in enumerate(parents):
            if isinstance(p, Tensor):
                lines.append(f"  {_input_name(ctx, j)}: {_range_text(p._data)}")
        for p, g in bad:
            j = next((k for k, q in enumerate(parents) if q is p), 0)
            lines.append(f"  gradient sent to {_input_name(ctx, j)}: {_range_text(g)}")
        if not _nonfinite(grad):
            lines += _hint_lines(ctx)
        raise AnomalyError("\n".join(lines), op=name, where=where, phase="backward")


def _hint_lines(ctx) -> list:
    """The op's advice for a NaN/Inf (its class's ``hint``) as a message line, if any."""
    hint = getattr(ctx, "hint", None)
    return [f"  Hint: {hint.rstrip('.')}."] if hint else []


def _where_lines(where) -> list:
    if not where:
        return ["  created: (unknown: the op was made outside detect_anomaly())"]
    out = [f"  created: {where}"]
    src = _source_line(where)
    if src:
        out.append(f"           {src}")
    return out
