"""The step-through viewer: one piece of HTML, CSS and JavaScript, used by both the
standalone page (``page``) and the Jupyter widget (``widget``).

``viewer_html(frames, panels, uid)`` returns a ``<div>`` that needs no network and no
Jupyter extension: the frames travel as their shared SVG pieces (``frames.Frames``),
the script builds the frame of the current step (over ``PACK_OVER`` bytes of them travel
gzipped, unpacked by the browser's ``DecompressionStream``: a loop of 300 ops is a
fifth of the size), and the user can

- step: Previous / Next, the slider, the arrow keys, Home / End;
- zoom and pan: buttons (− + 100 % Fit Follow), keys (``+`` ``-`` ``0`` ``f`` ``c``),
  the wheel (pans; with ctrl, or a touchpad pinch, zooms), dragging the picture,
  clicking the overview (bottom right), which shows the whole graph with the part in
  view framed and the current node marked.

The view starts at 100 % (Graphviz's own size: 1 pt = 4/3 px, label text about 12 to
15 px high) centred on where backward starts, or shows the whole graph when it fits at
that size. It follows the current step (pans when the current node leaves the middle of
the view) until the user moves or zooms it; "Follow" (``c``) takes it back.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from html import escape

__all__ = ["VIEWER_CSS", "viewer_html", "viewer_data", "PACK_OVER"]

# the steps' data is gzipped (and base64-encoded) from this size on: a graph of a few
# dozen nodes stays plain JSON, readable in the page's source
PACK_OVER = 256 * 1024


def _js_json(value) -> str:
    """JSON for inline ``<script>``: ``</`` escaped so no string can close the tag."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def viewer_html(frames, panels: list, uid: str, *, page_keys: bool = False,
                height: str = "620px", scopes: list | None = None) -> str:
    """The viewer for ``frames`` (a ``frames.Frames``) and one HTML side panel per frame.

    ``uid``: the id of the viewer's element (unique in the document); ``page_keys``:
    listen to keys on the whole document (the standalone page) rather than only while
    the viewer has the focus (a notebook, where other cells need the keys); ``scopes``:
    per frame, the module its step works in (``"*"``: all): every other module is
    covered by one box with its name (``fold_svg``) until clicked."""
    from .page import PANEL_CSS

    panel_css = PANEL_CSS.replace(".panel", ".crv .panel")  # above a notebook's own styles
    n = len(frames.frames) - 1
    # frame 0's pieces in full, then per frame the (position, piece) pairs that change
    changes = [[x for k, (a, b) in enumerate(zip(f0, f1)) if a != b for x in (k, b)]
               for f0, f1 in zip(frames.frames, frames.frames[1:])]
    tail = frames.tail if scopes is None else fold_svg(frames.clusters()) + frames.tail
    data = {"head": frames.head, "tail": tail, "parts": frames.parts,
            "first": frames.frames[0], "changes": changes, "panels": panels,
            "scopes": scopes}
    first = frames.svg(0)
    return f"""<div class="crv" id="{escape(uid)}" tabindex="0" style="--crv-h:{height}">
<style>{VIEWER_CSS}{panel_css}</style>
<div class="crv-controls">
<button type="button" class="crv-prev" title="previous step (←)">Previous</button>
<button type="button" class="crv-next" title="next step (→)">Next</button>
<span class="crv-label">Step 0 of {n}</span>
<input class="crv-slider" type="range" min="0" max="{n}" value="0" aria-label="step">
<span class="crv-zoom">
<button type="button" class="crv-out" title="zoom out (-)">−</button>
<button type="button" class="crv-in" title="zoom in (+)">+</button>
<button type="button" class="crv-one" title="actual size (0)">100 %</button>
<button type="button" class="crv-fit" title="whole graph (f)">Fit</button>
<button type="button" class="crv-follow" title="follow the current step (c)">Follow</button>
</span></div>
<div class="crv-main">
<div class="crv-stage"><div class="crv-canvas">{first}</div>
<div class="crv-mini" title="overview: click to look there"><div class="crv-mini-svg"></div>
<div class="crv-mini-view"></div><div class="crv-mini-dot"></div></div>
<div class="crv-hint">drag or wheel to pan · ctrl + wheel to zoom · ← → step</div></div>
<aside class="panel crv-panel">{panels[0]}</aside>
</div>
{_data_script(data)}
<script>{_VIEWER_JS}
chainruleViewer(document.getElementById({_js_json(uid)}), {str(page_keys).lower()});
</script>
</div>"""


