"""Fixtures of the protocol tests: a fake bench and small, fast parameter sets."""

from __future__ import annotations

import pytest
from fake_bench import FakeBench

#: Parameters that make each protocol run in well under a second on any bench.
SMALL_PARAMETERS = {
    "iv-sweep": {"cycles": 2, "step_v": 0.25},
    "set": {"pulse_count": 10, "reads_before": 2, "reads_after": 2, "settle_s": 10.0,
            "settle_read_interval_s": 5.0},
    "short-term": {"amplitudes_v": [2.0, 3.0], "widths_s": [100e-6], "repeats": 2,
                   "last_read_s": 0.5, "reads_per_decade": 3},
    "long-term-levels": {"levels": 1, "set_pulse_count": 10, "settle_s": 1.0,
                         "amplitudes_v": [2.5], "repeats": 2, "last_read_s": 0.5,
                         "reads_per_decade": 3},
    "bias-decay": {"biases_v": [-0.6, 0.6], "repeats": 2, "last_read_s": 0.5,
                   "reads_per_decade": 3},
}


@pytest.fixture
def fake_bench() -> FakeBench:
    return FakeBench()
