"""Decay time tau(bias) from a bias-decay results file.

Each curve (one bias, one repeat) contains the conductance reads after a main pulse, with a
constant bias held between reads. Its reads at ``Time since pulse (s) >= 0`` are fitted
with the exponential model of ``fitting.decay_models`` (the stretched exponential is fitted
too, only for the model comparison). The repeats at one bias are combined into tau(bias)
by an inverse-variance weighted mean whose standard error is the larger of the internal
error (from the fits' stderr) and the external one (from the scatter of the repeats).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import lmfit
import numpy as np

from fitting.decay_models import ExponentialDecayModel, StretchedExponentialDecayModel
from fitting.errors import FitWarnings
from fitting.fit_checks import check_fit, has_enough_points
from fitting.results_files import ResultsFile, require_columns, rows_without_nan

log = logging.getLogger(__name__)

_COLUMNS = ("Bias (V)", "Repeat", "Time since pulse (s)", "Conductance (S)")
_SIEMENS_TO_NS = 1e9
# The stretched fit only serves the model comparison, so a curve it cannot describe
# (such as a flat one) must not cost more than this many model evaluations.
STRETCHED_MAX_EVALUATIONS = 2000
AIC_MARGIN = 10.0


@dataclass
class DecayCurve:
    """The reads after one main pulse at one bias: times in s, conductances in nS."""

    bias_v: float
    repeat: int
    time_s: np.ndarray
    conductance_ns: np.ndarray
    exponential: lmfit.model.ModelResult | None = None
    stretched: lmfit.model.ModelResult | None = None
    usable: bool = False

    @property
    def name(self) -> str:
        return f"bias-decay curve at {self.bias_v:+g} V, repeat {self.repeat}"


@dataclass
class BiasDecayPoint:
    """tau at one bias, combined over the usable repeats."""

    bias_v: float
    tau_s: float
    tau_stderr_s: float | None
    amplitude_ns: float
    amplitude_stderr_ns: float | None
    curves: list[DecayCurve] = field(default_factory=list)

    @property
    def n_curves(self) -> int:
        return sum(curve.usable for curve in self.curves)


@dataclass
class DecayAnalysis:
    """Every bias of a bias-decay file with its fitted curves and combined tau."""

    points: list[BiasDecayPoint]
    skipped_biases_v: list[float]
    time_since_pulse_range_s: tuple[float, float]


def extract_decay_curves(results: ResultsFile, fit_warnings: FitWarnings) -> list[DecayCurve]:
    """Split a bias-decay file into curves, one per (bias, repeat), in nS and seconds.

    Rows with NaN values are left out (flagged). A curve whose ``Time since pulse (s)``
    does not increase from row to row is flagged and left out.
    """
    require_columns(results)
    rows = rows_without_nan(results, _COLUMNS, fit_warnings)

    curves: list[DecayCurve] = []
    for (bias_v, repeat), group in rows.groupby(["Bias (V)", "Repeat"], sort=True):
        after = group[group["Time since pulse (s)"] >= 0]
        time_s = after["Time since pulse (s)"].to_numpy(dtype=float)
        curve = DecayCurve(
            bias_v=float(bias_v),
            repeat=int(repeat),
            time_s=time_s,
            conductance_ns=after["Conductance (S)"].to_numpy(dtype=float) * _SIEMENS_TO_NS,
        )
        if np.any(np.diff(group["Time since pulse (s)"].to_numpy(dtype=float)) <= 0):
            fit_warnings.flag(
                curve.name,
                "'Time since pulse (s)' does not increase from row to row; the curve is "
                "left out",
            )
            continue
        curves.append(curve)
    return curves


def fit_decay_curve(curve: DecayCurve, fit_warnings: FitWarnings) -> DecayCurve:
    """Fit one curve with both models; mark it usable when the exponential fit is clean."""
    model = ExponentialDecayModel()
    if not has_enough_points(len(curve.time_s), len(model.param_names), curve.name, fit_warnings):
        return curve

    params = model.guess(curve.conductance_ns, time_s=curve.time_s)
    curve.exponential = model.fit(curve.conductance_ns, params, time_s=curve.time_s)
    curve.usable = check_fit(curve.exponential, curve.name, fit_warnings)

    # The stretched form only enters the model comparison, so its problems are logged.
    stretched = StretchedExponentialDecayModel()
    if len(curve.time_s) > len(stretched.param_names):
        start = stretched.guess(curve.conductance_ns, time_s=curve.time_s)
        if curve.usable:
            for name in ("amplitude_ns", "tau_s", "offset_ns"):
                start[name].set(value=curve.exponential.params[name].value)
        try:
            curve.stretched = stretched.fit(
                curve.conductance_ns, start, time_s=curve.time_s, max_nfev=STRETCHED_MAX_EVALUATIONS
            )
        except (ValueError, RuntimeError) as error:
            log.debug("%s: stretched-exponential fit failed: %s", curve.name, error)
    return curve


def combine_repeats(values: list[float], stderrs: list[float]) -> tuple[float, float | None]:
    """Return the inverse-variance weighted mean and its standard error.

    The standard error is the larger of the internal error ``1 / sqrt(sum w)`` and the
    external error from the weighted scatter (Birge ratio). Repeats that disagree by more
    than their fit errors allow therefore widen the result.
    """
    values_array = np.asarray(values, dtype=float)
    weights = 1.0 / np.asarray(stderrs, dtype=float) ** 2
    mean = float(np.sum(weights * values_array) / np.sum(weights))
    internal = 1.0 / math.sqrt(float(np.sum(weights)))
    if len(values_array) < 2:
        return mean, internal
    scatter = float(np.sum(weights * (values_array - mean) ** 2))
    external = math.sqrt(scatter / ((len(values_array) - 1) * float(np.sum(weights))))
    return mean, max(internal, external)


def fit_bias_decay(results: ResultsFile, fit_warnings: FitWarnings) -> DecayAnalysis:
    """Fit every curve of a bias-decay file and combine the repeats into tau(bias)."""
    curves = [fit_decay_curve(curve, fit_warnings) for curve in extract_decay_curves(results, fit_warnings)]
    biases = sorted({curve.bias_v for curve in curves})

    points: list[BiasDecayPoint] = []
    skipped: list[float] = []
    for bias_v in biases:
        at_bias = [curve for curve in curves if curve.bias_v == bias_v]
        usable = [curve for curve in at_bias if curve.usable]
        if not usable:
            fit_warnings.flag(
                f"bias-decay at {bias_v:+g} V",
                "no curve at this bias could be fitted; the bias is left out of Lambda(V)",
            )
            skipped.append(bias_v)
            continue
        taus = [curve.exponential.params["tau_s"].value for curve in usable]
        tau_errors = [curve.exponential.params["tau_s"].stderr for curve in usable]
        tau_s, tau_stderr_s = combine_repeats(taus, tau_errors)
        amplitudes = np.array([curve.exponential.params["amplitude_ns"].value for curve in usable])
        amplitude_stderr = None
        if amplitudes.size >= 2:
            amplitude_stderr = float(amplitudes.std(ddof=1) / math.sqrt(amplitudes.size))
        points.append(
            BiasDecayPoint(
                bias_v=bias_v, tau_s=tau_s, tau_stderr_s=tau_stderr_s,
                amplitude_ns=float(amplitudes.mean()), amplitude_stderr_ns=amplitude_stderr,
                curves=at_bias,
            )
        )
        log.info(
            "bias %+.3g V: tau = %.4g +- %.2g s from %d of %d curves",
            bias_v, tau_s, tau_stderr_s, len(usable), len(at_bias),
        )

    all_times = np.concatenate([curve.time_s for curve in curves]) if curves else np.zeros(1)
    return DecayAnalysis(
        points=points,
        skipped_biases_v=skipped,
        time_since_pulse_range_s=(float(all_times.min()), float(all_times.max())),
    )


def compare_decay_models(point: BiasDecayPoint) -> dict:
    """Return the exponential / stretched-exponential comparison at one bias.

    AIC values are summed over the curves where both fits exist. The exponential, the
    simpler and published model, stays ``preferred`` unless the stretched form lowers the
    total AIC by more than ``AIC_MARGIN`` (a difference above 10 leaves the other model
    essentially no support). ``beta_median`` is the median stretch exponent.
    """
    pairs = [
        (curve.exponential, curve.stretched)
        for curve in point.curves
        if curve.usable and curve.stretched is not None and curve.stretched.success
    ]
    if not pairs:
        return {"bias_v": point.bias_v, "n_curves": 0, "preferred": None}
    aic_exponential = float(sum(exponential.aic for exponential, _ in pairs))
    aic_stretched = float(sum(stretched.aic for _, stretched in pairs))
    return {
        "bias_v": point.bias_v,
        "n_curves": len(pairs),
        "exponential": {
            "aic": aic_exponential,
            "reduced_chi_square": float(np.mean([fit.redchi for fit, _ in pairs])),
        },
        "stretched_exponential": {
            "aic": aic_stretched,
            "reduced_chi_square": float(np.mean([fit.redchi for _, fit in pairs])),
            "beta_median": float(np.median([fit.params["beta"].value for _, fit in pairs])),
        },
        "preferred": (
            "stretched_exponential" if aic_stretched < aic_exponential - AIC_MARGIN else "exponential"
        ),
    }
