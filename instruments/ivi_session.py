"""The small session interface through which the M9601A driver reaches an IVI-C driver.

The Keysight M9601A precision SMU is programmed through Keysight's KtM960x IVI-C library,
not through SCPI. The driver (``instruments.keysight_m9601a``) talks only to this interface.
Two implementations exist: a ctypes binding to the vendor library (Windows, with the
Keysight driver installed) and the simulated SMU in ``sim_backend``.

Attribute names are the strings listed in ``ATTRIBUTES``; each implementation maps them to
what its back end needs. Values are Python scalars (``bool``, ``int``, ``float``, ``str``),
except ``VOLTAGE_LIST``, which is a tuple of floats.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

#: Attribute name -> (Python type, unit, meaning). Units are SI.
ATTRIBUTES: dict[str, tuple[type, str, str]] = {
    "OUTPUT_ENABLED": (bool, "", "output relay closed (True) or open (False)"),
    "SOURCE_FUNCTION": (str, "", "'VOLTAGE': the channel sources voltage and limits current"),
    "VOLTAGE_LEVEL": (float, "V", "DC voltage set-point used in FIXED mode"),
    "CURRENT_LIMIT": (float, "A", "current compliance, symmetric"),
    "MEASUREMENT_APERTURE": (float, "s", "integration time of each measurement"),
    "SOURCE_DELAY": (float, "s", "wait after each source step before the measurement starts"),
    "SWEEP_MODE": (str, "", "'FIXED' (one level) or 'LIST' (VOLTAGE_LIST, one point per trigger)"),
    "VOLTAGE_LIST": (tuple, "V", "voltages of a LIST sweep, in order"),
    "TRIGGER_COUNT": (int, "", "measurements per initiate (FIXED) or list length (LIST)"),
}


@runtime_checkable
class IviSession(Protocol):
    """One open session to one SMU channel."""

    def initialize(self, resource: str, id_query: bool, reset: bool, options: str) -> None:
        """Open the session to ``resource``; reset the instrument if ``reset``."""

    def set_attribute(self, name: str, value) -> None:
        """Set the attribute ``name`` (a key of ``ATTRIBUTES``) to ``value``."""

    def get_attribute(self, name: str):
        """Return the current value of the attribute ``name``."""

    def identify(self) -> str:
        """Return the instrument's manufacturer, model, serial number and firmware."""

    def initiate(self) -> None:
        """Start the configured acquisition (FIXED or LIST)."""

    def fetch(self, timeout_s: float) -> dict[str, np.ndarray]:
        """Wait for the acquisition started by ``initiate`` and return its readings.

        The dictionary has the keys ``"time_s"``, ``"voltage_v"`` and ``"current_a"``, each an
        array with one entry per measurement point.
        """

    def error_query(self) -> tuple[int, str]:
        """Return and clear the oldest error: ``(0, "No error")`` when there is none."""

    def close(self) -> None:
        """Close the session; safe to call more than once."""
