"""Digital control lines that set a FEMTO amplifier remotely, and their implementations.

The FEMTO DHPCA-100 is set by TTL levels on the control pins of its 25-pin Sub-D socket
and reports an overload on a status pin. ``FemtoDHPCA100`` drives those lines only through
the ``DigitalOutput`` protocol below, so the same driver works with a LUCI-10 USB adapter,
with any digital-output card, with a person turning the front-panel switches, or with the
simulated amplifier.

Contract that every ``DigitalOutput`` (including a simulated one) follows:

* ``write_bits(bits, description)`` drives every control line at once: bit ``i`` of
  ``bits`` is control line ``i`` (1 = TTL high, 0 = TTL low). The amplifier driver always
  writes the complete control word, never a partial update, and never a word wider than
  ``width`` bits. ``description`` is the same setting in words ("gain 1e6 V/A, low_noise,
  DC, full bandwidth") for logs and for a person who has to dial it. When the call returns,
  the lines hold the new word; a failure raises ``InstrumentError``.
* ``read_overload()`` returns True while the amplifier's overload status line is active,
  False while it is inactive, and None when this interface cannot read it (the driver then
  judges overload from the output voltage alone).
* ``close()`` releases the interface; calling it twice is harmless.

A simulated interface should decode the word with ``instruments.femto_dhpca100
.decode_control_bits``, apply the setting to the simulated amplifier, and report overload
from the simulated output voltage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from instruments.errors import InstrumentConnectionError, InstrumentError

log = logging.getLogger(__name__)

#: Control lines a LUCI-10 drives: 8 in its low byte and 8 in its high byte.
LUCI10_WIDTH = 16

LUCI10_NOT_FOUND_MESSAGE = (
    "FEMTO LUCI-10 driver (LUCI_10_x64.dll) not found; install the LUCI-10 software, or use "
    'control = "manual" and set the amplifier by hand'
)

# Return codes of the LUCI-10 DLL (LUCI_10.h, version 2.0).
LUCI_OK = 0
LUCI_ERRORS = {
    -1: "adapter index not in the list of connected LUCI-10 adapters",
    -2: "the LUCI-10 adapter does not respond",
}


@runtime_checkable
class DigitalOutput(Protocol):
    """Control lines of one amplifier, with the overload status input where there is one."""

    name: str
    width: int

    def write_bits(self, bits: int, description: str) -> None:
        """Drive every control line to the word ``bits``; ``description`` names the setting."""

    def read_overload(self) -> bool | None:
        """Return the overload status line: True (active), False, or None if it cannot be read."""

    def close(self) -> None:
        """Release the interface."""


def _check_word(bits: int, width: int, name: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"{name}: control word must be an int, got {bits!r}")
    if not 0 <= bits < (1 << width):
        raise ValueError(f"{name}: control word {bits:#x} does not fit in {width} control lines")
    return bits


class ManualControl:
    """Control "interface" for an amplifier whose switches a person sets by hand.

    ``write_bits`` only records the word and its description, and logs a warning asking
    the user to dial that setting on the front panel: nothing here can check that they did.
    ``read_overload`` returns None because the overload LED is not wired to the computer.
    """

    def __init__(self, name: str = "manual control", width: int = 8):
        self.name = name
        self.width = width
        self.bits: int | None = None
        self.description: str | None = None

    def write_bits(self, bits: int, description: str) -> None:
        """Record the setting and warn the user to dial it by hand."""
        self.bits = _check_word(bits, self.width, self.name)
        self.description = description
        log.warning(
            "%s: set the amplifier's front panel to %s now; memsyn cannot set or check it",
            self.name,
            description,
        )

    def read_overload(self) -> bool | None:
        """Return None: watch the amplifier's overload LED instead."""
        return None

    def close(self) -> None:
        """Do nothing; there is no connection to release."""


class TtlLines:
    """Control lines driven through any digital-output card by a per-line writer function.

    ``write_line(line, level)`` sets the card's output ``line`` to TTL high (True) or low.
    ``lines[i]`` is the card line wired to control bit ``i`` of the amplifier (by default
    lines 0 to 6 for bits 0 to 6). ``read_overload``, if given, returns True while the card
    input wired to the amplifier's overload status pin is active.
    """

    def __init__(
        self,
        write_line: Callable[[int, bool], None],
        lines: Sequence[int] = (0, 1, 2, 3, 4, 5, 6),
        read_overload: Callable[[], bool] | None = None,
        name: str = "TTL lines",
    ):
        if len(set(lines)) != len(lines):
            raise ValueError(f"{name}: each control bit needs its own line, got {list(lines)}")
        self.name = name
        self.lines = tuple(lines)
        self.width = len(self.lines)
        self._write_line = write_line
        self._read_overload = read_overload

    def write_bits(self, bits: int, description: str) -> None:
        """Write each control bit to its line, bit 0 first."""
        bits = _check_word(bits, self.width, self.name)
        for bit, line in enumerate(self.lines):
            level = bool((bits >> bit) & 1)
            try:
                self._write_line(line, level)
            except Exception as error:
                raise InstrumentError(
                    self.name,
                    f"write line {line} = {int(level)}",
                    f"setting {description} failed: {error}",
                ) from error
        log.info("%s: wrote control word %#04x (%s)", self.name, bits, description)

    def read_overload(self) -> bool | None:
        """Return the overload input, or None when no reader was given."""
        if self._read_overload is None:
            return None
        try:
            return bool(self._read_overload())
        except Exception as error:
            raise InstrumentError(self.name, "read overload line", str(error)) from error

    def close(self) -> None:
        """Do nothing; the card belongs to the caller, who closes it."""


