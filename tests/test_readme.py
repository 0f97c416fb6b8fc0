"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples():
    assert len(python_blocks()) >= 3


def test_readme_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(python_blocks()):
        code = compile(block, f"README.md python block {i + 1}", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own examples
    assert (tmp_path / "model.npz").exists()
    assert (tmp_path / "backprop.html").exists()
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "model.onnx").exists()
    assert namespace["x"].grad.shape == (2, 2)
