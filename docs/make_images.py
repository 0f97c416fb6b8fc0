"""Regenerate the README's pictures, docs/img/<notebook>.png, from the notebooks.

Each notebook is executed as it is (the same code the guided tour runs), then one extra
cell saves the notebook's representative figure. Run from the repository root:

    .venv/bin/python docs/make_images.py

``--viewer`` instead saves screenshots of the step-through viewer, in the HTML page and
as the widget in JupyterLab, on an MLP's loss and on a loop of 300 ops, three steps
each (docs/img/viewer_*.png): the browser tests take them while they check the view.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
IMAGES = ROOT / "docs" / "img"

# notebook -> code run after its last cell; OUT is the PNG's path
EXPORT = {
    "01_chain_rule": "trace.draw(step.index).save(OUT, dpi=110)",
    "02_case_study": "overfit_fig.savefig(OUT, dpi=90, bbox_inches='tight')",
    "03_gradient_flow": "flow_fig.savefig(OUT, dpi=80, bbox_inches='tight')",
    "04_write_your_own_op": "bce_fig.savefig(OUT, dpi=100, bbox_inches='tight')",
    "05_real_data": "adversarial_fig.savefig(OUT, dpi=85, bbox_inches='tight')",
    "06_derivatives_of_derivatives": "sharpness_fig.savefig(OUT, dpi=80, bbox_inches='tight')",
    # convolutions
    "07_convolutions": "backward_fig.savefig(OUT, dpi=80, bbox_inches='tight')",
    # backprop by hand
    "08_backprop_by_hand": "dlogits_fig.savefig(OUT, dpi=90, bbox_inches='tight')",
}


def viewer_shots() -> None:
    env = dict(os.environ, CHAINRULE_SHOTS=str(IMAGES))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                    str(ROOT / "tests" / "test_viewer.py")], cwd=ROOT, env=env, check=True)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    if "--viewer" in sys.argv[1:]:
        viewer_shots()
        return
    for name, code in EXPORT.items():
        out = IMAGES / f"{name}.png"
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(f"OUT = {str(out)!r}\n{code}"))
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        print(f"{out.relative_to(ROOT)}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
