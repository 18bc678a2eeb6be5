"""The dF surface, the pulse-energy power law and the conductance levels."""

import numpy as np
import pytest

from fitting.conductance import levels_from_pulses, read_voltage_v, siemens_per_weight_unit
from fitting.df_models import describe_surface, fit_df_surface
from fitting.errors import FitQualityError, FitWarnings
from fitting.pulse_energy import fit_pulse_energy, pulse_energy_j
from fitting.results_files import read_results_file
from fitting.short_term import PulseResponse
from fitting.synthetic import short_term_frame, write_results_file

AMPLITUDES_V = np.repeat([2.0, 2.5, 3.0, 3.5], 3)
WIDTHS_S = np.tile([20e-6, 100e-6, 500e-6], 4)


def surface_truth(amplitude_v, width_s):
    x = amplitude_v - 2.75
    y = np.log(width_s / 1e-4)
    return np.exp(1.6 + 1.2 * x + 0.7 * y - 0.1 * x**2 + 0.05 * x * y - 0.02 * y**2) * 1e-9


def saturate(df_s, saturation_per_ns):
    drive_ns = df_s * 1e9
    return (1 - np.exp(-saturation_per_ns * drive_ns)) / saturation_per_ns * 1e-9


def test_surface_recovers_saturation_within_stderr():
    rng = np.random.default_rng(12)
    true_df = saturate(surface_truth(AMPLITUDES_V, WIDTHS_S), 0.02)
    stderr = 0.005 * true_df
    measured = true_df + stderr * rng.standard_normal(true_df.shape)
    fit = fit_df_surface(AMPLITUDES_V, WIDTHS_S, measured, stderr, FitWarnings())
    saturation = fit.result.params["saturation_per_ns"]
    assert abs(saturation.value - 0.02) < 4 * saturation.stderr
    assert fit.max_relative_deviation() < 0.02


def test_surface_recovers_coefficients_within_stderr():
    rng = np.random.default_rng(8)
    true_df = surface_truth(AMPLITUDES_V, WIDTHS_S)
    stderr = 0.01 * true_df
    measured = true_df + stderr * rng.standard_normal(true_df.shape)
    fit = fit_df_surface(AMPLITUDES_V, WIDTHS_S, measured, stderr, FitWarnings())
    expected = {
        "log_df_ref": 1.6, "amplitude_slope_per_v": 1.2, "width_exponent": 0.7,
        "amplitude_curvature_per_v2": -0.1, "coupling_per_v": 0.05, "width_curvature": -0.02,
    }
    assert fit.amplitude_ref_v == pytest.approx(2.75)
    assert fit.width_ref_s == pytest.approx(1e-4)
    for name, value in expected.items():
        parameter = fit.result.params[name]
        assert abs(parameter.value - value) < 4 * parameter.stderr, name
    assert fit.predict_df(3.2, 2e-4) == pytest.approx(surface_truth(3.2, 2e-4), rel=0.03)
    assert fit.max_relative_deviation() < 0.05


def test_surface_rejects_points_outside_validity():
    true_df = surface_truth(AMPLITUDES_V, WIDTHS_S)
    measured = true_df * (1 + 0.01 * np.random.default_rng(1).standard_normal(true_df.shape))
    fit = fit_df_surface(AMPLITUDES_V, WIDTHS_S, measured, 0.01 * true_df, FitWarnings())
    with pytest.raises(ValueError, match="amplitude 4.0 V is outside the fitted range"):
        fit.predict_df(4.0, 1e-4)
    with pytest.raises(ValueError, match="width 1e-06 s is outside"):
        fit.predict_df(3.0, 1e-6)


def test_surface_small_grid_holds_quadratic_terms():
    amplitudes = np.array([2.0, 2.0, 3.0, 3.0])
    widths = np.array([1e-4, 5e-4, 1e-4, 5e-4])
    true_df = surface_truth(amplitudes, widths)
    fit = fit_df_surface(amplitudes, widths, true_df, None, FitWarnings(continue_on_warning=True))
    section = describe_surface(fit)
    assert section["parameters"]["amplitude_curvature_per_v2"]["fixed"] is True
    assert section["parameters"]["width_curvature"]["fixed"] is True
    assert section["parameters"]["saturation_per_ns"]["fixed"] is True
    assert section["parameters"]["coupling_per_v"]["fixed"] is True
    assert section["fit"]["n_parameters"] == 3


