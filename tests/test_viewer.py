"""The step-through viewer at real size, in real Chromium: the HTML page, and the widget in
a real JupyterLab started here.

On an MLP 10-5-5-1 with a BCE loss and on a loop of 300 ops, stepping with Next, the
arrow keys and the slider, the page itself must show the current node inside the view
with its text at least 10 px high (at 100 % zoom, in a 1280×800 window).

Outside CI the tests skip when chromium, playwright, Graphviz or JupyterLab is missing;
with ``CI`` set they fail instead. ``CHAINRULE_SHOTS=DIR`` saves screenshots of three
steps of each (``docs/make_images.py --viewer`` sets it to ``docs/img``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from support import CHROMIUM, CHROMIUM_ARGS, browser_missing, dot_missing, require

import autograd as ag

SHOTS = os.environ.get("CHAINRULE_SHOTS")

# the notebook code and the test build the same two graphs
GRAPHS = '''
import numpy as np
import autograd as ag
import nn

def mlp_loss():
    """An MLP 10-5-5-1 on 8 samples, binary cross entropy."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(10, 5), nn.Sigmoid(), nn.Linear(5, 5), nn.Sigmoid(),
                          nn.Linear(5, 1))
    x = ag.Tensor(rng.normal(size=(8, 10)), name="x")
    y = ag.Tensor((rng.random((8, 1)) > 0.5).astype(float), name="y")
    return nn.functional.binary_cross_entropy(model(x).sigmoid(), y)

def loop_loss():
    """A loop of 300 ops: h = tanh(h * w), 150 times."""
    w = ag.Tensor(0.9, requires_grad=True, name="w")
    h = ag.Tensor(1.0, requires_grad=True, name="x")
    for _ in range(150):
        h = (h * w).tanh()
    return h
