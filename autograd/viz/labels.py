"""The labels of a drawing: Graphviz's HTML-like labels and node/edge attributes.

Plain strings and dicts, built without Graphviz: a tensor's box (name, shape, values,
gradient), a collapsed module's box, an op's circle, an edge's colour and width, and the
legend that names only what the picture shows. ``dot.render`` puts them together.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from .model import ConstNode, Edge, OpNode, TensorNode
from .style import FONT, MONO, MONO_ADVANCE, PALETTE, Scale, edge_kind, magnitude, mix
from .text import array_lines, format_number, shape_text
from .view import DrawOptions, Overlay

__all__ = ["tensor_label", "tensor_tooltip", "module_label", "const_attrs", "op_attrs",
           "edge_attrs", "ghost_attrs", "legend"]


# ---------------------------------------------------------------------------- boxes


def _font(text: str, *, size=None, color=None, face=None, bold=False) -> str:
    attrs = ""
    if face:
        attrs += f' FACE="{face}"'
    if size:
        attrs += f' POINT-SIZE="{size}"'
    if color:
        attrs += f' COLOR="{color}"'
    body = f"<B>{text}</B>" if bold else text
    return f"<FONT{attrs}>{body}</FONT>" if attrs else body


def _mono_block(prefix: str, lines: list, pad=None) -> str:
    """Monospace lines, the first after ``prefix``, the others aligned under it."""
    lines = list(lines)
    if pad is not None:
        n_lines, width = pad
        lines += [""] * (n_lines - len(lines))
        lines = [ln.ljust(width) for ln in lines]
    indent = " " * len(prefix)
    out = [escape(prefix + lines[0])] + [escape(indent + ln) for ln in lines[1:]]
    return "<BR/>".join(s.replace(" ", "&#160;") for s in out)


def _block_chars(prefix: str, lines: list, pad=None) -> int:
    """Characters in the longest line ``_mono_block`` draws."""
    width = max(len(ln) for ln in lines)
    if pad is not None:
        width = max(width, pad[1])
    return len(prefix) + width


def _right_pad(chars: int) -> int:
    """Width in points of the spacer right of a box's monospace rows (``chars`` long).

    Graphviz sizes a box with its own font metrics; a browser showing the SVG draws the
    text with its own monospace font, which may run a few percent wider (about 2% for
    Chromium on Linux, more when a glyph such as ``ᵀ`` comes from a fallback font).
    The spacer covers 3% of the longest row plus 3 points, so rows never touch the
    right border.
    """
    return 3 + math.ceil(0.03 * MONO_ADVANCE * chars)


def _box(head: str, rows: list, chars: int, style: str, border: str, current: bool) -> str:
    """The HTML label of a box: a rounded table, thick-bordered when ``current``.

    ``head`` is the coloured title cell, ``rows`` the cells under it: monospace text
    whose longest line has ``chars`` characters. Each row ends in an empty spacer cell
    (``_right_pad``), so the text keeps clear of the right border in any viewer.
    The box sits in an outer cell whose padding makes up for the thinner border, so a
    box has the same size highlighted or not (and a trace's frames the same layout).
    """
    width = 3 if current else 1
    if rows:
        spacer = f'<TD WIDTH="{_right_pad(chars)}"></TD>'
        head = head.replace("<TD ", '<TD COLSPAN="2" ', 1)  # the title spans both
        body = f"<TR>{head}</TR>" + "".join(f"<TR>{cell}{spacer}</TR>" for cell in rows)
    else:
        body = f"<TR>{head}</TR>"
    inner = (f'<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" '
             f'STYLE="{style}" COLOR="{border}" BGCOLOR="white">' + body + "</TABLE>")
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
            f'<TD CELLPADDING="{3 - width}">{inner}</TD></TR></TABLE>>')


def tensor_label(node: TensorNode, grad, status, pad, opts: DrawOptions,
                 current: bool) -> str:
    """A tensor's box: its name and shape, then its values and gradient (``grad``;
    ``status`` and ``pad`` as in ``Overlay``)."""
    t = node.tensor
    fill, border = PALETTE[node.kind]
    data = t._data
    if current:
        fill, border = PALETTE["current"]
    head = (_font(escape(node.label), bold=True, color=PALETTE["text"]) if node.named
            else _font(escape(node.label), color=PALETTE["muted"]))
    shape = shape_text(data.shape)
    if data.dtype != np.float64:
        shape += f" {data.dtype}"
    head += "  " + _font(escape(shape), size=9, color=PALETTE["muted"])
    head = f'<TD BGCOLOR="{fill}" CELLPADDING="4">{head}</TD>'
    rows = []
    chars = 0
    if opts.show_data:
        lines = array_lines(data, opts.max_elements)
        txt = _mono_block("data ", lines)
        chars = _block_chars("data ", lines)
        rows.append('<TD ALIGN="LEFT" BALIGN="LEFT">'
                    + _font(txt, size=9, face=MONO, color=PALETTE["data_text"]) + "</TD>")
    if opts.show_grad and t.requires_grad and (grad is not None or status or pad):
        color = PALETTE["grad_text"]
        if grad is None:
            lines, color = ["?"], PALETTE["muted"]
        else:
            lines = array_lines(grad, opts.max_elements)
            if magnitude(grad) == math.inf:
                color = PALETTE["bad"]
            elif status == "partial":
                color = PALETTE["muted"]
        prefix = "grad "
        txt = _mono_block(prefix, lines, pad)
        chars = max(chars, _block_chars(prefix, lines, pad))
        rows.append('<TD ALIGN="LEFT" BALIGN="LEFT">'
                    + _font(txt, size=9, face=MONO, color=color) + "</TD>")
    style = "rounded"
    if status == "pending":
        style = "rounded,dashed"
    return _box(head, rows, chars, style, border, current)


def ghost_attrs(node: TensorNode, gid: str) -> dict:
    """Node attributes of a further use of a leaf drawn once elsewhere: its name in a
    small dashed box of its colours."""
    fill, border = PALETTE[node.kind]
    return {"label": node.label, "shape": "box", "style": "rounded,filled,dashed",
            "fillcolor": fill, "color": border, "fontsize": "10",
            "fontcolor": PALETTE["text"], "margin": "0.06,0.02", "height": "0.25",
            "width": "0.3", "id": gid, "class": f"ghost {node.kind}",
            "tooltip": f"{node.label} again (its box is drawn once, at its first use)"}


def tensor_tooltip(node: TensorNode) -> str:
    """Hover text of a tensor's box: role, shape, dtype and where its op was made."""
    t = node.tensor
    text = f"{node.label}: {node.kind}, shape {shape_text(t.shape)}, dtype {t.dtype}"
    ctx = t._ctx
    if ctx is not None and ctx.created_at:
        text += f", made at {ctx.created_at}"
    return text


