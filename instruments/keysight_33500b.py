"""Driver for the Keysight 33500B waveform generator that drives the memristor's Pt electrode.

The driver reuses PyMeasure's ``Agilent33500Channel`` (command spellings, and the duty-cycle,
ramp-symmetry, pulse-hold and burst-mode properties unchanged) and replaces what does not
suit a device that one volt too many can damage:

* every property that can change the voltage on an output (function, amplitude, offset,
  high and low level, output on) is checked against the device limits before it is sent.
  The check uses the voltage that actually reaches the device (see below), and a value out
  of range is rejected, never clipped;
* the generator's own output range follows the load setting (PyMeasure assumes 50 ohm);
* validators are strict and numbers are written with all their digits (PyMeasure's ``%f``
  turns 1e-7 into ``0.000000``);
* the trigger source is set per channel (``TRIGn:SOUR``), not globally;
* arbitrary waveforms are uploaded as binary int16 blocks with an explicit byte order;
* the error queue is read after every setting, or once after a batch of settings, and a
  reported error raises ``InstrumentError`` with the instrument's text and the command.
  A setting that changes the voltage on an output that is on is never batched: the queue
  is read before it (if anything is unchecked) and right after it.

The instrument class derives from ``ScpiInstrument``, not from PyMeasure's ``Agilent33500``,
because that class's un-suffixed properties (``amplitude``, ``offset``, ...) would set
channel 1 without any check.

Voltage at the device. The generator has a fixed 50 ohm source impedance and programs its
output for the load set with ``OUTPn:LOAD``. Its open-circuit voltage (EMF) is the
programmed value times ``(R_setting + 50) / R_setting`` (1 for the INF setting), and the
voltage across the device, a load of ``device_load_ohm``, is the EMF times
``R_device / (R_device + 50)``. With the 50 ohm setting and the high-impedance device the
device therefore sees twice the programmed value. The EMF range is +-10 V and 2 mVpp to
20 Vpp, i.e. +-5 V and 1 mVpp to 10 Vpp programmed at 50 ohm. Changing the load setting
keeps the physical output (the instrument rescales the programmed values). Source for these
facts and for the ranges used below: Agilent 33500 Series Operating and Service Guide,
"Output Termination", "Voltage limits", ``TRIGger:TIMer`` and ``BURSt:INTernal:PERiod``.

What the checks cover: the programmed levels, the worst case of every function (offset
plus or minus half the amplitude; the offset alone in DC), and every sample of an uploaded
arbitrary waveform. Arbitrary waveforms may only play with the arb filter OFF, because
the NORMal and STEP filters interpolate between samples and can overshoot them.
NOTE: overshoot of the analog output stage on fast pulse edges and the peaks of the NOIS
function beyond its peak-to-peak setting are not modelled; keep a margin in the limits.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.agilent.agilent33500 import Agilent33500Channel
from pymeasure.instruments.validators import strict_discrete_set

from instruments.errors import InstrumentError
from instruments.ieee488_block import encode_block
from instruments.safety import SafetyLimitError, SafetyLimits
from instruments.scpi_instrument import (
    ScpiInstrument,
    float_control,
    format_float,
    keyword_control,
    keyword_reply,
    parse_bool,
    send_setting,
    strict_finite_range,
    strict_int_range,
    validate_bool,
)

log = logging.getLogger(__name__)

#: Fixed series output impedance of each channel, in ohms.
OUTPUT_IMPEDANCE_OHM = 50.0
#: Largest open-circuit output voltage magnitude, in volts (+-5 V into 50 ohm).
MAX_EMF_V = 10.0
#: Smallest open-circuit amplitude, in volts peak-to-peak (1 mVpp into 50 ohm).
MIN_EMF_AMPLITUDE_VPP = 2e-3
#: DAC code of the positive full scale of an arbitrary waveform (the negative is -32767).
DAC_FULL_SCALE = 32767
#: Minimum number of points of an arbitrary waveform.
MIN_ARB_POINTS = 8
#: Maximum number of points of an arbitrary waveform.
#: NOTE: 16 MSa needs option MEM. A standard 33500B stores 1 MSa per channel and reports an
#: error for a longer waveform, which the driver raises. Confirm on the bench's unit.
MAX_ARB_POINTS = 16_000_000
#: Highest arbitrary-waveform sample rate with the filter OFF, in Sa/s (33500 series, from
#: the Keysight 33500 help on ``RATE:COUPle:OFFSet``).
MAX_SAMPLE_RATE_FILTER_OFF = 62.5e6
#: Reply of a query whose value is INFinity.
INFINITY_REPLY = 9.9e37
#: Functions the driver can set.
FUNCTIONS = ("SIN", "SQU", "TRI", "RAMP", "PULS", "PRBS", "NOIS", "ARB", "DC")
#: Tolerance for float round-off when comparing with the generator's range, in volts.
RANGE_TOLERANCE_V = 1e-9

_ARB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,11}")


# ---- output physics -------------------------------------------------------------------


def emf_per_programmed_volt(load_setting_ohm: float) -> float:
    """Return the open-circuit voltage per programmed volt for a load setting in ohms."""
    if math.isinf(load_setting_ohm):
        return 1.0
    return (load_setting_ohm + OUTPUT_IMPEDANCE_OHM) / load_setting_ohm


def device_divider(device_load_ohm: float) -> float:
    """Return the fraction of the open-circuit voltage across a load of ``device_load_ohm``."""
    if math.isinf(device_load_ohm):
        return 1.0
    return device_load_ohm / (device_load_ohm + OUTPUT_IMPEDANCE_OHM)


def load_factor(load_setting_ohm: float, device_load_ohm: float) -> float:
    """Return the device voltage per programmed volt (2.0 at the 50 ohm setting, open load)."""
    return emf_per_programmed_volt(load_setting_ohm) * device_divider(device_load_ohm)


def max_programmed_level_v(load_setting_ohm: float) -> float:
    """Return the largest programmable level magnitude at a load setting, in volts."""
    return MAX_EMF_V / emf_per_programmed_volt(load_setting_ohm)


def amplitude_range_vpp(load_setting_ohm: float) -> tuple[float, float]:
    """Return the programmable amplitude range at a load setting, in volts peak-to-peak."""
    emf = emf_per_programmed_volt(load_setting_ohm)
    return MIN_EMF_AMPLITUDE_VPP / emf, 2.0 * MAX_EMF_V / emf


@dataclass(frozen=True)
class OutputState:
    """The settings of one channel that decide the voltage on its output (programmed values)."""

    output_on: bool
    load_ohm: float
    function: str
    amplitude_vpp: float
    offset_v: float

    @property
    def low_v(self) -> float:
        """The low level, offset minus half the amplitude, in volts."""
        return self.offset_v - self.amplitude_vpp / 2.0

    @property
    def high_v(self) -> float:
        """The high level, offset plus half the amplitude, in volts."""
        return self.offset_v + self.amplitude_vpp / 2.0

    def reach_v(self) -> tuple[float, float]:
        """Return the lowest and highest programmed voltage that the function can output."""
        if self.function == "DC":
            return self.offset_v, self.offset_v
        return self.low_v, self.high_v


@dataclass(frozen=True)
class ArbUpload:
    """An arbitrary waveform as ``upload_waveform_v`` configured it.

    ``samples_v`` are the voltages that reach the device, after DAC quantisation;
    ``load_factor`` is the device voltage per programmed volt.
    """

    name: str
    sample_rate_hz: float
    amplitude_vpp: float
    offset_v: float
    load_factor: float
    dac: np.ndarray
    samples_v: np.ndarray


# ---- validators and reply parsers -----------------------------------------------------


def _validate_load_setting(value, values):
    if isinstance(value, str) and value.strip().upper() in ("INF", "INFINITY"):
        return "INF"
    if isinstance(value, float) and value == math.inf:
        return "INF"
    return format_float(strict_finite_range(value, values))


def _validate_burst_cycles(value, values):
    if isinstance(value, str) and value.strip().upper() in ("INF", "INFINITY"):
        return "INF"
    if isinstance(value, float) and value == math.inf:
        return "INF"
    return str(strict_int_range(value, values))


def _validate_arb_name(name) -> str:
    if not isinstance(name, str) or not _ARB_NAME.fullmatch(name):
        raise ValueError(
            f"invalid arbitrary-waveform name {name!r}: use 1 to 12 letters, digits or "
            "underscores, starting with a letter"
        )
    return name


def _parse_infinity(reply) -> float:
    if isinstance(reply, str):
        if reply.strip().upper() in ("INF", "INFINITY"):
            return math.inf
        reply = float(reply)
    return math.inf if reply >= INFINITY_REPLY else float(reply)


def _parse_cycles(reply):
    value = _parse_infinity(reply)
    return value if math.isinf(value) else int(value)


# ---- channel --------------------------------------------------------------------------


class Keysight33500BChannel(Agilent33500Channel):
    """One output channel of the 33500B, with every voltage checked at the device."""

    # Reused unchanged from PyMeasure except that the error queue is read after each set.
    square_dutycycle_check_set_errors = True
    ramp_symmetry_check_set_errors = True
    pulse_hold_check_set_errors = True
    pulse_dutycycle_check_set_errors = True
    burst_mode_check_set_errors = True

    frequency = float_control(
        "SOUR{ch}:FREQ",
        """Control the waveform frequency in hertz (float strictly from 1e-6 to 3e7; the
        instrument rejects frequencies its model or the function does not support).""",
        (1e-6, 30e6),
    )

    phase = float_control(
        "SOUR{ch}:PHAS",
        """Control the waveform phase in degrees (float strictly from -360 to 360).""",
        (-360.0, 360.0),
    )

    pulse_period = float_control(
        "SOUR{ch}:FUNC:PULS:PER",
        """Control the pulse period in seconds (float strictly from 3.3e-8 to 1e6).""",
        (33e-9, 1e6),
    )

    pulse_width = float_control(
        "SOUR{ch}:FUNC:PULS:WIDT",
        """Control the pulse width in seconds (float strictly from 1.6e-8 to 1e6).""",
        (16e-9, 1e6),
    )

    pulse_transition = Instrument.control(
        "SOUR{ch}:FUNC:PULS:TRAN:LEAD?",
        "SOUR{ch}:FUNC:PULS:TRAN:BOTH %s",
        """Control both pulse edge times in seconds (float strictly from 8.4e-9 to 1e-6;
        reads back the leading edge).""",
        validator=lambda value, limits: format_float(strict_finite_range(value, limits)),
        values=(8.4e-9, 1e-6),
        check_set_errors=True,
    )

    pulse_leading_edge = float_control(
        "SOUR{ch}:FUNC:PULS:TRAN:LEAD",
        """Control the pulse leading-edge time in seconds (float strictly from 8.4e-9 to
        1e-6).""",
        (8.4e-9, 1e-6),
    )

    pulse_trailing_edge = float_control(
        "SOUR{ch}:FUNC:PULS:TRAN:TRA",
        """Control the pulse trailing-edge time in seconds (float strictly from 8.4e-9 to
        1e-6).""",
        (8.4e-9, 1e-6),
    )

    burst_state = Instrument.control(
        "SOUR{ch}:BURS:STAT?",
        "SOUR{ch}:BURS:STAT %s",
        """Control whether burst mode is on (bool).""",
        validator=validate_bool,
        cast=str,
        get_process=parse_bool,
        check_set_errors=True,
    )

    burst_ncycles = Instrument.control(
        "SOUR{ch}:BURS:NCYC?",
        "SOUR{ch}:BURS:NCYC %s",
        """Control the cycles per burst (int strictly from 1 to 100000000, or math.inf or
        'INF' for an endless burst).""",
        validator=_validate_burst_cycles,
        values=(1, 100_000_000),
        get_process=_parse_cycles,
        check_set_errors=True,
    )

    burst_period = float_control(
        "SOUR{ch}:BURS:INT:PER",
        """Control the period of internally triggered bursts in seconds (float strictly from
        1e-6 to 8000).""",
        (1e-6, 8000.0),
    )

    trigger_source = keyword_control(
        "TRIG{ch}:SOUR",
        """Control the trigger source of this channel (str strictly 'IMM', 'EXT', 'TIM' or
        'BUS').""",
        ("IMM", "EXT", "TIM", "BUS"),
    )

    trigger_timer = float_control(
        "TRIG{ch}:TIM",
        """Control the trigger period used with the TIM trigger source in seconds (float
        strictly from 1e-6 to 8000).""",
        (1e-6, 8000.0),
    )

    output_load = Instrument.control(
        "OUTP{ch}:LOAD?",
        "OUTP{ch}:LOAD %s",
        """Control the load setting in ohms (float strictly from 1 to 10000, or math.inf or
        'INF' for high impedance). The output keeps its physical voltage when this changes;
        the programmed values are rescaled.""",
        validator=_validate_load_setting,
        values=(1.0, 10_000.0),
        get_process=_parse_infinity,
        check_set_errors=True,
    )

    polarity = keyword_control(
        "OUTP{ch}:POL",
        """Control the output polarity (str strictly 'NORM' or 'INV'; INV mirrors the
        waveform about the offset).""",
        ("NORM", "INV"),
    )

    amplitude_unit = keyword_control(
        "SOUR{ch}:VOLT:UNIT",
        """Control the amplitude unit (str; only 'VPP' can be set, because the driver's
        voltage checks work in volts peak-to-peak).""",
        ("VPP",),
    )

    arb_file = Instrument.control(
        "SOUR{ch}:FUNC:ARB?",
        "SOUR{ch}:FUNC:ARB %s",
        """Control the selected arbitrary waveform (str, 1 to 12 letters, digits or
        underscores, starting with a letter).""",
        validator=lambda name, values: _validate_arb_name(name),
        cast=str,
        get_process=lambda reply: str(reply).strip().strip('"'),
        check_set_errors=True,
    )

    arb_srate = float_control(
        "SOUR{ch}:FUNC:ARB:SRAT",
        """Control the arbitrary-waveform sample rate in samples per second (float strictly
        from 1e-6 to 2.5e8; the instrument rejects rates its model does not support).""",
        (1e-6, 250e6),
    )

    arb_filter = Instrument.control(
        "SOUR{ch}:FUNC:ARB:FILT?",
        "SOUR{ch}:FUNC:ARB:FILT %s",
        """Control the arbitrary-waveform filter (str; reads 'NORM', 'STEP' or 'OFF', and
        only 'OFF' can be set, because the other filters can overshoot the samples).""",
        validator=strict_discrete_set,
        values=("OFF",),
        cast=str,
        get_process=keyword_reply(("NORM", "STEP", "OFF")),
        check_set_errors=True,
    )

    arb_advance = keyword_control(
        "SOUR{ch}:FUNC:ARB:ADV",
        """Control how the arbitrary waveform advances (str strictly 'TRIG' or 'SRAT').""",
        ("TRIG", "SRAT"),
    )

    # ---- settings checked against the device limits ----------------------------------

    @property
    def function(self) -> str:
        """Control the output function (str strictly 'SIN', 'SQU', 'TRI', 'RAMP', 'PULS',
        'PRBS', 'NOIS', 'ARB' or 'DC').

        The setter checks the resulting output at the device before it sends anything."""
        reply = self.ask("SOUR{ch}:FUNC?")
        return keyword_reply(FUNCTIONS)(reply)

    @function.setter
    def function(self, function: str) -> None:
        strict_discrete_set(function, FUNCTIONS)
        state = self.read_output_state()
        self._execute_plan(
            state,
            [(f"SOUR{self.id}:FUNC {function}", replace(state, function=function))],
            f"function = {function}",
        )

    shape = function

    @property
    def amplitude(self) -> float:
        """Control the programmed amplitude in volts peak-to-peak (float from 1e-3 to 10 at
        50 ohm, from 2e-3 to 20 at INF).

        The setter checks the resulting output at the device before it sends anything."""
        return float(self.ask("SOUR{ch}:VOLT?"))

    @amplitude.setter
    def amplitude(self, amplitude_vpp: float) -> None:
        description = f"amplitude = {amplitude_vpp!r} Vpp"
        self._precheck_amplitude(amplitude_vpp, description)
        state = self.read_output_state()
        self._execute_plan(
            state,
            [(f"SOUR{self.id}:VOLT {format_float(amplitude_vpp)}",
              replace(state, amplitude_vpp=float(amplitude_vpp)))],
            description,
        )

    @property
    def offset(self) -> float:
        """Control the programmed DC offset in volts (float from -5 to 5 at 50 ohm, from
        -10 to 10 at INF).

        The setter checks the resulting output at the device before it sends anything."""
        return float(self.ask("SOUR{ch}:VOLT:OFFS?"))

    @offset.setter
    def offset(self, offset_v: float) -> None:
        description = f"offset = {offset_v!r} V"
        self._precheck_level(offset_v, description)
        state = self.read_output_state()
        self._execute_plan(
            state,
            [(f"SOUR{self.id}:VOLT:OFFS {format_float(offset_v)}",
              replace(state, offset_v=float(offset_v)))],
            description,
        )

    @property
    def voltage_high(self) -> float:
        """Control the programmed high level in volts (float above the low level, from -5
        to 5 at 50 ohm, from -10 to 10 at INF).

        The setter checks the resulting output at the device before it sends anything."""
        return float(self.ask("SOUR{ch}:VOLT:HIGH?"))

    @voltage_high.setter
    def voltage_high(self, high_v: float) -> None:
        description = f"voltage_high = {high_v!r} V"
        self._precheck_level(high_v, description)
        state = self.read_output_state()
        new_state = self._state_with_levels(state, state.low_v, float(high_v), description)
        self._execute_plan(
            state, [(f"SOUR{self.id}:VOLT:HIGH {format_float(high_v)}", new_state)], description
        )

    @property
    def voltage_low(self) -> float:
        """Control the programmed low level in volts (float below the high level, from -5
        to 5 at 50 ohm, from -10 to 10 at INF).

        The setter checks the resulting output at the device before it sends anything."""
        return float(self.ask("SOUR{ch}:VOLT:LOW?"))

    @voltage_low.setter
    def voltage_low(self, low_v: float) -> None:
        description = f"voltage_low = {low_v!r} V"
        self._precheck_level(low_v, description)
        state = self.read_output_state()
        new_state = self._state_with_levels(state, float(low_v), state.high_v, description)
        self._execute_plan(
            state, [(f"SOUR{self.id}:VOLT:LOW {format_float(low_v)}", new_state)], description
        )

    @property
    def output(self) -> bool:
        """Control whether the output is on (bool); turning it on checks the whole output
        state at the device first, turning it off is never refused."""
        return parse_bool(self.ask("OUTP{ch}?"))

    @output.setter
    def output(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"expected True or False, got {enabled!r}")
        if not enabled:
            send_setting(self, f"OUTP{self.id} OFF")
            log.info("%s channel %s output off", self.parent.name, self.id)
            return
        state = self.read_output_state()
        self._execute_plan(
            state, [(f"OUTP{self.id} ON", replace(state, output_on=True))], "output = True"
        )
        log.info("%s channel %s output on", self.parent.name, self.id)

    # ---- commands ----------------------------------------------------------------------

    def trigger(self) -> None:
        """Trigger this channel now (``TRIGn``), whatever its trigger source."""
        send_setting(self, f"TRIG{self.id}")

    def clear_volatile_memory(self) -> None:
        """Delete the arbitrary waveforms uploaded to this channel (``SOURn:DATA:VOL:CLE``)."""
        send_setting(self, f"SOUR{self.id}:DATA:VOL:CLE")

    def data_volatile_clear(self) -> None:
        """Delete the arbitrary waveforms uploaded to this channel (PyMeasure's name)."""
        self.clear_volatile_memory()

    def data_arb(self, arb_name, data_points, data_format="DAC"):
        """Reject PyMeasure's ASCII upload, which bypasses the binary format and the checks."""
        raise NotImplementedError(
            "data_arb is not available on this driver: use upload_waveform_v (volts at the "
            "device, checked against the limits) or upload_waveform_dac (binary DAC codes)"
        )

    def read_output_state(self) -> OutputState:
        """Read the settings that decide the output voltage.

        Sends ``OUTPn?``, ``OUTPn:LOAD?``, ``SOURn:FUNC?``, ``SOURn:VOLT:UNIT?``,
        ``SOURn:VOLT?`` and ``SOURn:VOLT:OFFS?`` in this order. Raises ``InstrumentError``
        for an unknown function or an amplitude unit other than Vpp.
        """
        output_on = parse_bool(self.ask(f"OUTP{self.id}?"))
        load_ohm = _parse_infinity(self.ask(f"OUTP{self.id}:LOAD?"))
        function_reply = self.ask(f"SOUR{self.id}:FUNC?")
        function = keyword_reply(FUNCTIONS)(function_reply)
        if function not in FUNCTIONS:
            raise InstrumentError(
                self.parent.name, f"SOUR{self.id}:FUNC?", f"unknown function {function_reply!r}"
            )
        unit = keyword_reply(("VPP", "VRMS", "DBM"))(self.ask(f"SOUR{self.id}:VOLT:UNIT?"))
        if unit != "VPP":
            raise InstrumentError(
                self.parent.name,
                f"SOUR{self.id}:VOLT:UNIT?",
                f"the amplitude unit is {unit}, but the voltage checks need Vpp; set "
                f"ch_{self.id}.amplitude_unit = 'VPP'",
            )
        amplitude_vpp = float(self.ask(f"SOUR{self.id}:VOLT?"))
        offset_v = float(self.ask(f"SOUR{self.id}:VOLT:OFFS?"))
        return OutputState(output_on, load_ohm, function, amplitude_vpp, offset_v)

    def device_voltage_factor(self) -> float:
        """Read the load setting and return the device voltage per programmed volt."""
        load_ohm = _parse_infinity(self.ask(f"OUTP{self.id}:LOAD?"))
        return load_factor(load_ohm, self.parent.device_load_ohm)

    def set_dc_voltage_v(self, voltage_v: float) -> None:
        """Output a DC voltage of ``voltage_v`` volts at the device (function DC).

        The programmed offset is ``voltage_v`` divided by the load factor. If the function
        is not DC yet, it switches to DC first (at the old offset) and then sets the offset.
        """
        description = f"DC voltage at the device = {voltage_v!r} V"
        limits = self._require_limits(description)
        limits.check_voltage(voltage_v, f"channel {self.id} DC voltage at the device")
        state = self.read_output_state()
        offset_v = voltage_v / load_factor(state.load_ohm, self.parent.device_load_ohm)

        plan = []
        if state.function != "DC":
            state_dc = replace(state, function="DC")
            plan.append((f"SOUR{self.id}:FUNC DC", state_dc))
        plan.append(
            (f"SOUR{self.id}:VOLT:OFFS {format_float(offset_v)}",
             replace(state, function="DC", offset_v=offset_v))
        )
        self._execute_plan(state, plan, description)

    def set_pulse_levels_v(self, low_v: float, high_v: float) -> None:
        """Set the low and high levels of the waveform to ``low_v`` and ``high_v`` volts at
        the device.

        The two settings are sent in the order that keeps the high level above the low one
        at every step. Each intermediate state is checked like the final one.
        """
        description = f"pulse levels at the device = {low_v!r} V to {high_v!r} V"
        limits = self._require_limits(description)
        if not low_v < high_v:
            raise ValueError(f"low_v ({low_v!r} V) must be below high_v ({high_v!r} V)")
        limits.check_voltage(low_v, f"channel {self.id} low level at the device")
        limits.check_voltage(high_v, f"channel {self.id} high level at the device")
        state = self.read_output_state()
        if state.function == "DC":
            raise ValueError(
                f"channel {self.id} is in DC mode, which has no high and low level; set a "
                "waveform function (PULS, SQU or ARB) first, or use set_dc_voltage_v"
            )
        factor = load_factor(state.load_ohm, self.parent.device_load_ohm)
        low_p, high_p = low_v / factor, high_v / factor

        high_command = f"SOUR{self.id}:VOLT:HIGH {format_float(high_p)}"
        low_command = f"SOUR{self.id}:VOLT:LOW {format_float(low_p)}"
        final = self._state_with_levels(state, low_p, high_p, description)
        if high_p > state.low_v:
            middle = self._state_with_levels(state, state.low_v, high_p, description)
            plan = [(high_command, middle), (low_command, final)]
        else:
            middle = self._state_with_levels(state, low_p, state.high_v, description)
            plan = [(low_command, middle), (high_command, final)]
        self._execute_plan(state, plan, description)

    def upload_waveform_dac(self, name: str, dac_codes) -> None:
        """Upload DAC codes (int from -32767 to 32767, 8 or more) as arbitrary waveform
        ``name`` to this channel's volatile memory, as a binary int16 block.

        This only stores the waveform: the output changes when the waveform is selected
        with the ARB function, which the amplitude and offset checks cover.
        """
        _validate_arb_name(name)
        codes = np.asarray(dac_codes)
        if codes.ndim != 1 or not MIN_ARB_POINTS <= codes.size <= MAX_ARB_POINTS:
            raise ValueError(
                f"an arbitrary waveform needs {MIN_ARB_POINTS} to {MAX_ARB_POINTS} DAC codes "
                f"in a flat sequence, got shape {codes.shape}"
            )
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"DAC codes must be integers, got dtype {codes.dtype}")
        # int64 first: abs() of an int16 -32768 overflows to -32768 and would pass.
        magnitudes = np.abs(codes.astype(np.int64))
        if magnitudes.max() > DAC_FULL_SCALE:
            index = int(np.argmax(magnitudes > DAC_FULL_SCALE))
            raise ValueError(
                f"DAC code {int(codes[index])} at index {index} is outside -32767 to 32767"
            )

        payload = codes.astype("<i2").tobytes()
        header = f"SOUR{self.id}:DATA:ARB:DAC {name},".encode("ascii")
        instrument = self.parent
        with instrument.settings_batch():
            send_setting(self, "FORM:BORD SWAP")
            # The instrument reads the block in this byte order, so it must be set first.
            instrument.check_now()
            self.write_bytes(header + encode_block(payload, large_form=False) + b"\n")
            self.check_set_errors()
        log.info(
            "%s channel %s: uploaded arbitrary waveform %r (%d points)",
            self.parent.name, self.id, name, codes.size,
        )

    def upload_waveform_v(
        self, name: str, samples_v, sample_rate_hz: float, *, clear_memory: bool = True
    ) -> ArbUpload:
        """Upload a waveform given in volts at the device and select it (function ARB).

        The method chooses amplitude and offset so that the DAC range spans the samples.
        It checks every quantised sample at the device and the generator's range before
        anything is sent. Then it sets polarity NORM, clears the channel's volatile memory
        (unless ``clear_memory`` is False) and uploads. Last, it selects the waveform at
        ``sample_rate_hz`` with the filter OFF and sets amplitude, offset and function.
        The output must be off, because those settings change one at a time. Returns what
        was configured, including the quantised voltages.
        """
        description = f"arbitrary waveform {name!r}"
        limits = self._require_limits(description)
        _validate_arb_name(name)
        samples = limits.check_waveform(samples_v, f"{description} (volts at the device)")
        if samples.ndim != 1 or not MIN_ARB_POINTS <= samples.size <= MAX_ARB_POINTS:
            raise ValueError(
                f"{description} needs {MIN_ARB_POINTS} to {MAX_ARB_POINTS} samples in a flat "
                f"sequence, got shape {samples.shape}"
            )
        strict_finite_range(sample_rate_hz, (1e-6, MAX_SAMPLE_RATE_FILTER_OFF))

        state = self.read_output_state()
        if state.output_on:
            raise SafetyLimitError(
                f"channel {self.id} output is on; set output = False before uploading "
                f"{description}, because amplitude, offset and function change one at a time"
            )
        upload = self._plan_upload(name, samples, float(sample_rate_hz), state, limits)

        # The output is off (read above), so the settings go as one batch.
        with self.parent.settings_batch():
            send_setting(self, f"OUTP{self.id}:POL NORM")
            if clear_memory:
                self.clear_volatile_memory()
            self.upload_waveform_dac(name, upload.dac)
            send_setting(self, f"SOUR{self.id}:FUNC:ARB {name}")
            send_setting(self, f"SOUR{self.id}:FUNC:ARB:SRAT {format_float(sample_rate_hz)}")
            send_setting(self, f"SOUR{self.id}:FUNC:ARB:FILT OFF")
            send_setting(self, f"SOUR{self.id}:VOLT:OFFS 0.0")
            send_setting(self, f"SOUR{self.id}:VOLT {format_float(upload.amplitude_vpp)}")
            send_setting(self, f"SOUR{self.id}:VOLT:OFFS {format_float(upload.offset_v)}")
            send_setting(self, f"SOUR{self.id}:FUNC ARB")
        return upload

    # ---- checks ------------------------------------------------------------------------

    def _require_limits(self, description: str) -> SafetyLimits:
        limits = self.parent.limits
        if limits is None:
            raise SafetyLimitError(
                f"{description} on channel {self.id} rejected: no safety limits are configured; "
                f"create {self.parent.name} with limits=SafetyLimits(...)"
            )
        return limits

    def _precheck_level(self, level_v, description: str) -> None:
        """Reject a programmed level that is unsafe at any load setting, before any I/O."""
        limits = self._require_limits(description)
        strict_finite_range(level_v, (-MAX_EMF_V, MAX_EMF_V))
        smallest_factor = device_divider(self.parent.device_load_ohm)
        limits.check_voltage(
            level_v * smallest_factor,
            f"{description}: channel {self.id} voltage at the device (at least)",
        )

    def _precheck_amplitude(self, amplitude_vpp, description: str) -> None:
        """Reject an amplitude that cannot fit the device limits at any load setting."""
        limits = self._require_limits(description)
        strict_finite_range(amplitude_vpp, (0.0, 2.0 * MAX_EMF_V))
        if amplitude_vpp <= 0:
            raise ValueError(f"{description}: the amplitude must be positive")
        span_v = amplitude_vpp * device_divider(self.parent.device_load_ohm)
        allowed_v = limits.max_voltage_v - limits.min_voltage_v
        if span_v > allowed_v:
            raise SafetyLimitError(
                f"{description}: channel {self.id} would span at least {span_v:g} V at the "
                f"device, more than the limits allow ({limits.min_voltage_v:g} V to "
                f"{limits.max_voltage_v:g} V); lower the amplitude or widen the limits"
            )

    def _state_with_levels(
        self, state: OutputState, low_v: float, high_v: float, description: str
    ) -> OutputState:
        """Return ``state`` with the programmed low and high levels changed."""
        if state.function == "DC":
            raise ValueError(
                f"{description}: channel {self.id} is in DC mode, which has no high and low "
                "level; set the offset or a waveform function instead"
            )
        if not low_v < high_v:
            raise ValueError(
                f"{description}: the high level ({high_v:g} V) must stay above the low level "
                f"({low_v:g} V)"
            )
        return replace(state, amplitude_vpp=high_v - low_v, offset_v=(high_v + low_v) / 2.0)

    def _check_generator_range(self, state: OutputState, description: str) -> None:
        """Raise ValueError if ``state`` is outside what the generator can output."""
        load = "INF" if math.isinf(state.load_ohm) else f"{state.load_ohm:g} ohm"
        minimum_vpp, maximum_vpp = amplitude_range_vpp(state.load_ohm)
        amplitude_vpp = state.amplitude_vpp
        if not minimum_vpp - RANGE_TOLERANCE_V <= amplitude_vpp <= maximum_vpp + RANGE_TOLERANCE_V:
            raise ValueError(
                f"{description}: amplitude {state.amplitude_vpp:g} Vpp is outside the "
                f"generator's range {minimum_vpp:g} to {maximum_vpp:g} Vpp at load setting {load}"
            )
        level_limit_v = max_programmed_level_v(state.load_ohm)
        low_v, high_v = state.reach_v()
        if max(abs(low_v), abs(high_v)) > level_limit_v + RANGE_TOLERANCE_V:
            raise ValueError(
                f"{description}: the output would reach {low_v:g} V to {high_v:g} V "
                f"(programmed), beyond the generator's range of +-{level_limit_v:g} V at load "
                f"setting {load}"
            )

    def _check_device(self, state: OutputState, description: str) -> None:
        """Raise SafetyLimitError if ``state`` puts the device outside the limits."""
        limits = self._require_limits(description)
        factor = load_factor(state.load_ohm, self.parent.device_load_ohm)
        low_v, high_v = state.reach_v()
        limits.check_voltage(
            low_v * factor, f"{description}: channel {self.id} lowest voltage at the device"
        )
        limits.check_voltage(
            high_v * factor, f"{description}: channel {self.id} highest voltage at the device"
        )

    def _check_arb_filter(self, description: str) -> None:
        reply = self.ask(f"SOUR{self.id}:FUNC:ARB:FILT?")
        arb_filter = keyword_reply(("NORM", "STEP", "OFF"))(reply)
        if arb_filter != "OFF":
            raise SafetyLimitError(
                f"{description}: channel {self.id} would play an arbitrary waveform with the "
                f"{arb_filter} filter, which can overshoot the samples; set "
                f"ch_{self.id}.arb_filter = 'OFF' first"
            )

    def _execute_plan(
        self, state: OutputState, plan: list[tuple[str, OutputState]], description: str
    ) -> None:
        """Check every state of ``plan`` first, then send its commands.

        Each step is ``(command, state after the command)``. The generator's range is
        checked for every step; the device limits for every step while the output is on
        and always for the final state. The steps after the first were checked against
        the state that the earlier steps should produce. So a step that takes effect
        while the output is on is sent only with an empty error queue, and the queue is
        read right after it, which stops the plan at a rejected step. Steps with the
        output off are checked once at the end of the batch.
        """
        for index, (_command, step_state) in enumerate(plan):
            self._check_generator_range(step_state, description)
            if step_state.output_on or index == len(plan) - 1:
                self._check_device(step_state, description)
        if any(s.function == "ARB" and s.output_on for _c, s in plan):
            self._check_arb_filter(description)

        instrument = self.parent
        with instrument.settings_batch():
            for command, step_state in plan:
                if step_state.output_on:
                    instrument.check_now()
                    send_setting(self, command)
                    instrument.check_now()
                else:
                    send_setting(self, command)

    def _plan_upload(
        self,
        name: str,
        samples_v: np.ndarray,
        sample_rate_hz: float,
        state: OutputState,
        limits: SafetyLimits,
    ) -> ArbUpload:
        """Choose amplitude, offset and DAC codes for ``samples_v``; check them all."""
        description = f"arbitrary waveform {name!r}"
        factor = load_factor(state.load_ohm, self.parent.device_load_ohm)
        programmed = samples_v / factor
        lowest, highest = float(programmed.min()), float(programmed.max())
        minimum_vpp, maximum_vpp = amplitude_range_vpp(state.load_ohm)
        span = highest - lowest
        if span > maximum_vpp + RANGE_TOLERANCE_V:
            raise ValueError(
                f"{description} spans {span * factor:g} V at the device; the generator spans "
                f"at most {maximum_vpp * factor:g} V at this load setting"
            )
        amplitude_vpp = max(span, minimum_vpp)

        # A waveform narrower than the smallest amplitude is placed where the whole DAC
        # range (which the output-on check uses) stays inside the limits.
        middle = (lowest + highest) / 2.0
        candidates = [middle, highest - amplitude_vpp / 2.0, lowest + amplitude_vpp / 2.0]
        offset_v = None
        last_error: Exception | None = None
        for candidate in candidates:
            trial = replace(state, function="ARB", amplitude_vpp=amplitude_vpp, offset_v=candidate)
            try:
                self._check_generator_range(trial, description)
                self._check_device(trial, description)
            except (ValueError, SafetyLimitError) as error:
                last_error = error
                continue
            offset_v = candidate
            break
        if offset_v is None:
            assert last_error is not None
            raise last_error

        half_amplitude = amplitude_vpp / 2.0
        normalised = (programmed - offset_v) / half_amplitude
        if np.abs(normalised).max() > 1.0 + 1e-9:
            raise AssertionError("internal error: waveform outside the chosen DAC range")
        # The clip only absorbs float round-off at the ends of the range (checked above).
        dac = np.clip(np.rint(normalised * DAC_FULL_SCALE), -DAC_FULL_SCALE, DAC_FULL_SCALE)
        dac = dac.astype(np.int16)
        actual_v = (offset_v + dac / DAC_FULL_SCALE * half_amplitude) * factor
        limits.check_waveform(actual_v, f"{description} after DAC quantisation")
        return ArbUpload(
            name=name,
            sample_rate_hz=sample_rate_hz,
            amplitude_vpp=amplitude_vpp,
            offset_v=offset_v,
            load_factor=factor,
            dac=dac,
            samples_v=actual_v,
        )


