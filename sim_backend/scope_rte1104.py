"""The simulated Rohde & Schwarz RTE1104 oscilloscope (SCPI state machine and acquisitions).

Inputs (see ``sim_backend.world``): channel 1 is the current amplifier's output, channel 2
the voltage at the Pt electrode, channels 3 and 4 are open (0 V plus noise).

Acquisition. The record spans ``10 * TIM:SCAL`` seconds. Its reference point
(``TIM:REF`` percent of the window) lies ``TIM:HOR:POS`` seconds after the trigger, and it
has ``ACQ:POIN = ACQ:SRAT * 10 * TIM:SCAL`` samples. ``SING`` arms the scope. Then a
crossing of the trigger level on the trigger source, the scope's ``*TRG``, or (in AUTO
mode) the auto-trigger timeout triggers it. Once virtual time passes the end of the
window, the record is assembled from the world's samples. Each record sample takes the
value of the signal at its sample time (sample decimation), gets the channel's white
noise, and is clipped at the screen edges and quantised to 8 bits.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from instruments.ieee488_block import encode_block
from sim_backend.scpi import (
    QueryTimeout,
    ScpiError,
    ScpiInstrument,
    parse_bool,
    parse_choice,
    parse_integer,
    parse_number,
    require_params,
)
from sim_backend.world import Block, Interest, SimulatedWorld

log = logging.getLogger(__name__)

IDENTITY = "Rohde&Schwarz,RTE1104,1326.2000K04/SIM00003,simulated"

TIMEBASE_SCALE_RANGE_S = (25e-12, 10e3)
SAMPLE_RATE_RANGE_HZ = (1.0, 5e9)
RECORD_LENGTH_RANGE = (2, 50_000_000)
VERTICAL_SCALE_RANGE_V = (1e-3, 10.0)
#: Vertical divisions on the screen.
DIVISIONS = 10
#: ADC codes per vertical division (8 bits over 10.24 divisions).
# NOTE: a simulator choice of the right order for an 8-bit scope, not an R&S figure.
CODES_PER_DIVISION = 25.0
#: Scope input noise, rms, as a fraction of the channel's vertical scale.
# NOTE: a simulator assumption, not an RTE1104 data-sheet figure.
NOISE_FRACTION_OF_DIVISION = 0.02
#: Shortest time an AUTO-mode acquisition waits for a trigger before it triggers itself.
# NOTE: the RTE's auto time depends on the time base; 0.1 s or the window length, whichever
# is longer, is the simulator's choice.
MIN_AUTO_TRIGGER_TIMEOUT_S = 0.1


@dataclass
class ScopeChannel:
    """Vertical settings of one input channel."""

    enabled: bool
    scale_v_per_div: float = 0.05
    offset_v: float = 0.0
    position_div: float = 0.0
    coupling: str = "DCL"


@dataclass
class Record:
    """A completed acquisition: values in volts of the channels that were on, and the time axis."""

    x_start_s: float
    sample_interval_s: float
    values_v: dict[int, np.ndarray]
    trigger_time_s: float
    length: int

    @property
    def x_stop_s(self) -> float:
        """Time of the last sample relative to the trigger."""
        return self.x_start_s + self.sample_interval_s * (self.length - 1)


class SimulatedRTE1104(ScpiInstrument):
    """RTE1104 behind a simulated VISA connection, recording the world's signals."""

    def __init__(self, world: SimulatedWorld, rng: np.random.Generator,
                 visa_timeout_s: Callable[[], float] = lambda: 2.0,
                 name: str = "R&S RTE1104 (simulated)"):
        super().__init__(name, IDENTITY, signed_error_codes=False)
        self.world = world
        self.rng = rng
        self.visa_timeout_s = visa_timeout_s
        self.acquisitions_completed = 0
        self.record: Record | None = None
        self._set_defaults()
        self._register_commands()

    def _set_defaults(self) -> None:
        self.channels = {number: ScopeChannel(enabled=number == 1) for number in range(1, 5)}
        self.timebase_scale_s = 1e-6
        self.reference_pct = 50.0
        self.horizontal_position_s = 0.0
        self.sample_rate_hz = 1e8
        self.record_length = 1000
        self.trigger_source = "CHAN1"
        self.trigger_levels_v = {number: 0.0 for number in range(1, 6)}
        self.trigger_slope = "POS"
        self.trigger_mode = "AUTO"
        self.data_format = "ASC"
        self.byte_order = "LSBF"
        self.export_increment_x = False
        self.state = "IDLE"
        self.armed_s = 0.0
        self.trigger_s = 0.0

    # ------------------------------------------------------------------ window geometry

    @property
    def window_s(self) -> float:
        """Length of the acquisition window, in seconds."""
        return DIVISIONS * self.timebase_scale_s

    @property
    def x_start_s(self) -> float:
        """Time of the first record sample relative to the trigger, in seconds."""
        return self._edges_s()[0]

    @property
    def x_end_s(self) -> float:
        """End of the window relative to the trigger, in seconds."""
        return self._edges_s()[1]

    def _edges_s(self) -> tuple[float, float]:
        """Return the start and the end of the window relative to the trigger, in seconds.

        Every user computes them here, so the same settings always give the same floats.
        """
        window_s = DIVISIONS * self.timebase_scale_s
        x_start_s = self.horizontal_position_s - self.reference_pct / 100.0 * window_s
        return x_start_s, x_start_s + window_s

    def sample_interval_s(self) -> float:
        """Time between record samples, in seconds."""
        return 1.0 / self.sample_rate_hz

    def _auto_trigger_time_s(self) -> float:
        """Return when an armed acquisition triggers by itself (FREerun: at once)."""
        if self.trigger_mode == "FRE":
            return self.armed_s
        return self.armed_s + max(MIN_AUTO_TRIGGER_TIMEOUT_S, self.window_s)

    # ------------------------------------------------------------------ hooks for the world

    def pre_trigger_s(self) -> float:
        """Length of the part of the window before the trigger, in seconds (0 if none)."""
        return max(0.0, -self._edges_s()[0])

    def is_recording(self) -> bool:
        """True while an acquisition is armed or waits for the end of its window."""
        return self.state in ("ARMED", "TRIGGERED")

    def interest(self, now_s: float) -> Interest | None:
        """Return the window in which this scope needs samples of the signals."""
        state = self.state
        if state == "IDLE":
            return None
        x_start_s, x_end_s = self._edges_s()
        if state == "ARMED":
            return Interest(now_s - max(0.0, -x_start_s), math.inf, 1.0 / self.sample_rate_hz)
        return Interest(self.trigger_s + x_start_s, self.trigger_s + x_end_s,
                        1.0 / self.sample_rate_hz)

    def next_event_s(self, now_s: float) -> float:
        """Return the time of the next scope event (auto trigger, end of window) or inf."""
        if self.state == "ARMED" and self.trigger_mode in ("AUTO", "FRE"):
            return self._auto_trigger_time_s()
        if self.state == "TRIGGERED":
            return self.trigger_s + self._edges_s()[1]
        return math.inf

    def handle_time(self, now_s: float) -> None:
        """Trigger by itself when an AUTO acquisition has waited long enough."""
        auto = self.state == "ARMED" and self.trigger_mode in ("AUTO", "FRE")
        if auto and now_s >= self._auto_trigger_time_s():
            self._trigger(self._auto_trigger_time_s(), "auto trigger")

    def capture_due(self, now_s: float) -> bool:
        """True when a triggered acquisition's window has ended."""
        return self.state == "TRIGGERED" and now_s >= self.trigger_s + self._edges_s()[1]

    def pending_capture_end_s(self) -> float | None:
        """End of the window of a triggered acquisition, or None."""
        return self.trigger_s + self._edges_s()[1] if self.state == "TRIGGERED" else None

    def on_voltage_step(self, time_s: float, old_v: float, new_v: float) -> None:
        """Trigger on a step of the Pt voltage when channel 2 is the trigger source."""
        if self.state != "ARMED" or self.trigger_source != "CHAN2":
            return
        if _crossings(np.array([new_v]), old_v, self.trigger_levels_v[2], self.trigger_slope).size:
            self._trigger(time_s, "voltage step on CHAN2")

    def inspect_block(self, block: Block, previous_voltage_v: float, previous_amplifier_v: float,
                      sync_times: np.ndarray) -> None:
        """Look for a trigger event in freshly played samples.

        ``previous_voltage_v`` and ``previous_amplifier_v`` are the Pt voltage and the
        amplifier output just before the block, so an edge on its first sample counts.
        """
        if self.state != "ARMED":
            return
        source = self.trigger_source
        if source == "EXT":
            if sync_times.size:
                self._trigger(float(sync_times[0]), "generator sync")
            return
        if source == "CHAN2":
            signal, previous = block.voltage_v, previous_voltage_v
        elif source == "CHAN1":
            signal, previous = block.amplifier_v, previous_amplifier_v
        else:
            return  # channels 3 and 4 are open
        level = self.trigger_levels_v[int(source[-1])]
        crossings = _crossings(signal, previous, level, self.trigger_slope)
        if crossings.size:
            self._trigger(block.t0_s + block.dt_s * int(crossings[0]), f"{source} edge")

    def complete_capture(self, world: SimulatedWorld) -> None:
        """Assemble the record of the triggered acquisition from the world's samples."""
        length = self.record_length
        x_start_s = self._edges_s()[0]
        first_s = self.trigger_s + x_start_s
        interval_s = self.sample_interval_s()
        last_s = first_s + interval_s * (length - 1)
        pt_voltage, amplifier_output = self._signals_at_samples(world, first_s, interval_s, last_s)

        # The amplifier adds its noise and sets its overload flag whether channel 1 is on or not.
        inputs = {1: world.amplifier.finish_output(amplifier_output), 2: pt_voltage}
        # Only channels that are on record data, as on the instrument; 3 and 4 are open.
        enabled = [number for number, channel in self.channels.items() if channel.enabled]
        signals = [inputs.get(number) for number in enabled]
        digitised = self._digitise([self.channels[number] for number in enabled], signals, length)
        values = dict(zip(enabled, digitised))
        self.record = Record(x_start_s, interval_s, values, self.trigger_s, length)
        self.acquisitions_completed += 1
        self.state = "IDLE"
        log.debug("%s: acquisition complete, %d samples around trigger at %g s",
                  self.name, length, self.trigger_s)

    def _signals_at_samples(self, world: SimulatedWorld, first_s: float, interval_s: float,
                            last_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the Pt voltage and the noise-free amplifier output at the record's sample times."""
        length = self.record_length
        blocks = world.history_between(first_s, last_s + 1e-15)
        if (len(blocks) == 1 and blocks[0].t0_s == first_s and blocks[0].dt_s == interval_s
                and blocks[0].voltage_v.size >= length):
            # The block's samples start at the record's sample times, so record sample k is
            # block sample k, which is what the search below finds too.
            return blocks[0].voltage_v[:length], blocks[0].amplifier_v[:length]
        sample_times = first_s + interval_s * np.arange(length)
        if not blocks:
            # NOTE: no samples cover the window, because it lies before anything recorded.
            # The present level and its noise-free current are used in its place.
            level_v = world.present_voltage_v()
            current_a = world.device.conductance_s(level_v) * level_v if level_v else 0.0
            return (np.full(length, level_v),
                    np.full(length, -world.amplifier.gain_v_per_a * current_a))

        # A sample keeps its value until the next one starts (zero-order hold).
        if len(blocks) == 1:
            (block,) = blocks
            starts, voltage, amplifier = block.times_s(), block.voltage_v, block.amplifier_v
        else:
            starts = np.concatenate([block.times_s() for block in blocks])
            voltage = np.concatenate([block.voltage_v for block in blocks])
            amplifier = np.concatenate([block.amplifier_v for block in blocks])
        index = np.searchsorted(starts, sample_times, side="right") - 1
        index = np.minimum(np.maximum(index, 0), starts.size - 1)
        return voltage[index], amplifier[index]

    # ------------------------------------------------------------------ internals

    def _trigger(self, time_s: float, reason: str) -> None:
        self.state = "TRIGGERED"
        self.trigger_s = time_s
        log.debug("%s: triggered at %g s (%s)", self.name, time_s, reason)

    def _digitise(self, channels: list[ScopeChannel], signals: list, length: int) -> np.ndarray:
        """Add each channel's noise, clip at its screen edges and quantise to its ADC codes.

        Returns one row per channel. ``signals[i]`` is the input of ``channels[i]``, or None
        for an open input (0 V). The channels are processed together as rows of one array,
        with one noise draw for all of them: the same numbers as one draw per channel in
        turn, at a fraction of the calls.
        """
        values = np.zeros((len(channels), length))
        for row, (channel, signal) in enumerate(zip(channels, signals)):
            if signal is not None:
                values[row] = signal
            if channel.coupling == "AC":
                values[row] -= values[row].mean()
        # One column per quantity, one row per channel: noise rms, screen bottom and top,
        # ADC step and offset, all in volts.
        settings = np.array([
            [NOISE_FRACTION_OF_DIVISION * channel.scale_v_per_div,
             channel.offset_v - (DIVISIONS / 2 + channel.position_div) * channel.scale_v_per_div,
             channel.offset_v + (DIVISIONS / 2 - channel.position_div) * channel.scale_v_per_div,
             channel.scale_v_per_div / CODES_PER_DIVISION,
             channel.offset_v]
            for channel in channels
        ])
        noise_rms, bottom, top, step, offset = (settings[:, column:column + 1] for column in range(5))
        with_offset = any(channel.offset_v for channel in channels)

        noise = self.rng.standard_normal(values.shape)
        noise *= noise_rms
        values += noise
        np.maximum(values, bottom, out=values)
        np.minimum(values, top, out=values)
        if with_offset:
            values -= offset
        values /= step
        np.rint(values, out=values)
        values *= step
        if with_offset:
            values += offset
        return values

    def reset(self) -> None:
        """Return every setting to its ``*RST`` value and stop any acquisition."""
        self._set_defaults()

    def fire_trigger(self) -> None:
        """``*TRG``: force a trigger of an armed acquisition now."""
        if self.state == "ARMED":
            self.world.realise()
            self._trigger(self.world.clock.now(), "*TRG")

    def operation_complete(self) -> str:
        """``*OPC?``: let time run until the acquisition completes, or time out."""
        if self.state == "IDLE":
            return "1"
        if self.state == "ARMED" and self.trigger_mode in ("AUTO", "FRE"):
            self.world.realise()
            self._trigger(self.world.clock.now(), "auto trigger while waited on")
        if self.state == "TRIGGERED":
            self.world.advance_to(self.trigger_s + self.x_end_s)
            return "1"
        deadline_s = self.world.clock.now() + self.visa_timeout_s()
        self.world.advance_to(deadline_s, stop=lambda: self.state == "IDLE")
        if self.state == "IDLE":
            return "1"
        log.debug("%s: no trigger within %g s in NORMAL mode", self.name, self.visa_timeout_s())
        raise QueryTimeout()

    # ------------------------------------------------------------------ command table

    def _register_commands(self) -> None:
        add = self.add
        add("CHANnel#:STATe", self._channel_setter("enabled", _parse_state),
            self._channel_getter(lambda c: "1" if c.enabled else "0"))
        add("CHANnel#:SCALe", self._channel_setter("scale_v_per_div", _parse_scale),
            self._channel_getter(lambda c: _num(c.scale_v_per_div)))
        add("CHANnel#:RANGe", self._channel_setter("scale_v_per_div", _parse_range),
            self._channel_getter(lambda c: _num(c.scale_v_per_div * DIVISIONS)))
        add("CHANnel#:OFFSet", self._channel_setter("offset_v", _parse_offset),
            self._channel_getter(lambda c: _num(c.offset_v)))
        add("CHANnel#:POSition", self._channel_setter("position_div", _parse_position),
            self._channel_getter(lambda c: _num(c.position_div)))
        add("CHANnel#:COUPling", self._channel_setter("coupling", _parse_coupling),
            self._channel_getter(lambda c: c.coupling))
        add("CHANnel#[:WAVeform#]:DATA:HEADer", getter=self._get_header)
        add("CHANnel#[:WAVeform#]:DATA[:VALues]", getter=self._get_data)

        add("TIMebase:SCALe", self._set_timebase_scale, lambda s, p: _num(self.timebase_scale_s))
        add("TIMebase:RANGe", self._set_timebase_range, lambda s, p: _num(self.window_s))
        add("TIMebase:HORizontal:POSition", self._set_horizontal_position,
            lambda s, p: _num(self.horizontal_position_s))
        add("TIMebase:REFerence", self._set_reference, lambda s, p: _num(self.reference_pct))
        add("ACQuire:POINts[:VALue]", self._set_record_length, lambda s, p: str(self.record_length))
        add("ACQuire:SRATe[:VALue]", self._set_sample_rate, lambda s, p: _num(self.sample_rate_hz))
        add("ACQuire:RESolution", getter=lambda s, p: _num(self.sample_interval_s()))
        add("ACQuire:CURRent", getter=lambda s, p: str(self.acquisitions_completed))

        add("TRIGger#:SOURce", self._set_trigger_source, lambda s, p: self.trigger_source)
        add("TRIGger#:LEVel#[:VALue]", self._set_trigger_level, self._get_trigger_level)
        add("TRIGger#:EDGE:SLOPe", self._set_trigger_slope, lambda s, p: self.trigger_slope)
        add("TRIGger#:MODE", self._set_trigger_mode, lambda s, p: self.trigger_mode)
        add("TRIGger#:TYPE", self._set_trigger_type, lambda s, p: "EDGE")

        add("SINGle", self._arm)
        add("RUNSingle", self._arm)
        add("RUN", self._arm)  # NOTE: continuous acquisition is not simulated; RUN arms once
        add("RUNContinous", self._arm)
        add("STOP", self._stop)

        add("FORMat[:DATA]", self._set_format, self._get_format)
        add("FORMat:BORDer", self._set_byte_order, lambda s, p: self.byte_order)
        add("EXPort:WAVeform:INCXvalues", self._set_export_x, lambda s, p: "1" if self.export_increment_x else "0")
        add("SYSTem:ERRor:ALL", getter=self._get_all_errors)

    def _channel(self, s) -> ScopeChannel:
        number = s.get("CHAN", 1)
        if number not in self.channels:
            raise ScpiError(-113, f"channel {number} does not exist")
        return self.channels[number]

    def _channel_setter(self, attribute: str, parse):
        def setter(s, params) -> None:
            channel = self._channel(s)
            require_params(params, 1, attribute)
            setattr(channel, attribute, parse(params[0]))
        return setter

    def _channel_getter(self, format_value):
        def getter(s, params) -> str:
            return format_value(self._channel(s))
        return getter

    def _set_timebase_scale(self, s, params) -> None:
        require_params(params, 1, "TIM:SCAL")
        self._apply_timebase(parse_number(params[0], "time scale", *TIMEBASE_SCALE_RANGE_S))

    def _set_timebase_range(self, s, params) -> None:
        require_params(params, 1, "TIM:RANG")
        low, high = TIMEBASE_SCALE_RANGE_S
        self._apply_timebase(parse_number(params[0], "time range", low * DIVISIONS, high * DIVISIONS) / DIVISIONS)

    def _apply_timebase(self, scale_s: float) -> None:
        """Change the time scale keeping the sample rate, or lowering it if the record would overflow."""
        window_s = DIVISIONS * scale_s
        rate = self.sample_rate_hz
        if rate * window_s > RECORD_LENGTH_RANGE[1]:
            rate = RECORD_LENGTH_RANGE[1] / window_s
        if rate * window_s < RECORD_LENGTH_RANGE[0]:
            rate = RECORD_LENGTH_RANGE[0] / window_s
            if rate > SAMPLE_RATE_RANGE_HZ[1]:
                raise ScpiError(-222, f"time scale {scale_s:g} s/div is too short for the sample rate")
        self.timebase_scale_s = scale_s
        self.sample_rate_hz = rate
        self.record_length = max(RECORD_LENGTH_RANGE[0], round(rate * window_s))

    def _set_horizontal_position(self, s, params) -> None:
        require_params(params, 1, "TIM:HOR:POS")
        self.horizontal_position_s = parse_number(params[0], "horizontal position", -1e4, 1e4, default=0.0)

    def _set_reference(self, s, params) -> None:
        require_params(params, 1, "TIM:REF")
        self.reference_pct = parse_number(params[0], "reference point", 0.0, 100.0, default=50.0)

    def _set_record_length(self, s, params) -> None:
        require_params(params, 1, "ACQ:POIN")
        length = parse_integer(params[0], "record length", *RECORD_LENGTH_RANGE)
        rate = length / self.window_s
        if not SAMPLE_RATE_RANGE_HZ[0] <= rate <= SAMPLE_RATE_RANGE_HZ[1]:
            raise ScpiError(-222, f"record length {length} needs {rate:g} Sa/s over the "
                                  f"{self.window_s:g} s window")
        self.record_length = length
        self.sample_rate_hz = rate

    def _set_sample_rate(self, s, params) -> None:
        require_params(params, 1, "ACQ:SRAT")
        rate = parse_number(params[0], "sample rate", *SAMPLE_RATE_RANGE_HZ)
        length = round(rate * self.window_s)
        if not RECORD_LENGTH_RANGE[0] <= length <= RECORD_LENGTH_RANGE[1]:
            raise ScpiError(-222, f"sample rate {rate:g} Sa/s gives {length} samples over the "
                                  f"{self.window_s:g} s window")
        self.sample_rate_hz = rate
        self.record_length = length

    def _set_trigger_source(self, s, params) -> None:
        require_params(params, 1, "TRIG:SOUR")
        text = str(params[0]).strip().upper()
        match = re.fullmatch(r"CH(?:AN(?:NEL)?)?([1-4])", text)
        if match:
            self.trigger_source = f"CHAN{match.group(1)}"
        elif text in ("EXT", "EXTERNANALOG", "EXTERNAL"):
            self.trigger_source = "EXT"
        else:
            raise ScpiError(-224, f"trigger source '{params[0]}'")

    def _set_trigger_level(self, s, params) -> None:
        require_params(params, 1, "TRIG:LEV")
        source = s.get("LEV", 1)
        if source not in self.trigger_levels_v:
            raise ScpiError(-113, f"trigger level {source} does not exist")
        self.trigger_levels_v[source] = parse_number(params[0], "trigger level", -100.0, 100.0, default=0.0)

    def _get_trigger_level(self, s, params) -> str:
        source = s.get("LEV", 1)
        if source not in self.trigger_levels_v:
            raise ScpiError(-113, f"trigger level {source} does not exist")
        return _num(self.trigger_levels_v[source])

    def _set_trigger_slope(self, s, params) -> None:
        require_params(params, 1, "TRIG:EDGE:SLOP")
        self.trigger_slope = parse_choice(params[0], "trigger slope", ["POSitive", "NEGative", "EITHer"])

    def _set_trigger_mode(self, s, params) -> None:
        require_params(params, 1, "TRIG:MODE")
        self.trigger_mode = parse_choice(params[0], "trigger mode", ["AUTO", "NORMal", "FREerun"])

    def _set_trigger_type(self, s, params) -> None:
        require_params(params, 1, "TRIG:TYPE")
        parse_choice(params[0], "trigger type", ["EDGE"])

    def _arm(self, s, params) -> None:
        require_params(params, 0, "SING")
        self.state = "ARMED"
        self.armed_s = self.world.clock.now()
        log.debug("%s: armed at %g s", self.name, self.armed_s)

    def _stop(self, s, params) -> None:
        require_params(params, 0, "STOP")
        self.state = "IDLE"

    def _set_format(self, s, params) -> None:
        if not params:
            raise ScpiError(-109, "FORM")
        kind = parse_choice(params[0], "data format", ["ASCii", "REAL", "INT"])
        if kind == "ASC":
            self.data_format = "ASC"
        elif kind == "REAL" and len(params) == 2 and str(params[1]).strip() == "32":
            self.data_format = "REAL"
        else:
            # NOTE: INT,8 and INT,16 (raw ADC codes) are not simulated.
            raise ScpiError(-224, f"data format {','.join(map(str, params))} is not simulated; use REAL,32 or ASC")

    def _get_format(self, s, params) -> str:
        return "REAL,32" if self.data_format == "REAL" else "ASC,0"

    def _set_byte_order(self, s, params) -> None:
        require_params(params, 1, "FORM:BORD")
        self.byte_order = parse_choice(params[0], "byte order", ["LSBFirst", "MSBFirst"])

    def _set_export_x(self, s, params) -> None:
        require_params(params, 1, "EXP:WAV:INCX")
        if parse_bool(params[0], "export of x values"):
            raise ScpiError(-224, "exporting x values with the data is not simulated")
        self.export_increment_x = False

    def _get_all_errors(self, s, params) -> str:
        entries = []
        while True:
            error = self.pop_error()
            entries.append(self.format_error(error))
            if error[0] == 0:
                break
        return ",".join(entries if len(entries) == 1 else entries[:-1])

    def _record_for(self, s) -> tuple[Record, int]:
        number = s.get("CHAN", 1)
        if number not in self.channels:
            raise ScpiError(-113, f"channel {number} does not exist")
        if not self.channels[number].enabled:
            raise ScpiError(-221, f"channel {number} is off")
        if self.record is None:
            raise ScpiError(-230, "no acquisition has completed")
        if number not in self.record.values_v:
            raise ScpiError(-230, f"channel {number} was off during the last acquisition")
        return self.record, number

    def _get_header(self, s, params) -> str:
        record, _ = self._record_for(s)
        return f"{_num(record.x_start_s)},{_num(record.x_stop_s)},{record.length},1"

    def _get_data(self, s, params) -> str | bytes:
        record, number = self._record_for(s)
        values = record.values_v[number]
        if self.data_format == "ASC":
            return ",".join(f"{value:.7g}" for value in values)
        dtype = "<f4" if self.byte_order == "LSBF" else ">f4"
        return encode_block(values.astype(dtype).tobytes())


def _crossings(signal: np.ndarray, previous: float, level: float, slope: str) -> np.ndarray:
    """Return indices of samples at which ``signal`` crosses ``level`` with ``slope``."""
    before = np.concatenate(([previous], signal[:-1]))
    rising = (before < level) & (signal >= level)
    falling = (before > level) & (signal <= level)
    if slope == "POS":
        return np.flatnonzero(rising)
    if slope == "NEG":
        return np.flatnonzero(falling)
    return np.flatnonzero(rising | falling)


def _num(value: float) -> str:
    return f"{value:.12G}"


def _parse_state(token) -> bool:
    return parse_bool(token, "channel state")


def _parse_scale(token) -> float:
    return parse_number(token, "vertical scale", *VERTICAL_SCALE_RANGE_V)


def _parse_range(token) -> float:
    low, high = VERTICAL_SCALE_RANGE_V
    return parse_number(token, "vertical range", low * DIVISIONS, high * DIVISIONS) / DIVISIONS


def _parse_offset(token) -> float:
    return parse_number(token, "channel offset", -100.0, 100.0, default=0.0)


def _parse_position(token) -> float:
    return parse_number(token, "channel position", -5.0, 5.0, default=0.0)


def _parse_coupling(token) -> str:
    return parse_choice(token, "coupling", ["DC", "DCLimit", "AC"])