def module_label(scope, members, model, tensor_grads, opts: DrawOptions,
                 current: bool) -> str:
    """A collapsed module's box: its scope, its ops' symbols, its parameters (with the
    mean |gradient| when known) and the shape of its result."""
    fill, border = PALETTE["current"] if current else PALETTE["module"]
    ops = [model.nodes[i] for i in members if isinstance(model.nodes[i], OpNode)]
    syms = " ".join(o.symbol for o in ops) if len(ops) <= 4 else f"{len(ops)} ops"
    head = (f'<TD BGCOLOR="{fill}" CELLPADDING="4">'
            + _font(escape(model.scope_title(scope)), bold=True, color=PALETTE["text"]) + "  "
            + _font(escape(syms), size=10, color=PALETTE["muted"]) + "</TD>")
    rows = []
    chars = 0
    for i in members:
        node = model.nodes[i]
        if not isinstance(node, TensorNode) or node.kind != "parameter":
            continue
        text = f"{node.label.rsplit('.', 1)[-1]} {shape_text(node.tensor.shape)}"
        g = tensor_grads.get(i)
        if opts.show_grad and g is not None:
            m = magnitude(g)
            text += "  |g| " + ("NaN/Inf" if m == math.inf else format_number(m))
        chars = max(chars, len(text))
        rows.append('<TD ALIGN="LEFT">' + _font(escape(text), size=9, face=MONO,
                                                 color=PALETTE["data_text"]) + "</TD>")
    outs = [model.nodes[o.out] for o in ops]
    if outs:  # the module's result: its last op's output
        text = f"out {shape_text(outs[-1].tensor.shape)}"
        chars = max(chars, len(text))
        rows.append('<TD ALIGN="LEFT">' + _font(escape(text), size=9, face=MONO,
                                                 color=PALETTE["muted"]) + "</TD>")
    return _box(head, rows, chars, "rounded", border, current)


