"""Writing a picture or a page to disk, never leaving half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["write_file"]


def write_file(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically, making the directory if needed; returns
    ``path``. The bytes go to a temporary file of its own in the same directory, renamed
    over ``path`` once complete, so a failed write leaves neither half a file nor the
    temporary one, and two writers never share a temporary file."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part",
                                   dir=directory)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path!r}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise OSError(err.errno, f"cannot write {path!r}: {err.strerror}") from None
        raise
    return path


def _mode_for(path: str) -> int:
    """The permissions ``path`` has now, or a new file's usual rw-r--r--."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o644
