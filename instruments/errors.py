"""Errors raised by the instrument drivers.

Every error names the instrument and the command that failed, so that a log line or a
traceback shows the user which cable, address or setting to look at.
"""


class InstrumentError(RuntimeError):
    """An instrument reported an error or returned a reply the driver cannot use."""

    def __init__(self, instrument: str, command: str, message: str):
        self.instrument = instrument
        self.command = command
        self.message = message
        super().__init__(f"{instrument}: {message} (command: {command!r})")


class InstrumentTimeout(InstrumentError):
    """An instrument did not reply within its timeout."""


class InstrumentConnectionError(InstrumentError):
    """The connection to an instrument was lost or could not be opened."""
