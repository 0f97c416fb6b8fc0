"""Visualisation is a layer on top of the engine: optional imports, clear install errors.

``import autograd`` and ``import nn`` load neither graphviz, matplotlib nor ipywidgets;
``draw_graph`` imports graphviz when called. Without the graphviz package or the ``dot``
program, pictures fail with ``GraphvizNotFoundError`` naming the install command, while
the DOT text and everything a trace records stay available.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GRAPH = """
import autograd as ag
w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
loss = (w * w).sum()
"""


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_import_loads_no_picture_library():
    out = _run("""
        import sys
        import autograd as ag
        import nn
        heavy = ("graphviz", "matplotlib", "ipywidgets")
        print("after import:", [m for m in heavy if m in sys.modules])
        w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
        trace = ag.trace_backward((w * w).sum())   # recording needs no picture library
        trace[1].describe()
        print("after trace:", [m for m in heavy if m in sys.modules])
        ag.draw_graph((w * w).sum())
        print("after draw:", "graphviz" in sys.modules)
    """).stdout.splitlines()
    assert out == ["after import: []", "after trace: []", "after draw: True"]


def test_without_the_graphviz_package_drawing_says_how_to_install():
    out = _run(GRAPH + """
import sys
sys.modules["graphviz"] = None  # as if not installed: any import of it fails
for name, call in [("draw_graph", lambda: ag.draw_graph(loss)),
                   ("GraphDrawing", lambda: ag.GraphDrawing)]:
    try:
        call()
    except ag.GraphvizNotFoundError as err:
        print(name, "->", err)
trace = ag.trace_backward(loss)  # recording and its numbers still work
print("grad", w.grad.tolist(), trace[2].expression)
try:
    trace.to_html("page.html")
except ag.GraphvizNotFoundError as err:
    print("to_html ->", err)
""")
    lines = out.stdout.splitlines()
    assert [ln.split(" ->")[0] for ln in lines] == ["draw_graph", "GraphDrawing",
                                                    "grad [1.0, -2.0] w * w", "to_html"]
    for line in (lines[0], lines[1], lines[3]):
        assert "`graphviz` Python package" in line and "`pip install graphviz`" in line
        assert "apt-get install graphviz" in line  # and the dot program it will need
    assert not (ROOT / "page.html").exists()


def test_without_dot_rendering_says_how_to_install(tmp_path):
    out = _run(GRAPH + f"""
g = ag.draw_graph(loss)  # the DOT text needs no dot program
print("source", g.source.startswith("digraph"))
trace = ag.trace_backward(loss)
for name, call in [("save", lambda: g.save({str(tmp_path / "g.png")!r})),
                   ("svg", g.svg), ("notebook", g._repr_mimebundle_),
                   ("to_html", lambda: trace.to_html({str(tmp_path / "t.html")!r}))]:
    try:
        call()
    except ag.GraphvizNotFoundError as err:
        print(name, "->", err)
""", env={"PATH": str(tmp_path)})  # no `dot` anywhere on PATH
    lines = out.stdout.splitlines()
    assert lines[0] == "source True"
    assert [ln.split(" ->")[0] for ln in lines[1:]] == ["save", "svg", "notebook", "to_html"]
    for line in lines[1:]:
        assert "`dot` program" in line and "`sudo apt-get install graphviz`" in line
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def _py_files(*parts):
    return sorted(p for p in ROOT.joinpath(*parts).rglob("*.py"))


def _imports(path: Path):
    """(module, [names]) for each import statement of ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), [a.name for a in node.names]


def test_only_the_dot_renderer_imports_graphviz():
    importers = {str(p.relative_to(ROOT)) for p in _py_files("autograd") + _py_files("nn")
                 for module, _ in _imports(p) if module.partition(".")[0] == "graphviz"}
    assert importers == {os.path.join("autograd", "viz", "dot.py")}


@pytest.mark.parametrize("path", _py_files("autograd", "viz") + [ROOT / "autograd" / "anomaly.py"],
                         ids=lambda p: p.name)
def test_viz_and_anomaly_import_no_private_names(path):
    private = [(module, name) for module, names in _imports(path) for name in names
               if name.startswith("_") and name != "__future__" and module != "__future__"]
    assert not private, f"{path.name} imports private names {private}"


def test_write_file_leaves_nothing_behind_when_a_write_fails(tmp_path):
    from autograd.viz.files import write_file

    target = tmp_path / "graph.svg"
    write_file(str(target), b"<svg/>")
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(TypeError):
        write_file(str(target), "not bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.svg"]
    assert target.read_bytes() == b"<svg/>"  # the old picture is intact


def test_write_file_errors_name_the_target(tmp_path):
    from autograd.viz.files import write_file

    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "page.html"  # its folder would be a file
    with pytest.raises(OSError, match="page.html"):
        write_file(str(target), b"<html/>")