def _data_script(data: dict) -> str:
    """The viewer's data as an inline script: JSON, or gzipped JSON in base64 when it is
    larger than ``PACK_OVER`` (SVG pieces compress about tenfold)."""
    text = _js_json(data)
    if len(text) <= PACK_OVER:
        return f'<script type="application/json" class="crv-data">{text}</script>'
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
    return f'<script type="application/gzip-base64" class="crv-data-gz">{packed}</script>'


def viewer_data(html: str) -> dict:
    """The data of the (first) viewer in ``html``, plain or packed: what the script reads."""
    m = re.search(r'<script type="application/(json|gzip-base64)" class="crv-data(?:-gz)?">'
                  r"(.*?)</script>", html, flags=re.S)
    if m is None:
        raise ValueError("viewer_data: no viewer data in this HTML")
    text = m.group(2)
    if m.group(1) == "gzip-base64":
        text = gzip.decompress(base64.b64decode(text)).decode("utf-8")
    return json.loads(text)


def fold_svg(clusters: list) -> str:
    """One box per module cluster (``frames.Frames.clusters``) that covers it, with the
    module's name: SVG drawn over the nodes, a module's box over those of the modules
    inside it. The viewer hides the box of the module of the current step."""
    out = []
    for scope, title, (x0, y0, x1, y1) in sorted(clusters, key=lambda c: -c[0].count(".")):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        size = max(8.0, min(14.0, (x1 - x0) / max(4, len(title)) * 1.6, (y1 - y0) / 3))
        name = escape(title)
        out.append(
            f'<g class="crv-fold" data-scope="{escape(scope)}">'
            f'<title>{name}: click to open</title>'
            f'<rect x="{x0:.2f}" y="{y0:.2f}" width="{x1 - x0:.2f}" height="{y1 - y0:.2f}" '
            'rx="6" fill="#ECEFF1" stroke="#78909C" stroke-width="1.2"/>'
            f'<text x="{cx:.2f}" y="{cy:.2f}" text-anchor="middle" '
            f'font-family="Helvetica,sans-Serif" font-size="{size:.1f}" font-weight="bold" '
            f'fill="#37474F">{name}</text>'
            f'<text x="{cx:.2f}" y="{cy + size:.2f}" text-anchor="middle" '
            'font-family="Helvetica,sans-Serif" font-size="8" fill="#6B7480">'
            "click to open</text></g>")
    return "".join(out)


VIEWER_CSS = """
.crv{font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#263238;
 outline:none}
.crv-controls{display:flex;align-items:center;gap:8px;padding:6px 0;flex-wrap:wrap}
.crv button{font:inherit;padding:5px 12px;border-radius:8px;border:1px solid #B8C2CC;
 background:#fff;cursor:pointer;color:#263238}
.crv button:hover:not(:disabled){background:#FFF4CC;border-color:#F2A900}
.crv button:disabled{opacity:.45;cursor:default}
.crv button.on{background:#FFF4CC;border-color:#F2A900}
.crv-zoom{display:flex;gap:4px;margin-left:auto}
.crv-zoom button{padding:5px 9px;min-width:34px}
.crv-label{font-weight:600;min-width:110px}
.crv-slider{flex:1;min-width:120px;max-width:420px}
.crv-main{display:flex;gap:14px;align-items:stretch}
.crv-stage{flex:1 1 68%;position:relative;overflow:hidden;height:var(--crv-h);
 background:#fff;border:1px solid #E3E7EB;border-radius:12px;cursor:grab;
 touch-action:none}
.crv-stage.drag{cursor:grabbing}
.crv-canvas{position:absolute;left:0;top:0;transform-origin:0 0}
.crv .crv-canvas svg{display:block;max-width:none;max-height:none}
.crv-mini{position:absolute;right:10px;bottom:10px;width:190px;height:140px;
 background:rgba(255,255,255,.94);border:1px solid #B8C2CC;border-radius:8px;
 overflow:hidden;cursor:pointer;box-shadow:0 1px 4px rgba(0,0,0,.12)}
.crv .crv-mini-svg,.crv .crv-mini-svg svg{width:100%;height:100%;display:block;
 max-width:none}
.crv-mini-view{position:absolute;border:2px solid #2F6FD0;background:rgba(47,111,208,.08);
 pointer-events:none;border-radius:2px}
.crv-mini-dot{position:absolute;width:10px;height:10px;margin:-5px 0 0 -5px;
 border-radius:50%;background:#F2A900;border:2px solid #7A5200;pointer-events:none}
.crv-hint{position:absolute;left:10px;top:6px;font-size:11px;color:#8A939C;
 pointer-events:none}
.crv .crv-fold{cursor:pointer}
.crv-panel{flex:0 0 30%;min-width:260px;max-height:var(--crv-h);overflow:auto;
 background:#fff;border:1px solid #E3E7EB;border-radius:12px;padding:12px 14px}
"""

