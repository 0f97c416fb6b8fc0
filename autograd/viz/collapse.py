"""Shrinking a graph too large to draw: collapse nn modules into one box each.

Graphs built by ``nn`` modules carry a name scope on every op (``ctx.scope``, e.g.
``"layers.0"``). A *plan* maps each scope drawn as a single box to that box's node id
(``{"layers.0": "m0", ...}``); every node inside a collapsed scope is drawn as its box.
"""

from __future__ import annotations

from .model import GraphModel

__all__ = ["plan_collapse", "owner", "count_visible", "check_size", "resolve_rankdir"]


def plan_collapse(model: GraphModel, max_nodes, collapse_modules, expand) -> dict:
    """Decide which module scopes to draw as one box. Returns {scope: module id}.

    ``collapse_modules=True`` collapses only when the graph has more than ``max_nodes``
    nodes: first the innermost modules, then their parents, until it fits.
    ``"always"`` collapses the innermost modules in any case; ``False`` never.
    Scopes named in ``expand`` (and the scopes around them) stay open.
    """
    n = len(model.nodes)
    if collapse_modules not in (True, False, "always"):
        raise ValueError(f"draw_graph: collapse_modules must be True, False or 'always', "
                         f"got {collapse_modules!r}")
    too_big = max_nodes is not None and n > max_nodes
    scopes = model.scopes()
    keep = set()
    for s in expand or ():
        parts = s.split(".")
        keep.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    unknown = [s for s in expand or () if s not in scopes]
    if unknown:
        raise ValueError(f"draw_graph: expand={unknown!r} names no module in this graph; "
                         f"its modules are {scopes!r}")
    plan: dict = {}
    if collapse_modules is False or not scopes or (collapse_modules is True and not too_big):
        return plan
    depth = max(s.count(".") + 1 for s in scopes)
    for d in range(depth, 0, -1):
        chosen = [s for s in scopes if s.count(".") + 1 == d and s not in keep]
        plan = {s: f"m{k}" for k, s in enumerate(chosen)}
        if max_nodes is None or count_visible(model, plan) <= max_nodes:
            break
        if collapse_modules == "always" and not too_big:
            break
    return plan


def owner(scope: str, plan: dict) -> str | None:
    """The collapsed scope that contains ``scope``, if any."""
    if not plan or not scope:
        return None
    parts = scope.split(".")
    for k in range(1, len(parts) + 1):
        s = ".".join(parts[:k])
        if s in plan:
            return s
    return None


def count_visible(model: GraphModel, plan: dict) -> int:
    """How many nodes a drawing with ``plan`` shows."""
    hidden = sum(1 for node in model.nodes.values() if owner(node.scope, plan))
    return len(model.nodes) - hidden + len(plan)


def check_size(model: GraphModel, plan: dict, max_nodes, who: str = "draw_graph") -> None:
    """Raise a clear ``ValueError`` when the drawing would still be too big."""
    if max_nodes is None:
        return
    n = count_visible(model, plan)
    if n > max_nodes:
        full = len(model.nodes)
        after = f" ({n} after collapsing modules)" if plan else ""
        raise ValueError(
            f"{who}: this graph has {full} nodes{after}, more "
            f"than max_nodes={max_nodes}; Graphviz would take a long time on it and the "
            "picture would be unreadable. Draw less: draw an intermediate tensor instead "
            "of the final loss (e.g. one layer's output), use a smaller batch or fewer "
            "loop iterations, build the model from nn modules so it can be collapsed "
            "(collapse_modules=True or 'always'), or raise the limit "
            f"(max_nodes={full}, or max_nodes=None for no limit)."
        )


def resolve_rankdir(model: GraphModel, plan: dict, rankdir: str) -> str:
    """``rankdir="auto"``: left to right, unless the drawing would be a long chain far
    longer than it is wide; then top to bottom, so it reads down the page instead of
    becoming one line many screens wide."""
    if rankdir != "auto":
        return rankdir
    rep = {}
    for nid, node in model.nodes.items():
        s = owner(node.scope, plan)
        rep[nid] = plan[s] if s else nid
    depth: dict = {}
    for e in model.edges:  # edges come in topological order of their ops
        a, b = rep[e.src], rep[e.dst]
        if a != b:
            depth[b] = max(depth.get(b, 0), depth.get(a, 0) + 1)
    ranks = max(depth.values(), default=0) + 1
    width: dict = {}
    for nid in set(rep.values()):
        d = depth.get(nid, 0)
        width[d] = width.get(d, 0) + 1
    widest = max(width.values(), default=1)
    return "TB" if ranks > 24 and ranks > 4 * widest else "LR"
