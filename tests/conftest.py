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
    """Leave grad mode and the default dtype as they were, whatever a test does."""
    dtype = ag.get_default_dtype()
    yield
    ag.set_default_dtype(dtype)
    ag.set_grad_enabled(True).__enter__()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
