"""Decay factor per network step, Lambda = exp(-step_interval_s / tau), and its sigmoid in bias.

Lambda is the factor by which the short-term weight F shrinks over one network step of
``step_interval_s`` seconds (1 = no decay, 0 = instant decay). Its dependence on the bias
held between reads is fitted with

    Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0

with ``L`` and ``Lambda0`` dimensionless, ``k`` in 1/V and ``V0`` in V. The published study
fitted this form but did not publish its parameters. The reachable range
``[lambda_min, lambda_max]`` is the sigmoid at the lowest and highest bias measured, and
``bias_for_lambda`` inverts the sigmoid inside that range.
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

K_MAX_PER_V = 1000.0


def lambda_from_tau(
    tau_s: float, tau_stderr_s: float | None, step_interval_s: float
) -> tuple[float, float | None]:
    """Return Lambda = exp(-step_interval_s / tau_s) and its propagated standard error.

    d Lambda / d tau = Lambda * step_interval_s / tau**2, so
    stderr(Lambda) = Lambda * step_interval_s * stderr(tau) / tau**2.
    """
    if not tau_s > 0:
        raise ValueError(f"tau must be positive, got {tau_s!r} s")
    value = math.exp(-step_interval_s / tau_s)
    if tau_stderr_s is None:
        return value, None
    return value, value * step_interval_s * tau_stderr_s / tau_s**2


def sigmoid(bias_v, L, k, V0, Lambda0):
    """Return ``L / (1 + exp(-k (bias_v - V0))) + Lambda0`` (dimensionless)."""
    return L / (1.0 + np.exp(-k * (np.asarray(bias_v, dtype=float) - V0))) + Lambda0


def sigmoid_gradient(bias_v: float, L: float, k: float, V0: float, Lambda0: float) -> np.ndarray:
    """Return the derivatives of ``sigmoid`` at one bias by (L, k, V0, Lambda0)."""
    logistic = 1.0 / (1.0 + math.exp(-k * (bias_v - V0)))
    slope = logistic * (1.0 - logistic)
    return np.array([logistic, L * slope * (bias_v - V0), -L * slope * k, 1.0])


class SigmoidModel(lmfit.Model):
    """Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0, rising with the bias V.

    Bounds: 0 < L <= 2, 0 < k <= 1000 1/V, -1 <= Lambda0 <= 1, and V0 within one bias
    span of the measured biases. The asymptotes may lie outside [0, 1] because only the
    measured bias range is used; ``lambda_min`` and ``lambda_max`` must lie inside it.
    """

    def __init__(self, **kwargs):
        super().__init__(sigmoid, independent_vars=["bias_v"], **kwargs)

    def guess(self, data, bias_v, **kwargs):
        """Return starting values from the data's extremes and its steepest step."""
        bias_v = np.asarray(bias_v, dtype=float)
        data = np.asarray(data, dtype=float)
        order = np.argsort(bias_v)
        bias_v, data = bias_v[order], data[order]
        low, high = float(data.min()), float(data.max())
        height = max(high - low, 1e-3)
        span = max(float(bias_v[-1] - bias_v[0]), 1e-3)

        middle = 0.5 * (low + high)
        crossing = np.flatnonzero(data >= middle)
        V0 = float(bias_v[crossing[0]]) if crossing.size else float(np.mean(bias_v))
        slopes = np.diff(data) / np.maximum(np.diff(bias_v), 1e-12)
        steepest = float(slopes.max()) if slopes.size else height / span
        k = float(np.clip(4.0 * steepest / height, 4.0 / span, K_MAX_PER_V / 2))

        params = self.make_params(L=height, k=k, V0=V0, Lambda0=low)
        params["L"].set(min=0.0, max=2.0)
        params["k"].set(min=0.0, max=K_MAX_PER_V)
        params["V0"].set(min=float(bias_v[0]) - span, max=float(bias_v[-1]) + span)
        params["Lambda0"].set(min=-1.0, max=1.0)
        return lmfit.models.update_param_vals(params, self.prefix, **kwargs)


