"""Reading the device parameter file into m-STPN constraints."""

import copy
import json

import pytest

from stpn.device import (
    PUBLISHED_DEVICE_PATH,
    DeviceFileError,
    load_device_file,
    parse_lambda_range,
)


@pytest.fixture
def published():
    return json.loads(PUBLISHED_DEVICE_PATH.read_text())


def write(tmp_path, document):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(document))
    return path


def test_published_device_constraints():
    constraints = load_device_file(PUBLISHED_DEVICE_PATH).synapse_constraints()
    assert constraints.lambda_min == 0.08
    assert constraints.lambda_max == 0.92
    assert constraints.df_step == pytest.approx(0.5)
    assert constraints.df_max == pytest.approx(20.0)


def test_published_device_sha256_is_of_file_bytes():
    import hashlib

    device = load_device_file(PUBLISHED_DEVICE_PATH)
    assert device.sha256 == hashlib.sha256(PUBLISHED_DEVICE_PATH.read_bytes()).hexdigest()


def test_weight_unit_scales_step_and_clip(tmp_path, published):
    published["conductance"]["siemens_per_weight_unit"]["value"] = 4e-9
    constraints = load_device_file(write(tmp_path, published)).synapse_constraints()
    assert constraints.df_step == pytest.approx(0.25)
    assert constraints.df_max == pytest.approx(10.0)


@pytest.mark.parametrize("text, expected", [
    ("device", (0.08, 0.92)), ("none", (0.0, 0.0)), ("wide", (0.0, 1.0)),
    ("slow", (0.5, 0.99)), ("0.2,0.7", (0.2, 0.7)),
])
def test_lambda_range_presets(text, expected):
    assert parse_lambda_range(text, (0.08, 0.92)) == expected


@pytest.mark.parametrize("text", ["fast", "0.7,0.2", "0.1,1.5", "0.5"])
def test_lambda_range_rejects_invalid(text):
    with pytest.raises(ValueError, match="invalid decay range"):
        parse_lambda_range(text, (0.08, 0.92))


def test_missing_file_names_path(tmp_path):
    with pytest.raises(DeviceFileError, match="cannot read device file .*absent.json"):
        load_device_file(tmp_path / "absent.json")


def test_invalid_json(tmp_path):
    path = tmp_path / "device.json"
    path.write_text("{not json")
    with pytest.raises(DeviceFileError, match="not valid JSON"):
        load_device_file(path)


def test_wrong_format(tmp_path, published):
    published["format"] = "something-else"
    with pytest.raises(DeviceFileError, match="expected format 'memsyn-device'"):
        load_device_file(write(tmp_path, published))


def test_unsupported_version(tmp_path, published):
    published["version"] = 2
    with pytest.raises(DeviceFileError, match="unsupported version 2"):
        load_device_file(write(tmp_path, published))


@pytest.mark.parametrize("section, field", [
    ("conductance", "siemens_per_weight_unit"), ("short_term", "df_step"),
    ("short_term", "df_max"), ("decay", "lambda_min"), ("decay", "lambda_max"),
])
def test_missing_field_is_named(tmp_path, published, section, field):
    document = copy.deepcopy(published)
    del document[section][field]
    with pytest.raises(DeviceFileError, match=f"missing field {section}.{field}"):
        load_device_file(write(tmp_path, document))


def test_wrong_unit_is_named(tmp_path, published):
    published["short_term"]["df_step"]["unit"] = "nS"
    with pytest.raises(DeviceFileError, match="short_term.df_step must have unit 'S', got 'nS'"):
        load_device_file(write(tmp_path, published))


def test_non_numeric_value(tmp_path, published):
    published["decay"]["lambda_max"]["value"] = "0.9"
    with pytest.raises(DeviceFileError, match="decay.lambda_max.value must be a finite number"):
        load_device_file(write(tmp_path, published))


def test_lambda_out_of_unit_interval(tmp_path, published):
    published["decay"]["lambda_max"]["value"] = 1.2
    with pytest.raises(DeviceFileError, match=r"decay.lambda_max.value must be <= 1.0, got 1.2"):
        load_device_file(write(tmp_path, published))


def test_inverted_lambda_range(tmp_path, published):
    published["decay"]["lambda_min"]["value"] = 0.95
    with pytest.raises(DeviceFileError, match="lambda_min .* is larger than decay.lambda_max"):
        load_device_file(write(tmp_path, published))


def test_non_positive_weight_unit(tmp_path, published):
    published["conductance"]["siemens_per_weight_unit"]["value"] = 0.0
    with pytest.raises(DeviceFileError, match="must be positive, got 0.0"):
        load_device_file(write(tmp_path, published))


def test_step_larger_than_clip(tmp_path, published):
    published["short_term"]["df_step"]["value"] = 5e-8
    with pytest.raises(DeviceFileError, match="df_step .* is larger than short_term.df_max"):
        load_device_file(write(tmp_path, published))
