"""Plan helpers: the I-V staircase and the log read schedule."""

import math
from itertools import pairwise

import pytest

from protocols.plan import PulseTrain, log_schedule_s, staircase_cycle_v


def test_staircase_cycle_shape():
    cycle = staircase_cycle_v(-2.0, 2.0, 0.5)
    assert cycle == (0.0, 0.5, 1.0, 1.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0,
                     -1.5, -1.0, -0.5, 0.0)


def test_staircase_includes_extremes_off_grid():
    cycle = staircase_cycle_v(-1.0, 1.1, 0.5)
    assert max(cycle) == 1.1
    assert min(cycle) == -1.0
    steps = [abs(b - a) for a, b in pairwise(cycle)]
    assert max(steps) <= 0.5 + 1e-12


@pytest.mark.parametrize("low, high, step", [(0.5, 2.0, 0.1), (-2.0, -0.5, 0.1), (-2.0, 2.0, 0.0)])
def test_staircase_rejects_bad_ranges(low, high, step):
    with pytest.raises(ValueError):
        staircase_cycle_v(low, high, step)


def test_log_schedule_spacing_and_ends():
    times = log_schedule_s(1e-3, 60.0, 8, min_spacing_s=7e-4)
    assert times[0] == 1e-3
    assert times[-1] == 60.0
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 7e-4
    decades = math.log10(60.0 / 1e-3)
    assert len(times) <= decades * 8 + 2


def test_log_schedule_rejects_bad_bounds():
    with pytest.raises(ValueError):
        log_schedule_s(1.0, 0.5, 8, 0.0)


def test_pulse_train_needs_period_longer_than_width():
    with pytest.raises(ValueError, match="period"):
        PulseTrain(4.0, 500e-6, count=10, period_s=400e-6)
    assert PulseTrain(4.0, 500e-6, count=10, period_s=1e-3).duration_s == pytest.approx(9.5e-3)
