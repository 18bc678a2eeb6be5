"""Driver for the Keysight M9601A precision source/measure unit, one channel, voltage source.

The M9601A is a PXIe SMU programmed through Keysight's KtM960x IVI-C driver, not SCPI. This
driver talks only to the ``IviSession`` interface (``instruments.ivi_session``), whose
behaviour the ctypes binding and the simulated SMU both implement. It sources voltage on
the Pt electrode (Ti grounded) and measures current.

Safety: every set-point and every point of a sweep is checked against the bench's
``SafetyLimits`` before anything is sent. The output can only be turned on after a current
compliance has been written through this driver and read back, and after the set-point
held by the instrument has been checked against the limits. ``shutdown()`` ramps to 0 V
and opens the output relay, and carries on past a step that fails.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from instruments.clock import Clock, MonotonicClock
from instruments.errors import InstrumentError
from instruments.ivi_session import FETCH_KEYS, IviSession
from instruments.safety import SafetyLimitError, SafetyLimits

log = logging.getLogger(__name__)

#: Measurement aperture accepted by ``aperture_s``, in seconds.
# NOTE: the range comes from the aperture validator of the QCoDeS KtM960x driver (800 ns to
# 2 s), not from the M9601A data sheet. Widen it if the data sheet allows more.
APERTURE_RANGE_S = (8e-7, 2.0)

#: Relative tolerance between a written current limit and its read-back.
CURRENT_LIMIT_RTOL = 1e-6

#: Time allowed for one FIXED measurement on top of its aperture and delay, in seconds.
FETCH_MARGIN_S = 10.0

#: Error-queue entries read before ``check_errors`` gives up on an endless queue.
MAX_ERROR_QUEUE_READS = 100


class Reading(NamedTuple):
    """One FIXED-mode reading of the SMU."""

    current_a: float
    voltage_v: float


class KeysightM9601A:
    """Keysight M9601A SMU channel used as a voltage source with current measurement.

    ``resource`` is the IVI resource name (for example
    ``"PXI0::CHASSIS1::SLOT2::INDEX0::INSTR"``). With ``session=None`` the driver opens a
    ``KtM960xSession`` on the vendor library, which exists only on Windows with the Keysight
    driver installed. The simulated bench passes its own session. ``clock`` paces the
    voltage ramps of ``ramp_to_zero`` and ``shutdown`` (the bench clock on a simulated
    bench). ``options`` is the IVI option string passed to ``initialize``.
    """

    def __init__(
        self,
        resource: str,
        limits: SafetyLimits,
        session: IviSession | None = None,
        name: str = "Keysight M9601A",
        reset: bool = False,
        *,
        clock: Clock | None = None,
        options: str = "",
    ):
        self.resource = resource
        self.limits = limits
        self.name = name
        self.clock = clock if clock is not None else MonotonicClock()
        self._last_operation = "none"
        self._current_limit_verified = False
        # Aperture and delay last written through this driver; they size fetch timeouts.
        self._aperture_s: float | None = None
        self._source_delay_s: float | None = None
        if session is None:
            from instruments.ktm960x_ctypes import KtM960xSession

            session = KtM960xSession(instrument_name=name)
        self._session = session

        self._call("initialize", session.initialize, resource, True, reset, options)
        log.info("connected to %s at %s (reset=%s)", name, resource, reset)

    # -- session access -------------------------------------------------------------------

    def _call(self, operation: str, function: Callable[..., Any], *args) -> Any:
        """Run one session call, remembering it as the last operation.

        Errors that are not already ``InstrumentError`` are wrapped into one that names this
        instrument and the operation.
        """
        self._last_operation = operation
        try:
            return function(*args)
        except InstrumentError:
            raise
        except Exception as error:
            raise InstrumentError(self.name, operation, f"session call failed: {error}") from error

    def _set(self, attribute: str, value) -> None:
        self._call(
            f"set_attribute({attribute!r}, {value!r})",
            self._session.set_attribute,
            attribute,
            value,
        )

    def _get(self, attribute: str):
        return self._call(f"get_attribute({attribute!r})", self._session.get_attribute, attribute)

    # -- settings ---------------------------------------------------------------------------

    @property
    def source_voltage_v(self) -> float:
        """Control the set-point in volts (float from limits.min_voltage_v to max_voltage_v).

        The value is checked against the safety limits before anything is sent; an
        out-of-range value raises ``SafetyLimitError`` and leaves the instrument untouched.
        """
        return float(self._get("VOLTAGE_LEVEL"))

    @source_voltage_v.setter
    def source_voltage_v(self, voltage_v: float) -> None:
        voltage_v = self.limits.check_voltage(float(voltage_v), "SMU set-point")
        self._set("VOLTAGE_LEVEL", voltage_v)

    @property
    def current_limit_a(self) -> float:
        """Control the current compliance in amperes (float, positive, up to limits.max_current_a).

        The setter writes the value, reads it back and raises ``InstrumentError`` when the
        instrument reports a different value. The output cannot be turned on until a limit
        has been written and verified this way.
        """
        return float(self._get("CURRENT_LIMIT"))

    @current_limit_a.setter
    def current_limit_a(self, current_a: float) -> None:
        current_a = self.limits.check_current(float(current_a), "SMU current limit")
        self._current_limit_verified = False
        self._set("CURRENT_LIMIT", current_a)

        read_back_a = float(self._get("CURRENT_LIMIT"))
        if not math.isclose(read_back_a, current_a, rel_tol=CURRENT_LIMIT_RTOL, abs_tol=0.0):
            raise InstrumentError(
                self.name,
                f"set_attribute('CURRENT_LIMIT', {current_a!r})",
                f"current limit read back as {read_back_a:g} A after writing {current_a:g} A; "
                "the output stays locked until a limit is written and verified",
            )
        self._current_limit_verified = True
        log.info("%s: current limit set to %g A", self.name, current_a)

    @property
    def output_enabled(self) -> bool:
        """Control whether the output relay is closed and the set-point reaches the device (bool).

        Turning it on first checks that a current limit was verified through this driver and
        that the instrument's voltage set-point is inside the safety limits, then selects the
        voltage source function. Turning it off is always allowed.
        """
        return bool(self._get("OUTPUT_ENABLED"))

    @output_enabled.setter
    def output_enabled(self, enabled: bool) -> None:
        if enabled:
            self._enable_output()
        else:
            self._set("OUTPUT_ENABLED", False)
            log.info("%s: output off", self.name)

    def _enable_output(self) -> None:
        """Close the output relay after the compliance and set-point checks."""
        if not self._current_limit_verified:
            raise SafetyLimitError(
                f"{self.name}: set current_limit_a before turning the output on, so the device "
                "is protected by a verified compliance"
            )
        set_point_v = float(self._get("VOLTAGE_LEVEL"))
        self.limits.check_voltage(set_point_v, f"{self.name} set-point held by the instrument")

        self._set("SOURCE_FUNCTION", "VOLTAGE")
        self._set("OUTPUT_ENABLED", True)
        log.info("%s: output on at %g V", self.name, set_point_v)

    @property
    def aperture_s(self) -> float:
        """Control the integration time of each measurement in seconds (float from 8e-7 to 2)."""
        return float(self._get("MEASUREMENT_APERTURE"))

    @aperture_s.setter
    def aperture_s(self, aperture_s: float) -> None:
        aperture_s = _check_aperture(aperture_s)
        self._set("MEASUREMENT_APERTURE", aperture_s)
        self._aperture_s = aperture_s

    @property
    def source_delay_s(self) -> float:
        """Control the wait from a source step to its measurement in seconds (float, at least 0)."""
        return float(self._get("SOURCE_DELAY"))

    @source_delay_s.setter
    def source_delay_s(self, delay_s: float) -> None:
        delay_s = _check_delay(delay_s)
        self._set("SOURCE_DELAY", delay_s)
        self._source_delay_s = delay_s

    # -- measurements -----------------------------------------------------------------------

    def measure(self, timeout_s: float | None = None) -> Reading:
        """Measure current and voltage once at the present set-point (one FIXED acquisition).

        ``timeout_s`` defaults to ``FETCH_MARGIN_S`` plus the aperture and source delay last
        written through this driver, or the maximum aperture when none was. Pass it
        explicitly if the delay was set by other software. The output state is not changed,
        so with the output off the reading is that of an open relay.
        """
        if timeout_s is None:
            aperture_s = self._aperture_s if self._aperture_s is not None else APERTURE_RANGE_S[1]
            timeout_s = aperture_s + (self._source_delay_s or 0.0) + FETCH_MARGIN_S
        self._set("SWEEP_MODE", "FIXED")
        self._set("TRIGGER_COUNT", 1)

        self._call("initiate()", self._session.initiate)
        data = self._fetch(timeout_s, expected_points=1)
        return Reading(current_a=float(data["current_a"][0]), voltage_v=float(data["voltage_v"][0]))

    def sweep(
        self,
        voltages_v,
        aperture_s: float,
        source_delay_s: float,
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run a LIST sweep through ``voltages_v`` and return the readings of every point.

        Every voltage is checked against the safety limits before the first session call,
        so a rejected sweep touches nothing. The output is turned on if it was off (which
        needs a verified current limit). Afterwards the output stays on, holding the last
        voltage of the list, which also becomes the FIXED set-point; bring it down with
        ``ramp_to_zero()`` or ``shutdown()``. If anything fails once the sweep has been
        configured, the driver shuts the output down before re-raising.

        Returns ``{"time_s", "voltage_v", "current_a"}`` arrays (see ``instruments.ivi_session``
        for units and sign), one entry per voltage. ``timeout_s`` defaults to twice the
        expected duration plus ``FETCH_MARGIN_S``.
        """
        voltages_array = self.limits.check_waveform(voltages_v, "SMU sweep")
        if voltages_array.ndim != 1:
            raise ValueError(
                f"voltages_v must be a 1-D sequence of volts, got shape {voltages_array.shape}"
            )
        voltages = [float(voltage) for voltage in voltages_array]
        aperture_s = _check_aperture(aperture_s)
        source_delay_s = _check_delay(source_delay_s)
        if not self._current_limit_verified:
            raise SafetyLimitError(
                f"{self.name}: set current_limit_a before a sweep, so the device is protected "
                "by a verified compliance"
            )
        if timeout_s is None:
            timeout_s = 2.0 * len(voltages) * (aperture_s + source_delay_s) + FETCH_MARGIN_S

        try:
            self._set("MEASUREMENT_APERTURE", aperture_s)
            self._aperture_s = aperture_s
            self._set("SOURCE_DELAY", source_delay_s)
            self._source_delay_s = source_delay_s
            self._set("SWEEP_MODE", "LIST")
            self._set("VOLTAGE_LIST", tuple(voltages))
            self._set("TRIGGER_COUNT", len(voltages))
            if not self.output_enabled:
                self._enable_output()

            self._call("initiate()", self._session.initiate)
            data = self._fetch(timeout_s, expected_points=len(voltages))

            self._set("VOLTAGE_LEVEL", voltages[-1])
            self._set("SWEEP_MODE", "FIXED")
        except BaseException:
            log.error(
                "%s: sweep of %d points failed; shutting the output down", self.name, len(voltages)
            )
            self._shutdown_after_failure()
            raise
        return data

    def _fetch(self, timeout_s: float, expected_points: int) -> dict[str, np.ndarray]:
        """Fetch the running acquisition and check that it has the expected shape."""
        raw = self._call(f"fetch({timeout_s!r})", self._session.fetch, timeout_s)
        data = {}
        for key in FETCH_KEYS:
            if key not in raw:
                raise InstrumentError(
                    self.name, self._last_operation, f"fetch returned no {key!r} array"
                )
            data[key] = np.asarray(raw[key], dtype=float)
            if data[key].shape != (expected_points,):
                raise InstrumentError(
                    self.name,
                    self._last_operation,
                    f"fetch returned {data[key].size} {key!r} values, expected {expected_points}",
                )
        return data

    # -- identification and errors --------------------------------------------------------

    def identify(self) -> str:
        """Return the manufacturer, model, serial number and firmware reported by the SMU."""
        identity = str(self._call("identify()", self._session.identify))
        log.info("%s at %s identifies as %s", self.name, self.resource, identity)
        return identity

    def check_errors(self) -> None:
        """Read the error queue until it is empty; raise if it held any error.

        The ``InstrumentError`` names this instrument, the last operation before the check
        and every queued error as ``code: message``.
        """
        operation = self._last_operation
        errors: list[str] = []
        for _ in range(MAX_ERROR_QUEUE_READS):
            try:
                code, message = self._session.error_query()
            except InstrumentError:
                raise
            except Exception as error:
                raise InstrumentError(
                    self.name, "error_query()", f"reading the error queue failed: {error}"
                ) from error
            if code == 0:
                break
            errors.append(f"{code}: {message}")
            log.error("%s reported error %s: %s (after %s)", self.name, code, message, operation)
        else:
            errors.append(f"error queue still not empty after {MAX_ERROR_QUEUE_READS} reads")
        if errors:
            raise InstrumentError(
                self.name, operation, "instrument error queue: " + "; ".join(errors)
            )

    # -- safe state -----------------------------------------------------------------------

    def ramp_to_zero(
        self,
        step_v: float = 0.1,
        step_delay_s: float = 0.01,
        clock: Clock | None = None,
    ) -> None:
        """Step the set-point from its present value to 0 V in steps of at most ``step_v``.

        Waits ``step_delay_s`` on ``clock`` (default: the driver's clock) after each step.
        The last step writes exactly 0 V. The output state is not changed.
        """
        if not math.isfinite(step_v) or step_v <= 0:
            raise ValueError(f"step_v must be a positive number of volts, got {step_v!r}")
        if not math.isfinite(step_delay_s) or step_delay_s < 0:
            raise ValueError(
                f"step_delay_s must be a non-negative number of seconds, got {step_delay_s!r}"
            )
        clock = clock if clock is not None else self.clock

        start_v = float(self._get("VOLTAGE_LEVEL"))
        steps = max(1, math.ceil(abs(start_v) / step_v - 1e-9))
        for index in range(1, steps + 1):
            level_v = start_v * (1.0 - index / steps) if index < steps else 0.0
            self._set("VOLTAGE_LEVEL", level_v)
            clock.sleep(step_delay_s)
        log.info("%s: ramped from %g V to 0 V in %d steps", self.name, start_v, steps)

    def shutdown(self, step_v: float = 0.1, step_delay_s: float = 0.01) -> None:
        """Ramp to 0 V and open the output relay, leaving the session open.

        Each step (return to FIXED mode, ramp, 0 V set-point, output off) is attempted even
        when an earlier one fails. Failures are logged and then raised together as one
        ``InstrumentError``, because the safe state may not have been reached.
        """
        failures: list[str] = []

        def attempt(step: str, action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as error:  # noqa: BLE001 - every step of the cleanup must run
                log.error("%s: shutdown step '%s' failed: %s", self.name, step, error)
                failures.append(f"{step}: {error}")

        attempt("fixed mode", lambda: self._set("SWEEP_MODE", "FIXED"))
        attempt("ramp to 0 V", lambda: self.ramp_to_zero(step_v, step_delay_s))
        attempt("0 V set-point", lambda: self._set("VOLTAGE_LEVEL", 0.0))
        attempt("output off", lambda: self._set("OUTPUT_ENABLED", False))

        if failures:
            raise InstrumentError(
                self.name, "shutdown", "shutdown incomplete: " + "; ".join(failures)
            )
        log.info("%s: shut down (0 V, output off)", self.name)

    def _shutdown_after_failure(self) -> None:
        try:
            self.shutdown()
        except InstrumentError as error:
            log.error("%s: shutdown after a failed sweep also failed: %s", self.name, error)

    def close(self) -> None:
        """Close the IVI session; the output keeps its state, so call ``shutdown()`` first."""
        self._call("close()", self._session.close)
        log.info("closed %s at %s", self.name, self.resource)


def _check_aperture(aperture_s: float) -> float:
    aperture_s = float(aperture_s)
    low, high = APERTURE_RANGE_S
    if not math.isfinite(aperture_s) or not low <= aperture_s <= high:
        raise ValueError(f"aperture_s must be from {low:g} s to {high:g} s, got {aperture_s!r}")
    return aperture_s


def _check_delay(delay_s: float) -> float:
    delay_s = float(delay_s)
    if not math.isfinite(delay_s) or delay_s < 0:
        raise ValueError(
            f"source_delay_s must be a non-negative number of seconds, got {delay_s!r}"
        )
    return delay_s
