"""Tests of the KtM960x ctypes session: the not-found path and the argument marshalling.

The vendor DLL exists only on Windows with Keysight's driver installed, so a fake library
object replaces it. The fake checks the C types of every argument, writes output
arguments the way the DLL does, and records the calls with their decoded values.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np
import pytest

from instruments import ktm960x_ctypes
from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.ivi_session import ATTRIBUTES, IviSession
from instruments.keysight_m9601a import KeysightM9601A
from instruments.ktm960x_ctypes import (
    ATTR_MEASUREMENT_CURRENT_APERTURE,
    ATTR_MEASUREMENT_CURRENT_LIMIT,
    ATTR_MEASUREMENT_TRIGGER_COUNT,
    ATTR_MEASUREMENT_VOLTAGE_APERTURE,
    ATTR_OUTPUT_ENABLED,
    ATTR_OUTPUT_VOLTAGE_LEVEL,
    ATTR_SYSTEM_AUTO_TIMER_RESET_ENABLED,
    ATTR_TRANSIENT_TRIGGER_COUNT,
    ATTR_TRANSIENT_VOLTAGE_MODE,
    ATTRIBUTE_BINDINGS,
    NOT_FOUND_MESSAGE,
    KtM960xSession,
    load_library,
)
from instruments.safety import SafetyLimits

HANDLE = 42
ERROR_STATUS = -1074135024  # 0xBFFA0010, "invalid value" in the IVI error range
WARNING_STATUS = 0x3FFA4001


class FakeKtM960x:
    """Stand-in for KtM960x_64.dll that checks argument types and records decoded calls."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.status: dict[str, int] = {}
        self.attributes: dict[int, object] = {}
        self.complete = True
        self.fetched = {
            5: [0.0, 0.01, 0.02],
            1: [0.5, -0.5, 0.0],
            2: [5e-9, -5e-9, 0.0],
        }
        self.actual_size: int | None = None
        self.queue = [(0, b"No error")]

    def _result(self, name: str) -> int:
        return self.status.get(name, 0)

    @staticmethod
    def _check_handle(vi):
        assert type(vi) is ctypes.c_uint32
        assert vi.value == HANDLE

    def KtM960x_InitWithOptions(self, resource, id_query, reset, options, handle):
        assert isinstance(resource, bytes) and isinstance(options, bytes)
        assert type(id_query) is ctypes.c_uint16
        assert type(reset) is ctypes.c_uint16
        handle._obj.value = HANDLE
        self.calls.append(("InitWithOptions", resource, id_query.value, reset.value, options))
        return self._result("InitWithOptions")

    def _set(self, kind, c_type, vi, repcap, attribute, value):
        self._check_handle(vi)
        assert isinstance(repcap, bytes)
        assert type(attribute) is ctypes.c_uint32
        assert type(value) is c_type
        self.attributes[attribute.value] = value.value
        self.calls.append((f"SetAttribute{kind}", repcap, attribute.value, value.value))
        return self._result(f"SetAttribute{kind}")

    def _get(self, kind, c_type, vi, repcap, attribute, holder):
        self._check_handle(vi)
        assert isinstance(repcap, bytes)
        assert type(attribute) is ctypes.c_uint32
        assert type(holder._obj) is c_type
        holder._obj.value = self.attributes.get(attribute.value, 0)
        self.calls.append((f"GetAttribute{kind}", repcap, attribute.value))
        return self._result(f"GetAttribute{kind}")

    def KtM960x_SetAttributeViBoolean(self, vi, repcap, attribute, value):
        return self._set("ViBoolean", ctypes.c_uint16, vi, repcap, attribute, value)

    def KtM960x_SetAttributeViInt32(self, vi, repcap, attribute, value):
        return self._set("ViInt32", ctypes.c_int32, vi, repcap, attribute, value)

    def KtM960x_SetAttributeViReal64(self, vi, repcap, attribute, value):
        return self._set("ViReal64", ctypes.c_double, vi, repcap, attribute, value)

    def KtM960x_GetAttributeViBoolean(self, vi, repcap, attribute, holder):
        return self._get("ViBoolean", ctypes.c_uint16, vi, repcap, attribute, holder)

    def KtM960x_GetAttributeViInt32(self, vi, repcap, attribute, holder):
        return self._get("ViInt32", ctypes.c_int32, vi, repcap, attribute, holder)

    def KtM960x_GetAttributeViReal64(self, vi, repcap, attribute, holder):
        return self._get("ViReal64", ctypes.c_double, vi, repcap, attribute, holder)

    def KtM960x_GetAttributeViString(self, vi, repcap, attribute, size, buffer):
        self._check_handle(vi)
        assert type(size) is ctypes.c_int32 and size.value == len(buffer)
        buffer.value = f"text{attribute.value}".encode()
        self.calls.append(("GetAttributeViString", repcap, attribute.value))
        return self._result("GetAttributeViString")

    def KtM960x_TransientVoltageSetList(self, vi, repcap, count, values):
        self._check_handle(vi)
        assert type(count) is ctypes.c_int32
        assert len(values) == count.value
        self.calls.append(("TransientVoltageSetList", repcap, count.value, list(values)))
        return self._result("TransientVoltageSetList")

    def KtM960x_Initiate(self, vi, count, channels):
        self._check_handle(vi)
        self.calls.append(("Initiate", count.value, list(channels)))
        return self._result("Initiate")

    def KtM960x_SystemWaitForOperationComplete(self, vi, timeout_ms, complete):
        self._check_handle(vi)
        assert type(timeout_ms) is ctypes.c_int32
        complete._obj.value = 1 if self.complete else 0
        self.calls.append(("WaitForOperationComplete", timeout_ms.value))
        return self._result("WaitForOperationComplete")

    def KtM960x_MeasurementFetchArrayData(
        self, vi, fetch_type, count, channels, size, values, actual
    ):
        self._check_handle(vi)
        assert type(size) is ctypes.c_int32 and size.value == len(values)
        data = self.fetched[fetch_type.value]
        for index, value in enumerate(data[: size.value]):
            values[index] = value
        actual._obj.value = self.actual_size if self.actual_size is not None else len(data)
        self.calls.append(
            ("FetchArrayData", fetch_type.value, count.value, list(channels), size.value)
        )
        return self._result("FetchArrayData")

    def KtM960x_error_query(self, vi, code, message):
        self._check_handle(vi)
        number, text = self.queue.pop(0) if self.queue else (0, b"No error")
        code._obj.value = number
        message.value = text
        self.calls.append(("error_query",))
        return self._result("error_query")

    def KtM960x_GetError(self, vi, code, size, description):
        self._check_handle(vi)
        description.value = b"Invalid value for parameter"
        self.calls.append(("GetError",))
        return 0

    def KtM960x_close(self, vi):
        self._check_handle(vi)
        self.calls.append(("close",))
        return self._result("close")


