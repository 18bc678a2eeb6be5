"""``set``: a SET pulse train that raises the long-term conductance, then a settle wait.

Sequence, with the SMU at 0 V between reads:

1. ``reads_before`` reads at the read voltage, ``read_interval_s`` apart (phase ``before``);
2. a burst of ``pulse_count`` pulses of ``pulse_amplitude_v`` and ``pulse_width_s``, one
   every ``pulse_period_s``, from the generator;
3. ``reads_after`` reads, ``read_interval_s`` apart, after the end of the train (``after``);
4. rest at 0 V until ``settle_s`` after the train, with a read every
   ``settle_read_interval_s`` (``settle``), so the device settles before short-term work.

Published protocol (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024): 100 pulses of
4 V, 500 us take the device from low to high conductance; then 240 s at 0 V. NOTE: the
pulse period and the read schedule were not published; the defaults (10 ms, reads every
1 s and 20 s) are this project's choice.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.parameters import CountParameter, ExactFloatParameter
from protocols.plan import Hold, Note, PulseTrain, Read, SetLevel, Step
from protocols.preflight import PreflightError
from protocols.pulse_response import ReadingProcedure


class SetProcedure(ReadingProcedure):
    """SET train with reads before and after it and a settle wait at 0 V."""

    PROTOCOL = "set"
    DATA_COLUMNS: ClassVar[list[str]] = ["Time (s)", "Phase", "Voltage (V)", "Current (A)", "Conductance (S)"]

    pulse_count = CountParameter(
        "SET pulses", minimum=1, maximum=100_000, default=100,
        description="pulses in the SET train (published: 100)",
    )
    pulse_amplitude_v = ExactFloatParameter(
        "SET amplitude", units="V", minimum=0.1, maximum=10.0, default=4.0,
        description="voltage at the device during each SET pulse (published: 4 V)",
    )
    pulse_width_s = ExactFloatParameter(
        "SET width", units="s", minimum=2e-8, maximum=1.0, default=500e-6,
        description="width of each SET pulse (published: 500 us)",
    )
    pulse_period_s = ExactFloatParameter(
        "SET period", units="s", minimum=4e-8, maximum=100.0, default=10e-3,
        description="time from the start of one SET pulse to the next",
    )
    reads_before = CountParameter(
        "Reads before", minimum=0, maximum=10_000, default=5,
        description="reads before the train",
    )
    reads_after = CountParameter(
        "Reads after", minimum=0, maximum=10_000, default=5,
        description="reads right after the train",
    )
    read_interval_s = ExactFloatParameter(
        "Read interval", units="s", minimum=1e-5, maximum=3600.0, default=1.0,
        description="time between reads before and right after the train",
    )
    settle_s = ExactFloatParameter(
        "Settle time", units="s", minimum=0.0, maximum=86_400.0, default=240.0,
        description="time at 0 V after the train, counted from its end (published: 240 s)",
    )
    settle_read_interval_s = ExactFloatParameter(
        "Settle read interval", units="s", minimum=1e-3, maximum=86_400.0, default=20.0,
        description="time between reads during the settle wait",
    )

    def build_plan(self) -> list[Step]:
        if self.read_interval_s <= self.read_window_s + self.read_settle_s:
            raise PreflightError(
                f"read interval {self.read_interval_s!r} s must be longer than a read "
                f"({self.read_window_s!r} s window + {self.read_settle_s!r} s settle)"
            )
        read = self.read_voltage_v
        window = self.read_window_s
        settle = self.read_settle_s
        plan: list[Step] = [SetLevel(0.0)]

        plan.append(Note(f"{self.reads_before} reads before the SET train"))
        for index in range(self.reads_before):
            if index > 0:
                plan.append(Hold(0.0, self.read_interval_s - window - settle))
            plan.append(Read(read, window, settle, tags={"Phase": "before"}))

        plan.append(Note(f"SET train of {self.pulse_count} x {self.pulse_amplitude_v:g} V"))
        plan.append(PulseTrain(self.pulse_amplitude_v, self.pulse_width_s, self.pulse_count,
                               self.pulse_period_s, capture=False, tags={"Phase": "train"}))

        after_s = [self.read_interval_s * (index + 1) for index in range(self.reads_after)]
        for scheduled_s in after_s:
            plan.append(Read(read, window, settle, scheduled_s, tags={"Phase": "after"}))

        plan.append(Note(f"settling at 0 V until {self.settle_s:g} s after the train"))
        for scheduled_s in self.settle_schedule_s(after_s[-1] if after_s else 0.0):
            plan.append(Read(read, window, settle, scheduled_s, tags={"Phase": "settle"}))
        return plan

    def settle_schedule_s(self, start_s: float) -> list[float]:
        """Return the settle read times after the train: every interval, the last at ``settle_s``."""
        times = []
        scheduled_s = start_s + self.settle_read_interval_s
        while scheduled_s < self.settle_s - 1e-9:
            times.append(scheduled_s)
            scheduled_s += self.settle_read_interval_s
        if self.settle_s > start_s:
            times.append(self.settle_s)
        return times
