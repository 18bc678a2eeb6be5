"""Every protocol end to end on the simulated bench, with small parameter sets."""

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_PARAMETERS
from pymeasure.experiment import Results

from instruments.safety import SafetyLimits
from protocols import PROTOCOLS
from protocols.actions import AcquisitionSettings, BenchActions
from protocols.campaign import make_procedure
from protocols.plan import PulseTrain
from protocols.preflight import PreflightError
from protocols.results_file import read_run_status
from protocols.runner import run_procedure
from sim_backend.bench import build_simulated_bench

LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)

EXPECTED_COLUMNS = {
    "iv-sweep": ["Time (s)", "Cycle", "Voltage (V)", "Current (A)", "Conductance (S)"],
    "set": ["Time (s)", "Phase", "Voltage (V)", "Current (A)", "Conductance (S)"],
    "short-term": [
        "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat", "Time since pulse (s)",
        "Scheduled time since pulse (s)", "Voltage (V)", "Current (A)", "Conductance (S)",
        "Pulse energy (J)",
    ],
    "long-term-levels": [
        "Level", "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat",
        "Time since pulse (s)", "Scheduled time since pulse (s)", "Voltage (V)", "Current (A)",
        "Conductance (S)", "Pulse energy (J)",
    ],
    "bias-decay": [
        "Time (s)", "Bias (V)", "Repeat", "Pulse amplitude (V)", "Pulse width (s)",
        "Time since pulse (s)", "Scheduled time since pulse (s)", "Voltage (V)", "Current (A)",
        "Conductance (S)", "Pulse energy (J)",
    ],
}


def simulated_bench(seed=1):
    return build_simulated_bench(LIMITS, amplifier_gain_v_per_a=1e4, amplifier_mode="low_noise", seed=seed)


def run_small(protocol, tmp_path, seed=1, **overrides):
    bench = simulated_bench(seed)
    parameters = {**SMALL_PARAMETERS[protocol], **overrides}
    path = tmp_path / f"{protocol}.csv"
    record = run_procedure(make_procedure(protocol, parameters), bench, path, seed=seed)
    return bench, record, path


def assert_safe_end(bench):
    assert bench.smu.output_enabled is False
    assert bench.smu.source_voltage_v == 0.0
    assert bench.generator.ch_1.output is False
    assert not bench.world.device.electroformed
    # The simulator sums float samples, which can exceed a level by a few pV.
    assert bench.world.max_device_voltage_v <= LIMITS.max_voltage_v + 1e-9
    assert bench.world.min_device_voltage_v >= LIMITS.min_voltage_v - 1e-9


def test_every_protocol_has_its_documented_columns():
    assert set(EXPECTED_COLUMNS) == set(PROTOCOLS)
    for protocol, columns in EXPECTED_COLUMNS.items():
        assert PROTOCOLS[protocol].DATA_COLUMNS == columns


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_protocol_runs_on_simulated_bench(protocol, tmp_path):
    bench, record, path = run_small(protocol, tmp_path)

    assert record.status == "completed", record.reason
    assert read_run_status(path)["status"] == "completed"
    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == EXPECTED_COLUMNS[protocol]
    assert len(frame) == record.rows > 0
    loaded = Results.load(str(path))
    assert loaded.procedure.__class__ is PROTOCOLS[protocol]
    assert len(loaded.data) == record.rows
    assert frame["Time (s)"].is_monotonic_increasing
    assert record.bench_time_s > 0
    assert_safe_end(bench)


def test_short_term_response_grows_with_amplitude(tmp_path):
    # One pulse each, 30 s apart, so F has decayed to a few percent before the next pulse.
    _, _, path = run_small("short-term", tmp_path, amplitudes_v=[2.0, 3.0, 3.5],
                                    repeats=1, last_read_s=30.0)
    frame = pd.read_csv(path, comment="#")

    increases = {}
    energies = {}
    for amplitude, pulse in frame.groupby("Pulse amplitude (V)"):
        baseline = pulse[pulse["Time since pulse (s)"] < 0]["Conductance (S)"].mean()
        first = pulse[pulse["Time since pulse (s)"] > 0]["Conductance (S)"].iloc[0]
        increases[amplitude] = first - baseline
        energies[amplitude] = pulse["Pulse energy (J)"].iloc[0]
    assert 0 < increases[2.0] < increases[3.0] < increases[3.5]
    assert 0 < energies[2.0] < energies[3.0] < energies[3.5]
    # 100 us pulses of 2 and 3 V raise F by about 3 and 10 nS (published figures).
    assert increases[2.0] == pytest.approx(3e-9, abs=1e-9)
    assert increases[3.0] == pytest.approx(10e-9, abs=2e-9)


