"""In CI nothing the tests need may be missing: a missing piece fails, never skips."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from support import require, require_module


def _load_conftest():
    path = Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("_conftest_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("ci", ["1", "true", None, "", "false"])
def test_ci_without_torch_stops_the_run(ci, monkeypatch):
    """In CI a missing torch must stop the run, not skip the PyTorch oracle quietly."""
    conftest = _load_conftest()
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    if ci in ("1", "true"):
        with pytest.raises(pytest.exit.Exception, match="torch"):
            conftest.pytest_configure(None)
    else:
        assert conftest.pytest_configure(None) is None


@pytest.mark.parametrize("ci", ["1", None])
def test_require_skips_outside_ci_and_fails_in_it(ci, monkeypatch):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="chromium"):
        require("chromium", "the browser test")
    with pytest.raises(outcome, match="no_such_package_xyz"):
        require_module("no_such_package_xyz")
    require(None)  # nothing missing: nothing happens
    assert require_module("json").dumps([1]) == "[1]"