def test_surface_non_positive_mean_flagged():
    true_df = surface_truth(AMPLITUDES_V, WIDTHS_S)
    true_df[0] = -0.1e-9
    with pytest.raises(FitQualityError, match="mean dF <= 0"):
        fit_df_surface(AMPLITUDES_V, WIDTHS_S, true_df, None, FitWarnings())


def test_power_law_recovers_c_and_alpha_within_stderr():
    rng = np.random.default_rng(9)
    df_s = np.geomspace(0.7e-9, 38.6e-9, 12)
    energy = pulse_energy_j(df_s, 30e-12, 1.52) * np.exp(0.03 * rng.standard_normal(df_s.shape))
    fit = fit_pulse_energy(df_s, energy, FitWarnings())
    assert abs(fit.c_j - 30e-12) < 4 * fit.c_stderr_j
    assert abs(fit.alpha - 1.52) < 4 * fit.alpha_stderr
    assert fit.log_residual_rms == pytest.approx(0.03, rel=0.5)


def test_power_law_uses_magnitude_of_df():
    df_s = -np.geomspace(1e-9, 30e-9, 6)
    fit = fit_pulse_energy(df_s, pulse_energy_j(df_s, 30e-12, 1.5), FitWarnings())
    assert fit.alpha == pytest.approx(1.5)


def test_power_law_bad_points_flagged():
    df_s = np.array([0.0, 1e-9, 2e-9, 4e-9, 8e-9])
    energy = pulse_energy_j(df_s, 30e-12, 1.5)
    with pytest.raises(FitQualityError, match="1 of 5 points have a zero dF"):
        fit_pulse_energy(df_s, energy, FitWarnings())
    fit = fit_pulse_energy(df_s, energy, FitWarnings(continue_on_warning=True))
    assert len(fit.df_s) == 4


def test_power_law_too_few_points():
    with pytest.raises(FitQualityError, match="too few points"):
        fit_pulse_energy(np.array([1e-9, 2e-9]), np.array([3e-11, 8e-11]), FitWarnings())


def pulse(level, baseline_s, df_s=5e-9, std_s=0.05e-9):
    return PulseResponse(3.0, 1e-4, 0, level, df_s, baseline_s, std_s, 4, 1e-3, 1e-11)


def test_levels_sorted_with_stderr():
    pulses = [pulse(2, 16e-9), pulse(1, 12.1e-9), pulse(1, 11.9e-9), pulse(2, 16.2e-9)]
    levels = levels_from_pulses(pulses, "long-term-levels", FitWarnings())
    assert [level.level for level in levels] == [1, 2]
    assert levels[0].g_s == pytest.approx(12e-9)
    assert levels[0].g_stderr_s == pytest.approx(np.std([12.1e-9, 11.9e-9], ddof=1) / np.sqrt(2))
    assert levels[1].n_pulses == 2


def test_level_stderr_not_below_read_noise():
    levels = levels_from_pulses([pulse(1, 12e-9, std_s=1e-9), pulse(1, 12e-9, std_s=1e-9)], "x", FitWarnings())
    # Two equal baselines scatter by 0, but each baseline mean carries 1 nS / sqrt(4).
    assert levels[0].g_stderr_s == pytest.approx(np.sqrt(2 * (1e-9**2 / 4)) / 2)


def test_single_pulse_level_flagged():
    with pytest.raises(FitQualityError, match="only one pulse"):
        levels_from_pulses([pulse(3, 20e-9)], "long-term-levels", FitWarnings())


def test_read_voltage_spread_flagged(tmp_path, truth, small_plan):
    frame = short_term_frame(truth, small_plan, np.random.default_rng(0))
    results = read_results_file(write_results_file(tmp_path / "a.csv", frame, "short-term"))
    assert read_voltage_v(results, FitWarnings()) == pytest.approx(0.6)
    frame.loc[7, "Voltage (V)"] = 0.5
    results = read_results_file(write_results_file(tmp_path / "b.csv", frame, "short-term"))
    with pytest.raises(FitQualityError, match="read voltage varies from 0.5 V"):
        read_voltage_v(results, FitWarnings())


def test_weight_map_from_df_step():
    assert siemens_per_weight_unit(1e-9) == pytest.approx(2e-9)
    assert siemens_per_weight_unit(0.5e-9) == pytest.approx(1e-9)