@pytest.fixture
def library():
    return FakeKtM960x()


@pytest.fixture
def session(library):
    """An initialized session whose recorded library calls start empty."""
    opened = KtM960xSession(library=library)
    opened.initialize("PXI0::1::INSTR", True, False, "")
    library.calls.clear()
    return opened


# -- loading the vendor library ----------------------------------------------------------


def test_missing_library_raises_clear_error():
    with pytest.raises(InstrumentConnectionError) as caught:
        KtM960xSession()
    assert NOT_FOUND_MESSAGE in str(caught.value)


def test_bad_library_path_named_in_error(tmp_path):
    path = str(tmp_path / "KtM960x_64.dll")
    with pytest.raises(InstrumentConnectionError) as caught:
        load_library(path)
    assert path in str(caught.value)
    assert NOT_FOUND_MESSAGE in str(caught.value)


def test_session_satisfies_protocol(library):
    assert isinstance(KtM960xSession(library=library), IviSession)


def test_every_attribute_has_binding():
    assert set(ATTRIBUTE_BINDINGS) | {"VOLTAGE_LIST"} == set(ATTRIBUTES)


# Absolute values as KtM960xDefs.py in microsoft/Qcodes defines them; a failure here means a
# constant no longer matches the transcribed KtM960x.h.
HEADER_VALUES = {
    "ATTR_INSTRUMENT_FIRMWARE_REVISION": 1_050_510,
    "ATTR_INSTRUMENT_MANUFACTURER": 1_050_511,
    "ATTR_INSTRUMENT_MODEL": 1_050_512,
    "ATTR_MODULE_SERIAL_NUMBER": 1_150_027,
    "ATTR_MEASUREMENT_CURRENT_APERTURE": 1_150_334,
    "ATTR_MEASUREMENT_CURRENT_LIMIT": 1_150_341,
    "ATTR_MEASUREMENT_TRIGGER_COUNT": 1_150_367,
    "ATTR_MEASUREMENT_TRIGGER_DELAY": 1_150_368,
    "ATTR_MEASUREMENT_VOLTAGE_APERTURE": 1_150_372,
    "ATTR_OUTPUT_ENABLED": 1_150_403,
    "ATTR_OUTPUT_PRIORITY_MODE": 1_150_411,
    "ATTR_OUTPUT_VOLTAGE_LEVEL": 1_150_423,
    "ATTR_SYSTEM_AUTO_TIMER_RESET_ENABLED": 1_150_435,
    "ATTR_TRANSIENT_TRIGGER_COUNT": 1_150_463,
    "ATTR_TRANSIENT_VOLTAGE_MODE": 1_150_471,
    "VAL_PRIORITY_MODE_VOLTAGE": 0,
    "VAL_OUTPUT_MODE_FIXED": 0,
    "VAL_OUTPUT_MODE_LIST": 1,
    "VAL_FETCH_TYPE_VOLTAGE": 1,
    "VAL_FETCH_TYPE_CURRENT": 2,
    "VAL_FETCH_TYPE_TIME": 5,
}


