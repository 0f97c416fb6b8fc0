"""Pictures of the engine, a layer on top of it: graphs, and backward step by step.

- ``model``: the graph behind every picture, as plain data; ``collapse``: shrinking a
  large one module by module; ``view``: the gradients laid on a drawing;
- ``labels`` and ``dot``: the DOT rendering (``dot`` is the only module that imports
  ``graphviz``, on the first drawing: ``backend``); ``draw``: ``draw_graph``;
- ``trace``: ``trace_backward`` and its record; ``explain``: its words; ``page``: its
  standalone HTML page; ``widget``: its Jupyter widget (imports ``ipywidgets`` when
  asked for).

Importing this package imports neither Graphviz nor ipywidgets.
"""

from .backend import GraphvizNotFoundError, dot_module
from .draw import draw_graph
from .model import GraphModel
from .style import PALETTE
from .trace import BackwardTrace, TraceStep, trace_backward

__all__ = ["draw_graph", "GraphDrawing", "GraphvizNotFoundError", "trace_backward",
           "BackwardTrace", "TraceStep", "GraphModel", "PALETTE"]


def __getattr__(name):
    # GraphDrawing subclasses graphviz.Digraph: it exists once graphviz is imported
    if name == "GraphDrawing":
        return dot_module().GraphDrawing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
