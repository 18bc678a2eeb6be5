"""The steps of a measurement plan: what each protocol will do, as data.

A protocol first builds its whole plan as a list of steps. The plan is checked against the
bench limits before any output turns on (``protocols.preflight``) and then executed step by
step (``protocols.base``). Because a plan is plain data, tests compare plans directly and a
run can be dry-run without instruments, as with a Bluesky plan.

Every voltage in a step is a voltage at the device (the Pt electrode, Ti grounded). The
SMU and generator channel 1 both drive the Pt electrode, so the voltage at the device is
the sum of the SMU level (0 V while its output is off) and the generator output. ``PulseTrain`` gives the
device voltage during the pulse; the generator supplies the difference to the SMU level.

``tags`` are the values that label the rows a step produces (``{"Repeat": 2}``); they use
the results-file column names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

Tags = Mapping[str, object]


def _frozen(tags: Mapping[str, object] | None) -> Tags:
    return MappingProxyType(dict(tags or {}))


@dataclass(frozen=True)
class SetLevel:
    """Set the SMU to ``voltage_v`` and turn its output on (no reads)."""

    voltage_v: float


@dataclass(frozen=True)
class Sweep:
    """One SMU staircase sweep through ``voltages_v``, one measurement per point.

    The generator output is off (0 V) during the sweep. Each point is held for
    ``source_delay_s`` and then measured for ``aperture_s``; the current is limited to
    ``current_limit_a``. After the sweep the SMU stays at the last voltage of the list.
    """

    voltages_v: tuple[float, ...]
    aperture_s: float
    source_delay_s: float
    current_limit_a: float
    tags: Tags = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "voltages_v", tuple(float(v) for v in self.voltages_v))
        object.__setattr__(self, "tags", _frozen(self.tags))


@dataclass(frozen=True)
class PulseTrain:
    """``count`` rectangular pulses of ``amplitude_v`` at the device, one every ``period_s``.

    The generator adds ``amplitude_v`` minus the present SMU level during each pulse and
    0 V between pulses. With ``capture`` the scope records the train (the applied voltage
    and the amplifier output) and the pulse energy is the integral of V x I over the
    pulses. Rows measured after the train carry ``Time since pulse (s)`` counted from the
    end of its last pulse.
    """

    amplitude_v: float
    width_s: float
    count: int = 1
    period_s: float = 0.0
    capture: bool = False
    tags: Tags = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "tags", _frozen(self.tags))
        if self.count > 1 and self.period_s <= self.width_s:
            raise ValueError(
                f"pulse period {self.period_s!r} s must be longer than the pulse width "
                f"{self.width_s!r} s for a train of {self.count} pulses"
            )

    @property
    def duration_s(self) -> float:
        """Time from the start of the first pulse to the end of the last, in seconds."""
        return (self.count - 1) * self.period_s + self.width_s


@dataclass(frozen=True)
class Read:
    """One conductance read: ``read_voltage_v`` on the device for a window of ``window_s``.

    If the SMU level differs from ``read_voltage_v``, the SMU steps to the read voltage,
    waits ``settle_s``, reads, and steps back to its level. With
    ``scheduled_since_pulse_s`` the read waits until the middle of its window falls that
    long after the end of the last pulse train. A read that cannot start in time runs at
    once, and the row records both times. A ``baseline`` read belongs to the next pulse
    train, so its row is written after that train, with a negative ``Time since pulse (s)``.
    """

    read_voltage_v: float
    window_s: float
    settle_s: float = 0.0
    scheduled_since_pulse_s: float | None = None
    baseline: bool = False
    tags: Tags = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "tags", _frozen(self.tags))


@dataclass(frozen=True)
class Hold:
    """Hold the SMU at ``voltage_v`` for ``duration_s`` seconds, with no reads."""

    voltage_v: float
    duration_s: float


@dataclass(frozen=True)
class Note:
    """A progress message shown to the user when execution reaches this point."""

    message: str


Step = SetLevel | Sweep | PulseTrain | Read | Hold | Note


def staircase_cycle_v(min_v: float, max_v: float, step_v: float) -> tuple[float, ...]:
    """Return one I-V cycle 0 V -> max_v -> min_v -> 0 V in steps of ``step_v`` volts.

    The cycle starts and ends at 0 V, so consecutive cycles join without a jump. Points
    fall on the multiples of ``step_v`` and always include ``max_v`` and ``min_v``.
    """
    if step_v <= 0:
        raise ValueError(f"sweep step must be positive, got {step_v!r} V")
    if not min_v < 0 < max_v:
        raise ValueError(
            f"an I-V cycle needs min_v < 0 < max_v, got min_v = {min_v!r} V, max_v = {max_v!r} V"
        )

    def ramp(start_v: float, stop_v: float) -> list[float]:
        count = math.ceil(round(abs(stop_v - start_v) / step_v, 9))
        direction = 1.0 if stop_v > start_v else -1.0
        points = [start_v + direction * step_v * i for i in range(count)]
        return [round(v, 12) for v in points] + [stop_v]

    up = ramp(0.0, max_v)
    down = ramp(max_v, min_v)[1:]
    back = ramp(min_v, 0.0)[1:]
    return tuple(float(v) for v in up + down + back)


def log_schedule_s(first_s: float, last_s: float, per_decade: int, min_spacing_s: float) -> tuple[float, ...]:
    """Return read times from ``first_s`` to ``last_s`` seconds, ``per_decade`` per decade.

    Times are log-spaced; a time closer than ``min_spacing_s`` to the previous one is
    dropped, so read windows of that length do not overlap. ``last_s`` is always included.
    """
    if not 0 < first_s < last_s:
        raise ValueError(f"schedule needs 0 < first < last, got {first_s!r} s and {last_s!r} s")
    if per_decade < 1:
        raise ValueError(f"reads per decade must be at least 1, got {per_decade!r}")

    decades = math.log10(last_s / first_s)
    count = max(2, math.ceil(decades * per_decade) + 1)
    candidates = np.geomspace(first_s, last_s, count)
    times = [float(candidates[0])]
    for time_s in candidates[1:-1]:
        if time_s - times[-1] >= min_spacing_s:
            times.append(float(time_s))
    if last_s - times[-1] < min_spacing_s and len(times) > 1:
        times.pop()
    times.append(float(last_s))
    return tuple(times)
