"""Bench actions of the protocols: the only module of ``protocols`` that calls the drivers.

Wiring (published setup, and the simulated bench): the SMU and generator channel 1 both
drive the Pt electrode, so the voltage at the device is their sum. Ti goes into the
DHPCA-100 current amplifier, whose output scope channel 1 records. Scope channel 2
records the voltage at the Pt electrode.

* A read averages one scope record of the read window: the current is the mean of the
  amplifier output converted by the amplifier driver (which inverts), the voltage the mean
  of channel 2, the conductance their ratio.
* A captured pulse is recorded around the generator burst, triggered on the rising edge
  of channel 2. Its energy is the sum of V x I x dt over the samples where channel 2 is
  above the midpoint between the SMU level and the pulse top.
* Settings go to the generator and the scope in batches (``settings_batch``), so each
  instrument's error queue is read once per configuration instead of after every
  setting, and only settings that differ from the last ones sent are sent again. The
  generator driver still reads its queue before and after every voltage change on an
  output that is on.
* The scope range of each channel is set from the largest current expected
  (``AcquisitionSettings``), so that it spans four of the five divisions above and below
  zero. A sample at a screen edge means the signal was clipped: the action raises
  ``RangeExceededError`` instead of returning a wrong number.

Bench times: an acquisition's trigger time is the bench clock after the acquisition
completes minus the end of its record relative to the trigger. On the simulated bench this
is exact. NOTE: on a real bench the completion is seen late by the transfer latency of
``*OPC?``, which was not measured. Measure it before trusting sub-millisecond times since
a pulse.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from protocols.plan import PulseTrain, Sweep

log = logging.getLogger(__name__)

#: Samples in the scope record of one read.
READ_RECORD_POINTS = 1000
#: Samples across the width of one captured pulse.
PULSE_SAMPLES_PER_WIDTH = 1000
#: Largest scope record the actions request, in samples.
MAX_RECORD_POINTS = 2_000_000
#: Scope divisions above and below zero that the expected signal may fill.
USED_DIVISIONS = 4.0
#: Smallest vertical scale of the RTE1104, in V/div (the driver rejects smaller ones).
MIN_SCOPE_SCALE_V_PER_DIV = 1e-3
#: Half of the scope screen in divisions; samples at or beyond it are clipped.
SCREEN_HALF_DIVISIONS = 5.0
#: Fraction of a division inside the screen edge at which a sample counts as clipped.
CLIP_MARGIN_DIVISIONS = 0.05
#: Time allowed for a scope acquisition beyond its record length, in seconds.
ACQUISITION_TIMEOUT_MARGIN_S = 5.0
#: Wait between arming the scope and triggering the generator, in seconds.
# NOTE: the time the RTE1104 needs after SING before it can trigger was not measured. If
# real captures time out waiting for a trigger, lengthen this wait.
ARM_DELAY_S = 1e-3
#: Channels of the published wiring, used where ``bench.description`` names none
#: (keys ``generator_channel``, ``scope_current_channel``, ``scope_voltage_channel``).
DEFAULT_WIRING = {"generator_channel": 1, "scope_current_channel": 1, "scope_voltage_channel": 2}


class RangeExceededError(RuntimeError):
    """A recorded signal reached the edge of the scope screen, so its mean would be wrong."""


@dataclass(frozen=True)
class AcquisitionSettings:
    """Scope ranges and capture margins of a run (currents in amperes, times in seconds)."""

    read_current_max_a: float = 1e-7
    pulse_current_max_a: float = 2e-5
    capture_margin_s: float = 2e-5


@dataclass
class ReadResult:
    """One read: mean voltage and current over the read window, and the record itself."""

    start_time_s: float
    mid_time_s: float
    voltage_v: float
    current_a: float
    conductance_s: float
    waveforms: dict | None


@dataclass
class PulseResult:
    """One pulse train: its end time on the bench clock, its energy and the capture."""

    end_time_s: float
    energy_j: float
    waveform_start_s: float
    waveforms: dict | None


@dataclass
class _ScopeSetup:
    """The last scope configuration sent, so unchanged settings are not sent again."""

    values: dict = field(default_factory=dict)


class BenchActions:
    """Drives the instruments of one bench for one run.

    It remembers the settings it sent, so that repeated reads and pulses with the same
    settings send only the commands that acquire and read data.
    """

    def __init__(self, bench, settings: AcquisitionSettings, keep_waveforms: bool = True):
        self.bench = bench
        self.settings = settings
        self.keep_waveforms = keep_waveforms
        self._scope = _ScopeSetup()
        self._generator: dict = {}
        # (read voltage, window) of the read settings last sent; None after other settings.
        self._read_scope_key: tuple | None = None
        wiring = {key: int(bench.description.get(key, value)) for key, value in DEFAULT_WIRING.items()}
        self.generator_channel = wiring["generator_channel"]
        self.current_channel = wiring["scope_current_channel"]
        self.voltage_channel = wiring["scope_voltage_channel"]

    # -- preparation ------------------------------------------------------------------------

    def check_ranges(self) -> None:
        """Raise RangeExceededError if the amplifier overloads within the expected currents."""
        amplifier = self.bench.amplifier
        gain = amplifier.gain_v_per_a
        swing = amplifier.output_swing_v
        for name, current_a in (
            ("read_current_max_a", self.settings.read_current_max_a),
            ("pulse_current_max_a", self.settings.pulse_current_max_a),
        ):
            if current_a * gain > swing:
                raise RangeExceededError(
                    f"the amplifier at {gain:.0e} V/A saturates at {swing / gain:g} A "
                    f"(output swing {swing:g} V), below {name} = {current_a:g} A; set a lower "
                    f"gain in the bench file or a smaller {name}"
                )

    def prepare(self, current_limit_a: float, use_scope: bool = True) -> None:
        """Set the SMU compliance at 0 V and, if used, the scope inputs.

        The generator output is turned off, because the pre-flight check counts on it
        adding 0 V outside pulses. The SMU output stays as it is (off after a shutdown)
        until the plan's first level.
        """
        getattr(self.bench.generator, f"ch_{self.generator_channel}").output = False
        smu = self.bench.smu
        smu.source_voltage_v = 0.0
        smu.current_limit_a = current_limit_a
        self._scope = _ScopeSetup()
        self._generator = {}
        self._read_scope_key = None
        if not use_scope:
            return

        scope = self.bench.scope
        current_input = _scope_channel(scope, self.current_channel)
        voltage_input = _scope_channel(scope, self.voltage_channel)
        with scope.settings_batch():
            current_input.state = True
            voltage_input.state = True
            current_input.coupling = "DC"
            voltage_input.coupling = "DCLimit"
            for channel in (current_input, voltage_input):
                channel.offset = 0.0
                channel.position = 0.0
            scope.trigger_slope = "POS"

    # -- SMU --------------------------------------------------------------------------------

    def set_smu_level(self, voltage_v: float, turn_on: bool) -> None:
        """Set the SMU level; turn its output on if ``turn_on``."""
        smu = self.bench.smu
        smu.source_voltage_v = voltage_v
        if turn_on:
            smu.output_enabled = True

    def sweep(self, step: Sweep) -> dict:
        """Run one SMU LIST sweep; return its arrays with ``time_s`` from the sweep start."""
        return self.bench.smu.sweep(list(step.voltages_v), step.aperture_s, step.source_delay_s)

    # -- reads ------------------------------------------------------------------------------

    def read(self, read_voltage_v: float, window_s: float, level_v: float, settle_s: float) -> ReadResult:
        """Read the conductance at ``read_voltage_v``, then return the SMU to ``level_v``."""
        bench = self.bench
        self._configure_scope_for_read(read_voltage_v, window_s)
        stepped = read_voltage_v != level_v
        if stepped:
            bench.smu.source_voltage_v = read_voltage_v
            if settle_s > 0:
                bench.clock.sleep(settle_s)

        bench.scope.single_acquisition(window_s + ACQUISITION_TIMEOUT_MARGIN_S)
        end_s = bench.clock.now()
        if stepped:
            bench.smu.source_voltage_v = level_v
        (time_s, current_v), (_, voltage_v) = bench.scope.read_waveforms(
            (self.current_channel, self.voltage_channel)
        )

        self._check_clipping(current_v, self.current_channel, "read current", "read_current_max_a")
        self._check_clipping(voltage_v, self.voltage_channel, "read voltage", "read_voltage_v")
        self._check_overload_line()
        current_a = np.asarray(bench.amplifier.current_a(current_v), dtype=float)
        voltage_v = np.asarray(voltage_v, dtype=float)

        trigger_s = end_s - float(time_s[-1])
        mean_current_a = _mean(current_a)
        mean_voltage_v = _mean(voltage_v)
        conductance = mean_current_a / mean_voltage_v if mean_voltage_v != 0 else math.nan
        return ReadResult(
            start_time_s=trigger_s + float(time_s[0]),
            mid_time_s=trigger_s + 0.5 * (float(time_s[0]) + float(time_s[-1])),
            voltage_v=mean_voltage_v,
            current_a=mean_current_a,
            conductance_s=conductance,
            waveforms=self._traces(time_s, voltage_v, current_a),
        )

    # -- pulses -----------------------------------------------------------------------------

    def fire(self, step: PulseTrain, smu_level_v: float, generator_v: float) -> PulseResult:
        """Fire one pulse train of ``generator_v`` above the SMU level, captured if the step requests it."""
        bench = self.bench
        self._configure_generator(step, generator_v)
        if not step.capture:
            start_s = bench.clock.now()
            bench.generator.trigger()
            end_s = start_s + step.duration_s
            _wait_until(bench.clock, end_s)
            return PulseResult(end_s, math.nan, start_s, None)

        window_s = self._configure_scope_for_pulse(step, smu_level_v, generator_v)
        bench.scope.arm()
        bench.clock.sleep(ARM_DELAY_S)
        bench.generator.trigger()
        bench.scope.wait_for_acquisition(window_s + step.duration_s + ACQUISITION_TIMEOUT_MARGIN_S)
        end_s = bench.clock.now()
        (time_s, current_v), (_, voltage_v) = bench.scope.read_waveforms(
            (self.current_channel, self.voltage_channel)
        )

        self._check_clipping(current_v, self.current_channel, "pulse current", "pulse_current_max_a")
        self._check_clipping(voltage_v, self.voltage_channel, "pulse voltage", "the bench voltage limits")
        self._check_overload_line()
        current_a = np.asarray(bench.amplifier.current_a(current_v), dtype=float)
        voltage_v = np.asarray(voltage_v, dtype=float)
        time_s = np.asarray(time_s, dtype=float)

        trigger_s = end_s - float(time_s[-1])
        threshold_v = smu_level_v + generator_v / 2
        on = voltage_v > threshold_v
        if not on.any():
            raise RangeExceededError(
                f"the pulse of {step.amplitude_v:g} V was not seen on scope channel "
                f"{self.voltage_channel}: no sample above {threshold_v:g} V; check the wiring"
            )
        dt_s = float(time_s[1] - time_s[0]) if time_s.size > 1 else step.width_s
        energy_j = float(np.sum(voltage_v[on] * current_a[on]) * dt_s)
        last_on = int(np.flatnonzero(on)[-1])
        pulse_end_s = trigger_s + float(time_s[last_on]) + dt_s
        return PulseResult(
            end_time_s=pulse_end_s,
            energy_j=energy_j,
            waveform_start_s=trigger_s + float(time_s[0]),
            waveforms=self._traces(time_s, voltage_v, current_a),
        )

    # -- configuration helpers -------------------------------------------------------------

    def _configure_generator(self, step: PulseTrain, generator_v: float) -> None:
        """Set up a BUS-triggered burst of rectangular pulses from 0 V to ``generator_v``.

        The output stays on between bursts and must rest at the low level, 0 V, there.
        """
        # NOTE: the simulated 33500B rests at the low level between pulse bursts. Check on
        # the real instrument (with a scope on the output) before the first measurement
        # that a triggered PULS burst also idles at its low level and not at another one.
        generator = self.bench.generator
        with generator.settings_batch():
            self._send_generator_settings(getattr(generator, f"ch_{self.generator_channel}"),
                                          step, generator_v)

    def _send_generator_settings(self, channel, step: PulseTrain, generator_v: float) -> None:
        """Send the pulse settings that differ from the last ones sent."""
        cache = self._generator
        period_s = step.period_s if step.count > 1 else 2 * step.width_s

        if cache.get("function") != "PULS":
            channel.function = "PULS"
            channel.burst_mode = "TRIG"
            channel.trigger_source = "BUS"
            cache["function"] = "PULS"
        if cache.get("levels") != (0.0, generator_v):
            channel.set_pulse_levels_v(0.0, generator_v)
            cache["levels"] = (0.0, generator_v)
        if cache.get("timing") != (step.width_s, period_s):
            # The generator rejects a width that is not shorter than the period, so the order
            # keeps width < period at every step. A period longer than the present width can
            # be set first. Otherwise the new width goes first, because it is shorter than
            # the new period and hence than the present width and period.
            present_width_s = cache["timing"][0] if "timing" in cache else channel.pulse_width
            if period_s > present_width_s:
                channel.pulse_period = period_s
                channel.pulse_width = step.width_s
            else:
                channel.pulse_width = step.width_s
                channel.pulse_period = period_s
            cache["timing"] = (step.width_s, period_s)
        if cache.get("count") != step.count:
            channel.burst_ncycles = step.count
            cache["count"] = step.count
        if not cache.get("burst"):
            channel.burst_state = True
            cache["burst"] = True
        if not cache.get("output"):
            channel.output = True
            cache["output"] = True

    def _configure_scope_for_read(self, read_voltage_v: float, window_s: float) -> None:
        key = (read_voltage_v, window_s)
        if key == self._read_scope_key:
            return  # the scope still has these settings, and _set_scope would send nothing
        current_scale = self.bench.amplifier.gain_v_per_a * self.settings.read_current_max_a / USED_DIVISIONS
        voltage_scale = 2.0 * abs(read_voltage_v) / USED_DIVISIONS
        sample_rate = READ_RECORD_POINTS / window_s
        self._set_scope(
            current_scale=current_scale,
            voltage_scale=voltage_scale,
            timebase_scale=window_s / 10.0,
            timebase_reference=0.0,
            sample_rate=sample_rate,
            trigger_mode="AUTO",
        )
        self._read_scope_key = key

    def _configure_scope_for_pulse(self, step: PulseTrain, smu_level_v: float, generator_v: float) -> float:
        """Set the scope for a triggered capture around the train; return the record length in s."""
        limits = self.bench.limits
        self._read_scope_key = None
        margin_s = self.settings.capture_margin_s
        window_s = step.duration_s + 2 * margin_s
        sample_rate = PULSE_SAMPLES_PER_WIDTH / step.width_s
        if sample_rate * window_s > MAX_RECORD_POINTS:
            raise RangeExceededError(
                f"a capture of {window_s:g} s at {sample_rate:g} Sa/s needs more than "
                f"{MAX_RECORD_POINTS} samples; capture shorter trains"
            )
        self._set_scope(
            current_scale=self.bench.amplifier.gain_v_per_a * self.settings.pulse_current_max_a / USED_DIVISIONS,
            voltage_scale=max(abs(limits.max_voltage_v), abs(limits.min_voltage_v)) / USED_DIVISIONS,
            timebase_scale=window_s / 10.0,
            timebase_reference=100.0 * margin_s / window_s,
            sample_rate=sample_rate,
            trigger_mode="NORM",
            trigger_source=f"CHAN{self.voltage_channel}",
            trigger_level=smu_level_v + generator_v / 2,
        )
        return window_s

    def _set_scope(self, **requested) -> None:
        """Send the scope settings in ``requested`` that differ from the last ones sent."""
        scope = self.bench.scope
        sent = self._scope.values

        def changed(name: str) -> bool:
            return name in requested and sent.get(name) != requested[name]

        for name in ("current_scale", "voltage_scale"):
            if name in requested:
                requested[name] = max(requested[name], MIN_SCOPE_SCALE_V_PER_DIV)
        if all(not changed(name) for name in requested):
            return
        with scope.settings_batch():
            self._send_scope_settings(requested, changed)
        sent.update(requested)

    def _send_scope_settings(self, requested: dict, changed) -> None:
        scope = self.bench.scope
        if changed("current_scale"):
            _scope_channel(scope, self.current_channel).scale = requested["current_scale"]
        if changed("voltage_scale"):
            _scope_channel(scope, self.voltage_channel).scale = requested["voltage_scale"]
        if changed("sample_rate") or changed("timebase_scale"):
            scope.timebase_scale = requested["timebase_scale"]
            scope.sample_rate = requested["sample_rate"]
        if changed("timebase_reference"):
            scope.timebase_reference = requested["timebase_reference"]
            scope.timebase_position = 0.0
        if changed("trigger_source"):
            scope.trigger_source = requested["trigger_source"]
        if changed("trigger_level"):
            _scope_channel(scope, self.voltage_channel).trigger_level = requested["trigger_level"]
        if changed("trigger_mode"):
            scope.trigger_mode = requested["trigger_mode"]

    # -- checks -----------------------------------------------------------------------------

    def _check_clipping(self, samples_v, channel: int, signal_name: str, fix: str) -> None:
        scale = self._scope.values["current_scale" if channel == self.current_channel else "voltage_scale"]
        edge_v = (SCREEN_HALF_DIVISIONS - CLIP_MARGIN_DIVISIONS) * scale
        samples = np.asarray(samples_v, dtype=float)
        if samples.size == 0 or not np.abs(samples).max() >= edge_v:
            return
        clipped = np.abs(samples) >= edge_v
        if clipped.any():
            index = int(np.argmax(clipped))
            raise RangeExceededError(
                f"{signal_name} reached the edge of the scope range on channel {channel} "
                f"(sample {index} is {samples[index]:g} V, range +-{SCREEN_HALF_DIVISIONS * scale:g} V); "
                f"raise {fix}"
            )

    def _check_overload_line(self) -> None:
        if self.bench.amplifier.overload_line_active():
            raise RangeExceededError(
                f"the amplifier reports an overload at {self.bench.amplifier.gain_v_per_a:.0e} V/A; "
                "lower the gain in the bench file"
            )

    def _traces(self, time_s, voltage_v, current_a) -> dict | None:
        if not self.keep_waveforms:
            return None
        return {
            "time_s": np.asarray(time_s, dtype=np.float64),
            "voltage_v": np.asarray(voltage_v, dtype=np.float32),
            "current_a": np.asarray(current_a, dtype=np.float32),
        }


def _mean(values: np.ndarray) -> float:
    """Return the mean of a non-empty float64 array: the same sum and division as np.mean."""
    return float(values.sum()) / values.size


def _wait_until(clock, deadline_s: float) -> None:
    remaining_s = deadline_s - clock.now()
    if remaining_s > 0:
        clock.sleep(remaining_s)


def _scope_channel(scope, number: int):
    return getattr(scope, f"ch_{number}")