# ---- instrument -----------------------------------------------------------------------


class Keysight33500B(ScpiInstrument):
    """Keysight 33500B two-channel waveform generator (``ch_1``, ``ch_2``).

    ``limits`` are the device limits every voltage is checked against; without them every
    voltage setting is rejected. ``device_load_ohm`` is the resistance the output drives
    (infinite for the MOhm..GOhm memristor), used to compute the voltage at the device.
    Property names follow PyMeasure's ``Agilent33500Channel``; the command table is in
    ``docs/scpi-commands.md``.
    """

    ch_1 = Instrument.ChannelCreator(Keysight33500BChannel, 1)
    ch_2 = Instrument.ChannelCreator(Keysight33500BChannel, 2)

    byte_order = Instrument.control(
        "FORM:BORD?",
        "FORM:BORD %s",
        """Control the byte order of binary transfers (str strictly 'NORM', most significant
        byte first, or 'SWAP', least significant byte first).""",
        validator=strict_discrete_set,
        values=("NORM", "SWAP"),
        cast=str,
        get_process=keyword_reply(("NORM", "SWAP")),
        check_set_errors=True,
    )

    def __init__(
        self,
        adapter,
        name: str = "Keysight 33500B",
        limits: SafetyLimits | None = None,
        device_load_ohm: float = math.inf,
        **kwargs,
    ):
        if limits is not None and not isinstance(limits, SafetyLimits):
            raise TypeError(f"limits must be a SafetyLimits or None, got {type(limits).__name__}")
        if isinstance(device_load_ohm, bool) or not isinstance(device_load_ohm, (int, float)) \
                or math.isnan(device_load_ohm) or device_load_ohm <= 0:
            raise ValueError(
                f"device_load_ohm must be a positive number of ohms (math.inf for an open "
                f"load), got {device_load_ohm!r}"
            )
        super().__init__(adapter, name, **kwargs)
        self.limits = limits
        self.device_load_ohm = float(device_load_ohm)

    def trigger(self) -> None:
        """Send a bus trigger (``*TRG``) to every channel whose trigger source is BUS."""
        send_setting(self, "*TRG")

    def shutdown(self) -> None:
        """Turn both outputs off and set them to DC 0 V.

        Every step runs even if an earlier one fails; failures are logged and then raised
        together as one ``InstrumentError``.
        """
        failures: list[tuple[str, Exception]] = []
        for channel in (self.ch_1, self.ch_2):
            for command in (
                f"OUTP{channel.id} OFF",
                f"SOUR{channel.id}:FUNC DC",
                f"SOUR{channel.id}:VOLT:OFFS 0.0",
            ):
                try:
                    send_setting(channel, command)
                except Exception as error:  # noqa: BLE001 - every step must be tried
                    log.error("%s shutdown step %r failed: %s", self.name, command, error)
                    failures.append((command, error))
        super().shutdown()
        if failures:
            summary = "; ".join(f"{command}: {error}" for command, error in failures)
            raise InstrumentError(
                self.name,
                failures[0][0],
                f"shutdown incomplete ({len(failures)} steps failed): {summary}",
            )
        log.info("%s shut down: outputs off at DC 0 V", self.name)
