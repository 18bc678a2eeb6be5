"""Protocol tests of the Keysight 33500B driver: exact messages, safety checks, failures.

PyMeasure 0.16's ``expected_protocol`` compares a bytes pair byte for byte with what
``write_bytes`` sends, terminator included, so the arbitrary-waveform upload is checked
down to its block header, byte order and trailing LF. A test with no pairs proves that a
rejected setting sent nothing.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from pymeasure.test import expected_protocol
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.keysight_33500b import (
    Keysight33500B,
    Keysight33500BChannel,
    OutputState,
    amplitude_range_vpp,
    load_factor,
    max_programmed_level_v,
)
from instruments.safety import SafetyLimitError, SafetyLimits

OK = '+0,"No error"'
INF_REPLY = "+9.900000000000000E+37"
LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)
WIDE_LIMITS = SafetyLimits(max_voltage_v=30.0, min_voltage_v=-30.0, max_current_a=1e-3)


def setting(command):
    """The pairs of one setting: the command, then the error-queue read."""
    return [(command, None), ("SYST:ERR?", OK)]


def batch(*commands):
    """The pairs of a settings batch: every command, then one error-queue read."""
    return [(command, None) for command in commands] + [("SYST:ERR?", OK)]


def state(
    channel=1, output="0", load=INF_REPLY, function="DC", unit="VPP", amplitude="0.1", offset="0"
):
    """The pairs of the output-state read, in the driver's order."""
    return [
        (f"OUTP{channel}?", output),
        (f"OUTP{channel}:LOAD?", load),
        (f"SOUR{channel}:FUNC?", function),
        (f"SOUR{channel}:VOLT:UNIT?", unit),
        (f"SOUR{channel}:VOLT?", amplitude),
        (f"SOUR{channel}:VOLT:OFFS?", offset),
    ]


def generator(pairs, limits=LIMITS, **kwargs):
    return expected_protocol(Keysight33500B, pairs, limits=limits, **kwargs)


def raise_visa(status):
    def fail(*args, **kwargs):
        raise VisaIOError(status)

    return fail


# ---- output physics ---------------------------------------------------------------------


def test_load_factor_doubles_at_50_ohm():
    assert load_factor(50.0, math.inf) == 2.0
    assert load_factor(math.inf, math.inf) == 1.0


def test_load_factor_with_finite_device():
    # 50 ohm setting into a real 50 ohm load: the device receives the programmed value.
    assert load_factor(50.0, 50.0) == pytest.approx(1.0)
    assert load_factor(math.inf, 1e6) == pytest.approx(1e6 / (1e6 + 50))


def test_generator_range_follows_load():
    assert max_programmed_level_v(50.0) == 5.0
    assert max_programmed_level_v(math.inf) == 10.0
    assert amplitude_range_vpp(50.0) == pytest.approx((1e-3, 10.0))
    assert amplitude_range_vpp(math.inf) == pytest.approx((2e-3, 20.0))


def test_output_state_reach():
    waveform = OutputState(True, math.inf, "SIN", 2.0, 0.5)
    assert waveform.reach_v() == (-0.5, 1.5)
    dc = OutputState(True, math.inf, "DC", 2.0, 0.5)
    assert dc.reach_v() == (0.5, 0.5)


# ---- constructor and reviewed surface ------------------------------------------------


def test_constructor_rejects_bad_device_load():
    for bad in (0, -1.0, float("nan"), "inf", True):
        with pytest.raises((ValueError, TypeError)), generator([], device_load_ohm=bad):
            pass


def test_constructor_rejects_bad_limits():
    with pytest.raises(TypeError), generator([], limits={"max_voltage_v": 4}):
        pass


def test_channel_attributes_are_reviewed():
    # A new PyMeasure attribute would bypass the safety review: this list must be updated
    # on purpose, after checking what the attribute sends.
    from pymeasure.instruments import Channel

    public = {name for name in dir(Keysight33500BChannel) if not name.startswith("_")}
    public -= set(dir(Channel))
    public = {name for name in public if not name.endswith("_check_set_errors")}
    assert public == {
        "amplitude", "amplitude_unit", "arb_advance", "arb_file", "arb_filter", "arb_srate",
        "burst_mode", "burst_ncycles", "burst_period", "burst_state", "clear_volatile_memory",
        "data_arb", "data_volatile_clear", "device_voltage_factor", "frequency", "function",
        "offset", "output", "output_load", "phase", "polarity", "pulse_dutycycle",
        "pulse_hold", "pulse_leading_edge", "pulse_period", "pulse_trailing_edge",
        "pulse_transition", "pulse_width", "ramp_symmetry", "read_output_state",
        "set_dc_voltage_v", "set_pulse_levels_v", "shape", "square_dutycycle", "trigger",
        "trigger_source", "trigger_timer", "upload_waveform_dac", "upload_waveform_v",
        "voltage_high", "voltage_low",
    }


# ---- plain settings ---------------------------------------------------------------------


def test_frequency_getter():
    with generator([("SOUR1:FREQ?", "+1.000000000000000E+03")]) as inst:
        assert inst.ch_1.frequency == 1000.0


def test_frequency_setter():
    with generator(setting("SOUR2:FREQ 1e-06")) as inst:
        inst.ch_2.frequency = 1e-6


def test_frequency_setter_rejects_out_of_range():
    with generator([]) as inst:
        for bad in (0.0, 3.1e7, float("nan")):
            with pytest.raises(ValueError):
                inst.ch_1.frequency = bad


def test_phase_getter():
    with generator([("SOUR1:PHAS?", "+9.0E+01")]) as inst:
        assert inst.ch_1.phase == 90.0


def test_phase_setter():
    with generator(setting("SOUR1:PHAS -45.5")) as inst:
        inst.ch_1.phase = -45.5


