"""`memsyn fit`: writes a device file that `--check` accepts; errors are one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memsyn.cli import main


def test_fit_writes_file_that_check_accepts(campaign_dir, tmp_path, capsys):
    out = tmp_path / "device.json"
    assert main(["--quiet", "fit", str(campaign_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"device file: {out}" in printed
    assert "Lambda range" in printed

    assert main(["--quiet", "fit", "--check", str(out)]) == 0
    assert "valid memsyn-device version 1" in capsys.readouterr().out
    assert json.loads(out.read_text())["decay"]["step_interval_s"]["value"] == 1.0


def test_fit_step_interval_option(campaign_dir, tmp_path, capsys):
    out = tmp_path / "device.json"
    assert main(["--quiet", "fit", str(campaign_dir), "--out", str(out), "--step-interval-s", "0.25"]) == 0
    assert json.loads(out.read_text())["decay"]["step_interval_s"]["value"] == 0.25


def test_fit_df_step_grid_option(campaign_dir, tmp_path, capsys):
    out = tmp_path / "device.json"
    arguments = ["--quiet", "fit", str(campaign_dir), "--out", str(out), "--df-step-grid-ns", "0.25"]
    assert main(arguments) == 0
    short_term = json.loads(out.read_text())["short_term"]
    steps = short_term["df_step"]["value"] / 0.25e-9
    assert steps == pytest.approx(round(steps))
    assert short_term["df_step"]["value"] >= short_term["df_std_max"]["value"]
    assert short_term["df_step"]["value"] - 0.25e-9 < short_term["df_std_max"]["value"]


@pytest.mark.slow
def test_fit_writes_plots(campaign_dir, tmp_path, capsys):
    plots = tmp_path / "plots"
    out = tmp_path / "device.json"
    assert main(["--quiet", "fit", str(campaign_dir), "--out", str(out), "--plots", str(plots)]) == 0
    names = sorted(path.name for path in plots.iterdir())
    assert "lambda-sigmoid.png" in names
    assert "pulse-energy.png" in names
    assert "df-surface.png" in names
    assert "conductance-levels.png" in names
    assert sum(name.startswith("decay-bias") for name in names) == 7
    assert all((plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in names)


def test_bad_data_is_one_line_error(fresh_campaign, tmp_path, capsys):
    paths = fresh_campaign(protocols=("short-term",))
    out = tmp_path / "device.json"
    assert main(["--quiet", "fit", str(paths["short-term"].parent), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("memsyn fit: error: ")
    assert "bias-decay" in error
    assert "no device file written" in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_check_rejects_invalid_file(tmp_path, capsys):
    path = tmp_path / "device.json"
    path.write_text(json.dumps({"format": "memsyn-device", "version": 1}))
    assert main(["fit", "--check", str(path)]) == 2
    assert "missing field 'conductance'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fit"], "give RESULTS_DIR and --out FILE"),
        (["fit", "somewhere"], "give RESULTS_DIR and --out FILE"),
        (["fit", "somewhere", "--out", "x.json", "--check", "y.json"], "--check takes only"),
        (["fit", "somewhere", "--out", "x.json", "--step-interval-s", "0"], "--step-interval-s must be"),
        (["fit", "somewhere", "--out", "x.json", "--df-step-grid-ns", "-1"], "--df-step-grid-ns must be"),
    ],
)
def test_usage_errors(arguments, message, capsys):
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


HEAVY_MODULES = ("lmfit", "torch", "scipy", "pandas", "matplotlib")

# Prints the heavy modules loaded after registering the named command modules (all
# commands through build_parser when none are named).
_IMPORT_PROBE = """
import argparse, importlib, sys
names = sys.argv[1:]
if names:
    subparsers = argparse.ArgumentParser().add_subparsers()
    for name in names:
        importlib.import_module("memsyn.commands." + name).register(subparsers)
else:
    import memsyn.cli
    memsyn.cli.build_parser()
print(" ".join(sorted(set(sys.modules) & set(HEAVY))))
"""


def heavy_modules_after(*command_names: str) -> set[str]:
    probe = f"HEAVY = {HEAVY_MODULES!r}\n{_IMPORT_PROBE}"
    finished = subprocess.run(
        [sys.executable, "-c", probe, *command_names],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )
    return set(finished.stdout.split())


@pytest.mark.parametrize("command", ["fit", "energy"])
def test_command_parser_skips_heavy_imports(command):
    assert heavy_modules_after(command) == set()


def test_cli_parser_skips_lmfit_and_torch():
    loaded = heavy_modules_after()
    assert "lmfit" not in loaded
    assert "torch" not in loaded
