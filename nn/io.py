"""Saving and loading weights as ``.npz`` files, never pickle.

``nn.save(model, "model.npz")`` writes the model's ``state_dict()`` (or a dict of
name -> array you pass) as a NumPy ``.npz`` archive, one ``.npy`` member per array.
The write is atomic: the archive goes to a temporary file in the same directory
(``.model.npz.<random>.tmp``), is flushed to disk, and only then renamed over
``path``, so a crash or error mid-save leaves any earlier file at ``path`` intact,
never a half-written one. A save that is killed outright (``kill -9``, power loss)
cannot delete its temporary file; the next save of the same target does, once it is
sure that no other save still writes it (each save holds a lock on its temporary
file until it is renamed; the kernel drops the lock of a killed process).

``nn.load("model.npz")`` returns the dict of arrays; pass it to
``model.load_state_dict``. It never unpickles and reports a missing, corrupt,
truncated or pickle-bearing file with an error naming the file. Compressed members
(``np.savez_compressed`` writes them; ``nn.save`` does not) are refused when they
would inflate past ``max_member_bytes``: a small file must not fill the memory.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import zipfile

import numpy as np

import autograd as ag

try:
    import fcntl
except ImportError:  # Windows: no flock, so no clean-up of stale temporary files
    fcntl = None

__all__ = ["save", "load", "LoadError", "MAX_MEMBER_BYTES"]

MAX_MEMBER_BYTES = 2**27
"""``nn.load``'s default limit on the inflated size of one compressed member: 128 MiB."""


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
        arr = v.numpy() if isinstance(v, ag.Tensor) else np.asarray(v)
        if arr.dtype.hasobject or arr.dtype.kind not in "biufc":
            raise TypeError(f"nn.save: {k!r} has dtype {arr.dtype}; only numeric arrays can "
                            "be saved (no pickled objects)")
        state[k] = arr
    return state


def save(obj, path) -> None:
    """Write ``obj`` (a Module, or a dict of name -> array) to ``path`` as ``.npz``,
    atomically. The name is used as given (no suffix is added). An error (a folder that
    is not writable, a full disk) names ``path`` and leaves any file there unchanged."""
    state = _state_of(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"nn.save: cannot write {path!r}: the directory "
                                f"{directory!r} does not exist (create it first)")
    try:
        _write_atomically(path, lambda f: _write_npz(f, state))
    except OSError as err:
        raise _naming_target(err, path, directory) from None


def _write_npz(f, state: dict) -> None:
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for name, arr in state.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arr, order="C"),
                                          allow_pickle=False)


def _naming_target(err: OSError, path: str, directory: str) -> OSError:
    """``err``, met while saving, reworded to name the target instead of the temporary
    file (the user never asked for that one)."""
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += (f": the directory {directory!r} is not writable (nn.save writes a "
                   "temporary file next to the target, then renames it); save elsewhere "
                   "or fix the permissions")
    message = f"nn.save: cannot write {path!r}: {reason}"
    try:
        return type(err)(err.errno, message) if err.errno is not None else type(err)(message)
    except TypeError:  # a subclass with its own signature
        return OSError(err.errno, message)


# ---------------------------------------------------------------------- atomic writes
#
# The target is replaced by renaming a complete temporary file over it. Each save holds
# an exclusive flock on its temporary file from creation to rename, so another save of
# the same target can tell a stale temporary file (nobody holds its lock: its writer
# died) from one being written right now, and delete only the former.


def _write_atomically(path: str, write) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``."""
    directory, base = os.path.split(os.path.abspath(path))
    _remove_stale_temporaries(directory, base)
    fd, tmp = _create_temporary(directory, base)
    try:
        with os.fdopen(fd, "wb") as f:
            # the temporary file is private (0600); give it the mode the target has (or
            # an ordinary file's) before it takes the target's name
            try:
                mode = os.stat(path).st_mode & 0o777
            except OSError:
                mode = 0o644
            os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # still open, so still locked: never taken for stale
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


def _temporary_pattern(base: str) -> re.Pattern:
    return re.compile(re.escape(f".{base}.") + r"[0-9a-f]{16}\.tmp")


def _create_temporary(directory: str, base: str) -> tuple[int, str]:
    """Create and lock ``.<base>.<16 hex digits>.tmp`` in ``directory``: (fd, path)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        try:
            _lock(fd, wait=True)
            # between creating and locking it, another save may have taken the file
            # for a stale one and deleted it: then start again with a new one
            if _is_named(fd, tmp):
                return fd, tmp
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FileExistsError(errno.EEXIST, f"cannot create a temporary file in {directory!r}")


