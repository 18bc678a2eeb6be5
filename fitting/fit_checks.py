"""Checks every lmfit result passes before its numbers reach the device file."""

from __future__ import annotations

import math

import lmfit

from fitting.errors import FitWarnings
from fitting.quantity import quantity

# A parameter closer to a finite bound than this fraction of its magnitude (or of the
# bound's, or of its start value's, whichever is largest) counts as being at the bound.
BOUND_TOLERANCE = 1e-4


def has_enough_points(
    n_points: int, n_parameters: int, where: str, fit_warnings: FitWarnings
) -> bool:
    """Return True when there are more points than free parameters, else flag and return False."""
    if n_points > n_parameters:
        return True
    fit_warnings.flag(
        where,
        f"too few points to fit: {n_points} points for {n_parameters} free parameters "
        f"(at least {n_parameters + 1} needed)",
    )
    return False


def fit_problems(result: lmfit.model.ModelResult) -> list[str]:
    """Return what is wrong with a fit: no convergence, a parameter at a bound, no stderr."""
    problems: list[str] = []
    if not result.success:
        problems.append(f"the fit did not converge ({result.message})")

    for name, parameter in result.params.items():
        if not parameter.vary or parameter.expr is not None:
            continue
        bound = _bound_reached(parameter)
        if bound is not None:
            problems.append(
                f"parameter {name} = {parameter.value:.6g} is at its {bound} bound, so the data "
                "do not constrain it"
            )
        elif parameter.stderr is None or not math.isfinite(parameter.stderr):
            problems.append(f"the uncertainty of {name} could not be estimated")
    return problems


def check_fit(result: lmfit.model.ModelResult, where: str, fit_warnings: FitWarnings) -> bool:
    """Flag every problem of ``fit_problems`` in one warning; return True for a clean fit."""
    problems = fit_problems(result)
    if problems:
        fit_warnings.flag(where, "; ".join(problems))
        return False
    return True


def parameter_quantity(result: lmfit.model.ModelResult, name: str, unit: str) -> dict:
    """Return a fitted parameter as a device-file quantity (stderr None when not estimated)."""
    parameter = result.params[name]
    return quantity(parameter.value, parameter.stderr, unit)


def scale_uncertainties(result: lmfit.model.ModelResult) -> float:
    """Scale the stderr and covariance of a weighted fit by sqrt(max(1, reduced chi-square)).

    For a fit whose weights are 1 / sigma of each point, the unscaled covariance holds when
    the model describes the points within their errors. A reduced chi-square above 1 shows
    extra scatter, and the errors grow by its square root (the scale factor of the Particle
    Data Group's averages). Below 1 they are kept, because with few degrees of freedom a
    small chi-square is often chance and would shrink the errors below the points' own.
    The fit must have been run with ``scale_covar=False``. Returns the factor applied.
    """
    factor = math.sqrt(max(1.0, float(result.redchi)))
    if factor == 1.0:
        return factor
    for parameter in result.params.values():
        if parameter.stderr is not None:
            parameter.stderr *= factor
    if result.covar is not None:
        result.covar = result.covar * factor**2
    return factor


def fit_statistics(result: lmfit.model.ModelResult) -> dict[str, float | int | bool]:
    """Return the goodness-of-fit numbers exported next to a model's parameters."""
    return {
        "n_points": int(result.ndata),
        "n_parameters": int(result.nvarys),
        "reduced_chi_square": float(result.redchi),
        "aic": float(result.aic),
        "converged": bool(result.success),
        "errorbars": bool(result.errorbars),
    }


def _bound_reached(parameter: lmfit.Parameter) -> str | None:
    scale = max(abs(parameter.value), abs(parameter.init_value or 0.0))
    for side, bound in (("lower", parameter.min), ("upper", parameter.max)):
        if not math.isfinite(bound):
            continue
        tolerance = BOUND_TOLERANCE * max(scale, abs(bound))
        if abs(parameter.value - bound) <= tolerance:
            return side
    return None
