"""``Switch``: a per-thread mode set by a plain call, a ``with`` block or a decorator.

PyTorch's ``torch.set_grad_enabled(False)`` works all three ways, and so do this
project's switches (``ag.set_grad_enabled``, ``ag.set_broadcast_warnings``): a subclass
says how to read and write its mode (``get`` and ``set``), this class does the rest.
"""

from __future__ import annotations

import contextlib


class Switch(contextlib.ContextDecorator):
    """Set a mode for the calling thread.

    As a plain call it sets the mode from then on; as ``with Switch(mode): ...`` (or a
    decorator) only inside, restoring the previous mode on the way out. Subclasses
    define the static methods ``get()`` and ``set(mode)``.
    """

    @staticmethod
    def get() -> bool:
        raise NotImplementedError

    @staticmethod
    def set(mode: bool) -> None:
        raise NotImplementedError

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = [self.get()]  # what the first __exit__ restores
        self._armed = True  # the mode is already set: the first __enter__ has no work
        self.set(self.mode)

    def __call__(self, func):
        # used as a decorator: the mode applies to the function's calls, not from now on
        if self._armed:
            self.set(self._prev.pop())
            self._armed = False
        return super().__call__(func)

    def _recreate_cm(self):
        # each call of a decorated function gets its own object (threads, recursion)
        cm = object.__new__(type(self))
        cm.mode, cm._prev, cm._armed = self.mode, [], False
        return cm

    def __enter__(self):
        if self._armed:
            self._armed = False
        else:
            self._prev.append(self.get())
            self.set(self.mode)
        return self

    def __exit__(self, *exc):
        self.set(self._prev.pop())
        return False
