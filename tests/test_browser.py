"""The step-through HTML page in real headless Chromium (driven by playwright).

Outside CI the test skips when chromium, playwright or Graphviz's dot is missing; with
the ``CI`` environment variable set it fails instead, so CI cannot pass without it.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from support import CHROMIUM, CHROMIUM_ARGS, browser_missing, require

import autograd as ag


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    require(browser_missing(), "the browser test")
    x = ag.Tensor([1.0, -2.0], name="x")
    w = ag.Tensor([0.5, 0.25], requires_grad=True, name="w")
    b = ag.Tensor(0.1, requires_grad=True, name="b")
    loss = ((x * w).sum() + b).tanh()
    trace = ag.trace_backward(loss)
    return trace, trace.to_html(tmp_path_factory.mktemp("html") / "backprop.html")


def _png_pixels(png: bytes) -> np.ndarray:
    """Decode a screenshot to an (h, w, 3) array of 0..255 values."""
    import matplotlib.image as mpimg

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    return np.round(img[..., :3] * 255).astype(np.int32)


def _current_node(page) -> str:
    return page.eval_on_selector(".crv-canvas g.current title", "e => e.textContent")


def test_previous_next_and_arrow_keys_in_chromium(page_file):
    from playwright.sync_api import sync_playwright

    trace, path = page_file
    n = len(trace) - 1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto("file://" + os.path.abspath(path))
            label = page.locator(".crv-label")
            assert label.inner_text() == f"Step 0 of {n}"
            assert page.get_by_role("button", name="Previous").is_disabled()
            node0 = _current_node(page)
            assert node0 == trace.model.ids[trace.root]  # step 0: the output is current

            page.get_by_role("button", name="Next").click()
            assert label.inner_text() == f"Step 1 of {n}"
            node1 = _current_node(page)
            assert node1 != node0
            assert "local rule" in page.inner_text(".crv-panel").lower()

            page.get_by_role("button", name="Next").click()
            assert label.inner_text() == f"Step 2 of {n}"
            assert _current_node(page) not in (node0, node1)

            page.keyboard.press("ArrowLeft")
            assert label.inner_text() == f"Step 1 of {n}"
            assert _current_node(page) == node1
            page.keyboard.press("ArrowRight")
            page.keyboard.press("End")
            assert label.inner_text() == f"Step {n} of {n}"
            assert page.get_by_role("button", name="Next").is_disabled()
            page.keyboard.press("Home")
            page.keyboard.press("ArrowRight")
            assert label.inner_text() == f"Step 1 of {n}"

            shot = page.screenshot()
            assert not errors, errors
        finally:
            browser.close()
    pixels = _png_pixels(shot)
    assert pixels.shape[:2] == (800, 1280)
    assert pixels.std() > 10  # not blank
    # the gold highlight of the current node is on screen
    gold = (abs(pixels[..., 0] - 0xF2) < 12) & (abs(pixels[..., 1] - 0xA9) < 12) & (
        pixels[..., 2] < 40)
    assert gold.sum() > 50


_TEXT_GAPS = r"""
() => {
  // per box: the room (in SVG units) between the end of its widest text and its border
  const gaps = {};
  for (const g of document.querySelectorAll('g.node.tensor, g.node.module')) {
    const border = [...g.querySelectorAll('path')].find(
        p => p.getAttribute('fill') === 'none' && p.getAttribute('stroke') !== 'transparent');
    const box = border.getBBox();
    let gap = Infinity;
    for (const t of g.querySelectorAll('text')) {
      const n = t.textContent.replace(/[\s\u00a0]+$/, '').length;
      if (n === 0) continue;
      const last = t.getExtentOfChar(n - 1);  // the last visible glyph
      gap = Math.min(gap, box.x + box.width - (last.x + last.width));
    }
    gaps[g.id] = gap;
  }
  return gaps;
}
"""


def test_box_text_keeps_clear_of_the_border_in_chromium(tmp_path):
    require(browser_missing(), "the browser test")
    from playwright.sync_api import sync_playwright

    # long monospace rows: a (5, 1) column's data, |g| rows in collapsed module boxes
    x = ag.Tensor(np.linspace(-0.003142, 0.0674, 5).reshape(5, 1), name="x")
    w = ag.Tensor([[0.123456]], requires_grad=True, name="w")
    loss = ((x @ w).sigmoid() ** 2).mean()
    loss.backward()
    paths = [ag.draw_graph(loss).save(tmp_path / "column.svg")]
    h = ag.Tensor(np.ones((16, 4)), name="X")
    for i, (n_in, n_out) in enumerate([(4, 8), (8, 8), (8, 1)]):
        W = ag.Tensor(np.full((n_in, n_out), 0.01), requires_grad=True,
                      name=f"layers.{i}.weight")
        b = ag.Tensor(np.full(n_out, 0.001641), requires_grad=True, name=f"layers.{i}.bias")
        with ag.name_scope("layers"), ag.name_scope(str(i)):
            h = (h @ W + b).tanh()
    net_loss = (h ** 2).mean()
    net_loss.backward()
    paths.append(ag.draw_graph(net_loss, collapse_modules="always").save(tmp_path / "net.svg"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            gaps = {}
            for path in paths:
                page.goto("file://" + os.path.abspath(path))
                gaps.update({f"{os.path.basename(path)}:{k}": v
                             for k, v in page.evaluate(_TEXT_GAPS).items()})
        finally:
            browser.close()
    assert any(k.startswith("net.svg:m") for k in gaps)  # module boxes were measured
    tight = {k: round(v, 2) for k, v in gaps.items() if v < 4}
    assert not tight, f"text within 4 pt of a box's right border: {tight}"
