"""Decay fits: exponential and stretched models, per-curve checks, combined tau(bias)."""

import math

import numpy as np
import pytest

from fitting.decay import (
    DecayCurve,
    combine_repeats,
    compare_decay_models,
    fit_bias_decay,
    fit_decay_curve,
)
from fitting.decay_models import (
    ExponentialDecayModel,
    StretchedExponentialDecayModel,
    exponential_decay,
    stretched_exponential_decay,
)
from fitting.errors import FitQualityError, FitWarnings
from fitting.results_files import read_results_file
from fitting.synthetic import bias_decay_frame, write_results_file

TIMES_S = np.geomspace(1e-3, 30.0, 40)


def noisy(values, seed, sigma=0.05):
    return values + sigma * np.random.default_rng(seed).standard_normal(values.shape)


def test_exponential_recovers_tau_within_stderr():
    data = noisy(exponential_decay(TIMES_S, amplitude_ns=20.0, tau_s=2.5, offset_ns=12.0), seed=1)
    model = ExponentialDecayModel()
    result = model.fit(data, model.guess(data, time_s=TIMES_S), time_s=TIMES_S)
    tau = result.params["tau_s"]
    assert result.success
    assert abs(tau.value - 2.5) < 4 * tau.stderr
    assert abs(result.params["offset_ns"].value - 12.0) < 4 * result.params["offset_ns"].stderr


def test_stretched_recovers_beta_within_stderr():
    data = noisy(stretched_exponential_decay(TIMES_S, 20.0, 2.5, 0.6, 12.0), seed=2)
    model = StretchedExponentialDecayModel()
    result = model.fit(data, model.guess(data, time_s=TIMES_S), time_s=TIMES_S)
    beta = result.params["beta"]
    assert abs(beta.value - 0.6) < 4 * beta.stderr


@pytest.mark.parametrize(("beta", "preferred"), [(1.0, "exponential"), (0.5, "stretched_exponential")])
def test_model_comparison_prefers_true_model(beta, preferred):
    curves = []
    for repeat in range(3):
        data = noisy(stretched_exponential_decay(TIMES_S, 20.0, 2.0, beta, 12.0), seed=10 + repeat)
        curves.append(fit_decay_curve(DecayCurve(0.1, repeat, TIMES_S, data), FitWarnings(True)))
    from fitting.decay import BiasDecayPoint

    comparison = compare_decay_models(BiasDecayPoint(0.1, 2.0, 0.1, 20.0, None, curves))
    assert comparison["preferred"] == preferred
    assert comparison["n_curves"] == 3


def test_too_few_points_flagged():
    curve = DecayCurve(0.0, 0, TIMES_S[:3], np.array([30.0, 20.0, 15.0]))
    with pytest.raises(FitQualityError, match="too few points to fit: 3 points"):
        fit_decay_curve(curve, FitWarnings())
    assert not fit_decay_curve(curve, FitWarnings(continue_on_warning=True)).usable


def test_flat_curve_flagged_at_bound():
    data = noisy(np.full(TIMES_S.shape, 12.0), seed=3)
    warnings = FitWarnings(continue_on_warning=True)
    curve = fit_decay_curve(DecayCurve(0.0, 0, TIMES_S, data), warnings)
    assert not curve.usable
    assert "bound" in warnings.entries[0]["message"] or "uncertainty" in warnings.entries[0]["message"]


def test_combine_repeats_internal_and_external():
    mean, stderr = combine_repeats([1.0, 1.0], [0.1, 0.1])
    assert mean == pytest.approx(1.0)
    assert stderr == pytest.approx(0.1 / math.sqrt(2))
    # Repeats that disagree far beyond their errors get the scatter as error.
    mean, stderr = combine_repeats([1.0, 2.0], [0.01, 0.01])
    assert mean == pytest.approx(1.5)
    assert stderr == pytest.approx(0.5)
    mean, stderr = combine_repeats([3.0], [0.2])
    assert (mean, stderr) == (3.0, 0.2)


def test_bias_decay_recovers_tau(tmp_path, truth, small_plan):
    frame = bias_decay_frame(truth, small_plan, np.random.default_rng(5))
    results = read_results_file(write_results_file(tmp_path / "d.csv", frame, "bias-decay"))
    analysis = fit_bias_decay(results, FitWarnings())
    assert [point.bias_v for point in analysis.points] == list(small_plan.biases_v)
    for point in analysis.points:
        expected = float(truth.tau_s(point.bias_v))
        assert abs(point.tau_s - expected) < 4 * point.tau_stderr_s, point.bias_v
        assert point.n_curves == small_plan.decay_repeats
    assert analysis.time_since_pulse_range_s[1] == pytest.approx(small_plan.decay_last_read_s, rel=1e-3)


def test_bias_decay_backward_time_since_pulse(tmp_path, truth, small_plan):
    frame = bias_decay_frame(truth, small_plan, np.random.default_rng(5))
    rows = frame.index[(frame["Bias (V)"] == 0.0) & (frame["Repeat"] == 1)]
    frame.loc[rows[5], "Time since pulse (s)"] = frame.loc[rows[4], "Time since pulse (s)"] / 2
    results = read_results_file(write_results_file(tmp_path / "d.csv", frame, "bias-decay"))
    with pytest.raises(FitQualityError, match="does not increase"):
        fit_bias_decay(results, FitWarnings())
    warnings = FitWarnings(continue_on_warning=True)
    analysis = fit_bias_decay(results, warnings)
    at_zero = next(point for point in analysis.points if point.bias_v == 0.0)
    assert at_zero.n_curves == small_plan.decay_repeats - 1
    assert "repeat 1" in warnings.entries[0]["where"]
