"""Pre-flight check of a whole plan against the bench limits, before any output turns on.

The check walks the plan with the state that the execution keeps: the SMU level, 0 V while
the SMU output is off. It checks every voltage that can reach the device: SMU set-points,
every sweep point, the sum of the SMU level and the generator output during and between
pulses, and every read voltage. Any value out of range rejects the whole plan, and nothing
is clipped. The walk also estimates how long the plan takes on the bench clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from instruments.safety import SafetyLimitError, SafetyLimits
from protocols.plan import Hold, Note, PulseTrain, Read, SetLevel, Step, Sweep


class PreflightError(SafetyLimitError):
    """A plan would put a voltage or current on the device outside the limits, or is invalid."""


@dataclass(frozen=True)
class PlanSummary:
    """Summary of a plan (counts, voltage extremes, duration), found without instruments."""

    steps: int
    reads: int
    sweep_points: int
    pulses: int
    max_device_voltage_v: float
    min_device_voltage_v: float
    max_generator_voltage_v: float
    duration_s: float


def generator_pulse_level_v(step: PulseTrain, smu_level_v: float) -> float:
    """Return the generator output that puts ``step.amplitude_v`` on the device during a pulse."""
    return step.amplitude_v - smu_level_v


def check_plan(plan: list[Step], limits: SafetyLimits) -> PlanSummary:
    """Check every device voltage and current of ``plan``; return its summary.

    Raises PreflightError naming the step (by index), the value and the limit.
    """
    if not plan:
        raise PreflightError("the plan has no steps; check the protocol parameters")

    walker = _PlanWalker(limits)
    for index, step in enumerate(plan):
        try:
            walker.visit(step)
        except SafetyLimitError as error:
            raise PreflightError(f"step {index} ({type(step).__name__}): {error}") from None
    return walker.summary(len(plan))


class _PlanWalker:
    """Follows the SMU level and the bench time through a plan while checking it."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self.smu_level_v = 0.0
        self.time_s = 0.0
        self.pulse_end_s: float | None = None
        self.reads = 0
        self.sweep_points = 0
        self.pulses = 0
        self.device_voltages_v: list[float] = [0.0]
        self.generator_voltages_v: list[float] = [0.0]

    def device_voltage(self, voltage_v: float, what: str) -> None:
        self.limits.check_voltage(voltage_v, what)
        self.device_voltages_v.append(voltage_v)

    def positive(self, value: float, what: str, unit: str) -> None:
        if not (math.isfinite(value) and value > 0):
            raise SafetyLimitError(f"{what} must be a positive number of {unit}, got {value!r}")

    def visit(self, step: Step) -> None:
        if isinstance(step, SetLevel):
            self.device_voltage(step.voltage_v, "SMU level")
            self.smu_level_v = step.voltage_v
        elif isinstance(step, Sweep):
            self.visit_sweep(step)
        elif isinstance(step, PulseTrain):
            self.visit_pulse_train(step)
        elif isinstance(step, Read):
            self.visit_read(step)
        elif isinstance(step, Hold):
            self.device_voltage(step.voltage_v, "hold voltage")
            if not (math.isfinite(step.duration_s) and step.duration_s >= 0):
                raise SafetyLimitError(f"hold duration must be >= 0 s, got {step.duration_s!r}")
            self.smu_level_v = step.voltage_v
            self.time_s += step.duration_s
        elif isinstance(step, Note):
            pass
        else:
            raise SafetyLimitError(f"unknown plan step {step!r}")

    def visit_sweep(self, step: Sweep) -> None:
        if not step.voltages_v:
            raise SafetyLimitError("sweep has no points")
        self.limits.check_current(step.current_limit_a, "sweep current limit")
        self.positive(step.aperture_s, "sweep aperture", "seconds")
        if not (math.isfinite(step.source_delay_s) and step.source_delay_s >= 0):
            raise SafetyLimitError(f"sweep source delay must be >= 0 s, got {step.source_delay_s!r}")
        samples = self.limits.check_waveform(step.voltages_v, "sweep")
        self.device_voltages_v.extend([float(samples.max()), float(samples.min())])
        self.smu_level_v = float(samples[-1])
        self.sweep_points += len(samples)
        self.time_s += len(samples) * (step.aperture_s + step.source_delay_s)

    def visit_pulse_train(self, step: PulseTrain) -> None:
        self.positive(step.width_s, "pulse width", "seconds")
        if step.count < 1:
            raise SafetyLimitError(f"pulse count must be at least 1, got {step.count!r}")
        if step.count > 1:
            self.positive(step.period_s, "pulse period", "seconds")

        self.device_voltage(step.amplitude_v, "pulse amplitude at the device")
        self.device_voltage(self.smu_level_v, "device voltage between pulses")
        generator_v = generator_pulse_level_v(step, self.smu_level_v)
        if generator_v <= 0:
            raise SafetyLimitError(
                f"pulse amplitude {step.amplitude_v!r} V must be above the SMU level "
                f"{self.smu_level_v!r} V it is applied on"
            )
        self.generator_voltages_v.append(generator_v)

        self.pulses += step.count
        self.time_s += step.duration_s
        self.pulse_end_s = self.time_s

    def visit_read(self, step: Read) -> None:
        self.device_voltage(step.read_voltage_v, "read voltage")
        self.positive(step.window_s, "read window", "seconds")
        if not (math.isfinite(step.settle_s) and step.settle_s >= 0):
            raise SafetyLimitError(f"read settle time must be >= 0 s, got {step.settle_s!r}")
        settle_s = step.settle_s if step.read_voltage_v != self.smu_level_v else 0.0
        if step.scheduled_since_pulse_s is not None:
            if self.pulse_end_s is None:
                raise SafetyLimitError("a scheduled read comes before any pulse train")
            start_s = self.pulse_end_s + step.scheduled_since_pulse_s - step.window_s / 2
            self.time_s = max(self.time_s, start_s - settle_s)
        self.time_s += settle_s + step.window_s
        self.reads += 1

    def summary(self, steps: int) -> PlanSummary:
        return PlanSummary(
            steps=steps,
            reads=self.reads,
            sweep_points=self.sweep_points,
            pulses=self.pulses,
            max_device_voltage_v=max(self.device_voltages_v),
            min_device_voltage_v=min(self.device_voltages_v),
            max_generator_voltage_v=max(self.generator_voltages_v),
            duration_s=self.time_s,
        )