def load_luci10_library(path: str | None = None) -> Any:
    """Load the LUCI-10 DLL from ``path`` or the library search path.

    Raises ``InstrumentConnectionError`` naming what was tried when it cannot be loaded.
    """
    if path is not None:
        candidates = [path]
    else:
        names = ("LUCI_10_x64", "LUCI_10") if sys.maxsize > 2**32 else ("LUCI_10",)
        candidates = [found for found in map(ctypes.util.find_library, names) if found]

    tried = []
    for candidate in candidates:
        try:
            return ctypes.CDLL(candidate)
        except OSError as error:
            tried.append(f"{candidate} ({error})")
    detail = (
        "; tried " + ", ".join(tried) if tried else f" (not on the library path of {sys.platform})"
    )
    raise InstrumentConnectionError(
        "FEMTO LUCI-10", "load LUCI_10 library", LUCI10_NOT_FOUND_MESSAGE + detail
    )


class Luci10DigitalOutput:
    """Control lines of a FEMTO LUCI-10 USB adapter, through its vendor DLL.

    The LUCI-10 plugs into the amplifier's 25-pin socket and drives 16 lines, written as a
    low and a high byte with ``WriteData``. It reads three status pins (5, 6 and 7 of the
    socket). ``adapter_id`` selects the adapter by the ID stored in it (``WriteAdapterID``
    in FEMTO's software); None takes the first adapter found. ``library`` replaces the DLL
    (tests pass a stand-in).

    NOTE: the overload output of the DHPCA-100 is taken to be socket pin 5, active high, as
    in a public LUCI-10 driver for another FEMTO amplifier. Check the DHPCA-100 data sheet
    and set ``overload_pin`` and ``overload_active_high`` if it differs.
    """

    def __init__(
        self,
        adapter_id: int | None = None,
        library: Any = None,
        library_path: str | None = None,
        overload_pin: int = 5,
        overload_active_high: bool = True,
        name: str = "FEMTO LUCI-10",
    ):
        if overload_pin not in (5, 6, 7):
            raise ValueError(
                f"{name}: overload_pin must be status pin 5, 6 or 7, got {overload_pin!r}"
            )
        self.name = name
        self.width = LUCI10_WIDTH
        self.adapter_id = adapter_id
        self.overload_pin = overload_pin
        self.overload_active_high = overload_active_high
        self._library = library if library is not None else load_luci10_library(library_path)
        self._index = self._find_adapter()
        log.info("connected to %s (adapter index %d, ID %s)", name, self._index, adapter_id)

    def _check(self, result: int, operation: str) -> None:
        if result != LUCI_OK:
            reason = LUCI_ERRORS.get(result, f"unknown return code {result}")
            raise InstrumentError(self.name, operation, reason)

    def _find_adapter(self) -> int:
        """Return the 1-based index of the adapter with ``adapter_id`` (or the first one)."""
        count = int(self._library.EnumerateUsbDevices())
        if count <= 0:
            raise InstrumentConnectionError(
                self.name, "EnumerateUsbDevices", "no LUCI-10 adapter found; check the USB cable"
            )
        if self.adapter_id is None:
            return 1

        found_ids = []
        for index in range(1, count + 1):
            adapter_id = ctypes.c_int(-1)
            self._check(
                self._library.ReadAdapterID(ctypes.c_int(index), ctypes.byref(adapter_id)),
                "ReadAdapterID",
            )
            if adapter_id.value == self.adapter_id:
                return index
            found_ids.append(adapter_id.value)
        raise InstrumentConnectionError(
            self.name,
            "ReadAdapterID",
            f"no LUCI-10 adapter with ID {self.adapter_id}; "
            f"connected adapters have IDs {found_ids}",
        )

    def write_bits(self, bits: int, description: str) -> None:
        """Write the low and high bytes of the control word with ``WriteData``."""
        bits = _check_word(bits, self.width, self.name)
        low, high = bits & 0xFF, (bits >> 8) & 0xFF
        result = self._library.WriteData(
            ctypes.c_int(self._index), ctypes.c_int(low), ctypes.c_int(high)
        )
        self._check(result, f"WriteData({low:#04x}, {high:#04x}) for {description}")
        log.info("%s: wrote control word %#06x (%s)", self.name, bits, description)

    def read_overload(self) -> bool:
        """Read the overload status pin with ``GetStatusPin5/6/7``."""
        status = ctypes.c_int(-1)
        function = getattr(self._library, f"GetStatusPin{self.overload_pin}")
        self._check(
            function(ctypes.c_int(self._index), ctypes.byref(status)),
            f"GetStatusPin{self.overload_pin}",
        )
        high = status.value == 1
        return high if self.overload_active_high else not high

    def close(self) -> None:
        """Do nothing: the LUCI-10 DLL has no function that closes an adapter."""
        log.info("closed %s", self.name)
