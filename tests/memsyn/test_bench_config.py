"""Bench file parser: the shipped files load, and every error names the key and line."""

from pathlib import Path

import pytest

from memsyn.bench_config import BenchConfigError, default_bench_path, load_bench_config

REPO = Path(__file__).resolve().parents[2]

VALID = """\
[bench]
name = "t"
backend = "sim"

[limits]
max_voltage_v = 4.0
min_voltage_v = -2.5
max_current_a = 1e-4

[instruments.smu]
driver = "keysight_m9601a"

[instruments.generator]
driver = "keysight_33500b"
output_load = "INF"

[instruments.amplifier]
driver = "femto_dhpca100"
gain_v_per_a = 1e6
mode = "low_noise"

[instruments.scope]
driver = "rs_rte1104"

[sim]
seed = 3
"""


def write(tmp_path, text):
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return path


def error_for(tmp_path, text) -> str:
    with pytest.raises(BenchConfigError) as caught:
        load_bench_config(write(tmp_path, text))
    return str(caught.value)


def test_shipped_sim_bench_loads():
    config = load_bench_config(default_bench_path())
    assert config.backend == "sim"
    assert config.max_voltage_v == 4.0
    assert config.instruments["amplifier"].settings["control"] == "simulated"


def test_shipped_example_lab_bench_loads():
    config = load_bench_config(REPO / "benches" / "example-lab.toml")
    assert config.backend == "visa"
    assert config.instruments["scope"].resource.startswith("TCPIP0::")
    assert config.instruments["amplifier"].settings["control"] == "manual"


def test_valid_file_values(tmp_path):
    config = load_bench_config(write(tmp_path, VALID))
    assert config.seed == 3
    assert config.amplifier_gain_v_per_a == 1e6
    assert config.generator_load == "INF"
    assert config.as_header()["instruments"]["smu"]["driver"] == "keysight_m9601a"


def test_typo_in_key_names_key_and_line(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_voltage_v = 4.0", "max_votlage_v = 4.0"))
    assert "max_votlage_v" in message
    assert "line 6" in message
    assert "unknown key" in message


def test_typo_in_instrument_key(tmp_path):
    message = error_for(tmp_path, VALID.replace('output_load = "INF"', 'outputload = "INF"'))
    assert "instruments.generator.outputload" in message
    assert "line 15" in message


def test_unknown_top_level_table(tmp_path):
    message = error_for(tmp_path, VALID + "\n[extra]\nx = 1\n")
    assert "'extra'" in message
    assert "line 28" in message


def test_missing_instrument(tmp_path):
    text = VALID.replace('[instruments.scope]\ndriver = "rs_rte1104"\n', "")
    message = error_for(tmp_path, text)
    assert "instruments.scope" in message
    assert "missing instrument" in message


def test_wrong_driver_for_role(tmp_path):
    message = error_for(tmp_path, VALID.replace('driver = "rs_rte1104"', 'driver = "tek_mso"'))
    assert "instruments.scope.driver" in message
    assert "'tek_mso'" in message


def test_missing_limits_key(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_current_a = 1e-4\n", ""))
    assert "max_current_a" in message
    assert "missing key" in message


def test_limit_beyond_hardware(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_voltage_v = 4.0", "max_voltage_v = 12.0"))
    assert "limits.max_voltage_v" in message
    assert "12 V" in message
    assert "line 6" in message


def test_inverted_limits(tmp_path):
    message = error_for(tmp_path, VALID.replace("min_voltage_v = -2.5", "min_voltage_v = 5.0"))
    assert "min_voltage_v" in message
    assert "must be below" in message


def test_current_limit_beyond_smu(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_current_a = 1e-4", "max_current_a = 2.0"))
    assert "limits.max_current_a" in message


def test_limit_not_a_number(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_voltage_v = 4.0", 'max_voltage_v = "4 V"'))
    assert "must be a finite number" in message


def test_nan_limit(tmp_path):
    message = error_for(tmp_path, VALID.replace("max_voltage_v = 4.0", "max_voltage_v = nan"))
    assert "must be a finite number" in message


def test_bad_backend(tmp_path):
    message = error_for(tmp_path, VALID.replace('backend = "sim"', 'backend = "gpib"'))
    assert "bench.backend" in message
    assert "line 3" in message


def test_bad_amplifier_gain(tmp_path):
    message = error_for(tmp_path, VALID.replace("gain_v_per_a = 1e6", "gain_v_per_a = 3e6"))
    assert "instruments.amplifier.gain_v_per_a" in message
    assert "allowed: 100, 1000" in message


def test_bad_amplifier_mode(tmp_path):
    message = error_for(tmp_path, VALID.replace('mode = "low_noise"', 'mode = "fast"'))
    assert "instruments.amplifier.mode" in message


def test_bad_generator_load(tmp_path):
    message = error_for(tmp_path, VALID.replace('output_load = "INF"', 'output_load = "75"'))
    assert "output_load" in message


def test_visa_bench_needs_resources(tmp_path):
    text = VALID.replace('backend = "sim"', 'backend = "visa"').replace("[sim]\nseed = 3\n", "")
    message = error_for(tmp_path, text)
    assert "resource" in message
    assert "instruments.smu" in message


def test_sim_table_rejected_on_visa_bench(tmp_path):
    text = VALID.replace('backend = "sim"', 'backend = "visa"')
    for role in ("smu", "generator", "scope"):
        text = text.replace(f"[instruments.{role}]\n", f'[instruments.{role}]\nresource = "X::INSTR"\n')
    message = error_for(tmp_path, text)
    assert "[sim]" in message


def test_negative_seed(tmp_path):
    message = error_for(tmp_path, VALID.replace("seed = 3", "seed = -1"))
    assert "sim.seed" in message


def test_malformed_toml(tmp_path):
    message = error_for(tmp_path, VALID.replace("[limits]", "[limits"))
    assert "not valid TOML" in message
    assert "line" in message


def test_missing_file(tmp_path):
    with pytest.raises(BenchConfigError, match="not found"):
        load_bench_config(tmp_path / "nope.toml")


def test_missing_table(tmp_path):
    text = VALID.replace("[limits]\nmax_voltage_v = 4.0\nmin_voltage_v = -2.5\nmax_current_a = 1e-4\n", "")
    message = error_for(tmp_path, text)
    assert "[limits]" in message


def test_gain_not_available_in_mode(tmp_path):
    message = error_for(tmp_path, VALID.replace("gain_v_per_a = 1e6", "gain_v_per_a = 1e8"))
    assert "low_noise" in message
    assert "1e+08" in message


def test_adapter_id_needs_luci10(tmp_path):
    message = error_for(tmp_path, VALID.replace('mode = "low_noise"', 'mode = "low_noise"\nadapter_id = 2'))
    assert "adapter_id" in message
    assert "luci10" in message


def test_limit_above_forming_risk_warns(tmp_path, caplog):
    config = load_bench_config(write(tmp_path, VALID.replace("max_voltage_v = 4.0", "max_voltage_v = 9.0")))
    assert config.max_voltage_v == 9.0
    assert "electroform" in caplog.text
    assert "line 6" in caplog.text


def test_published_limit_does_not_warn(tmp_path, caplog):
    load_bench_config(write(tmp_path, VALID))
    assert "electroform" not in caplog.text
