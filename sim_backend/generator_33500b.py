"""The simulated Keysight 33500B two-channel waveform generator (SCPI state machine).

Every setting is kept per channel as the instrument keeps it and can be queried back in
its reply format (numbers as ``+1.000000000000000E+00``, keywords in short form, booleans
as ``1``/``0``, load ``INF`` as ``+9.900000000000000E+37``).

Voltages are stored as the open-circuit output (EMF). The programmed values that the
instrument reports are the EMF scaled by the load setting, ``R / (R + 50 ohm)``. So with
``OUTP1:LOAD 50`` and the high-impedance device as the real load, the device gets twice
the programmed voltage. Changing the load setting rescales the programmed values and
keeps the output, as on the real instrument.

Channel 1 drives the device (see ``sim_backend.world``); channel 2 is not connected.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from sim_backend.scpi import (
    ScpiError,
    ScpiInstrument,
    parse_bool,
    parse_choice,
    parse_integer,
    parse_number,
    parse_string,
    require_params,
)
from sim_backend.waveforms import Waveform
from sim_backend.world import Segment, SimulatedWorld

log = logging.getLogger(__name__)

IDENTITY = "Keysight Technologies,33522B,SIM00002,simulated"

#: Source impedance of each output, in ohms.
SOURCE_IMPEDANCE_OHM = 50.0
#: Largest open-circuit output magnitude, in volts (+-5 V into 50 ohm, +-10 V into high-Z).
MAX_EMF_V = 10.0
#: Smallest programmed amplitude, in volts peak to peak.
MIN_AMPLITUDE_VPP = 1e-3
#: Value the instrument returns for an infinite load setting.
INFINITY_REPLY = 9.9e37

FREQUENCY_RANGE_HZ = (1e-6, 30e6)
PULSE_WIDTH_RANGE_S = (16e-9, 1e6)
EDGE_RANGE_S = (8.4e-9, 1e-6)
ARB_SAMPLE_RATE_RANGE_HZ = (1e-6, 250e6)
ARB_POINTS_RANGE = (8, 16_000_000)
BURST_PERIOD_RANGE_S = (1e-6, 8000.0)
TRIGGER_DELAY_RANGE_S = (0.0, 1000.0)
TRIGGER_TIMER_RANGE_S = (1e-6, 8000.0)
MAX_ARB_NAME_LENGTH = 12

_FUNCTION_CHOICES = ["SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe", "ARB", "DC"]


@dataclass
class ChannelState:
    """Settings of one output channel; voltages are open-circuit (EMF) volts."""

    function: str = "SIN"
    frequency_hz: float = 1e3
    amplitude_emf_vpp: float = 0.2
    offset_emf_v: float = 0.0
    phase_deg: float = 0.0
    square_duty_pct: float = 50.0
    ramp_symmetry_pct: float = 100.0
    pulse_width_s: float = 100e-6
    pulse_lead_s: float = 10e-9
    pulse_trail_s: float = 10e-9
    pulse_hold: str = "WIDT"
    output_on: bool = False
    inverted: bool = False
    load_ohm: float = 50.0
    burst_on: bool = False
    burst_mode: str = "TRIG"
    burst_cycles: float = 1.0  # math.inf for INF
    burst_period_s: float = 10e-3
    burst_phase_deg: float = 0.0
    trigger_source: str = "IMM"
    trigger_delay_s: float = 0.0
    trigger_slope: str = "POS"
    trigger_timer_s: float = 1.0
    arb_name: str | None = None
    arb_sample_rate_hz: float = 40e3
    arb_filter: str = "NORM"
    arb_advance: str = "SRAT"
    arbs: dict[str, np.ndarray] = field(default_factory=dict)
    started_s: float = 0.0
    burst_start_s: float | None = None
    burst_end_s: float | None = None
    _waveform_cache: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def load_factor(self) -> float:
        """EMF divided by the programmed voltage for the present load setting."""
        if math.isinf(self.load_ohm):
            return 1.0
        return (self.load_ohm + SOURCE_IMPEDANCE_OHM) / self.load_ohm

    @property
    def period_s(self) -> float:
        """Period of the waveform (ARB: points / sample rate), in seconds."""
        if self.function == "ARB" and self.arb_name is not None:
            return self.arbs[self.arb_name].size / self.arb_sample_rate_hz
        return 1.0 / self.frequency_hz

    def waveform(self, for_burst: bool = False) -> Waveform:
        """Return the output waveform in EMF volts (rebuilt only when a setting changed)."""
        arb = self.arbs.get(self.arb_name) if self.arb_name is not None else None
        key = (
            for_burst, self.function, self.frequency_hz, self.amplitude_emf_vpp, self.offset_emf_v,
            self.burst_phase_deg if for_burst else self.phase_deg, self.inverted,
            self.square_duty_pct, self.ramp_symmetry_pct, self.pulse_width_s, self.pulse_lead_s,
            self.pulse_trail_s, id(arb), self.arb_sample_rate_hz,
        )
        cached = self._waveform_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        waveform = self._build_waveform(for_burst)
        self._waveform_cache = (key, waveform)
        return waveform

    def _build_waveform(self, for_burst: bool) -> Waveform:
        function = self.function
        arb = None
        if function == "ARB":
            if self.arb_name is None:
                function = "DC"  # no arbitrary waveform selected: the output rests at its offset
            else:
                arb = self.arbs[self.arb_name]
        return Waveform(
            function=function,
            period_s=1.0 / self.frequency_hz,
            amplitude_v=self.amplitude_emf_vpp,
            offset_v=self.offset_emf_v,
            phase_deg=self.burst_phase_deg if for_burst else self.phase_deg,
            inverted=self.inverted,
            duty=self.square_duty_pct / 100.0,
            symmetry=self.ramp_symmetry_pct / 100.0,
            width_s=self.pulse_width_s,
            lead_s=self.pulse_lead_s,
            trail_s=self.pulse_trail_s,
            arb=arb,
            sample_rate_hz=self.arb_sample_rate_hz,
        )


class Simulated33500B(ScpiInstrument):
    """Keysight 33500B behind a simulated VISA connection, driving the world's device."""

    def __init__(self, world: SimulatedWorld, load_ohm: float = 50.0, name: str = "Keysight 33500B (simulated)"):
        super().__init__(name, IDENTITY, signed_error_codes=True)
        self.world = world
        self.power_on_load_ohm = float(load_ohm)
        self.byte_order = "NORM"
        self.channels = {1: ChannelState(load_ohm=self.power_on_load_ohm),
                         2: ChannelState(load_ohm=self.power_on_load_ohm)}
        self._register_commands()

    # ------------------------------------------------------------------ common commands

    def reset(self) -> None:
        """Return both channels to their ``*RST`` state (outputs off, load 50 ohm)."""
        arbs = {number: channel.arbs for number, channel in self.channels.items()}
        self.channels = {1: ChannelState(), 2: ChannelState()}
        for number, channel in self.channels.items():
            channel.arbs = arbs[number]  # *RST keeps volatile memory
            channel.started_s = self.world.clock.now()
        self.byte_order = "NORM"

    def fire_trigger(self) -> None:
        """``*TRG``: fire every channel whose burst waits for a BUS trigger."""
        self._fire([number for number, channel in self.channels.items() if channel.trigger_source == "BUS"])

    # ------------------------------------------------------------------ the world's view

    def device_segment(self, time_s: float) -> Segment:
        """Return channel 1's contribution to the device voltage from ``time_s`` on."""
        channel = self.channels[1]
        if not channel.output_on:
            return Segment(math.inf, level_v=0.0)
        waveform = channel.waveform(for_burst=channel.burst_on)
        if waveform.is_constant:
            return Segment(math.inf, level_v=waveform.offset_v)
        if not channel.burst_on:
            return self._running_segment(waveform, channel.started_s)
        return self._burst_segment(channel, waveform, time_s)

    def sync_times(self, start_s: float, end_s: float) -> np.ndarray:
        """Return the burst start times of channel 1 in ``[start_s, end_s)`` (sync output)."""
        channel = self.channels[1]
        if not channel.output_on or not channel.burst_on:
            return np.empty(0)
        starts = []
        if channel.burst_start_s is not None and start_s <= channel.burst_start_s < end_s:
            starts.append(channel.burst_start_s)
        repeat_s = self._repeat_period_s(channel)
        if repeat_s is not None:
            first = math.ceil((start_s - channel.started_s) / repeat_s - 1e-12)
            time_s = channel.started_s + max(first, 0) * repeat_s
            while time_s < end_s:
                starts.append(time_s)
                time_s += repeat_s
        return np.asarray(sorted(starts))

    def _running_segment(self, waveform: Waveform, started_s: float) -> Segment:
        def sampler(t0_s: float, count: int, dt_s: float) -> np.ndarray:
            return waveform.continuous_samples(t0_s - started_s, count, dt_s)

        return Segment(math.inf, sampler=sampler, dt_s=waveform.sample_dt_s())

    def _burst_segment(self, channel: ChannelState, waveform: Waveform, time_s: float) -> Segment:
        idle_v = waveform.start_level_v()
        repeat_s = self._repeat_period_s(channel)
        if channel.burst_start_s is None and repeat_s is None:
            return Segment(math.inf, level_v=idle_v)  # waiting for a trigger
        cycles = channel.burst_cycles
        burst_s = cycles * waveform.period_s

        starts = []
        if channel.burst_start_s is not None:
            starts.append(channel.burst_start_s)
        if repeat_s is not None:
            index = math.floor((time_s - channel.started_s) / repeat_s + 1e-12)
            starts.extend(channel.started_s + max(index + k, 0) * repeat_s for k in (0, 1))

        active = [start for start in starts if start <= time_s + 1e-15 and time_s < start + burst_s]
        if active:
            burst_start_s = active[0]
            count_cycles = int(cycles) if math.isfinite(cycles) else None

            def sampler(t0_s: float, count: int, dt_s: float) -> np.ndarray:
                if count_cycles is None:
                    return waveform.continuous_samples(t0_s - burst_start_s, count, dt_s)
                return waveform.burst_samples(t0_s - burst_start_s, count, dt_s, count_cycles)

            return Segment(burst_start_s + burst_s, sampler=sampler, dt_s=waveform.sample_dt_s())
        upcoming = [start for start in starts if start > time_s]
        return Segment(min(upcoming, default=math.inf), level_v=idle_v)

    @staticmethod
    def _repeat_period_s(channel: ChannelState) -> float | None:
        """Return the period of self-triggered bursts (IMM or TIM source), or None."""
        if channel.burst_mode != "TRIG":
            return None
        if channel.trigger_source == "IMM":
            return channel.burst_period_s
        if channel.trigger_source == "TIM":
            return channel.trigger_timer_s
        return None

    # ------------------------------------------------------------------ triggering

    def _fire(self, numbers: list[int]) -> None:
        """Play the bursts of the given channels now, then let time run to their end."""
        now_s = self.world.clock.now()
        end_s = now_s
        for number in numbers:
            channel = self.channels[number]
            if not (channel.burst_on and channel.burst_mode == "TRIG"):
                continue
            start_s = now_s + channel.trigger_delay_s
            length_s = channel.burst_cycles * channel.waveform(for_burst=True).period_s
            channel.burst_start_s = start_s
            channel.burst_end_s = start_s + length_s
            if math.isfinite(length_s):
                end_s = max(end_s, start_s + length_s)
            log.debug("%s: channel %d burst from %g s to %g s", self.name, number, start_s, start_s + length_s)
        if end_s > now_s:
            self.world.advance_to(end_s)
        capture_end_s = self.world.scope.pending_capture_end_s()
        if capture_end_s is not None and capture_end_s > self.world.clock.now():
            self.world.advance_to(capture_end_s)
        for number in numbers:
            channel = self.channels[number]
            if channel.burst_end_s is not None and channel.burst_end_s <= self.world.clock.now():
                channel.burst_start_s = channel.burst_end_s = None

    # ------------------------------------------------------------------ command table

    def _register_commands(self) -> None:
        add = self.add
        add("[SOURce#:]FUNCtion[:SHAPe]", self._set_function, self._get_function)
        add("[SOURce#:]FREQuency[:CW]", self._set_frequency, lambda s, p: _num(self._ch(s).frequency_hz))
        add("[SOURce#:]FUNCtion:PULSe:PERiod", self._set_pulse_period,
            lambda s, p: _num(1.0 / self._ch(s).frequency_hz))
        add("[SOURce#:]FUNCtion:PULSe:WIDTh", self._set_pulse_width, lambda s, p: _num(self._ch(s).pulse_width_s))
        add("[SOURce#:]FUNCtion:PULSe:DCYCle", self._set_pulse_duty,
            lambda s, p: _num(100.0 * self._ch(s).pulse_width_s * self._ch(s).frequency_hz))
        add("[SOURce#:]FUNCtion:PULSe:TRANsition[:BOTH]", self._set_edges("both"),
            lambda s, p: _num(self._ch(s).pulse_lead_s))
        add("[SOURce#:]FUNCtion:PULSe:TRANsition:LEADing", self._set_edges("lead"),
            lambda s, p: _num(self._ch(s).pulse_lead_s))
        add("[SOURce#:]FUNCtion:PULSe:TRANsition:TRAiling", self._set_edges("trail"),
            lambda s, p: _num(self._ch(s).pulse_trail_s))
        add("[SOURce#:]FUNCtion:PULSe:HOLD", self._set_pulse_hold, lambda s, p: self._ch(s).pulse_hold)
        add("[SOURce#:]FUNCtion:SQUare:DCYCle", self._set_square_duty,
            lambda s, p: _num(self._ch(s).square_duty_pct))
        add("[SOURce#:]FUNCtion:RAMP:SYMMetry", self._set_symmetry,
            lambda s, p: _num(self._ch(s).ramp_symmetry_pct))

        add("[SOURce#:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._set_amplitude, self._get_amplitude)
        add("[SOURce#:]FUNCtion:ARBitrary:PTPeak", self._set_amplitude, self._get_amplitude)
        add("[SOURce#:]VOLTage[:LEVel][:IMMediate]:OFFSet", self._set_offset, self._get_offset)
        add("[SOURce#:]VOLTage[:LEVel][:IMMediate]:HIGH", self._set_level("high"), self._get_level("high"))
        add("[SOURce#:]VOLTage[:LEVel][:IMMediate]:LOW", self._set_level("low"), self._get_level("low"))
        add("[SOURce#:]VOLTage:UNIT", self._set_unit, lambda s, p: "VPP")
        add("[SOURce#:]PHASe[:ADJust]", self._set_phase, lambda s, p: _num(self._ch(s).phase_deg))

        add("OUTPut#[:STATe]", self._set_output, lambda s, p: _bool(self._ch(s, "OUTP").output_on))
        add("OUTPut#:LOAD", self._set_load, self._get_load)
        add("OUTPut#:POLarity", self._set_polarity,
            lambda s, p: "INV" if self._ch(s, "OUTP").inverted else "NORM")
        add("OUTPut:SYNC[:STATe]", lambda s, p: parse_bool(_one(p, "OUTP:SYNC"), "sync state"), lambda s, p: "1")

        add("[SOURce#:]BURSt:STATe", self._set_burst_state, lambda s, p: _bool(self._ch(s).burst_on))
        add("[SOURce#:]BURSt:MODE", self._set_burst_mode, lambda s, p: self._ch(s).burst_mode)
        add("[SOURce#:]BURSt:NCYCles", self._set_burst_cycles, self._get_burst_cycles)
        add("[SOURce#:]BURSt:INTernal:PERiod", self._set_burst_period,
            lambda s, p: _num(self._ch(s).burst_period_s))
        add("[SOURce#:]BURSt:PHASe", self._set_burst_phase, lambda s, p: _num(self._ch(s).burst_phase_deg))
        add("TRIGger#:SOURce", self._set_trigger_source, lambda s, p: self._ch(s, "TRIG").trigger_source)
        add("TRIGger#:DELay", self._set_trigger_delay, lambda s, p: _num(self._ch(s, "TRIG").trigger_delay_s))
        add("TRIGger#:SLOPe", self._set_trigger_slope, lambda s, p: self._ch(s, "TRIG").trigger_slope)
        add("TRIGger#:TIMer", self._set_trigger_timer, lambda s, p: _num(self._ch(s, "TRIG").trigger_timer_s))
        add("TRIGger#[:IMMediate]", self._trigger_now)

        add("FORMat:BORDer", self._set_byte_order, lambda s, p: self.byte_order)
        add("[SOURce#:]DATA:ARBitrary:DAC", self._set_arb_dac)
        add("[SOURce#:]DATA:ARBitrary", self._set_arb_float)
        add("[SOURce#:]DATA:VOLatile:CLEar", self._clear_volatile)
        add("[SOURce#:]DATA:VOLatile:CATalog", getter=self._get_catalog)
        add("[SOURce#:]DATA:ATTRibute:POINts", getter=self._get_arb_points)
        add("[SOURce#:]FUNCtion:ARBitrary", self._select_arb, self._get_arb)
        add("[SOURce#:]FUNCtion:ARBitrary:SRATe", self._set_arb_rate, lambda s, p: _num(self._ch(s).arb_sample_rate_hz))
        add("[SOURce#:]FUNCtion:ARBitrary:FILTer", self._set_arb_filter, lambda s, p: self._ch(s).arb_filter)
        add("[SOURce#:]FUNCtion:ARBitrary:ADVance", self._set_arb_advance, lambda s, p: self._ch(s).arb_advance)

        add("SYSTem:BEEPer[:IMMediate]", lambda s, p: None)
        add("DISPlay:TEXT", lambda s, p: None)
        add("DISPlay:TEXT:CLEar", lambda s, p: None)

    # ------------------------------------------------------------------ helpers

    def _ch(self, suffixes: dict[str, int], node: str = "SOUR") -> ChannelState:
        number = suffixes.get(node, 1)
        if number not in self.channels:
            raise ScpiError(-113, f"channel {number} does not exist")
        return self.channels[number]

    def _changed(self, channel: ChannelState) -> None:
        """Restart the waveform: settings changes restart it, as on the instrument."""
        channel.started_s = self.world.clock.now()

    def _check_emf(self, channel: ChannelState, amplitude_vpp: float, offset_v: float) -> None:
        """Raise -222 if the output would leave the generator's +-10 V EMF range."""
        if amplitude_vpp < MIN_AMPLITUDE_VPP * channel.load_factor - 1e-15:
            raise ScpiError(-222, f"amplitude {amplitude_vpp / channel.load_factor:g} Vpp below "
                                  f"{MIN_AMPLITUDE_VPP:g} Vpp")
        peak = abs(offset_v) + (0.0 if channel.function == "DC" else amplitude_vpp / 2.0)
        if peak > MAX_EMF_V + 1e-9:
            limit = MAX_EMF_V / channel.load_factor
            raise ScpiError(-222, f"output would reach {peak / channel.load_factor:g} V, beyond "
                                  f"+-{limit:g} V at this load setting")

    # ------------------------------------------------------------------ waveform settings

    def _set_function(self, s, params) -> None:
        channel = self._ch(s)
        function = parse_choice(_one(params, "FUNC"), "function", _FUNCTION_CHOICES)
        channel.function = function
        self._changed(channel)

    def _get_function(self, s, params) -> str:
        return self._ch(s).function

    def _set_frequency(self, s, params) -> None:
        channel = self._ch(s)
        frequency = parse_number(_one(params, "FREQ"), "frequency", *FREQUENCY_RANGE_HZ, default=1e3)
        self._set_period_checked(channel, 1.0 / frequency)

    def _set_pulse_period(self, s, params) -> None:
        channel = self._ch(s)
        low, high = FREQUENCY_RANGE_HZ
        period = parse_number(_one(params, "PULS:PER"), "pulse period", 1.0 / high, 1.0 / low, default=1e-3)
        self._set_period_checked(channel, period)

    def _set_period_checked(self, channel: ChannelState, period_s: float) -> None:
        edges_s = 0.5 * (channel.pulse_lead_s + channel.pulse_trail_s)
        if channel.function == "PULS" and channel.pulse_width_s + edges_s > period_s:
            raise ScpiError(-221, f"period {period_s:g} s too short for pulse width {channel.pulse_width_s:g} s")
        channel.frequency_hz = 1.0 / period_s
        self._changed(channel)

    def _set_pulse_width(self, s, params) -> None:
        channel = self._ch(s)
        width = parse_number(_one(params, "PULS:WIDT"), "pulse width", *PULSE_WIDTH_RANGE_S, default=100e-6)
        edges_s = 0.5 * (channel.pulse_lead_s + channel.pulse_trail_s)
        if width + edges_s > 1.0 / channel.frequency_hz:
            raise ScpiError(-221, f"pulse width {width:g} s does not fit in period {1 / channel.frequency_hz:g} s")
        if width < edges_s:
            raise ScpiError(-221, f"pulse width {width:g} s shorter than its edges")
        channel.pulse_width_s = width
        self._changed(channel)

    def _set_pulse_duty(self, s, params) -> None:
        channel = self._ch(s)
        duty = parse_number(_one(params, "PULS:DCYC"), "pulse duty cycle", 0.0, 100.0, default=10.0)
        width = duty / 100.0 / channel.frequency_hz
        if not PULSE_WIDTH_RANGE_S[0] <= width:
            raise ScpiError(-222, f"duty cycle {duty:g} % gives a pulse width below {PULSE_WIDTH_RANGE_S[0]:g} s")
        channel.pulse_width_s = width
        self._changed(channel)

    def _set_edges(self, which: str):
        def setter(s, params) -> None:
            channel = self._ch(s)
            edge = parse_number(_one(params, "PULS:TRAN"), "edge time", *EDGE_RANGE_S, default=10e-9)
            if which in ("both", "lead"):
                channel.pulse_lead_s = edge
            if which in ("both", "trail"):
                channel.pulse_trail_s = edge
            self._changed(channel)
        return setter

    def _set_pulse_hold(self, s, params) -> None:
        self._ch(s).pulse_hold = parse_choice(_one(params, "PULS:HOLD"), "pulse hold", ["WIDTh", "DCYCle"])

    def _set_square_duty(self, s, params) -> None:
        channel = self._ch(s)
        channel.square_duty_pct = parse_number(_one(params, "SQU:DCYC"), "square duty cycle", 0.01, 99.99, 50.0)
        self._changed(channel)

    def _set_symmetry(self, s, params) -> None:
        channel = self._ch(s)
        channel.ramp_symmetry_pct = parse_number(_one(params, "RAMP:SYMM"), "ramp symmetry", 0.0, 100.0, 100.0)
        self._changed(channel)

    def _set_phase(self, s, params) -> None:
        channel = self._ch(s)
        channel.phase_deg = parse_number(_one(params, "PHAS"), "phase", -360.0, 360.0, 0.0)
        self._changed(channel)

    # ------------------------------------------------------------------ voltages

    def _set_amplitude(self, s, params) -> None:
        channel = self._ch(s)
        programmed = parse_number(_one(params, "VOLT"), "amplitude", 0.0, 2 * MAX_EMF_V, default=0.1)
        amplitude = programmed * channel.load_factor
        self._check_emf(channel, amplitude, channel.offset_emf_v)
        channel.amplitude_emf_vpp = amplitude
        self._changed(channel)

    def _get_amplitude(self, s, params) -> str:
        channel = self._ch(s)
        return _num(channel.amplitude_emf_vpp / channel.load_factor)

    def _set_offset(self, s, params) -> None:
        channel = self._ch(s)
        programmed = parse_number(_one(params, "VOLT:OFFS"), "offset", -MAX_EMF_V, MAX_EMF_V, default=0.0)
        offset = programmed * channel.load_factor
        self._check_emf(channel, channel.amplitude_emf_vpp, offset)
        channel.offset_emf_v = offset
        self._changed(channel)

    def _get_offset(self, s, params) -> str:
        channel = self._ch(s)
        return _num(channel.offset_emf_v / channel.load_factor)

    def _set_level(self, which: str):
        def setter(s, params) -> None:
            channel = self._ch(s)
            programmed = parse_number(_one(params, f"VOLT:{which.upper()}"), f"{which} level",
                                      -MAX_EMF_V, MAX_EMF_V, default=0.05 if which == "high" else -0.05)
            level = programmed * channel.load_factor
            high = channel.offset_emf_v + channel.amplitude_emf_vpp / 2.0
            low = channel.offset_emf_v - channel.amplitude_emf_vpp / 2.0
            if which == "high":
                high = level
            else:
                low = level
            if high <= low:
                raise ScpiError(-221, f"high level must stay above the low level (high {high / channel.load_factor:g} V,"
                                      f" low {low / channel.load_factor:g} V)")
            self._check_emf(channel, high - low, (high + low) / 2.0)
            channel.amplitude_emf_vpp = high - low
            channel.offset_emf_v = (high + low) / 2.0
            self._changed(channel)
        return setter

    def _get_level(self, which: str):
        def getter(s, params) -> str:
            channel = self._ch(s)
            sign = 1.0 if which == "high" else -1.0
            return _num((channel.offset_emf_v + sign * channel.amplitude_emf_vpp / 2.0) / channel.load_factor)
        return getter

    def _set_unit(self, s, params) -> None:
        if parse_choice(_one(params, "VOLT:UNIT"), "voltage unit", ["VPP", "VRMS", "DBM"]) != "VPP":
            raise ScpiError(-221, "the simulator supports VPP only")

    # ------------------------------------------------------------------ output

    def _set_output(self, s, params) -> None:
        channel = self._ch(s, "OUTP")
        state = parse_bool(_one(params, "OUTP"), "output state")
        if state and not channel.output_on:
            self._changed(channel)
        channel.output_on = state
        log.debug("%s: output %d %s", self.name, s.get("OUTP", 1), "on" if state else "off")

    def _set_load(self, s, params) -> None:
        channel = self._ch(s, "OUTP")
        load = parse_number(_one(params, "OUTP:LOAD"), "load", 1.0, 10e3, default=50.0, allow_inf=True)
        channel.load_ohm = load  # EMF values stay: the programmed values rescale

    def _get_load(self, s, params) -> str:
        load = self._ch(s, "OUTP").load_ohm
        return _num(INFINITY_REPLY if math.isinf(load) else load)

    def _set_polarity(self, s, params) -> None:
        channel = self._ch(s, "OUTP")
        channel.inverted = parse_choice(_one(params, "OUTP:POL"), "polarity", ["NORMal", "INVerted"]) == "INV"
        self._changed(channel)

    # ------------------------------------------------------------------ burst and trigger

    def _set_burst_state(self, s, params) -> None:
        channel = self._ch(s)
        channel.burst_on = parse_bool(_one(params, "BURS:STAT"), "burst state")
        channel.burst_start_s = channel.burst_end_s = None
        self._changed(channel)

    def _set_burst_mode(self, s, params) -> None:
        channel = self._ch(s)
        channel.burst_mode = parse_choice(_one(params, "BURS:MODE"), "burst mode", ["TRIGgered", "GATed"])
        self._changed(channel)

    def _set_burst_cycles(self, s, params) -> None:
        channel = self._ch(s)
        token = _one(params, "BURS:NCYC")
        if str(token).strip().upper() in ("INF", "INFINITY"):
            channel.burst_cycles = math.inf
        else:
            channel.burst_cycles = float(parse_integer(token, "burst count", 1, 100_000_000, default=1))
        self._changed(channel)

    def _get_burst_cycles(self, s, params) -> str:
        cycles = self._ch(s).burst_cycles
        return _num(INFINITY_REPLY if math.isinf(cycles) else cycles)

    def _set_burst_period(self, s, params) -> None:
        channel = self._ch(s)
        channel.burst_period_s = parse_number(_one(params, "BURS:INT:PER"), "burst period",
                                              *BURST_PERIOD_RANGE_S, default=10e-3)
        self._changed(channel)

    def _set_burst_phase(self, s, params) -> None:
        channel = self._ch(s)
        channel.burst_phase_deg = parse_number(_one(params, "BURS:PHAS"), "burst phase", -360.0, 360.0, 0.0)
        self._changed(channel)

    def _set_trigger_source(self, s, params) -> None:
        channel = self._ch(s, "TRIG")
        channel.trigger_source = parse_choice(_one(params, "TRIG:SOUR"), "trigger source",
                                              ["IMMediate", "EXTernal", "TIMer", "BUS"])
        self._changed(channel)

    def _set_trigger_delay(self, s, params) -> None:
        self._ch(s, "TRIG").trigger_delay_s = parse_number(_one(params, "TRIG:DEL"), "trigger delay",
                                                           *TRIGGER_DELAY_RANGE_S, default=0.0)

    def _set_trigger_slope(self, s, params) -> None:
        self._ch(s, "TRIG").trigger_slope = parse_choice(_one(params, "TRIG:SLOP"), "trigger slope",
                                                         ["POSitive", "NEGative"])

    def _set_trigger_timer(self, s, params) -> None:
        channel = self._ch(s, "TRIG")
        channel.trigger_timer_s = parse_number(_one(params, "TRIG:TIM"), "trigger timer",
                                               *TRIGGER_TIMER_RANGE_S, default=1.0)
        self._changed(channel)

    def _trigger_now(self, s, params) -> None:
        require_params(params, 0, "TRIG")
        number = s.get("TRIG", 1)
        self._ch(s, "TRIG")
        if self.channels[number].trigger_source != "IMM":
            self._fire([number])

    # ------------------------------------------------------------------ arbitrary waveforms

    def _set_byte_order(self, s, params) -> None:
        self.byte_order = parse_choice(_one(params, "FORM:BORD"), "byte order", ["NORMal", "SWAPped"])

    def _set_arb_dac(self, s, params) -> None:
        channel = self._ch(s)
        if len(params) < 2:
            raise ScpiError(-109, "DATA:ARB:DAC needs a name and data")
        name = _arb_name(params[0])
        if len(params) == 2 and isinstance(params[1], bytes):
            block = params[1]
            if len(block) % 2:
                raise ScpiError(-161, f"DAC block has an odd number of bytes ({len(block)})")
            dtype = ">i2" if self.byte_order == "NORM" else "<i2"
            values = np.frombuffer(block, dtype=dtype).astype(float)
        else:
            values = np.array([parse_integer(item, "DAC value", -32768, 32767) for item in params[1:]], dtype=float)
        if np.any(values < -32767) or np.any(values > 32767):
            raise ScpiError(-222, "DAC values must lie from -32767 to +32767")
        self._store_arb(channel, name, values / 32767.0)

    def _set_arb_float(self, s, params) -> None:
        channel = self._ch(s)
        if len(params) < 2:
            raise ScpiError(-109, "DATA:ARB needs a name and data")
        name = _arb_name(params[0])
        if len(params) == 2 and isinstance(params[1], bytes):
            dtype = ">f4" if self.byte_order == "NORM" else "<f4"
            values = np.frombuffer(params[1], dtype=dtype).astype(float)
        else:
            values = np.array([parse_number(item, "arb value", -1.0, 1.0) for item in params[1:]])
        if np.any(np.abs(values) > 1.0):
            raise ScpiError(-222, "arb values must lie from -1 to +1")
        self._store_arb(channel, name, values)

    def _store_arb(self, channel: ChannelState, name: str, values: np.ndarray) -> None:
        low, high = ARB_POINTS_RANGE
        if not low <= values.size <= high:
            raise ScpiError(-222, f"arbitrary waveform needs {low} to {high} points, got {values.size}")
        if name in channel.arbs:
            raise ScpiError(-221, f"arb name {name} already exists; clear volatile memory first")
        channel.arbs[name] = values
        log.debug("%s: stored arb %s with %d points", self.name, name, values.size)

    def _clear_volatile(self, s, params) -> None:
        channel = self._ch(s)
        channel.arbs.clear()
        channel.arb_name = None
        self._changed(channel)

    def _get_catalog(self, s, params) -> str:
        names = self._ch(s).arbs
        return ",".join(f'"{name}"' for name in names) if names else '""'

    def _get_arb_points(self, s, params) -> str:
        channel = self._ch(s)
        name = _arb_name(params[0]) if params else channel.arb_name
        if name not in channel.arbs:
            raise ScpiError(-224, f"no arbitrary waveform named {name}")
        return f"{channel.arbs[name].size:+d}"

    def _select_arb(self, s, params) -> None:
        channel = self._ch(s)
        name = _arb_name(_one(params, "FUNC:ARB"))
        if name not in channel.arbs:
            raise ScpiError(-224, f"no arbitrary waveform named {name} in volatile memory")
        channel.arb_name = name
        self._changed(channel)

    def _get_arb(self, s, params) -> str:
        name = self._ch(s).arb_name
        return f'"{name}"' if name else '""'

    def _set_arb_rate(self, s, params) -> None:
        channel = self._ch(s)
        channel.arb_sample_rate_hz = parse_number(_one(params, "FUNC:ARB:SRAT"), "arb sample rate",
                                                  *ARB_SAMPLE_RATE_RANGE_HZ, default=40e3)
        self._changed(channel)

    def _set_arb_filter(self, s, params) -> None:
        channel = self._ch(s)
        channel.arb_filter = parse_choice(_one(params, "FUNC:ARB:FILT"), "arb filter",
                                          ["NORMal", "STEP", "OFF"])

    def _set_arb_advance(self, s, params) -> None:
        channel = self._ch(s)
        # NOTE: the setting is kept, but playback always advances at the sample rate:
        # stepping an arb one point per trigger is not simulated.
        channel.arb_advance = parse_choice(_one(params, "FUNC:ARB:ADV"), "arb advance", ["TRIGger", "SRATe"])


def _one(params: list, what: str):
    require_params(params, 1, what)
    return params[0]


def _num(value: float) -> str:
    return f"{value:+.15E}"


def _bool(value: bool) -> str:
    return "1" if value else "0"


def _arb_name(token) -> str:
    name = parse_string(token, "arb name").upper()
    if not name or len(name) > MAX_ARB_NAME_LENGTH or not name[0].isalpha() or not name.replace("_", "").isalnum():
        raise ScpiError(-224, f"arb name '{name}' must start with a letter and have at most "
                              f"{MAX_ARB_NAME_LENGTH} letters, digits or underscores")
    return name
