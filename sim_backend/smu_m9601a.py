"""The simulated Keysight M9601A SMU channel, as an ``IviSession`` for the real driver.

It follows the behaviour that ``instruments.ivi_session`` documents for every
implementation: FIXED and LIST acquisitions of ``TRIGGER_COUNT`` points, each waiting
``SOURCE_DELAY`` after its source step and then averaging the current over
``MEASUREMENT_APERTURE``; after a LIST acquisition the output holds the last list voltage
until ``VOLTAGE_LEVEL`` or ``SWEEP_MODE`` is written. The acquisition runs in virtual time
from ``initiate()`` on, alongside whatever else the protocol does (a generator burst fired
during a FIXED acquisition shows in its readings); ``fetch`` lets time run to its end.

Compliance: where the mean device current of a point exceeds ``CURRENT_LIMIT``, the
reading is limited to +-``CURRENT_LIMIT`` and the voltage reading drops to
``v * CURRENT_LIMIT / abs(I)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.ivi_session import ATTRIBUTES, SOURCE_FUNCTIONS, SWEEP_MODES
from sim_backend.faults import FaultInjector, FaultKind
from sim_backend.world import Interest, SimulatedWorld

log = logging.getLogger(__name__)

#: Samples per acquisition point when the device current is realised for the SMU.
SAMPLES_PER_POINT = 8

#: Ranges the simulated SMU accepts; values outside go to the error queue.
# NOTE: +-42 V, 1 nA to 100 mA and 1 us to 2 s are simulator choices of the right order for
# a precision PXIe SMU, not M9601A data-sheet values.
VOLTAGE_RANGE_V = (-42.0, 42.0)
CURRENT_LIMIT_RANGE_A = (1e-9, 0.1)
APERTURE_RANGE_S = (1e-6, 2.0)
SOURCE_DELAY_RANGE_S = (0.0, 100.0)
MAX_POINTS = 100_000

IDENTITY = "Keysight Technologies,M9601A,SIM00001,simulated"

_RESET_ATTRIBUTES = {
    "OUTPUT_ENABLED": False,
    "SOURCE_FUNCTION": "VOLTAGE",
    "VOLTAGE_LEVEL": 0.0,
    "CURRENT_LIMIT": 1e-4,
    "MEASUREMENT_APERTURE": 1e-3,
    "SOURCE_DELAY": 0.0,
    "SWEEP_MODE": "FIXED",
    "VOLTAGE_LIST": (),
    "TRIGGER_COUNT": 1,
}


@dataclass
class _Acquisition:
    start_s: float
    point_s: float
    delay_s: float
    aperture_s: float
    levels_v: np.ndarray
    output_enabled: bool
    current_limit_a: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.point_s * self.levels_v.size


class SimulatedM9601ASession:
    """``IviSession`` of one simulated SMU channel driving the world's device."""

    def __init__(self, world: SimulatedWorld, rng: np.random.Generator, faults: FaultInjector,
                 name: str = "Keysight M9601A (simulated)", current_noise_a: float = 50e-15):
        self.world = world
        self.rng = rng
        self.faults = faults
        self.name = name
        self.current_noise_a = float(current_noise_a)
        self.resource: str | None = None
        self.closed = False
        self._attributes = dict(_RESET_ATTRIBUTES)
        self._errors: list[tuple[int, str]] = []
        self._acquisition: _Acquisition | None = None
        self._holding_list_level = False
        self._last_list_level_v = 0.0

    # ------------------------------------------------------------------ IviSession

    def initialize(self, resource: str, id_query: bool, reset: bool, options: str) -> None:
        """Open the session; ``reset`` opens the relay and returns every attribute to default."""
        self._before_call("initialize")
        self.resource = resource
        self.closed = False
        if reset:
            self._attributes = dict(_RESET_ATTRIBUTES)
            self._acquisition = None
            self._holding_list_level = False
        log.info("%s: session opened on %s (reset=%s)", self.name, resource, reset)

    def set_attribute(self, name: str, value) -> None:
        """Set an attribute; an invalid name raises, an invalid value goes to the error queue."""
        self._before_call(f"set_attribute({name!r})")
        if name not in ATTRIBUTES:
            raise InstrumentError(self.name, f"set_attribute({name!r})", f"unknown attribute {name!r}")
        try:
            checked = self._check_value(name, value)
        except ValueError as error:
            self._errors.append((-222, f"Data out of range;{error}"))
            log.debug("%s: rejected %s = %r: %s", self.name, name, value, error)
            return
        if name in ("VOLTAGE_LEVEL", "SWEEP_MODE"):
            self._holding_list_level = False
        self._attributes[name] = checked

    def get_attribute(self, name: str):
        """Return the attribute's value with the type listed in ``ATTRIBUTES``."""
        self._before_call(f"get_attribute({name!r})")
        if name not in ATTRIBUTES:
            raise InstrumentError(self.name, f"get_attribute({name!r})", f"unknown attribute {name!r}")
        return self._attributes[name]

    def identify(self) -> str:
        """Return the simulated identity string."""
        self._before_call("identify")
        return IDENTITY

    def initiate(self) -> None:
        """Start an acquisition now; raise InstrumentError if the configuration is invalid."""
        self._before_call("initiate")
        attributes = self._attributes
        count = int(attributes["TRIGGER_COUNT"])
        if attributes["SWEEP_MODE"] == "LIST":
            levels = np.asarray(attributes["VOLTAGE_LIST"], dtype=float)
            if levels.size != count:
                raise InstrumentError(
                    self.name, "initiate",
                    f"TRIGGER_COUNT is {count} but VOLTAGE_LIST has {levels.size} voltages",
                )
            self._holding_list_level = True
            self._last_list_level_v = float(levels[-1])
        else:
            levels = np.full(count, float(attributes["VOLTAGE_LEVEL"]))
        delay_s = float(attributes["SOURCE_DELAY"])
        aperture_s = float(attributes["MEASUREMENT_APERTURE"])
        self._acquisition = _Acquisition(
            start_s=self.world.clock.now(),
            point_s=delay_s + aperture_s,
            delay_s=delay_s,
            aperture_s=aperture_s,
            levels_v=levels,
            output_enabled=bool(attributes["OUTPUT_ENABLED"]),
            current_limit_a=float(attributes["CURRENT_LIMIT"]),
        )
        log.debug("%s: %s acquisition of %d points started at %g s", self.name,
                  attributes["SWEEP_MODE"], count, self._acquisition.start_s)

    def fetch(self, timeout_s: float) -> dict[str, np.ndarray]:
        """Let time run to the end of the acquisition and return its readings."""
        self._before_call("fetch")
        acquisition = self._acquisition
        if acquisition is None:
            raise InstrumentError(self.name, "fetch", "no acquisition was initiated")
        now_s = self.world.clock.now()
        if acquisition.end_s - now_s > timeout_s:
            self.world.advance_to(now_s + timeout_s)
            raise InstrumentTimeout(
                self.name, "fetch",
                f"acquisition needs {acquisition.end_s - now_s:g} s more, longer than the "
                f"fetch timeout of {timeout_s:g} s",
            )
        self.world.advance_to(acquisition.end_s)
        self.world.realise()
        readings = self._readings(acquisition)
        self._acquisition = None
        return readings

    def error_query(self) -> tuple[int, str]:
        """Return and remove the oldest queued error, or ``(0, "No error")``."""
        self._before_call("error_query")
        if not self._errors:
            return 0, "No error"
        return self._errors.pop(0)

    def close(self) -> None:
        """Close the session; safe to call more than once."""
        self.closed = True

    # ------------------------------------------------------------------ the world's view

    def output_at(self, time_s: float) -> tuple[float, float]:
        """Return the output voltage at ``time_s`` and the time until which it stays."""
        if not self._attributes["OUTPUT_ENABLED"]:
            return 0.0, math.inf
        acquisition = self._acquisition
        if self._holding_list_level and acquisition is not None and time_s < acquisition.end_s:
            index = int((time_s - acquisition.start_s) / acquisition.point_s)
            index = min(max(index, 0), acquisition.levels_v.size - 1)
            next_step_s = acquisition.start_s + (index + 1) * acquisition.point_s
            if next_step_s <= time_s:  # rounding put the step on or before now
                index = min(index + 1, acquisition.levels_v.size - 1)
                next_step_s = acquisition.start_s + (index + 1) * acquisition.point_s
            return float(acquisition.levels_v[index]), next_step_s
        if self._holding_list_level:
            return self._last_list_level_v, math.inf
        return float(self._attributes["VOLTAGE_LEVEL"]), math.inf

    def interest(self, now_s: float) -> Interest | None:
        """Return the window in which the running acquisition needs device samples."""
        acquisition = self._acquisition
        if acquisition is None or not acquisition.output_enabled:
            return None
        return Interest(acquisition.start_s, acquisition.end_s,
                        acquisition.point_s / SAMPLES_PER_POINT)

    # ------------------------------------------------------------------ internals

    def _before_call(self, call: str) -> None:
        if self.closed and call != "initialize":
            raise InstrumentConnectionError(self.name, call, "session is closed")
        fault = self.faults.next_command()
        if fault is None:
            return
        if fault.kind is FaultKind.TIMEOUT:
            raise InstrumentTimeout(self.name, call, "no response from the instrument (injected timeout)")
        if fault.kind is FaultKind.CONNECTION_LOST:
            raise InstrumentConnectionError(self.name, call, "connection to the instrument lost (injected fault)")
        self._errors.append((fault.error_code, fault.error_message))
        raise InstrumentError(self.name, call, f"{fault.error_code}: {fault.error_message} (injected fault)")

    @staticmethod
    def _check_value(name: str, value):
        kind = ATTRIBUTES[name][0]
        if name == "VOLTAGE_LIST":
            values = tuple(float(item) for item in value)
            if not values or len(values) > MAX_POINTS:
                raise ValueError(f"VOLTAGE_LIST needs 1 to {MAX_POINTS} voltages, got {len(values)}")
            for item in values:
                _check_range(item, VOLTAGE_RANGE_V, "VOLTAGE_LIST entry")
            return values
        if kind is bool:
            if not isinstance(value, (bool, np.bool_, int)):
                raise ValueError(f"{name} expects a bool, got {value!r}")
            return bool(value)
        if kind is str:
            text = str(value).upper()
            allowed = SOURCE_FUNCTIONS if name == "SOURCE_FUNCTION" else SWEEP_MODES
            if text not in allowed:
                raise ValueError(f"{name} expects one of {allowed}, got {value!r}")
            return text
        if kind is int:
            number = int(value)
            if number != value or not 1 <= number <= MAX_POINTS:
                raise ValueError(f"{name} expects an integer from 1 to {MAX_POINTS}, got {value!r}")
            return number
        number = float(value)
        ranges = {
            "VOLTAGE_LEVEL": VOLTAGE_RANGE_V,
            "CURRENT_LIMIT": CURRENT_LIMIT_RANGE_A,
            "MEASUREMENT_APERTURE": APERTURE_RANGE_S,
            "SOURCE_DELAY": SOURCE_DELAY_RANGE_S,
        }
        return _check_range(number, ranges[name], name)

    def _readings(self, acquisition: _Acquisition) -> dict[str, np.ndarray]:
        count = acquisition.levels_v.size
        offsets_s = acquisition.point_s * np.arange(count) + acquisition.delay_s
        if not acquisition.output_enabled:
            current = np.zeros(count)
            voltage = np.zeros(count)
        else:
            windows_start = acquisition.start_s + offsets_s
            current = _mean_current(self.world, windows_start, windows_start + acquisition.aperture_s)
            voltage = acquisition.levels_v.copy()
            # NOTE: compliance only limits the readings. The device still got the programmed
            # voltage, so a device that hits compliance is driven harder than on a real SMU.
            limit = acquisition.current_limit_a
            over = np.abs(current) > limit
            if over.any():
                voltage[over] *= limit / np.abs(current[over])
                current[over] = np.sign(current[over]) * limit
                log.info("%s: %d of %d points in compliance at %g A", self.name,
                         int(over.sum()), count, limit)
        current = current + self.current_noise_a * self.rng.standard_normal(count)
        return {"time_s": offsets_s, "voltage_v": voltage, "current_a": current}


def _check_range(value: float, bounds: tuple[float, float], what: str) -> float:
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} {value!r} outside {low:g} to {high:g}")
    return value


def _mean_current(world: SimulatedWorld, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
    """Return the time-averaged device current over each window, from the world's samples."""
    blocks = world.blocks_between(float(starts_s.min()), float(ends_s.max()))
    if not blocks:
        raise RuntimeError("no device samples cover the SMU acquisition")
    edges = np.concatenate([block.times_s() for block in blocks] + [np.array([blocks[-1].end_s])])
    durations = np.concatenate([np.full(block.current_a.size, block.dt_s) for block in blocks])
    charge = np.concatenate(([0.0], np.cumsum(np.concatenate([block.current_a for block in blocks]) * durations)))
    charge_start = np.interp(starts_s, edges, charge)
    charge_end = np.interp(ends_s, edges, charge)
    return (charge_end - charge_start) / (ends_s - starts_s)