def _is_named(fd: int, name: str) -> bool:
    """Whether ``name`` is still the file open as ``fd``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(name))
    except FileNotFoundError:
        return False


def _lock(fd: int, wait: bool) -> bool:
    """Take an exclusive flock on ``fd``; False if another open file holds one (only when
    not ``wait``) or if this system or file system has no flock."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:  # BlockingIOError: in use; others: flock not supported here
        return False
    return True


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete the temporary files of saves of ``base`` that died before renaming them:
    ours by name, and not locked by a save in progress."""
    if fcntl is None:
        return
    pattern = _temporary_pattern(base)
    try:
        entries = [e for e in os.scandir(directory)
                   if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:  # gone already (renamed or cleaned by another save)
            continue
        try:
            if _lock(fd, wait=False):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def load(path, *, max_member_bytes: int = MAX_MEMBER_BYTES) -> dict:
    """Read a state dict written by ``nn.save``: ``{name: ndarray}`` (in file order).

    Raises ``FileNotFoundError`` if ``path`` does not exist, and ``LoadError`` (a
    ValueError) naming the file if it is not a readable ``.npz`` archive: corrupt,
    truncated, or holding pickled objects, which are never loaded.

    ``max_member_bytes`` (default ``MAX_MEMBER_BYTES``, 128 MiB): a compressed member
    that would inflate to more is refused before it is read (a 200 kB archive can hold
    200 MB of zeros). Raise it for a file you trust. Members stored uncompressed, as
    ``nn.save`` writes them, are no larger than the file and are not limited.
    """
    if not isinstance(max_member_bytes, (int, np.integer)) or max_member_bytes < 0:
        raise ValueError(f"nn.load: max_member_bytes must be a number of bytes >= 0, got "
                         f"{max_member_bytes!r}")
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
    if head.startswith(b"\x93NUMPY"):
        raise LoadError(f"nn.load: {path!r} is a single .npy array, not a state dict "
                        "saved by nn.save (an .npz archive of named arrays)")
    if not head.startswith(b"PK"):
        what = "empty" if not head else f"unrecognised contents (starts with {head!r})"
        raise LoadError(f"nn.load: {path!r} is not an .npz archive: {what}; was it written "
                        "by nn.save, and completely?")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise LoadError(f"nn.load: cannot read {path!r} as an .npz archive (corrupt or "
                        f"truncated?): {type(err).__name__}: {err}") from None
    with archive:
        return {_key(info, path): _read_member(archive, info, path, max_member_bytes)
                for info in archive.infolist()}


def _key(info: zipfile.ZipInfo, path: str) -> str:
    if not info.filename.endswith(".npy"):
        raise LoadError(f"nn.load: {path!r}: member {info.filename!r} is not a .npy array; "
                        "this zip file was not written by nn.save")
    return info.filename[:-4]


def _read_member(archive, info: zipfile.ZipInfo, path: str, limit: int) -> np.ndarray:
    key = info.filename[:-4]
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise LoadError(
            f"nn.load: {path!r}: array {key!r} is compressed with zip method "
            f"{info.compress_type}, which nn.load does not read (nn.save stores arrays "
            "uncompressed, np.savez_compressed deflates them); re-save it with either")
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > limit:
        raise LoadError(
            f"nn.load: {path!r}: array {key!r} is compressed and would inflate to "
            f"{info.file_size:,} bytes ({info.file_size / 2**20:.1f} MiB), more than "
            f"max_member_bytes={limit} allows (a guard against small files that fill the "
            f"memory). If you trust this file, raise the limit: "
            f"nn.load(path, max_member_bytes={info.file_size})")
    try:
        # zipfile inflates deflated data a bounded chunk at a time and no further than
        # the declared size (data beyond it fails the CRC check), so checking that size
        # bounds the memory a member can take
        with archive.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err) or "Object arrays" in str(err):
            raise LoadError(
                f"nn.load: {path!r}: array {key!r} holds Python objects, which would need "
                "unpickling and are refused; nn.save only writes numeric arrays") from None
        raise LoadError(f"nn.load: {path!r}: array {key!r} is corrupt or truncated: "
                        f"{err}") from None
    except Exception as err:  # zipfile CRC errors, zlib errors, short reads
        raise LoadError(f"nn.load: {path!r}: array {key!r} is corrupt or truncated: "
                        f"{type(err).__name__}: {err}") from None
