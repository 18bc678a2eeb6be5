"""Run one protocol on a bench: pre-flight, results file, execution, shutdown, status.

This is a thin, synchronous equivalent of PyMeasure's ``Worker``. The Worker runs the
procedure in a second thread, where Ctrl+C (delivered to the main thread) cannot interrupt
an instrument wait, and it only opens a ZMQ publisher when given a port. Here the
procedure runs in the calling thread, no socket is ever opened, and the run ends in one of
three recorded states:

* ``completed``: every step of the plan ran;
* ``aborted``: the user stopped the run (Ctrl+C, or ``StopSignal.request``);
* ``failed``: an error ended the run, or the instruments could not all be shut down.

Ctrl+C: the first press requests a stop, which takes effect at the next step boundary or
within ``STOP_CHECK_INTERVAL_S`` of a wait. A second press interrupts at once. Either way
the outputs are shut down, the rows measured so far stay in the file and the status
trailer records ``aborted``. During shutdown and while the trailer is written, Ctrl+C
does not interrupt: it only requests a stop, which ends a campaign before its next step.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pymeasure.experiment import Procedure

from protocols.base import BenchProcedure, StopRequested
from protocols.preflight import PlanSummary
from protocols.results_file import (
    ABORTED,
    COMPLETED,
    FAILED,
    ResultsWriter,
    RunRecord,
    WaveformStore,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]


def software_version() -> str:
    """Return the installed memsyn version, or a marker when running from an uninstalled tree."""
    try:
        return version("memsyn")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def utc_now() -> str:
    """Return the present UTC time in ISO 8601 form, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class StopSignal:
    """A stop request shared by the runner, the procedure and the Ctrl+C handler."""

    def __init__(self):
        self._event = threading.Event()
        self.reason = ""

    def request(self, reason: str = "stop requested") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextmanager
