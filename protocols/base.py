"""The base of every protocol: a PyMeasure ``Procedure`` that runs a checked plan on a bench.

A protocol subclass defines its parameters, its ``DATA_COLUMNS`` and ``build_plan()``.
The runner (``protocols.runner``) then:

1. builds the plan and checks it against the bench (``prepare``) before anything is sent
   to an instrument;
2. writes the results header, calls ``startup()`` (instrument settings, every output off)
   and ``execute()``, which performs the steps one by one, checks ``should_stop()``
   between steps and inside waits, and emits rows and progress;
3. always calls ``finish()`` and ``shutdown()``; the latter puts every output at 0 V and off.

Rows are emitted with ``emit("results", row)``, as with PyMeasure's ``Worker``. Baseline
reads taken before a pulse are held back until the pulse has happened, so that their
``Time since pulse (s)`` (negative) and ``Pulse energy (J)`` are known. They are written
right after the pulse, or with those columns empty if the run ends before it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import ClassVar

from pymeasure.experiment import Metadata, Procedure

from protocols.actions import AcquisitionSettings, BenchActions
from protocols.plan import Hold, Note, PulseTrain, Read, SetLevel, Step, Sweep
from protocols.preflight import PlanSummary, check_plan, generator_pulse_level_v

log = logging.getLogger(__name__)

#: Maximum single sleep on the bench clock during a wait, so a stop request takes effect within it.
#: A clock whose ``sleeps_in_real_time`` is False (the simulated bench's virtual clock) sleeps
#: a whole wait at once, because its sleeps take no wall time to interrupt.
STOP_CHECK_INTERVAL_S = 0.5


class StopRequested(Exception):
    """The user asked the run to stop (first Ctrl+C, or a stop request from the caller)."""


@dataclass
class _ExecutionState:
    """State of the bench as the executor tracks it while it runs a plan.

    Times are bench-clock seconds from the start of the run.
    """

    start_time_s: float = 0.0
    smu_level_v: float = 0.0
    smu_on: bool = False
    pulse_end_s: float | None = None
    pulse_energy_j: float = math.nan
    pending_rows: list = field(default_factory=list)


class BenchProcedure(Procedure):
    """A protocol run on an ``instruments.bench.Bench`` from a pre-checked plan."""

    #: Name of the protocol on the command line and in campaign files.
    PROTOCOL = ""
    #: False when the missing part of an interrupted run cannot be measured by a later run,
    #: because the device state it needs is lost (``bias-decay``).
    RESUMABLE = True
    DATA_COLUMNS: ClassVar[list[str]] = []

    protocol_name = Metadata("Protocol")
    software_version = Metadata("Software version")
    bench_description = Metadata("Bench")
    seed = Metadata("Seed")
    started_utc = Metadata("Start time (UTC)")
    resumable = Metadata("Resumable")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bench = None
        self.keep_waveforms = False
        self.plan: list[Step] = []
        self.summary: PlanSummary | None = None
        self.shutdown_failures: list[tuple[str, BaseException]] = []
        self.actions: BenchActions | None = None
        self._state = _ExecutionState()

    # -- what a protocol defines ----------------------------------------------------------

    def build_plan(self) -> list[Step]:
        """Return the steps of this run, from the parameters alone (no instrument access)."""
        raise NotImplementedError

    def current_limit_a(self) -> float:
        """Return the SMU current compliance of this run, in amperes."""
        return self.smu_current_limit_a

    def acquisition_settings(self) -> AcquisitionSettings | None:
        """Return the scope ranges of this run, or None when it does not use the scope."""
        return None

    # -- preparation ----------------------------------------------------------------------

    def prepare(self, bench) -> PlanSummary:
        """Build the plan and check it against the bench; raise PreflightError if it fails.

        Only reads settings (limits, amplifier gain): nothing is sent to an instrument.
        """
        self.refresh_parameters()
        self.bench = bench
        self.plan = self.build_plan()
        self.summary = check_plan(self.plan, bench.limits)
        bench.limits.check_current(self.current_limit_a(), "SMU current limit")
        self.actions = BenchActions(bench, self.acquisition_settings() or AcquisitionSettings())
        if self.acquisition_settings() is not None:
            self.actions.check_ranges()
        return self.summary

    def describe_run(self, bench_description: dict, version: str, seed, started_utc: str) -> None:
        """Set the metadata written into the results header."""
        self.protocol_name = self.PROTOCOL
        self.software_version = version
        self.bench_description = json.dumps(bench_description, sort_keys=True, default=str)
        self.seed = "none" if seed is None else str(seed)
        self.started_utc = started_utc
        self.resumable = "yes" if self.RESUMABLE else "no"

    # -- PyMeasure life cycle ---------------------------------------------------------------

    def startup(self):
        """Put the instruments in their measurement settings with every output off."""
        self._state = _ExecutionState(start_time_s=self.bench.clock.now())
        self.actions.keep_waveforms = self.keep_waveforms
        self.actions.prepare(self.current_limit_a(), use_scope=self.acquisition_settings() is not None)
        log.info("%s: bench %s prepared", self.PROTOCOL, self.bench.name)

    def execute(self):
        """Perform the plan step by step, checking for a stop request between steps."""
        total = len(self.plan)
        for index, step in enumerate(self.plan):
            self.check_stop()
            self.perform(step)
            self.emit("progress", 100.0 * (index + 1) / total)
        self.flush_pending_rows()

    def finish(self) -> None:
        """Write the rows still held back; the runner calls this on every exit path."""
        self.flush_pending_rows()

    def shutdown(self):
        """Put every output at 0 V and off; failures are kept in ``shutdown_failures``."""
        if self.bench is None:
            return
        self.shutdown_failures = self.bench.shutdown()
        self._state.smu_on = False

    # -- execution ----------------------------------------------------------------------------

    def check_stop(self) -> None:
        """Raise StopRequested if the user asked the run to stop."""
        if self.should_stop():
            raise StopRequested("stop requested")

    def elapsed_s(self) -> float:
        """Return the bench time since the start of the run, in seconds."""
        return self.bench.clock.now() - self._state.start_time_s

    def wait(self, duration_s: float) -> None:
        """Wait ``duration_s`` on the bench clock, checking for a stop request meanwhile."""
        clock = self.bench.clock
        interval_s = STOP_CHECK_INTERVAL_S if getattr(clock, "sleeps_in_real_time", True) else math.inf
        deadline_s = clock.now() + duration_s
        while True:
            remaining_s = deadline_s - clock.now()
            if remaining_s <= 0:
                return
            self.check_stop()
            clock.sleep(min(remaining_s, interval_s))

    def perform(self, step: Step) -> None:
        """Perform one plan step on the bench."""
        if isinstance(step, SetLevel):
            self.set_level(step.voltage_v)
        elif isinstance(step, Hold):
            self.set_level(step.voltage_v)
            self.wait(step.duration_s)
        elif isinstance(step, Sweep):
            self.perform_sweep(step)
        elif isinstance(step, PulseTrain):
            self.perform_pulse_train(step)
        elif isinstance(step, Read):
            self.perform_read(step)
        elif isinstance(step, Note):
            log.info("%s: %s", self.PROTOCOL, step.message)
        else:
            raise TypeError(f"unknown plan step {step!r}")

    def set_level(self, voltage_v: float) -> None:
        """Set the SMU level and turn its output on if it is off."""
        state = self._state
        if state.smu_on and voltage_v == state.smu_level_v:
            return
        self.actions.set_smu_level(voltage_v, turn_on=not state.smu_on)
        state.smu_level_v = voltage_v
        state.smu_on = True

    def perform_sweep(self, step: Sweep) -> None:
        """Run one SMU sweep and emit one row per point."""
        start_s = self.elapsed_s()
        data = self.actions.sweep(step)
        self._state.smu_level_v = step.voltages_v[-1]
        self._state.smu_on = True

        for time_s, voltage_v, current_a in zip(data["time_s"], data["voltage_v"], data["current_a"]):
            row = dict(step.tags)
            row["Time (s)"] = start_s + float(time_s)
            row["Voltage (V)"] = float(voltage_v)
            row["Current (A)"] = float(current_a)
            row["Conductance (S)"] = conductance_s(current_a, voltage_v)
            self.emit("results", row)

    def perform_pulse_train(self, step: PulseTrain) -> None:
        """Fire one pulse train; with capture, keep its energy and write the held-back rows."""
        state = self._state
        self.set_level(state.smu_level_v)
        generator_v = generator_pulse_level_v(step, state.smu_level_v)

        result = self.actions.fire(step, state.smu_level_v, generator_v)
        state.pulse_end_s = result.end_time_s - state.start_time_s
        state.pulse_energy_j = result.energy_j
        log.debug(
            "%s: %d pulse(s) of %g V x %g s ended at %.6f s, energy %g J",
            self.PROTOCOL, step.count, step.amplitude_v, step.width_s, state.pulse_end_s,
            result.energy_j,
        )

        if result.waveforms is not None:
            self.emit("waveform", {
                "group": waveform_group(step.tags), "kind": "pulse", "no_row": True,
                "start_time_s": result.waveform_start_s - state.start_time_s,
                "traces": result.waveforms,
            })
        self.flush_pending_rows(after_pulse=True)

    def perform_read(self, step: Read) -> None:
        """Take one read; emit its row, or hold it back if it is a baseline read."""
        state = self._state
        settle_s = step.settle_s if step.read_voltage_v != state.smu_level_v else 0.0
        if step.scheduled_since_pulse_s is not None:
            start_s = state.pulse_end_s + step.scheduled_since_pulse_s - step.window_s / 2
            self.wait(start_s - settle_s - self.elapsed_s())

        self.set_level(state.smu_level_v)
        result = self.actions.read(step.read_voltage_v, step.window_s, state.smu_level_v, settle_s)

        row = dict(step.tags)
        row["Time (s)"] = result.mid_time_s - state.start_time_s
        row["Voltage (V)"] = result.voltage_v
        row["Current (A)"] = result.current_a
        row["Conductance (S)"] = result.conductance_s
        if step.scheduled_since_pulse_s is not None:
            row["Scheduled time since pulse (s)"] = step.scheduled_since_pulse_s
        waveform = None
        if result.waveforms is not None:
            waveform = {
                "group": waveform_group(step.tags), "kind": "read",
                "start_time_s": result.start_time_s - state.start_time_s,
                "traces": result.waveforms,
            }

        if step.baseline:
            state.pending_rows.append((row, waveform))
            return
        self.add_pulse_columns(row)
        self.emit_row(row, waveform)

    def add_pulse_columns(self, row: dict) -> None:
        """Add the time since the last pulse train and its energy (NaN if it was not captured)."""
        state = self._state
        if state.pulse_end_s is None:
            return
        row["Time since pulse (s)"] = row["Time (s)"] - state.pulse_end_s
        row["Pulse energy (J)"] = state.pulse_energy_j

    def flush_pending_rows(self, after_pulse: bool = False) -> None:
        """Write the held-back baseline rows.

        ``after_pulse`` means the pulse train they belong to has just been fired, so the rows
        get its ``Time since pulse (s)`` and ``Pulse energy (J)``. Otherwise (the run ended
        before that pulse) those columns stay empty.
        """
        state = self._state
        pending, state.pending_rows = state.pending_rows, []
        for row, waveform in pending:
            if after_pulse:
                self.add_pulse_columns(row)
            self.emit_row(row, waveform)

    def emit_row(self, row: dict, waveform: dict | None) -> None:
        """Emit a row, preceded by the waveform it was derived from, if any."""
        if waveform is not None:
            self.emit("waveform", waveform)
        self.emit("results", row)


def conductance_s(current_a: float, voltage_v: float) -> float:
    """Return I / V in siemens, or NaN where the voltage is 0 V."""
    if voltage_v == 0:
        return math.nan
    return float(current_a) / float(voltage_v)


def waveform_group(tags) -> str:
    """Return a file-name-safe group name built from the tag values of a step."""
    parts = []
    for key, value in tags.items():
        name = re.sub(r"\s*\(.*\)", "", key).strip().lower().replace(" ", "-")
        parts.append(f"{name}-{value}")
    text = "_".join(parts) or "run"
    return re.sub(r"[^A-Za-z0-9._-]", "", text)
