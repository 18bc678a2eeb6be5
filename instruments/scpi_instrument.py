"""Behaviour shared by the SCPI drivers of the generator and the scope.

``ScpiInstrument`` turns pyvisa I/O failures into ``InstrumentTimeout`` and
``InstrumentConnectionError``, which name the instrument and the command. It reads the SCPI
error queue after settings (after each one, or once after a ``settings_batch``) and raises
``InstrumentError`` with the instrument's text. It also reads IEEE 488.2 binary blocks and
logs connecting and closing with the resource name.
The helpers below (number formatting, strict validators, keyword replies) keep the
command format of both drivers identical, which ``docs/scpi-commands.md`` describes.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pymeasure.instruments import Instrument
from pymeasure.instruments.generic_types import SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.ieee488_block import BlockFormatError, read_block

log = logging.getLogger(__name__)

#: VISA status codes that mean the connection is gone or was never there.
CONNECTION_STATUS_CODES = frozenset(
    {
        StatusCode.error_connection_lost,
        StatusCode.error_resource_not_found,
        StatusCode.error_invalid_resource_name,
        StatusCode.error_invalid_object,
        StatusCode.error_resource_busy,
        StatusCode.error_io,
        StatusCode.error_closing_failed,
    }
)


def convert_io_error(instrument: str, command: str, error: BaseException) -> InstrumentError:
    """Return the driver error for a pyvisa or socket failure during ``command``."""
    if isinstance(error, VisaIOError):
        if error.error_code == StatusCode.error_timeout:
            return InstrumentTimeout(
                instrument,
                command,
                "no reply before the VISA timeout; check that the instrument is on and "
                "connected, and that it finished the previous operation",
            )
        if error.error_code in CONNECTION_STATUS_CODES:
            return InstrumentConnectionError(
                instrument,
                command,
                f"connection failed ({error.abbreviation}: {error.description}); check the "
                "cable and the resource name, then reconnect",
            )
        return InstrumentError(
            instrument, command, f"VISA error {error.abbreviation}: {error.description}"
        )
    return InstrumentConnectionError(
        instrument, command, f"connection failed ({error}); check the cable and reconnect"
    )


def parse_error_reply(reply: str) -> tuple[int, str]:
    """Split a ``SYST:ERR?`` reply such as ``-222,"Data out of range"`` into code and text."""
    code_text, _, message = reply.strip().partition(",")
    try:
        code = int(code_text)
    except ValueError:
        raise ValueError(f"unreadable error-queue reply {reply!r}") from None
    return code, message.strip().strip('"')


def format_float(value: float) -> str:
    """Write a number for a SCPI command with all its digits (``0.0001``, ``-0.6``)."""
    return repr(float(value))


def format_on_off(value: bool) -> str:
    """Write a boolean for a SCPI command."""
    return "ON" if value else "OFF"


def parse_bool(reply) -> bool:
    """Read a boolean reply: ``1``/``0`` or ``ON``/``OFF``."""
    text = str(reply).strip().upper()
    if text in ("1", "ON", "1.0"):
        return True
    if text in ("0", "OFF", "0.0"):
        return False
    raise ValueError(f"expected a boolean reply (1/0 or ON/OFF), got {reply!r}")


def strict_finite_range(value, values):
    """Validate a real number against ``values = (minimum, maximum)``; never clip.

    Rejects booleans, NaN and infinities, so a typo cannot become a setting: a value of the
    wrong type raises TypeError, one out of range ValueError.
    """
    minimum, maximum = values
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number from {minimum:g} to {maximum:g}, got {value!r}")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ValueError(f"value {value!r} is outside the range {minimum:g} to {maximum:g}")
    return value


def strict_int_range(value, values):
    """Validate an integer against ``values = (minimum, maximum)``; never round or clip."""
    minimum, maximum = values
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an integer from {minimum} to {maximum}, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"value {value} is outside the range {minimum} to {maximum}")
    return value


def keyword_reply(short_forms: tuple[str, ...]) -> Callable[[str], str]:
    """Return a reply parser that maps a keyword reply to one of ``short_forms``.

    Instruments reply with the short form (``DCL``) or the long form (``DCLIMIT``) of a
    keyword; both map to the short form. A reply that matches none is returned in upper
    case, so the property's value mapping reports it.
    """
    by_length = sorted(short_forms, key=len, reverse=True)

    def parse(reply) -> str:
        text = str(reply).strip().strip('"').upper()
        for short in by_length:
            if text.startswith(short.upper()):
                return short
        return text

    return parse


def validate_bool(value, values) -> str:
    """Validate a boolean setting and write it as ``ON``/``OFF``; other types raise TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"expected True or False, got {value!r}")
    return format_on_off(value)