def _ctrl_c_requests_stop(stop: StopSignal):
    """Make the first Ctrl+C request a stop and the second raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.request("interrupted by Ctrl+C")
        log.warning(
            "stop requested: finishing the current step, then turning the outputs off "
            "(press Ctrl+C again to stop at once)"
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _ctrl_c_deferred(stop: StopSignal):
    """Turn Ctrl+C into a stop request while the block runs, so the block is not interrupted.

    The request then stops a campaign before its next step.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(
        signal.SIGINT, lambda signum, frame: stop.request("interrupted by Ctrl+C")
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def prepare_procedure(procedure: BenchProcedure, bench) -> PlanSummary:
    """Build and check the plan of ``procedure`` against the bench limits.

    Raises PreflightError before any instrument is touched when a voltage or current of
    the plan is out of range.
    """
    summary = procedure.prepare(bench)
    log.info(
        "%s: plan of %d steps passed pre-flight (device voltage %g ... %g V, about %.0f s)",
        procedure.PROTOCOL, summary.steps, summary.min_device_voltage_v,
        summary.max_device_voltage_v, summary.duration_s,
    )
    return summary


def run_procedure(
    procedure: BenchProcedure,
    bench,
    results_path: str | Path,
    *,
    seed: int | None = None,
    keep_waveforms: bool = False,
    progress: ProgressCallback | None = None,
    stop: StopSignal | None = None,
) -> RunRecord:
    """Run ``procedure`` on ``bench`` and write ``results_path``; return how the run ended.

    The plan is checked first (PreflightError, nothing touched, no file written). The
    results file must not exist. With ``keep_waveforms`` the scope captures that rows were
    derived from go into the folder ``<results stem>-waveforms`` beside the file. Errors
    during the run do not propagate: they end the run as ``failed`` with the error as
    reason. KeyboardInterrupt ends it as ``aborted`` and is not re-raised either; the
    caller reads ``record.status``.
    """
    results_path = Path(results_path)
    if procedure.summary is None or procedure.bench is not bench:
        prepare_procedure(procedure, bench)
    stop = stop if stop is not None else StopSignal()

    procedure.keep_waveforms = keep_waveforms
    started_utc = utc_now()
    procedure.describe_run(dict(bench.description), software_version(), seed, started_utc)
    store = None
    if keep_waveforms:
        store = WaveformStore(results_path.with_name(results_path.stem + "-waveforms"))
    writer = ResultsWriter(procedure, results_path)
    _connect(procedure, writer, store, progress, stop)

    log.info("%s: run started, writing %s", procedure.PROTOCOL, results_path)
    wall_start = time.perf_counter()
    bench_start = bench.clock.now()
    status, reason = FAILED, "the run ended before its status was known"
    try:
        with _ctrl_c_requests_stop(stop):
            status, reason = _execute(procedure, stop)
    except KeyboardInterrupt:
        status, reason = ABORTED, "interrupted by Ctrl+C"

    with _ctrl_c_deferred(stop):
        status, reason = _finish(procedure, status, reason)
        status, reason = _close_waveforms(store, status, reason)
        record = RunRecord(
            status=status,
            reason=reason,
            rows=writer.rows,
            started_utc=started_utc,
            ended_utc=utc_now(),
            bench_time_s=bench.clock.now() - bench_start,
            wall_time_s=time.perf_counter() - wall_start,
            path=str(results_path),
            waveforms=str(store.directory) if store is not None and store.files else None,
        )
        writer.write_trailer(record)
        writer.close()
    procedure.status = {COMPLETED: Procedure.FINISHED, ABORTED: Procedure.ABORTED}.get(
        status, Procedure.FAILED
    )
    level = logging.INFO
    if status == FAILED:
        level = logging.ERROR
    elif status == ABORTED:
        level = logging.WARNING
    log.log(level, "%s: run %s (%s); %d rows in %s", procedure.PROTOCOL, status, reason,
            writer.rows, results_path)
    return record


def _connect(procedure, writer, store, progress, stop) -> None:
    """Route the procedure's ``emit`` and ``should_stop`` to this run, as a Worker does."""

    def emit(topic: str, record) -> None:
        if topic == "results":
            writer.write_row(record)
        elif topic == "waveform":
            if store is not None:
                row = -1 if record.get("no_row") else writer.rows
                store.add(record["group"], record["kind"], row, record["start_time_s"],
                          record["traces"])
        elif topic == "progress":
            if progress is not None:
                progress(float(record), procedure.PROTOCOL)
        else:
            log.debug("%s: unhandled topic %r", procedure.PROTOCOL, topic)

    procedure.emit = emit
    procedure.should_stop = stop.is_set
    procedure.is_last = lambda: True


def _execute(procedure: BenchProcedure, stop: StopSignal) -> tuple[str, str]:
    """Run startup and execute; return the status and reason they ended with."""
    procedure.status = Procedure.RUNNING
    try:
        procedure.startup()
        procedure.execute()
    except StopRequested:
        return ABORTED, stop.reason or "stop requested"
    except KeyboardInterrupt:
        return ABORTED, "interrupted by Ctrl+C"
    except Exception as error:  # any error ends the run as failed, with its text
        log.exception("%s: run failed", procedure.PROTOCOL)
        return FAILED, f"{type(error).__name__}: {error}"
    return COMPLETED, f"all {len(procedure.plan)} steps of the plan ran"


def _finish(procedure: BenchProcedure, status: str, reason: str) -> tuple[str, str]:
    """Write held-back rows and shut the bench down; a failing shutdown fails the run."""
    try:
        procedure.finish()
    except Exception as error:  # shutdown must still run
        log.exception("%s: writing the last rows failed", procedure.PROTOCOL)
        status, reason = FAILED, f"{reason}; writing the last rows failed: {error}"

    try:
        procedure.shutdown()
    except Exception as error:  # recorded; the trailer must still be written
        log.exception("%s: shutdown raised", procedure.PROTOCOL)
        procedure.shutdown_failures.append(("bench", error))
    if status != COMPLETED and not procedure.RESUMABLE:
        reason = (
            f"{reason}; this run cannot be continued because the device kept relaxing after "
            "the interruption: run the protocol again from the start"
        )
    if procedure.shutdown_failures:
        failed = "; ".join(f"{role}: {error}" for role, error in procedure.shutdown_failures)
        status = FAILED
        reason = (
            f"{reason}; shutdown failed ({failed}): check that every output is off and at 0 V"
        )
    return status, reason


def _close_waveforms(store: WaveformStore | None, status: str, reason: str) -> tuple[str, str]:
    """Write the last waveform group; a failure to write fails the run but keeps the rows."""
    if store is None:
        return status, reason
    try:
        store.close()
    except OSError as error:
        log.exception("writing waveforms to %s failed", store.directory)
        return FAILED, f"{reason}; writing the waveforms failed: {error}"
    return status, reason
