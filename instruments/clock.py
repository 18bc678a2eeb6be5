"""Clocks that protocols use to wait and to time-stamp their data."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time source. On the simulated bench, time advances only through ``sleep``
    and through what the instruments do (sweeps, acquisitions)."""

    def now(self) -> float:
        """Return the current time in seconds from an arbitrary origin."""

    def sleep(self, duration_s: float) -> None:
        """Wait ``duration_s`` seconds."""


class MonotonicClock:
    """Wall-clock time of a real bench, from ``time.monotonic``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s)
