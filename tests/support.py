"""What the tests need from the machine, and how a missing piece is handled.

Outside CI a test that needs something absent (torch, Graphviz's ``dot``, Chromium,
Jupyter) skips with a reason. In CI (the ``CI`` environment variable set) nothing may
be missing: the same test fails instead, so a skipped test never hides a missing
install step.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(missing: str | None, what: str = "this test") -> None:
    """Skip (or, in CI, fail) when ``missing`` names something absent."""
    if missing:
        if in_ci():
            pytest.fail(f"CI is set but {missing} is missing: {what} must run")
        pytest.skip(f"{missing} not installed")


def require_module(name: str, what: str = "this test"):
    """Import ``name``, or skip (in CI: fail) when it is not installed."""
    try:
        return __import__(name)
    except ImportError:
        require(f"the Python package {name!r} (pip install -e '.[test]')", what)


def dot_missing() -> str | None:
    return None if shutil.which("dot") else "Graphviz `dot` (apt-get install graphviz)"


needs_dot = pytest.mark.skipif(dot_missing() is not None and not in_ci(),
                               reason="Graphviz `dot` not installed (apt-get install graphviz)")


# Chromium as the browser tests launch it (Debian's package; playwright's own download
# does not work offline)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def browser_missing() -> str | None:
    """What a test that renders a page in Chromium lacks: playwright, Chromium or dot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright"
    if not os.path.exists(CHROMIUM):
        return CHROMIUM
    return dot_missing()
