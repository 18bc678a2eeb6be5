"""A PyMeasure adapter that connects a real SCPI driver to a simulated instrument.

The adapter behaves like ``pymeasure.adapters.VISAAdapter`` over a message-based VISA
resource: writes are program messages, reads return the reply without its ``\\n``
terminator, ``read_bytes`` returns raw bytes (terminator included), and failures surface
as ``pyvisa.errors.VisaIOError`` with the status code real VISA uses. A reply left unread
when the next command arrives is discarded with ``-410,"Query INTERRUPTED"``; reading
when no reply is pending times out and queues ``-420,"Query UNTERMINATED"``.
"""

from __future__ import annotations

import logging

from pymeasure.adapters import Adapter
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from sim_backend.faults import FaultInjector, FaultKind
from sim_backend.scpi import ERROR_MESSAGES, QueryTimeout, ScpiInstrument

log = logging.getLogger(__name__)

TERMINATOR = b"\n"


class SimulatedConnection:
    """The part of a pyvisa resource that drivers touch: timeout (ms), terminations,
    device clear and close."""

    def __init__(self, resource_name: str, on_clear):
        self.resource_name = resource_name
        self.timeout = 2000.0
        self.read_termination = "\n"
        self.write_termination = "\n"
        self.closed = False
        self._on_clear = on_clear

    def clear(self) -> None:
        """Device clear: discard pending replies (the acquisition state is kept)."""
        self._on_clear()

    def close(self) -> None:
        """Close the connection; safe to call more than once."""
        self.closed = True


class SimulatedAdapter(Adapter):
    """PyMeasure adapter whose far end is a ``ScpiInstrument``, with fault injection."""

    def __init__(self, instrument: ScpiInstrument, faults: FaultInjector, resource_name: str,
                 log=None, **kwargs):
        super().__init__(log=log, **kwargs)
        self.instrument = instrument
        self.faults = faults
        self.connection = SimulatedConnection(resource_name, self.flush_read_buffer)
        self._output = b""
        self._read_times_out = False

    @property
    def timeout_s(self) -> float:
        """VISA timeout of the connection, in seconds."""
        return float(self.connection.timeout) / 1000.0

    # -- the four transfer methods that a PyMeasure adapter implements

    def _write(self, command: str, **kwargs) -> None:
        self._write_bytes(command.encode("ascii") + TERMINATOR)

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        if self.connection.closed:
            raise VisaIOError(StatusCode.error_invalid_object)
        fault = self.faults.next_command()
        if fault is not None and fault.kind is FaultKind.CONNECTION_LOST:
            raise VisaIOError(StatusCode.error_connection_lost)

        if self._output or self._read_times_out:
            self.instrument.push_error(-410, ERROR_MESSAGES[-410])
            self._output = b""
            self._read_times_out = False

        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            if _contains_query(content):
                self._read_times_out = True  # the reply never comes: the read times out
                return
            raise VisaIOError(StatusCode.error_timeout)
        if fault is not None and fault.kind is FaultKind.INSTRUMENT_ERROR:
            self.instrument.push_error(fault.error_code, fault.error_message)
            return

        try:
            replies = self.instrument.execute(content)
        except QueryTimeout:
            self._read_times_out = True
            return
        if len(replies) == 1:
            (reply,) = replies
            self._output = (reply if isinstance(reply, bytes) else reply.encode("ascii")) + TERMINATOR
        elif replies:
            encoded = [reply if isinstance(reply, bytes) else reply.encode("ascii") for reply in replies]
            self._output = b";".join(encoded) + TERMINATOR

    def _read(self, **kwargs) -> str:
        raw = self._read_bytes(-1, break_on_termchar=True)
        return raw.decode("ascii", errors="replace").rstrip("\r\n")

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs) -> bytes:
        if self.connection.closed:
            raise VisaIOError(StatusCode.error_invalid_object)
        if self.faults.connection_lost:
            raise VisaIOError(StatusCode.error_connection_lost)
        if self._read_times_out:
            self._read_times_out = False
            raise VisaIOError(StatusCode.error_timeout)
        if not self._output:
            self.instrument.push_error(-420, ERROR_MESSAGES[-420])
            raise VisaIOError(StatusCode.error_timeout)

        end = len(self._output) if count is None or count < 0 else min(count, len(self._output))
        if break_on_termchar:
            terminator = self._output.find(TERMINATOR, 0, end)
            if terminator >= 0:
                end = terminator + 1
        chunk, self._output = self._output[:end], self._output[end:]
        return chunk

    def flush_read_buffer(self) -> None:
        """Discard any reply not read yet."""
        self._output = b""
        self._read_times_out = False

    def close(self) -> None:
        """Close the simulated connection."""
        self.connection.close()

    def __repr__(self) -> str:
        return f"<SimulatedAdapter(resource={self.connection.resource_name!r})>"


def _contains_query(content: bytes) -> bool:
    """Tell whether a program message holds a query (ignores '?' inside a binary block)."""
    block_start = content.find(b"#")
    head = content if block_start < 0 else content[:block_start]
    return b"?" in head
