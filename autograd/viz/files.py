"""Writing a picture or a page to disk, never leaving half a file."""

from __future__ import annotations

import os

__all__ = ["write_file"]


def write_file(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` through a ``.part`` file renamed over it (so a failed
    write never leaves half a file), making the directory if needed. Returns ``path``."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
