"""Saving and loading weights as ``.npz`` files, never pickle.

``nn.save(model, "model.npz")`` writes the model's ``state_dict()`` (or a dict of
name -> array you pass) as a NumPy ``.npz`` archive, one ``.npy`` member per array.
The write is atomic: the archive goes to a temporary file in the same directory, is
flushed to disk, and only then renamed over ``path``, so a crash or error mid-save
leaves any earlier file at ``path`` intact, never a half-written one.

``nn.load("model.npz")`` returns the dict of arrays; pass it to
``model.load_state_dict``. It never unpickles (``allow_pickle=False``) and reports a
missing, corrupt, truncated or pickle-bearing file with an error naming the file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

import autograd as ag

__all__ = ["save", "load", "LoadError"]


class LoadError(ValueError):
    """A file that ``nn.load`` cannot read as a state dict (corrupt, truncated,
    pickled content, not an .npz archive)."""


def _state_of(obj) -> dict:
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"nn.save: expected a Module or a dict of name -> array, got "
                        f"{type(obj).__name__}")
    state = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"nn.save: keys must be non-empty strings, got {k!r}")
        arr = v.data if isinstance(v, ag.Tensor) else np.asarray(v)
        if arr.dtype.hasobject or arr.dtype.kind not in "biufc":
            raise TypeError(f"nn.save: {k!r} has dtype {arr.dtype}; only numeric arrays can "
                            "be saved (no pickled objects)")
        state[k] = arr
    return state


def save(obj, path) -> None:
    """Write ``obj`` (a Module, or a dict of name -> array) to ``path`` as ``.npz``,
    atomically. The name is used as given (no suffix is added)."""
    state = _state_of(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"nn.save: cannot write {path!r}: the directory "
                                f"{directory!r} does not exist (create it first)")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        # mkstemp makes the file private (0600); give it the mode the target has (or
        # an ordinary file's) before it takes the target's name
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED,
                                 allowZip64=True) as zf:
                for name, arr in state.items():
                    with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.ascontiguousarray(arr),
                                                  allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load(path) -> dict:
    """Read a state dict written by ``nn.save``: ``{name: ndarray}`` (in file order).

    Raises ``FileNotFoundError`` if ``path`` does not exist, and ``LoadError`` (a
    ValueError) naming the file if it is not a readable ``.npz`` archive: corrupt,
    truncated, or holding pickled objects, which are never loaded.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"nn.load: no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"nn.load: {path!r} is a directory, not a saved .npz file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        raise LoadError(f"nn.load: {path!r} is a pickle file, which is refused (loading it "
                        "could run arbitrary code); nn.save writes .npz archives of arrays")
    if not (head.startswith(b"PK") or head.startswith(b"\x93NUMPY")):
        what = "empty" if not head else f"unrecognised contents (starts with {head!r})"
        raise LoadError(f"nn.load: {path!r} is not an .npz archive: {what}; was it written "
                        "by nn.save, and completely?")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise LoadError(f"nn.load: {path!r} holds pickled data, which is refused "
                            "(loading it could run arbitrary code); nn.save never writes "
                            "pickles, so this file came from elsewhere") from None
        raise LoadError(f"nn.load: {path!r} is not a valid .npz archive (corrupt or "
                        f"truncated?): {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise LoadError(f"nn.load: cannot read {path!r} as an .npz archive (corrupt or "
                        f"truncated?): {type(err).__name__}: {err}") from None
    if isinstance(loaded, np.ndarray):
        raise LoadError(f"nn.load: {path!r} is a single .npy array, not a state dict "
                        "saved by nn.save (an .npz archive of named arrays)")
    state = {}
    with loaded:
        for key in loaded.files:
            try:
                state[key] = loaded[key]
            except ValueError as err:
                if "pickle" in str(err) or "Object arrays" in str(err):
                    raise LoadError(
                        f"nn.load: {path!r}: array {key!r} holds Python objects, which "
                        "would need unpickling and are refused; nn.save only writes "
                        "numeric arrays") from None
                raise LoadError(f"nn.load: {path!r}: array {key!r} is corrupt or truncated: "
                                f"{err}") from None
            except Exception as err:  # zipfile CRC errors, zlib errors, short reads
                raise LoadError(f"nn.load: {path!r}: array {key!r} is corrupt or truncated: "
                                f"{type(err).__name__}: {err}") from None
            if not isinstance(state[key], np.ndarray):
                raise LoadError(f"nn.load: {path!r}: member {key!r} is not a .npy array; "
                                "this zip file was not written by nn.save")
    return state
