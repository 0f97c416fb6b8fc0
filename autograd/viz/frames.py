"""Many frames of one layout, rendered at once: the frames of a traced backward pass.

Every frame of a trace has the same nodes, edges and box sizes; only labels, colours
and highlights change from step to step. Laying out each frame with ``dot`` would cost
a second per frame on a graph of a few hundred nodes, so instead:

1. one frame is laid out with ``dot`` (positions of nodes, edge splines, clusters);
2. every *distinct* look of a node or an edge over all frames is drawn once, in one
   ``neato -n2`` run that keeps those positions (no layout);
3. the SVG is cut into its pieces: a frame is the list of pieces it shows.

``compose(drawings)`` returns a ``Frames``: ``head`` and ``tail`` of the SVG text, the
``parts`` and, per frame, the indices of its parts, in drawing order (edges, then nodes).
``Frames.svg(i)`` joins them into one frame's SVG text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import unescape

from .backend import dot_module

__all__ = ["Frames", "compose"]


@dataclass
class Frames:
    head: str
    parts: list
    frames: list  # per frame: indices into parts
    tail: str

    def svg(self, i: int) -> str:
        return self.head + "".join(self.parts[k] for k in self.frames[i]) + self.tail

    def clusters(self) -> list:
        """The module clusters drawn: ``(scope, title, (x0, y0, x1, y1))`` each, in the
        SVG's own coordinates, in drawing order (a module before the modules inside it).
        The title is the cluster's label (``4 · Linear``); the scope, from its id."""
        out = []
        for m in _CLUSTER.finditer(self.head):
            shape = re.search(r'(?:\sd|points)="([^"]*)"', m.group(2))
            label = re.search(r"<text\b[^>]*>([^<]*)</text>", m.group(2))
            if not shape or not label:
                continue
            xy = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.group(1))]
            xs, ys = xy[0::2], xy[1::2]
            title = unescape(label.group(1))
            gid = unescape(m.group(1))
            scope = gid[len("scope:"):] if gid.startswith("scope:") else title
            out.append((scope, title, (min(xs), min(ys), max(xs), max(ys))))
        return out


def _pipe(engine: str, source: str, fmt: str, no_op=None) -> str:
    return dot_module().pipe_text(engine, source, fmt, no_op)


def _quote(value) -> str:
    text = str(value)
    if text.startswith("<") and text.endswith(">"):
        return text  # an HTML-like label
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(attrs: dict) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def _from_layout(obj: dict) -> dict:
    """The string attributes of a graph or cluster in ``dot -Tjson0`` output, as DOT
    attributes again (an HTML-like label comes without its outer ``<>``)."""
    attrs = {k: v for k, v in obj.items() if k not in _SKIP and isinstance(v, str)}
    if attrs.get("label", "").startswith("<"):
        attrs["label"] = f"<{attrs['label']}>"
    return attrs


_SKIP = {"_gvid", "nodes", "edges", "subgraphs", "name", "directed", "strict",
         "_subgraph_cnt", "tail", "head"}


def compose(drawings: list, base: int = 0) -> Frames:
    """Render ``drawings`` (``dot.render`` results of one model with one plan, so one
    layout) as ``Frames``; ``drawings[base]`` is the one laid out."""
    g = drawings[base]
    layout = json.loads(_pipe("dot", g.source, "json0"))
    objects = layout.get("objects", [])
    pos = {o["name"]: o for o in objects if "pos" in o}
    edge_pos = {e.get("id"): e["pos"] for e in layout.get("edges", []) if "pos" in e}

    lines = ["digraph composed {"]
    lines.append(f"graph [{_attrs(_from_layout(layout))}];")
    # the node and edge defaults, as the drawing set them
    lines += [ln.strip() for ln in g.body if ln.lstrip().startswith(("node [", "edge ["))]
    for o in objects:  # clusters: drawn from their bounding boxes
        if str(o.get("name", "")).startswith("cluster"):
            lines.append(f"subgraph {o['name']} {{ graph [{_attrs(_from_layout(o))}]; }}")

    # every distinct look of each node and edge, in first-seen order
    node_order = [nid for nid, _ in g.statements]
    edge_order = [attrs["id"] for _, _, attrs in g.edge_statements]
    looks: dict = {}  # (id, key) -> variant name
    first: dict = {}  # node id -> its first look (edges attach to it)
    frame_refs = []
    for d in drawings:
        refs = {}
        for nid, attrs in d.statements:
            key = (nid, tuple(attrs.items()))
            if key not in looks:
                name = f"{nid}__v{len(looks)}"
                looks[key] = name
                first.setdefault(nid, name)
                p = pos[nid]
                extra = {"pos": p["pos"], "width": p.get("width", "0.5"),
                         "height": p.get("height", "0.5")}
                lines.append(f"{_quote(name)} [{_attrs({**attrs, **extra, 'id': name})}];")
            refs[nid] = looks[key]
        for a, b, attrs in d.edge_statements:
            eid = attrs["id"]
            key = (eid, tuple(attrs.items()))
            if key not in looks:
                name = f"{eid}__v{len(looks)}"
                looks[key] = name
                extra = {"pos": edge_pos[eid], "id": name}
                lines.append(f"{_quote(first[a])} -> {_quote(first[b])} "
                             f"[{_attrs({**attrs, **extra})}];")
            refs[eid] = looks[key]
        frame_refs.append(refs)
    lines.append("}")
    svg = _pipe("neato", "\n".join(lines), "svg", no_op=2)

    head, groups, tail = _cut(svg)
    parts, index = [], {}
    for name, text in groups.items():
        index[name] = len(parts)
        parts.append(re.sub(r"__v\d+", "", text))
    frames = [[index[refs[i]] for i in edge_order + node_order if refs.get(i) in index]
              for refs in frame_refs]
    return Frames(head, parts, frames, tail)


_CLUSTER = re.compile(r'<g id="([^"]*)" class="cluster">(.*?)</g>', re.S)
_GROUP = re.compile(r'<g id="([^"]+)" class="(node|edge)[^"]*"')


def _cut(svg: str):
    """Split a rendered SVG into the text before its first node or edge, each node
    and edge group by id, and the closing text."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", svg, flags=re.S).strip()
    first = _GROUP.search(svg)
    head = svg[:first.start()]
    groups = {}
    at = first.start()
    token = re.compile(r"<g\b|</g>")
    while True:
        m = _GROUP.match(svg, at)
        if not m:
            break
        depth, k = 0, at
        for t in token.finditer(svg, at):
            depth += 1 if t.group() == "<g" else -1
            if depth == 0:
                k = t.end()
                break
        groups[m.group(1)] = svg[at:k]
        at = k
        while svg[at].isspace():
            at += 1
    return head, groups, svg[at:]
