"""Saving and loading weights as ``.npz`` or ``.safetensors`` files, never pickle.

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
import functools
import json
import math
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

__all__ = ["save", "load", "LoadError", "MAX_MEMBER_BYTES", "SAFETENSORS_SUFFIX",
           "export_onnx"]

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


def save(obj, path, *, metadata: dict | None = None) -> None:
    """Write ``obj`` (a Module, or a dict of name -> array) to ``path``, atomically: as
    ``.safetensors`` if the name ends so, otherwise as ``.npz``. The name is used as
    given (no suffix is added). An error (a folder that is not writable, a full disk)
    names ``path`` and leaves any file there unchanged.

    ``metadata`` (``.safetensors`` only): more ``{str: str}`` entries for the header's
    ``__metadata__``, next to ``architecture``, ``chainrule_version`` and ``dtype``."""
    state = _state_of(obj)
    path = os.fspath(path)
    if _is_safetensors(path):
        header = _safetensors_header(state, _metadata_of(obj, state, metadata))
        write = functools.partial(_write_safetensors, header=header, state=state)
    elif metadata is not None:
        raise ValueError(f"nn.save: metadata is written to .safetensors files only; "
                         f"{path!r} is saved as .npz")
    else:
        write = functools.partial(_write_npz, state=state)
    save_atomically(path, write, "nn.save")


def save_atomically(path, write, who: str = "nn.save") -> None:
    """Call ``write(f)`` on a temporary file next to ``path`` and rename it over
    ``path`` once complete (the machinery behind ``nn.save``, shared by every file the
    library writes). Errors name ``path``, never the temporary file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{who}: cannot write {path!r}: the directory "
                                f"{directory!r} does not exist (create it first)")
    try:
        _write_atomically(path, write)
    except OSError as err:
        raise _naming_target(err, path, directory, who) from None


def _write_npz(f, state: dict) -> None:
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for name, arr in state.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arr, order="C"),
                                          allow_pickle=False)


def _naming_target(err: OSError, path: str, directory: str, who: str = "nn.save") -> OSError:
    """``err``, met while saving, reworded to name the target instead of the temporary
    file (the user never asked for that one)."""
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += (f": the directory {directory!r} is not writable ({who} writes a "
                   "temporary file next to the target, then renames it); save elsewhere "
                   "or fix the permissions")
    message = f"{who}: cannot write {path!r}: {reason}"
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

    A path ending in ``.safetensors`` is read in that format (from chainrule, PyTorch's
    ``safetensors.torch.save_file`` or any other writer); its arrays are never larger
    than the file, so no limit applies.

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
    if _is_safetensors(path):
        return _load_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") < 2**32:
        raise LoadError(f"nn.load: {path!r} looks like a .safetensors file (a header length, "
                        "then JSON), not an .npz archive; give it the .safetensors suffix "
                        "to load it as one")
    head = head[:8]
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


# ---------------------------------------------------------------------- safetensors
#
# The layout (the format's own specification): an unsigned 64-bit little-endian N, then
# N bytes of UTF-8 JSON, then the data. The JSON maps each tensor's name to
# {"dtype": "F64", "shape": [2, 3], "data_offsets": [begin, end]} (offsets into the
# data, which the tensors cover back to back, with no gap), plus an optional
# "__metadata__" of string values. Tensors are C-ordered and little-endian.

SAFETENSORS_SUFFIX = ".safetensors"
_MAX_HEADER_BYTES = 100_000_000  # the reference reader's limit on the JSON header

_DTYPE_CODES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}
_CODE_OF = {np.dtype(v): k for k, v in _DTYPE_CODES.items()}


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(SAFETENSORS_SUFFIX)


def _metadata_of(obj, state: dict, extra: dict | None) -> dict:
    """The header's ``__metadata__``: what was saved, by which version, in which dtype
    (the floating-point one; "mixed" when there are several), and ``extra``."""
    floats = sorted({str(a.dtype) for a in state.values() if a.dtype.kind in "fc"})
    meta = {
        "format": "pt",  # what PyTorch-side tools (transformers) check for
        "architecture": type(obj).__name__ if hasattr(obj, "state_dict") else "state_dict",
        "chainrule_version": ag.__version__,
        "dtype": floats[0] if len(floats) == 1 else ("mixed" if floats else "none"),
    }
    for k, v in (extra or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"nn.save: metadata must map strings to strings (the "
                            f"safetensors format allows nothing else), got {k!r}: {v!r}")
        meta[k] = v
    return meta


