"""Virtual time of the simulated bench: it advances only through what the protocol does."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

log = logging.getLogger(__name__)


class VirtualClock:
    """Clock of the simulated bench (implements ``instruments.clock.Clock``).

    Time starts at ``start_s`` and changes only through ``sleep`` and through the simulated
    instruments, which move it forward when an acquisition, a sweep or a burst takes time.
    ``sleep`` hands the wait to the simulated world (set with ``bind``), so the device
    relaxes at the voltage applied meanwhile. The world moves the clock with
    ``advance_to``.
    """

    #: A sleep returns as soon as the world has computed it, so a caller that checks for a
    #: stop request between sleeps need not cut a long wait into short ones.
    sleeps_in_real_time = False

    def __init__(self, start_s: float = 0.0):
        self._now_s = float(start_s)
        self._idle_handler: Callable[[float], None] | None = None

    def bind(self, idle_handler: Callable[[float], None]) -> None:
        """Route ``sleep`` through ``idle_handler(duration_s)``, which must advance the clock."""
        self._idle_handler = idle_handler

    def now(self) -> float:
        """Return the virtual time in seconds."""
        return self._now_s

    def sleep(self, duration_s: float) -> None:
        """Let ``duration_s`` seconds of virtual time pass at the voltages applied now."""
        if not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s):
            raise ValueError(f"sleep duration must be a finite number of seconds, got {duration_s!r}")
        if duration_s < 0:
            raise ValueError(f"sleep duration must not be negative, got {duration_s} s")
        if duration_s == 0:
            return
        if self._idle_handler is None:
            self._now_s += duration_s
            return
        target_s = self._now_s + duration_s
        self._idle_handler(duration_s)
        if not math.isclose(self._now_s, target_s, rel_tol=0.0, abs_tol=1e-12 * max(1.0, target_s)):
            raise RuntimeError(
                f"the simulated world advanced the clock to {self._now_s} s during a sleep "
                f"that should end at {target_s} s"
            )
        self._now_s = target_s

    def advance_to(self, time_s: float) -> None:
        """Move the clock forward to ``time_s`` (used by the simulated world only)."""
        if time_s < self._now_s:
            raise ValueError(f"virtual time cannot go back from {self._now_s} s to {time_s} s")
        self._now_s = float(time_s)
