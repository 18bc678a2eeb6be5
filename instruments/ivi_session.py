"""The small session interface through which the M9601A driver reaches an IVI-C driver.

The Keysight M9601A precision SMU is programmed through Keysight's KtM960x IVI-C library,
not through SCPI. The driver (``instruments.keysight_m9601a``) talks only to this interface.
Two implementations exist: a ctypes binding to the vendor library
(``instruments.ktm960x_ctypes``, Windows with the Keysight driver installed) and the
simulated SMU in ``sim_backend``.

Attribute names are the strings listed in ``ATTRIBUTES``; each implementation maps them to
what its back end needs. Values are Python scalars (``bool``, ``int``, ``float``, ``str``),
except ``VOLTAGE_LIST``, which is a tuple of floats. ``get_attribute`` returns the type
listed in the table.

Behaviour every implementation must reproduce
---------------------------------------------

Source. The channel sources voltage (``SOURCE_FUNCTION = 'VOLTAGE'``) and limits the current
to +-``CURRENT_LIMIT``. While ``OUTPUT_ENABLED`` is False the output relay is open and no
voltage reaches the device. While it is True the output sources:

* ``VOLTAGE_LEVEL`` whenever no LIST acquisition is running, with one exception: after a
  LIST acquisition ends, the output holds the last voltage of ``VOLTAGE_LIST`` until
  ``VOLTAGE_LEVEL`` or ``SWEEP_MODE`` is written, and from then on sources ``VOLTAGE_LEVEL``
  again;
* during a LIST acquisition, the voltages of ``VOLTAGE_LIST`` in order, one per point.

Acquisitions. ``initiate()`` starts one acquisition of ``TRIGGER_COUNT`` points:

* ``SWEEP_MODE = 'FIXED'``: every point is measured at ``VOLTAGE_LEVEL``.
* ``SWEEP_MODE = 'LIST'``: point ``i`` sources ``VOLTAGE_LIST[i]``; ``TRIGGER_COUNT`` must
  equal ``len(VOLTAGE_LIST)``, otherwise ``initiate()`` raises ``InstrumentError``.

Each point waits ``SOURCE_DELAY`` after its source step, then integrates for
``MEASUREMENT_APERTURE``. ``fetch(timeout_s)`` blocks until the acquisition is complete
(raising ``InstrumentTimeout`` after ``timeout_s``) and returns a dictionary of three
float arrays of length ``TRIGGER_COUNT``:

* ``"time_s"``: start of each point's measurement, in seconds from ``initiate()``;
* ``"voltage_v"``: voltage measured at the output (Pt electrode against Ti), in volts;
* ``"current_a"``: current measured through the output, in amperes, positive when it flows
  out of the high terminal through the device to ground (a positive voltage across a
  resistor gives a positive current).

``fetch`` without a preceding ``initiate`` raises ``InstrumentError``.

Errors. Every method raises ``InstrumentError`` (from ``instruments.errors``) when the back
end reports a failure, ``InstrumentConnectionError`` when the session cannot be opened, and
``InstrumentTimeout`` when ``fetch`` times out. ``error_query`` itself never raises for a
queued instrument error; it returns it.
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

#: Values that the string attributes accept.
SOURCE_FUNCTIONS = ("VOLTAGE",)
SWEEP_MODES = ("FIXED", "LIST")

#: Keys of the dictionary that ``IviSession.fetch`` returns.
FETCH_KEYS = ("time_s", "voltage_v", "current_a")


@runtime_checkable
class IviSession(Protocol):
    """One open session to one SMU channel."""

    def initialize(self, resource: str, id_query: bool, reset: bool, options: str) -> None:
        """Open the session to ``resource``; reset the instrument if ``reset``.

        A reset opens the output relay and sets ``VOLTAGE_LEVEL`` to 0 V.
        """

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
        array with one entry per measurement point (``TRIGGER_COUNT`` entries). See the module
        docstring for units, sign and time origin.
        """

    def error_query(self) -> tuple[int, str]:
        """Return and clear the oldest error: ``(0, "No error")`` when there is none."""

    def close(self) -> None:
        """Close the session; safe to call more than once."""
