"""``draw_graph(root)``: the graph that produced a tensor, as a ``graphviz.Digraph``.

The picture is the forward pass as a learner thinks of it: one box per tensor (its
name, shape, and for small tensors its values and gradient) and one small circle per op
(``+``, ``×``, ``@``, ``σ``, ``Σ``, ...) between the op's inputs and its result::

    x ──▶ (@) ──▶ v2 ──▶ (+) ──▶ v4 ──▶ (σ) ──▶ y
    W ──▶             b ──▶

Colours tell the roles apart (parameters, inputs, intermediates, the output; a legend
sits under the drawing). Once gradients are known, edges are coloured and thickened by
the size of the gradient flowing back along them; NaN or Inf is drawn in red.

Graphs built by ``nn`` modules carry a name scope on every op; their ops are grouped in
one cluster per module, and a graph too large to draw is shrunk by collapsing each
module into a single box (see ``max_nodes`` and ``collapse_modules``).

The steps: ``model.GraphModel`` (the graph as data), ``collapse`` (what to shrink),
``view`` (gradients known), then ``dot.render``, imported here on the first call.
"""

from __future__ import annotations

from .backend import dot_module
from .collapse import check_size, plan_collapse
from .model import GraphModel
from .view import DrawOptions, known_grads

__all__ = ["draw_graph"]


def draw_graph(root, *, show_data: bool = True, show_grad: bool = True,
               rankdir: str = "auto", color_by: str | None = "grad",
               max_nodes: int | None = 500, collapse_modules=True, expand=(),
               legend: bool = True, grads=None, max_elements: int = 6,
               title: str | None = None):
    """Draw the graph that produced ``root`` and return a ``graphviz.Digraph``.

    Parameters
    ----------
    root : Tensor
        The tensor to draw from (usually the loss). Every tensor it depends on is drawn.
    show_data, show_grad : bool
        Print each tensor's values / gradient in its box (all values for tensors of at
        most ``max_elements`` elements, a min … max range for bigger ones).
    rankdir : "auto", "LR", "TB", "RL" or "BT"
        Direction of the forward pass in the picture. ``"auto"``: left to right, or top
        to bottom for a long chain (a loop of many ops) far longer than it is wide.
    color_by : "grad", "data" or None
        What colours and thickens the edges: the mean |gradient| that flowed back along
        them (known after ``backward``: leaves' ``.grad``, tensors that ``retain_grad()``,
        or everything when ``grads=`` a trace), the mean |value| flowing forward, or
        nothing. Dashed edges carry no gradient; NaN / Inf are red.
    max_nodes : int or None
        Size guard. Above it, module clusters are collapsed (``collapse_modules``); if the
        graph still does not fit, a ``ValueError`` explains how to draw less.
    collapse_modules : True, False or "always"
        ``True``: collapse nn modules into one box each only when needed to fit
        ``max_nodes``; ``"always"``: collapse the innermost modules anyway;
        ``False``: never (every op drawn, modules as clusters around their ops).
    expand : iterable of str
        Module scopes (``"layers.0"``) to keep open while others are collapsed.
    legend : bool
        Draw the legend under the graph.
    max_elements : int
        Tensors of at most this many elements show every value; larger ones a range.
    grads : BackwardTrace or mapping {Tensor: array}, optional
        Gradients to show beyond ``.grad``: pass ``ag.trace_backward(loss)`` to see the
        gradient of every intermediate tensor and every edge. Without it, after a plain
        ``backward()``, only leaves (and tensors that called ``retain_grad()``) have a
        gradient to show, and a line under the picture says so.
    title : str, optional
        A title above the legend.

    Returns
    -------
    GraphDrawing
        A ``graphviz.Digraph``: ``.source`` is the DOT text; ``.save("graph.svg")``
        renders and writes it; in Jupyter it displays inline.

    Raises
    ------
    GraphvizNotFoundError
        Without the ``graphviz`` Python package (here), or without Graphviz's ``dot``
        program (when the drawing is rendered); the message gives the install command.

    Example
    -------
    >>> x = ag.Tensor([1.0, 2.0], name="x")
    >>> w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    >>> loss = (x * w).sum()
    >>> loss.backward()
    >>> ag.draw_graph(loss).save("graph.svg")  # doctest: +SKIP
    """
    if rankdir not in ("auto", "LR", "TB", "RL", "BT"):
        raise ValueError(f"draw_graph: rankdir must be 'auto', 'LR', 'TB', 'RL' or 'BT', "
                         f"got {rankdir!r}")
    if color_by not in ("grad", "data", None):
        raise ValueError(f"draw_graph: color_by must be 'grad', 'data' or None, got {color_by!r}")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError("draw_graph: max_nodes must be a positive int or None")
    dot = dot_module()
    model = GraphModel.build(root)
    plan = plan_collapse(model, max_nodes, collapse_modules, expand)
    check_size(model, plan, max_nodes)
    opts = DrawOptions(show_data=show_data, show_grad=show_grad, rankdir=rankdir,
                       color_by=color_by, legend=legend, max_elements=max_elements,
                       title=title)
    overlay = known_grads(model, grads)
    if show_grad and grads is None:
        overlay.caption = _hidden_grads_note(model, overlay)
    return dot.render(model, overlay, opts, plan)


def _hidden_grads_note(model, overlay) -> str:
    """After a plain ``backward()`` only leaves keep a gradient: a line saying how to see
    the intermediates' (empty when there is nothing to say)."""
    if not overlay.tensor_grads:
        return ""
    hidden = [tid for t, tid in model.ids.items()
              if t._ctx is not None and t.requires_grad and tid != model.root
              and tid not in overlay.tensor_grads]
    if not hidden:
        return ""
    # (t.retain_grad() before backward shows a tensor's gradient too: docstring)
    return "backward() keeps .grad on leaves only: grads=ag.trace_backward(loss) shows all"

