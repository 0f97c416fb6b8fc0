"""The words of a traced backward pass: expressions, captions and side panels.

``expression`` writes how a tensor was made in the drawing's names (``v5 = σ(v4)``,
``v1 = w * w``), from the op's own metadata: a binary op with an ``infix`` operator is
written between its operands, a unary one in front of it (``-v2``), any other op as a
call of its ``symbol``; indexing and transposing are written as in code (``v3[1:]``,
``v3ᵀ``). ``headline``, ``describe`` and ``panel_html`` say what one step of a
``BackwardTrace`` does, as a caption, a paragraph of text and the HTML panel of the
page and the widget.
"""

from __future__ import annotations

import re
from html import escape

import numpy as np

from ..ops import GetItem, Transpose
from .model import ATOM, GraphModel, TensorNode, operands
from .text import format_number, short

__all__ = ["expression", "headline", "describe", "panel_html", "ledger_rows"]


def expression(model: GraphModel, oid: str) -> str:
    """``"v5 = σ(v4)"``: how op ``oid``'s result was made, in the drawing's names; just
    ``"a * b"`` for a result named after that expression (``a*b``)."""
    op = model.nodes[oid]
    out = model.nodes[op.out].label
    args, precs = [], []
    for e in model.in_edges[oid]:
        node = model.nodes[model.edges[e].src]
        args.append(node.label if isinstance(node, TensorNode) else node.text)
        precs.append(node.precedence if isinstance(node, TensorNode) else ATOM)
    args = operands(op.ctx, args, precs)  # (a+b) * c
    infix = getattr(op.ctx, "infix", None)
    if isinstance(op.ctx, GetItem) and len(args) == 1:  # written as in code: a[1:]
        rhs = f"{args[0]}{op.detail}"
    elif isinstance(op.ctx, Transpose) and len(args) == 1:
        rhs = f"{args[0]}ᵀ" + (f"  ({op.detail})" if op.detail else "")
    elif infix and len(args) == 2:
        rhs = f"{args[0]} {infix} {args[1]}"
    elif infix and len(args) == 1:
        rhs = f"{infix}{args[0]}"
    else:
        fn = op.symbol if len(op.symbol) <= 2 else op.symbol.replace(" ", "_")
        rhs = f"{fn}({', '.join(args)})"
        if op.detail:
            rhs = rhs[:-1] + f", {op.detail})"
    if rhs.replace(" ", "") == out.replace(" ", ""):  # named after it: a*b, not a*b = a * b
        return rhs
    return f"{out} = {rhs}"


def headline(step) -> str:
    """One line saying what ``step`` (a ``TraceStep``) does."""
    if step.kind == "forward":
        return (f"forward pass done; backward starts at {step.label} with "
                f"dL/d{_d(step.label)} = {short(step.grad)}")
    if step.kind == "op":
        parents = ", ".join(s[0] for s in step.sent) or "nothing"
        return f"backward through {step.expression}: gradient sent to {parents}"
    if step.kind == "leaf":
        return f"{step.label} is a leaf: its gradient is complete, added to .grad"
    if getattr(getattr(step, "_trace", None), "earlier_grads", None):
        return ("backward finished: this pass's gradients are shown; .grad also holds "
                "earlier ones (call zero_grad() before tracing)")
    return "backward finished: the leaves' gradients are in .grad"


def describe(trace, step) -> str:
    """One plain-text paragraph saying what happens at ``step`` of ``trace``."""
    lines = [f"Step {step.index} of {len(trace) - 1}: {headline(step)}."]
    if step.kind == "op":
        lines.append(f"dL/d{_d(step.label)} = {short(step.grad, 8)}")
        if step.rule:
            lines.append(f"local rule ({step.op}): {step.rule}")
        for name, _, g in step.sent:
            lines.append(f"dL/d{_d(name)} += dL/d{_d(step.label)} · ∂{_d(step.label)}/∂{_d(name)} "
                         f"= {short(g, 8)}")
    elif step.kind == "leaf":
        lines.append(f"dL/d{_d(step.label)} = {short(step.grad, 8)}")
    elif step.kind == "done":
        for label, g in trace.leaf_grads().items():
            if label in trace.earlier_grads:  # .grad also holds an earlier pass
                lines.append(f"dL/d{label} (this pass) = {short(g, 8)}; {label}.grad = "
                             f"{short(trace.accumulated_grads[label], 8)} (with earlier "
                             "gradients: call zero_grad() before tracing)")
            else:
                lines.append(f"{label}.grad = {short(g, 8)}")
    if step.created_at:
        lines.append(f"made at {step.created_at}")
    return "\n".join(lines)


_TITLES = {"forward": "Forward pass", "op": "Backward through an op",
           "leaf": "A leaf is complete", "done": "Done"}


