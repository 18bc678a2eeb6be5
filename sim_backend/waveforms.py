"""Output waveforms of a function generator channel, sampled so that their area is kept.

A waveform is ``v(tau) = offset + polarity * amplitude / 2 * w(tau)`` with ``w`` a unit
shape in [-1, 1] of period ``period_s``, started at ``phase_deg``. Sampling returns, for
each interval ``[t_k, t_k + dt)``, the mean of ``v`` over that interval (computed exactly
from the antiderivative of ``w``), so a pulse keeps its area and its time above any
threshold to within one sample, whatever the sample grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Functions the generator can output and how they are synthesised.
FUNCTIONS = ("SIN", "SQU", "TRI", "RAMP", "PULS", "PRBS", "NOIS", "DC", "ARB")

#: Samples per shortest feature (pulse high or low time) when a waveform is sampled.
SAMPLES_PER_FEATURE = 50
#: Samples per period for smooth shapes (sine, ramp, triangle).
SAMPLES_PER_PERIOD = 64


@dataclass(frozen=True)
class Waveform:
    """One generator channel's waveform in open-circuit (EMF) volts.

    ``width_s`` is the pulse width at 50 %, and ``lead_s`` and ``trail_s`` are the edge
    times. ``duty`` is the square-wave duty cycle and ``symmetry`` the part of a ramp
    period spent rising, both as fractions. ``arb`` holds the arbitrary waveform
    normalised to [-1, 1], played at ``sample_rate_hz``.
    """

    function: str
    period_s: float
    amplitude_v: float
    offset_v: float
    phase_deg: float = 0.0
    inverted: bool = False
    duty: float = 0.5
    symmetry: float = 1.0
    width_s: float = 0.0
    lead_s: float = 0.0
    trail_s: float = 0.0
    arb: np.ndarray | None = field(default=None, compare=False)
    sample_rate_hz: float = 0.0

    def __post_init__(self):
        if self.function not in FUNCTIONS:
            raise ValueError(f"unknown function {self.function!r}; expected one of {FUNCTIONS}")
        if self.function == "ARB":
            if self.arb is None or self.arb.size == 0 or self.sample_rate_hz <= 0:
                raise ValueError("an ARB waveform needs samples and a positive sample rate")
            object.__setattr__(self, "period_s", self.arb.size / self.sample_rate_hz)
            cumulative = np.concatenate(([0.0], np.cumsum(self.arb, dtype=float)))
            object.__setattr__(self, "_arb_cumulative", cumulative)
        if self.function not in ("DC", "NOIS", "PRBS") and not self.period_s > 0:
            raise ValueError(f"period must be positive, got {self.period_s!r} s")

    # -- levels

    @property
    def is_constant(self) -> bool:
        """True for functions that output their offset only (DC, and NOIS/PRBS, see NOTE)."""
        # NOTE: NOIS and PRBS output their offset: the simulator has no noise source.
        return self.function in ("DC", "NOIS", "PRBS")

    @property
    def _scale_v(self) -> float:
        return (-1.0 if self.inverted else 1.0) * self.amplitude_v / 2.0

    def peak_levels_v(self) -> tuple[float, float]:
        """Return the lowest and highest EMF the waveform reaches, in volts."""
        if self.is_constant:
            return self.offset_v, self.offset_v
        if self.function == "ARB":
            low, high = float(self.arb.min()), float(self.arb.max())
        else:
            low, high = -1.0, 1.0
        values = (self.offset_v + self._scale_v * low, self.offset_v + self._scale_v * high)
        return min(values), max(values)

    def start_level_v(self) -> float:
        """Return the EMF at the start phase: the idle level of a triggered burst."""
        if self.is_constant:
            return self.offset_v
        shift = self._phase_shift_s()
        if self.function == "ARB":
            index = math.floor(shift * self.sample_rate_hz) % self.arb.size
            return self.offset_v + self._scale_v * float(self.arb[index])
        if self.function == "SIN":
            return self.offset_v + self._scale_v * math.sin(math.radians(self.phase_deg))
        # NOTE: pulse, square, ramp and triangle idle at their low level whatever the phase,
        # as a pulse does on the 33500B; the idle level of the others is not confirmed.
        return self.offset_v - self._scale_v

    def sample_dt_s(self) -> float:
        """Return a sample interval that resolves the waveform, in seconds."""
        if self.is_constant:
            return math.inf
        if self.function == "ARB":
            return 1.0 / self.sample_rate_hz
        if self.function == "PULS":
            high_s = self.width_s
            low_s = self.period_s - self.width_s
            return max(min(high_s, low_s), self.period_s * 1e-6) / SAMPLES_PER_FEATURE
        if self.function == "SQU":
            shortest = min(self.duty, 1.0 - self.duty) * self.period_s
            return shortest / SAMPLES_PER_FEATURE
        return self.period_s / SAMPLES_PER_PERIOD

    # -- sampling

    def continuous_samples(self, start_s: np.ndarray | float, count: int, dt_s: float) -> np.ndarray:
        """Return the interval means of the running waveform for intervals starting at
        ``start_s + k * dt_s`` (times since the waveform started), k = 0 .. count - 1."""
        edges = float(start_s) + dt_s * np.arange(count + 1)
        if self.is_constant:
            return np.full(count, self.offset_v)
        integral = self._antiderivative(edges)
        return self.offset_v + self._scale_v * np.diff(integral) / dt_s

    def burst_samples(self, start_s: float, count: int, dt_s: float, cycles: int) -> np.ndarray:
        """Return interval means of a burst of ``cycles`` periods that starts at time 0.

        Intervals start at ``start_s + k * dt_s`` relative to the burst start; before the
        burst and after its last period the output rests at the idle level.
        """
        edges = float(start_s) + dt_s * np.arange(count + 1)
        if self.is_constant:
            return np.full(count, self.offset_v)
        burst_s = cycles * self.period_s
        idle_unit = (self.start_level_v() - self.offset_v) / self._scale_v if self._scale_v else 0.0
        inside = np.clip(edges, 0.0, burst_s)
        integral = self._antiderivative(inside) - self._antiderivative(np.zeros(1))
        integral = integral + idle_unit * (np.minimum(edges, 0.0) + np.maximum(edges - burst_s, 0.0))
        return self.offset_v + self._scale_v * np.diff(integral) / dt_s

    # -- unit shapes

    def _phase_shift_s(self) -> float:
        return (self.phase_deg / 360.0) * self.period_s

    def _antiderivative(self, tau_s: np.ndarray) -> np.ndarray:
        """Antiderivative of the unit shape w, counted from the start phase."""
        shift = self._phase_shift_s()
        shifted = np.asarray(tau_s, dtype=float) + shift
        return self._periodic_integral(shifted) - self._periodic_integral(np.array([shift]))

    def _periodic_integral(self, tau_s: np.ndarray) -> np.ndarray:
        period = self.period_s
        cycles = np.floor(tau_s / period)
        within = tau_s - cycles * period
        return cycles * self._one_period_integral(np.array([period]))[0] + self._one_period_integral(within)

    def _one_period_integral(self, tau_s: np.ndarray) -> np.ndarray:
        """Integral of w from 0 to tau within the first period (0 <= tau <= period)."""
        period = self.period_s
        if self.function == "SIN":
            omega = 2.0 * math.pi / period
            return (1.0 - np.cos(omega * tau_s)) / omega
        if self.function in ("PULS", "SQU"):
            if self.function == "PULS":
                width, lead, trail = self.width_s, self.lead_s, self.trail_s
            else:
                width, lead, trail = self.duty * period, 0.0, 0.0
            fall_start = lead / 2.0 + width - trail / 2.0
            pulse = _ramp_integral(tau_s, lead) - _ramp_integral(tau_s - fall_start, trail)
            return 2.0 * pulse - tau_s  # w = 2 p - 1
        if self.function in ("RAMP", "TRI"):
            symmetry = 0.5 if self.function == "TRI" else self.symmetry
            return 2.0 * _triangle_integral(tau_s, period, symmetry) - tau_s
        if self.function == "ARB":
            position = tau_s * self.sample_rate_hz
            index = np.clip(np.floor(position).astype(np.int64), 0, self.arb.size - 1)
            fraction = position - index
            cumulative = self._arb_cumulative
            return (cumulative[index] + fraction * self.arb[index]) / self.sample_rate_hz
        raise AssertionError(f"no unit shape for {self.function}")


def _ramp_integral(x: np.ndarray, edge_s: float) -> np.ndarray:
    """Integral from -inf to x of a ramp rising from 0 at 0 to 1 at ``edge_s``."""
    x = np.asarray(x, dtype=float)
    if edge_s <= 0:
        return np.maximum(x, 0.0)
    return np.where(x <= 0, 0.0, np.where(x < edge_s, x * x / (2.0 * edge_s), x - edge_s / 2.0))


def _triangle_integral(tau_s: np.ndarray, period_s: float, symmetry: float) -> np.ndarray:
    """Integral of a [0, 1] triangle that rises for ``symmetry * period`` and then falls."""
    rise = symmetry * period_s
    fall = period_s - rise
    tau = np.asarray(tau_s, dtype=float)
    rising = tau * tau / (2.0 * rise) if rise > 0 else np.zeros_like(tau)
    if fall > 0:
        after = tau - rise
        falling = rise / 2.0 + after - after * after / (2.0 * fall)
    else:
        falling = np.full_like(tau, rise / 2.0)
    return np.where(tau <= rise, rising if rise > 0 else 0.0, falling)