def test_bias_controls_decay(tmp_path):
    # Decay times are about 0.4 s at -0.6 V and 12 s at +0.6 V, so 2 s after the pulse
    # about 0.6 % and 85 % of the increase remain.
    _, _, path = run_small("bias-decay", tmp_path, repeats=1, last_read_s=2.0)
    frame = pd.read_csv(path, comment="#")

    remaining = {}
    for bias, group in frame.groupby("Bias (V)"):
        baseline = group[group["Time since pulse (s)"] < 0]["Conductance (S)"].mean()
        after = group[group["Time since pulse (s)"] > 0]
        first = after["Conductance (S)"].iloc[0] - baseline
        last = after["Conductance (S)"].iloc[-1] - baseline
        remaining[bias] = last / first
    assert remaining[-0.6] < 0.05
    assert 0.75 < remaining[0.6] < 0.95
    scheduled = frame["Scheduled time since pulse (s)"].dropna()
    actual = frame.loc[scheduled.index, "Time since pulse (s)"]
    assert np.allclose(actual, scheduled, atol=1e-5)


def test_same_seed_gives_same_data(tmp_path):
    _, _, first = run_small("short-term", tmp_path / "a", seed=5)
    _, _, second = run_small("short-term", tmp_path / "b", seed=5)
    assert pd.read_csv(first, comment="#").equals(pd.read_csv(second, comment="#"))


def test_scope_timeout_fails_run_with_outputs_off(tmp_path):
    bench = simulated_bench()
    bench.world.faults.scope.timeout_at(200)
    path = tmp_path / "bias-decay.csv"
    record = run_procedure(make_procedure("bias-decay", SMALL_PARAMETERS["bias-decay"]), bench, path)

    assert record.status == "failed"
    assert "InstrumentTimeout" in record.reason
    assert 0 < record.rows == len(pd.read_csv(path, comment="#"))
    assert_safe_end(bench)


def test_lost_smu_connection_is_recorded(tmp_path):
    bench = simulated_bench()
    bench.world.faults.smu.connection_lost_at(12)
    record = run_procedure(make_procedure("iv-sweep", SMALL_PARAMETERS["iv-sweep"]), bench,
                           tmp_path / "iv-sweep.csv")

    assert record.status == "failed"
    assert "shutdown failed (smu" in record.reason
    assert bench.generator.ch_1.output is False


def test_preflight_rejection_touches_no_instrument(tmp_path):
    bench = simulated_bench()
    procedure = make_procedure("set", {"pulse_amplitude_v": 4.1})
    with pytest.raises(PreflightError, match="4.1 V is above the device limit"):
        run_procedure(procedure, bench, tmp_path / "set.csv")
    assert bench.world.max_device_voltage_v == 0.0
    assert not (tmp_path / "set.csv").exists()
    assert bench.generator.ch_1.output is False


def test_repeated_read_sends_six_scope_messages():
    # SING;*OPC?, then header and data of both channels, then one error-queue read: the
    # unchanged scope settings and the download format are not sent again.
    bench = simulated_bench()
    actions = BenchActions(bench, AcquisitionSettings())
    actions.prepare(1e-5)
    actions.set_smu_level(0.0, turn_on=True)
    first = actions.read(0.6, 5e-4, 0.0, 2e-4)
    before = bench.world.faults.scope.commands_seen
    second = actions.read(0.6, 5e-4, 0.0, 2e-4)

    assert bench.world.faults.scope.commands_seen - before == 6
    assert bench.world.scope.errors == []
    assert second.conductance_s == pytest.approx(first.conductance_s, rel=0.05)


def test_read_after_pulse_sends_read_settings_again():
    bench = simulated_bench()
    actions = BenchActions(bench, AcquisitionSettings())
    actions.prepare(1e-5)
    actions.set_smu_level(0.0, turn_on=True)
    actions.read(0.6, 5e-4, 0.0, 2e-4)
    actions.fire(PulseTrain(amplitude_v=3.0, width_s=100e-6, capture=True), 0.0, 3.0)
    after_pulse = actions.read(0.6, 5e-4, 0.0, 2e-4)

    scope = bench.world.scope
    assert scope.trigger_mode == "AUTO"
    assert scope.reference_pct == 0.0
    assert scope.record_length == 1000
    assert after_pulse.voltage_v == pytest.approx(0.6, abs=0.01)
