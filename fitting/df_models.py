"""Smooth interpolation model of the mean pulse response dF(amplitude, width).

The model is a quadratic surface in the logarithm of an unsaturated drive D, followed by
a saturation:

    ln(D / 1 nS) = log_df_ref + amplitude_slope_per_v x + width_exponent y
                   + amplitude_curvature_per_v2 x**2 + coupling_per_v x y
                   + width_curvature y**2
    dF = (1 - exp(-saturation_per_ns D)) / saturation_per_ns

with ``x = amplitude - amplitude_ref_v`` in volts, ``y = ln(width / width_ref_s)`` and
dF, D in nS. ``saturation_per_ns`` > 0 makes dF level off towards 1 / saturation_per_ns
(the response saturates at the strongest pulses), 0 gives dF = D, and a negative value
lets dF grow faster than D. The reference point is the centre of the measured grid
(mean amplitude, geometric mean width) and is not fitted.

A term is fitted only when the grid can determine it: a quadratic term needs three
distinct values on its axis, the coupling and the saturation two of each, and the fit
needs more cells than free parameters. Terms the grid cannot carry are held at 0, the
coupling first, then the width and amplitude curvatures, then the saturation.

The surface is an interpolation formula, valid only inside the measured amplitude and
width range: ``predict_df`` rejects points outside it. It is fitted in log space to the
table means, weighted by the relative standard error of each mean, with the errors scaled
by sqrt(reduced chi-square) when that exceeds 1 (``fitting.fit_checks.scale_uncertainties``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import lmfit
import numpy as np

from fitting.errors import FitWarnings
from fitting.fit_checks import check_fit, has_enough_points, scale_uncertainties

log = logging.getLogger(__name__)

# Optional terms, in the order in which they are held at 0 when the grid is too small.
_OPTIONAL_TERMS = (
    "coupling_per_v", "width_curvature", "amplitude_curvature_per_v2", "saturation_per_ns",
)
# Largest |saturation_per_ns * D| handed to exp, so that a negative saturation cannot overflow.
_MAX_EXPONENT = 700.0


def log_df_surface(
    amplitude_offset_v, log_width_ratio, log_df_ref, amplitude_slope_per_v, width_exponent,
    amplitude_curvature_per_v2, coupling_per_v, width_curvature, saturation_per_ns,
):
    """Return ln(dF / 1 nS) of the saturated quadratic surface (see the module docstring)."""
    x = np.asarray(amplitude_offset_v, dtype=float)
    y = np.asarray(log_width_ratio, dtype=float)
    log_drive = (
        log_df_ref + amplitude_slope_per_v * x + width_exponent * y
        + amplitude_curvature_per_v2 * x**2 + coupling_per_v * x * y + width_curvature * y**2
    )
    product = np.clip(saturation_per_ns * np.exp(log_drive), -_MAX_EXPONENT, _MAX_EXPONENT)
    # (1 - exp(-p)) / p, with its series 1 - p / 2 where p is too small for the quotient.
    small = np.abs(product) < 1e-8
    factor = np.where(small, 1.0 - product / 2, -np.expm1(-product) / np.where(small, 1.0, product))
    return log_drive + np.log(factor)


class LogDfSurfaceModel(lmfit.Model):
    """lmfit model of ``log_df_surface``; no bounds, since the surface is empirical."""

    def __init__(self, **kwargs):
        super().__init__(
            log_df_surface, independent_vars=["amplitude_offset_v", "log_width_ratio"], **kwargs
        )

    def guess(self, data, amplitude_offset_v, log_width_ratio, **kwargs):
        """Return the linear least-squares plane as the start; the other terms start at 0."""
        x = np.asarray(amplitude_offset_v, dtype=float)
        y = np.asarray(log_width_ratio, dtype=float)
        design = np.column_stack([np.ones_like(x), x, y])
        coefficients, *_ = np.linalg.lstsq(design, np.asarray(data, dtype=float), rcond=None)
        params = self.make_params(
            log_df_ref=coefficients[0], amplitude_slope_per_v=coefficients[1],
            width_exponent=coefficients[2], amplitude_curvature_per_v2=0.0,
            coupling_per_v=0.0, width_curvature=0.0, saturation_per_ns=0.0,
        )
        return lmfit.models.update_param_vals(params, self.prefix, **kwargs)


@dataclass
class DfSurfaceFit:
    """The fitted surface with its reference point and validity range."""

    result: lmfit.model.ModelResult
    amplitude_ref_v: float
    width_ref_s: float
    amplitude_range_v: tuple[float, float]
    width_range_s: tuple[float, float]
    amplitudes_v: np.ndarray
    widths_s: np.ndarray
    df_means_ns: np.ndarray
    df_stderrs_ns: np.ndarray | None

    def predict_df(self, amplitude_v, width_s):
        """Return the modelled mean dF in siemens; raise ``ValueError`` outside the fitted range."""
        amplitude = np.asarray(amplitude_v, dtype=float)
        width = np.asarray(width_s, dtype=float)
        low_a, high_a = self.amplitude_range_v
        low_w, high_w = self.width_range_s
        if np.any((amplitude < low_a) | (amplitude > high_a)):
            raise ValueError(
                f"amplitude {amplitude_v!r} V is outside the fitted range [{low_a:g}, {high_a:g}] V"
            )
        if np.any((width < low_w) | (width > high_w)):
            raise ValueError(f"width {width_s!r} s is outside the fitted range [{low_w:g}, {high_w:g}] s")
        log_df = self.result.eval(
            amplitude_offset_v=amplitude - self.amplitude_ref_v,
            log_width_ratio=np.log(width / self.width_ref_s),
        )
        return np.exp(log_df) * 1e-9

    def max_relative_deviation(self) -> float:
        """Return the largest |model / mean - 1| over the fitted table cells."""
        model = self.predict_df(self.amplitudes_v, self.widths_s) * 1e9
        return float(np.max(np.abs(model / self.df_means_ns - 1.0)))


def fit_df_surface(
    amplitudes_v: np.ndarray,
    widths_s: np.ndarray,
    df_means_s: np.ndarray,
    df_stderrs_s: np.ndarray | None,
    fit_warnings: FitWarnings,
) -> DfSurfaceFit | None:
    """Fit the surface to the table means; return None when too few cells remain.

    Cells with a mean dF <= 0 cannot enter the logarithm and are flagged and left out.
    """
    where = "dF(amplitude, width) model"
    amplitudes_v = np.asarray(amplitudes_v, dtype=float)
    widths_s = np.asarray(widths_s, dtype=float)
    df_ns = np.asarray(df_means_s, dtype=float) * 1e9
    stderr_ns = None if df_stderrs_s is None else np.asarray(df_stderrs_s, dtype=float) * 1e9

    positive = df_ns > 0
    if not positive.all():
        fit_warnings.flag(
            where,
            f"{int((~positive).sum())} table cells have a mean dF <= 0 and are left out of the "
            "log-space fit",
        )
        amplitudes_v, widths_s, df_ns = amplitudes_v[positive], widths_s[positive], df_ns[positive]
        stderr_ns = None if stderr_ns is None else stderr_ns[positive]

    model = LogDfSurfaceModel()
    if not has_enough_points(len(df_ns), 3, where, fit_warnings):
        return None
    amplitude_ref_v = float(np.mean(np.unique(amplitudes_v)))
    width_ref_s = float(np.exp(np.mean(np.log(np.unique(widths_s)))))
    x = amplitudes_v - amplitude_ref_v
    y = np.log(widths_s / width_ref_s)
    params = model.guess(np.log(df_ns), amplitude_offset_v=x, log_width_ratio=y)
    n_free = _fix_unsupported_terms(params, amplitudes_v, widths_s)

    weights = None
    if stderr_ns is not None and np.all(np.isfinite(stderr_ns)) and np.all(stderr_ns > 0):
        weights = df_ns / stderr_ns  # 1 / stderr of ln(dF), to first order
    result = model.fit(
        np.log(df_ns), params, amplitude_offset_v=x, log_width_ratio=y, weights=weights,
        scale_covar=weights is None,
    )
    if weights is not None:
        scale_uncertainties(result)
    check_fit(result, where, fit_warnings)

    fit = DfSurfaceFit(
        result=result,
        amplitude_ref_v=amplitude_ref_v,
        width_ref_s=width_ref_s,
        amplitude_range_v=(float(amplitudes_v.min()), float(amplitudes_v.max())),
        width_range_s=(float(widths_s.min()), float(widths_s.max())),
        amplitudes_v=amplitudes_v,
        widths_s=widths_s,
        df_means_ns=df_ns,
        df_stderrs_ns=stderr_ns,
    )
    log.info(
        "%s: %d free parameters, largest deviation from a table mean %.1f %%",
        where, n_free, 100 * fit.max_relative_deviation(),
    )
    return fit


def _fix_unsupported_terms(
    params: lmfit.Parameters, amplitudes_v: np.ndarray, widths_s: np.ndarray
) -> int:
    """Hold at 0 the terms the grid cannot determine; return the number of free parameters."""
    distinct_amplitudes = len(np.unique(amplitudes_v))
    distinct_widths = len(np.unique(widths_s))
    both_axes = distinct_amplitudes >= 2 and distinct_widths >= 2
    supported = {
        "amplitude_slope_per_v": distinct_amplitudes >= 2,
        "width_exponent": distinct_widths >= 2,
        "amplitude_curvature_per_v2": distinct_amplitudes >= 3,
        "coupling_per_v": both_axes,
        "width_curvature": distinct_widths >= 3,
        "saturation_per_ns": both_axes,
    }
    for name, is_supported in supported.items():
        if not is_supported:
            params[name].set(value=0.0, vary=False)

    n_free = 1 + sum(supported.values())
    for name in _OPTIONAL_TERMS:
        if n_free < len(amplitudes_v):
            break
        if params[name].vary:
            params[name].set(value=0.0, vary=False)
            n_free -= 1
    return n_free


def surface_parameter_units() -> dict[str, str]:
    """Return the unit of each surface parameter as written in the device file."""
    return {
        "log_df_ref": "1",
        "amplitude_slope_per_v": "1/V",
        "width_exponent": "1",
        "amplitude_curvature_per_v2": "1/V^2",
        "coupling_per_v": "1/V",
        "width_curvature": "1",
        "saturation_per_ns": "1/nS",
    }


def describe_surface(fit: DfSurfaceFit) -> dict:
    """Return the ``short_term.model`` section of the device file for a fitted surface."""
    units = surface_parameter_units()
    parameters = {}
    for name, unit in units.items():
        parameter = fit.result.params[name]
        stderr = parameter.stderr if parameter.vary else None
        if stderr is not None and not math.isfinite(stderr):
            stderr = None
        parameters[name] = {
            "value": float(parameter.value), "stderr": stderr, "unit": unit,
            **({} if parameter.vary else {"fixed": True}),
        }
    return {
        "name": "saturated log-quadratic surface",
        "formula": (
            "dF / 1 nS = (1 - exp(-saturation_per_ns * D)) / saturation_per_ns (dF = D when "
            "saturation_per_ns = 0), ln(D / 1 nS) = log_df_ref + amplitude_slope_per_v * x "
            "+ width_exponent * y + amplitude_curvature_per_v2 * x^2 + coupling_per_v * x * y "
            "+ width_curvature * y^2, x = amplitude_v - amplitude_ref_v, "
            "y = ln(width_s / width_ref_s)"
        ),
        "amplitude_ref_v": fit.amplitude_ref_v,
        "width_ref_s": fit.width_ref_s,
        "parameters": parameters,
        "fit": {
            "method": "least squares on ln(dF), weighted by mean dF / standard error of the mean",
            "n_points": int(fit.result.ndata),
            "n_parameters": int(fit.result.nvarys),
            "reduced_chi_square": float(fit.result.redchi),
            "max_relative_deviation": fit.max_relative_deviation(),
        },
    }
