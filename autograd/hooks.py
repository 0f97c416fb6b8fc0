"""``RemovableHandle``: what registering a hook returns, for Tensors and nn Modules alike.

An object that keeps hooks holds them in a dict; registering one stores it under the
id of a new handle::

    handle = RemovableHandle(self._hooks)
    self._hooks[handle.id] = hook
    return handle

``handle.remove()`` takes the hook out again; ``with x.register_hook(fn): ...`` keeps
it on for the block only. (PyTorch's name and behaviour.)
"""

from __future__ import annotations

import itertools

__all__ = ["RemovableHandle"]

_next_id = itertools.count()


class RemovableHandle:
    """A handle on one registered hook: ``.remove()`` unregisters it (a second call does
    nothing); used as a context manager, it removes the hook when the block ends.

    ``hooks`` is the dict the hook is stored in, under this handle's ``id`` (unique in
    the process).
    """

    __slots__ = ("_hooks", "id")

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(_next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False

    def __repr__(self) -> str:
        state = "registered" if self.id in self._hooks else "removed"
        return f"<RemovableHandle id={self.id} ({state})>"