# ---------------------------------------------------------------------------- ops, edges


def const_attrs(node: ConstNode) -> dict:
    """Node attributes of a constant passed to an op: a small dashed box, grey text."""
    fill, border = PALETTE["constant"]
    return {"label": node.text, "shape": "box", "style": "rounded,filled,dashed",
            "fillcolor": fill, "color": border, "fontsize": "9",
            "fontcolor": PALETTE["muted"], "margin": "0.05,0.02", "height": "0.25",
            "width": "0.3"}


def op_attrs(node: OpNode, current: bool) -> dict:
    """Node attributes of an op: a dark circle with its symbol (an ellipse when the
    symbol is long or a detail sits under it), gold when ``current``."""
    fill, border = PALETTE["op"]
    fontcolor = "white"
    if current:
        fill, border, fontcolor = PALETTE["current"][1], "#B07A00", PALETTE["text"]
    sym = escape(node.symbol)
    short = len(node.symbol) <= 2
    attrs = {
        "shape": "circle" if short else "ellipse",
        "style": "filled",
        "fillcolor": fill,
        "color": border,
        "fontcolor": fontcolor,
        "fontname": FONT,
        "fontsize": "15" if short else "11",
        "margin": "0.02" if short else "0.06,0.02",
        "width": "0.42",
        "height": "0.42" if short else "0.34",
        "penwidth": "2" if current else "1",
        "tooltip": f"{type(node.ctx).__name__}" + (f" ({node.detail})" if node.detail else ""),
    }
    if node.detail:
        attrs["label"] = f'<{sym}<BR/><FONT POINT-SIZE="8">{escape(node.detail)}</FONT>>'
        attrs["shape"] = "ellipse"
        attrs["fontsize"] = "13" if short else "11"
    else:
        attrs["label"] = _wrap_words(node.symbol)
    return attrs


def _wrap_words(text: str, width: int = 10) -> str:
    """Break a long op name over two lines at the space nearest its middle."""
    if len(text) <= width or " " not in text:
        return text
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "\n" + text[cut + 1:]


def edge_attrs(edge: Edge, value, scale: Scale, metric: str) -> dict:
    """Edge attributes: colour and width from ``value``'s mean magnitude on ``scale``
    (red for NaN/Inf, dotted for zero, dashed where no gradient flows)."""
    kind = edge_kind(edge.carries_grad, value, metric)
    if kind == "nograd":
        return {"color": PALETTE["nograd"], "style": "dashed", "arrowsize": "0.6",
                "penwidth": "1"}
    if kind is None:
        return {"color": PALETTE["edge"], "penwidth": "1.1", "arrowsize": "0.7"}
    m = magnitude(value)
    label = "|∂L|" if metric == "grad" else "|x|"
    if kind == "bad":
        return {"color": PALETTE["bad"], "penwidth": "3.2", "arrowsize": "0.9",
                "tooltip": f"{label}: NaN/Inf"}
    if kind == "zero":
        return {"color": PALETTE["zero"], "style": "dotted", "penwidth": "1.6",
                "arrowsize": "0.7", "tooltip": f"{label} mean: 0"}
    t = scale(m)
    return {"color": mix(PALETTE["grad_lo"], PALETTE["grad_hi"], t),
            "penwidth": f"{1.0 + 3.6 * t:.2f}", "arrowsize": f"{0.6 + 0.35 * t:.2f}",
            "tooltip": f"{label} mean: {format_number(m)}"}


