"""Shared pytest setup.

- In CI (the ``CI`` environment variable set), the PyTorch oracle is a hard
  requirement: a missing ``torch`` stops the run instead of letting the oracle tests
  skip quietly. Outside CI they skip cleanly via ``pytest.importorskip``.
- Every test starts and ends with the engine's global modes at their defaults.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import in_ci

import autograd as ag
from autograd.function import get_anomaly_hook, set_anomaly_hook


def pytest_configure(config):
    if not in_ci():
        return
    try:
        import torch  # noqa: F401
    except ImportError as err:
        pytest.exit(
            f"CI is set but torch cannot be imported ({err}); the PyTorch-oracle tests "
            "would be skipped. Install the test extra (pip install -e '.[test]', which "
            "pins torch==2.13.0).",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _default_modes():
    """Every test starts with the engine's modes at their defaults, and must leave them so
    (a leaked mode would change the tests that run after it in the same process)."""
    dtype = ag.get_default_dtype()
    yield
    leaked = {"grad mode off": not ag.is_grad_enabled(), "name scope": ag.current_scope(),
              "anomaly mode": get_anomaly_hook() is not None,
              "default dtype": ag.get_default_dtype() != dtype}
    ag.set_default_dtype(dtype)
    ag.set_grad_enabled(True)
    set_anomaly_hook(None)
    leaked = [what for what, bad in leaked.items() if bad]
    assert not leaked, f"the test left modes changed: {', '.join(leaked)}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
