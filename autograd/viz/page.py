"""The standalone HTML page of a traced backward pass (``BackwardTrace.to_html``).

One file that needs no network: the step-through viewer (``viewer``, the same as in the
widget) with every frame as inline SVG pieces and every side panel as HTML.
``PANEL_CSS`` styles the side panel here and in the widget; ``clean_svg`` makes a
rendered frame fit either.
"""

from __future__ import annotations

import json
import re
from html import escape

__all__ = ["PANEL_CSS", "page", "clean_svg"]


def page(title: str, frames, panels: list, scopes: list | None = None) -> str:
    """The whole page: the viewer (``viewer.viewer_html``) of ``frames`` (a
    ``frames.Frames``) with one HTML panel in ``panels`` per step, step 0 shown first;
    ``scopes``: the module each step works in, to fold the others (None: none folded)."""
    from .viewer import viewer_html

    return _PAGE.format(title=escape(title), css=_PAGE_CSS,
                        viewer=viewer_html(frames, panels, "viewer", page_keys=True, scopes=scopes,
                                           height="calc(100vh - 150px)"))


def clean_svg(svg: str) -> str:
    """Strip the XML prolog and fixed size so the SVG scales with its container."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'(<svg\b[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    return svg.strip()


def _js_json(items) -> str:
    """JSON for inline ``<script>``: ``</`` escaped so no string can close the tag."""
    return json.dumps(items, ensure_ascii=False).replace("</", "<\\/")


PANEL_CSS = """
.panel h2{font-size:15px;margin:0 0 6px;color:#263238}
.panel p{margin:6px 0;line-height:1.45}
.panel .headline{color:#37474F}
.panel .expr{font:600 14px ui-monospace,Menlo,Consolas,monospace;color:#1b2a33;
 background:#F6F7F9;border-radius:6px;padding:6px 8px}
.panel .k{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.04em;
 color:#6B7480;margin:10px 0 3px}
.panel .kv{margin:4px 0 8px}
.panel .kv .e{font:12px ui-monospace,Menlo,Consolas,monospace;color:#1550A8}
.panel pre{margin:2px 0 0;padding:6px 8px;background:#F6F7F9;border-radius:6px;
 font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;color:#263238}
.panel .rule{background:#FFF4CC;border:1px solid #F2C94C;border-radius:6px;
 padding:6px 8px;margin:8px 0}
.panel .rule .k{margin-top:0}
.panel .rule code{font:13px ui-monospace,Menlo,Consolas,monospace;color:#5D4200}
.panel table.acc{border-collapse:collapse;width:100%;font-size:12px}
.panel table.acc td{border-top:1px solid #ECEFF1;padding:3px 4px;vertical-align:top}
.panel table.acc td.st{color:#6B7480;white-space:nowrap}
.panel table.acc tr.new td{background:#FFF8E1;font-weight:600}
.panel .where{font-size:12px;color:#6B7480}
.panel .more{font-size:12px;color:#6B7480;margin:4px 0}
"""

_PAGE_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 color:#263238;background:#F3F5F7}
header{padding:12px 22px 2px}
header h1{font-size:19px;margin:0}
header p{margin:3px 0 0;color:#6B7480;font-size:13px}
.crv{padding:0 22px 16px}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style></head>
<body>
<header><h1>{title}</h1>
<p>Each step is one node of the backward pass, taken in reverse topological order.
Gold: the node being processed and the gradients it sends to its inputs.</p></header>
{viewer}
</body></html>
"""
