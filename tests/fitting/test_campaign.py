"""Fitting a whole synthetic campaign: ground truth recovered, bad data reported."""

import math

import numpy as np
import pandas as pd
import pytest

from fitting.campaign import fit_campaign
from fitting.decay_factor import bias_for_lambda
from fitting.errors import FitQualityError, ResultsFileError

# A fitted value must lie within this many of its own standard errors of the truth.
PULL_LIMIT = 4.0


def assert_within_stderr(item, expected, name):
    assert item["stderr"] is not None, name
    assert abs(item["value"] - expected) < PULL_LIMIT * item["stderr"], (
        f"{name}: {item['value']!r} +- {item['stderr']!r}, expected {expected!r}"
    )


def test_ground_truth_recovered(campaign_fit, truth, small_plan):
    document = campaign_fit.document
    sigmoid = document["decay"]["sigmoid"]
    for name in ("L", "k", "V0", "Lambda0"):
        assert_within_stderr(sigmoid[name], getattr(truth, name), f"sigmoid {name}")
    assert_within_stderr(document["decay"]["lambda_min"], float(truth.lambda_at(-0.6)), "lambda_min")
    assert_within_stderr(document["decay"]["lambda_max"], float(truth.lambda_at(0.6)), "lambda_max")
    for point in document["decay"]["points"]:
        assert_within_stderr(point["tau"], float(truth.tau_s(point["bias_v"])), f"tau at {point['bias_v']}")
        assert_within_stderr(point["lambda"], float(truth.lambda_at(point["bias_v"])), "lambda")
    assert_within_stderr(document["pulse_energy"]["c"], truth.c_j, "c")
    assert_within_stderr(document["pulse_energy"]["alpha"], truth.alpha, "alpha")
    assert_within_stderr(document["conductance"]["g_min"], truth.pre_set_s, "g_min")
    assert_within_stderr(document["conductance"]["pre_set"], truth.pre_set_s, "pre_set")
    assert_within_stderr(document["conductance"]["g_max"], truth.levels_s[-1], "g_max")
    for level, expected in zip(document["conductance"]["levels"], truth.levels_s):
        assert_within_stderr(level["g"], expected, f"level {level['level']}")
    top = float(truth.df_s(max(small_plan.amplitudes_v), max(small_plan.widths_s)))
    assert_within_stderr(document["short_term"]["df_max"], top, "df_max")


def test_published_rules_applied(campaign_fit):
    document = campaign_fit.document
    assert document["conductance"]["levels_source"] == "long-term-levels"
    assert len(document["conductance"]["levels"]) == 4
    assert document["conductance"]["g_min"]["source"] == "set (reads before the SET train)"
    largest_std = max(row["df_std_s"] for row in document["short_term"]["table"])
    assert document["short_term"]["df_std_max"]["value"] == largest_std
    df_step = document["short_term"]["df_step"]["value"]
    assert df_step == pytest.approx(math.ceil(largest_std / 1e-9) * 1e-9)
    assert document["conductance"]["siemens_per_weight_unit"]["value"] == pytest.approx(2 * df_step)
    assert document["bias_power"]["v_bias"]["value"] == pytest.approx(0.6)
    assert document["conductance"]["read_voltage"]["value"] == pytest.approx(0.6)
    assert document["decay"]["step_interval_s"] == {"value": 1.0, "stderr": None, "unit": "s"}
    assert document["warnings"] == []
    assert {item["protocol"] for item in document["provenance"]["inputs"]} == {
        "bias-decay", "short-term", "long-term-levels", "set",
    }
    assert document["provenance"]["bench"]["name"] == "synthetic"


def test_model_comparison_prefers_exponential(campaign_fit):
    comparison = campaign_fit.document["decay"]["model_comparison"]
    assert all(entry["preferred"] == "exponential" for entry in comparison)


def test_validity_ranges(campaign_fit, small_plan):
    validity = campaign_fit.document["validity"]
    assert validity["sigmoid"]["bias_v"] == [-0.6, 0.6]
    assert validity["short_term_model"]["amplitude_v"] == [2.0, 3.5]
    assert validity["short_term_model"]["width_s"] == pytest.approx([20e-6, 500e-6])
    assert validity["decay_curves"]["time_since_pulse_s"][0] > 0


def test_inverse_sigmoid_on_fitted_values(campaign_fit):
    decay = campaign_fit.document["decay"]
    parameters = {name: decay["sigmoid"][name]["value"] for name in ("L", "k", "V0", "Lambda0")}
    low, high = decay["lambda_min"]["value"], decay["lambda_max"]["value"]
    assert bias_for_lambda(low, **parameters, lambda_min=low, lambda_max=high) == pytest.approx(-0.6)
    assert bias_for_lambda(high, **parameters, lambda_min=low, lambda_max=high) == pytest.approx(0.6)


