"""Bench factory: a bench file becomes connected drivers, with nothing turned on."""

import pytest

from memsyn.bench_config import default_bench_path, load_bench_config
from memsyn.bench_factory import limits_of, open_bench
from memsyn.errors import UsageError


def test_simulated_bench_from_default_file():
    config = load_bench_config(default_bench_path())
    bench = open_bench(config, seed=5)
    try:
        assert bench.backend == "sim"
        assert bench.limits == limits_of(config)
        assert bench.description["seed"] == 5
        assert bench.description["bench_file"] == str(config.path)
        assert bench.description["scope_current_channel"] == 1
        assert bench.smu.output_enabled is False
        assert bench.generator.ch_1.output is False
        assert bench.amplifier.gain_v_per_a == config.amplifier_gain_v_per_a
    finally:
        bench.shutdown()


def test_seed_from_bench_file_when_not_given():
    config = load_bench_config(default_bench_path())
    bench = open_bench(config)
    assert bench.description["seed"] == config.seed


def test_visa_bench_without_instruments_is_usage_error(tmp_path):
    text = default_bench_path().read_text()
    text = text.replace('backend = "sim"', 'backend = "visa"').replace("[sim]\nseed = 1\n", "")
    for role in ("smu", "generator", "scope"):
        text = text.replace(f"[instruments.{role}]\n", f'[instruments.{role}]\nresource = "ASRL99::INSTR"\n')
    path = tmp_path / "lab.toml"
    path.write_text(text)
    config = load_bench_config(path)
    with pytest.raises(UsageError, match=r"cannot connect to the generator \(ASRL99::INSTR\): no VISA library"):
        open_bench(config)


def test_bench_check_reports_every_instrument(tmp_path, capsys):
    from memsyn.cli import main

    text = default_bench_path().read_text()
    text = text.replace('backend = "sim"', 'backend = "visa"').replace("[sim]\nseed = 1\n", "")
    for role in ("smu", "generator", "scope"):
        text = text.replace(f"[instruments.{role}]\n", f'[instruments.{role}]\nresource = "ASRL99::INSTR"\n')
    text = text.replace('mode = "low_noise"', 'mode = "low_noise"\ncontrol = "manual"')
    path = tmp_path / "lab.toml"
    path.write_text(text)

    assert main(["bench", "check", "--bench", str(path)]) == 1
    output = capsys.readouterr().out
    assert "generator  FAILED" in output
    assert "scope      FAILED" in output
    assert "smu        FAILED" in output
    assert "amplifier" in output
    assert "3 instrument(s) failed the check" in output