def float_control(command: str, docs: str, values: tuple[float, float]):
    """Return a property that reads ``<command>?`` and writes ``<command> <value>``.

    The value is validated with ``strict_finite_range`` against ``values`` and written
    with all its digits. The error queue is read after the write, or at the end of the
    ``settings_batch`` that the write is part of.
    """
    return Instrument.control(
        f"{command}?",
        f"{command} %s",
        docs,
        validator=lambda value, limits: format_float(strict_finite_range(value, limits)),
        values=values,
        check_set_errors=True,
    )


def keyword_control(
    command: str, docs: str, values: tuple[str, ...], get_process: Callable | None = None
):
    """Return a keyword property for ``<command>?`` and ``<command> <keyword>``.

    Only the short forms in ``values`` can be written; replies are mapped to them with
    ``keyword_reply`` unless ``get_process`` is given. The error queue is read after the
    write, or at the end of the ``settings_batch`` that the write is part of.
    """
    return Instrument.control(
        f"{command}?",
        f"{command} %s",
        docs,
        validator=strict_discrete_set,
        values=values,
        cast=str,
        get_process=get_process or keyword_reply(values),
        check_set_errors=True,
    )


def send_setting(target, command: str) -> None:
    """Write a setting to an instrument or channel and have its error queue checked.

    The queue is read at once, or at the end of the ``settings_batch`` in progress.
    """
    target.write(command)
    target.check_set_errors()


