"""Driver for the Rohde & Schwarz RTE1104 oscilloscope that records the amplifier output.

The scope records the transimpedance amplifier's output (channel 1) and the applied voltage
(channel 2). The driver sets up channels, timebase, acquisition and the edge trigger,
arms single acquisitions and downloads records in volts with the time axis from the record
header. The command table is in ``docs/scpi-commands.md``.

Records are downloaded as 32-bit floats (``FORM REAL,32``) with an explicit byte order
(``FORM:BORD LSBF``, little endian) and without x values (``EXP:WAV:INCX OFF``). The driver
sends these three settings before its first download and remembers that it did. It sends
them again after ``*RST``, a format command sent through this driver, an I/O failure, an
error reported by the instrument, a device clear or a new connection. The header ``CHANn:DATA:HEAD?`` gives x start and x stop in seconds, the record length and the
values per sample. ``CHANn:DATA?`` returns an IEEE 488.2 block, parsed by
``instruments.ieee488_block`` in the definite-length form or the R&S large form
``#(<length>)``. The error queue is read once after the downloads of an acquisition.

NOTE: the remembered format assumes that nothing but this driver changes the format and
byte order while it is connected (front panel, another program). A byte order changed
behind its back would give wrong values of the right length; call ``forget_format()``
after such a change.

NOTE: the numeric ranges of the scope settings below are family-wide bounds that reject
obvious mistakes. The exact ranges depend on coupling, scale and options, so the
instrument reports anything it cannot set and the error-queue check raises it.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.scpi_instrument import (
    ScpiInstrument,
    float_control,
    keyword_control,
    keyword_reply,
    parse_bool,
    send_setting,
    strict_finite_range,
    strict_int_range,
    validate_bool,
)

log = logging.getLogger(__name__)

#: Trigger sources of the A trigger.
TRIGGER_SOURCES = ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "EXT")
#: Bytes per value of a REAL,32 record.
BYTES_PER_VALUE = 4
#: Settings sent before a download, in this order: float32 values, little endian, no x values.
DOWNLOAD_FORMAT_COMMANDS = ("FORM REAL,32", "FORM:BORD LSBF", "EXP:WAV:INCX OFF")
#: Message headers after which the driver sends the download format again.
_FORMAT_CHANGING_HEADERS = ("*RST", "*RCL", "SYST:PRES", "SYSTEM:PRES", "FORM", "EXP")


@functools.lru_cache(maxsize=256)
def _changes_download_format(message: str) -> bool:
    """Tell whether a program message may change the download format (``*RST``, ``FORM``, ...)."""
    units = message.upper().split(";")
    return any(unit.strip().lstrip(":").startswith(_FORMAT_CHANGING_HEADERS) for unit in units)


def _parse_trigger_source(reply) -> str:
    """Map ``CHAN1``/``CHANNEL1``/``EXT``/``EXTERNANALOG`` replies to the short forms."""
    text = str(reply).strip().strip('"').upper().replace("CHANNEL", "CHAN")
    return keyword_reply(TRIGGER_SOURCES)(text)


class RohdeSchwarzRTE1104Channel(Channel):
    """One analog input channel of the RTE1104."""

    state = Instrument.control(
        "CHAN{ch}:STAT?",
        "CHAN{ch}:STAT %s",
        """Control whether the channel is on (bool).""",
        validator=validate_bool,
        cast=str,
        get_process=parse_bool,
        check_set_errors=True,
    )

    scale = float_control(
        "CHAN{ch}:SCAL",
        """Control the vertical scale in volts per division (float strictly from 1e-3 to
        10; 1 V/div is the largest at 50 ohm).""",
        (1e-3, 10.0),
    )

    offset = float_control(
        "CHAN{ch}:OFFS",
        """Control the vertical offset in volts (float strictly from -100 to 100; the
        instrument limits it further by scale and coupling).""",
        (-100.0, 100.0),
    )

    position = float_control(
        "CHAN{ch}:POS",
        """Control the vertical position in divisions (float strictly from -5 to 5).""",
        (-5.0, 5.0),
    )

    coupling = Instrument.control(
        "CHAN{ch}:COUP?",
        "CHAN{ch}:COUP %s",
        """Control the input coupling (str strictly 'DC' = DC at 50 ohm, 'DCLimit' = DC at
        1 Mohm, or 'AC' = AC at 1 Mohm).""",
        validator=strict_discrete_set,
        values={"DC": "DC", "DCLimit": "DCL", "AC": "AC"},
        map_values=True,
        cast=str,
        get_process=keyword_reply(("DC", "DCL", "AC")),
        check_set_errors=True,
    )

    trigger_level = float_control(
        "TRIG1:LEV{ch}",
        """Control the A-trigger level used when this channel is the trigger source, in
        volts (float strictly from -100 to 100; it must lie within the displayed range).""",
        (-100.0, 100.0),
    )


class RohdeSchwarzRTE1104(ScpiInstrument):
    """Rohde & Schwarz RTE1104 four-channel oscilloscope (``ch_1`` to ``ch_4``)."""

    ch_1 = Instrument.ChannelCreator(RohdeSchwarzRTE1104Channel, 1)
    ch_2 = Instrument.ChannelCreator(RohdeSchwarzRTE1104Channel, 2)
    ch_3 = Instrument.ChannelCreator(RohdeSchwarzRTE1104Channel, 3)
    ch_4 = Instrument.ChannelCreator(RohdeSchwarzRTE1104Channel, 4)

    timebase_scale = float_control(
        "TIM:SCAL",
        """Control the horizontal scale in seconds per division (float strictly from
        2.5e-11 to 1e4; the record spans 10 divisions).""",
        (25e-12, 10e3),
    )

    timebase_position = float_control(
        "TIM:HOR:POS",
        """Control the horizontal position, the time of the reference point relative to the
        trigger, in seconds (float strictly from -1e4 to 1e4).""",
        (-10e3, 10e3),
    )

    timebase_reference = float_control(
        "TIM:REF",
        """Control the reference point in percent of the display width (float strictly from
        0 to 100).""",
        (0.0, 100.0),
    )

    record_length = Instrument.control(
        "ACQ:POIN?",
        "ACQ:POIN %s",
        """Control the record length in samples (int strictly from 2 to 1000000000; the
        sample rate follows from it and the timebase).""",
        validator=lambda value, limits: str(strict_int_range(value, limits)),
        values=(2, 1_000_000_000),
        get_process=lambda reply: int(reply),
        check_set_errors=True,
    )

    sample_rate = float_control(
        "ACQ:SRAT",
        """Control the sample rate in samples per second (float strictly from 1 to 1e13;
        the record length follows from it and the timebase).""",
        (1.0, 1e13),
    )

    trigger_source = keyword_control(
        "TRIG1:SOUR",
        """Control the A-trigger source (str strictly 'CHAN1', 'CHAN2', 'CHAN3', 'CHAN4'
        or 'EXT').""",
        TRIGGER_SOURCES,
        get_process=_parse_trigger_source,
    )

    trigger_slope = keyword_control(
        "TRIG1:EDGE:SLOP",
        """Control the edge of the A trigger (str strictly 'POS', 'NEG' or 'EITH').""",
        ("POS", "NEG", "EITH"),
    )

    trigger_mode = keyword_control(
        "TRIG1:MODE",
        """Control the trigger mode (str strictly 'AUTO', 'NORM' or 'FRE').

        On the instrument, NORM waits for a trigger event, AUTO also triggers by itself
        after a time-out and FRE (free run) acquires without waiting.""",
        ("AUTO", "NORM", "FRE"),
    )

    external_trigger_level = float_control(
        "TRIG1:LEV5",
        """Control the A-trigger level of the external trigger input in volts (float
        strictly from -5 to 5).""",
        (-5.0, 5.0),
    )

    def __init__(self, adapter, name: str = "R&S RTE1104", **kwargs):
        self._format_ready = False
        super().__init__(adapter, name, **kwargs)

    def write(self, command: str, **kwargs) -> None:
        if _changes_download_format(command):
            self._format_ready = False
        super().write(command, **kwargs)

    def _forget_instrument_state(self) -> None:
        self._format_ready = False

    def forget_format(self) -> None:
        """Send the download format settings again before the next download."""
        self._format_ready = False

    # ---- acquisition -------------------------------------------------------------------

    def arm(self) -> None:
        """Start a single acquisition (``SING``) and return at once."""
        self.write("SING")

    def wait_for_acquisition(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` seconds for the running acquisition to complete (``*OPC?``)."""
        self._query_completion("*OPC?", timeout_s)

    def single_acquisition(self, timeout_s: float) -> None:
        """Acquire once and wait up to ``timeout_s`` seconds for it (``SING;*OPC?``)."""
        self._query_completion("SING;*OPC?", timeout_s)

    def stop(self) -> None:
        """Stop the acquisition (``STOP``)."""
        send_setting(self, "STOP")

    def _query_completion(self, command: str, timeout_s: float) -> None:
        """Send ``command``, a query that replies ``1`` when the acquisition is complete."""
        strict_finite_range(timeout_s, (1e-3, 1e6))
        try:
            with self.visa_timeout(timeout_s):
                reply = self.ask(command)
        except InstrumentTimeout as error:
            # The instrument still sends the reply later. A device clear discards it, so the
            # late "1" cannot be read as the reply to the next query.
            self.device_clear()
            raise InstrumentTimeout(
                self.name,
                command,
                f"the acquisition did not complete within {timeout_s:g} s; check the trigger "
                "source, level and slope, and that the trigger mode is not NORM without a "
                "trigger event",
            ) from error
        if reply.strip() != "1":
            raise InstrumentError(self.name, command, f"expected '1', got {reply!r}")

    # ---- waveform download -------------------------------------------------------------

    def read_waveform(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """Download the record of input ``channel`` (1 to 4) as ``(time_s, voltage_v)``.

        ``time_s`` is relative to the trigger point. Records with more than one value per
        sample (peak-detect decimation or envelope arithmetic) are rejected. The error
        queue is read after the download.
        """
        return self.read_waveforms((channel,))[0]

    def read_waveforms(self, channels) -> list[tuple[np.ndarray, np.ndarray]]:
        """Download the records of several input channels of one acquisition.

        Returns one ``(time_s, voltage_v)`` pair per entry of ``channels`` (1 to 4), in
        that order, as ``read_waveform`` does. The download format is sent first if the
        driver does not know it to be set. After the last download the error queue is
        read once; an entry raises ``InstrumentError``.
        """
        channels = tuple(channels)
        for channel in channels:
            if isinstance(channel, bool) or channel not in (1, 2, 3, 4):
                raise ValueError(f"channel must be 1, 2, 3 or 4, got {channel!r}")
        if not channels:
            raise ValueError("expected at least one channel to download, got none")

        self._ensure_download_format()
        try:
            records = [self._download(channel) for channel in channels]
        except InstrumentConnectionError:
            self._format_ready = False
            raise
        except InstrumentError as error:
            # The error queue may contain the reason, for example -230 for a channel that was off.
            self._format_ready = False
            errors = self._log_errors_after_failure()
            if not errors:
                raise
            text = "; ".join(f'{code},"{message}"' for code, message in errors)
            raise type(error)(
                error.instrument, error.command, f"{error.message}; the instrument reported {text}"
            ) from error
        self.check_pending_errors()
        return records

    def _ensure_download_format(self) -> None:
        """Send the download format settings unless they are known to be set."""
        if self._format_ready:
            return
        with self.settings_batch():
            for command in DOWNLOAD_FORMAT_COMMANDS:
                send_setting(self, command)
        self._format_ready = True

    def _download(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """Read the header and the values of one channel; the caller reads the error queue."""
        x_start_s, x_stop_s, length = self._read_record_header(channel)

        data_command = f"CHAN{channel}:DATA?"
        self.note_unchecked(data_command)
        self.write(data_command)
        payload = self.read_binary_block()
        if len(payload) != BYTES_PER_VALUE * length:
            raise InstrumentError(
                self.name,
                data_command,
                f"expected {length} float32 values ({BYTES_PER_VALUE * length} bytes) as the "
                f"header says, got {len(payload)} bytes",
            )
        voltage_v = np.frombuffer(payload, dtype="<f4").astype(np.float64)

        # NOTE: the sample interval is taken as (x_stop - x_start) / (length - 1), which puts
        # the last sample at x_stop as in R&S RTx header examples. Confirm it against
        # 1 / ACQ:SRAT? on the bench's RTE before relying on sub-sample timing.
        if length == 1:
            time_s = np.array([x_start_s])
        else:
            time_s = x_start_s + np.arange(length) * ((x_stop_s - x_start_s) / (length - 1))
        log.debug("%s: read %d samples from channel %d", self.name, length, channel)
        return time_s, voltage_v

    def _read_record_header(self, channel: int) -> tuple[float, float, int]:
        """Read ``CHANn:DATA:HEAD?``; return x start, x stop (s) and the record length."""
        command = f"CHAN{channel}:DATA:HEAD?"
        self.note_unchecked(command)
        reply = self.ask(command)
        try:
            x_start_s, x_stop_s, length_value, values_per_sample = map(
                float, reply.strip().split(",")
            )
        except ValueError:
            raise InstrumentError(
                self.name, command, f"expected 'x_start,x_stop,length,values', got {reply!r}"
            ) from None
        if values_per_sample != 1:
            raise InstrumentError(
                self.name,
                command,
                f"the record has {values_per_sample:g} values per sample (peak-detect "
                "decimation or envelope arithmetic); use sample decimation without envelope "
                "to download a record",
            )
        if not (length_value >= 1 and length_value == int(length_value)):
            raise InstrumentError(self.name, command, f"invalid record length {length_value!r}")
        if not (math.isfinite(x_start_s) and math.isfinite(x_stop_s) and x_stop_s >= x_start_s):
            raise InstrumentError(self.name, command, f"invalid time range in header {reply!r}")
        return x_start_s, x_stop_s, int(length_value)

    # ---- safe state --------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the acquisition; a failure is logged and raised."""
        try:
            self.stop()
        except Exception as error:
            log.error("%s shutdown (STOP) failed: %s", self.name, error)
            raise
        finally:
            super().shutdown()
        log.info("%s shut down: acquisition stopped", self.name)