# ---------------------------------------------------------------------------- legend


def legend(kinds: list, opts: DrawOptions, overlay: Overlay, edges: set) -> str:
    """The legend under a drawing: an entry for each kind of node in ``kinds`` and each
    kind of edge in ``edges`` (see ``style.edge_kind``; ``"hot"``: a trace frame's
    edges being filled), so it names only what the picture shows."""
    words = {"parameter": "parameter (requires grad)", "input": "input / data",
             "intermediate": "intermediate", "output": "output", "constant": "constant",
             "module": "nn module"}
    entries = [(k, 16, 1, words[k]) for k in kinds if k != "op"]
    if "op" in kinds:
        entries.append(("op", 11, 1, "op"))
    if opts.trace:
        entries.append(("current", 16, 2, "current step"))
    cells = []
    for kind, width, border_width, text in entries:
        fill, border = PALETTE[kind]
        cells.append(f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="{border_width}" '
                     f'STYLE="rounded" WIDTH="{width}" HEIGHT="11" FIXEDSIZE="TRUE"></TD>')
        cells.append(_legend_text(text))
    row1 = ('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
            + "".join(cells) + "</TR></TABLE></TD></TR>")
    edge_cells = []
    metric = "|gradient|" if opts.color_by == "grad" else "|value|"
    if "ramp" in edges:
        ramp = "".join(
            f'<TD BGCOLOR="{mix(PALETTE["grad_lo"], PALETTE["grad_hi"], t)}" WIDTH="10" '
            f'HEIGHT="{int(3 + 5 * t)}" FIXEDSIZE="TRUE"></TD>'
            for t in (0.0, 0.25, 0.5, 0.75, 1.0))
        edge_cells += [
            _legend_text(f"edges: mean {metric}  small"),
            f'<TD><TABLE BORDER="0" CELLSPACING="1" CELLPADDING="0"><TR>{ramp}</TR></TABLE></TD>',
            _legend_text("large (log scale)"),
        ]
    if "zero" in edges:
        edge_cells.append(_legend_text("···· zero", PALETTE["zero"], bold=True))
    if "bad" in edges:
        edge_cells.append(_legend_text("━━ NaN / Inf", PALETTE["bad"], bold=True))
    if "hot" in edges:
        edge_cells.append(_legend_text("━━ gradient sent in this step", "#C68400"))
    if "nograd" in edges:
        edge_cells.append(_legend_text("- - no gradient"))
    rows = row1
    span = '<TR><TD ALIGN="LEFT">'
    if edge_cells:
        rows += (span + '<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
                 + "".join(edge_cells) + "</TR></TABLE></TD></TR>")
    if overlay.caption:
        rows = (span + _font(escape(overlay.caption), size=11, color=PALETTE["text"])
                + "</TD></TR>" + rows)
    if opts.title:
        rows = (span + _font(escape(opts.title), size=13, bold=True, color=PALETTE["text"])
                + "</TD></TR>" + rows)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" CELLPADDING="1">'
            + rows + "</TABLE>>")


def _legend_text(text: str, color: str | None = None, bold: bool = False) -> str:
    """A legend cell of small text (grey unless ``color`` is given)."""
    return ('<TD ALIGN="LEFT">' + _font(text, size=9, bold=bold, color=color or PALETTE["muted"])
            + "</TD>")
