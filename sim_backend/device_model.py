"""Behavioural model of the two-terminal Pt/SrTiO3/Ti memristor used as an ST-Hebb synapse.

The voltage V is applied to the Pt electrode with Ti grounded. The model has two state
variables, both expressed as conductances in siemens at the read voltage V_read = 0.6 V:

* W, the long-term weight (set by trains of SET pulses, retained for thousands of seconds);
* F, the short-term weight (raised by single pulses, relaxing in 0.3 s to 14 s).

Current-voltage relation (Schottky-like, scaled by the state W + F)::

    I(V)  = G(V) V,            G(V) = (W + F) s(V)            (chord conductance)
    j(V)  = (exp(V / v_f) - exp(-V / v_r)) / V                (j(0) = 1/v_f + 1/v_r)
    r(V)  = j(V) / j(V_read)
    s(V)  = r(V) / (1 + (r(V) - 1) / s_max)                   (s(V_read) = 1, s -> s_max)

v_f and v_r are the forward (V > 0) and reverse voltage scales of the interface. s_max
limits the chord conductance at high voltage, as a resistance in series with the interface
would. The I-V hysteresis has no term of its own: it comes from F rising while a sweep is
above the pulse threshold V_p and relaxing afterwards. The positive branch is therefore
counter-clockwise (more current on the way back from +2 V), and so is the whole loop,
whose positive lobe outweighs the small clockwise lobe that the decay of F leaves on the
negative branch.

Short-term state F. Consecutive samples with V > V_p form a pulse segment, which may span
several calls of ``MemristorModel.apply`` or ``hold``. At a time t' after the start of a
segment that began with F = F_0::

    f(V)   = a_F (1 - exp(-(V - V_p) / v_on)) exp(((V - V_p) / v_a)^2)   (drive, 0 at V_p)
    q(t')  = [ (1/t') integral_0^t' f(V) dt ] (t' / w_ref)^beta
    F(t')  = F_0 + xi_F (F_max - F_0) (1 - exp(-q(t') / F_max))

A rectangular pulse of amplitude A and width w thus adds dF = f(A) (w / w_ref)^beta while
dF is small, and F saturates at F_max. xi_F = 1 + sigma_F z (z standard normal, one draw
per segment) is the cycle-to-cycle spread. F does not relax inside a segment. Between
segments it relaxes with a time constant set by the voltage held on the device::

    dF/dt = -F / tau(V),
    ln tau(V) = ln tau_min + ln(tau_max / tau_min) / (1 + exp(-(V - V_tau) / dV_tau))

so Lambda(V) = exp(-dt / tau(V)) over a network step of dt seconds is close to the sigmoid
L / (1 + exp(-k (V - V0))) + Lambda0 between -0.6 V and +0.6 V.

Long-term state W::

    dW/dt = k(V) (W_sat - W) - (W - W_min) / tau_ret(V)
    k(V)  = k_set exp((V - V_set) / v_set) for V > V_p, else 0
    tau_ret(V) = tau_ret0 tau(V) / tau(0)

Inside pulse segments only the SET term acts, with the exposure integral k dt multiplied by
a per-segment spread xi_W = 1 + sigma_W z. Between segments only the retention term acts,
which relaxes W towards W_min.

Electroforming. Each excursion strictly above ``forming_threshold_v`` (default 4.2 V, so
the published 4 V SET pulses are safe) is recorded as a ``FormingEvent`` with its start
time and peak voltage. The first one forms a filament for good: from then on
I = (G_fil + W s(V)) V, F stays 0 and pulses change neither W nor F.

Read noise. ``apply`` adds independent Gaussian noise to every current sample with standard
deviation sqrt((sigma_rel I)^2 + sigma_floor^2), whatever the sample interval. ``hold``
and ``conductance_s`` are noise free. Pulse energy is no model term: it is the integral of
V x I over the currents that ``apply`` returns.

Calibration. The published figures come from Weilenmann, Ziogas et al., "Single
neuromorphic memristor closely emulates multiple synaptic mechanisms for energy efficient
neural networks", Nat. Commun. 15 (2024). The model constants were not published; the
defaults of ``MemristorParams`` were fitted to those figures as follows.

* W: lowest level 12 nS (4.3 nW at 0.6 V). k_set and W_sat make one train of
  100 x 4 V, 500 us take W from 12 to 18.3 nS, or 17.9 nS after the published 240 s at
  0 V. Five trains, each followed by 240 s at 0 V, stack the levels 17.9, 20.7, 22.0,
  22.6 and 22.9 nS (published: levels between 12 and 23 nS).
* F: a_F, v_on, v_a, beta and F_max solve the five published dF values exactly: 3, 5 and
  10 nS for 100 us pulses of 2, 2.5 and 3 V, 0.7 nS for 2 V, 20 us and 38.6 nS for
  3.5 V, 500 us. sigma_F = 1.5 % keeps the spread of 5 repeats below 1 nS (published).
* tau(V): the published fit gives Lambda from 0.08 at -0.6 V to 0.92 at +0.6 V with a
  network step of 1 s, i.e. tau = 0.40 s and 12 s. The 0.7 ms reads at 0.6 V of the
  bias-decay protocol (8 reads per decade from 1 ms) slow the measured decay at -0.6 V
  by about 4 %, so tau(-0.6 V) is set to 0.38 s: the protocol then measures 0.40 s.
* s(V): v_f and s_max make the log-log power-law fit of the pulse energies of the grid
  2-3.5 V x 20-500 us, measured at W = 17.9 nS, give E = 30 pJ dF^1.52 (published fit,
  dF in nS). v_r gives about 200 nS at -2 V, and the sweep to +2 V reaches about 800 nS
  (published: hundreds of nS at the ends of a +-2 V sweep).

tests/sim_backend/test_device_model.py reproduces each of these figures by running the
published protocols on the model.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field, fields

import numpy as np

log = logging.getLogger(__name__)

# Largest exponent handed to numpy.exp, so no voltage can overflow the I-V shape.
_MAX_EXPONENT = 700.0


@dataclass(frozen=True)
class MemristorParams:
    """Constants of the memristor model, with the calibrated values as defaults.

    Conductances are in siemens at the read voltage, times in seconds and voltages in volts
    at the Pt electrode. The module docstring gives the equations and the calibration.
    """

    read_voltage_v: float = 0.6
    """Read voltage V_read at which W and F are expressed, in volts (published: 0.6 V)."""

    # Long-term state W.
    w_min_s: float = 12.0e-9
    """Lowest long-term conductance W_min, in siemens; also the state of a fresh model.
    Published: 4.3 nW at 0.6 V in the lowest state, i.e. 11.9 nS."""
    w_sat_s: float = 24.5e-9
    """Conductance W_sat that SET trains approach, in siemens. Calibrated with
    ``set_rate_per_s`` so that stacked levels end near 23 nS."""
    w_initial_s: float | None = None
    """Long-term conductance of a fresh model, in siemens; None means ``w_min_s``."""
    set_rate_per_s: float = 14.0
    """SET rate k_set at ``set_reference_v``, in 1/s of time spent above the pulse
    threshold. One train of 100 x 4 V, 500 us then covers 50 % of the way to W_sat."""
    set_reference_v: float = 4.0
    """Voltage V_set at which the SET rate is ``set_rate_per_s``, in volts (published SET
    amplitude: 4 V)."""
    set_voltage_scale_v: float = 0.1
    """Voltage scale v_set of the SET rate, in volts. A 3.5 V pulse sets exp(-5), i.e. 0.7 %,
    as fast as a 4 V pulse, so W stays flat during short-term protocols (published)."""
    set_spread: float = 0.02
    """Relative standard deviation sigma_W of the SET exposure of one pulse segment."""
    retention_tau_s: float = 4000.0
    """Retention time constant tau_ret0 of W at 0 V, in seconds. Published only as a slow
    decay over thousands of seconds at 0 V; 4000 s is an assumption within that range."""

    # Short-term state F.
    pulse_threshold_v: float = 1.5
    """Pulse threshold V_p: samples above it form pulse segments that raise F, in volts."""
    f_max_s: float = 39.53e-9
    """Saturation F_max of the short-term state, in siemens (fitted; the published largest
    dF is 38.6 nS)."""
    potentiation_scale_s: float = 2.93e-9
    """Drive scale a_F of f(V), in siemens per pulse of width ``reference_width_s``."""
    potentiation_onset_v: float = 0.2025
    """Onset voltage v_on of the drive f(V), which rises from 0 at V_p over about this many
    volts."""
    potentiation_voltage_scale_v: float = 1.281
    """Voltage scale v_a of the growth exp(((V - V_p) / v_a)^2) of the drive f(V), in volts."""
    width_exponent: float = 0.923
    """Exponent beta of the width dependence (w / w_ref)^beta of dF (dimensionless)."""
    reference_width_s: float = 100e-6
    """Reference width w_ref of the width dependence, in seconds."""
    short_term_spread: float = 0.015
    """Relative standard deviation sigma_F of dF between repeats of the same pulse."""
    tau_min_s: float = 0.317
    """Minimum relaxation time of F (strong negative bias), in seconds."""
    tau_max_s: float = 14.38
    """Maximum relaxation time of F (strong positive bias), in seconds."""
    tau_midpoint_v: float = 0.0
    """Bias V_tau at the midpoint of the logistic in ln tau, in volts."""
    tau_width_v: float = 0.2
    """Voltage width dV_tau of the logistic in ln tau, in volts. With the limits above it
    gives tau = 0.38 s at -0.6 V and 12.0 s at +0.6 V."""

    # Current-voltage shape.
    forward_voltage_scale_v: float = 0.354
    """Forward voltage scale v_f of the Schottky-like I-V, in volts."""
    reverse_voltage_scale_v: float = 0.375
    """Reverse voltage scale v_r of the Schottky-like I-V, in volts."""
    shape_max: float = 62.0
    """Upper limit s_max of the chord-conductance ratio G(V) / G(V_read) (dimensionless)."""

    # Noise.
    read_noise_rel: float = 0.005
    """Relative standard deviation sigma_rel of the noise on each current sample of
    ``apply`` (an assumption; the instruments add their own noise)."""
    read_noise_floor_a: float = 2e-12
    """Absolute noise floor sigma_floor of each current sample of ``apply``, in amperes."""

    # Electroforming.
    forming_threshold_v: float = 4.2
    """Voltage strictly above which the device electroforms, in volts. Published: above
    about 4 V; 4.2 V keeps the published 4 V SET pulses safe."""
    filament_conductance_s: float = 5e-6
    """Ohmic conductance G_fil of the filament once formed, in siemens. The value is an
    assumption because the published material states only that forming changes the device
    for good."""

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "w_initial_s" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"MemristorParams.{item.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"MemristorParams.{item.name} must be finite, got {value!r}")
            if item.name in _NON_NEGATIVE_FIELDS:
                if value < 0:
                    raise ValueError(f"MemristorParams.{item.name} must be >= 0, got {value!r}")
            elif item.name not in _SIGNED_FIELDS and value <= 0:
                raise ValueError(f"MemristorParams.{item.name} must be > 0, got {value!r}")

        self._check_order("w_min_s", "w_sat_s")
        self._check_order("tau_min_s", "tau_max_s")
        self._check_order("pulse_threshold_v", "forming_threshold_v")
        if self.shape_max <= 1:
            raise ValueError(f"MemristorParams.shape_max must be > 1, got {self.shape_max!r}")

    def _check_order(self, lower: str, upper: str) -> None:
        if getattr(self, lower) >= getattr(self, upper):
            raise ValueError(
                f"MemristorParams.{lower} ({getattr(self, lower)!r}) must be below "
                f"{upper} ({getattr(self, upper)!r})"
            )


# Fields of MemristorParams that may be zero or negative; all others must be positive.
_NON_NEGATIVE_FIELDS = frozenset(
    {"w_initial_s", "set_spread", "short_term_spread", "read_noise_rel", "read_noise_floor_a"}
)
_SIGNED_FIELDS = frozenset({"tau_midpoint_v"})


@dataclass(frozen=True)
class FormingEvent:
    """One excursion strictly above the forming threshold."""

    time_s: float
    """Model time of the first sample above the threshold, in seconds."""
    voltage_v: float
    """Highest voltage of the excursion, in volts."""


@dataclass(frozen=True)
class DeviceState:
    """State of the model at one instant, with W and F as conductances at the read voltage."""

    time_s: float
    """Model time, in seconds since the model was created."""
    w_s: float
    """Long-term conductance W including any injected drift, in siemens."""
    f_s: float
    """Short-term conductance F, in siemens."""
    pulse_count: int
    """Number of completed pulse segments (excursions above the pulse threshold)."""
    in_pulse: bool
    """Whether the last sample applied was above the pulse threshold."""
    electroformed: bool
    """Whether a filament has formed."""
    drift_rate_s_per_s: float
    """Injected drift rate of W, in siemens per second."""


@dataclass
class _OpenSegment:
    """Bookkeeping of a pulse segment that has started but not yet ended."""

    f_start_s: float
    w_start_s: float
    elapsed_s: float
    drive_integral: float  # integral of f(V) dt so far, in siemens x seconds
    set_exposure: float  # integral of k(V) dt so far (dimensionless)
    f_spread_factor: float
    w_spread_factor: float


@dataclass(frozen=True)
class DeviceSnapshot:
    """Opaque copy of the whole model state, random generator included."""

    _values: dict = field(repr=False)


# ---------------------------------------------------------------------------------------
# Pure functions of the voltage: I-V shape, drive, rates.


def _schottky_chord(voltage_v: np.ndarray, params: MemristorParams) -> np.ndarray:
    """Return j(V) = (exp(V / v_f) - exp(-V / v_r)) / V, with its limit at V = 0."""
    v = np.asarray(voltage_v, dtype=float)
    forward = np.clip(v / params.forward_voltage_scale_v, -_MAX_EXPONENT, _MAX_EXPONENT)
    reverse = np.clip(-v / params.reverse_voltage_scale_v, -_MAX_EXPONENT, _MAX_EXPONENT)
    numerator = np.expm1(forward) - np.expm1(reverse)
    at_zero = 1.0 / params.forward_voltage_scale_v + 1.0 / params.reverse_voltage_scale_v
    small = np.abs(v) < 1e-9
    safe_v = np.where(small, 1.0, v)
    return np.where(small, at_zero, numerator / safe_v)


def iv_shape(voltage_v, params: MemristorParams) -> np.ndarray:
    """Return s(V) = G(V) / G(V_read), the chord-conductance ratio of the I-V (dimensionless).

    s(V_read) = 1 exactly and s tends to ``shape_max`` at high voltage.
    """
    ratio = _schottky_chord(voltage_v, params) / _schottky_chord(params.read_voltage_v, params)
    return ratio / (1.0 + (ratio - 1.0) / params.shape_max)


def short_term_tau_s(voltage_v, params: MemristorParams) -> np.ndarray:
    """Return the relaxation time constant tau(V) of F at a held voltage, in seconds."""
    v = np.asarray(voltage_v, dtype=float)
    argument = np.clip(
        -(v - params.tau_midpoint_v) / params.tau_width_v, -_MAX_EXPONENT, _MAX_EXPONENT
    )
    fraction = 1.0 / (1.0 + np.exp(argument))
    log_tau = math.log(params.tau_min_s) + math.log(params.tau_max_s / params.tau_min_s) * fraction
    return np.exp(log_tau)


def retention_tau_s(voltage_v, params: MemristorParams) -> np.ndarray:
    """Return the retention time constant tau_ret(V) of W at a held voltage, in seconds."""
    scale = params.retention_tau_s / short_term_tau_s(0.0, params)
    return scale * short_term_tau_s(voltage_v, params)


def potentiation_drive_s(voltage_v, params: MemristorParams) -> np.ndarray:
    """Return the short-term drive f(V) in siemens, zero at and below the pulse threshold."""
    v = np.asarray(voltage_v, dtype=float)
    excess_v = np.maximum(v - params.pulse_threshold_v, 0.0)
    onset = -np.expm1(-excess_v / params.potentiation_onset_v)
    growth = np.exp(
        np.minimum((excess_v / params.potentiation_voltage_scale_v) ** 2, _MAX_EXPONENT)
    )
    return params.potentiation_scale_s * onset * growth


def set_rate_per_s(voltage_v, params: MemristorParams) -> np.ndarray:
    """Return the SET rate k(V) of W in 1/s, zero at and below the pulse threshold.

    No voltage lowers W directly: negative voltages only shorten the retention time.
    """
    v = np.asarray(voltage_v, dtype=float)
    exponent = np.clip(
        (v - params.set_reference_v) / params.set_voltage_scale_v, -_MAX_EXPONENT, _MAX_EXPONENT
    )
    rate = params.set_rate_per_s * np.exp(exponent)
    return np.where(v > params.pulse_threshold_v, rate, 0.0)


def _evaluate_per_sample(function, voltage: np.ndarray, params: MemristorParams) -> np.ndarray:
    """Evaluate ``function(voltage, params)`` for every sample, once per run of equal values.

    Instrument waveforms are mostly piecewise constant (DC reads, rectangular pulses), so
    evaluating the transcendental functions once per run is much faster. Waveforms with
    many distinct values (more than a quarter of the samples) are evaluated directly.
    """
    change = np.flatnonzero(voltage[1:] != voltage[:-1]) + 1
    if change.size >= voltage.size // 4:
        return function(voltage, params)
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.append(starts, voltage.size))
    return np.repeat(function(voltage[starts], params), lengths)


def _pulse_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return start and stop indices (stop exclusive) of the runs of True in ``mask``."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


class MemristorModel:
    """Simulated Pt/STO/Ti memristor that applies voltage waveforms and returns currents.

    ``apply`` advances through a sampled waveform and returns the current of each sample,
    ``hold`` advances at a constant voltage in closed form, and ``conductance_s`` reads the
    present state without noise. ``electroformed`` and ``forming_events`` record every
    voltage above the forming threshold. Model time starts at 0 s and advances only
    through ``apply`` and ``hold``.

    Args:
        params: model constants; None uses the calibrated defaults.
        rng: random generator for the cycle-to-cycle spread and the read noise; None uses
            ``numpy.random.default_rng(0)``. The same seed gives bit-identical results.
    """

    def __init__(
        self, params: MemristorParams | None = None, rng: np.random.Generator | None = None
    ):
        self.params = params if params is not None else MemristorParams()
        self._rng = rng if rng is not None else np.random.default_rng(0)
        initial = self.params.w_initial_s
        self._w_s = self.params.w_min_s if initial is None else float(initial)
        self._f_s = 0.0
        self._drift_offset_s = 0.0
        self._drift_rate_s_per_s = 0.0
        self._time_s = 0.0
        self._pulse_count = 0
        self._segment: _OpenSegment | None = None
        self._electroformed = False
        self.forming_events: list[FormingEvent] = []
        # Ratio tau_ret(V) / tau(V), which is the same at every voltage.
        self._retention_ratio = float(
            self.params.retention_tau_s / short_term_tau_s(0.0, self.params)
        )
        # tau(V) and s(V) of the levels met so far, by voltage (see _level_constants).
        self._level_cache: dict[float, tuple[float, float]] = {}
        self._level_cache_params = self.params

    # ----- public interface ----------------------------------------------------------

    @property
    def electroformed(self) -> bool:
        """Whether a filament has formed (a sample went above ``forming_threshold_v``)."""
        return self._electroformed

    @property
    def state(self) -> DeviceState:
        """Present state: W (with drift), F, model time, pulse count, forming flag."""
        return DeviceState(
            time_s=self._time_s,
            w_s=self._w_total_s(self._w_s),
            f_s=self._f_s,
            pulse_count=self._pulse_count,
            in_pulse=self._segment is not None,
            electroformed=self._electroformed,
            drift_rate_s_per_s=self._drift_rate_s_per_s,
        )

    def set_drift(self, rate_s_per_s: float) -> None:
        """Make W drift linearly by ``rate_s_per_s`` siemens per second from now on (fault
        injection); 0 stops the drift and keeps the offset reached so far."""
        rate = float(rate_s_per_s)
        if not math.isfinite(rate):
            raise ValueError(f"drift rate must be a finite number of S/s, got {rate_s_per_s!r}")
        self._drift_rate_s_per_s = rate
        log.info("device drift set to %g S/s at t = %g s", rate, self._time_s)

    def conductance_s(self, read_voltage_v: float = 0.6) -> float:
        """Return the noise-free chord conductance I/V at the read voltage, in siemens."""
        voltage = float(read_voltage_v)
        if not math.isfinite(voltage):
            raise ValueError(
                f"read voltage must be a finite number of volts, got {read_voltage_v!r}"
            )
        shape = self._level_constants(voltage)[1]
        w = self._w_total_s(self._w_s)
        if self._electroformed:
            return self.params.filament_conductance_s + w * shape
        return (w + self._f_s) * shape

    def apply(self, voltage_v: np.ndarray, dt_s: float) -> np.ndarray:
        """Advance the state through a voltage waveform sampled every dt_s seconds;
        return the device current in amperes at each sample (with read noise).

        Sample i covers the interval [t0 + i dt_s, t0 + (i + 1) dt_s) at voltage_v[i];
        its current is computed from the state at the end of that interval.
        """
        voltage, dt = self._validate_waveform(voltage_v, dt_s)
        if voltage.size == 0:
            return np.empty(0)
        if self._is_constant_relaxation(voltage):
            return self._relax_at_level(float(voltage[0]), voltage.size, dt)

        w, f, formed = self._advance(voltage, dt)

        shape = _evaluate_per_sample(iv_shape, voltage, self.params)
        conductance = (w + f) * shape
        if formed.any():
            conductance[formed] = self.params.filament_conductance_s + w[formed] * shape[formed]
        current = conductance * voltage
        # NOTE: the noise is white with a fixed standard deviation per sample, whatever dt_s,
        # which is an assumption until noise spectra of the device are measured.
        return current + self._read_noise_std(current) * self._rng.standard_normal(voltage.size)

    def apply_level(self, voltage_v: float, count: int, dt_s: float) -> np.ndarray:
        """Advance through ``count`` samples of ``dt_s`` seconds at one voltage; return the
        device current in amperes at each sample (with read noise).

        Equivalent to ``apply(numpy.full(count, voltage_v), dt_s)``. At or below the pulse
        threshold, where F and W only relax, it evaluates tau(V) and s(V) once instead of
        per sample, which is what makes the simulated bench's scope reads cheap.
        """
        voltage = float(voltage_v)
        if not math.isfinite(voltage):
            raise ValueError(f"voltage must be a finite number of volts, got {voltage_v!r}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        _voltage, dt = self._validate_waveform(np.empty(0), dt_s)
        if self._electroformed or voltage > self.params.pulse_threshold_v:
            return self.apply(np.full(int(count), voltage), dt)
        return self._relax_at_level(voltage, int(count), dt)

    def _is_constant_relaxation(self, voltage: np.ndarray) -> bool:
        """Tell whether ``voltage`` is one level at or below the pulse threshold, unformed."""
        level = voltage[0]
        return (
            not self._electroformed
            and level <= self.params.pulse_threshold_v
            and voltage[-1] == level
            and not (voltage != level).any()
        )

    def _level_constants(self, voltage_v: float) -> tuple[float, float]:
        """Return tau(V) in seconds and s(V) for one voltage, remembered per voltage.

        Both are the numpy functions above evaluated on a one-sample array, so they are
        the numbers the general path computes for that level. Reads and ``hold`` calls use a
        few levels again and again, and one numpy evaluation costs far more than a lookup.
        """
        cache = self._level_cache
        if self._level_cache_params is not self.params or len(cache) > 4096:
            cache.clear()
            self._level_cache_params = self.params
        constants = cache.get(voltage_v)
        if constants is None:
            level = np.array([voltage_v])
            constants = (float(short_term_tau_s(level, self.params)[0]),
                         float(iv_shape(level, self.params)[0]))
            cache[voltage_v] = constants
        return constants

    def _relax_at_level(self, voltage_v: float, count: int, dt_s: float) -> np.ndarray:
        """Relax F and W over ``count`` samples at one voltage below the pulse threshold.

        The closed form of the general path (``_relax``) for one level: the exponent of F
        grows by ``dt_s / tau(V)`` per sample.
        """
        p = self.params
        tau_s, shape = self._level_constants(voltage_v)
        relax_step = dt_s / tau_s
        self._close_segment()
        # exp(-k relax_step) for k = 1 .. count as a running product of one factor: the
        # round-off grows to about count ulp (1e-13 for a scope read), far below the noise,
        # and it costs a fraction of count exponentials.
        f = np.full(count, math.exp(-relax_step))
        np.multiply.accumulate(f, out=f)
        w = np.full(count, math.exp(-relax_step / self._retention_ratio))
        np.multiply.accumulate(w, out=w)
        f *= self._f_s
        w *= self._w_s - p.w_min_s
        w += p.w_min_s
        self._f_s = float(f[-1])
        self._w_s = float(w[-1])
        self._time_s += dt_s * count
        w = self._add_drift(w, dt_s)

        current = w
        current += f
        current *= shape * voltage_v
        noise = self._rng.standard_normal(count)
        noise *= self._read_noise_std(current)
        noise += current
        return noise

    def _read_noise_std(self, current: np.ndarray) -> np.ndarray:
        """Return the standard deviation of the read noise of each current sample, in amperes.

        sqrt((sigma_rel I)^2 + sigma_floor^2), written out instead of numpy.hypot, which
        is several times slower; the currents are far from overflow or underflow.
        """
        p = self.params
        relative = p.read_noise_rel * current
        relative *= relative
        relative += p.read_noise_floor_a**2
        return np.sqrt(relative, out=relative)

    def hold(self, voltage_v: float, duration_s: float) -> None:
        """Advance the state by duration_s at a constant voltage (closed form, no noise)."""
        voltage = float(voltage_v)
        duration = float(duration_s)
        if not math.isfinite(voltage):
            raise ValueError(f"hold voltage must be a finite number of volts, got {voltage_v!r}")
        if not math.isfinite(duration) or duration < 0:
            raise ValueError(
                f"hold duration must be a finite number of seconds >= 0, got {duration_s!r}"
            )
        if duration == 0:
            return

        if voltage > self.params.pulse_threshold_v:
            self._advance(np.array([voltage]), duration)
            return

        # Below the pulse threshold the state only relaxes: the closed form of _relax.
        self._close_segment()
        relax_f = duration / self._level_constants(voltage)[0]
        self._f_s *= math.exp(-relax_f)
        w_min = self.params.w_min_s
        self._w_s = w_min + (self._w_s - w_min) * math.exp(-relax_f / self._retention_ratio)
        self._drift_offset_s += self._drift_rate_s_per_s * duration
        self._time_s += duration

    def snapshot(self) -> DeviceSnapshot:
        """Return a copy of the whole state (random generator included) for ``restore``."""
        values = {name: copy.deepcopy(getattr(self, name)) for name in _SNAPSHOT_ATTRIBUTES}
        values["_rng_state"] = copy.deepcopy(self._rng.bit_generator.state)
        return DeviceSnapshot(values)

    def restore(self, snapshot: DeviceSnapshot) -> None:
        """Return the model to the state saved by ``snapshot``."""
        values = dict(snapshot._values)
        self._rng.bit_generator.state = copy.deepcopy(values.pop("_rng_state"))
        for name, value in values.items():
            setattr(self, name, copy.deepcopy(value))

    # ----- state evolution -----------------------------------------------------------

    @staticmethod
    def _validate_waveform(voltage_v, dt_s) -> tuple[np.ndarray, float]:
        try:
            dt = float(dt_s)
        except (TypeError, ValueError):
            raise ValueError(f"dt_s must be a positive number of seconds, got {dt_s!r}") from None
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt_s must be a positive finite number of seconds, got {dt_s!r}")
        voltage = np.asarray(voltage_v, dtype=float)
        if voltage.ndim != 1:
            raise ValueError(f"voltage waveform must be one-dimensional, got shape {voltage.shape}")
        bad = ~np.isfinite(voltage)
        if bad.any():
            index = int(np.argmax(bad))
            raise ValueError(f"voltage sample {index} is not a finite number: {voltage[index]!r}")
        return voltage, dt

    def _advance(
        self, voltage: np.ndarray, dt_s: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance through ``voltage``; return W (with drift), F and the formed flag per sample."""
        self._record_forming_events(voltage, dt_s)

        n = voltage.size
        split = 0
        if not self._electroformed:
            above_forming = voltage > self.params.forming_threshold_v
            split = int(np.argmax(above_forming)) if above_forming.any() else n

        w = np.empty(n)
        f = np.zeros(n)
        formed = np.zeros(n, dtype=bool)
        if split > 0:
            w[:split], f[:split] = self._advance_unformed(voltage[:split], dt_s)
        if split < n:
            if not self._electroformed:
                self._form_filament(self._time_s + split * dt_s)
            w[split:] = self._advance_formed(voltage[split:], dt_s)
            formed[split:] = True

        self._time_s += dt_s * n
        return self._add_drift(w, dt_s), f, formed

    def _add_drift(self, w: np.ndarray, dt_s: float) -> np.ndarray:
        """Return W per sample with the injected drift over the samples just advanced."""
        if self._drift_rate_s_per_s == 0.0 and self._drift_offset_s == 0.0:
            return w
        drift = self._drift_offset_s + self._drift_rate_s_per_s * dt_s * np.arange(1, w.size + 1)
        self._drift_offset_s = float(drift[-1])
        return np.maximum(w + drift, 0.0)

    def _record_forming_events(self, voltage: np.ndarray, dt_s: float) -> None:
        starts, stops = _pulse_runs(voltage > self.params.forming_threshold_v)
        if starts.size == 0:
            return
        for start, stop in zip(starts, stops):
            event = FormingEvent(self._time_s + start * dt_s, float(voltage[start:stop].max()))
            self.forming_events.append(event)
        # One message per call, however many excursions the waveform has.
        log.warning(
            "%d excursion(s) above the forming threshold %g V from t = %g s, highest %g V",
            starts.size,
            self.params.forming_threshold_v,
            self._time_s + starts[0] * dt_s,
            float(voltage[voltage > self.params.forming_threshold_v].max()),
        )

    def _form_filament(self, time_s: float) -> None:
        self._electroformed = True
        self._f_s = 0.0
        self._segment = None
        log.warning("device electroformed at t = %g s: the short-term behaviour is gone", time_s)

    def _close_segment(self) -> None:
        if self._segment is not None:
            self._segment = None
            self._pulse_count += 1

    def _advance_unformed(self, voltage: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance W and F (without drift) through pulse segments and relaxation gaps.

        The per-sample rates are integrated once over the whole waveform. The loop then runs
        over segments, not samples, and each segment reads its part of the running sums.
        """
        p = self.params
        n = voltage.size
        above = voltage > p.pulse_threshold_v
        w = np.empty(n)
        f = np.empty(n)

        # Relaxation exponent integral dt / tau(V), set to zero inside pulses because F and W
        # only rise there.
        relax = dt_s / _evaluate_per_sample(short_term_tau_s, voltage, p)
        starts, stops = _pulse_runs(above)
        if starts.size == 0:
            self._relax(np.cumsum(relax), w, f)
            return w, f
        relax[above] = 0.0
        cum_relax = np.cumsum(relax)

        # Drive integral f(V) dt and SET exposure integral k(V) dt. Both functions are zero
        # outside pulses.
        cum_drive = np.cumsum(_evaluate_per_sample(potentiation_drive_s, voltage, p) * dt_s)
        cum_set = np.cumsum(_evaluate_per_sample(set_rate_per_s, voltage, p) * dt_s)

        position = 0
        for start, stop in [*zip(starts, stops), (n, n)]:
            if start > position:
                base = cum_relax[position - 1] if position > 0 else 0.0
                self._relax(cum_relax[position:start] - base, w[position:start], f[position:start])
            if stop > start:
                base_drive = cum_drive[start - 1] if start > 0 else 0.0
                base_set = cum_set[start - 1] if start > 0 else 0.0
                self._pulse(
                    cum_drive[start:stop] - base_drive,
                    cum_set[start:stop] - base_set,
                    dt_s,
                    w[start:stop],
                    f[start:stop],
                )
            position = stop
        return w, f

    def _relax(self, relax_f: np.ndarray, w_out: np.ndarray, f_out: np.ndarray) -> None:
        """Relax F and W over one gap between pulses, given the cumulative exponent of F."""
        self._close_segment()

        f_out[:] = self._f_s * np.exp(-relax_f)
        w_min = self.params.w_min_s
        w_out[:] = w_min + (self._w_s - w_min) * np.exp(-relax_f / self._retention_ratio)

        self._f_s = float(f_out[-1])
        self._w_s = float(w_out[-1])

    def _pulse(self, drive: np.ndarray, exposure: np.ndarray, dt_s: float, w_out, f_out) -> None:
        """Raise F and W inside one pulse segment, or the part of it in this call.

        ``drive`` and ``exposure`` are the running integrals of f(V) and k(V) from the start
        of this part of the segment.
        """
        p = self.params
        if self._segment is None:
            self._segment = _OpenSegment(
                f_start_s=self._f_s,
                w_start_s=self._w_s,
                elapsed_s=0.0,
                drive_integral=0.0,
                set_exposure=0.0,
                f_spread_factor=self._draw_spread_factor(p.short_term_spread),
                w_spread_factor=self._draw_spread_factor(p.set_spread),
            )
        segment = self._segment

        elapsed = segment.elapsed_s + dt_s * np.arange(1, drive.size + 1)
        drive = segment.drive_integral + drive
        # q = (mean drive) (t' / w_ref)^beta = drive_integral t'^(beta - 1) / w_ref^beta
        unsaturated = (
            drive * elapsed ** (p.width_exponent - 1.0) / p.reference_width_s**p.width_exponent
        )
        # NOTE: dF does not depend on W. The published protocol measures the short-term
        # response at each long-term level, but the material at hand gives no dependence.
        headroom = max(p.f_max_s - segment.f_start_s, 0.0)
        f_out[:] = segment.f_start_s + segment.f_spread_factor * headroom * -np.expm1(
            -unsaturated / p.f_max_s
        )

        exposure = segment.set_exposure + exposure
        w_gap = p.w_sat_s - segment.w_start_s
        w_out[:] = p.w_sat_s - w_gap * np.exp(-segment.w_spread_factor * exposure)

        segment.elapsed_s = float(elapsed[-1])
        segment.drive_integral = float(drive[-1])
        segment.set_exposure = float(exposure[-1])
        self._f_s = float(f_out[-1])
        self._w_s = float(w_out[-1])

    def _draw_spread_factor(self, relative_std: float) -> float:
        """Return 1 + relative_std z (z standard normal), never below 0."""
        return max(1.0 + relative_std * float(self._rng.standard_normal()), 0.0)

    def _advance_formed(self, voltage: np.ndarray, dt_s: float) -> np.ndarray:
        """Relax W after forming (F stays 0); return W per sample without drift."""
        relax_w = np.cumsum(dt_s / _evaluate_per_sample(retention_tau_s, voltage, self.params))
        w_min = self.params.w_min_s
        w = w_min + (self._w_s - w_min) * np.exp(-relax_w)
        self._w_s = float(w[-1])
        return w

    def _w_total_s(self, w_core_s: float) -> float:
        return max(w_core_s + self._drift_offset_s, 0.0)


_SNAPSHOT_ATTRIBUTES = (
    "_w_s",
    "_f_s",
    "_drift_offset_s",
    "_drift_rate_s_per_s",
    "_time_s",
    "_pulse_count",
    "_segment",
    "_electroformed",
    "forming_events",
)