def test_square_dutycycle_getter():
    with generator([("SOUR1:FUNC:SQU:DCYC?", "+5.0E+01")]) as inst:
        assert inst.ch_1.square_dutycycle == 50.0


def test_square_dutycycle_setter():
    with generator(setting("SOUR1:FUNC:SQU:DCYC 25.000000")) as inst:
        inst.ch_1.square_dutycycle = 25


def test_ramp_symmetry_getter():
    with generator([("SOUR1:FUNC:RAMP:SYMM?", "+1.0E+02")]) as inst:
        assert inst.ch_1.ramp_symmetry == 100.0


def test_ramp_symmetry_setter():
    with generator(setting("SOUR1:FUNC:RAMP:SYMM 50.000000")) as inst:
        inst.ch_1.ramp_symmetry = 50


def test_pulse_period_getter():
    with generator([("SOUR1:FUNC:PULS:PER?", "+1.000000000000000E-03")]) as inst:
        assert inst.ch_1.pulse_period == 1e-3


def test_pulse_period_setter():
    with generator(setting("SOUR1:FUNC:PULS:PER 0.001")) as inst:
        inst.ch_1.pulse_period = 1e-3


def test_pulse_width_getter():
    with generator([("SOUR1:FUNC:PULS:WIDT?", "+1.000000000000000E-04")]) as inst:
        assert inst.ch_1.pulse_width == 1e-4


def test_pulse_width_setter():
    with generator(setting("SOUR1:FUNC:PULS:WIDT 0.0001")) as inst:
        inst.ch_1.pulse_width = 1e-4


def test_pulse_width_setter_keeps_all_digits():
    # PyMeasure's %e would round this to 1.234568e-04.
    with generator(setting("SOUR1:FUNC:PULS:WIDT 0.00012345678")) as inst:
        inst.ch_1.pulse_width = 1.2345678e-4


def test_pulse_width_setter_rejects_without_clipping():
    with generator([]) as inst:
        for bad in (1e-9, 2e6, -1e-4):
            with pytest.raises(ValueError):
                inst.ch_1.pulse_width = bad


def test_pulse_transition_getter():
    with generator([("SOUR1:FUNC:PULS:TRAN:LEAD?", "+1.0E-08")]) as inst:
        assert inst.ch_1.pulse_transition == 1e-8


def test_pulse_transition_setter():
    with generator(setting("SOUR1:FUNC:PULS:TRAN:BOTH 1e-08")) as inst:
        inst.ch_1.pulse_transition = 1e-8


def test_pulse_leading_edge_getter():
    with generator([("SOUR1:FUNC:PULS:TRAN:LEAD?", "+2.0E-08")]) as inst:
        assert inst.ch_1.pulse_leading_edge == 2e-8


def test_pulse_leading_edge_setter():
    with generator(setting("SOUR1:FUNC:PULS:TRAN:LEAD 2e-08")) as inst:
        inst.ch_1.pulse_leading_edge = 2e-8


def test_pulse_trailing_edge_getter():
    with generator([("SOUR1:FUNC:PULS:TRAN:TRA?", "+3.0E-08")]) as inst:
        assert inst.ch_1.pulse_trailing_edge == 3e-8


def test_pulse_trailing_edge_setter():
    with generator(setting("SOUR1:FUNC:PULS:TRAN:TRA 3e-08")) as inst:
        inst.ch_1.pulse_trailing_edge = 3e-8


def test_pulse_hold_getter():
    with generator([("SOUR1:FUNC:PULS:HOLD?", "WIDT")]) as inst:
        assert inst.ch_1.pulse_hold == "WIDT"


def test_pulse_hold_setter():
    with generator(setting("SOUR1:FUNC:PULS:HOLD WIDT")) as inst:
        inst.ch_1.pulse_hold = "WIDT"


def test_pulse_dutycycle_getter():
    with generator([("SOUR1:FUNC:PULS:DCYC?", "+1.0E+01")]) as inst:
        assert inst.ch_1.pulse_dutycycle == 10.0


def test_pulse_dutycycle_setter():
    with generator(setting("SOUR1:FUNC:PULS:DCYC 10.000000")) as inst:
        inst.ch_1.pulse_dutycycle = 10


def test_burst_state_getter():
    with generator([("SOUR1:BURS:STAT?", "1"), ("SOUR1:BURS:STAT?", "0")]) as inst:
        assert inst.ch_1.burst_state is True
        assert inst.ch_1.burst_state is False


def test_burst_state_setter():
    with generator(setting("SOUR1:BURS:STAT ON") + setting("SOUR1:BURS:STAT OFF")) as inst:
        inst.ch_1.burst_state = True
        inst.ch_1.burst_state = False


def test_burst_state_setter_rejects_non_bool():
    with generator([]) as inst, pytest.raises(TypeError):
        inst.ch_1.burst_state = 1


def test_burst_mode_getter():
    with generator([("SOUR1:BURS:MODE?", "TRIG")]) as inst:
        assert inst.ch_1.burst_mode == "TRIG"


def test_burst_mode_setter():
    with generator(setting("SOUR1:BURS:MODE TRIG")) as inst:
        inst.ch_1.burst_mode = "TRIG"


def test_burst_ncycles_getter():
    pairs = [("SOUR1:BURS:NCYC?", "+1.000000000000000E+02"), ("SOUR1:BURS:NCYC?", INF_REPLY)]
    with generator(pairs) as inst:
        assert inst.ch_1.burst_ncycles == 100
        assert inst.ch_1.burst_ncycles == math.inf


def test_burst_ncycles_setter():
    pairs = setting("SOUR1:BURS:NCYC 100") + setting("SOUR1:BURS:NCYC INF")
    with generator(pairs) as inst:
        inst.ch_1.burst_ncycles = 100
        inst.ch_1.burst_ncycles = math.inf


def test_burst_ncycles_setter_rejects_fraction():
    with generator([]) as inst:
        for bad in (1.5, 0, 100_000_001):
            with pytest.raises((TypeError, ValueError)):
                inst.ch_1.burst_ncycles = bad


