"""Graphviz, loaded on first use, and the error that says how to install it.

Drawing needs two pieces: the ``graphviz`` Python package (to build the DOT text) and
Graphviz's ``dot`` program (to render it). Neither is imported or looked for until a
picture is asked for: ``import autograd`` works without them, and so do the graph
model, the trace recorder and every number a trace holds.
"""

from __future__ import annotations

__all__ = ["GraphvizNotFoundError", "DOT_MISSING", "PACKAGE_MISSING", "dot_module"]


class GraphvizNotFoundError(RuntimeError):
    """Raised when a picture is asked for but Graphviz is missing: the ``graphviz``
    Python package (at ``draw_graph``) or the ``dot`` program (when rendering)."""


_SYSTEM_INSTALL = ("`sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                   "(macOS) or `conda install graphviz` (or run `make system-deps`)")

DOT_MISSING = (
    "Rendering a graph needs Graphviz's `dot` program, which was not found on PATH. "
    f"Install it: {_SYSTEM_INSTALL}. "
    "The DOT text itself needs no install: use `.source`."
)

PACKAGE_MISSING = (
    "Drawing a graph needs the `graphviz` Python package, which is not installed. "
    "Install it: `pip install graphviz` (`pip install -e .` in a checkout of chainrule "
    f"installs it too); rendering also needs Graphviz's `dot` program: {_SYSTEM_INSTALL}."
)


def dot_module():
    """``autograd.viz.dot`` (the renderer, the one module that imports ``graphviz``),
    imported on the first call; ``GraphvizNotFoundError`` when the package is missing."""
    try:
        from . import dot
    except ImportError as err:
        if (err.name or "").partition(".")[0] != "graphviz":
            raise
        raise GraphvizNotFoundError(PACKAGE_MISSING) from None
    return dot
