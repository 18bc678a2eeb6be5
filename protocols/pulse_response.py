"""The short-term response to one pulse: baseline reads, the pulse, reads on a log time axis.

``short-term``, ``long-term-levels`` and ``bias-decay`` all measure the same sequence,
called a pulse group here:

1. with the SMU at the read voltage (0.6 V), ``baseline_reads`` reads,
   ``baseline_interval_s`` apart, give the conductance before the pulse;
2. one pulse of the given amplitude and width at the device (the generator adds the
   amplitude minus the read voltage on top of the SMU level), captured by the scope for
   its energy;
3. the first read at ``first_read_s`` after the end of the pulse, still at the read voltage;
4. the SMU moves to the bias held between reads (the read voltage for ``short-term``),
   and the remaining reads follow on a log time axis out to ``last_read_s``. Each of them
   steps the SMU to the read voltage for ``read_settle_s`` plus ``read_window_s``.

``last_read_s`` also sets the time between pulses: the next group starts right after the
last read, so it must be several times the slowest decay time (about 12 s at +0.6 V) for
F to have decayed. The default 60 s leaves about 1 % of F.
"""

from __future__ import annotations

from protocols.actions import AcquisitionSettings
from protocols.base import BenchProcedure
from protocols.parameters import CountParameter, ExactFloatParameter
from protocols.plan import Hold, PulseTrain, Read, SetLevel, Step, log_schedule_s

#: Columns shared by the protocols that record pulse responses, after their own labels.
RESPONSE_COLUMNS = [
    "Time since pulse (s)",
    "Scheduled time since pulse (s)",
    "Voltage (V)",
    "Current (A)",
    "Conductance (S)",
    "Pulse energy (J)",
]


class ReadingProcedure(BenchProcedure):
    """Base of the protocols that read the conductance with the amplifier and the scope."""

    read_voltage_v = ExactFloatParameter(
        "Read voltage", units="V", minimum=0.05, maximum=2.0, default=0.6,
        description="voltage of every conductance read (published: 0.6 V)",
    )
    read_window_s = ExactFloatParameter(
        "Read window", units="s", minimum=1e-6, maximum=1.0, default=5e-4,
        description="length of the scope record averaged for one read",
    )
    read_settle_s = ExactFloatParameter(
        "Read settle time", units="s", minimum=0.0, maximum=1.0, default=2e-4,
        description="wait after the SMU steps to the read voltage, before a read starts",
    )
    read_current_max_a = ExactFloatParameter(
        "Read current range", units="A", minimum=1e-12, maximum=0.1, default=1e-7,
        description="largest read current expected; sets the scope range of reads",
    )
    smu_current_limit_a = ExactFloatParameter(
        "SMU current limit", units="A", minimum=1e-9, maximum=0.1, default=1e-5,
        description="current compliance of the SMU (checked against the bench limit)",
    )

    def acquisition_settings(self) -> AcquisitionSettings:
        return AcquisitionSettings(read_current_max_a=self.read_current_max_a)


class PulseResponseProcedure(ReadingProcedure):
    """Base of the protocols that measure the short-term response to single pulses."""

    baseline_reads = CountParameter(
        "Baseline reads", minimum=1, maximum=1000, default=3,
        description="reads before each pulse, averaged as its baseline conductance",
    )
    baseline_interval_s = ExactFloatParameter(
        "Baseline interval", units="s", minimum=1e-6, maximum=3600.0, default=0.1,
        description="time between the starts of consecutive baseline reads",
    )
    first_read_s = ExactFloatParameter(
        "First read after pulse", units="s", minimum=1e-6, maximum=3600.0, default=1e-3,
        description="time from the end of the pulse to the middle of the first read",
    )
    last_read_s = ExactFloatParameter(
        "Last read after pulse", units="s", minimum=1e-5, maximum=86400.0, default=60.0,
        description="time from the end of the pulse to the last read; also the pulse spacing",
    )
    reads_per_decade = CountParameter(
        "Reads per decade", minimum=1, maximum=1000, default=8,
        description="density of the log-spaced reads after each pulse",
    )
    pulse_current_max_a = ExactFloatParameter(
        "Pulse current range", units="A", minimum=1e-12, maximum=0.1, default=2e-5,
        description="largest current expected during a pulse; sets the scope range of pulses",
    )
    capture_margin_s = ExactFloatParameter(
        "Pulse capture margin", units="s", minimum=1e-7, maximum=1.0, default=2e-5,
        description="scope record kept before and after each pulse for its energy",
    )

    def acquisition_settings(self) -> AcquisitionSettings:
        return AcquisitionSettings(
            read_current_max_a=self.read_current_max_a,
            pulse_current_max_a=self.pulse_current_max_a,
            capture_margin_s=self.capture_margin_s,
        )

    def read_schedule_s(self) -> tuple[float, ...]:
        """Return the scheduled read times after each pulse, in seconds."""
        min_spacing_s = self.read_window_s + self.read_settle_s
        return log_schedule_s(self.first_read_s, self.last_read_s, self.reads_per_decade, min_spacing_s)

    def pulse_group(self, amplitude_v: float, width_s: float, bias_v: float, tags: dict) -> list[Step]:
        """Return the steps of one pulse group (baseline, pulse, scheduled reads)."""
        read = self.read_voltage_v
        if self.baseline_interval_s < self.read_window_s:
            raise ValueError(
                f"baseline interval {self.baseline_interval_s!r} s is shorter than the read "
                f"window {self.read_window_s!r} s; baseline reads would overlap"
            )

        steps: list[Step] = [SetLevel(read)]
        for index in range(self.baseline_reads):
            if index > 0:
                steps.append(Hold(read, self.baseline_interval_s - self.read_window_s))
            steps.append(Read(read, self.read_window_s, self.read_settle_s, baseline=True, tags=tags))

        steps.append(PulseTrain(amplitude_v, width_s, capture=True, tags=tags))

        schedule = self.read_schedule_s()
        steps.append(Read(read, self.read_window_s, self.read_settle_s, schedule[0], tags=tags))
        steps.append(SetLevel(bias_v))
        for scheduled_s in schedule[1:]:
            steps.append(Read(read, self.read_window_s, self.read_settle_s, scheduled_s, tags=tags))
        return steps