def test_burst_period_getter():
    with generator([("SOUR1:BURS:INT:PER?", "+1.0E-02")]) as inst:
        assert inst.ch_1.burst_period == 0.01


def test_burst_period_setter():
    with generator(setting("SOUR1:BURS:INT:PER 0.01")) as inst:
        inst.ch_1.burst_period = 0.01


def test_trigger_source_getter():
    with generator([("TRIG2:SOUR?", "BUS"), ("TRIG2:SOUR?", "IMMEDIATE")]) as inst:
        assert inst.ch_2.trigger_source == "BUS"
        assert inst.ch_2.trigger_source == "IMM"


def test_trigger_source_setter():
    pairs = setting("TRIG1:SOUR BUS") + setting("TRIG2:SOUR TIM")
    with generator(pairs) as inst:
        inst.ch_1.trigger_source = "BUS"
        inst.ch_2.trigger_source = "TIM"


def test_trigger_source_setter_rejects_unknown():
    with generator([]) as inst, pytest.raises(ValueError):
        inst.ch_1.trigger_source = "MAN"


def test_trigger_timer_getter():
    with generator([("TRIG1:TIM?", "+3.0E-01")]) as inst:
        assert inst.ch_1.trigger_timer == 0.3


def test_trigger_timer_setter():
    with generator(setting("TRIG1:TIM 0.3")) as inst:
        inst.ch_1.trigger_timer = 0.3


def test_output_load_getter():
    with generator([("OUTP1:LOAD?", "+5.0E+01"), ("OUTP1:LOAD?", INF_REPLY)]) as inst:
        assert inst.ch_1.output_load == 50.0
        assert inst.ch_1.output_load == math.inf


def test_output_load_setter():
    pairs = setting("OUTP1:LOAD 50.0") + setting("OUTP1:LOAD INF") + setting("OUTP1:LOAD INF")
    with generator(pairs) as inst:
        inst.ch_1.output_load = 50
        inst.ch_1.output_load = math.inf
        inst.ch_1.output_load = "INF"


def test_output_load_setter_rejects_out_of_range():
    with generator([]) as inst:
        for bad in (0.5, 20_000.0, "HIGHZ"):
            with pytest.raises((TypeError, ValueError)):
                inst.ch_1.output_load = bad


def test_polarity_getter():
    with generator([("OUTP1:POL?", "NORM")]) as inst:
        assert inst.ch_1.polarity == "NORM"


def test_polarity_setter():
    with generator(setting("OUTP1:POL INV")) as inst:
        inst.ch_1.polarity = "INV"


def test_amplitude_unit_getter():
    with generator([("SOUR1:VOLT:UNIT?", "VRMS")]) as inst:
        assert inst.ch_1.amplitude_unit == "VRMS"


def test_amplitude_unit_setter():
    with generator(setting("SOUR1:VOLT:UNIT VPP")) as inst:
        inst.ch_1.amplitude_unit = "VPP"
    with generator([]) as inst, pytest.raises(ValueError):
        inst.ch_1.amplitude_unit = "VRMS"


def test_arb_file_getter():
    with generator([("SOUR1:FUNC:ARB?", '"PULSE"')]) as inst:
        assert inst.ch_1.arb_file == "PULSE"


def test_arb_file_setter():
    with generator(setting("SOUR1:FUNC:ARB PULSE_1")) as inst:
        inst.ch_1.arb_file = "PULSE_1"
    with generator([]) as inst:
        for bad in ("1PULSE", "PULSE;*RST", "A" * 13):
            with pytest.raises(ValueError):
                inst.ch_1.arb_file = bad


def test_arb_srate_getter():
    with generator([("SOUR1:FUNC:ARB:SRAT?", "+1.0E+06")]) as inst:
        assert inst.ch_1.arb_srate == 1e6


def test_arb_srate_setter():
    with generator(setting("SOUR1:FUNC:ARB:SRAT 1000000.0")) as inst:
        inst.ch_1.arb_srate = 1e6


def test_arb_filter_getter():
    with generator([("SOUR1:FUNC:ARB:FILT?", "NORMAL")]) as inst:
        assert inst.ch_1.arb_filter == "NORM"


def test_arb_filter_setter():
    with generator(setting("SOUR1:FUNC:ARB:FILT OFF")) as inst:
        inst.ch_1.arb_filter = "OFF"
    with generator([]) as inst, pytest.raises(ValueError):
        inst.ch_1.arb_filter = "NORM"


def test_arb_advance_getter():
    with generator([("SOUR1:FUNC:ARB:ADV?", "SRAT")]) as inst:
        assert inst.ch_1.arb_advance == "SRAT"


def test_arb_advance_setter():
    with generator(setting("SOUR1:FUNC:ARB:ADV TRIG")) as inst:
        inst.ch_1.arb_advance = "TRIG"


def test_byte_order_getter():
    with generator([("FORM:BORD?", "SWAP")]) as inst:
        assert inst.byte_order == "SWAP"


def test_byte_order_setter():
    with generator(setting("FORM:BORD NORM")) as inst:
        inst.byte_order = "NORM"


# ---- voltage settings: getters ------------------------------------------------------------


def test_function_getter():
    with generator([("SOUR1:FUNC?", "PULS"), ("SOUR1:FUNC?", "PULSE")]) as inst:
        assert inst.ch_1.function == "PULS"
        assert inst.ch_1.shape == "PULS"


def test_amplitude_getter():
    with generator([("SOUR1:VOLT?", "+1.000000000000000E-01")]) as inst:
        assert inst.ch_1.amplitude == 0.1


def test_offset_getter():
    with generator([("SOUR1:VOLT:OFFS?", "-6.000000000000000E-01")]) as inst:
        assert inst.ch_1.offset == -0.6


