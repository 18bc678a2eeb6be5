"""Running a protocol: results file, status trailer, faults, Ctrl+C and shutdown."""

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_PARAMETERS
from pymeasure.experiment import Results

from instruments.errors import InstrumentError, InstrumentTimeout
from protocols.campaign import make_procedure
from protocols.results_file import read_run_status
from protocols.runner import StopSignal, run_procedure


def small(protocol):
    return make_procedure(protocol, SMALL_PARAMETERS[protocol])


def outputs_are_off(bench):
    assert bench.smu.level_v == 0.0
    assert bench.smu.enabled is False
    assert bench.generator.ch_1.output is False
    shut = {role for role, member, _ in bench.calls if member == "shutdown"}
    assert shut == {"smu", "generator", "scope", "amplifier"}


def test_completed_run_writes_header_rows_and_status(fake_bench, tmp_path):
    path = tmp_path / "short-term.csv"
    record = run_procedure(small("short-term"), fake_bench, path, seed=7)

    assert record.status == "completed"
    assert record.rows > 0
    assert read_run_status(path)["status"] == "completed"
    assert read_run_status(path)["rows"] == record.rows

    frame = pd.read_csv(path, comment="#")
    assert len(frame) == record.rows
    loaded = Results.load(str(path))
    assert len(loaded.data) == record.rows
    assert loaded.procedure.repeats == 2
    assert loaded.procedure.amplitudes_v == (2.0, 3.0)
    assert loaded.procedure.protocol_name == "short-term"
    assert loaded.procedure.seed == "7"
    assert json.loads(loaded.procedure.bench_description)["bench_name"] == "fake"

    header = path.read_text().splitlines()
    assert "#\tProtocol: short-term" in header
    assert any(line.startswith("#\tSoftware version: ") for line in header)
    outputs_are_off(fake_bench)


def test_baseline_rows_follow_their_pulse(fake_bench, tmp_path):
    path = tmp_path / "short-term.csv"
    run_procedure(small("short-term"), fake_bench, path)
    frame = pd.read_csv(path, comment="#")

    first_pulse = frame[(frame["Pulse amplitude (V)"] == 2.0) & (frame["Repeat"] == 1)]
    baseline = first_pulse[first_pulse["Time since pulse (s)"] < 0]
    after = first_pulse[first_pulse["Time since pulse (s)"] > 0]
    assert len(baseline) == 3
    assert baseline["Scheduled time since pulse (s)"].isna().all()
    assert first_pulse["Pulse energy (J)"].nunique() == 1
    assert first_pulse["Pulse energy (J)"].iloc[0] > 0
    assert (after["Conductance (S)"].iloc[0] > baseline["Conductance (S)"].mean())
    assert np.allclose(after["Time since pulse (s)"], after["Scheduled time since pulse (s)"], atol=1e-9)
    assert frame["Time (s)"].is_monotonic_increasing


def test_instrument_fault_fails_run_keeps_rows(fake_bench, tmp_path):
    path = tmp_path / "short-term.csv"
    fake_bench.fail_on("scope", "single_acquisition",
                       InstrumentTimeout("R&S RTE1104", "SING;*OPC?", "timed out"), at_call=6)
    record = run_procedure(small("short-term"), fake_bench, path)

    assert record.status == "failed"
    assert "InstrumentTimeout" in record.reason
    assert "SING;*OPC?" in record.reason
    assert record.rows == 5
    assert len(pd.read_csv(path, comment="#")) == 5
    assert read_run_status(path)["status"] == "failed"
    outputs_are_off(fake_bench)


def test_baseline_rows_before_fault_are_kept(fake_bench, tmp_path):
    path = tmp_path / "short-term.csv"
    fake_bench.fail_on("generator", "trigger", InstrumentError("gen", "*TRG", "dead"))
    record = run_procedure(small("short-term"), fake_bench, path)

    frame = pd.read_csv(path, comment="#")
    assert record.status == "failed"
    assert len(frame) == 3
    assert frame["Time since pulse (s)"].isna().all()


def test_keyboard_interrupt_aborts_with_outputs_off(fake_bench, tmp_path):
    path = tmp_path / "iv-sweep.csv"
    fake_bench.fail_on("smu", "sweep", KeyboardInterrupt(), at_call=2)
    record = run_procedure(small("iv-sweep"), fake_bench, path)

    assert record.status == "aborted"
    assert record.reason == "interrupted by Ctrl+C"
    frame = pd.read_csv(path, comment="#")
    assert set(frame["Cycle"]) == {1}
    assert read_run_status(path)["status"] == "aborted"
    outputs_are_off(fake_bench)