@pytest.mark.parametrize(("name", "expected"), sorted(HEADER_VALUES.items()))
def test_constant_matches_header(name, expected):
    assert getattr(ktm960x_ctypes, name) == expected


# -- initialize and close ----------------------------------------------------------------


def test_initialize_marshals_arguments(library):
    opened = KtM960xSession(library=library)
    opened.initialize("PXI0::1::INSTR", True, True, "Simulate=true")
    assert library.calls == [
        ("InitWithOptions", b"PXI0::1::INSTR", 1, 1, b"Simulate=true"),
        ("SetAttributeViBoolean", b"", ATTR_SYSTEM_AUTO_TIMER_RESET_ENABLED, 1),
    ]


def test_initialize_failure_is_connection_error(library):
    library.status["InitWithOptions"] = ERROR_STATUS
    with pytest.raises(InstrumentConnectionError) as caught:
        KtM960xSession(library=library).initialize("PXI0::9::INSTR", True, False, "")
    assert "PXI0::9::INSTR" in caught.value.command


def test_call_before_initialize_rejected(library):
    with pytest.raises(InstrumentError) as caught:
        KtM960xSession(library=library).set_attribute("VOLTAGE_LEVEL", 0.1)
    assert "initialize" in caught.value.message
    assert library.calls == []


def test_close_once(session, library):
    session.close()
    session.close()
    assert library.calls == [("close",)]


# -- attributes --------------------------------------------------------------------------


@pytest.mark.parametrize("voltage_v", [0.6, -0.6])
def test_set_voltage_level_as_real64(session, library, voltage_v):
    session.set_attribute("VOLTAGE_LEVEL", voltage_v)
    assert library.calls == [("SetAttributeViReal64", b"1", ATTR_OUTPUT_VOLTAGE_LEVEL, voltage_v)]


def test_set_output_enabled_as_boolean(session, library):
    session.set_attribute("OUTPUT_ENABLED", True)
    session.set_attribute("OUTPUT_ENABLED", False)
    assert library.calls == [
        ("SetAttributeViBoolean", b"1", ATTR_OUTPUT_ENABLED, 1),
        ("SetAttributeViBoolean", b"1", ATTR_OUTPUT_ENABLED, 0),
    ]


def test_set_sweep_mode_as_enumeration(session, library):
    session.set_attribute("SWEEP_MODE", "LIST")
    session.set_attribute("SWEEP_MODE", "FIXED")
    assert library.calls == [
        ("SetAttributeViInt32", b"1", ATTR_TRANSIENT_VOLTAGE_MODE, 1),
        ("SetAttributeViInt32", b"1", ATTR_TRANSIENT_VOLTAGE_MODE, 0),
    ]


def test_invalid_enumeration_value_rejected(session, library):
    with pytest.raises(InstrumentError) as caught:
        session.set_attribute("SWEEP_MODE", "SWEEP")
    assert "'FIXED'" in caught.value.message
    assert library.calls == []


def test_trigger_count_sets_both_triggers(session, library):
    session.set_attribute("TRIGGER_COUNT", 5)
    assert library.calls == [
        ("SetAttributeViInt32", b"1", ATTR_MEASUREMENT_TRIGGER_COUNT, 5),
        ("SetAttributeViInt32", b"1", ATTR_TRANSIENT_TRIGGER_COUNT, 5),
    ]


def test_aperture_sets_current_and_voltage(session, library):
    session.set_attribute("MEASUREMENT_APERTURE", 0.02)
    assert library.calls == [
        ("SetAttributeViReal64", b"1", ATTR_MEASUREMENT_CURRENT_APERTURE, 0.02),
        ("SetAttributeViReal64", b"1", ATTR_MEASUREMENT_VOLTAGE_APERTURE, 0.02),
    ]


def test_voltage_list_marshalled_as_array(session, library):
    session.set_attribute("VOLTAGE_LIST", (0.0, 1.5, -1.5))
    assert library.calls == [("TransientVoltageSetList", b"1", 3, [0.0, 1.5, -1.5])]
    assert session.get_attribute("VOLTAGE_LIST") == (0.0, 1.5, -1.5)


def test_get_real64_attribute(session, library):
    library.attributes[ATTR_MEASUREMENT_CURRENT_LIMIT] = 1e-5
    assert session.get_attribute("CURRENT_LIMIT") == 1e-5
    assert library.calls == [("GetAttributeViReal64", b"1", ATTR_MEASUREMENT_CURRENT_LIMIT)]