def _safetensors_header(state: dict, metadata: dict) -> bytes:
    """The length-prefixed JSON header for ``state``, padded with spaces so that the
    data starts 8-byte aligned (as the reference writer does)."""
    header, offset = {}, 0
    for name, arr in state.items():
        if name == "__metadata__":
            raise ValueError("nn.save: a tensor cannot be named '__metadata__' in a "
                             ".safetensors file (the name is reserved for the header)")
        code = _CODE_OF.get(arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">"
                            else arr.dtype)
        if code is None:
            raise TypeError(f"nn.save: {name!r} has dtype {arr.dtype}, which .safetensors "
                            f"cannot hold; use one of {sorted(map(str, _CODE_OF))} or .npz")
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def _raw_bytes(arr: np.ndarray) -> memoryview:
    """The bytes of ``arr`` as the file holds them: C order, little-endian."""
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return memoryview(arr.reshape(-1)).cast("B")


def _write_safetensors(f, header: bytes, state: dict) -> None:
    f.write(header)
    for arr in state.values():
        f.write(_raw_bytes(arr))


def _load_safetensors(path: str) -> dict:
    def bad(what: str) -> LoadError:
        return LoadError(f"nn.load: {path!r} is not a readable .safetensors file: {what}")

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if head.startswith(b"PK"):
            raise bad("it is a zip archive (an .npz file?); name it .npz to load it as one")
        if len(head) < 8:
            raise bad(f"it holds {len(head)} bytes, fewer than the 8-byte header length "
                      "(empty or truncated)")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise bad(f"its first 8 bytes announce a header of {n:,} bytes, but the file "
                      f"has {size - 8:,} after them (truncated, or not this format)")
        if n > _MAX_HEADER_BYTES:
            raise bad(f"its header of {n:,} bytes is larger than the format allows "
                      f"({_MAX_HEADER_BYTES:,})")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise bad(f"its header is not JSON ({err}); truncated, or not this format") \
                from None
        if not isinstance(header, dict):
            raise bad(f"its header is a JSON {type(header).__name__}, not an object")
        metadata = header.pop("__metadata__", None)
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(v, str) for v in metadata.values())):
            raise bad("its __metadata__ is not a map of strings to strings")
        entries = sorted(((_checked_entry(name, e, bad), name) for name, e in
                          header.items()), key=lambda item: item[0][2:])
        data_size, end = size - 8 - n, 0
        for (_, _, begin, stop), name in entries:
            if begin != end:
                raise bad(f"tensor {name!r} starts at data byte {begin}, expected {end} "
                          "(the tensors must follow one another with no gap or overlap)")
            end = stop
        if end != data_size:
            raise bad(f"the header describes {end:,} bytes of data, the file holds "
                      f"{data_size:,}" + (" (truncated)" if end > data_size else ""))
        state = {}
        for (dtype, shape, begin, stop), name in entries:
            raw = f.read(stop - begin)
            if len(raw) != stop - begin:  # the file shrank while being read
                raise bad(f"tensor {name!r} is cut short (truncated)")
            arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
            state[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return {name: state[name] for name in header}  # in the header's order


def _checked_entry(name, entry, bad) -> tuple:
    """``(dtype, shape, begin, end)`` of one header entry, every field checked."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"the entry for {name!r} is not {{dtype, shape, data_offsets}}: "
                  f"{str(entry)[:80]}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in _DTYPE_CODES:
        raise bad(f"tensor {name!r} has dtype {code!r}, which nn.load does not read "
                  f"(it reads {', '.join(_DTYPE_CODES)})")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad(f"tensor {name!r} has shape {shape!r}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(
            type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1]):
        raise bad(f"tensor {name!r} has data_offsets {offsets!r}, not [begin, end]")
    dtype = np.dtype(_DTYPE_CODES[code])
    if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
        raise bad(f"tensor {name!r} of dtype {code} and shape {tuple(shape)} needs "
                  f"{math.prod(shape) * dtype.itemsize:,} bytes, its data_offsets "
                  f"{offsets} span {offsets[1] - offsets[0]:,}")
    return dtype, tuple(shape), offsets[0], offsets[1]


# ---------------------------------------------------------------------- ONNX export


def export_onnx(model, example_input, path, **options) -> str:
    """Write ``model`` as an ONNX file at ``path`` (atomically, as ``save``): the graph
    of one forward pass on ``example_input`` (a Tensor or array, or a tuple of them),
    one ONNX node per op, the parameters and buffers as initializers under their
    ``state_dict`` names, the batch axis (the first) free. The model runs in eval mode
    (batch norm with its running statistics, no dropout), as PyTorch exports it; its
    mode is restored afterwards. ``options``: see ``ag.export_onnx``. Returns ``path``.

    Run the file with onnxruntime, or open it in Netron (https://netron.app, or
    ``pip install netron; netron model.onnx``) to see the network."""
    from autograd.export import to_onnx

    params = dict(model._named_state())
    options.setdefault("graph_name", type(model).__name__)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        proto = to_onnx(model, example_input, params=params, **options)
    finally:
        for m, mode in modes:  # parents first: each module ends with its own mode
            m.train(mode)
    data = proto.SerializeToString()
    save_atomically(path, lambda f: f.write(data), "nn.export_onnx")
    return os.fspath(path)