def test_voltage_high_getter():
    with generator([("SOUR1:VOLT:HIGH?", "+3.5E+00")]) as inst:
        assert inst.ch_1.voltage_high == 3.5


def test_voltage_low_getter():
    with generator([("SOUR1:VOLT:LOW?", "-5.0E-01")]) as inst:
        assert inst.ch_1.voltage_low == -0.5


def test_output_getter():
    with generator([("OUTP2?", "1"), ("OUTP2?", "0")]) as inst:
        assert inst.ch_2.output is True
        assert inst.ch_2.output is False


# ---- voltage settings: checked setters ----------------------------------------------------


def test_function_setter():
    pairs = state(function="DC", amplitude="1.0", offset="0.5") + setting("SOUR1:FUNC PULS")
    with generator(pairs) as inst:
        inst.ch_1.function = "PULS"


def test_shape_setter_is_checked_function():
    pairs = state(function="DC", amplitude="1.0", offset="0.5") + setting("SOUR1:FUNC SIN")
    with generator(pairs) as inst:
        inst.ch_1.shape = "SIN"


def test_function_setter_rejects_unsafe_waveform():
    # DC at 1.5 V is fine, but SIN with 6 Vpp around 1.5 V reaches 4.5 V.
    pairs = state(output="1", function="DC", amplitude="6.0", offset="1.5")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="4.5 V"):
        inst.ch_1.function = "SIN"


def test_function_setter_rejects_unknown_function():
    with generator([]) as inst, pytest.raises(ValueError):
        inst.ch_1.function = "SINC"


def test_function_setter_arb_with_output_on_checks_filter():
    pairs = state(output="1", function="DC", amplitude="1.0", offset="0.5")
    pairs += [("SOUR1:FUNC:ARB:FILT?", "OFF")] + setting("SOUR1:FUNC ARB")
    with generator(pairs) as inst:
        inst.ch_1.function = "ARB"


def test_function_setter_arb_rejects_normal_filter():
    pairs = state(output="1", function="DC", amplitude="1.0", offset="0.5")
    pairs += [("SOUR1:FUNC:ARB:FILT?", "NORM")]
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="filter"):
        inst.ch_1.function = "ARB"


def test_amplitude_setter():
    pairs = state(function="PULS", amplitude="0.1", offset="1.0") + setting("SOUR1:VOLT 2.0")
    with generator(pairs) as inst:
        inst.ch_1.amplitude = 2.0


def test_amplitude_setter_rejects_too_wide_without_io():
    # 7 Vpp cannot fit between -2.5 V and 4 V at any load setting.
    with generator([]) as inst, pytest.raises(SafetyLimitError, match="span"):
        inst.ch_1.amplitude = 7.0


def test_amplitude_setter_rejects_at_50_ohm():
    # 3 Vpp around 1 V programmed is 2 V +- 3 V at the device at 50 ohm: 5 V.
    pairs = state(load="+5.0E+01", function="SIN", amplitude="1.0", offset="1.0")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="5 V"):
        inst.ch_1.amplitude = 3.0


def test_amplitude_setter_rejects_generator_range():
    pairs = state(load="+5.0E+01", function="SIN", amplitude="1.0", offset="0.0")
    rejection = pytest.raises(ValueError, match="generator's range")
    with generator(pairs, limits=WIDE_LIMITS) as inst, rejection:
        inst.ch_1.amplitude = 12.0


def test_amplitude_setter_rejects_non_positive():
    with generator([]) as inst:
        for bad in (0.0, -1.0, float("inf")):
            with pytest.raises(ValueError):
                inst.ch_1.amplitude = bad


def test_offset_setter():
    pairs = state(function="DC") + setting("SOUR1:VOLT:OFFS 0.6")
    with generator(pairs) as inst:
        inst.ch_1.offset = 0.6


def test_offset_setter_negative_polarity():
    pairs = state(function="DC") + setting("SOUR1:VOLT:OFFS -0.6")
    with generator(pairs) as inst:
        inst.ch_1.offset = -0.6


def test_offset_setter_rejects_without_io():
    with generator([]) as inst:
        with pytest.raises(SafetyLimitError, match="above the device limit"):
            inst.ch_1.offset = 4.5
        with pytest.raises(SafetyLimitError, match="below the device limit"):
            inst.ch_1.offset = -3.0


def test_offset_setter_rejects_doubled_at_50_ohm():
    # 2.5 V programmed is 5 V at the high-impedance device: only the state is read.
    pairs = state(load="+5.0E+01", function="DC")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="5 V"):
        inst.ch_1.offset = 2.5


def test_offset_setter_rejects_negative_doubled_at_50_ohm():
    pairs = state(load="+5.0E+01", function="DC")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="-3 V"):
        inst.ch_1.offset = -1.5


def test_offset_setter_with_matched_device_load():
    # A real 50 ohm load at the 50 ohm setting receives the programmed value.
    pairs = state(load="+5.0E+01", function="DC") + setting("SOUR1:VOLT:OFFS 3.0")
    with generator(pairs, device_load_ohm=50.0) as inst:
        inst.ch_1.offset = 3.0


def test_offset_setter_checks_waveform_reach():
    # 1 Vpp around 3.7 V reaches 4.2 V.
    pairs = state(function="SQU", amplitude="1.0", offset="0.0")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="4.2 V"):
        inst.ch_1.offset = 3.7


def test_voltage_high_setter():
    pairs = state(function="PULS", amplitude="0.6", offset="0.3") + setting("SOUR1:VOLT:HIGH 3.5")
    with generator(pairs) as inst:
        inst.ch_1.voltage_high = 3.5


def test_voltage_high_setter_rejects_at_50_ohm():
    pairs = state(load="+5.0E+01", function="PULS", amplitude="0.6", offset="0.3")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="7 V"):
        inst.ch_1.voltage_high = 3.5


