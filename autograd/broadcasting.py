"""A warning for the one broadcast that is almost never meant: (n,) with (n, 1).

``y * scores`` with ``y`` of shape (100,) and ``scores`` of shape (100, 1) is legal
broadcasting and gives a (100, 100) result: every label meets every score. A loss built on
it is a number, backward runs, and training sits at chance without a message. An
elementwise op of two inputs warns once per line of user code when it broadcasts a 1-D
(n,) against a (..., n, 1) into (..., n, n), naming both shapes and the likely fix.

The check costs nothing on the usual path: ``Function.apply`` calls ``check_pair`` only
for ops that broadcast elementwise and only when the two inputs differ in rank.

``ag.set_broadcast_warnings(False)`` turns the warning off for the calling thread (as a
plain call, or ``with ag.set_broadcast_warnings(False): ...`` for a block); an outer
product written with both shapes spelled out (``a[:, None] * b[None, :]``) never warns.
"""

from __future__ import annotations

import sys
import threading
import warnings

from .switch import Switch

__all__ = ["BroadcastWarning", "set_broadcast_warnings", "broadcast_warnings_enabled"]


class BroadcastWarning(UserWarning):
    """An elementwise op broadcast (n,) with (n, 1) into (n, n); see ``check_pair``."""


class _Switch(threading.local):
    def __init__(self):
        self.on = True


_switch = _Switch()


def broadcast_warnings_enabled() -> bool:
    """Whether the (n,)-with-(n, 1) warning is on in the calling thread."""
    return _switch.on


class set_broadcast_warnings(Switch):
    """Turn the (n,)-with-(n, 1) broadcast warning on or off for the calling thread.

    A plain call (``ag.set_broadcast_warnings(False)``) sets it from then on; in a
    ``with`` block (or as a decorator) it applies inside and is restored on the way out.
    """

    get = staticmethod(broadcast_warnings_enabled)

    @staticmethod
    def set(mode: bool) -> None:
        _switch.on = mode


def check_pair(op, a, b) -> None:
    """Warn if ``op`` broadcasts a 1-D (n,) against a (..., n, 1), n > 1."""
    short, long_ = (a, b) if a.ndim < b.ndim else (b, a)
    if short.ndim != 1 or long_.ndim < 2:
        return
    n = short.shape[0]
    if n < 2 or long_.shape[-1] != 1 or long_.shape[-2] != n or not _switch.on:
        return
    name = op.__name__.lower()
    out = long_.shape[:-1] + (n,)
    first, second = tuple(a.shape), tuple(b.shape)
    message = (
        f"{name}: broadcasting shapes {first} and {second} gives {out}: each of the {n} "
        f"values of one meets all {n} values of the other. If the two were meant "
        f"elementwise (labels and scores, targets and predictions), give both the same "
        f"shape: reshape the (n, 1) one with .reshape(-1) (or the (n,) one with "
        f".reshape(-1, 1)). If an outer {name} is what you want, write the shapes out "
        f"(a[:, None] and b[None, :]), or switch this warning off with "
        f"ag.set_broadcast_warnings(False)."
    )
    # shown at the user's line, once per line (Python's default for a warning)
    warnings.warn(message, BroadcastWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` from ``check_pair``: the innermost frame
    outside autograd and the libraries built on it (those anomaly mode counts)."""
    from .anomaly import _LIBRARIES

    level, f = 1, sys._getframe(1)
    while f is not None:
        if f.f_globals.get("__name__", "").partition(".")[0] not in _LIBRARIES:
            return level
        level, f = level + 1, f.f_back
    return 1
