"""``IviSession`` on Keysight's KtM960x IVI-C driver, loaded with ctypes.

The KtM960x driver (``KtM960x_64.dll``) ships with Keysight's M960x software for Windows.
Where it is missing, ``KtM960xSession`` raises ``InstrumentConnectionError`` with a message
that points to the simulated bench. Tests inject a fake library object instead of the DLL,
which exercises the argument marshalling without hardware.

C types follow the VISA/IVI conventions: ``ViSession`` and ``ViAttr`` are unsigned 32-bit,
``ViBoolean`` is unsigned 16-bit, ``ViInt32``/``ViStatus`` are signed 32-bit, ``ViReal64`` is
a double and strings are byte strings. A negative ``ViStatus`` is an error and a positive
one a warning.

Sources: every attribute ID, attribute type and enumeration value below equals the one in
microsoft/Qcodes ``src/qcodes/instrument_drivers/Keysight/KtM960xDefs.py`` (commit
bcc547e279d43d15dbea2f510fb96d9dbc34739e), a transcription of Keysight's ``KtM960x.h``.
The argument order of InitWithOptions, the Set/GetAttribute functions, error_query and
close matches the calls in ``KtM960x.py`` of the same directory (commit
144c51bd990963cba44e3b2a591284d4ecf1bc4e). The argument order of Initiate,
SystemWaitForOperationComplete and MeasurementFetchArrayData matches the ctypes prototypes
in ukyen8/pyPXI ``pxi.py`` (commit c61a7113d5d221ef258f8d3b86be499f7c33106a). None of
these files calls ``KtM960x_GetError`` or ``KtM960x_TransientVoltageSetList``, so the notes
at those calls state what is unconfirmed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.ivi_session import ATTRIBUTES, FETCH_KEYS

log = logging.getLogger(__name__)

LIBRARY_NAME = "KtM960x_64"
DEFAULT_LIBRARY_PATH = r"C:\Program Files\IVI Foundation\IVI\Bin\KtM960x_64.dll"
NOT_FOUND_MESSAGE = "Keysight KtM960x IVI driver not found; install it or use the simulated bench"

# C types of the IVI-C interface.
ViSession = ctypes.c_uint32
ViAttr = ctypes.c_uint32
ViBoolean = ctypes.c_uint16
ViInt32 = ctypes.c_int32
ViReal64 = ctypes.c_double

# Attribute ID bases of the IVI-C specification.
IVI_ATTR_BASE = 1_000_000
IVI_INHERENT_ATTR_BASE = IVI_ATTR_BASE + 50_000
IVI_SPECIFIC_ATTR_BASE = IVI_ATTR_BASE + 150_000

# Attribute IDs and values used here, each equal to the KtM960xDefs.py entry named in the
# module docstring. NOTE: that file is a third-party copy of KtM960x.h from an unstated
# driver version. Compare with the header installed on the bench PC before measuring.
ATTR_INSTRUMENT_FIRMWARE_REVISION = IVI_INHERENT_ATTR_BASE + 510
ATTR_INSTRUMENT_MANUFACTURER = IVI_INHERENT_ATTR_BASE + 511
ATTR_INSTRUMENT_MODEL = IVI_INHERENT_ATTR_BASE + 512
ATTR_MODULE_SERIAL_NUMBER = IVI_SPECIFIC_ATTR_BASE + 27
ATTR_MEASUREMENT_CURRENT_APERTURE = IVI_SPECIFIC_ATTR_BASE + 334
ATTR_MEASUREMENT_CURRENT_LIMIT = IVI_SPECIFIC_ATTR_BASE + 341
ATTR_MEASUREMENT_TRIGGER_COUNT = IVI_SPECIFIC_ATTR_BASE + 367
ATTR_MEASUREMENT_TRIGGER_DELAY = IVI_SPECIFIC_ATTR_BASE + 368
ATTR_MEASUREMENT_VOLTAGE_APERTURE = IVI_SPECIFIC_ATTR_BASE + 372
ATTR_OUTPUT_ENABLED = IVI_SPECIFIC_ATTR_BASE + 403
ATTR_OUTPUT_PRIORITY_MODE = IVI_SPECIFIC_ATTR_BASE + 411
ATTR_OUTPUT_VOLTAGE_LEVEL = IVI_SPECIFIC_ATTR_BASE + 423
ATTR_SYSTEM_AUTO_TIMER_RESET_ENABLED = IVI_SPECIFIC_ATTR_BASE + 435
ATTR_TRANSIENT_TRIGGER_COUNT = IVI_SPECIFIC_ATTR_BASE + 463
ATTR_TRANSIENT_VOLTAGE_MODE = IVI_SPECIFIC_ATTR_BASE + 471

VAL_PRIORITY_MODE_VOLTAGE = 0
VAL_OUTPUT_MODE_FIXED = 0
VAL_OUTPUT_MODE_LIST = 1
VAL_FETCH_TYPE_VOLTAGE = 1
VAL_FETCH_TYPE_CURRENT = 2
VAL_FETCH_TYPE_TIME = 5

ERROR_MESSAGE_BUFFER = 256
STRING_BUFFER = 256


@dataclass(frozen=True)
class AttributeBinding:
    """Mapping of one ``IviSession`` attribute onto IVI-C attributes.

    A write goes to every ID in ``attribute_ids`` in order; a read comes from the first.
    ``values`` maps the session's string values onto IVI enumeration values.
    ``channel_specific`` selects the channel name as repeated-capability identifier.
    """

    attribute_ids: tuple[int, ...]
    ivi_type: str
    values: dict[str, int] = field(default_factory=dict)
    channel_specific: bool = True


#: Session attribute -> IVI-C binding. ``VOLTAGE_LIST`` is written by a function instead.
ATTRIBUTE_BINDINGS: dict[str, AttributeBinding] = {
    "OUTPUT_ENABLED": AttributeBinding((ATTR_OUTPUT_ENABLED,), "ViBoolean"),
    "SOURCE_FUNCTION": AttributeBinding(
        (ATTR_OUTPUT_PRIORITY_MODE,), "ViInt32", {"VOLTAGE": VAL_PRIORITY_MODE_VOLTAGE}
    ),
    "VOLTAGE_LEVEL": AttributeBinding((ATTR_OUTPUT_VOLTAGE_LEVEL,), "ViReal64"),
    "CURRENT_LIMIT": AttributeBinding((ATTR_MEASUREMENT_CURRENT_LIMIT,), "ViReal64"),
    # The current and voltage apertures are written together so both readings integrate
    # over the same time.
    "MEASUREMENT_APERTURE": AttributeBinding(
        (ATTR_MEASUREMENT_CURRENT_APERTURE, ATTR_MEASUREMENT_VOLTAGE_APERTURE), "ViReal64"
    ),
    # NOTE: the measurement trigger delay is taken as the wait between a source step and
    # its measurement. KtM960xDefs.py defines trigger source AINT but not the default
    # trigger source, so confirm on the bench that the acquire trigger follows the
    # transient step.
    "SOURCE_DELAY": AttributeBinding((ATTR_MEASUREMENT_TRIGGER_DELAY,), "ViReal64"),
    "SWEEP_MODE": AttributeBinding(
        (ATTR_TRANSIENT_VOLTAGE_MODE,),
        "ViInt32",
        {"FIXED": VAL_OUTPUT_MODE_FIXED, "LIST": VAL_OUTPUT_MODE_LIST},
    ),
    # Measurement and transient triggers count the same points.
    "TRIGGER_COUNT": AttributeBinding(
        (ATTR_MEASUREMENT_TRIGGER_COUNT, ATTR_TRANSIENT_TRIGGER_COUNT), "ViInt32"
    ),
}


def load_library(path: str | None = None, instrument_name: str = "Keysight M9601A") -> Any:
    """Load the KtM960x DLL from ``path``, the default install path or the library search path.

    Raises ``InstrumentConnectionError`` when no candidate loads; the message lists what
    was tried.
    """
    if path is not None:
        candidates = [path]
    else:
        candidates = [DEFAULT_LIBRARY_PATH] if sys.platform == "win32" else []
        found = ctypes.util.find_library(LIBRARY_NAME)
        if found:
            candidates.append(found)

    tried: list[str] = []
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
        except OSError as error:
            tried.append(f"{candidate} ({error})")
            continue
        log.info("loaded the KtM960x IVI driver from %s", candidate)
        return library

    detail = (
        "; tried " + ", ".join(tried)
        if tried
        else f" (no {LIBRARY_NAME} library on {sys.platform})"
    )
    raise InstrumentConnectionError(
        instrument_name, f"load {LIBRARY_NAME}", NOT_FOUND_MESSAGE + detail
    )


class KtM960xSession:
    """``IviSession`` on one channel of an M960x SMU through the KtM960x IVI-C driver.

    ``library`` is the loaded DLL (or a stand-in with the same functions); by default the
    DLL is loaded with ``load_library(library_path)``. ``channel`` is the channel number,
    1 on the single-channel M9601A.
    """

    def __init__(
        self,
        library: Any = None,
        library_path: str | None = None,
        channel: int = 1,
        instrument_name: str = "Keysight M9601A",
    ):
        self.instrument_name = instrument_name
        self.channel = channel
        self._library = (
            library if library is not None else load_library(library_path, instrument_name)
        )
        self._vi: ViSession | None = None
        self._voltage_list: tuple[float, ...] = ()
        self._trigger_count: int | None = None
        self._sweep_mode: str | None = None
        self._initiated = False

    # -- helpers ----------------------------------------------------------------------------

    @property
    def _repeated_capability(self) -> bytes:
        # NOTE: the channel name "1" as repeated-capability identifier is unconfirmed,
        # because the QCoDeS driver and pyPXI pass "" even for channel attributes.
        return str(self.channel).encode("ascii")

    def _channels(self) -> ctypes.Array:
        return (ViInt32 * 1)(self.channel)

    def _session_handle(self, operation: str) -> ViSession:
        if self._vi is None:
            raise InstrumentError(
                self.instrument_name,
                operation,
                "the IVI session is not open; call initialize first",
            )
        return self._vi

    def _check(self, status: int, operation: str) -> None:
        """Raise ``InstrumentError`` for a negative IVI status and log a positive one."""
        if status == 0:
            return
        text = self._status_text(status)
        if status > 0:
            log.warning(
                "%s: %s returned warning %#x: %s",
                self.instrument_name,
                operation,
                status & 0xFFFFFFFF,
                text,
            )
            return
        raise InstrumentError(
            self.instrument_name, operation, f"IVI status {status & 0xFFFFFFFF:#x}: {text}"
        )

    def _status_text(self, status: int) -> str:
        """Return the driver's description of the last error, or a placeholder."""
        if self._vi is None:
            return "no description (session not open)"
        code = ctypes.c_int32(0)
        buffer = ctypes.create_string_buffer(ERROR_MESSAGE_BUFFER)
        # NOTE: no public code found calls KtM960x_GetError. The arguments follow the call
        # of the sibling KtMAwg_GetError in QCoDeS KtMAwg.py (commit 05ec3c34).
        try:
            result = self._library.KtM960x_GetError(
                self._vi, ctypes.byref(code), ViInt32(ERROR_MESSAGE_BUFFER), buffer
            )
        except (AttributeError, OSError) as error:
            return f"no description ({error})"
        if result != 0:
            return f"no description (GetError returned {result})"
        return buffer.value.decode("ascii", errors="replace")

    # -- IviSession -------------------------------------------------------------------------

    def initialize(self, resource: str, id_query: bool, reset: bool, options: str) -> None:
        """Open the session with ``KtM960x_InitWithOptions``; enable the time-stamp auto reset."""
        operation = f"KtM960x_InitWithOptions({resource!r})"
        handle = ViSession(0)
        status = self._library.KtM960x_InitWithOptions(
            resource.encode("ascii"),
            ViBoolean(bool(id_query)),
            ViBoolean(bool(reset)),
            options.encode("ascii"),
            ctypes.byref(handle),
        )
        if status < 0:
            raise InstrumentConnectionError(
                self.instrument_name,
                operation,
                f"could not open the IVI session (status {status & 0xFFFFFFFF:#x})",
            )
        self._vi = handle
        self._check(status, operation)

        # Time stamps then count from each initiate, as IviSession.fetch promises.
        # NOTE: KtM960xDefs.py lists the attribute as a read-write ViBoolean. That it
        # restarts the time stamp at every initiate is assumed, so verify it on the bench.
        status = self._library.KtM960x_SetAttributeViBoolean(
            self._vi, b"", ViAttr(ATTR_SYSTEM_AUTO_TIMER_RESET_ENABLED), ViBoolean(1)
        )
        self._check(status, "enable automatic timer reset")
        log.info("opened KtM960x session to %s, channel %d", resource, self.channel)

    def set_attribute(self, name: str, value) -> None:
        """Write ``value`` to the IVI-C attribute(s) bound to ``name``."""
        operation = f"set {name} = {value!r}"
        vi = self._session_handle(operation)
        if name == "VOLTAGE_LIST":
            self._set_voltage_list(vi, value, operation)
            return
        binding = _binding(name, self.instrument_name, operation)
        repeated_capability = self._repeated_capability if binding.channel_specific else b""

        raw = _to_ivi_value(binding, value, self.instrument_name, operation)
        for attribute_id in binding.attribute_ids:
            function = getattr(self._library, f"KtM960x_SetAttribute{binding.ivi_type}")
            status = function(vi, repeated_capability, ViAttr(attribute_id), raw)
            self._check(status, f"{operation} (attribute {attribute_id})")

        if name == "TRIGGER_COUNT":
            self._trigger_count = int(value)
        elif name == "SWEEP_MODE":
            self._sweep_mode = str(value)

    def _set_voltage_list(self, vi: ViSession, value, operation: str) -> None:
        voltages = tuple(float(voltage) for voltage in value)
        array = (ViReal64 * len(voltages))(*voltages)
        # NOTE: KtM960x_TransientVoltageSetList and its argument order are unconfirmed. No
        # public code or manual found names it, and KtM960xDefs.py only names
        # KtM960x_TransientVoltageSetListOutputTrigger.
        status = self._library.KtM960x_TransientVoltageSetList(
            vi, self._repeated_capability, ViInt32(len(voltages)), array
        )
        self._check(status, operation)
        self._voltage_list = voltages

    def get_attribute(self, name: str):
        """Read the IVI-C attribute bound to ``name`` and return it as the table's Python type."""
        operation = f"get {name}"
        vi = self._session_handle(operation)
        if name == "VOLTAGE_LIST":
            # Returns the list this session last wrote; it is not read back from the driver.
            return self._voltage_list
        binding = _binding(name, self.instrument_name, operation)
        repeated_capability = self._repeated_capability if binding.channel_specific else b""

        holder = {"ViBoolean": ViBoolean, "ViInt32": ViInt32, "ViReal64": ViReal64}[
            binding.ivi_type
        ](0)
        function = getattr(self._library, f"KtM960x_GetAttribute{binding.ivi_type}")
        status = function(
            vi, repeated_capability, ViAttr(binding.attribute_ids[0]), ctypes.byref(holder)
        )
        self._check(status, operation)
        return _from_ivi_value(binding, holder.value, name, self.instrument_name, operation)

    def identify(self) -> str:
        """Return ``"manufacturer, model, serial number, firmware"`` read from the driver."""
        vi = self._session_handle("identify")
        parts = []
        for attribute_id in (
            ATTR_INSTRUMENT_MANUFACTURER,
            ATTR_INSTRUMENT_MODEL,
            ATTR_MODULE_SERIAL_NUMBER,
            ATTR_INSTRUMENT_FIRMWARE_REVISION,
        ):
            buffer = ctypes.create_string_buffer(STRING_BUFFER)
            status = self._library.KtM960x_GetAttributeViString(
                vi, b"", ViAttr(attribute_id), ViInt32(STRING_BUFFER), buffer
            )
            self._check(status, f"identify (attribute {attribute_id})")
            parts.append(buffer.value.decode("ascii", errors="replace").strip())
        return ", ".join(parts)

    def initiate(self) -> None:
        """Start the configured acquisition on this channel with ``KtM960x_Initiate``.

        NOTE: pyPXI also binds KtM960x_TransientInitiate. That Initiate starts both the
        transient and the measurement is assumed, not stated in the sources.
        """
        operation = "KtM960x_Initiate"
        vi = self._session_handle(operation)
        if self._sweep_mode == "LIST" and self._trigger_count != len(self._voltage_list):
            raise InstrumentError(
                self.instrument_name,
                operation,
                f"TRIGGER_COUNT is {self._trigger_count} but VOLTAGE_LIST has "
                f"{len(self._voltage_list)} points; a LIST sweep needs them equal",
            )
        status = self._library.KtM960x_Initiate(vi, ViInt32(1), self._channels())
        self._check(status, operation)
        self._initiated = True

    def fetch(self, timeout_s: float) -> dict[str, np.ndarray]:
        """Wait up to ``timeout_s`` for the acquisition, then fetch time, voltage and current."""
        operation = f"fetch(timeout_s={timeout_s!r})"
        vi = self._session_handle(operation)
        if not self._initiated:
            raise InstrumentError(self.instrument_name, operation, "no acquisition was initiated")

        complete = ViBoolean(0)
        timeout_ms = max(1, round(timeout_s * 1000))
        status = self._library.KtM960x_SystemWaitForOperationComplete(
            vi, ViInt32(timeout_ms), ctypes.byref(complete)
        )
        self._check(status, operation)
        if not complete.value:
            raise InstrumentTimeout(
                self.instrument_name, operation, f"acquisition not complete after {timeout_s:g} s"
            )

        points = (
            self._trigger_count
            if self._trigger_count is not None
            else int(self.get_attribute("TRIGGER_COUNT"))
        )
        data = {}
        for key, fetch_type in zip(
            FETCH_KEYS, (VAL_FETCH_TYPE_TIME, VAL_FETCH_TYPE_VOLTAGE, VAL_FETCH_TYPE_CURRENT)
        ):
            data[key] = self._fetch_array(vi, fetch_type, points, f"{operation} {key}")
        self._initiated = False
        return data

    def _fetch_array(
        self, vi: ViSession, fetch_type: int, points: int, operation: str
    ) -> np.ndarray:
        values = (ViReal64 * points)()
        actual = ViInt32(0)
        status = self._library.KtM960x_MeasurementFetchArrayData(
            vi,
            ViInt32(fetch_type),
            ViInt32(1),
            self._channels(),
            ViInt32(points),
            values,
            ctypes.byref(actual),
        )
        self._check(status, operation)
        if actual.value != points:
            raise InstrumentError(
                self.instrument_name,
                operation,
                f"driver returned {actual.value} values, expected {points}",
            )
        return np.array(values[:points], dtype=float)

    def error_query(self) -> tuple[int, str]:
        """Return the oldest instrument error (``KtM960x_error_query``); ``(0, ...)`` if none."""
        operation = "KtM960x_error_query"
        vi = self._session_handle(operation)
        code = ViInt32(0)
        message = ctypes.create_string_buffer(ERROR_MESSAGE_BUFFER)
        status = self._library.KtM960x_error_query(vi, ctypes.byref(code), message)
        self._check(status, operation)
        return int(code.value), message.value.decode("ascii", errors="replace").strip()

    def close(self) -> None:
        """Close the session with ``KtM960x_close``; a second call does nothing."""
        if self._vi is None:
            return
        vi, self._vi = self._vi, None
        status = self._library.KtM960x_close(vi)
        if status < 0:
            raise InstrumentError(
                self.instrument_name, "KtM960x_close", f"IVI status {status & 0xFFFFFFFF:#x}"
            )
        log.info("closed KtM960x session, channel %d", self.channel)