def test_voltage_high_setter_rejects_below_low():
    pairs = state(function="PULS", amplitude="1.0", offset="1.5")
    with generator(pairs) as inst, pytest.raises(ValueError, match="above the low level"):
        inst.ch_1.voltage_high = 0.5


def test_voltage_high_setter_rejects_dc_mode():
    pairs = state(function="DC")
    with generator(pairs) as inst, pytest.raises(ValueError, match="DC mode"):
        inst.ch_1.voltage_high = 1.0


def test_voltage_low_setter():
    pairs = state(function="PULS", amplitude="3.5", offset="1.75") + setting("SOUR1:VOLT:LOW -0.5")
    with generator(pairs) as inst:
        inst.ch_1.voltage_low = -0.5


def test_voltage_low_setter_rejects_without_io():
    with generator([]) as inst, pytest.raises(SafetyLimitError, match="below the device limit"):
        inst.ch_1.voltage_low = -2.6


def test_output_setter_on():
    pairs = state(function="PULS", amplitude="3.5", offset="1.75") + setting("OUTP1 ON")
    with generator(pairs) as inst:
        inst.ch_1.output = True


def test_output_setter_off_needs_no_check():
    with generator(setting("OUTP2 OFF"), limits=None) as inst:
        inst.ch_2.output = False


def test_output_setter_rejects_unsafe_state():
    # SIN 1 Vpp around 1.8 V at 50 ohm reaches 4.6 V at the device: OUTP1 ON is never sent.
    pairs = state(load="+5.0E+01", function="SIN", amplitude="1.0", offset="1.8")
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="4.6 V"):
        inst.ch_1.output = True


def test_output_setter_rejects_arb_with_step_filter():
    pairs = state(function="ARB", amplitude="1.0", offset="0.0")
    pairs += [("SOUR1:FUNC:ARB:FILT?", "STEP")]
    with generator(pairs) as inst, pytest.raises(SafetyLimitError, match="STEP filter"):
        inst.ch_1.output = True


def test_output_setter_arb_with_filter_off():
    pairs = state(function="ARB", amplitude="1.0", offset="0.0")
    pairs += [("SOUR1:FUNC:ARB:FILT?", "OFF")] + setting("OUTP1 ON")
    with generator(pairs) as inst:
        inst.ch_1.output = True


def test_output_setter_rejects_vrms_unit():
    pairs = state(unit="VRMS")[:4]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="amplitude_unit"):
        inst.ch_1.output = True


def test_output_setter_rejects_non_bool():
    with generator([]) as inst, pytest.raises(TypeError):
        inst.ch_1.output = 1


def test_voltage_settings_rejected_without_limits():
    with generator([], limits=None) as inst:
        with pytest.raises(SafetyLimitError, match="no safety limits"):
            inst.ch_1.offset = 0.1
        with pytest.raises(SafetyLimitError, match="no safety limits"):
            inst.ch_1.amplitude = 0.1
        with pytest.raises(SafetyLimitError, match="no safety limits"):
            inst.ch_1.set_dc_voltage_v(0.1)
        with pytest.raises(SafetyLimitError, match="no safety limits"):
            inst.ch_1.upload_waveform_v("W", np.zeros(8), 1e6)


def test_output_on_rejected_without_limits():
    rejection = pytest.raises(SafetyLimitError, match="no safety limits")
    with generator(state(), limits=None) as inst, rejection:
        inst.ch_1.output = True


# ---- device-voltage helpers ----------------------------------------------------------------


def test_read_output_state():
    pairs = state(channel=2, output="1", load="+5.0E+01", function="PULS", amplitude="2.0",
                  offset="-0.5")
    with generator(pairs) as inst:
        assert inst.ch_2.read_output_state() == OutputState(True, 50.0, "PULS", 2.0, -0.5)


def test_read_output_state_rejects_unknown_function():
    pairs = state(function="HARM")[:3]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="unknown function"):
        inst.ch_1.read_output_state()


def test_device_voltage_factor():
    with generator([("OUTP1:LOAD?", "+5.0E+01"), ("OUTP1:LOAD?", INF_REPLY)]) as inst:
        assert inst.ch_1.device_voltage_factor() == 2.0
        assert inst.ch_1.device_voltage_factor() == 1.0


def test_set_dc_voltage_v_at_50_ohm_negative():
    pairs = state(load="+5.0E+01", function="DC") + setting("SOUR1:VOLT:OFFS -0.3")
    with generator(pairs) as inst:
        inst.ch_1.set_dc_voltage_v(-0.6)


def test_set_dc_voltage_v_switches_to_dc_first():
    pairs = state(load=INF_REPLY, function="SIN", amplitude="0.2", offset="0.0")
    pairs += batch("SOUR1:FUNC DC", "SOUR1:VOLT:OFFS 0.6")
    with generator(pairs) as inst:
        inst.ch_1.set_dc_voltage_v(0.6)


def test_dc_voltage_output_on_checks_each():
    pairs = state(output="1", function="SIN", amplitude="0.2", offset="0.0")
    pairs += setting("SOUR1:FUNC DC") + setting("SOUR1:VOLT:OFFS 0.6")
    with generator(pairs) as inst:
        inst.ch_1.set_dc_voltage_v(0.6)


def test_dc_voltage_batch_error_names_commands():
    pairs = state(function="SIN", amplitude="0.2", offset="0.0")
    pairs += [("SOUR1:FUNC DC", None), ("SOUR1:VOLT:OFFS 0.6", None)]
    pairs += [("SYST:ERR?", '-221,"Settings conflict"'), ("SYST:ERR?", OK)]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="-221") as info:
        inst.ch_1.set_dc_voltage_v(0.6)
    assert info.value.command == "SOUR1:FUNC DC; SOUR1:VOLT:OFFS 0.6"
    assert "check_each_setting" in info.value.message


