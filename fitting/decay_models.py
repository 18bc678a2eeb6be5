"""Decay of the short-term conductance after a pulse: exponential and stretched exponential.

Both models describe the conductance read at time ``t`` after a pulse, in nanosiemens.
Fits run in nS so that the numbers are of order one, and the device file stores siemens.

* exponential: ``G(t) = offset_ns + amplitude_ns * exp(-t / tau_s)``
* stretched exponential: ``G(t) = offset_ns + amplitude_ns * exp(-(t / tau_s) ** beta)``

``offset_ns`` is the long-term level the curve relaxes to, ``amplitude_ns`` the short-term
increase left at ``t = 0`` and ``tau_s`` the decay time in seconds. ``beta`` (dimensionless)
below 1 stretches the decay over a spread of time constants. The published analysis fits a
single exponential to each curve. The stretched form is fitted alongside only to compare
the two by AIC and reduced chi-square.
"""

from __future__ import annotations

import lmfit
import numpy as np

# Bounds of tau relative to the read times: a tau outside them is not constrained by the data.
TAU_MIN_FRACTION_OF_FIRST_READ = 0.1
TAU_MAX_MULTIPLE_OF_LAST_READ = 100.0
BETA_BOUNDS = (0.1, 3.0)


def exponential_decay(time_s, amplitude_ns, tau_s, offset_ns):
    """Return ``offset_ns + amplitude_ns * exp(-time_s / tau_s)`` in nS."""
    return offset_ns + amplitude_ns * np.exp(-np.asarray(time_s) / tau_s)


def stretched_exponential_decay(time_s, amplitude_ns, tau_s, beta, offset_ns):
    """Return ``offset_ns + amplitude_ns * exp(-(time_s / tau_s) ** beta)`` in nS."""
    scaled = np.clip(np.asarray(time_s) / tau_s, 0.0, None)
    return offset_ns + amplitude_ns * np.exp(-(scaled**beta))


class ExponentialDecayModel(lmfit.Model):
    """Single-exponential relaxation of the conductance after a pulse (see module docstring).

    Bounds: ``amplitude_ns >= 0`` (a pulse raises the conductance), ``tau_s`` between a
    tenth of the first read time and 100 times the last read time.
    """

    def __init__(self, **kwargs):
        super().__init__(exponential_decay, independent_vars=["time_s"], **kwargs)

    def guess(self, data, time_s, **kwargs):
        """Return starting parameters with bounds taken from the read times."""
        time_s = np.asarray(time_s, dtype=float)
        data = np.asarray(data, dtype=float)
        offset, amplitude, tau = _initial_decay_values(data, time_s)
        params = self.make_params(amplitude_ns=amplitude, tau_s=tau, offset_ns=offset)
        _bound_decay_parameters(params, time_s)
        return lmfit.models.update_param_vals(params, self.prefix, **kwargs)


class StretchedExponentialDecayModel(lmfit.Model):
    """Stretched-exponential relaxation of the conductance after a pulse.

    Same bounds as ``ExponentialDecayModel``, and ``beta`` between 0.1 and 3.
    """

    def __init__(self, **kwargs):
        super().__init__(stretched_exponential_decay, independent_vars=["time_s"], **kwargs)

    def guess(self, data, time_s, **kwargs):
        """Return starting parameters (beta = 1, that is the exponential guess)."""
        time_s = np.asarray(time_s, dtype=float)
        data = np.asarray(data, dtype=float)
        offset, amplitude, tau = _initial_decay_values(data, time_s)
        params = self.make_params(amplitude_ns=amplitude, tau_s=tau, beta=1.0, offset_ns=offset)
        _bound_decay_parameters(params, time_s)
        params["beta"].set(min=BETA_BOUNDS[0], max=BETA_BOUNDS[1])
        return lmfit.models.update_param_vals(params, self.prefix, **kwargs)


def _initial_decay_values(data: np.ndarray, time_s: np.ndarray) -> tuple[float, float, float]:
    order = np.argsort(time_s)
    time_s, data = time_s[order], data[order]
    tail = max(1, len(data) // 5)
    offset = float(np.mean(data[-tail:]))
    amplitude = max(float(data[0] - offset), 1e-3)

    # tau: the first read time at which the excess has fallen below 1/e of its start.
    excess = data - offset
    below = np.flatnonzero(excess <= amplitude / np.e)
    if below.size and time_s[below[0]] > 0:
        tau = float(time_s[below[0]])
    else:
        positive = time_s[time_s > 0]
        tau = float(np.sqrt(positive.min() * positive.max())) if positive.size else 1.0
    return offset, amplitude, tau


def _bound_decay_parameters(params: lmfit.Parameters, time_s: np.ndarray) -> None:
    positive = time_s[time_s > 0]
    first = float(positive.min()) if positive.size else 1e-6
    last = float(time_s.max()) if time_s.size else 1.0
    tau_min = TAU_MIN_FRACTION_OF_FIRST_READ * first
    tau_max = TAU_MAX_MULTIPLE_OF_LAST_READ * max(last, first)
    params["amplitude_ns"].set(min=0.0)
    params["tau_s"].set(
        value=float(np.clip(params["tau_s"].value, 2 * tau_min, tau_max / 2)),
        min=tau_min, max=tau_max,
    )
