"""The bench: the four instruments of the setup, their safety limits and a clock.

Protocols receive a ``Bench`` and touch the hardware only through it. The same class is
used with real instruments (built from a bench file with the ``visa`` backend) and with the
simulated bench, where the drivers talk to simulated instruments and the clock is virtual.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from instruments.clock import Clock
from instruments.safety import SafetyLimits

log = logging.getLogger(__name__)


@dataclass
class Bench:
    """Instrument drivers of one bench, with the device limits and the bench clock.

    ``smu`` is a ``KeysightM9601A``, ``generator`` a ``Keysight33500B``, ``amplifier`` a
    ``FemtoDHPCA100`` and ``scope`` a ``RohdeSchwarzRTE1104``. ``description`` is written
    into the header of every results file (bench name, backend, resources, settings).
    """

    name: str
    backend: str
    smu: Any
    generator: Any
    amplifier: Any
    scope: Any
    limits: SafetyLimits
    clock: Clock
    description: dict[str, Any] = field(default_factory=dict)

    def instruments(self) -> dict[str, Any]:
        """Return the instruments by role, in the order they are shut down."""
        return {
            "generator": self.generator,
            "smu": self.smu,
            "scope": self.scope,
            "amplifier": self.amplifier,
        }

    def shutdown(self) -> list[tuple[str, BaseException]]:
        """Put every instrument in its safe state (outputs at 0 V and off).

        Continues past an instrument whose shutdown fails and returns the failures as
        ``(role, error)`` pairs; each failure is also logged.
        """
        failures: list[tuple[str, BaseException]] = []
        for role, instrument in self.instruments().items():
            try:
                instrument.shutdown()
            except Exception as error:  # noqa: BLE001 - cleanup must reach every instrument
                log.error("shutdown of %s on bench %s failed: %s", role, self.name, error)
                failures.append((role, error))
        return failures

    def close(self) -> None:
        """Close every connection; errors are logged, not raised."""
        for role, instrument in self.instruments().items():
            close_instrument(instrument, f"{role} on bench {self.name}")


def close_instrument(instrument, description: str) -> None:
    """Close one driver's connection (its ``close()`` or its adapter's); log a failure."""
    closer = getattr(instrument, "close", None) or getattr(
        getattr(instrument, "adapter", None), "close", None
    )
    if closer is None:
        return
    try:
        closer()
    except Exception as error:  # noqa: BLE001 - the caller goes on closing the others
        log.error("closing %s failed: %s", description, error)
