"""What one drawing shows on top of a ``GraphModel``: options and an overlay.

``DrawOptions`` are the user's choices (show values? colour edges by what?).
An ``Overlay`` is what is known at the moment drawn: gradients per tensor and per edge,
and, in a frame of a traced backward pass, which gradients are complete and which node
is being processed. ``draw_graph`` makes the overlay from ``.grad`` attributes
(``known_grads``); ``BackwardTrace`` makes one per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..tensor import Tensor
from .model import GraphModel
from .style import Scale

__all__ = ["DrawOptions", "Overlay", "known_grads"]


@dataclass
class DrawOptions:
    show_data: bool = True
    show_grad: bool = True
    rankdir: str = "auto"
    color_by: str | None = "grad"
    legend: bool = True
    max_elements: int = 6
    title: str | None = None
    trace: bool = False  # drawing a trace frame: legend mentions the highlight


@dataclass
class Overlay:
    """What one drawing shows on top of the model.

    ``tensor_grads``: gradients to print in tensor boxes; ``status``: per tensor,
    ``"done"`` / ``"partial"`` / ``"pending"`` in a trace frame (absent otherwise);
    ``edge_grads``: per edge index, the gradient that flowed along it; ``current``:
    node ids to highlight; ``hot``: edge index -> short text, edges being filled now;
    ``pad``: tensor id -> (lines, width) reserved for the gradient text, so every
    frame of a trace has boxes of the same size (and so the same layout); ``scale``:
    the colour scale of edge gradients (default: from the gradients shown).
    """

    tensor_grads: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    edge_grads: dict = field(default_factory=dict)
    current: set = field(default_factory=set)
    hot: dict = field(default_factory=dict)
    pad: dict = field(default_factory=dict)
    scale: Scale | None = None
    caption: str = ""


def known_grads(model: GraphModel, grads=None) -> Overlay:
    """The gradients already known for a plain drawing: ``.grad`` attributes, or
    ``grads`` (a mapping {Tensor: gradient}, or a ``BackwardTrace``: everything it saw).

    An edge gets a gradient when it is the only use of its tensor (then the tensor's
    gradient is exactly what flowed along it), and so does every op's edge into its
    result.
    """
    if grads is not None and hasattr(grads, "final_overlay"):
        return grads.final_overlay(model)
    mapping = {}
    if grads is not None:
        for k, v in dict(grads).items():
            mapping[k] = np.asarray(v._data if isinstance(v, Tensor) else v)
    tg, eg = {}, {}
    for t, tid in model.ids.items():
        g = mapping.get(t)
        if g is None:
            g = t.grad
            if isinstance(g, Tensor):  # after backward(create_graph=True): its values
                g = g._data
        if g is not None and t.requires_grad:
            tg[tid] = g
    for tid, g in tg.items():
        uses = model.uses.get(tid, [])
        if len(uses) == 1:
            eg[uses[0]] = g
        oid = model.op_of.get(tid)
        if oid is not None:
            eg[model.out_edge[oid]] = g
    return Overlay(tensor_grads=tg, edge_grads=eg)
