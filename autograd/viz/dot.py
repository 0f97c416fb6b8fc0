"""Rendering a ``GraphModel`` with Graphviz: the one module that imports ``graphviz``.

``render(model, overlay, options, plan)`` returns a ``GraphDrawing``, a
``graphviz.Digraph`` whose DOT text (``.source``) exists without the ``dot`` program;
rendering it (``.save("graph.svg")``, ``.svg()``, inline display in Jupyter) runs
``dot`` and raises ``GraphvizNotFoundError`` with the install command when it is
missing. Import this module through ``backend.dot_module()``, which explains a missing
``graphviz`` package the same way.
"""

from __future__ import annotations

import math
import os

import graphviz

from .backend import DOT_MISSING, GraphvizNotFoundError
from .collapse import owner, resolve_rankdir
from .files import write_file
from .labels import (
    const_attrs,
    edge_attrs,
    ghost_attrs,
    legend,
    module_label,
    op_attrs,
    tensor_label,
    tensor_tooltip,
)
from .model import Edge, GraphModel, OpNode, TensorNode
from .style import FONT, PALETTE, Scale, edge_kind, magnitude
from .view import DrawOptions, Overlay

__all__ = ["GraphDrawing", "render", "pipe_text"]


def pipe_text(engine: str, source: str, fmt: str, no_op=None) -> str:
    """Run Graphviz's ``engine`` on DOT ``source`` and return its text output (``no_op=2``:
    ``neato -n2``, keep the positions given)."""
    try:
        out = graphviz.pipe(engine, fmt, source.encode("utf-8"), neato_no_op=no_op)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError(DOT_MISSING) from None
    return out.decode("utf-8")

_RENDER_FORMATS = {"svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps", "webp"}
_RASTER_FORMATS = {"png", "jpg", "jpeg", "gif", "webp"}
_MAX_FAN_OUT = 4  # a leaf with more uses than this is drawn once plus a copy per use


class GraphDrawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that saves in one call and explains a missing ``dot``.

    - ``g.save("graph.svg")`` / ``"graph.png"`` / ``"graph.pdf"``: renders and writes
      the picture (any other suffix, e.g. ``.gv``, writes the DOT source as usual);
    - ``g.svg()``: the SVG text;
    - in Jupyter the drawing displays inline.
    """

    def pipe(self, *args, **kwargs):
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(DOT_MISSING) from None

    def render(self, *args, **kwargs):
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(DOT_MISSING) from None

    def svg(self) -> str:
        """Render with ``dot`` and return the SVG text."""
        return self.pipe(format="svg", encoding="utf-8")

    def save(self, filename=None, directory=None, *, dpi: int = 144, **kwargs) -> str:
        """Write the drawing. The suffix picks the format: ``.svg .png .pdf ...`` are
        rendered with ``dot`` (raster images at ``dpi``); anything else (``.gv``,
        ``.dot``) gets the DOT source. Returns the path written."""
        if filename is not None:
            path = os.fspath(filename)
            if directory is not None:
                path = os.path.join(os.fspath(directory), path)
            fmt = os.path.splitext(path)[1].lstrip(".").lower()
            if fmt in _RENDER_FORMATS:
                src = self
                if fmt in _RASTER_FORMATS and "dpi=" not in self.source:
                    src = self.copy()
                    src.attr(dpi=str(dpi))
                return write_file(path, src.pipe(format=fmt))
        return super().save(filename, directory=directory, **kwargs)


def render(model: GraphModel, overlay: Overlay, opts: DrawOptions, plan: dict, *,
           statements_only: bool = False, cache: dict | None = None) -> GraphDrawing:
    """Draw ``model`` with the gradients and highlights of ``overlay``; the scopes in
    ``plan`` (see ``collapse.plan_collapse``) are drawn as one box each.

    ``statements_only``: only record what would be drawn (``.statements``,
    ``.edge_statements``), not the DOT text: how ``frames.compose`` gets the looks of
    every frame of a trace after laying out one. ``cache``: a dict kept between calls
    with the same model and options, where a tensor's box is looked up by the gradient
    array it shows (arrays that live as long as the cache: a trace's)."""
    if cache is None:
        cache = {}
    g = GraphDrawing(name="chainrule", format="svg")
    if ("rankdir", opts.rankdir) not in cache:
        cache[("rankdir", opts.rankdir)] = resolve_rankdir(model, plan, opts.rankdir)
    g.attr(rankdir=cache[("rankdir", opts.rankdir)], bgcolor="white", fontname=FONT,
           nodesep="0.25", ranksep="0.35", newrank="true", labeljust="l", labelloc="b", pad="0.2")
    g.attr("node", fontname=FONT, fontsize="11", shape="plain")
    g.attr("edge", fontname=FONT, fontsize="8", color=PALETTE["edge"], arrowsize="0.7")

    # which visible node stands for each node (itself, or its collapsed module)
    rep = {}
    members: dict = {s: [] for s in plan}
    for nid, node in model.nodes.items():
        scope = owner(node.scope, plan)
        rep[nid] = plan[scope] if scope else nid
        if scope:
            members[scope].append(nid)
    scope_of_module = {mid: s for s, mid in plan.items()}

    # node statements, grouped by scope for the clusters
    by_scope: dict = {}
    kinds_seen = []

    def note_kind(k):
        if k not in kinds_seen:
            kinds_seen.append(k)

    emitted_modules = set()
    for nid, node in model.nodes.items():
        r = rep[nid]
        if r != nid:
            if r in emitted_modules:
                continue
            emitted_modules.add(r)
            scope = scope_of_module[r]
            current = any(i in overlay.current for i in members[scope])
            label = module_label(scope, members[scope], model, overlay.tensor_grads, opts,
                                 current)
            parent = scope.rsplit(".", 1)[0] if "." in scope else ""
            by_scope.setdefault(parent, []).append(
                (r, {"label": label, "tooltip": scope, "id": r,
                     "class": "module current" if current else "module"}))
            note_kind("module")
            continue
        current = nid in overlay.current
        if isinstance(node, TensorNode):
            grad = overlay.tensor_grads.get(nid)
            key = (nid, id(grad), overlay.status.get(nid), current)
            hit = cache.get(key)  # (the gradient, kept alive so its id stays its own; attrs)
            attrs = None if hit is None else hit[1]
            if attrs is None:
                label = tensor_label(node, grad, overlay.status.get(nid),
                                     overlay.pad.get(nid), opts, current)
                attrs = {"label": label, "id": nid, "tooltip": tensor_tooltip(node),
                         "class": f"tensor {node.kind}" + (" current" if current else "")}
                cache[key] = (grad, attrs)
            attrs = dict(attrs)
            note_kind(node.kind)
        elif isinstance(node, OpNode):
            attrs = op_attrs(node, current)
            attrs.update(id=nid, **{"class": "op current" if current else "op"})
            note_kind("op")
        else:  # a constant
            attrs = const_attrs(node)
            attrs.update(id=nid, **{"class": "constant"})
            note_kind("constant")
        by_scope.setdefault(node.scope, []).append((nid, attrs))

    # edges, merged when both ends fall into modules
    metric = opts.color_by
    values = {}
    if metric == "grad":
        values = overlay.edge_grads
    elif metric == "data":
        values = {i: model.nodes[e.tensor].tensor._data for i, e in enumerate(model.edges)
                  if e.tensor is not None}
    scale = overlay.scale or Scale([magnitude(v) for v in values.values()])
    merged = {}
    for i, e in enumerate(model.edges):
        a, b = rep[e.src], rep[e.dst]
        if a == b:
            continue
        key = (a, b) if a in scope_of_module or b in scope_of_module else i
        prev = merged.get(key)
        if prev is None or _edge_rank(values.get(i)) > _edge_rank(values.get(prev[0][0])):
            merged[key] = ([i] + (prev[0] if prev else []), a, b)
        else:
            prev[0].append(i)
    # a leaf used by many ops far apart (a weight shared by every step of a loop) is
    # drawn once, at its first use; each further use gets a small copy of its name
    # beside the op. Long edges across the whole picture would be unreadable, and
    # they make Graphviz's layout time grow with the square of the graph's length.
    uses: dict = {}
    for _, a, b in merged.values():
        node = model.nodes.get(a)
        if isinstance(node, TensorNode) and a not in model.op_of:
            uses.setdefault(a, []).append(b)
    ghosts = {a for a, ops in uses.items() if len(ops) > _MAX_FAN_OUT}
    first_use = {}
    for key, (idxs, a, b) in list(merged.items()):
        if a not in ghosts:
            continue
        if a not in first_use:
            first_use[a] = b
            continue
        gid = f"{a}_use{len(first_use)}_{b}"
        first_use[gid] = b
        node = model.nodes[a]
        by_scope.setdefault(model.nodes[b].scope if b in model.nodes else "", []).append(
            (gid, ghost_attrs(node, gid)))
        merged[key] = (idxs, gid, b)

    if not statements_only:
        _emit_clusters(g, by_scope, model.scope_title)
    # what was drawn, for composing many frames of one layout (``frames.compose``)
    g.statements = [(nid, attrs) for items in by_scope.values() for nid, attrs in items]
    g.edge_statements = []

    edges_seen = set()  # how the drawn edges look, for the legend
    for idxs, a, b in merged.values():
        i = idxs[0]
        e = model.edges[i]
        if metric is None:
            attrs = {"color": PALETTE["edge"], "penwidth": "1.1"}
            kind = edge_kind(e.carries_grad, None, None)
            if kind == "nograd":
                attrs["style"] = "dashed"
        else:
            carries = any(model.edges[k].carries_grad for k in idxs)
            v = values.get(i)
            key = ("edge", i, id(v), carries, metric)
            if key not in cache:
                proto = Edge(e.src, e.dst, e.tensor, e.op, e.pos, carries)
                cache[key] = (v, edge_kind(carries, v, metric),
                              edge_attrs(proto, v, scale, metric))
            kind, attrs = cache[key][1], dict(cache[key][2])
        hot = [overlay.hot[k] for k in idxs if k in overlay.hot]
        if hot:
            attrs.update(color=PALETTE["hot"], penwidth="3.4", arrowsize="0.9", style="solid")
            if hot[0]:  # the value sent shows on hover (and in the receiving box)
                attrs["tooltip"] = f"sent in this step: {hot[0]}"
            attrs["class"] = "edge hot"
            kind = "hot"
        edges_seen.add(kind)
        if len(idxs) > 1:
            attrs.setdefault("tooltip", f"{len(idxs)} edges")
        attrs["id"] = f"e_{a}_{b}"
        if not statements_only:
            g.edge(a, b, **attrs)
        g.edge_statements.append((a, b, attrs))

    if opts.legend or opts.title or overlay.caption:
        if opts.legend:
            g.attr(label=legend(kinds_seen, opts, overlay, edges_seen))
        else:
            text = " — ".join(x for x in (opts.title, overlay.caption) if x)
            g.attr(label=text, fontsize="12")
    return g


def _edge_rank(v) -> float:
    """Which of several merged edges speaks for them: the largest gradient."""
    if v is None:
        return -1.0
    m = magnitude(v)
    return 1e308 if m == math.inf else m


def _emit_clusters(g: GraphDrawing, by_scope: dict, title) -> None:
    """Emit node statements inside one nested cluster per (not collapsed) scope, labelled
    ``title(scope)``; its SVG group's id is ``scope:<scope>``."""
    scopes = [s for s in by_scope if s]
    # every enclosing scope of a used scope gets a cluster too
    tree: dict = {"": []}
    order = [""]
    for s in scopes:
        parts = s.split(".")
        for k in range(1, len(parts) + 1):
            p = ".".join(parts[:k])
            if p not in tree:
                tree[p] = []
                order.append(p)
                tree[".".join(parts[:k - 1])].append(p)
    # build innermost first (iteratively: deepest scopes first)
    built: dict = {}
    for s in sorted(order, key=lambda x: -(x.count(".") + 1 if x else 0)):
        sub = g if s == "" else graphviz.Digraph(name=f"cluster_{order.index(s)}")
        if s:
            sub.attr(label=title(s), id=f"scope:{s}", style="rounded,dashed",
                     color="#B8C2CC", fontcolor="#546E7A", fontsize="10", bgcolor="#FBFCFD",
                     labeljust="l", margin="10")
        for nid, attrs in by_scope.get(s, []):
            sub.node(nid, **attrs)
        for child in tree[s]:
            sub.subgraph(built[child])
        if s:
            built[s] = sub
