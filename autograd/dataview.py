"""``DataView``: what ``Tensor.data`` returns.

It is the tensor's own array (the same memory, no copy) and an ndarray in every way,
with one addition: a write through it (``t.data[...] = v``, ``t.data -= lr * g``,
``np.copyto(t.data, v)``, ``t.data.fill(0)``, a ufunc's ``out=``) tells the tensor, so
that an op which saved those values for backward refuses to run its backward with the
changed data (see ``function.note_write``), as PyTorch's version counters do.

Results of computing with a view (``t.data * 2``, ``t.data.sum()``) are plain ndarrays;
views of it (``t.data[0]``, ``t.data.T``) write to the same memory and report too.
"""

from __future__ import annotations

import numpy as np

from .engine import note_write

__all__ = ["DataView"]


class DataView(np.ndarray):
    """An ndarray view of a Tensor's values that reports writes to the Tensor."""

    _owner = None  # the Tensor whose values these are

    def __array_finalize__(self, obj) -> None:
        # a view of a view shares its memory; a new array (a copy) belongs to no tensor
        self._owner = getattr(obj, "_owner", None) if self.base is not None else None

    def _note_write(self) -> None:
        if self._owner is not None:
            note_write(self._owner)

    def __setitem__(self, index, value) -> None:
        self._note_write()
        np.ndarray.__setitem__(self, index, value)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method == "at" and isinstance(inputs[0], DataView):  # np.add.at(view, ...)
            inputs[0]._note_write()
        args = tuple(a.view(np.ndarray) if isinstance(a, DataView) else a for a in inputs)
        if out is not None:
            for o in out:
                if isinstance(o, DataView):
                    o._note_write()
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, DataView) else o
                                  for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:  # in place: hand back the views written to (a += b keeps a)
            return out[0] if len(out) == 1 else out
        return result

    def __array_function__(self, func, types, args, kwargs):
        target = args[0] if func in _WRITES_FIRST_ARGUMENT and args else kwargs.get("out")
        if isinstance(target, DataView):
            target._note_write()
        return super().__array_function__(func, types, args, kwargs)

    def fill(self, value) -> None:
        self._note_write()
        np.ndarray.fill(self, value)

    def sort(self, *args, **kwargs) -> None:
        self._note_write()
        np.ndarray.sort(self, *args, **kwargs)

    def partition(self, *args, **kwargs) -> None:
        self._note_write()
        np.ndarray.partition(self, *args, **kwargs)

    def put(self, *args, **kwargs) -> None:
        self._note_write()
        np.ndarray.put(self, *args, **kwargs)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # results NumPy builds from a view (t.data.dot(w), t.data.argmax(1)) are plain
        result = array.view(np.ndarray) if isinstance(array, DataView) else array
        return result[()] if return_scalar else result

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))


def _on_plain_array(name: str):
    method = getattr(np.ndarray, name)

    def plain(self, *args, **kwargs):
        return method(self.view(np.ndarray), *args, **kwargs)

    plain.__name__ = name
    plain.__doc__ = f"``ndarray.{name}`` on the values: its result is a plain ndarray."
    return plain


# Methods whose result is a new array (a copy belongs to no tensor): plain ndarrays
for _name in ("copy", "astype", "flatten", "dot", "argmax", "argmin", "argsort", "nonzero",
              "take", "repeat", "compress", "searchsorted", "choose", "__copy__",
              "__deepcopy__"):
    setattr(DataView, _name, _on_plain_array(_name))
del _name

# NumPy functions that write into their first argument
_WRITES_FIRST_ARGUMENT = frozenset(
    [np.copyto, np.place, np.putmask, np.put, np.put_along_axis, np.fill_diagonal])