@dataclass
class SigmoidFit:
    """The fitted sigmoid with the bias range it was fitted over."""

    result: lmfit.model.ModelResult
    bias_v: np.ndarray
    lambda_values: np.ndarray
    lambda_stderrs: np.ndarray | None

    @property
    def values(self) -> dict[str, float]:
        return {name: float(self.result.params[name].value) for name in ("L", "k", "V0", "Lambda0")}

    @property
    def bias_range_v(self) -> tuple[float, float]:
        return float(self.bias_v.min()), float(self.bias_v.max())

    def lambda_at(self, bias_v: float) -> tuple[float, float | None]:
        """Return Lambda at one bias and its stderr from the fit's covariance (None without)."""
        values = self.values
        value = float(sigmoid(bias_v, **values))
        covariance = self.result.covar
        if covariance is None or list(self.result.var_names) != ["L", "k", "V0", "Lambda0"]:
            return value, None
        gradient = sigmoid_gradient(bias_v, **values)
        variance = float(gradient @ covariance @ gradient)
        return value, math.sqrt(variance) if variance >= 0 else None


def fit_sigmoid(
    bias_v: np.ndarray,
    lambda_values: np.ndarray,
    lambda_stderrs: np.ndarray | None,
    fit_warnings: FitWarnings,
) -> SigmoidFit | None:
    """Fit Lambda(V) to the per-bias decay factors; return None when there are too few biases.

    Points are weighted by 1 / stderr(Lambda) when every point has one, and the parameter
    errors then grow by sqrt(reduced chi-square) when the points scatter more than their
    errors (``scale_uncertainties``). Without weights, lmfit scales the covariance by the
    reduced chi-square, so the errors come from the scatter alone.
    """
    model = SigmoidModel()
    where = "sigmoid Lambda(V)"
    if not has_enough_points(len(bias_v), len(model.param_names), where, fit_warnings):
        return None

    weights = None
    if lambda_stderrs is not None and np.all(np.isfinite(lambda_stderrs)) and np.all(lambda_stderrs > 0):
        weights = 1.0 / lambda_stderrs
    else:
        lambda_stderrs = None
        log.info("%s: unweighted fit, because some Lambda points have no stderr", where)

    params = model.guess(lambda_values, bias_v=bias_v)
    result = model.fit(
        lambda_values, params, bias_v=bias_v, weights=weights, scale_covar=weights is None
    )
    if weights is not None:
        scale_uncertainties(result)
    check_fit(result, where, fit_warnings)
    return SigmoidFit(result, np.asarray(bias_v), np.asarray(lambda_values), lambda_stderrs)


def bias_for_lambda(
    lambda_value,
    L: float,
    k: float,
    V0: float,
    Lambda0: float,
    lambda_min: float,
    lambda_max: float,
):
    """Return the bias in V that gives the decay factor ``lambda_value`` (scalar or array).

    V = V0 - ln(L / (Lambda - Lambda0) - 1) / k. Raises ``ValueError`` naming the value and
    the range when any Lambda lies outside ``[lambda_min, lambda_max]``, the range the
    device reaches over the measured biases.
    """
    values = np.asarray(lambda_value, dtype=float)
    outside = ~((values >= lambda_min) & (values <= lambda_max))
    if outside.any():
        first = float(values.reshape(-1)[np.flatnonzero(outside.reshape(-1))[0]])
        raise ValueError(
            f"Lambda {first!r} is outside the reachable range [{lambda_min:.6g}, "
            f"{lambda_max:.6g}] ({int(outside.sum())} value(s) outside); clamp Lambda into "
            "the range first"
        )
    bias = V0 - np.log(L / (values - Lambda0) - 1.0) / k
    return float(bias) if bias.ndim == 0 else bias
