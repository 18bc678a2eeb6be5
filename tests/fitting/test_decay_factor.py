"""Lambda per step, the sigmoid Lambda(V), its reachable range and its inverse."""

import math

import numpy as np
import pytest

from fitting.decay_factor import (
    bias_for_lambda,
    fit_sigmoid,
    lambda_from_tau,
    sigmoid,
    sigmoid_gradient,
)
from fitting.errors import FitQualityError, FitWarnings

TRUE = {"L": 0.84, "k": 8.0, "V0": 0.05, "Lambda0": 0.08}
BIASES_V = np.linspace(-0.6, 0.6, 13)


def test_lambda_from_tau_and_stderr():
    value, stderr = lambda_from_tau(2.0, 0.1, 1.0)
    assert value == pytest.approx(math.exp(-0.5))
    # Numerical derivative of exp(-dt / tau) by tau.
    step = 1e-6
    derivative = (math.exp(-1.0 / (2.0 + step)) - math.exp(-1.0 / (2.0 - step))) / (2 * step)
    assert stderr == pytest.approx(derivative * 0.1, rel=1e-6)
    assert lambda_from_tau(2.0, None, 1.0)[1] is None
    assert lambda_from_tau(2.0, 0.1, 0.5)[0] == pytest.approx(math.exp(-0.25))


def test_lambda_from_tau_rejects_non_positive_tau():
    with pytest.raises(ValueError, match="tau must be positive"):
        lambda_from_tau(0.0, None, 1.0)


def test_sigmoid_gradient_matches_numeric():
    values = dict(TRUE)
    gradient = sigmoid_gradient(0.2, **values)
    for index, name in enumerate(("L", "k", "V0", "Lambda0")):
        shifted_up = dict(values, **{name: values[name] + 1e-6})
        shifted_down = dict(values, **{name: values[name] - 1e-6})
        numeric = (sigmoid(0.2, **shifted_up) - sigmoid(0.2, **shifted_down)) / 2e-6
        assert gradient[index] == pytest.approx(numeric, rel=1e-5, abs=1e-9), name


def test_sigmoid_fit_recovers_truth_within_stderr():
    rng = np.random.default_rng(3)
    stderrs = np.full(BIASES_V.shape, 0.004)
    data = sigmoid(BIASES_V, **TRUE) + stderrs * rng.standard_normal(BIASES_V.shape)
    fit = fit_sigmoid(BIASES_V, data, stderrs, FitWarnings())
    for name, expected in TRUE.items():
        parameter = fit.result.params[name]
        assert abs(parameter.value - expected) < 4 * parameter.stderr, name
    low, low_stderr = fit.lambda_at(-0.6)
    assert abs(low - sigmoid(-0.6, **TRUE)) < 4 * low_stderr


def test_sigmoid_too_few_biases():
    with pytest.raises(FitQualityError, match="too few points to fit: 4 points"):
        fit_sigmoid(BIASES_V[:4], sigmoid(BIASES_V[:4], **TRUE), None, FitWarnings())
    assert fit_sigmoid(BIASES_V[:4], sigmoid(BIASES_V[:4], **TRUE), None, FitWarnings(True)) is None


def test_sigmoid_falling_data_hits_bound():
    data = sigmoid(-BIASES_V, **TRUE)
    with pytest.raises(FitQualityError, match="bound"):
        fit_sigmoid(BIASES_V, data, np.full(BIASES_V.shape, 0.004), FitWarnings())


def test_bias_for_lambda_inverts_sigmoid():
    low, high = float(sigmoid(-0.6, **TRUE)), float(sigmoid(0.6, **TRUE))
    biases = np.array([-0.6, -0.1, 0.0, 0.3, 0.6])
    lambdas = sigmoid(biases, **TRUE)
    recovered = bias_for_lambda(lambdas, **TRUE, lambda_min=low, lambda_max=high)
    assert recovered == pytest.approx(biases, abs=1e-9)
    assert bias_for_lambda(float(lambdas[1]), **TRUE, lambda_min=low, lambda_max=high) == pytest.approx(-0.1)


@pytest.mark.parametrize("value", [0.05, 0.95, float("nan")])
def test_bias_for_lambda_outside_range(value):
    with pytest.raises(ValueError, match="outside the reachable range"):
        bias_for_lambda(value, **TRUE, lambda_min=0.0868, lambda_max=0.913)