def test_dc_voltage_check_each_setting():
    pairs = state(function="SIN", amplitude="0.2", offset="0.0")
    pairs += setting("SOUR1:FUNC DC") + setting("SOUR1:VOLT:OFFS 0.6")
    with generator(pairs) as inst:
        inst.check_each_setting = True
        inst.ch_1.set_dc_voltage_v(0.6)


def test_set_dc_voltage_v_rejects_without_io():
    with generator([]) as inst, pytest.raises(SafetyLimitError):
        inst.ch_1.set_dc_voltage_v(4.01)


def test_set_dc_voltage_v_rejects_generator_range():
    # 25 V at the device needs 12.5 V programmed at 50 ohm, beyond +-5 V.
    pairs = state(load="+5.0E+01", function="DC")
    rejection = pytest.raises(ValueError, match="generator's range")
    with generator(pairs, limits=WIDE_LIMITS) as inst, rejection:
        inst.ch_1.set_dc_voltage_v(25.0)


def test_set_pulse_levels_v_raises_high_first():
    pairs = state(load="+5.0E+01", function="PULS", amplitude="0.3", offset="0.15")
    pairs += batch("SOUR1:VOLT:HIGH 1.5", "SOUR1:VOLT:LOW 1.0")
    with generator(pairs) as inst:
        inst.ch_1.set_pulse_levels_v(2.0, 3.0)


def test_pulse_levels_stop_at_rejected_step():
    # The low level was checked against the high level that the first step should set, so
    # it must not be sent once the instrument rejected that step.
    pairs = state(output="1", function="PULS", amplitude="0.5", offset="0.25")
    pairs += [("SOUR1:VOLT:HIGH 3.0", None), ("SYST:ERR?", '-222,"Data out of range"'),
              ("SYST:ERR?", OK)]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="-222") as info:
        inst.ch_1.set_pulse_levels_v(2.0, 3.0)
    assert info.value.command == "SOUR1:VOLT:HIGH 3.0"


def test_output_on_in_batch_reads_queue_first():
    pairs = [("SOUR1:BURS:STAT ON", None)]
    pairs += state(function="PULS", amplitude="1.0", offset="0.5")
    pairs += [("SYST:ERR?", OK)] + setting("OUTP1 ON")
    with generator(pairs) as inst, inst.settings_batch():
        inst.ch_1.burst_state = True
        inst.ch_1.output = True


def test_output_on_in_batch_not_sent_after_error():
    pairs = [("SOUR1:BURS:STAT ON", None)]
    pairs += state(function="PULS", amplitude="1.0", offset="0.5")
    pairs += [("SYST:ERR?", '-221,"Settings conflict"'), ("SYST:ERR?", OK)]
    raises = pytest.raises(InstrumentError, match="-221")
    with generator(pairs) as inst, raises as info, inst.settings_batch():
        inst.ch_1.burst_state = True
        inst.ch_1.output = True
    assert info.value.command == "SOUR1:BURS:STAT ON"


def test_settings_batch_reads_queue_once():
    pairs = batch("SOUR1:BURS:STAT ON", "SOUR1:BURS:NCYC 5", "TRIG1:SOUR BUS")
    with generator(pairs) as inst, inst.settings_batch():
        inst.ch_1.burst_state = True
        inst.ch_1.burst_ncycles = 5
        inst.ch_1.trigger_source = "BUS"


def test_settings_batch_nested_reads_queue_at_outer_end():
    pairs = batch("SOUR1:BURS:STAT ON", "SOUR1:BURS:NCYC 5")
    with generator(pairs) as inst, inst.settings_batch():
        with inst.settings_batch():
            inst.ch_1.burst_state = True
        inst.ch_1.burst_ncycles = 5


def test_settings_batch_logs_queue_after_rejection(caplog):
    # A setting rejected by the driver ends the batch. The queue is still read, so its
    # entries are logged instead of being blamed on a later setting.
    pairs = [("SOUR1:BURS:STAT ON", None), ("SYST:ERR?", '-221,"Settings conflict"'),
             ("SYST:ERR?", OK)]
    with generator(pairs) as inst, pytest.raises(ValueError), inst.settings_batch():
        inst.ch_1.burst_state = True
        inst.ch_1.burst_ncycles = 0
    assert "-221" in caplog.text


def test_set_pulse_levels_v_lowers_low_first():
    pairs = state(output="1", function="PULS", amplitude="0.5", offset="3.25")
    pairs += setting("SOUR1:VOLT:LOW -2.0") + setting("SOUR1:VOLT:HIGH -1.0")
    with generator(pairs) as inst:
        inst.ch_1.set_pulse_levels_v(-2.0, -1.0)


def test_set_pulse_levels_v_rejects_swapped_levels():
    with generator([]) as inst, pytest.raises(ValueError, match="below"):
        inst.ch_1.set_pulse_levels_v(1.0, 0.5)


def test_set_pulse_levels_v_rejects_without_io():
    with generator([]) as inst, pytest.raises(SafetyLimitError):
        inst.ch_1.set_pulse_levels_v(0.0, 4.5)


def test_set_pulse_levels_v_rejects_dc_mode():
    with generator(state(function="DC")) as inst, pytest.raises(ValueError, match="DC mode"):
        inst.ch_1.set_pulse_levels_v(0.0, 1.0)


# ---- arbitrary waveforms -----------------------------------------------------------------


def arb_message(channel, name, codes):
    """The exact upload message, built by hand: header, '#2<len>', int16 LSB first, LF."""
    data = struct.pack(f"<{len(codes)}h", *codes)
    length = str(len(data)).encode()
    header = f"SOUR{channel}:DATA:ARB:DAC {name},#{len(length)}".encode()
    return header + length + data + b"\n"


def test_upload_waveform_dac():
    codes = [0, 32767, -32767, 1, -1, 256, -256, 0]
    pairs = setting("FORM:BORD SWAP") + [(arb_message(2, "RAMP8", codes), None), ("SYST:ERR?", OK)]
    with generator(pairs) as inst:
        inst.ch_2.upload_waveform_dac("RAMP8", codes)