def panel_html(trace, step) -> str:
    """The side panel of the HTML page and the widget for ``step`` of ``trace``."""
    h = [f"<h2>{escape(_TITLES[step.kind])}</h2>"]
    if step.kind not in ("op", "leaf"):
        h.append(f'<p class="headline">{escape(headline(step))}.</p>')
    if step.kind == "forward":
        h.append("<p>Every value has been computed (see the boxes). The engine now "
                 "visits the nodes from the output back to the inputs, in reverse "
                 "topological order, so each node's gradient is complete before it "
                 "is passed on.</p>")
        h.append(_kv("seed", f"dL/d{_d(step.label)}", step.grad))
    elif step.kind == "op":
        h.append(f'<p class="expr">{escape(step.expression)}</p>')
        sym = step.expression.split(" = ", 1)[-1].strip()
        h.append(f"<p>Every gradient for <b>{escape(step.label)}</b> has arrived. The "
                 f"engine multiplies it by the local derivative of "
                 f"<code>{escape(sym)}</code> and sends the result to each input "
                 "(the chain rule).</p>")
        h.append(_kv("gradient arriving", f"dL/d{_d(step.label)}", step.grad))
        if step.rule:
            h.append(f'<div class="rule"><span class="k">local rule ({escape(step.op)})'
                     f'</span> <code>{escape(step.rule)}</code></div>')
        if step.sent:
            h.append('<div class="k">chain rule: sent to each input</div>')
            for name, _, g in step.sent:
                h.append(_kv(None, f"dL/d{_d(name)} += dL/d{_d(step.label)} · "
                             f"∂{_d(step.label)}/∂{_d(name)}", g))
        else:
            h.append("<p>No input of this op needs a gradient.</p>")
    elif step.kind == "leaf":
        h.append(f"<p><b>{escape(step.label)}</b> was not made by an op: its gradient "
                 "is complete and is added to its <code>.grad</code>.</p>")
        h.append(_kv("gradient", f"dL/d{_d(step.label)}", step.grad))
    else:
        h.append("<p>Every leaf that requires grad now holds dL/dleaf in "
                 "<code>.grad</code>:</p>")
        if trace.earlier_grads:
            h.append("<p>Some leaves already held a gradient before this pass: their "
                     "<code>.grad</code> is the sum of both, shown apart below.</p>")
        for label, g in trace.leaf_grads().items():
            if label in trace.earlier_grads:  # .grad also holds an earlier pass
                h.append(_kv(None, f"dL/d{label} (this pass)", g))
                h.append(_kv(None, f"{label}.grad (with earlier gradients: call "
                             "zero_grad() before tracing)", trace.accumulated_grads[label]))
            else:
                h.append(_kv(None, f"{label}.grad", g))
    if step.created_at:
        h.append(f'<p class="where">made at <code>{escape(step.created_at)}</code></p>')
    if step.kind != "done":
        h.append(_ledger_html(trace, step))
    return "\n".join(h)


LEDGER_RECENT = 6  # rows of the ledger kept besides this step's own


def ledger_rows(trace, step, recent: int = LEDGER_RECENT):
    """The rows of ``trace.ledger`` that the panel of ``step`` lists, and how many it
    leaves out: the gradients that change in this step (the current tensor and its
    inputs), those of the tensors it feeds (whose gradients made this one), and the
    ``recent`` that arrived last; the others only as a count."""
    rows = trace.ledger(step.index)
    m = trace.model
    near = set()
    if step.tensor is not None:  # the outputs of the ops using the current tensor
        tid = m.ids[step.tensor]
        near = {m.nodes[m.nodes[m.edges[e].op].out].label for e in m.uses.get(tid, ())}
    keep = [k for k, (label, _, _, fresh) in enumerate(rows)
            if fresh or label in near or k >= len(rows) - recent]
    return [rows[k] for k in keep], len(rows) - len(keep)


def _ledger_html(trace, step) -> str:
    """The table "gradients accumulated so far" of ``step``'s panel ("" when empty)."""
    rows, rest = ledger_rows(trace, step)
    if not rows:
        return ""
    cells = []
    for label, g, complete, fresh in rows:
        cls = ' class="new"' if fresh else ""
        cells.append(f"<tr{cls}><td>{escape(label)}</td><td class='st'>"
                     f"{'complete' if complete else 'so far'}</td>"
                     f"<td><code>{escape(short(g, 6))}</code></td></tr>")
    more = ""
    if rest:
        more = (f'<p class="more">and {rest} earlier gradient{"s" if rest > 1 else ""} '
                f"(all in <code>trace.accumulated({step.index})</code>)</p>")
    return ('<div class="k">gradients accumulated so far</div>'
            '<table class="acc">' + "".join(cells) + "</table>" + more)


def _d(label: str) -> str:
    """A name as written after d or ∂: in parentheses when it is an expression
    (``dL/d(a*b)``, ``∂(tanh(h))``), so the fraction reads unambiguously."""
    return label if re.fullmatch(r"[\w.#]+", label) else f"({label})"


def _kv(key, expr, g) -> str:
    """A labelled array: a small caption, the expression, the values."""
    body = np.array2string(np.asarray(g), threshold=24, edgeitems=3, max_line_width=46,
                           formatter={"float_kind": format_number, "complex_kind": str})
    head = f'<span class="k">{escape(key)}</span> ' if key else ""
    return (f'<div class="kv">{head}<span class="e">{escape(expr)}</span>'
            f"<pre>{escape(body)}</pre></div>")
