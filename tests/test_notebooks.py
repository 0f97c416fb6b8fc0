"""The guided tour in notebooks/: every notebook runs top to bottom without an error.

Each notebook asserts its own claims (accuracy reached, gradcheck passing or failing, the
adversarial example flipping the prediction), so a broken claim fails its test here with
the failing cell's traceback. The notebooks run in a fresh ``python3`` kernel of this
interpreter's environment, with ``notebooks/`` as the working directory and this checkout's
``autograd`` and ``nn`` first on the path (not whichever copy the environment installed).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from support import dot_missing, require, require_module

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in IPython's tracebacks


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, monkeypatch):
    nbformat = require_module("nbformat", "the notebooks")
    nbclient = require_module("nbclient", "the notebooks")
    for module in ("ipykernel", "ipywidgets", "matplotlib", "sklearn"):
        require_module(module, "the notebooks")
    require(dot_missing(), "the notebooks")
    # the kernel spec of this environment (its "python" is this interpreter), not a
    # user-level one that may point at another Python
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    path_before = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path_before])))

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed\n{_ANSI.sub('', str(err))}", pytrace=False)
    except nbclient.exceptions.CellTimeoutError as err:
        pytest.fail(f"{path.name}: a cell ran longer than {CELL_TIMEOUT} s\n{err}",
                    pytrace=False)
    except nbclient.exceptions.DeadKernelError as err:
        pytest.fail(f"{path.name}: the kernel died\n{err}", pytrace=False)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} are stored with outputs; clear them "
                       "before committing (JupyterLab: Edit > Clear Outputs of All Cells, or "
                       "jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)")


def test_the_tour_is_complete():
    assert [p.stem for p in PATHS] == ["01_chain_rule", "02_case_study", "03_gradient_flow",
                                       "04_write_your_own_op", "05_real_data",
                                       "06_derivatives_of_derivatives", "07_convolutions",
                                       "08_backprop_by_hand"]