def test_upload_waveform_dac_rejects_bad_codes_without_io():
    with generator([]) as inst:
        with pytest.raises(ValueError, match="32768"):
            inst.ch_1.upload_waveform_dac("W", [0] * 7 + [32768])
        with pytest.raises(ValueError, match="-32768"):
            inst.ch_1.upload_waveform_dac("W", np.array([0] * 7 + [-32768], dtype=np.int16))
        with pytest.raises(ValueError, match="8 to"):
            inst.ch_1.upload_waveform_dac("W", [0] * 7)
        with pytest.raises(ValueError, match="integers"):
            inst.ch_1.upload_waveform_dac("W", [0.5] * 8)
        with pytest.raises(ValueError, match="name"):
            inst.ch_1.upload_waveform_dac("9W", [0] * 8)


def test_upload_waveform_dac_reports_instrument_error():
    codes = [0] * 8
    pairs = setting("FORM:BORD SWAP") + [
        (arb_message(1, "W", codes), None),
        ("SYST:ERR?", '-781,"Not enough memory"'),
        ("SYST:ERR?", OK),
    ]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="-781") as info:
        inst.ch_1.upload_waveform_dac("W", codes)
    assert info.value.command.startswith("SOUR1:DATA:ARB:DAC W,#<binary block")


def upload_pairs(channel, name, codes, rate, amplitude, offset, clear=True):
    """The pairs of an upload with the output off: one batch, the byte order checked first."""
    pairs = [(f"OUTP{channel}:POL NORM", None)]
    if clear:
        pairs += [(f"SOUR{channel}:DATA:VOL:CLE", None)]
    pairs += setting("FORM:BORD SWAP")
    pairs += [(arb_message(channel, name, codes), None)]
    pairs += batch(
        f"SOUR{channel}:FUNC:ARB {name}",
        f"SOUR{channel}:FUNC:ARB:SRAT {rate}",
        f"SOUR{channel}:FUNC:ARB:FILT OFF",
        f"SOUR{channel}:VOLT:OFFS 0.0",
        f"SOUR{channel}:VOLT {amplitude}",
        f"SOUR{channel}:VOLT:OFFS {offset}",
        f"SOUR{channel}:FUNC ARB",
    )
    return pairs


PULSE_V = [0.0, 0.0, 3.5, 3.5, 0.6, 0.6, -0.5, 0.0]
# Samples map to DAC codes around offset 1.5 V with 2 V per 32767 codes.
PULSE_CODES = [-24575, -24575, 32767, 32767, -14745, -14745, -32767, -24575]


def test_upload_waveform_v_at_high_impedance():
    pairs = state() + upload_pairs(1, "PULSE", PULSE_CODES, "1000000.0", "4.0", "1.5")
    with generator(pairs) as inst:
        upload = inst.ch_1.upload_waveform_v("PULSE", PULSE_V, 1e6)
    assert upload.amplitude_vpp == 4.0
    assert upload.offset_v == 1.5
    assert upload.load_factor == 1.0
    assert upload.dac.tolist() == PULSE_CODES
    np.testing.assert_allclose(upload.samples_v, PULSE_V, atol=2.0 / 32767)


def test_upload_waveform_v_halves_at_50_ohm():
    pairs = state(load="+5.0E+01")
    pairs += upload_pairs(1, "PULSE", PULSE_CODES, "1000000.0", "2.0", "0.75")
    with generator(pairs) as inst:
        upload = inst.ch_1.upload_waveform_v("PULSE", PULSE_V, 1e6)
    assert upload.load_factor == 2.0
    np.testing.assert_allclose(upload.samples_v, PULSE_V, atol=2.0 / 32767)


def test_upload_waveform_v_negative_polarity():
    samples = [-0.5, -2.0, -2.0, -0.5, -0.5, -1.25, -0.5, -0.5]
    codes = [32767, -32767, -32767, 32767, 32767, 0, 32767, 32767]
    pairs = state() + upload_pairs(2, "NEG", codes, "50000.0", "1.5", "-1.25", clear=False)
    state_ch2 = state(channel=2)
    pairs = state_ch2 + pairs[len(state_ch2):]
    with generator(pairs) as inst:
        upload = inst.ch_2.upload_waveform_v("NEG", samples, 5e4, clear_memory=False)
    assert upload.offset_v == -1.25
    assert np.all(upload.samples_v < 0)
    np.testing.assert_allclose(upload.samples_v, samples, atol=1e-12)


def test_upload_waveform_v_constant_at_limit():
    # A constant 4.0 V needs the minimum 2 mVpp amplitude, placed below the limit.
    codes = [32767] * 8
    pairs = state() + upload_pairs(1, "FLAT", codes, "1000.0", "0.002", "3.999")
    with generator(pairs) as inst:
        upload = inst.ch_1.upload_waveform_v("FLAT", [4.0] * 8, 1e3)
    np.testing.assert_allclose(upload.samples_v, 4.0)


def test_upload_waveform_v_rejects_sample_without_io():
    samples = [0.0, 0.6, 4.2, 0.0, 0.0, 0.0, 0.0, 0.0]
    with generator([]) as inst, pytest.raises(SafetyLimitError, match="sample 2 is 4.2 V"):
        inst.ch_1.upload_waveform_v("W", samples, 1e6)


def test_upload_waveform_v_rejects_bad_input_without_io():
    with generator([]) as inst:
        with pytest.raises(ValueError, match="8 to"):
            inst.ch_1.upload_waveform_v("W", [0.0] * 4, 1e6)
        with pytest.raises(ValueError):
            inst.ch_1.upload_waveform_v("W", [0.0] * 8, 1e8)
        with pytest.raises(SafetyLimitError, match="not a finite"):
            inst.ch_1.upload_waveform_v("W", [0.0] * 7 + [float("nan")], 1e6)