_VIEWER_JS = r"""
function chainruleViewer(root, pageKeys) {
  // the data inline, or gzipped: then unpacked first (the first frame is already drawn)
  if (!root || root.dataset.started) return;
  root.dataset.started = "1";
  const packed = root.querySelector(".crv-data-gz");
  if (!packed) {
    chainruleStart(root, pageKeys, JSON.parse(root.querySelector(".crv-data").textContent));
    return;
  }
  const fail = (why) => {
    root.querySelector(".crv-label").textContent = "the steps could not be unpacked: " + why;
  };
  if (typeof DecompressionStream === "undefined") {
    fail("this browser has no DecompressionStream");
    return;
  }
  const bytes = Uint8Array.from(atob(packed.textContent), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(stream).text().then(
    (text) => chainruleStart(root, pageKeys, JSON.parse(text)), (e) => fail(String(e)));
}

function chainruleStart(root, pageKeys, data) {
  const q = (s) => root.querySelector(s);
  data.frames = [data.first];
  for (const c of data.changes) {
    const f = data.frames[data.frames.length - 1].slice();
    for (let k = 0; k < c.length; k += 2) f[c[k]] = c[k + 1];
    data.frames.push(f);
  }
  const last = data.frames.length - 1, PX = 4 / 3;  // CSS px per point: 100 %
  const stage = q(".crv-stage"), canvas = q(".crv-canvas"), panel = q(".crv-panel");
  const label = q(".crv-label"), slider = q(".crv-slider");
  const prev = q(".crv-prev"), next = q(".crv-next"), follow = q(".crv-follow");
  const mini = q(".crv-mini"), miniSvg = q(".crv-mini-svg");
  const miniView = q(".crv-mini-view"), miniDot = q(".crv-mini-dot");
  let step = 0, z = 1, tx = 0, ty = 0, W = 0, H = 0, following = true;
  const opened = new Set();  // modules opened by a click

  function fold() {  // hide the box over the current step's module and opened ones
    if (!data.scopes) return;
    const here = data.scopes[step];
    for (const f of canvas.querySelectorAll(".crv-fold")) {
      const s = f.getAttribute("data-scope");
      const inside = here === "*" || here === s || here.startsWith(s + ".");
      f.style.display = inside || opened.has(s) ? "none" : "";
    }
  }
  function tap(x, y) {  // a click on a module's box opens it; on its name, closes it
    const el = document.elementFromPoint(x, y);
    if (!data.scopes || !el || !canvas.contains(el)) return;
    const f = el.closest(".crv-fold");
    const c = el.tagName === "text" && el.closest("g.cluster");
    const s = c && c.id.startsWith("scope:") ? c.id.slice(6) : null;
    if (f) opened.add(f.getAttribute("data-scope"));
    else if (s !== null && opened.has(s)) opened.delete(s);
    else return;
    show(step);
  }

  function frameSvg(i) {
    return data.head + data.frames[i].map((k) => data.parts[k]).join("") + data.tail;
  }
  function apply() {
    sizeMini();
    canvas.style.transform = `translate(${tx}px, ${ty}px) scale(${z})`;
    follow.classList.toggle("on", following);
    const ms = Math.min(mini.clientWidth / W, mini.clientHeight / H);
    const ox = (mini.clientWidth - W * ms) / 2, oy = (mini.clientHeight - H * ms) / 2;
    const v = miniView.style;
    v.left = ox + (-tx / z) * ms + "px"; v.top = oy + (-ty / z) * ms + "px";
    v.width = stage.clientWidth / z * ms + "px"; v.height = stage.clientHeight / z * ms + "px";
    const c = current();
    if (c) {
      miniDot.style.display = "block";
      miniDot.style.left = ox + (c.x + c.w / 2) * ms + "px";
      miniDot.style.top = oy + (c.y + c.h / 2) * ms + "px";
    } else miniDot.style.display = "none";
  }
  function sending() {  // the current node, the edges of this step and the inputs they reach
    const nodes = [...canvas.querySelectorAll("g.current, g.hot")];
    const names = new Set();
    for (const e of canvas.querySelectorAll("g.hot > title"))
      names.add(e.textContent.split("->")[0].split(":")[0]);
    for (const g of canvas.querySelectorAll("g.node > title"))
      if (names.has(g.textContent)) nodes.push(g.parentNode);
    return nodes;
  }
  function current(sel = "g.current") {  // the boxes' union in canvas px (unscaled)
    const nodes = typeof sel === "string" ? canvas.querySelectorAll(sel) : sel;
    if (!nodes.length) return null;
    const s = canvas.getBoundingClientRect();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const g of nodes) {
      const r = g.getBoundingClientRect();
      x0 = Math.min(x0, r.left); y0 = Math.min(y0, r.top);
      x1 = Math.max(x1, r.right); y1 = Math.max(y1, r.bottom);
    }
    return {x: (x0 - s.left) / z, y: (y0 - s.top) / z, w: (x1 - x0) / z, h: (y1 - y0) / z};
  }
  function free() {  // the view less the overview's strip (right if tall, else bottom)
    const tall = mini.offsetHeight > mini.offsetWidth;
    return [stage.clientWidth - (tall ? mini.offsetWidth + 20 : 0),
            stage.clientHeight - (tall ? 0 : mini.offsetHeight + 20)];
  }
  // the current node with the inputs it sends to, if they fit at this scale (the boxes
  // are measured before a change of scale: current() divides by it)
  function focus(c = current(), all = current(sending())) {
    const [sw, sh] = free();
    return all && all.w * z < sw - 24 && all.h * z < sh - 24 ? all : c;
  }
  function centre(c, always) {
    if (!c) return;
    const [sw, sh] = free();
    const x0 = c.x * z + tx, y0 = c.y * z + ty, x1 = x0 + c.w * z, y1 = y0 + c.h * z;
    if (always || x0 < 12 || y0 < 12 || x1 > sw - 12 || y1 > sh - 12) {  // leaving the view
      tx = sw / 2 - (c.x + c.w / 2) * z; ty = sh / 2 - (c.y + c.h / 2) * z;
      // no empty half screen beyond the graph's edge
      if (W * z > sw - 40) tx = Math.min(20, Math.max(sw - 20 - W * z, tx));
      else tx = (sw - W * z) / 2;
      if (H * z > sh - 40) ty = Math.min(20, Math.max(sh - 20 - H * z, ty));
      else ty = (sh - H * z) / 2;
    }
  }
  function zoomAt(f, px, py) {
    const nz = Math.max(0.05, Math.min(4, z * f));
    tx = px - (px - tx) * nz / z; ty = py - (py - ty) * nz / z; z = nz;
  }
  function fitScale() {
    return Math.min((stage.clientWidth - 20) / W, (stage.clientHeight - 20) / H);
  }
  function fit() {
    z = fitScale();
    tx = (stage.clientWidth - W * z) / 2; ty = (stage.clientHeight - H * z) / 2;
  }
  function show(i, first) {
    step = Math.max(0, Math.min(last, i));
    canvas.innerHTML = frameSvg(step);
    fold();
    const svg = canvas.querySelector("svg");
    const vb = svg.viewBox.baseVal;
    W = vb.width * PX; H = vb.height * PX;
    sizeMini();
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    // a notebook's own styles would shrink an SVG to its column: keep its size
    Object.assign(svg.style, {width: W + "px", height: H + "px", maxWidth: "none",
                              maxHeight: "none"});
    miniSvg.innerHTML = canvas.innerHTML;
    const m = miniSvg.querySelector("svg");
    m.removeAttribute("width"); m.removeAttribute("height"); m.removeAttribute("style");
    for (const e of m.querySelectorAll("[id]")) e.removeAttribute("id");
    for (const e of m.querySelectorAll("title")) e.remove();
    panel.innerHTML = data.panels[step];
    label.textContent = "Step " + step + " of " + last;
    slider.value = step;
    prev.disabled = step === 0; next.disabled = step === last;
    if (first) place();
    else if (following) centre(focus(), false);
    apply();
  }
  function place() {  // the first view: all of it if it fits at 100 %, else the step
    if (fitScale() >= 1) {
      z = Math.min(fitScale(), 1.25);
      tx = (stage.clientWidth - W * z) / 2; ty = (stage.clientHeight - H * z) / 2;
    } else { z = 1; centre(focus(), true); }
  }
  function sizeMini() {  // the overview takes the graph's shape (a long chain: a strip)
    const mw = 190, mh = Math.max(100, Math.min(stage.clientHeight - 40, 420));
    const k = Math.min(mw / W, mh / H);
    mini.style.width = Math.max(48, W * k) + "px"; mini.style.height = Math.max(48, H * k) + "px";
  }
  function user() { following = false; }
  const go = (d) => show(step + d);
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  slider.addEventListener("input", () => show(parseInt(slider.value, 10)));
  const mid = () => [stage.clientWidth / 2, stage.clientHeight / 2];
  q(".crv-in").addEventListener("click", () => { user(); zoomAt(1.25, ...mid()); apply(); });
  q(".crv-out").addEventListener("click", () => { user(); zoomAt(0.8, ...mid()); apply(); });
  // the current node is measured before the scale changes (current() divides by z)
  function actual() {
    const c = current(), all = current(sending());
    z = 1; centre(focus(c, all), true); apply();
  }
  q(".crv-one").addEventListener("click", actual);
  q(".crv-fit").addEventListener("click", () => { user(); fit(); apply(); });
  follow.addEventListener("click", () => {
    following = true;
    const c = current(), all = current(sending());
    if (z < 0.75) z = 1;
    centre(focus(c, all), true); apply();
  });
  stage.addEventListener("wheel", (e) => {
    e.preventDefault(); user();
    const r = stage.getBoundingClientRect();
    if (e.ctrlKey) {  // ctrl + wheel, or a pinch on a touchpad: zoom at the pointer
      zoomAt(Math.exp(-e.deltaY * 0.004), e.clientX - r.left, e.clientY - r.top);
    } else if (e.shiftKey) { tx -= e.deltaY; } else { tx -= e.deltaX; ty -= e.deltaY; }
    apply();
  }, {passive: false});
  let drag = null;
  stage.addEventListener("pointerdown", (e) => {
    if (mini.contains(e.target)) return;
    drag = {x: e.clientX, y: e.clientY, tx, ty}; stage.classList.add("drag");
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { user(); drag.moved = true; }
    tx = drag.tx + dx; ty = drag.ty + dy; apply();
  });
  const endDrag = () => { drag = null; stage.classList.remove("drag"); };
  stage.addEventListener("pointerup", (e) => {
    const d = drag;
    endDrag();
    if (d && !d.moved) tap(e.clientX, e.clientY);
  });
  stage.addEventListener("pointercancel", endDrag);
  mini.addEventListener("click", (e) => {
    user();
    const r = mini.getBoundingClientRect();
    const ms = Math.min(mini.clientWidth / W, mini.clientHeight / H);
    const ox = (mini.clientWidth - W * ms) / 2, oy = (mini.clientHeight - H * ms) / 2;
    const x = (e.clientX - r.left - ox) / ms, y = (e.clientY - r.top - oy) / ms;
    tx = stage.clientWidth / 2 - x * z; ty = stage.clientHeight / 2 - y * z; apply();
  });
  function key(e) {
    if (e.target === slider || e.altKey || e.metaKey || e.ctrlKey) return;
    const k = e.key, act = {
      ArrowLeft: () => go(-1), ArrowRight: () => go(1),
      Home: () => show(0), End: () => show(last),
      "+": () => { user(); zoomAt(1.25, ...mid()); apply(); },
      "=": () => { user(); zoomAt(1.25, ...mid()); apply(); },
      "-": () => { user(); zoomAt(0.8, ...mid()); apply(); },
      "0": actual,
      f: () => { user(); fit(); apply(); },
      c: () => follow.click(),
    }[k];
    if (act) { act(); e.preventDefault(); e.stopPropagation(); }
  }
  (pageKeys ? document : root).addEventListener("keydown", key);
  root.addEventListener("pointerdown", () => root.focus({preventScroll: true}));
  root.chainrule = {show, opened, get step() { return step; },
                    get following() { return following; }};
  show(0, true);
  root.dataset.live = "1";  // ready: steps, keys and the chainrule object work
  // shown before it had a size (a notebook output is laid out after its script ran):
  // place the view again once it has one, and whenever it changes, unless moved by hand
  let placed = stage.clientWidth > 0, moved = false;
  const mark = () => { moved = true; };
  stage.addEventListener("pointerdown", mark); stage.addEventListener("wheel", mark);
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      if (!stage.clientWidth) return;
      if (!placed || !moved && step === 0) { placed = true; place(); }
      else if (following) centre(focus(), false);
      apply();
    }).observe(stage);
  }
}
"""
