"""The simulated bench's physical world: wiring, virtual time and the device under test.

Wiring, as in the published setup: SMU and generator channel 1 both drive the Pt
electrode, so the device voltage is the SMU output (while enabled) plus the generator's
open-circuit output (while on). The device current flows from Ti into the current
amplifier, whose output goes to scope channel 1. Scope channel 2 monitors the Pt voltage.

Time engine. Time advances only through ``advance_to`` (called by ``VirtualClock.sleep``,
SMU acquisitions, generator bursts and scope waits). The interval up to the target time is
cut at every point where a source changes (an SMU sweep step, a burst start or end) or the
scope has an event (auto trigger, end of a capture window). Each piece is either

* constant: the voltage does not change, so the device is advanced lazily with the
  closed-form ``MemristorModel.hold``. Constant pieces are queued ("deferred") and only
  turned into samples where a recorder needs them: the scope (its pre-trigger history
  and capture window) or a running SMU acquisition (its points);
* sampled: a generator waveform is running, so the voltage is sampled finely enough to
  resolve it and the device is advanced with ``MemristorModel.apply``.

Realised samples are kept as ``Block`` objects for as long as a recorder needs them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim_backend.virtual_clock import VirtualClock

log = logging.getLogger(__name__)

#: Largest number of samples processed in one piece; longer running waveforms are chunked.
MAX_SAMPLES_PER_PIECE = 2_000_000
#: Largest number of samples a constant piece is realised with for a recorder.
MAX_SAMPLES_PER_RECORDING = 4_000_000
#: Largest number of samples one wait may need before the simulator rejects it.
MAX_SAMPLES_PER_WAIT = 200_000_000
#: Deferred constant pieces kept before the oldest are committed to the device.
MAX_DEFERRED_PIECES = 256


class SimulationLimitError(RuntimeError):
    """A request that the simulator cannot compute in reasonable time or memory."""


@dataclass
class Block:
    """Realised samples: sample k covers ``[t0_s + k dt_s, t0_s + (k + 1) dt_s)``."""

    t0_s: float
    dt_s: float
    voltage_v: np.ndarray
    current_a: np.ndarray
    amplifier_v: np.ndarray

    @property
    def end_s(self) -> float:
        """End of the last sample interval, in seconds."""
        return self.t0_s + self.dt_s * self.voltage_v.size

    def times_s(self) -> np.ndarray:
        """Start time of every sample interval."""
        return self.t0_s + self.dt_s * np.arange(self.voltage_v.size)


class Segment(NamedTuple):
    """Output of a source from a given time until ``until_s``.

    The output is a constant ``level_v``, or a waveform that ``sampler(t0_s, count, dt_s)``
    returns as interval means for absolute start times ``t0_s + k * dt_s``. (A named tuple,
    because the time engine creates several per command.)
    """

    until_s: float
    level_v: float = 0.0
    sampler: Callable[[float, int, float], np.ndarray] | None = None
    dt_s: float = math.inf


class Interest(NamedTuple):
    """A time window in which a recorder needs samples at most ``dt_s`` apart."""

    start_s: float
    end_s: float
    dt_s: float


class SimulatedWorld:
    """Device, wiring and time of one simulated bench.

    ``generator``, ``smu``, ``scope`` and ``amplifier`` are the simulated instruments;
    the factory attaches them with ``attach`` after building them around this world.
    """

    def __init__(self, device, clock: VirtualClock):
        self._device = device
        self.clock = clock
        self.generator = None
        self.smu = None
        self.scope = None
        self.amplifier = None
        self.faults = None
        self.max_device_voltage_v = 0.0
        self.min_device_voltage_v = 0.0
        self._deferred: list[tuple[float, float, float]] = []
        self._blocks: list[Block] = []
        # Constant pieces committed with ``hold`` that a later pre-trigger window may reach:
        # one noise-free sample each (chord conductance at the end of the piece).
        self._held: list[Block] = []
        # Samples of constant pieces waiting for one joint ``apply``: (start, dt, parts, count).
        self._pending_samples: list[tuple[float, float, list[np.ndarray], int]] = []
        self._last_voltage_v = 0.0
        self._amplifier_state: tuple[float, float] | None = None
        clock.bind(self._sleep)

    @property
    def device(self):
        """The device model, brought up to the present time first (so its state is current)."""
        self._realise_deferred()
        return self._device

    def attach(self, generator, smu, scope, amplifier, faults) -> None:
        """Connect the simulated instruments (see the module docstring for the wiring)."""
        self.generator = generator
        self.smu = smu
        self.scope = scope
        self.amplifier = amplifier
        self.faults = faults

    # ------------------------------------------------------------------ sources

    def device_segment(self, time_s: float) -> Segment:
        """Return the device voltage from ``time_s`` on: SMU output plus generator channel 1."""
        smu_level_v, smu_until_s = self.smu.output_at(time_s)
        generator = self.generator.device_segment(time_s)
        until_s = min(smu_until_s, generator.until_s)
        if generator.sampler is None:
            return Segment(until_s, level_v=smu_level_v + generator.level_v)

        def sampler(t0_s: float, count: int, dt_s: float) -> np.ndarray:
            return smu_level_v + generator.sampler(t0_s, count, dt_s)

        return Segment(until_s, sampler=sampler, dt_s=generator.dt_s)

    def present_voltage_v(self) -> float:
        """Return the device voltage now, as far as it is constant (else the latest sample)."""
        segment = self.device_segment(self.clock.now())
        if segment.sampler is None:
            return segment.level_v
        return self._last_voltage_v

    # ------------------------------------------------------------------ time

    def _sleep(self, duration_s: float) -> None:
        self.advance_to(self.clock.now() + duration_s)

    def advance_to(self, end_s: float, stop: Callable[[], bool] | None = None) -> None:
        """Let time run until ``end_s`` (or until ``stop()`` turns true after a piece)."""
        clock = self.clock
        now_s = clock.now()
        if now_s >= end_s:
            return
        segment = self.device_segment(now_s)
        self._check_wait_cost(segment, now_s, end_s)
        guard = 0
        while now_s < end_s:
            if stop is not None and stop():
                return
            if segment is None:
                segment = self.device_segment(now_s)
            boundary_s = min(end_s, segment.until_s, self.scope.next_event_s(now_s))
            if boundary_s <= now_s:
                # An event falls exactly on now: handle it and look again.
                self._handle_scope_events()
                guard += 1
                if guard > 1000:
                    raise RuntimeError(f"simulated time is stuck at {now_s} s")
                segment = None
                continue
            guard = 0
            if segment.sampler is None:
                self._run_constant(segment.level_v, now_s, boundary_s)
            else:
                self._run_sampled(segment, now_s, boundary_s)
            self._handle_scope_events()
            segment = None
            now_s = clock.now()

    def _check_wait_cost(self, segment: Segment, now_s: float, end_s: float) -> None:
        """Reject a wait whose running waveform would need more samples than the simulator allows."""
        if segment.sampler is None or end_s - now_s <= 0:
            return
        samples = (min(end_s, segment.until_s) - now_s) / segment.dt_s
        if samples > MAX_SAMPLES_PER_WAIT:
            raise SimulationLimitError(
                f"waiting {end_s - now_s:g} s with the generator running a waveform that needs "
                f"{segment.dt_s:g} s samples would take {samples:.3g} samples (limit "
                f"{MAX_SAMPLES_PER_WAIT:.0e}); use burst mode or turn the output off while waiting"
            )

    def _run_constant(self, voltage_v: float, start_s: float, end_s: float) -> None:
        if voltage_v != self._last_voltage_v:
            self.scope.on_voltage_step(start_s, self._last_voltage_v, voltage_v)
        self._deferred.append((start_s, end_s - start_s, voltage_v))
        self._last_voltage_v = voltage_v
        self._note_extremes(voltage_v, voltage_v)
        self.clock.advance_to(end_s)
        if len(self._deferred) > MAX_DEFERRED_PIECES:
            self._commit_old_deferred()

    def _run_sampled(self, segment: Segment, start_s: float, end_s: float) -> None:
        dt_s = segment.dt_s
        recording_dt_s = self.scope.sample_interval_s() if self.scope.is_recording() else math.inf
        if recording_dt_s < dt_s and (end_s - start_s) / recording_dt_s <= MAX_SAMPLES_PER_PIECE:
            dt_s = recording_dt_s

        count = max(1, math.ceil((end_s - start_s) / dt_s - 1e-6))
        dt_s = (end_s - start_s) / count
        chunk_start_s = start_s
        for first in range(0, count, MAX_SAMPLES_PER_PIECE):
            chunk = min(MAX_SAMPLES_PER_PIECE, count - first)
            chunk_end_s = end_s if first + chunk == count else start_s + (first + chunk) * dt_s
            voltage = segment.sampler(chunk_start_s, chunk, dt_s)
            self._play(voltage, chunk_start_s, dt_s)
            self.clock.advance_to(chunk_end_s)
            self._handle_scope_events()
            chunk_start_s = chunk_end_s

    def _play(self, voltage: np.ndarray, start_s: float, dt_s: float) -> None:
        """Apply sampled voltages to the device and hand the samples to the recorders."""
        self._realise_deferred()
        previous_amplifier_v = self._amplifier_output_before(start_s)
        current = self._device.apply(voltage, dt_s)
        block = Block(start_s, dt_s, voltage, current, self._amplify(current, start_s, dt_s))
        self._note_extremes(float(voltage.min()), float(voltage.max()))
        sync_times = self.generator.sync_times(start_s, block.end_s)
        self.scope.inspect_block(block, self._last_voltage_v, previous_amplifier_v, sync_times)
        self._last_voltage_v = float(voltage[-1])
        self._keep(block)

    # ------------------------------------------------------------------ deferred pieces

    def _interests(self) -> list[Interest]:
        interests = []
        for recorder in (self.scope, self.smu):
            interest = recorder.interest(self.clock.now())
            if interest is not None:
                interests.append(interest)
        return interests

    def realise(self) -> None:
        """Bring the device up to the present time, sampling what the recorders need."""
        self._realise_deferred()

    def _realise_deferred(self) -> None:
        if not self._deferred:
            return
        interests = self._interests()
        # The clock does not move while the pieces are realised, so the horizon stays the same.
        horizon_s = self._history_horizon_s(interests)
        pieces, self._deferred = self._deferred, []
        for start_s, duration_s, voltage_v in pieces:
            self._realise_piece(start_s, start_s + duration_s, voltage_v, interests, horizon_s)
        self._flush_samples()

    def _commit_old_deferred(self) -> None:
        """Hold the oldest deferred pieces that no recorder can need any more."""
        interests = self._interests()
        horizon_s = min((interest.start_s for interest in interests), default=math.inf)
        history_horizon_s = self._history_horizon_s(interests)
        keep_from = 0
        for index, (start_s, duration_s, voltage_v) in enumerate(self._deferred):
            if start_s + duration_s > horizon_s or index >= len(self._deferred) - 1:
                break
            self._hold(start_s, start_s + duration_s, voltage_v, history_horizon_s)
            keep_from = index + 1
        self._deferred = self._deferred[keep_from:]

    def _realise_piece(self, start_s: float, end_s: float, voltage_v: float,
                       interests: list[Interest], horizon_s: float) -> None:
        """Advance the device over one constant piece: samples where needed, hold elsewhere.

        ``horizon_s`` is ``_history_horizon_s()`` at the present time.
        """
        for interest in interests:
            if interest.end_s > start_s and interest.start_s < end_s:
                break
        else:  # no recorder needs samples of this piece
            self._hold(start_s, end_s, voltage_v, horizon_s)
            return
        cuts = {start_s, end_s}
        for interest in interests:
            for edge in (interest.start_s, interest.end_s):
                if start_s < edge < end_s:
                    cuts.add(edge)
        edges = sorted(cuts)
        for left_s, right_s in itertools.pairwise(edges):
            middle_s = 0.5 * (left_s + right_s)
            dt_s = min(
                (interest.dt_s for interest in interests
                 if interest.start_s <= middle_s < interest.end_s),
                default=None,
            )
            if dt_s is None:
                self._hold(left_s, right_s, voltage_v, horizon_s)
                continue
            span_s = right_s - left_s
            count = max(1, math.ceil(span_s / dt_s - 1e-6))
            count = min(count, MAX_SAMPLES_PER_RECORDING)
            # The recorder's own interval where it divides the piece (to float round-off),
            # so that a scope record falls exactly on the samples.
            if abs(count * dt_s - span_s) > 1e-9 * span_s:
                dt_s = span_s / count
            self._queue_samples(left_s, dt_s, voltage_v, count)

    def _queue_samples(self, start_s: float, dt_s: float, voltage_v: float, count: int) -> None:
        """Queue ``count`` samples at ``voltage_v`` of a constant piece for the device.

        Contiguous samples with the same interval share one ``apply`` call, so an SMU
        sweep of many points costs one call instead of one per point.
        """
        pending = self._pending_samples
        if pending:
            last_start_s, last_dt_s, parts, total = pending[-1]
            contiguous = math.isclose(last_start_s + last_dt_s * total, start_s, rel_tol=1e-12, abs_tol=1e-15)
            fits = total + count <= MAX_SAMPLES_PER_PIECE
            if contiguous and fits and math.isclose(last_dt_s, dt_s, rel_tol=1e-9):
                parts.append((voltage_v, count))
                pending[-1] = (last_start_s, last_dt_s, parts, total + count)
                return
        self._flush_samples()
        self._pending_samples.append((start_s, dt_s, [(voltage_v, count)], count))

    def _flush_samples(self) -> None:
        """Apply the queued constant-piece samples to the device and keep them as blocks."""
        pending, self._pending_samples = self._pending_samples, []
        for start_s, dt_s, parts, total in pending:
            if len(parts) == 1:
                ((voltage_v, count),) = parts
                current = self._device.apply_level(voltage_v, count, dt_s)
                voltage = np.full(count, voltage_v)
            else:
                voltage = np.concatenate([np.full(count, level_v) for level_v, count in parts])
                current = self._device.apply(voltage, dt_s)
            self._keep(Block(start_s, dt_s, voltage, current, self._amplify(current, start_s, dt_s)))

    def _hold(self, start_s: float, end_s: float, voltage_v: float, horizon_s: float) -> None:
        """Advance the device in closed form and remember the piece if a pre-trigger may need it.

        ``horizon_s`` is ``_history_horizon_s()`` at the present time.
        """
        self._flush_samples()
        self._device.hold(voltage_v, end_s - start_s)
        self._amplifier_state = None
        if end_s <= horizon_s:
            return
        current_a = self._device.conductance_s(voltage_v) * voltage_v if voltage_v else 0.0
        amplifier_v = -self.amplifier.gain_v_per_a * current_a
        self._held.append(Block(start_s, end_s - start_s, np.array([voltage_v]),
                                np.array([current_a]), np.array([amplifier_v])))
        self._trim(horizon_s)

    # ------------------------------------------------------------------ amplifier and blocks

    def _amplifier_output_before(self, start_s: float) -> float:
        """Return the amplifier output just before ``start_s`` (noise free)."""
        if self._amplifier_state is not None and math.isclose(
            self._amplifier_state[0], start_s, rel_tol=0.0, abs_tol=1e-12
        ):
            return self._amplifier_state[1]
        level_v = self._last_voltage_v
        current_a = self._device.conductance_s(level_v) * level_v if level_v else 0.0
        return -self.amplifier.gain_v_per_a * current_a

    def _amplify(self, current: np.ndarray, start_s: float, dt_s: float) -> np.ndarray:
        """Return the amplifier output for contiguous samples, continuing its filter state."""
        previous = None
        if self._amplifier_state is not None:
            end_s, output_v = self._amplifier_state
            if math.isclose(end_s, start_s, rel_tol=0.0, abs_tol=1e-9 * max(dt_s, 1e-12) + 1e-15):
                previous = output_v
        output = self.amplifier.respond(current, dt_s, previous)
        self._amplifier_state = (start_s + dt_s * current.size, float(output[-1]))
        return output

    def _history_horizon_s(self, interests: list[Interest] | None = None) -> float:
        """Return the earliest time whose samples a recorder may still need.

        That is the start of every recorder's interest (``interests``, or the present
        ones), and the pre-trigger length of the scope's present settings before now (a
        scope armed later may reach back so far).
        """
        horizon_s = self.clock.now() - self.scope.pre_trigger_s()
        for interest in self._interests() if interests is None else interests:
            horizon_s = min(horizon_s, interest.start_s)
        return horizon_s

    def _keep(self, block: Block) -> None:
        """Store a block and drop the samples that no recorder can need any more."""
        self._blocks.append(block)
        self._trim()

    def _trim(self, horizon_s: float | None = None) -> None:
        if horizon_s is None:
            horizon_s = self._history_horizon_s()
        while self._blocks and self._blocks[0].end_s <= horizon_s:
            self._blocks.pop(0)
        while self._held and self._held[0].end_s <= horizon_s:
            self._held.pop(0)

    def blocks_between(self, start_s: float, end_s: float) -> list[Block]:
        """Return the kept blocks of samples that overlap ``[start_s, end_s)``, in time order."""
        return [block for block in self._blocks if block.end_s > start_s and block.t0_s < end_s]

    def history_between(self, start_s: float, end_s: float) -> list[Block]:
        """Return kept sample blocks and remembered held pieces overlapping the window, in time order.

        Held pieces are one noise-free sample each: a pre-trigger window that reaches back
        before the scope was armed, into a time the device was advanced in closed form,
        shows the level and the chord-conductance current of that piece.
        """
        blocks = self.blocks_between(start_s, end_s)
        blocks += [block for block in self._held if block.end_s > start_s and block.t0_s < end_s]
        return sorted(blocks, key=lambda block: block.t0_s)

    def _note_extremes(self, low_v: float, high_v: float) -> None:
        self.max_device_voltage_v = max(self.max_device_voltage_v, high_v)
        self.min_device_voltage_v = min(self.min_device_voltage_v, low_v)

    # ------------------------------------------------------------------ scope events

    def _handle_scope_events(self) -> None:
        """Fire the scope's auto trigger and complete its capture when their time has come."""
        now_s = self.clock.now()
        self.scope.handle_time(now_s)
        if self.scope.capture_due(now_s):
            self._realise_deferred()
            self.scope.complete_capture(self)