def test_first_ctrl_c_stops_at_next_step(fake_bench, tmp_path):
    path = tmp_path / "iv-sweep.csv"

    def press_ctrl_c(percent, label):
        if percent >= 50:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    record = run_procedure(small("iv-sweep"), fake_bench, path, progress=press_ctrl_c)

    assert record.status == "aborted"
    assert record.reason == "interrupted by Ctrl+C"
    assert record.rows > 0
    assert signal.getsignal(signal.SIGINT) is previous
    outputs_are_off(fake_bench)


def test_stop_request_aborts(fake_bench, tmp_path):
    stop = StopSignal()
    record = run_procedure(
        small("set"), fake_bench, tmp_path / "set.csv", stop=stop,
        progress=lambda percent, label: stop.request("operator stop") if percent > 30 else None,
    )
    assert record.status == "aborted"
    assert record.reason == "operator stop"
    outputs_are_off(fake_bench)


def test_failing_shutdown_is_recorded_and_others_still_shut_down(fake_bench, tmp_path):
    fake_bench.fail_on("smu", "shutdown", InstrumentError("Keysight M9601A", "shutdown", "no answer"))
    record = run_procedure(small("iv-sweep"), fake_bench, tmp_path / "iv-sweep.csv")

    assert record.status == "failed"
    assert "shutdown failed (smu: Keysight M9601A: no answer" in record.reason
    assert "check that every output is off" in record.reason
    roles = [role for role, member, _ in fake_bench.calls if member == "shutdown"]
    assert roles == ["generator", "smu", "scope", "amplifier"]


def test_interrupted_bias_decay_says_not_resumable(fake_bench, tmp_path):
    path = tmp_path / "bias-decay.csv"
    fake_bench.fail_on("scope", "single_acquisition", KeyboardInterrupt(), at_call=10)
    record = run_procedure(small("bias-decay"), fake_bench, path)

    assert record.status == "aborted"
    assert "cannot be continued" in record.reason
    assert "#\tResumable: no" in path.read_text().splitlines()


def test_existing_results_file_is_never_overwritten(fake_bench, tmp_path):
    path = tmp_path / "set.csv"
    path.write_text("earlier data\n")
    with pytest.raises(FileExistsError):
        run_procedure(small("set"), fake_bench, path)
    assert path.read_text() == "earlier data\n"
    assert fake_bench.calls == []


def test_waveforms_kept_beside_results(fake_bench, tmp_path):
    path = tmp_path / "short-term.csv"
    record = run_procedure(small("short-term"), fake_bench, path, keep_waveforms=True)

    folder = tmp_path / "short-term-waveforms"
    assert record.waveforms == str(folder)
    files = sorted(folder.glob("*.npz"))
    assert len(files) == 4
    frame = pd.read_csv(path, comment="#")
    with np.load(files[0]) as group:
        kinds = list(group["kind"])
        assert kinds.count("pulse") == 1
        rows = group["row"]
        read_index = kinds.index("read")
        row = frame.iloc[int(rows[read_index])]
        current = group[f"{read_index}_current_a"]
        assert float(np.mean(current)) == pytest.approx(row["Current (A)"], rel=1e-6)
        assert group[f"{read_index}_time_s"].size == group[f"{read_index}_voltage_v"].size


def test_no_waveform_folder_without_scope_reads(fake_bench, tmp_path):
    record = run_procedure(small("iv-sweep"), fake_bench, tmp_path / "iv-sweep.csv",
                           keep_waveforms=True)
    assert record.waveforms is None
    assert not (tmp_path / "iv-sweep-waveforms").exists()


class RecordingClock:
    """A clock that only records its sleeps; ``sleeps_in_real_time`` as given."""

    def __init__(self, sleeps_in_real_time):
        self.time_s = 0.0
        self.sleeps = []
        if sleeps_in_real_time is not None:
            self.sleeps_in_real_time = sleeps_in_real_time

    def now(self):
        return self.time_s

    def sleep(self, duration_s):
        self.sleeps.append(duration_s)
        self.time_s += duration_s


@pytest.mark.parametrize("sleeps_in_real_time, expected", [
    (None, [0.5, 0.5, 0.5, 0.5]),   # no attribute: waits are cut for stop checks
    (True, [0.5, 0.5, 0.5, 0.5]),
    (False, [2.0]),                 # a virtual clock: one sleep, it takes no wall time
])
def test_wait_cuts_only_real_time_sleeps(fake_bench, sleeps_in_real_time, expected):
    procedure = small("short-term")
    clock = RecordingClock(sleeps_in_real_time)
    fake_bench.clock = clock
    procedure.bench = fake_bench
    procedure.should_stop = lambda: False
    procedure.wait(2.0)
    assert clock.sleeps == pytest.approx(expected)
