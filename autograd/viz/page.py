"""The standalone HTML page of a traced backward pass (``BackwardTrace.to_html``).

One file that needs no network: every frame is inline SVG and every side panel is HTML,
both held in JavaScript arrays that the Previous / Next buttons, the slider and the
arrow keys step through. ``PANEL_CSS`` styles the side panel here and in the widget;
``clean_svg`` makes a rendered frame fit either.
"""

from __future__ import annotations

import json
import re
from html import escape

__all__ = ["PANEL_CSS", "page", "clean_svg"]


def page(title: str, frames: list, panels: list) -> str:
    """The whole page: one SVG text in ``frames`` and one HTML panel in ``panels`` per
    step, step 0 shown first."""
    return _PAGE.format(
        title=escape(title), css=_PAGE_CSS + PANEL_CSS, n=len(frames) - 1,
        frames=_js_json(frames), panels=_js_json(panels),
        first_frame=frames[0], first_panel=panels[0],
    )


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
"""

_PAGE_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 color:#263238;background:#F3F5F7}
header{padding:14px 22px 6px}
header h1{font-size:19px;margin:0}
header p{margin:4px 0 0;color:#6B7480;font-size:13px}
.controls{display:flex;align-items:center;gap:10px;padding:8px 22px}
.controls button{font:inherit;padding:6px 14px;border-radius:8px;border:1px solid #B8C2CC;
 background:#fff;cursor:pointer}
.controls button:hover:not(:disabled){background:#FFF4CC;border-color:#F2A900}
.controls button:disabled{opacity:.45;cursor:default}
.controls input[type=range]{flex:1;max-width:420px}
#label{font-weight:600;min-width:110px}
main{display:flex;gap:16px;padding:6px 22px 22px;align-items:flex-start}
#figure{flex:1 1 70%;background:#fff;border-radius:12px;padding:10px;
 box-shadow:0 1px 3px rgba(0,0,0,.08);overflow:auto;max-height:82vh}
#figure svg{height:auto;display:block;margin:0 auto}
.panel{flex:0 0 30%;min-width:280px;background:#fff;border-radius:12px;padding:14px 16px;
 box-shadow:0 1px 3px rgba(0,0,0,.08)}
.hint{color:#6B7480;font-size:12px}
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
<div class="controls">
<button id="prev" type="button">Previous</button>
<button id="next" type="button">Next</button>
<span id="label">Step 0 of {n}</span>
<input id="slider" type="range" min="0" max="{n}" value="0" aria-label="step">
<button id="zoom" type="button" title="fit the picture, or show it at full size">Zoom: fit</button>
<span class="hint">← / → keys</span>
</div>
<main><div id="figure">{first_frame}</div>
<aside class="panel" id="panel">{first_panel}</aside></main>
<script>
const frames = {frames};
const panels = {panels};
const last = frames.length - 1;
let step = 0;
const fig = document.getElementById("figure"), panel = document.getElementById("panel");
const label = document.getElementById("label"), slider = document.getElementById("slider");
const prev = document.getElementById("prev"), next = document.getElementById("next");
const zoom = document.getElementById("zoom");
let fit = null;  // null: decide on first show (fit unless the text would be too small)
function applyZoom() {{
  const svg = fig.querySelector("svg");
  if (!svg || !svg.viewBox || !svg.viewBox.baseVal) return;
  const w = svg.viewBox.baseVal.width * 4 / 3, h = svg.viewBox.baseVal.height * 4 / 3;
  if (fit === null) fit = (fig.clientWidth - 20) / w > 0.5;
  if (fit) {{
    svg.style.width = "100%"; svg.style.maxWidth = w + "px";
    svg.style.maxHeight = "78vh";
  }} else {{
    svg.style.width = w + "px"; svg.style.maxWidth = "none"; svg.style.maxHeight = "none";
    svg.style.height = h + "px";
    const cur = fig.querySelector("g.current");
    if (cur) {{
      const r = cur.getBoundingClientRect(), f = fig.getBoundingClientRect();
      fig.scrollLeft += (r.left + r.width / 2) - (f.left + f.width / 2);
      fig.scrollTop += (r.top + r.height / 2) - (f.top + f.height / 2);
    }}
  }}
  zoom.textContent = fit ? "Zoom: fit" : "Zoom: 100%";
}}
function show(i) {{
  step = Math.max(0, Math.min(last, i));
  fig.innerHTML = frames[step];
  panel.innerHTML = panels[step];
  label.textContent = "Step " + step + " of " + last;
  slider.value = step;
  prev.disabled = step === 0;
  next.disabled = step === last;
  applyZoom();
}}
zoom.addEventListener("click", () => {{ fit = !fit; applyZoom(); }});
prev.addEventListener("click", () => show(step - 1));
next.addEventListener("click", () => show(step + 1));
slider.addEventListener("input", () => show(parseInt(slider.value, 10)));
document.addEventListener("keydown", (e) => {{
  if (e.target === slider) return;
  if (e.key === "ArrowLeft") {{ show(step - 1); e.preventDefault(); }}
  else if (e.key === "ArrowRight") {{ show(step + 1); e.preventDefault(); }}
  else if (e.key === "Home") show(0);
  else if (e.key === "End") show(last);
}});
show(0);
</script>
</body></html>
"""
