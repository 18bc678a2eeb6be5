"""Fault injection for the simulated instruments: timeouts, instrument errors, lost connections.

Each simulated instrument owns a ``FaultInjector``. A test schedules a fault for the n-th
command from now. Before every command, the instrument's transport (the simulated VISA
adapter, or the simulated IVI session) calls ``next_command`` to learn which fault, if
any, strikes it.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


class FaultKind(enum.Enum):
    """Kind of failure at a scheduled command."""

    TIMEOUT = "timeout"
    INSTRUMENT_ERROR = "instrument_error"
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True)
class Fault:
    """A fault that strikes at one command: kind, and the error for INSTRUMENT_ERROR."""

    kind: FaultKind
    error_code: int = 0
    error_message: str = ""


@dataclass
class _Scheduled:
    at_command: int
    fault: Fault
    persistent: bool


class FaultInjector:
    """Schedule of faults for one simulated instrument, counted in commands.

    A command is one message written to a SCPI instrument (a ``;``-compound counts once)
    or one call on the simulated SMU session. Counting starts when the fault is scheduled:
    ``timeout_at(1)`` hits the very next command.
    """

    def __init__(self, instrument: str):
        self.instrument = instrument
        self.commands_seen = 0
        self._scheduled: list[_Scheduled] = []
        #: True once a CONNECTION_LOST fault has struck (every later command fails).
        self.connection_lost = False

    def timeout_at(self, n: int, persistent: bool = False) -> None:
        """Make the n-th command from now time out; with ``persistent``, all later ones too."""
        self._schedule(n, Fault(FaultKind.TIMEOUT), persistent)

    def instrument_error_at(self, n: int, code: int = -300, message: str = "Device-specific error") -> None:
        """Skip the n-th command from now and put ``code,"message"`` into the error queue."""
        if code >= 0:
            raise ValueError(f"instrument error codes are negative SCPI codes, got {code}")
        self._schedule(n, Fault(FaultKind.INSTRUMENT_ERROR, code, message), False)

    def connection_lost_at(self, n: int) -> None:
        """Drop the connection at the n-th command from now; every later command fails too."""
        self._schedule(n, Fault(FaultKind.CONNECTION_LOST), True)

    def clear(self) -> None:
        """Remove every scheduled fault (a lost connection stays lost)."""
        self._scheduled.clear()

    def _schedule(self, n: int, fault: Fault, persistent: bool) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n counts commands from now and must be an integer >= 1, got {n!r}")
        self._scheduled.append(_Scheduled(self.commands_seen + n, fault, persistent))
        log.info("%s: %s scheduled at command %d from now", self.instrument, fault.kind.value, n)

    def next_command(self) -> Fault | None:
        """Count one command and return the fault that strikes it, if any."""
        self.commands_seen += 1
        if self.connection_lost:
            return Fault(FaultKind.CONNECTION_LOST)
        if not self._scheduled:
            return None
        for scheduled in self._scheduled:
            if scheduled.at_command == self.commands_seen or (
                scheduled.persistent and scheduled.at_command < self.commands_seen
            ):
                if scheduled.fault.kind is FaultKind.CONNECTION_LOST:
                    self.connection_lost = True
                log.info("%s: injected %s at command %d", self.instrument,
                         scheduled.fault.kind.value, self.commands_seen)
                return scheduled.fault
        return None


class WorldFaults:
    """The fault injectors of the four simulated instruments, by bench role."""

    def __init__(self, generator: FaultInjector, scope: FaultInjector, smu: FaultInjector,
                 amplifier: FaultInjector):
        self.generator = generator
        self.scope = scope
        self.smu = smu
        self.amplifier = amplifier

    def by_role(self, role: str) -> FaultInjector:
        """Return the injector of ``role`` (generator, scope, smu or amplifier)."""
        injectors = {"generator": self.generator, "scope": self.scope, "smu": self.smu,
                     "amplifier": self.amplifier}
        if role not in injectors:
            raise KeyError(f"unknown instrument role {role!r}; expected one of {sorted(injectors)}")
        return injectors[role]