class ScpiInstrument(SCPIMixin, Instrument):
    """A PyMeasure SCPI instrument whose I/O failures become driver errors.

    Every write records the command, so a timeout, a lost connection or an entry in the
    error queue names the command that caused it. ``check_set_errors`` (called after
    every setting) raises ``InstrumentError`` when the instrument reports an error.
    Inside ``settings_batch`` it only notes the setting, and the queue is read once when
    the batch ends.
    """

    #: Bytes that follow a binary block in a reply: the IEEE 488.2 response terminator.
    block_terminator = b"\n"
    #: Largest number of ``SYST:ERR?`` reads before the queue is considered stuck.
    max_error_queue_reads = 50
    #: True reads the error queue after every setting, also inside ``settings_batch``, so
    #: that an error names the one command that caused it (one more query per setting).
    check_each_setting = False

    # PyMeasure's CommonBase (0.16) guards every attribute access in Python so that the
    # "special names" of dynamic properties cannot be read. These drivers define no dynamic
    # property (__init__ checks it), so the guard never applies. Plain access makes a query
    # round trip on the simulated bench about 2.5 times faster.
    __getattribute__ = object.__getattribute__
    __setattr__ = object.__setattr__

    def __init__(self, adapter, name: str, **kwargs):
        try:
            super().__init__(adapter, name, **kwargs)
        except (VisaIOError, OSError) as error:
            raise convert_io_error(name, f"open {adapter!r}", error) from error
        except ValueError as error:
            if not isinstance(adapter, (str, int)):
                raise
            # pyvisa raises ValueError when no VISA library is installed.
            raise InstrumentConnectionError(
                name, f"open {adapter!r}", f"cannot open the connection: {error}"
            ) from error
        if self._special_names:
            raise TypeError(
                f"{type(self).__name__} defines dynamic properties ({self._special_names[:3]}), "
                "which ScpiInstrument's plain attribute access does not guard; make them "
                "non-dynamic or restore CommonBase's __getattribute__ and __setattr__"
            )
        self._last_command = ""
        # Commands sent since the error queue was last read, and the depth of nested batches.
        self._unchecked_commands: list[str] = []
        self._batch_depth = 0
        log.info("%s connected (resource %s)", self.name, self.resource_name)

    @property
    def resource_name(self) -> str:
        """Get the VISA resource name of the connection (str; the adapter type if none)."""
        connection = getattr(self.adapter, "connection", None)
        for candidate in (
            getattr(self.adapter, "resource_name", None),
            getattr(connection, "resource_name", None),
        ):
            if isinstance(candidate, str):
                return candidate
        return type(self.adapter).__name__

    # ---- I/O with error conversion --------------------------------------------------

    def _convert_io_error(self, command: str, error: BaseException) -> InstrumentError:
        """Return the driver error for a pyvisa or socket failure, logged, state forgotten."""
        self._forget_instrument_state()
        converted = convert_io_error(self.name, command, error)
        log.error("%s", converted)
        return converted

    def _forget_instrument_state(self) -> None:
        """Drop whatever the driver remembers of the instrument's settings.

        Called after an I/O failure, a reported error, a device clear and on close. The
        base class remembers nothing; a subclass that caches a setting resets it here.
        """

    # The four transfers call the adapter directly (as PyMeasure's Instrument does) inside
    # a plain try statement: they run for every message, so each layer counts.

    def write(self, command: str, **kwargs) -> None:
        self._last_command = command
        try:
            self.adapter.write(command, **kwargs)
        except (VisaIOError, OSError) as error:
            raise self._convert_io_error(command, error) from error

    def write_bytes(self, content: bytes, **kwargs) -> None:
        command = _describe_binary_message(content)
        self._last_command = command
        try:
            self.adapter.write_bytes(content, **kwargs)
        except (VisaIOError, OSError) as error:
            raise self._convert_io_error(command, error) from error

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Write a query and return its reply, waiting ``query_delay`` seconds in between."""
        self.write(command)
        if query_delay:
            self.wait_for(query_delay)
        return self.read()

    def read(self, **kwargs) -> str:
        try:
            return self.adapter.read(**kwargs)
        except (VisaIOError, OSError) as error:
            raise self._convert_io_error(self._last_command, error) from error

    def read_bytes(self, count: int, **kwargs) -> bytes:
        try:
            return self.adapter.read_bytes(count, **kwargs)
        except (VisaIOError, OSError) as error:
            raise self._convert_io_error(self._last_command, error) from error

    def read_binary_block(self) -> bytes:
        """Read one IEEE 488.2 block reply and its terminator; return the payload."""
        command = self._last_command
        terminator_size = len(self.block_terminator)
        try:
            # The payload and the terminator come in one read of the declared length.
            payload = read_block(self.read_bytes, extra_bytes=terminator_size)
        except BlockFormatError as error:
            self._discard_reply()
            raise InstrumentError(self.name, command, f"invalid binary reply: {error}") from error
        if terminator_size:
            terminator = payload[-terminator_size:]
            payload = payload[:-terminator_size]
            if terminator != self.block_terminator:
                self._discard_reply()
                raise InstrumentError(
                    self.name,
                    command,
                    f"expected {self.block_terminator!r} after the binary block, got "
                    f"{terminator!r}, so the reply is longer than its block header declares",
                )
        return payload

    def _discard_reply(self) -> None:
        """Discard the rest of a malformed reply, so the next query reads its own reply."""
        log.warning("%s: discarding the rest of a malformed reply", self.name)
        self.device_clear()

    @contextmanager
    def visa_timeout(self, timeout_s: float) -> Iterator[None]:
        """Raise the connection's VISA timeout to ``timeout_s`` seconds for a block of code.

        Adapters without a ``connection.timeout`` (in milliseconds, as pyvisa has it) are
        left alone.
        """
        connection = getattr(self.adapter, "connection", None)
        if connection is None or not hasattr(connection, "timeout"):
            yield
            return
        previous = connection.timeout
        connection.timeout = timeout_s * 1000.0
        try:
            yield
        finally:
            connection.timeout = previous

    def device_clear(self) -> None:
        """Send a VISA device clear, which discards pending replies; failures are logged."""
        connection = getattr(self.adapter, "connection", None)
        clear = getattr(connection, "clear", None)
        self._forget_instrument_state()
        if clear is None:
            log.warning("%s: the adapter offers no device clear", self.name)
            return
        try:
            clear()
        except (VisaIOError, OSError) as error:
            log.error("%s: device clear failed: %s", self.name, error)

    def close(self) -> None:
        """Close the connection; a failure raises ``InstrumentConnectionError``."""
        log.info("%s closing connection (resource %s)", self.name, self.resource_name)
        self._forget_instrument_state()
        try:
            self.adapter.close()
        except (VisaIOError, OSError) as error:
            raise self._convert_io_error("close", error) from error

    # ---- error queue ----------------------------------------------------------------

    def check_errors(self) -> list[tuple[int, str]]:
        """Read the error queue until it is empty; return and log the entries.

        Each entry is ``(code, message)``. Raises ``InstrumentError`` if a reply cannot be
        read or the queue is still not empty after ``max_error_queue_reads`` reads.
        """
        errors: list[tuple[int, str]] = []
        for _ in range(self.max_error_queue_reads):
            reply = self.ask("SYST:ERR?")
            try:
                code, message = parse_error_reply(reply)
            except ValueError as error:
                raise InstrumentError(self.name, "SYST:ERR?", str(error)) from error
            if code == 0:
                if errors:
                    self._forget_instrument_state()
                return errors
            log.error("%s reported error %d, %r", self.name, code, message)
            errors.append((code, message))
        self._forget_instrument_state()
        raise InstrumentError(
            self.name,
            "SYST:ERR?",
            f"the error queue was not empty after {self.max_error_queue_reads} reads "
            f"(first entries: {errors[:3]}); clear it with *CLS and check the instrument",
        )

    def check_set_errors(self) -> list[tuple[int, str]]:
        """Check the error queue after a setting and raise if the instrument reported errors.

        Inside ``settings_batch`` (unless ``check_each_setting`` is True) the setting is
        only noted, and the queue is read when the batch ends.
        """
        self._unchecked_commands.append(self._last_command)
        if self._batch_depth and not self.check_each_setting:
            return []
        return self.check_pending_errors()

    def check_get_errors(self) -> list[tuple[int, str]]:
        """Read the error queue after a query and raise if the instrument reported errors."""
        self._unchecked_commands.append(self._last_command)
        return self.check_pending_errors()

    def note_unchecked(self, command: str) -> None:
        """Note a command whose errors the next ``check_pending_errors`` should report."""
        self._unchecked_commands.append(command)

    def check_now(self) -> list[tuple[int, str]]:
        """Read the error queue now if a noted command has not been checked yet.

        Raises ``InstrumentError`` as ``check_pending_errors`` does; returns [] when
        nothing was pending, without any I/O.
        """
        if not self._unchecked_commands:
            return []
        return self.check_pending_errors()

    def check_pending_errors(self) -> list[tuple[int, str]]:
        """Read the error queue now and raise ``InstrumentError`` if it contains errors.

        The error names the commands noted since the queue was last read: the command
        itself if there is one, all of them if a batch sent several.
        """
        commands, self._unchecked_commands = self._unchecked_commands, []
        errors = self.check_errors()
        if not errors:
            return errors
        text = "; ".join(f'{code},"{message}"' for code, message in errors)
        if len(commands) <= 1:
            command = commands[0] if commands else self._last_command
            raise InstrumentError(self.name, command, f"instrument reported {text}")
        raise InstrumentError(
            self.name,
            "; ".join(commands),
            f"instrument reported {text} after {len(commands)} commands sent without an "
            "error-queue read in between; it does not say which command failed, so set "
            "check_each_setting = True to read the queue after every setting",
        )

    @contextmanager
    def settings_batch(self) -> Iterator[None]:
        """Read the error queue once after the settings of the block instead of after each.

        The settings are still sent one per message. When the outermost batch ends, the
        queue is read and an error raises ``InstrumentError`` naming every setting of the
        batch, because the instrument does not say which one it rejected. If the block
        raises, the queue is read too and its entries are logged, so that they are not
        blamed on a later setting, except after a timeout or a lost connection.
        ``check_each_setting = True`` reads the queue after every setting, as outside a
        batch.
        """
        self._batch_depth += 1
        try:
            yield
        except (InstrumentTimeout, InstrumentConnectionError):
            if self._batch_depth == 1:
                self._unchecked_commands.clear()
            raise
        except Exception:
            if self._batch_depth == 1:
                self._log_errors_after_failure()
            raise
        finally:
            self._batch_depth -= 1
        if self._batch_depth == 0:
            self.check_now()

    def _log_errors_after_failure(self) -> list[tuple[int, str]]:
        """Read the queue after commands that failed; log and return what it holds."""
        commands, self._unchecked_commands = self._unchecked_commands, []
        if not commands:
            return []
        try:
            errors = self.check_errors()
        except InstrumentError as error:
            log.error("%s: reading the error queue after %s failed: %s", self.name, commands, error)
            return []
        if errors:
            log.error("%s: error queue after the failed commands %s: %s", self.name, commands, errors)
        return errors


def _describe_binary_message(content: bytes) -> str:
    """Describe a message with a binary block for logs and errors: header text, block size."""
    header, _, _ = bytes(content).partition(b"#")
    text = header.decode("ascii", errors="replace")
    return f"{text}#<binary block, {len(content)} bytes in message>"
