"""Recorded-call tests of the Keysight M9601A driver against a scripted IVI session."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pytest

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.ivi_session import IviSession
from instruments.keysight_m9601a import (
    APERTURE_RANGE_S,
    FETCH_MARGIN_S,
    MAX_ERROR_QUEUE_READS,
    KeysightM9601A,
    Reading,
)
from instruments.ktm960x_ctypes import NOT_FOUND_MESSAGE
from instruments.safety import SafetyLimitError, SafetyLimits

RESOURCE = "PXI0::CHASSIS1::SLOT2::INDEX0::INSTR"
LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)


class RecordingSession:
    """IviSession fake that records every call and returns scripted values.

    ``set`` stores the value, so a later ``get`` returns it unless ``readback`` scripts
    another value. ``failures`` maps a recorded call to the exception it raises (the call is
    still recorded). ``fetch_results`` and ``error_queue`` are consumed in order.
    """

    def __init__(self):
        self.calls: list[tuple] = []
        self.values = {
            "OUTPUT_ENABLED": False,
            "VOLTAGE_LEVEL": 0.0,
            "CURRENT_LIMIT": 1e-6,
            "MEASUREMENT_APERTURE": 0.02,
            "SOURCE_DELAY": 0.0,
            "SWEEP_MODE": "FIXED",
        }
        self.readback: dict[str, object] = {}
        self.failures: dict[tuple, BaseException] = {}
        self.fetch_results: list[dict] = []
        self.error_queue: list[tuple[int, str]] = []

    def _record(self, call: tuple) -> None:
        self.calls.append(call)
        if call in self.failures:
            raise self.failures[call]

    def initialize(self, resource, id_query, reset, options):
        self._record(("initialize", resource, id_query, reset, options))

    def set_attribute(self, name, value):
        self._record(("set", name, value))
        self.values[name] = value

    def get_attribute(self, name):
        self._record(("get", name))
        return self.readback.get(name, self.values.get(name))

    def identify(self):
        self._record(("identify",))
        return "Keysight Technologies, M9601A, MY00000001, 1.0.0"

    def initiate(self):
        self._record(("initiate",))

    def fetch(self, timeout_s):
        self._record(("fetch", timeout_s))
        return self.fetch_results.pop(0)

    def error_query(self):
        self._record(("error_query",))
        return self.error_queue.pop(0) if self.error_queue else (0, "No error")

    def close(self):
        self._record(("close",))


class RecordingClock:
    def __init__(self):
        self.sleeps: list[float] = []

    def now(self) -> float:
        return sum(self.sleeps)

    def sleep(self, duration_s: float) -> None:
        self.sleeps.append(duration_s)


def readings(voltages_v, currents_a):
    voltages = np.asarray(voltages_v, dtype=float)
    return {
        "time_s": np.arange(voltages.size) * 0.01,
        "voltage_v": voltages,
        "current_a": np.asarray(currents_a, dtype=float),
    }


@pytest.fixture
def session():
    return RecordingSession()


@pytest.fixture
def clock():
    return RecordingClock()


@pytest.fixture
def smu(session, clock):
    """A connected driver whose recorded calls start empty."""
    driver = KeysightM9601A(RESOURCE, LIMITS, session=session, clock=clock)
    session.calls.clear()
    return driver


@pytest.fixture
def armed_smu(smu, session):
    """A driver with a verified current limit, calls cleared."""
    smu.current_limit_a = 1e-5
    session.calls.clear()
    return smu


def set_calls(session, name):
    return [call for call in session.calls if call[:2] == ("set", name)]


# -- connection ------------------------------------------------------------------------


def test_recording_session_is_an_ivi_session(session):
    assert isinstance(session, IviSession)


def test_connect_initializes_session(session, clock, caplog):
    with caplog.at_level(logging.INFO, logger="instruments.keysight_m9601a"):
        KeysightM9601A(RESOURCE, LIMITS, session=session, clock=clock)
    assert session.calls == [("initialize", RESOURCE, True, False, "")]
    assert RESOURCE in caplog.text


def test_connect_passes_reset_and_options(session):
    KeysightM9601A(RESOURCE, LIMITS, session=session, reset=True, options="Simulate=true")
    assert session.calls == [("initialize", RESOURCE, True, True, "Simulate=true")]


def test_connect_without_vendor_driver():
    with pytest.raises(InstrumentConnectionError) as caught:
        KeysightM9601A(RESOURCE, LIMITS)
    assert NOT_FOUND_MESSAGE in str(caught.value)
    assert "Keysight M9601A" in str(caught.value)


def test_close_closes_session(smu, session, caplog):
    with caplog.at_level(logging.INFO, logger="instruments.keysight_m9601a"):
        smu.close()
    assert session.calls == [("close",)]
    assert RESOURCE in caplog.text


def test_unexpected_session_error_is_wrapped(smu, session):
    session.failures[("get", "VOLTAGE_LEVEL")] = OSError("access violation")
    with pytest.raises(InstrumentError) as caught:
        _ = smu.source_voltage_v
    assert caught.value.instrument == "Keysight M9601A"
    assert caught.value.command == "get_attribute('VOLTAGE_LEVEL')"
    assert "access violation" in caught.value.message


# -- source_voltage_v ------------------------------------------------------------------


def test_source_voltage_getter(smu, session):
    session.readback["VOLTAGE_LEVEL"] = -0.6
    assert smu.source_voltage_v == -0.6
    assert session.calls == [("get", "VOLTAGE_LEVEL")]


@pytest.mark.parametrize("voltage_v", [0.6, -0.6, -2.5, 4.0, 0.0])
def test_source_voltage_setter(smu, session, voltage_v):
    smu.source_voltage_v = voltage_v
    assert session.calls == [("set", "VOLTAGE_LEVEL", voltage_v)]


def test_negative_set_point_reaches_session_negative(smu, session):
    smu.source_voltage_v = -1.25
    assert session.values["VOLTAGE_LEVEL"] == -1.25


@pytest.mark.parametrize("voltage_v", [4.01, -2.51, math.nan, math.inf])
def test_source_voltage_out_of_limits_rejected(smu, session, voltage_v):
    with pytest.raises(SafetyLimitError):
        smu.source_voltage_v = voltage_v
    assert session.calls == []


def test_source_voltage_error_names_value_and_limit(smu):
    with pytest.raises(SafetyLimitError) as caught:
        smu.source_voltage_v = 5.0
    assert "5 V" in str(caught.value)
    assert "max_voltage_v = 4 V" in str(caught.value)


# -- current_limit_a -------------------------------------------------------------------


def test_current_limit_getter(smu, session):
    session.readback["CURRENT_LIMIT"] = 2e-5
    assert smu.current_limit_a == 2e-5
    assert session.calls == [("get", "CURRENT_LIMIT")]


def test_current_limit_setter_writes_and_reads_back(smu, session):
    smu.current_limit_a = 1e-5
    assert session.calls == [("set", "CURRENT_LIMIT", 1e-5), ("get", "CURRENT_LIMIT")]


def test_current_limit_read_back_mismatch(smu, session):
    session.readback["CURRENT_LIMIT"] = 1e-4
    with pytest.raises(InstrumentError) as caught:
        smu.current_limit_a = 1e-5
    assert "1e-04 A" in caught.value.message or "0.0001 A" in caught.value.message
    assert "1e-05 A" in caught.value.message


def test_mismatched_limit_keeps_output_locked(smu, session):
    session.readback["CURRENT_LIMIT"] = 1.2e-5
    with pytest.raises(InstrumentError):
        smu.current_limit_a = 1e-5
    session.calls.clear()
    with pytest.raises(SafetyLimitError):
        smu.output_enabled = True
    assert session.calls == []


@pytest.mark.parametrize("current_a", [2e-4, 0.0, -1e-6, math.nan])
def test_current_limit_out_of_range_rejected(smu, session, current_a):
    with pytest.raises(SafetyLimitError):
        smu.current_limit_a = current_a
    assert session.calls == []


# -- output_enabled --------------------------------------------------------------------


def test_output_enabled_getter(smu, session):
    session.readback["OUTPUT_ENABLED"] = True
    assert smu.output_enabled is True
    assert session.calls == [("get", "OUTPUT_ENABLED")]


def test_output_on_checks_set_point_then_enables(armed_smu, session):
    session.values["VOLTAGE_LEVEL"] = 0.6
    armed_smu.output_enabled = True
    assert session.calls == [
        ("get", "VOLTAGE_LEVEL"),
        ("set", "SOURCE_FUNCTION", "VOLTAGE"),
        ("set", "OUTPUT_ENABLED", True),
    ]


def test_output_on_without_current_limit_rejected(smu, session):
    with pytest.raises(SafetyLimitError) as caught:
        smu.output_enabled = True
    assert "current_limit_a" in str(caught.value)
    assert session.calls == []


def test_output_on_with_unsafe_held_set_point_rejected(armed_smu, session):
    session.values["VOLTAGE_LEVEL"] = 5.0
    with pytest.raises(SafetyLimitError):
        armed_smu.output_enabled = True
    assert session.calls == [("get", "VOLTAGE_LEVEL")]


def test_output_off(smu, session):
    smu.output_enabled = False
    assert session.calls == [("set", "OUTPUT_ENABLED", False)]


# -- aperture_s and source_delay_s -----------------------------------------------------


def test_aperture_getter(smu, session):
    assert smu.aperture_s == 0.02
    assert session.calls == [("get", "MEASUREMENT_APERTURE")]


def test_aperture_setter(smu, session):
    smu.aperture_s = 1e-3
    assert session.calls == [("set", "MEASUREMENT_APERTURE", 1e-3)]


@pytest.mark.parametrize(
    "aperture_s", [APERTURE_RANGE_S[0] / 2, APERTURE_RANGE_S[1] * 2, 0.0, math.nan]
)
def test_aperture_out_of_range_rejected(smu, session, aperture_s):
    with pytest.raises(ValueError):
        smu.aperture_s = aperture_s
    assert session.calls == []


def test_source_delay_getter(smu, session):
    assert smu.source_delay_s == 0.0
    assert session.calls == [("get", "SOURCE_DELAY")]


def test_source_delay_setter(smu, session):
    smu.source_delay_s = 5e-4
    assert session.calls == [("set", "SOURCE_DELAY", 5e-4)]


@pytest.mark.parametrize("delay_s", [-1e-3, math.inf])
def test_source_delay_invalid_rejected(smu, session, delay_s):
    with pytest.raises(ValueError):
        smu.source_delay_s = delay_s
    assert session.calls == []


# -- measure ---------------------------------------------------------------------------


def test_measure_runs_one_fixed_acquisition(smu, session):
    session.fetch_results.append(readings([0.6], [6e-9]))
    reading = smu.measure()
    assert reading == Reading(current_a=6e-9, voltage_v=0.6)
    assert session.calls == [
        ("set", "SWEEP_MODE", "FIXED"),
        ("set", "TRIGGER_COUNT", 1),
        ("initiate",),
        ("fetch", APERTURE_RANGE_S[1] + FETCH_MARGIN_S),
    ]


def test_measure_timeout_follows_written_aperture(smu, session):
    smu.aperture_s = 0.02
    smu.source_delay_s = 0.001
    session.calls.clear()
    session.fetch_results.append(readings([0.6], [6e-9]))
    smu.measure()
    assert session.calls[-1] == ("fetch", pytest.approx(0.021 + FETCH_MARGIN_S))


def test_measure_negative_polarity(smu, session):
    session.fetch_results.append(readings([-0.6], [-7e-9]))
    reading = smu.measure(timeout_s=1.0)
    assert reading.voltage_v == -0.6
    assert reading.current_a == -7e-9
    assert session.calls[-1] == ("fetch", 1.0)


def test_measure_rejects_wrong_point_count(smu, session):
    session.fetch_results.append(readings([0.6, 0.6], [1e-9, 1e-9]))
    with pytest.raises(InstrumentError) as caught:
        smu.measure()
    assert "expected 1" in caught.value.message


# -- sweep -----------------------------------------------------------------------------


def test_sweep_call_list_with_output_off(armed_smu, session):
    voltages = [0.0, 1.0, -1.0, 0.0]
    session.fetch_results.append(readings(voltages, [0.0, 1e-8, -1e-8, 0.0]))
    data = armed_smu.sweep(voltages, aperture_s=0.01, source_delay_s=0.001, timeout_s=5.0)
    assert session.calls == [
        ("set", "MEASUREMENT_APERTURE", 0.01),
        ("set", "SOURCE_DELAY", 0.001),
        ("set", "SWEEP_MODE", "LIST"),
        ("set", "VOLTAGE_LIST", (0.0, 1.0, -1.0, 0.0)),
        ("set", "TRIGGER_COUNT", 4),
        ("get", "OUTPUT_ENABLED"),
        ("get", "VOLTAGE_LEVEL"),
        ("set", "SOURCE_FUNCTION", "VOLTAGE"),
        ("set", "OUTPUT_ENABLED", True),
        ("initiate",),
        ("fetch", 5.0),
        ("set", "VOLTAGE_LEVEL", 0.0),
        ("set", "SWEEP_MODE", "FIXED"),
    ]
    np.testing.assert_array_equal(data["voltage_v"], voltages)
    np.testing.assert_array_equal(data["current_a"], [0.0, 1e-8, -1e-8, 0.0])
    assert set(data) == {"time_s", "voltage_v", "current_a"}


def test_sweep_with_output_on_keeps_it(armed_smu, session):
    session.values["OUTPUT_ENABLED"] = True
    session.fetch_results.append(readings([0.5, 0.6], [5e-9, 6e-9]))
    armed_smu.sweep([0.5, 0.6], aperture_s=0.01, source_delay_s=0.0)
    assert set_calls(session, "OUTPUT_ENABLED") == []
    assert set_calls(session, "VOLTAGE_LEVEL") == [("set", "VOLTAGE_LEVEL", 0.6)]


def test_sweep_negative_points_stay_negative(armed_smu, session):
    session.fetch_results.append(readings([-2.0, -1.0], [-2e-8, -1e-8]))
    armed_smu.sweep(np.array([-2.0, -1.0]), aperture_s=0.01, source_delay_s=0.0)
    assert set_calls(session, "VOLTAGE_LIST") == [("set", "VOLTAGE_LIST", (-2.0, -1.0))]


def test_sweep_default_timeout(armed_smu, session):
    session.fetch_results.append(readings([0.1, 0.2], [0, 0]))
    armed_smu.sweep([0.1, 0.2], aperture_s=0.01, source_delay_s=0.005)
    fetches = [call for call in session.calls if call[0] == "fetch"]
    assert fetches == [("fetch", pytest.approx(2 * 2 * 0.015 + FETCH_MARGIN_S))]


@pytest.mark.parametrize(
    "voltages",
    [[0.0, 1.0, 4.5, 0.0], [0.0, -3.0], [0.0, math.nan], []],
    ids=["above", "below", "nan", "empty"],
)
def test_sweep_bad_point_rejected_before_any_call(armed_smu, session, voltages):
    with pytest.raises(SafetyLimitError):
        armed_smu.sweep(voltages, aperture_s=0.01, source_delay_s=0.0)
    assert session.calls == []
    assert set_calls(session, "OUTPUT_ENABLED") == []


def test_sweep_error_names_offending_point(armed_smu):
    with pytest.raises(SafetyLimitError) as caught:
        armed_smu.sweep([0.0, 1.0, 4.5], aperture_s=0.01, source_delay_s=0.0)
    assert "sample 2" in str(caught.value)
    assert "4.5 V" in str(caught.value)


def test_sweep_without_current_limit_rejected(smu, session):
    with pytest.raises(SafetyLimitError):
        smu.sweep([0.0, 1.0], aperture_s=0.01, source_delay_s=0.0)
    assert session.calls == []


def test_sweep_two_dimensional_rejected(armed_smu, session):
    with pytest.raises(ValueError):
        armed_smu.sweep([[0.0, 1.0], [1.0, 0.0]], aperture_s=0.01, source_delay_s=0.0)
    assert session.calls == []


def test_sweep_bad_aperture_rejected_before_any_call(armed_smu, session):
    with pytest.raises(ValueError):
        armed_smu.sweep([0.0, 1.0], aperture_s=10.0, source_delay_s=0.0)
    assert session.calls == []


def test_sweep_failure_shuts_output_down(armed_smu, session, clock):
    session.failures[("fetch", 5.0)] = InstrumentTimeout("Keysight M9601A", "fetch", "timed out")
    with pytest.raises(InstrumentTimeout):
        armed_smu.sweep([0.0, 1.0], aperture_s=0.01, source_delay_s=0.0, timeout_s=5.0)
    assert session.calls[-1] == ("set", "OUTPUT_ENABLED", False)
    assert ("set", "VOLTAGE_LEVEL", 0.0) in session.calls
    assert ("close",) not in session.calls


def test_sweep_short_fetch_shuts_output_down(armed_smu, session):
    session.fetch_results.append(readings([0.0], [0.0]))
    with pytest.raises(InstrumentError) as caught:
        armed_smu.sweep([0.0, 1.0], aperture_s=0.01, source_delay_s=0.0)
    assert "expected 2" in caught.value.message
    assert session.calls[-1] == ("set", "OUTPUT_ENABLED", False)


# -- identify and errors ---------------------------------------------------------------


def test_identify(smu, session):
    assert smu.identify() == "Keysight Technologies, M9601A, MY00000001, 1.0.0"
    assert session.calls == [("identify",)]


def test_check_errors_empty_queue(smu, session):
    smu.check_errors()
    assert session.calls == [("error_query",)]


def test_check_errors_raises_with_last_operation(smu, session):
    smu.source_voltage_v = 0.5
    session.error_queue = [(-222, "Data out of range"), (-113, "Undefined header")]
    session.calls.clear()
    with pytest.raises(InstrumentError) as caught:
        smu.check_errors()
    assert session.calls == [("error_query",)] * 3
    assert caught.value.instrument == "Keysight M9601A"
    assert caught.value.command == "set_attribute('VOLTAGE_LEVEL', 0.5)"
    assert "-222: Data out of range" in caught.value.message
    assert "-113: Undefined header" in caught.value.message


def test_check_errors_stops_on_endless_queue(smu, session):
    session.error_queue = [(-350, "Queue overflow")] * (MAX_ERROR_QUEUE_READS + 5)
    with pytest.raises(InstrumentError) as caught:
        smu.check_errors()
    assert len(session.calls) == MAX_ERROR_QUEUE_READS
    assert "still not empty" in caught.value.message


def test_check_errors_wraps_failing_query(smu, session):
    session.failures[("error_query",)] = OSError("bus error")
    with pytest.raises(InstrumentError) as caught:
        smu.check_errors()
    assert caught.value.command == "error_query()"


# -- ramp_to_zero and shutdown ---------------------------------------------------------


def test_ramp_to_zero_steps_down(smu, session, clock):
    session.values["VOLTAGE_LEVEL"] = 0.25
    smu.ramp_to_zero(step_v=0.1, step_delay_s=0.05)
    levels = [call[2] for call in set_calls(session, "VOLTAGE_LEVEL")]
    assert session.calls[0] == ("get", "VOLTAGE_LEVEL")
    assert levels == pytest.approx([0.25 * 2 / 3, 0.25 / 3, 0.0])
    assert levels[-1] == 0.0
    assert clock.sleeps == [0.05, 0.05, 0.05]


def test_ramp_to_zero_from_negative(smu, session, clock):
    session.values["VOLTAGE_LEVEL"] = -0.3
    smu.ramp_to_zero(step_v=0.1, step_delay_s=0.0)
    levels = [call[2] for call in set_calls(session, "VOLTAGE_LEVEL")]
    assert levels == pytest.approx([-0.2, -0.1, 0.0])
    assert all(level <= 0 for level in levels)


def test_ramp_steps_never_exceed_step(smu, session):
    session.values["VOLTAGE_LEVEL"] = 3.7
    smu.ramp_to_zero(step_v=0.25, step_delay_s=0.0)
    levels = [3.7] + [call[2] for call in set_calls(session, "VOLTAGE_LEVEL")]
    assert max(abs(a - b) for a, b in itertools.pairwise(levels)) <= 0.25 + 1e-12
    assert levels[-1] == 0.0


def test_ramp_from_zero_writes_zero_once(smu, session, clock):
    smu.ramp_to_zero()
    assert set_calls(session, "VOLTAGE_LEVEL") == [("set", "VOLTAGE_LEVEL", 0.0)]


def test_ramp_uses_given_clock(smu, session, clock):
    other = RecordingClock()
    session.values["VOLTAGE_LEVEL"] = 0.1
    smu.ramp_to_zero(step_v=0.1, step_delay_s=0.2, clock=other)
    assert other.sleeps == [0.2]
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "step_v, step_delay_s", [(0.0, 0.01), (-0.1, 0.01), (0.1, -1.0), (math.nan, 0.0)]
)
def test_ramp_invalid_arguments_rejected(smu, session, step_v, step_delay_s):
    with pytest.raises(ValueError):
        smu.ramp_to_zero(step_v, step_delay_s)
    assert session.calls == []


def test_shutdown_ramps_and_turns_output_off(smu, session, clock):
    session.values["VOLTAGE_LEVEL"] = 0.2
    smu.shutdown(step_v=0.1, step_delay_s=0.01)
    assert session.calls == [
        ("set", "SWEEP_MODE", "FIXED"),
        ("get", "VOLTAGE_LEVEL"),
        ("set", "VOLTAGE_LEVEL", pytest.approx(0.1)),
        ("set", "VOLTAGE_LEVEL", 0.0),
        ("set", "VOLTAGE_LEVEL", 0.0),
        ("set", "OUTPUT_ENABLED", False),
    ]
    assert clock.sleeps == [0.01, 0.01]


def test_shutdown_continues_past_failing_ramp(smu, session, caplog):
    session.failures[("get", "VOLTAGE_LEVEL")] = InstrumentError(
        "Keysight M9601A", "get", "no answer"
    )
    with (
        caplog.at_level(logging.ERROR, logger="instruments.keysight_m9601a"),
        pytest.raises(InstrumentError) as caught,
    ):
        smu.shutdown()
    assert ("set", "VOLTAGE_LEVEL", 0.0) in session.calls
    assert session.calls[-1] == ("set", "OUTPUT_ENABLED", False)
    assert "ramp to 0 V" in caught.value.message
    assert "ramp to 0 V" in caplog.text


def test_shutdown_reports_every_failed_step(smu, session):
    session.failures[("set", "SWEEP_MODE", "FIXED")] = InstrumentError(
        "Keysight M9601A", "set", "busy"
    )
    session.failures[("set", "OUTPUT_ENABLED", False)] = InstrumentError(
        "Keysight M9601A", "set", "relay"
    )
    with pytest.raises(InstrumentError) as caught:
        smu.shutdown()
    assert "fixed mode" in caught.value.message
    assert "output off" in caught.value.message
    assert "0 V set-point" not in caught.value.message
    assert ("set", "VOLTAGE_LEVEL", 0.0) in session.calls


def test_shutdown_leaves_session_open(smu, session):
    smu.shutdown()
    assert ("close",) not in session.calls
