"""Fixtures of the simulated-bench tests."""

import pytest
from sim_bench_helpers import make_bench


@pytest.fixture
def bench():
    """A fresh simulated bench (seed 7, gain 1e6 V/A, low noise)."""
    return make_bench()