def _binding(name: str, instrument: str, operation: str) -> AttributeBinding:
    if name not in ATTRIBUTES:
        raise InstrumentError(
            instrument, operation, f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}"
        )
    return ATTRIBUTE_BINDINGS[name]


def _to_ivi_value(binding: AttributeBinding, value, instrument: str, operation: str):
    """Convert a session value into the ctypes value of the binding's IVI type."""
    if binding.values:
        if value not in binding.values:
            raise InstrumentError(
                instrument,
                operation,
                f"value {value!r} is not one of {', '.join(map(repr, binding.values))}",
            )
        return ViInt32(binding.values[value])
    if binding.ivi_type == "ViBoolean":
        return ViBoolean(1 if value else 0)
    if binding.ivi_type == "ViInt32":
        return ViInt32(int(value))
    return ViReal64(float(value))


def _from_ivi_value(binding: AttributeBinding, raw, name: str, instrument: str, operation: str):
    """Convert a raw IVI value into the Python type that ``ATTRIBUTES`` lists for ``name``."""
    if binding.values:
        for text, number in binding.values.items():
            if number == raw:
                return text
        raise InstrumentError(
            instrument, operation, f"driver returned {raw!r}, not a known {name} value"
        )
    python_type = ATTRIBUTES[name][0]
    return python_type(raw)