def test_upload_waveform_v_needs_output_off():
    rejection = pytest.raises(SafetyLimitError, match="output is on")
    with generator(state(output="1")) as inst, rejection:
        inst.ch_1.upload_waveform_v("PULSE", PULSE_V, 1e6)


def test_upload_waveform_v_rejects_span_beyond_generator():
    samples = [-12.0, 12.0] * 4
    rejection = pytest.raises(ValueError, match="spans 24 V")
    with generator(state(load="+5.0E+01"), limits=WIDE_LIMITS) as inst, rejection:
        inst.ch_1.upload_waveform_v("W", samples, 1e6)


def test_data_arb_is_disabled():
    with generator([]) as inst, pytest.raises(NotImplementedError, match="upload_waveform_v"):
        inst.ch_1.data_arb("W", [0] * 8)


# ---- commands and shutdown -----------------------------------------------------------------


def test_trigger():
    with generator(setting("*TRG")) as inst:
        inst.trigger()


def test_channel_trigger():
    with generator(setting("TRIG2")) as inst:
        inst.ch_2.trigger()


def test_trigger_reports_ignored_trigger():
    pairs = [("*TRG", None), ("SYST:ERR?", '-211,"Trigger ignored"'), ("SYST:ERR?", OK)]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="Trigger ignored"):
        inst.trigger()


def test_clear_volatile_memory():
    with generator(setting("SOUR1:DATA:VOL:CLE") + setting("SOUR2:DATA:VOL:CLE")) as inst:
        inst.ch_1.clear_volatile_memory()
        inst.ch_2.data_volatile_clear()


SHUTDOWN = [
    "OUTP1 OFF", "SOUR1:FUNC DC", "SOUR1:VOLT:OFFS 0.0",
    "OUTP2 OFF", "SOUR2:FUNC DC", "SOUR2:VOLT:OFFS 0.0",
]


def test_shutdown():
    pairs = [pair for command in SHUTDOWN for pair in setting(command)]
    with generator(pairs, limits=None) as inst:
        inst.shutdown()
    assert inst.isShutdown


def test_shutdown_continues_past_instrument_error():
    pairs = [("OUTP1 OFF", None), ("SYST:ERR?", '-350,"Queue overflow"'), ("SYST:ERR?", OK)]
    pairs += [pair for command in SHUTDOWN[1:] for pair in setting(command)]
    with generator(pairs) as inst, pytest.raises(InstrumentError, match="1 steps failed") as info:
        inst.shutdown()
    assert info.value.command == "OUTP1 OFF"


def test_shutdown_continues_past_lost_connection():
    pairs = [pair for command in SHUTDOWN[1:] for pair in setting(command)]
    with generator(pairs) as inst:
        write = inst.adapter._write
        calls = []

        def fail_first(command, **kwargs):
            calls.append(command)
            if len(calls) == 1:
                raise VisaIOError(StatusCode.error_connection_lost)
            write(command, **kwargs)

        inst.adapter._write = fail_first
        with pytest.raises(InstrumentError, match="OUTP1 OFF"):
            inst.shutdown()
    assert calls[0] == "OUTP1 OFF"
    assert calls[-1] == "SYST:ERR?"


# ---- error queue and I/O failures --------------------------------------------------------


def test_setting_error_raises_with_command():
    pairs = [
        ("SOUR1:FUNC:PULS:WIDT 0.0001", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", OK),
    ]
    with generator(pairs) as inst, pytest.raises(InstrumentError) as info:
        inst.ch_1.pulse_width = 1e-4
    assert info.value.command == "SOUR1:FUNC:PULS:WIDT 0.0001"
    assert info.value.instrument == "Keysight 33500B"
    assert '-222,"Data out of range"' in info.value.message
    assert '-221,"Settings conflict"' in info.value.message


def test_check_errors_returns_entries():
    pairs = [("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)]
    with generator(pairs) as inst:
        assert inst.check_errors() == [(-113, "Undefined header")]


def test_check_errors_gives_up_on_endless_queue():
    pairs = [("SYST:ERR?", '-100,"Command error"')] * 3
    with generator(pairs) as inst:
        inst.max_error_queue_reads = 3
        with pytest.raises(InstrumentError, match="not empty after 3 reads"):
            inst.check_errors()


def test_check_errors_rejects_unreadable_reply():
    rejection = pytest.raises(InstrumentError, match="unreadable")
    with generator([("SYST:ERR?", "garbage")]) as inst, rejection:
        inst.check_errors()


def test_query_timeout_names_command():
    with generator([("SOUR1:VOLT?", None)]) as inst:
        inst.adapter._read = raise_visa(StatusCode.error_timeout)
        with pytest.raises(InstrumentTimeout) as info:
            _ = inst.ch_1.amplitude
    assert info.value.command == "SOUR1:VOLT?"
    assert info.value.instrument == "Keysight 33500B"


def test_write_connection_lost():
    with generator([]) as inst:
        inst.adapter._write = raise_visa(StatusCode.error_connection_lost)
        with pytest.raises(InstrumentConnectionError) as info:
            inst.ch_1.pulse_width = 1e-4
    assert info.value.command == "SOUR1:FUNC:PULS:WIDT 0.0001"


def test_socket_error_becomes_connection_error():
    with generator([]) as inst:
        def refuse(*args, **kwargs):
            raise ConnectionResetError("reset by peer")

        inst.adapter._write = refuse
        with pytest.raises(InstrumentConnectionError, match="reset by peer"):
            inst.trigger()


def test_other_visa_error_is_instrument_error():
    with generator([]) as inst:
        inst.adapter._write = raise_visa(StatusCode.error_invalid_format)
        with pytest.raises(InstrumentError) as info:
            inst.trigger()
    assert not isinstance(info.value, (InstrumentTimeout, InstrumentConnectionError))