'''
_ns: dict = {}
exec(GRAPHS, _ns)
mlp_loss, loop_loss = _ns["mlp_loss"], _ns["loop_loss"]


# What the page shows of the current step, measured in the page: the current tensor
# (or module) box and its op, their rectangles, the stage's and the window's, and the
# height of every line of text in them.
_MEASURE = r"""
(root) => {
  root = root || document;
  const stage = root.querySelector(".crv-stage").getBoundingClientRect();
  const nodes = [...root.querySelectorAll(".crv-canvas g.node.current")];
  const out = [];
  for (const g of nodes) {
    const r = g.getBoundingClientRect();
    const texts = [...g.querySelectorAll("text")].filter(t => t.textContent.trim())
        .map(t => t.getBoundingClientRect().height);
    out.push({id: g.id, cls: g.getAttribute("class"), x0: r.left, y0: r.top,
              x1: r.right, y1: r.bottom, text: Math.min(...texts)});
  }
  // the inputs this step sends gradients to: the tails of its gold edges
  const tails = new Set([...root.querySelectorAll(".crv-canvas g.hot > title")]
      .map(t => t.textContent.split("->")[0].split(":")[0]));
  const receivers = [...root.querySelectorAll(".crv-canvas g.node > title")]
      .filter(t => tails.has(t.textContent)).map(t => {
        const r = t.parentNode.getBoundingClientRect();
        return {id: t.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
      });
  return {stage: {x0: stage.left, y0: stage.top, x1: stage.right, y1: stage.bottom},
          win: {x1: window.innerWidth, y1: window.innerHeight},
          label: root.querySelector(".crv-label").textContent, nodes: out, receivers};
}
"""


def _check_legible(m: dict, where: str, done: bool = False) -> None:
    """The current node lies inside the stage and the window; its text ≥ 10 px."""
    assert m["nodes"], f"{where}: no current node"
    s, w = m["stage"], m["win"]

    def inside(n):
        return (n["x0"] >= max(s["x0"], 0) - 1 and n["y0"] >= max(s["y0"], 0) - 1
                and n["x1"] <= min(s["x1"], w["x1"]) + 1 and n["y1"] <= min(s["y1"], w["y1"]) + 1)

    shown = [n for n in m["nodes"] if inside(n)]
    if done:  # the last step marks every leaf: at least one is in view
        assert shown, f"{where}: no current leaf in view: {m}"
    else:  # the tensor (or module) box of this step, and its op
        assert len(shown) == len(m["nodes"]), f"{where}: current node out of view: {m}"
    for n in shown:
        assert n["text"] >= 10, f"{where}: text {n['text']:.1f} px high in {n['id']}"
    # the inputs that receive this step's gradients are in view too, where the step and
    # they fit in well under the view (beside the overview's strip)
    group = m["nodes"] + m["receivers"]
    width = max(n["x1"] for n in group) - min(n["x0"] for n in group)
    height = max(n["y1"] for n in group) - min(n["y0"] for n in group)
    if not done and width < 0.6 * (s["x1"] - s["x0"]) and height < 0.6 * (s["y1"] - s["y0"]):
        missing = [n["id"] for n in m["receivers"] if not inside(n)]
        assert not missing, f"{where}: inputs {missing} of the current step out of view: {m}"


def _set_slider(page, root_sel: str, value: int) -> None:
    page.eval_on_selector(
        f"{root_sel} .crv-slider",
        "(s, v) => { s.value = v; s.dispatchEvent(new Event('input', {bubbles: true})); }",
        value)


def _drive(page, root_sel: str, n: int, name: str, shots: list) -> None:
    """Step with Next, the keys and the slider; check legibility at each stop."""
    root = page.locator(root_sel)

    page.wait_for_selector(f"{root_sel}[data-live]")  # its data unpacked: ready

    def check(expect: int, shot: bool = False):
        m = page.evaluate(f"() => ({_MEASURE})(document.querySelector({root_sel!r}))")
        assert m["label"] == f"Step {expect} of {n}", m["label"]
        _check_legible(m, f"{name} step {expect}", done=expect == n)
        if shot and SHOTS:
            shots.append(expect)
            root.screenshot(path=os.path.join(SHOTS, f"viewer_{name}_step{expect}.png"))

    check(0, shot=True)
    nxt = root.get_by_role("button", name="Next")
    for k in range(1, 4):
        nxt.click()
        check(k, shot=k == 3)
    root.locator(".crv-stage").click(position={"x": 5, "y": 5})  # focus for the keys
    page.keyboard.press("ArrowRight")
    check(4)
    page.keyboard.press("ArrowLeft")
    check(3)
    mid = n // 2
    _set_slider(page, root_sel, mid)
    check(mid, shot=True)
    for k in (mid + 1, mid + 2):
        page.keyboard.press("ArrowRight")
        check(k)
    # back from the whole graph: "Follow" brings the current node into view at 100 %
    root.get_by_role("button", name="Fit").click()
    root.get_by_role("button", name="Follow").click()
    check(mid + 2)
    page.keyboard.press("End")
    check(n)
    # zoom and pan by the user: the view stops following until "Follow"
    root.get_by_role("button", name="Fit").click()
    assert not page.evaluate(f"document.querySelector({root_sel!r}).chainrule.following")
    root.get_by_role("button", name="Follow").click()
    _set_slider(page, root_sel, 2)
    check(2)


@pytest.fixture(scope="module")
def browser():
    require(browser_missing(), "the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("name", ["mlp", "loop"])
def test_page_keeps_the_current_step_legible(browser, tmp_path, name):
    loss = (mlp_loss if name == "mlp" else loop_loss)()
    trace = ag.trace_backward(loss, max_nodes=None)
    path = trace.to_html(tmp_path / f"{name}.html")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("file://" + os.path.abspath(path))
        _drive(page, "#viewer", len(trace) - 1, f"page_{name}", [])
        # the overview marks the current node
        assert page.locator(".crv-mini-dot").is_visible()
        assert not errors, errors
    finally:
        page.close()


def deep_mlp_loss():
    """An MLP 4-6-6-6-6-6-6-1 with tanh: 13 modules, 49 nodes (modules folded)."""
    import nn

    rng = np.random.default_rng(0)
    layers = []
    for a, b in [(4, 6)] + [(6, 6)] * 5 + [(6, 1)]:
        layers += [nn.Linear(a, b), nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    x = ag.Tensor(rng.normal(size=(8, 4)), name="x")
    y = ag.Tensor(rng.normal(size=(8, 1)), name="y")
    return ((model(x) - y) ** 2).mean()


# Where a point of a node shows: the topmost element at the centre of its first text.
_HIT = r"""
([root, id]) => {
  const g = document.querySelector(root).querySelector(`.crv-canvas g[id="${id}"]`);
  const r = g.querySelector("text").getBoundingClientRect();
  const el = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  return {node: !!el && g.contains(el), fold: !!el && !!el.closest(".crv-fold"),
          x: (r.left + r.right) / 2, y: (r.top + r.bottom) / 2};
}
"""


def test_modules_fold_until_the_step_enters_them(browser, tmp_path):
    """On a big graph each module is one box with its name until the current step is in
    it (or it is clicked): measured in the page, by what lies on top of its nodes."""
    trace = ag.trace_backward(deep_mlp_loss())
    scopes = trace.step_scopes()
    assert scopes is not None and scopes[-1] == "*"
    assert ag.trace_backward(mlp_loss()).step_scopes() is None  # small: as before
    m = trace.model
    module = "4"  # a Linear layer in the middle
    inner = next(n.id for n in m.nodes.values() if n.scope == module
                 and isinstance(n, ag.viz.model.TensorNode) and not n.named)
    outside = 1  # the first op step, outside any module
    assert scopes[outside] == ""
    inside = scopes.index(module)
    path = trace.to_html(tmp_path / "deep.html")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("file://" + os.path.abspath(path))
        page.wait_for_selector("#viewer[data-live]")
        page.locator("#viewer .crv-fit").click()  # the whole graph, so every node is on screen

        def hit(i):
            page.evaluate(f"document.querySelector('#viewer').chainrule.show({i})")
            return page.evaluate(f"({_HIT})", ["#viewer", inner])

        fold = page.locator(f'#viewer .crv-canvas .crv-fold[data-scope="{module}"]')
        h = hit(outside)
        assert h["fold"] and not h["node"], h  # covered by its module's box
        # its box names the module and what it is, as PyTorch prints it: (4): Linear
        assert fold.is_visible() and fold.locator("text").first.text_content() == (
            f"{module} · Linear")
        h = hit(inside)
        assert h["node"] and not h["fold"], h
        assert not fold.is_visible()
        # every step's current tensor lies uncovered
        for i, s in enumerate(trace.steps[:-1]):
            if s.tensor is not None:
                hit(i)
                c = page.evaluate(f"({_HIT})", ["#viewer", m.ids[s.tensor]])
                assert c["node"], (i, s.label, c)
        # the last step opens every module (its leaves are current)
        hit(len(trace) - 1)
        assert page.locator("#viewer .crv-canvas .crv-fold:visible").count() == 0
        # a click opens a module; a click on its name closes it again
        h = hit(outside)
        page.mouse.click(h["x"], h["y"])
        h = hit(outside)
        assert h["node"] and not h["fold"], h
        name = page.locator(f'#viewer .crv-canvas g.cluster[id="scope:{module}"] text')
        assert name.text_content() == f"{module} · Linear"
        box = name.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert hit(outside)["fold"]
        if SHOTS:
            page.evaluate("document.querySelector('#viewer').chainrule.show(5)")
            page.locator("#viewer .crv-follow").click()
            page.screenshot(path=os.path.join(SHOTS, "viewer_page_folded_step5.png"))
        assert not errors, errors
    finally:
        page.close()


# ---------------------------------------------------------------------------- JupyterLab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_missing() -> str | None:
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists() and not shutil.which("jupyter-lab"):
        return "JupyterLab (pip install -e '.[lab]')"
    try:
        import ipywidgets  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as err:
        return f"the Python package {err.name!r}"
    return None


@contextlib.contextmanager
def _jupyterlab(root: Path):
    """A JupyterLab server on a free port, serving ``root``; stopped on exit."""
    lab = Path(sys.executable).with_name("jupyter-lab")
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    cmd = [str(lab) if lab.exists() else "jupyter-lab", "--no-browser", "--allow-root",
           f"--port={port}", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.ip=127.0.0.1", "--LabApp.expose_app_in_browser=True",
           f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False"]
    # no "news" pop-up over the notebook
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / ".settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".workspaces")
    log = open(root / "lab.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (root / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _dismiss_dialogs(page, seen: list) -> None:
    """Close any JupyterLab dialog (it would cover the widget): the kernel chooser,
    which a fresh server may show, by choosing Python 3; any other is noted."""
    for _ in range(3):
        texts = page.evaluate(
            "() => [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText)")
        if not texts:
            return
        if all(t.startswith("Select Kernel") for t in texts):  # keep Python 3
            page.locator(".jp-Dialog").get_by_role("button", name="Select").click()
        else:
            seen.extend(texts)
            page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def _run_all(page, expect: int, dialogs: list) -> None:
    """Run every cell and wait for ``expect`` live viewers. The command is not awaited
    (its promise can wait on a kernel still connecting), so it is sent again whenever
    no cell is running and the viewers are not all there yet (the cells can run twice).
    On a timeout the failure shows the cells' prompts and outputs."""
    run = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
    live = f"document.querySelectorAll('.crv[data-live]').length >= {expect}"
    running = ("() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
               ".some(e => e.textContent.includes('*'))")
    deadline = time.monotonic() + 300
    while not page.evaluate(f"() => {live}"):
        if time.monotonic() > deadline:
            cells = page.evaluate(
                "() => [...document.querySelectorAll('.jp-Cell')].map(c => "
                "(c.querySelector('.jp-InputArea-prompt')?.textContent || '') + ' ' + "
                "(c.querySelector('.jp-OutputArea')?.innerText || '').slice(0, 500))")
            pytest.fail(f"{expect} live viewers did not appear in JupyterLab; cells:\n"
                        + "\n".join(cells), pytrace=False)
        if not page.evaluate(running):
            _dismiss_dialogs(page, dialogs)
            page.evaluate(run)
        page.wait_for_timeout(5_000)


def test_widget_in_jupyterlab_keeps_the_current_step_legible(browser, tmp_path):
    require(_lab_missing(), "the JupyterLab test")
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(GRAPHS),
        nbformat.v4.new_code_cell("mlp_trace = ag.trace_backward(mlp_loss())\n"
                                  "mlp_trace.widget()"),
        nbformat.v4.new_code_cell("loop_trace = ag.trace_backward(loop_loss(), max_nodes=None)\n"
                                  "loop_trace.widget()"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "viewer.ipynb")
    n_mlp = len(ag.trace_backward(mlp_loss())) - 1
    n_loop = len(ag.trace_backward(loop_loss(), max_nodes=None)) - 1
    with _jupyterlab(tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(30_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{url}/lab/tree/viewer.ipynb", timeout=90_000)
            page.wait_for_function(
                "() => window.jupyterapp && document.querySelector('.jp-Notebook')"
                " && document.querySelector('.jp-Notebook-ExecutionIndicator')",
                timeout=90_000)
            # wait for the kernel, then run every cell
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=90_000)
            dialogs: list = []
            page.wait_for_timeout(1000)
            _dismiss_dialogs(page, dialogs)
            _run_all(page, expect=2, dialogs=dialogs)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
            _dismiss_dialogs(page, dialogs)
            if page.evaluate("document.querySelectorAll('.crv[data-live]').length") < 2:
                _run_all(page, expect=2, dialogs=dialogs)  # the kernel chooser cleared them
            ids = page.eval_on_selector_all(".crv[data-live]", "els => els.map(e => e.id)")
            for uid, name, n in zip(ids, ("mlp", "loop"), (n_mlp, n_loop)):
                sel = f"#{uid}"
                _dismiss_dialogs(page, dialogs)
                page.locator(sel).scroll_into_view_if_needed()
                page.evaluate(f"document.querySelector({sel!r}).scrollIntoView()")
                _drive(page, sel, n, f"widget_{name}", [])
            assert not [e for e in errors if "chainrule" in e or "crv" in e], errors
            assert not dialogs, dialogs
        finally:
            page.close()


def test_trace_pictures_stay_small_enough_to_ship():
    """The loop's page is a few MB, not one SVG per step."""
    require(dot_missing(), "the frame test")
    trace = ag.trace_backward(loop_loss(), max_nodes=None)
    f = trace.frames()
    assert len(f.frames) == len(trace) == 303 + 1
    assert len(f.parts) < 12 * len(trace.model.nodes)  # a few looks per node, not per frame
    # every frame has every node once, at the same place as in frame 0
    assert all(len(fr) == len(f.frames[0]) for fr in f.frames)
    np.testing.assert_array_equal(
        [len(set(fr)) for fr in f.frames], [len(f.frames[0])] * len(f.frames))


def test_loop_page_stays_small_and_its_panels_list_the_gradients_nearby(tmp_path):
    """The side panel of a step lists the gradients that change in it, those of the
    tensors it feeds and the latest few, and counts the rest: the 300-op loop's panels
    stay well under 1 MB instead of listing every gradient so far at every step. The
    steps' data travels gzipped (4.1 MB of JSON in 0.4 MB), so the page, its first frame
    inline, stays under 1.5 MB (it was 5 MB); the same data unpacks from it."""
    require(dot_missing(), "the page test")
    from autograd.viz.explain import LEDGER_RECENT, ledger_rows, panel_html

    trace = ag.trace_backward(loop_loss(), max_nodes=None)
    path = trace.to_html(tmp_path / "loop.html")
    assert os.path.getsize(path) < 1_500_000
    html = open(path, encoding="utf-8").read()
    assert 'class="crv-data-gz"' in html and 'class="crv-data"' not in html
    data = ag.viz.viewer.viewer_data(html)
    f = trace.frames()
    assert data["parts"] == f.parts and data["first"] == f.frames[0]
    assert len(data["panels"]) == len(trace)
    assert sum(len(panel_html(trace, s).encode()) for s in trace.steps) < 1_000_000
    m = trace.model
    step = trace[200]
    rows, rest = ledger_rows(trace, step)
    everything = trace.ledger(200)
    labels = [r[0] for r in rows]
    assert rest == len(everything) - len(rows) > 100
    assert labels == [r[0] for r in everything if r[0] in labels]  # the ledger's order
    tid = m.ids[step.tensor]
    fed = {m.nodes[m.nodes[m.edges[e].op].out].label for e in m.uses[tid]}
    sent = {name for name, _, _ in step.sent}
    assert {step.label, "w"} | fed | sent <= set(labels)  # w: first got one at step 1
    assert [r[0] for r in everything[-LEDGER_RECENT:]] == labels[-LEDGER_RECENT:]
    assert f"and {rest} earlier gradients" in panel_html(trace, step)
    # a small graph lists every gradient at every step
    a, b = ag.Tensor(2.0, requires_grad=True, name="a"), ag.Tensor(3.0, requires_grad=True)
    small = ag.trace_backward((a * b + a).tanh())
    for s in small.steps[:-1]:
        assert ledger_rows(small, s) == (small.ledger(s.index), 0)
