"""Safety limits for every voltage and current that can reach the memristor.

A positive voltage of about 4 V or more can electroform a filament in the SrTiO3 device and
change it for good. So every set-point and every sample of an uploaded waveform is checked
against the configured limits before an output turns on. Values out of range are rejected
with an error that names the value and the limit; nothing is ever clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class SafetyLimitError(ValueError):
    """A requested voltage or current is outside the configured device limits."""


@dataclass(frozen=True)
class SafetyLimits:
    """Voltage and current limits at the device terminals.

    Voltages are at the Pt electrode with Ti grounded, in volts. The current limit is the
    largest magnitude of current allowed through the device, in amperes.
    """

    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float

    def __post_init__(self):
        for name in ("max_voltage_v", "min_voltage_v", "max_current_a"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SafetyLimitError(f"{name} must be a finite number, got {value!r}")
        if self.min_voltage_v >= self.max_voltage_v:
            raise SafetyLimitError(
                f"min_voltage_v ({self.min_voltage_v} V) must be below "
                f"max_voltage_v ({self.max_voltage_v} V)"
            )
        if self.max_current_a <= 0:
            raise SafetyLimitError(f"max_current_a must be positive, got {self.max_current_a} A")

    def check_voltage(self, voltage_v: float, what: str = "voltage") -> float:
        """Return ``voltage_v`` unchanged, or raise SafetyLimitError if it is out of range."""
        if not math.isfinite(voltage_v):
            raise SafetyLimitError(f"{what} must be a finite number of volts, got {voltage_v!r}")
        if voltage_v > self.max_voltage_v:
            raise SafetyLimitError(
                f"{what} of {voltage_v:g} V is above the device limit max_voltage_v = "
                f"{self.max_voltage_v:g} V; lower the value or raise the limit in the bench file"
            )
        if voltage_v < self.min_voltage_v:
            raise SafetyLimitError(
                f"{what} of {voltage_v:g} V is below the device limit min_voltage_v = "
                f"{self.min_voltage_v:g} V; raise the value or lower the limit in the bench file"
            )
        return voltage_v

    def check_waveform(self, samples_v, what: str = "waveform") -> np.ndarray:
        """Check every sample of a waveform in volts at the device; return it as an array.

        The error names the first offending sample, its index and the limit.
        """
        samples = np.asarray(samples_v, dtype=float)
        if samples.size == 0:
            raise SafetyLimitError(f"{what} has no samples")
        bad = ~np.isfinite(samples)
        if bad.any():
            index = int(np.argmax(bad))
            raise SafetyLimitError(f"{what} sample {index} is not a finite number: {samples[index]!r}")
        high = samples > self.max_voltage_v
        if high.any():
            index = int(np.argmax(high))
            raise SafetyLimitError(
                f"{what} sample {index} is {samples[index]:g} V, above the device limit "
                f"max_voltage_v = {self.max_voltage_v:g} V (highest sample {samples.max():g} V)"
            )
        low = samples < self.min_voltage_v
        if low.any():
            index = int(np.argmax(low))
            raise SafetyLimitError(
                f"{what} sample {index} is {samples[index]:g} V, below the device limit "
                f"min_voltage_v = {self.min_voltage_v:g} V (lowest sample {samples.min():g} V)"
            )
        return samples

    def check_current(self, current_a: float, what: str = "current limit") -> float:
        """Return ``current_a`` unchanged, or raise SafetyLimitError if its magnitude is too large."""
        if not math.isfinite(current_a) or current_a <= 0:
            raise SafetyLimitError(f"{what} must be a positive number of amperes, got {current_a!r}")
        if current_a > self.max_current_a:
            raise SafetyLimitError(
                f"{what} of {current_a:g} A is above the device limit max_current_a = "
                f"{self.max_current_a:g} A; lower the value or raise the limit in the bench file"
            )
        return current_a
