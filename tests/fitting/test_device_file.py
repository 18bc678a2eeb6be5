"""Device parameter file: validation names the field, writing is atomic, summary reads."""

import copy
import json
import os
import stat

import pytest

from fitting.device_file import (
    REQUIRED_QUANTITIES,
    load_device_file,
    summarize_device,
    validate_device_document,
    write_device_file,
)
from fitting.errors import DeviceFileError


@pytest.fixture
def document(campaign_fit):
    return copy.deepcopy(campaign_fit.document)


def drop(document, path):
    *parents, last = path.split(".")
    item = document
    for key in parents:
        item = item[key]
    del item[last]


def error_for(document) -> str:
    with pytest.raises(DeviceFileError) as caught:
        validate_device_document(document, "test.json")
    return str(caught.value)


def test_fitted_document_is_valid(document):
    validate_device_document(document)
    assert document["format"] == "memsyn-device"
    assert document["version"] == 1


@pytest.mark.parametrize("path", sorted(REQUIRED_QUANTITIES))
def test_missing_required_quantity_named(document, path):
    drop(document, path)
    assert f"missing field {path!r}" in error_for(document)


@pytest.mark.parametrize(
    "path", ["short_term.table", "decay.points", "provenance", "warnings", "validity", "provenance.bench"]
)
def test_missing_section_named(document, path):
    drop(document, path)
    assert f"missing field {path!r}" in error_for(document)


def test_wrong_unit_named(document):
    document["conductance"]["g_min"]["unit"] = "nS"
    assert "field 'conductance.g_min.unit': expected 'S', got 'nS'" in error_for(document)


def test_missing_stderr_key_named(document):
    del document["pulse_energy"]["c"]["stderr"]
    assert "missing field 'pulse_energy.c.stderr'" in error_for(document)


@pytest.mark.parametrize("bad", ["0.1", None, True, float("nan")])
def test_non_number_value_named(document, bad):
    document["decay"]["lambda_min"]["value"] = bad
    assert "field 'decay.lambda_min.value': expected a finite number" in error_for(document)


def test_negative_stderr_rejected(document):
    document["decay"]["sigmoid"]["k"]["stderr"] = -1.0
    assert "'decay.sigmoid.k.stderr'" in error_for(document)


def test_format_and_version_checked(document):
    wrong_format = dict(document, format="other")
    assert "field 'format'" in error_for(wrong_format)
    wrong_version = dict(document, version=2)
    assert "this memsyn reads version 1, got 2" in error_for(wrong_version)


def test_lambda_range_order_checked(document):
    document["decay"]["lambda_min"]["value"] = 0.95
    assert "0 <= lambda_min < lambda_max <= 1" in error_for(document)


def test_df_max_below_step_rejected(document):
    document["short_term"]["df_max"]["value"] = 0.1e-9
    assert "'short_term.df_max.value': expected at least df_step" in error_for(document)


def test_table_row_checked(document):
    document["short_term"]["table"][2]["repeats"] = 0
    assert "'short_term.table[2].repeats'" in error_for(document)
    del document["short_term"]["table"][2]["df_std_s"]
    document["short_term"]["table"][2]["repeats"] = 5
    assert "missing field 'short_term.table[2].df_std_s'" in error_for(document)


def test_decay_point_checked(document):
    document["decay"]["points"][1]["lambda"]["value"] = 1.5
    assert "'decay.points[1].lambda.value': expected a value in [0, 1]" in error_for(document)


def test_provenance_hash_checked(document):
    document["provenance"]["inputs"][0]["sha256"] = "abc"
    assert "'provenance.inputs[0].sha256'" in error_for(document)


def test_write_then_load_round_trip(tmp_path, document):
    path = write_device_file(document, tmp_path / "device.json")
    assert load_device_file(path) == json.loads(json.dumps(document))
    assert [item.name for item in tmp_path.iterdir()] == ["device.json"]


def test_campaign_fit_accepted_for_writing(tmp_path, campaign_fit):
    path = write_device_file(campaign_fit, tmp_path / "device.json")
    assert load_device_file(path)["decay"] == json.loads(json.dumps(campaign_fit.document["decay"]))


def test_invalid_document_not_written(tmp_path, document):
    path = tmp_path / "device.json"
    write_device_file(document, path)
    before = path.read_bytes()
    broken = copy.deepcopy(document)
    drop(broken, "decay.lambda_max")
    with pytest.raises(DeviceFileError, match="not written"):
        write_device_file(broken, path)
    assert path.read_bytes() == before
    assert [item.name for item in tmp_path.iterdir()] == ["device.json"]


def test_nan_in_free_text_field_not_written(tmp_path, document):
    document["validity"]["extra"] = float("nan")
    with pytest.raises(DeviceFileError, match="NaN or infinity"):
        write_device_file(document, tmp_path / "device.json")
    assert not (tmp_path / "device.json").exists()


def test_load_reports_json_error(tmp_path):
    path = tmp_path / "device.json"
    path.write_text('{"format": "memsyn-device",\n "version": }')
    with pytest.raises(DeviceFileError, match="not valid JSON: .* line 2"):
        load_device_file(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(DeviceFileError, match="cannot read device file"):
        load_device_file(tmp_path / "absent.json")


def test_summary_shows_key_numbers(document):
    summary = summarize_device(document)
    assert "G_min" in summary
    assert "0.5 weight units" in summary
    assert "Lambda range" in summary
    assert "pJ" in summary


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_file_mode_follows_umask(tmp_path, document, umask):
    previous = os.umask(umask)
    try:
        path = write_device_file(document, tmp_path / "device.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_replaced_file_mode_follows_umask(tmp_path, document):
    path = tmp_path / "device.json"
    path.write_text("{}")
    path.chmod(0o600)
    previous = os.umask(0o022)
    try:
        write_device_file(document, path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_summary_names_sigmoid_parameters(document):
    summary = summarize_device(document)
    sigmoid = document["decay"]["sigmoid"]
    assert "Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0" in summary
    assert f"L = {sigmoid['L']['value']:.4g}" in summary
    assert f"k = {sigmoid['k']['value']:.4g}" in summary
    assert f"V0 = {sigmoid['V0']['value']:.4g}" in summary
    assert f"Lambda0 = {sigmoid['Lambda0']['value']:.4g}" in summary
    assert " 1/V, V0 = " in summary
