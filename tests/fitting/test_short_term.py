"""Short-term response: dF per pulse, the table, the discretisation step and df_max."""

import numpy as np
import pandas as pd
import pytest

from fitting.errors import FitQualityError, FitWarnings
from fitting.results_files import read_results_file
from fitting.short_term import (
    ResponseCell,
    df_max_from_table,
    df_step_from_spread,
    extract_pulse_responses,
    tabulate_responses,
)
from fitting.synthetic import SHORT_TERM_COLUMNS, short_term_frame, write_results_file


def pulse_rows(amplitude_v, width_s, repeat, baseline, after, energy=1e-11, start_s=0.0):
    """Rows of one pulse: baseline conductances at t < 0, then reads after it."""
    rows = []
    times = [-(len(baseline) - index) * 0.1 for index in range(len(baseline))]
    times += [1e-3 * 10**index for index in range(len(after))]
    for since, g in zip(times, [*baseline, *after]):
        rows.append({
            "Time (s)": start_s + 1.0 + since, "Pulse amplitude (V)": amplitude_v,
            "Pulse width (s)": width_s, "Repeat": repeat, "Time since pulse (s)": since,
            "Voltage (V)": 0.6, "Current (A)": g * 0.6, "Conductance (S)": g,
            "Pulse energy (J)": energy,
        })
    return rows


def write_rows(tmp_path, rows):
    frame = pd.DataFrame(rows, columns=list(SHORT_TERM_COLUMNS))
    return read_results_file(write_results_file(tmp_path / "st.csv", frame, "short-term"))


def test_df_is_first_read_minus_baseline_mean(tmp_path):
    rows = pulse_rows(3.0, 1e-4, 0, [10e-9, 12e-9], [20e-9, 15e-9], energy=2e-11)
    rows += pulse_rows(3.0, 1e-4, 1, [11e-9, 11e-9, 11e-9], [21.5e-9, 12e-9], start_s=10.0)
    pulses = extract_pulse_responses(write_rows(tmp_path, rows), FitWarnings())
    assert [pulse.df_s for pulse in pulses] == pytest.approx([9e-9, 10.5e-9])
    assert pulses[0].baseline_s == pytest.approx(11e-9)
    assert pulses[0].first_read_delay_s == pytest.approx(1e-3)
    assert pulses[0].energy_j == pytest.approx(2e-11)
    assert pulses[1].n_baseline_reads == 3

    cells = tabulate_responses(pulses, "short-term", FitWarnings())
    assert len(cells) == 1
    assert cells[0].repeats == 2
    assert cells[0].df_mean_s == pytest.approx(9.75e-9)
    assert cells[0].df_std_s == pytest.approx(np.std([9e-9, 10.5e-9], ddof=1))


def test_energy_taken_from_finite_rows(tmp_path):
    rows = pulse_rows(3.0, 1e-4, 0, [10e-9, 10e-9], [20e-9], energy=3e-11)
    rows[0]["Pulse energy (J)"] = np.nan
    pulses = extract_pulse_responses(write_rows(tmp_path, rows), FitWarnings())
    assert pulses[0].energy_j == pytest.approx(3e-11)


def test_pulse_without_energy_flagged(tmp_path):
    rows = pulse_rows(3.0, 1e-4, 0, [10e-9, 10e-9], [20e-9], energy=np.nan)
    with pytest.raises(FitQualityError, match="no finite 'Pulse energy"):
        extract_pulse_responses(write_rows(tmp_path, rows), FitWarnings())


def test_pulse_without_baseline_flagged(tmp_path):
    rows = pulse_rows(3.0, 1e-4, 0, [], [20e-9, 15e-9])
    rows += pulse_rows(3.0, 1e-4, 1, [10e-9], [20e-9], start_s=10.0)
    results = write_rows(tmp_path, rows)
    with pytest.raises(FitQualityError, match="no baseline reads before the pulse"):
        extract_pulse_responses(results, FitWarnings())
    warnings = FitWarnings(continue_on_warning=True)
    assert [pulse.repeat for pulse in extract_pulse_responses(results, warnings)] == [1]
    assert "repeat 0" in warnings.entries[0]["where"]


def test_pulse_without_read_after_flagged(tmp_path):
    rows = pulse_rows(3.0, 1e-4, 0, [10e-9, 10e-9], [])
    with pytest.raises(FitQualityError, match="no reads after the pulse"):
        extract_pulse_responses(write_rows(tmp_path, rows), FitWarnings())


def test_single_repeat_flagged(tmp_path):
    pulses = extract_pulse_responses(
        write_rows(tmp_path, pulse_rows(2.0, 2e-5, 0, [10e-9, 10e-9], [11e-9])), FitWarnings()
    )
    with pytest.raises(FitQualityError, match="only one repeat"):
        tabulate_responses(pulses, "short-term", FitWarnings())
    cells = tabulate_responses(pulses, "short-term", FitWarnings(continue_on_warning=True))
    assert cells[0].df_std_s is None


def cell(df_std_s, df_mean_s=5e-9):
    return ResponseCell(3.0, 1e-4, 5, df_mean_s, df_std_s, 1e-11, 1e-12, 1e-3)


@pytest.mark.parametrize(
    ("largest_std_s", "expected_step_s"),
    [(0.3e-9, 1e-9), (0.99e-9, 1e-9), (1.0e-9, 1e-9), (1.2e-9, 2e-9)],
)
def test_df_step_rounds_to_default_grid(largest_std_s, expected_step_s):
    step_s, largest = df_step_from_spread([cell(0.1e-9), cell(largest_std_s), cell(None)])
    assert step_s == pytest.approx(expected_step_s)
    assert largest == largest_std_s


@pytest.mark.parametrize(
    ("largest_std_s", "expected_step_s"),
    [(0.3e-9, 0.5e-9), (0.5e-9, 0.5e-9), (0.6e-9, 1e-9), (1.2e-9, 1.5e-9)],
)
def test_df_step_rounds_to_finer_grid(largest_std_s, expected_step_s):
    step_s, _ = df_step_from_spread([cell(0.1e-9), cell(largest_std_s)], grid_s=0.5e-9)
    assert step_s == pytest.approx(expected_step_s)


def test_df_step_needs_a_spread():
    with pytest.raises(ValueError, match="spread is unknown"):
        df_step_from_spread([cell(None)])


def test_df_max_is_largest_mean():
    cells = [cell(0.1e-9, 5e-9), cell(0.2e-9, 38.6e-9), cell(0.1e-9, 20e-9)]
    assert df_max_from_table(cells).df_mean_s == 38.6e-9


def test_synthetic_grid_table(tmp_path, truth, small_plan):
    frame = short_term_frame(truth, small_plan, np.random.default_rng(4))
    results = read_results_file(write_results_file(tmp_path / "st.csv", frame, "short-term"))
    cells = tabulate_responses(extract_pulse_responses(results, FitWarnings()), "short-term", FitWarnings())
    assert len(cells) == len(small_plan.amplitudes_v) * len(small_plan.widths_s)
    for item in cells:
        expected = float(truth.df_s(item.amplitude_v, item.width_s))
        assert abs(item.df_mean_s - expected) < 4 * item.df_stderr_s
        assert item.repeats == small_plan.repeats
