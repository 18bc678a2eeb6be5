"""Tests of the helpers shared by the SCPI drivers."""

from __future__ import annotations

import math

import numpy as np
import pymeasure.instruments.instrument as pymeasure_instrument
import pytest
from pymeasure.instruments import Instrument
from pymeasure.test import expected_protocol
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.rs_rte1104 import RohdeSchwarzRTE1104
from instruments.scpi_instrument import (
    convert_io_error,
    format_float,
    keyword_reply,
    parse_bool,
    parse_error_reply,
    strict_finite_range,
    strict_int_range,
)


def test_parse_error_reply():
    assert parse_error_reply('+0,"No error"') == (0, "No error")
    assert parse_error_reply('-222,"Data out of range;CHAN1:SCAL 20"\n') == (
        -222,
        "Data out of range;CHAN1:SCAL 20",
    )
    with pytest.raises(ValueError, match="unreadable"):
        parse_error_reply("No error")


def test_format_float_keeps_digits():
    assert format_float(1e-7) == "1e-07"
    assert format_float(1.2345678e-4) == "0.00012345678"
    assert format_float(-0.6) == "-0.6"
    assert format_float(np.float32(0.5)) == "0.5"


def test_parse_bool():
    assert parse_bool("1") is True
    assert parse_bool(" OFF\n") is False
    with pytest.raises(ValueError):
        parse_bool("2")


def test_keyword_reply_maps_long_forms():
    parse = keyword_reply(("DC", "DCL", "AC"))
    assert parse("DCLIMIT") == "DCL"
    assert parse('"dc"') == "DC"
    assert parse("GND") == "GND"


def test_strict_finite_range_rejects_without_clipping():
    assert strict_finite_range(2.5, (0, 5)) == 2.5
    assert strict_finite_range(np.float64(1.0), (0, 5)) == 1.0
    for bad in (5.1, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError):
            strict_finite_range(bad, (0, 5))
    for bad in (True, "1", None):
        with pytest.raises(TypeError):
            strict_finite_range(bad, (0, 5))


def test_strict_int_range():
    assert strict_int_range(np.int64(3), (1, 5)) == 3
    with pytest.raises(TypeError):
        strict_int_range(3.0, (1, 5))
    with pytest.raises(ValueError):
        strict_int_range(6, (1, 5))


def test_convert_io_error_by_status():
    timeout = convert_io_error("X", "A?", VisaIOError(StatusCode.error_timeout))
    lost = convert_io_error("X", "A?", VisaIOError(StatusCode.error_connection_lost))
    other = convert_io_error("X", "A?", VisaIOError(StatusCode.error_invalid_format))
    socket = convert_io_error("X", "A?", BrokenPipeError("broken pipe"))
    assert type(timeout) is InstrumentTimeout
    assert type(lost) is InstrumentConnectionError
    assert type(other) is InstrumentError
    assert type(socket) is InstrumentConnectionError
    assert lost.instrument == "X"
    assert lost.command == "A?"


def test_open_failure_becomes_connection_error(monkeypatch):
    def missing(resource, **kwargs):
        raise VisaIOError(StatusCode.error_resource_not_found)

    monkeypatch.setattr(pymeasure_instrument, "VISAAdapter", missing)
    with pytest.raises(InstrumentConnectionError) as info:
        RohdeSchwarzRTE1104("TCPIP::192.0.2.1::INSTR")
    assert info.value.command == "open 'TCPIP::192.0.2.1::INSTR'"


def test_missing_visa_library_becomes_connection_error(monkeypatch):
    def no_library(resource, **kwargs):
        raise ValueError("Could not locate a VISA implementation.")

    monkeypatch.setattr(pymeasure_instrument, "VISAAdapter", no_library)
    with pytest.raises(InstrumentConnectionError, match="VISA implementation"):
        RohdeSchwarzRTE1104("USB0::1::INSTR")


class DynamicScope(RohdeSchwarzRTE1104):
    """A scope driver with one dynamic property, which the plain attribute access cannot guard."""

    sample_rate = Instrument.control(
        "ACQ:SRAT?", "ACQ:SRAT %g", "Control the sample rate in Sa/s (float).", dynamic=True
    )


def test_dynamic_property_is_rejected():
    with pytest.raises(TypeError, match="dynamic properties"), expected_protocol(DynamicScope, []):
        pass


def test_ask_waits_query_delay(monkeypatch):
    waits = []
    with expected_protocol(RohdeSchwarzRTE1104, [("ACQ:SRAT?", "1E6")]) as inst:
        monkeypatch.setattr(inst, "wait_for", waits.append)
        assert inst.ask("ACQ:SRAT?", query_delay=0.25) == "1E6"
    assert waits == [0.25]


def test_check_now_without_pending_commands_sends_nothing():
    with expected_protocol(RohdeSchwarzRTE1104, []) as inst:
        assert inst.check_now() == []
