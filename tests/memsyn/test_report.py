"""HTML report: every section is drawn from its inputs, or listed with the reason it is missing."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memsyn.report import build_report
from memsyn.report.game_figures import _figure_parameters
from memsyn.report.measurement_data import identify_protocol
from memsyn.report.measurement_figures import pulse_responses

REPO = Path(__file__).resolve().parents[2]
SECTIONS = (
    "iv-hysteresis", "set-transition", "short-term-responses", "df-heat-map", "decay-curves",
    "lambda-bias", "pulse-energy", "training-curves", "synapse-trace", "energy-histograms",
    "energy-comparison", "energy-table",
)


def quantity(value, unit, stderr=None):
    return {"value": value, "stderr": stderr, "unit": unit}


def device_document():
    biases = [-0.6, 0.0, 0.6]
    taus = [0.4, 2.0, 12.0]
    return {
        "format": "memsyn-device",
        "version": 1,
        "short_term": {"table": [
            {"amplitude_v": a, "width_s": w, "repeats": 2, "df_mean_s": a * w * 1e-5, "df_std_s": 1e-10}
            for a in (2.0, 3.0) for w in (1e-4, 5e-4)
        ]},
        "decay": {
            "step_interval_s": quantity(1.0, "s"),
            "lambda_min": quantity(0.08, "1", 0.01),
            "lambda_max": quantity(0.92, "1", 0.01),
            "sigmoid": {"L": quantity(0.84, "1", 0.01), "k": quantity(8.0, "1/V", 0.5),
                        "V0": quantity(0.0, "V", 0.01), "Lambda0": quantity(0.08, "1", 0.01)},
            "points": [{"bias_v": b, "tau": quantity(t, "s", 0.01), "lambda": quantity(np.exp(-1 / t), "1", 0.01)}
                       for b, t in zip(biases, taus)],
        },
        "pulse_energy": {"c": quantity(3e-11, "J", 1e-12), "alpha": quantity(1.5, "1", 0.05)},
    }


def write_measurements(folder: Path):
    folder.mkdir(parents=True)
    voltage = np.concatenate([np.linspace(0, 2, 21), np.linspace(2, -2, 41), np.linspace(-2, 0, 21)])
    iv = pd.DataFrame({"Time (s)": np.arange(2 * voltage.size) * 0.02,
                       "Cycle": np.repeat([1, 2], voltage.size),
                       "Voltage (V)": np.tile(voltage, 2),
                       "Current (A)": np.tile(1e-7 * voltage**3, 2)})
    iv["Conductance (S)"] = iv["Current (A)"] / iv["Voltage (V)"].replace(0, np.nan)
    set_rows = pd.DataFrame({"Time (s)": [0.0, 1.0, 2.0, 60.0], "Phase": ["before", "after", "settle", "settle"],
                             "Voltage (V)": 0.6, "Current (A)": [7e-9, 1.1e-8, 1.1e-8, 1.05e-8]})
    set_rows["Conductance (S)"] = set_rows["Current (A)"] / 0.6

    rows = []
    for amplitude in (2.0, 3.0):
        for width in (1e-4, 5e-4):
            for repeat in (1, 2):
                df = amplitude * width * 1e-5
                for t in (-0.002, -0.001, 0.001, 0.01, 0.1, 1.0):
                    g = 1.2e-8 + (df * np.exp(-t / 12.0) if t > 0 else 0.0)
                    rows.append({"Time (s)": 0.0, "Pulse amplitude (V)": amplitude, "Pulse width (s)": width,
                                 "Repeat": repeat, "Time since pulse (s)": t, "Voltage (V)": 0.6,
                                 "Current (A)": g * 0.6, "Conductance (S)": g,
                                 "Pulse energy (J)": 3e-11 * (df * 1e9) ** 1.5})
    short = pd.DataFrame(rows)

    rows = []
    for bias, tau in ((-0.6, 0.4), (0.0, 2.0), (0.6, 12.0)):
        for repeat in (1, 2):
            for t in (-0.001, 0.001, 0.01, 0.1, 1.0, 10.0):
                g = 1.2e-8 + (3.8e-8 * np.exp(-t / tau) if t > 0 else 0.0)
                rows.append({"Time (s)": 0.0, "Bias (V)": bias, "Repeat": repeat, "Pulse amplitude (V)": 3.5,
                             "Pulse width (s)": 5e-4, "Time since pulse (s)": t,
                             "Scheduled time since pulse (s)": t, "Voltage (V)": 0.6,
                             "Current (A)": g * 0.6, "Conductance (S)": g})
    decay = pd.DataFrame(rows)

    for name, frame in (("01-iv.csv", iv), ("02-set.csv", set_rows), ("03-short.csv", short),
                        ("04-decay.csv", decay)):
        (folder / name).write_text("#Procedure: <test>\n" + frame.to_csv(index=False))


def write_training(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"frames": [1000, 2000, 3000], "episode": [1, 2, 3], "env_index": 0,
                  "return": [-21.0, -20.0, -18.0], "length_steps": [800, 900, 1000],
                  "truncated": False}).to_csv(folder / "episodes.csv", index=False)
    pd.DataFrame({"frames": [1000, 2000, 3000], "policy_loss": [0.1, 0.2, 0.1],
                  "value_loss": [0.3, 0.2, 0.1], "entropy": [1.7, 1.6, 1.5]}).to_csv(folder / "updates.csv", index=False)


def write_energy(run_dir: Path):
    from stpn.energy import estimate_energy
    from stpn.energy_synthetic import synthetic_trace, write_trace

    arrays = synthetic_trace(np.random.default_rng(3), 4, 6, 40, episode_starts=(0, 20))
    trace = write_trace(run_dir / "trace.npz", arrays)
    estimate_energy(REPO / "stpn" / "data" / "published-device.json", trace, run_dir / "energy")


def section_text(page: str, key: str) -> str:
    match = re.search(rf"<section id='{key}'>(.*?)</section>", page, re.DOTALL)
    assert match is not None, f"section {key} missing from the page"
    return match.group(1)


def test_empty_run_folder_lists_reasons(tmp_path):
    index = build_report(tmp_path)
    page = index.read_text()
    for key in SECTIONS:
        assert "Not drawn" in section_text(page, key)
    assert "needs an iv-sweep results file" in page
    assert "needs device.json" in page


def test_missing_run_folder_is_usage_error(tmp_path):
    from memsyn.errors import UsageError

    with pytest.raises(UsageError, match="not found"):
        build_report(tmp_path / "nope")


@pytest.mark.slow
def test_full_run_folder_draws_every_section(tmp_path):
    write_measurements(tmp_path / "measurements")
    (tmp_path / "device.json").write_text(json.dumps(device_document()))
    write_training(tmp_path / "agent")
    write_energy(tmp_path)

    index = build_report(tmp_path)
    page = index.read_text()
    for key in SECTIONS:
        text = section_text(page, key)
        assert "Not drawn" not in text, f"{key}: {text[:300]}"
    for key in SECTIONS[:-1]:
        assert (index.parent / f"{key}.png").exists()
    assert page.count("data:image/png;base64,") == len(SECTIONS) - 1
    assert "tau at -0.60 V (s)" in page


def test_broken_device_file_costs_only_its_figures(tmp_path):
    write_measurements(tmp_path / "measurements")
    document = device_document()
    del document["decay"]["sigmoid"]
    (tmp_path / "device.json").write_text(json.dumps(document))

    page = build_report(tmp_path).read_text()
    assert "Not drawn" in section_text(page, "lambda-bias")
    assert "Not drawn" not in section_text(page, "iv-hysteresis")
    assert "Not drawn" not in section_text(page, "decay-curves")


def test_protocol_recognised_from_columns():
    assert identify_protocol(["Time (s)", "Cycle", "Voltage (V)", "Current (A)", "Conductance (S)"]) == "iv-sweep"
    assert identify_protocol(["Level", "Pulse amplitude (V)", "Pulse width (s)", "Time since pulse (s)",
                              "Conductance (S)"]) == "long-term-levels"
    assert identify_protocol(["Bias (V)", "Time since pulse (s)", "Conductance (S)"]) == "bias-decay"
    assert identify_protocol(["Time (s)", "Voltage (V)"]) is None


def test_pulse_response_uses_first_read_after_pulse():
    data = pd.DataFrame({
        "Pulse amplitude (V)": 2.0, "Pulse width (s)": 1e-4, "Repeat": 1,
        "Time since pulse (s)": [-0.002, -0.001, 0.001, 0.01],
        "Conductance (S)": [1.0e-8, 1.2e-8, 1.6e-8, 1.5e-8],
        "Pulse energy (J)": 5e-11,
    })
    pulses = pulse_responses(data)
    assert len(pulses) == 1
    assert pulses["dF (S)"].iloc[0] == pytest.approx(0.5e-8)
    assert pulses["Pulse energy (J)"].iloc[0] == 5e-11


def test_synapse_trace_parameters_readable():
    section = {"post": 3, "pre": 7, "updates": 12,
               "abs_df_total": {"value": 6.0, "unit": "weight units"},
               "pulse": {"value": 2e-10, "unit": "J"}, "bias_learned": None}
    parameters = _figure_parameters("synapse-trace", {"memristor": {"max_update_synapse": section}})
    assert parameters["postsynaptic unit"] == 3
    assert parameters["updates in the game"] == 12
    assert "total |dF|" in parameters
    assert "pulse energy" in parameters
    assert "bias energy, learned Lambda" not in parameters
    assert "abs_df_total" not in parameters
