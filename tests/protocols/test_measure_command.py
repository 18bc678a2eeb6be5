"""`memsyn measure` and `memsyn bench check` on the default simulated bench."""

import json

import pandas as pd
import pytest

from memsyn.cli import main
from protocols.results_file import read_run_status

SMALL = ["--param", "amplitudes_v=2.0", "--param", "widths_s=1e-4", "--param", "repeats=1",
         "--param", "last_read_s=0.05", "--param", "reads_per_decade=2"]

CAMPAIGN = """
[campaign]
name = "tiny"

[[steps]]
protocol = "iv-sweep"
[steps.parameters]
cycles = 1
step_v = 0.5

[[steps]]
protocol = "bias-decay"
[steps.parameters]
biases_v = [0.0]
repeats = 1
last_read_s = 0.05
reads_per_decade = 2
"""


def test_measure_protocol_writes_results(tmp_path, capsys):
    assert main(["--quiet", "measure", "short-term", *SMALL, "--seed", "4", "--out", str(tmp_path)]) == 0

    output = capsys.readouterr().out
    path = tmp_path / "short-term.csv"
    assert "short-term: completed" in output
    assert str(path) in output
    assert read_run_status(path)["status"] == "completed"
    assert len(pd.read_csv(path, comment="#")) > 0
    assert "#\tSeed: 4" in path.read_text().splitlines()


def test_second_run_gets_new_file_and_waveforms(tmp_path, capsys):
    assert main(["--quiet", "measure", "short-term", *SMALL, "--out", str(tmp_path)]) == 0
    assert main(["--quiet", "measure", "short-term", *SMALL, "--keep-waveforms",
                 "--out", str(tmp_path)]) == 0

    assert (tmp_path / "short-term.csv").exists()
    assert (tmp_path / "short-term-2.csv").exists()
    assert list((tmp_path / "short-term-2-waveforms").glob("*.npz"))
    assert "waveforms in" in capsys.readouterr().out


def test_dry_run_measures_nothing(tmp_path, capsys):
    assert main(["--quiet", "measure", "bias-decay", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "2665 reads, 65 pulses" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["short-term", "--param", "amplitudes_v=4.5", "--dry-run"], "4.5 V is above the device limit"),
        (["short-term", "--param", "speed=3", "--dry-run"], "has no parameter 'speed'"),
        (["short-term", "--param", "repeats", "--dry-run"], "must have the form NAME=VALUE"),
        (["short-term", "--param", "repeats=0", "--dry-run"], "below the minimum 1"),
        (["short-term"], "missing --out DIR"),
        (["campaign", "--dry-run"], "missing campaign file"),
        (["set", "extra.toml", "--dry-run"], "only 'campaign' takes a file"),
        (["short-term", "--bench", "absent.toml", "--dry-run"], "bench file absent.toml not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, message, capsys):
    assert main(["--quiet", "measure", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error
    assert len(error.splitlines()) == 1
    assert "Traceback" not in error


def test_list_params(capsys):
    assert main(["--quiet", "measure", "set", "--list-params"]) == 0
    output = capsys.readouterr().out
    assert "pulse_count" in output
    assert "settle_s" in output


def test_measure_campaign(tmp_path, capsys):
    campaign = tmp_path / "tiny.toml"
    campaign.write_text(CAMPAIGN)
    out = tmp_path / "out"
    assert main(["--quiet", "measure", "campaign", str(campaign), "--out", str(out)]) == 0

    output = capsys.readouterr().out
    assert "campaign tiny: completed" in output
    record = json.loads((out / "campaign.json").read_text())
    assert [step["file"] for step in record["steps"]] == ["01-iv-sweep.csv", "02-bias-decay.csv"]
    assert all(read_run_status(out / step["file"])["status"] == "completed" for step in record["steps"])


def test_campaign_file_error_is_usage_error(tmp_path, capsys):
    campaign = tmp_path / "bad.toml"
    campaign.write_text("[[steps]]\nprotocol = 'warp'\n")
    assert main(["--quiet", "measure", "campaign", str(campaign), "--out", str(tmp_path)]) == 2
    assert "unknown protocol 'warp'" in capsys.readouterr().err


def test_bench_check_identifies_every_instrument(capsys):
    assert main(["--quiet", "bench", "check"]) == 0
    output = capsys.readouterr().out
    for model in ("33522B", "M9601A", "RTE1104", "DHPCA-100"):
        assert model in output
    assert "no output was turned on" in output


def test_bench_without_action_is_usage_error(capsys):
    assert main(["--quiet", "bench"]) == 2
    assert "bench check" in capsys.readouterr().err


def test_identify_turns_no_output_on():
    from instruments.safety import SafetyLimits
    from memsyn.commands.bench import identify
    from sim_backend.bench import build_simulated_bench

    bench = build_simulated_bench(SafetyLimits(4.0, -2.5, 1e-4), 1e4, "low_noise", seed=0)
    for instrument in bench.instruments().values():
        assert identify(instrument)
    assert bench.smu.output_enabled is False
    assert bench.generator.ch_1.output is False
    assert bench.world.max_device_voltage_v == 0.0


def test_command_lists_every_protocol():
    from memsyn.commands.measure import PROTOCOL_NAMES
    from protocols import PROTOCOLS

    assert PROTOCOL_NAMES == tuple(PROTOCOLS)


@pytest.mark.parametrize("arguments", [["iv-sweep"], ["campaign", "quick.toml"]])
def test_missing_out_opens_no_bench(arguments, monkeypatch, capsys):
    from pathlib import Path

    import memsyn.commands.measure as measure

    campaigns = Path(__file__).resolve().parents[2] / "campaigns"
    arguments = [str(campaigns / item) if item.endswith(".toml") else item for item in arguments]

    def fail(*args, **kwargs):
        raise AssertionError("the bench was opened")

    monkeypatch.setattr(measure, "_open_bench", fail)
    assert main(["measure", *arguments]) == 2
    assert "missing --out DIR" in capsys.readouterr().err