def test_step_interval_changes_lambda_not_tau(campaign_dir, campaign_fit):
    half = fit_campaign(campaign_dir, step_interval_s=0.5).document["decay"]
    reference = campaign_fit.document["decay"]
    for fast, slow in zip(half["points"], reference["points"]):
        assert fast["tau"]["value"] == pytest.approx(slow["tau"]["value"])
        assert fast["lambda"]["value"] == pytest.approx(math.sqrt(slow["lambda"]["value"]))
    assert half["step_interval_s"]["value"] == 0.5


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_step_interval(campaign_dir, bad):
    with pytest.raises(ValueError, match="step_interval_s must be a positive number"):
        fit_campaign(campaign_dir, step_interval_s=bad)


def test_missing_protocol_named(fresh_campaign):
    paths = fresh_campaign(protocols=("short-term", "long-term-levels"))
    with pytest.raises(ResultsFileError, match="no results file of the bias-decay protocol"):
        fit_campaign(paths["short-term"].parent)


def test_levels_fall_back_to_short_term(fresh_campaign, truth):
    paths = fresh_campaign(protocols=("short-term", "bias-decay"))
    document = fit_campaign(paths["short-term"].parent).document
    assert document["conductance"]["levels_source"] == "short-term"
    assert_within_stderr(document["conductance"]["g_min"], truth.levels_s[0], "g_min")


def rewrite(path, change):
    """Apply ``change`` to the data rows of a results file, keeping its comment lines."""
    lines = path.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#") and not line.startswith("#Run status")]
    trailer = [line for line in lines if line.startswith("#Run status")]
    frame = pd.read_csv(path, comment="#")
    frame = change(frame)
    path.write_text("".join(header) + frame.to_csv(index=False, float_format="%.10g") + "".join(trailer))


def test_wrong_unit_in_campaign(fresh_campaign):
    paths = fresh_campaign()
    rewrite(paths["bias-decay"], lambda frame: frame.rename(columns={"Conductance (S)": "Conductance (nS)"}))
    with pytest.raises(ResultsFileError, match="'Conductance \\(nS\\)' is in nS"):
        fit_campaign(paths["bias-decay"].parent, continue_on_warning=True)


def test_missing_column_in_campaign(fresh_campaign):
    paths = fresh_campaign()
    rewrite(paths["short-term"], lambda frame: frame.drop(columns=["Repeat"]))
    with pytest.raises(ResultsFileError, match="missing column 'Repeat'"):
        fit_campaign(paths["short-term"].parent)


def test_nan_rows_error_or_warning(fresh_campaign):
    paths = fresh_campaign()

    def add_nan(frame):
        frame.loc[[30, 31], "Conductance (S)"] = np.nan
        return frame

    rewrite(paths["bias-decay"], add_nan)
    with pytest.raises(FitQualityError, match="2 rows hold NaN"):
        fit_campaign(paths["bias-decay"].parent)
    fit = fit_campaign(paths["bias-decay"].parent, continue_on_warning=True)
    assert len(fit.document["warnings"]) == 1
    assert "NaN" in fit.document["warnings"][0]["message"]


def test_backward_clock_error_or_warning(fresh_campaign):
    paths = fresh_campaign()

    def reverse_time(frame):
        frame.loc[40, "Time (s)"] = 0.0
        return frame

    rewrite(paths["short-term"], reverse_time)
    with pytest.raises(FitQualityError, match="'Time \\(s\\)' decreases"):
        fit_campaign(paths["short-term"].parent)
    fit = fit_campaign(paths["short-term"].parent, continue_on_warning=True)
    assert "decreases" in fit.document["warnings"][0]["message"]


def test_too_few_biases_cannot_be_written(fresh_campaign):
    paths = fresh_campaign()
    rewrite(paths["bias-decay"], lambda frame: frame[frame["Bias (V)"] < 0.1])
    for continue_on_warning in (False, True):
        with pytest.raises(FitQualityError, match=r"at least 5 biases .* got 3 \(-0.6 V, -0.3 V, \+0 V\)"):
            fit_campaign(paths["bias-decay"].parent, continue_on_warning=continue_on_warning)


def test_aborted_run_listed_as_warning(fresh_campaign):
    paths = fresh_campaign()
    path = paths["long-term-levels"]
    path.write_text(path.read_text().replace('"status": "completed"', '"status": "aborted"'))
    with pytest.raises(FitQualityError, match="status 'aborted'"):
        fit_campaign(path.parent)
    fit = fit_campaign(path.parent, continue_on_warning=True)
    inputs = {item["protocol"]: item for item in fit.document["provenance"]["inputs"]}
    assert inputs["long-term-levels"]["status"] == "aborted"
    assert "aborted" in fit.document["warnings"][0]["message"]


def test_same_seed_same_numbers(fresh_campaign, campaign_fit, small_plan):
    paths = fresh_campaign(seed=11, plan=small_plan)
    again = fit_campaign(paths["short-term"].parent).document
    assert again["decay"]["sigmoid"] == campaign_fit.document["decay"]["sigmoid"]
    assert again["pulse_energy"] == campaign_fit.document["pulse_energy"]