def test_get_boolean_attribute_as_bool(session, library):
    library.attributes[ATTR_OUTPUT_ENABLED] = 1
    assert session.get_attribute("OUTPUT_ENABLED") is True


def test_get_enumeration_as_text(session, library):
    library.attributes[ATTR_TRANSIENT_VOLTAGE_MODE] = 1
    assert session.get_attribute("SWEEP_MODE") == "LIST"


def test_get_unknown_enumeration_rejected(session, library):
    library.attributes[ATTR_TRANSIENT_VOLTAGE_MODE] = 7
    with pytest.raises(InstrumentError):
        session.get_attribute("SWEEP_MODE")


def test_unknown_attribute_rejected(session, library):
    with pytest.raises(InstrumentError) as caught:
        session.set_attribute("OUTPUT_VOLTAGE", 1.0)
    assert "unknown attribute" in caught.value.message
    assert library.calls == []


def test_error_status_raises_with_description(session, library):
    library.status["SetAttributeViReal64"] = ERROR_STATUS
    with pytest.raises(InstrumentError) as caught:
        session.set_attribute("VOLTAGE_LEVEL", 300.0)
    assert "0xbffa0010" in caught.value.message
    assert "Invalid value for parameter" in caught.value.message
    assert caught.value.instrument == "Keysight M9601A"


def test_warning_status_is_logged(session, library, caplog):
    library.status["SetAttributeViReal64"] = WARNING_STATUS
    with caplog.at_level(logging.WARNING, logger="instruments.ktm960x_ctypes"):
        session.set_attribute("VOLTAGE_LEVEL", 0.1)
    assert "warning" in caplog.text


# -- acquisitions ------------------------------------------------------------------------


def test_initiate_marshals_channel_list(session, library):
    session.initiate()
    assert library.calls == [("Initiate", 1, [1])]


def test_list_initiate_needs_matching_count(session, library):
    session.set_attribute("SWEEP_MODE", "LIST")
    session.set_attribute("VOLTAGE_LIST", (0.0, 1.0))
    session.set_attribute("TRIGGER_COUNT", 3)
    library.calls.clear()
    with pytest.raises(InstrumentError) as caught:
        session.initiate()
    assert "TRIGGER_COUNT is 3" in caught.value.message
    assert library.calls == []


def test_fetch_returns_time_voltage_current(session, library):
    session.set_attribute("TRIGGER_COUNT", 3)
    session.initiate()
    library.calls.clear()
    data = session.fetch(2.5)
    assert library.calls == [
        ("WaitForOperationComplete", 2500),
        ("FetchArrayData", 5, 1, [1], 3),
        ("FetchArrayData", 1, 1, [1], 3),
        ("FetchArrayData", 2, 1, [1], 3),
    ]
    np.testing.assert_array_equal(data["time_s"], [0.0, 0.01, 0.02])
    np.testing.assert_array_equal(data["voltage_v"], [0.5, -0.5, 0.0])
    np.testing.assert_array_equal(data["current_a"], [5e-9, -5e-9, 0.0])


def test_fetch_without_initiate_rejected(session, library):
    with pytest.raises(InstrumentError):
        session.fetch(1.0)
    assert library.calls == []


def test_fetch_timeout(session, library):
    session.set_attribute("TRIGGER_COUNT", 3)
    session.initiate()
    library.complete = False
    with pytest.raises(InstrumentTimeout):
        session.fetch(0.5)


def test_fetch_short_array_rejected(session, library):
    session.set_attribute("TRIGGER_COUNT", 3)
    session.initiate()
    library.actual_size = 2
    with pytest.raises(InstrumentError) as caught:
        session.fetch(1.0)
    assert "expected 3" in caught.value.message


# -- identification and errors -----------------------------------------------------------


def test_identify_reads_four_strings(session, library):
    identity = session.identify()
    assert [call[0] for call in library.calls] == ["GetAttributeViString"] * 4
    assert identity.count(", ") == 3


def test_error_query_decodes_code_and_message(session, library):
    library.queue = [(-222, b"Data out of range"), (0, b"No error")]
    assert session.error_query() == (-222, "Data out of range")
    assert session.error_query() == (0, "No error")


# -- through the driver ------------------------------------------------------------------


def test_driver_on_ctypes_session(library):
    limits = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)
    smu = KeysightM9601A("PXI0::1::INSTR", limits, session=KtM960xSession(library=library))
    library.calls.clear()
    smu.source_voltage_v = -0.6
    assert library.calls == [("SetAttributeViReal64", b"1", ATTR_OUTPUT_VOLTAGE_LEVEL, -0.6)]
