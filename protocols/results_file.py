"""Results files: the PyMeasure CSV written row by row, its status trailer and waveform files.

A results file is a PyMeasure ``Results`` file. A ``#`` header holds the procedure class,
its parameters and metadata (protocol, software version, bench, seed, start time). The
column names follow, then one CSV row per measurement, written and flushed as it is
measured. When the run ends, one trailer line records how it ended::

    #Run status: {"status": "completed", "reason": "...", "rows": 120, ...}

The trailer is a comment, so ``Results.load`` (which reads the header only up to the column
line) and ``pandas.read_csv(path, comment="#")`` both still read the file. A file without
a trailer comes from a run that ended without recording a status (the process was killed
or the computer stopped): treat its data as valid up to the last complete row.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pymeasure.experiment import Results

log = logging.getLogger(__name__)

STATUS_PREFIX = "#Run status: "
COMPLETED = "completed"
ABORTED = "aborted"
FAILED = "failed"
STATUSES = (COMPLETED, ABORTED, FAILED)


@dataclass
class RunRecord:
    """End state of one run: the content of the status trailer, plus the paths of its files."""

    status: str
    reason: str
    rows: int
    started_utc: str
    ended_utc: str
    bench_time_s: float
    wall_time_s: float
    path: str
    waveforms: str | None = None

    def trailer(self) -> str:
        """Return the trailer line (without the line break) for this record."""
        fields = asdict(self)
        fields.pop("path")
        return STATUS_PREFIX + json.dumps(fields, sort_keys=False)


def read_run_status(path: str | os.PathLike) -> dict | None:
    """Return the status trailer of a results file as a dict, or None if it has none."""
    status = None
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.startswith(STATUS_PREFIX):
                status = json.loads(line[len(STATUS_PREFIX):])
    return status


def _cell(column: str, value):
    """Return ``value`` as a plain Python value that PyMeasure's CSV formatter writes as is."""
    if type(value) is float:
        return value
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        if any(char in value for char in ",#\n\r"):
            raise ValueError(f"value {value!r} of column {column!r} contains ',', '#' or a line break")
        return value
    raise TypeError(f"value {value!r} of column {column!r} is not a number or a string")


class ResultsWriter:
    """Writes one results file: the header at creation, then rows, then the status trailer.

    The file must not exist yet: a run never overwrites or appends to earlier data.
    """

    def __init__(self, procedure, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"results file {self.path} already exists; choose another output")
        self.path.parent.mkdir(parents=True, exist_ok=True)

        self.columns = list(procedure.DATA_COLUMNS)
        self._column_set = frozenset(self.columns)
        self.results = Results(procedure, str(self.path))
        procedure.evaluate_metadata()
        self.results.store_metadata()
        # The file stays open for the whole run (rows are appended as they are measured);
        # close() releases it on every exit path of the runner.
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self.rows = 0

    def write_row(self, row: dict) -> int:
        """Write one row (a dict keyed by column name; missing columns are NaN); return its index."""
        unknown = [key for key in row if key not in self._column_set]
        if unknown:
            log.debug("columns %s are not in %s and are not written", unknown, self.path.name)
        cells = {column: _cell(column, row.get(column)) for column in self.columns}
        self._file.write(self._format(cells) + "\n")
        self._file.flush()
        self.rows += 1
        return self.rows - 1

    def _format(self, cells: dict) -> str:
        """Return the CSV line of ``cells`` as PyMeasure's formatter writes it.

        A row of numbers only is joined here: PyMeasure writes each number as
        ``f"{value}"`` between commas, and this skips its per-cell type and unit checks.
        Rows with text go through PyMeasure's formatter.
        """
        values = list(cells.values())
        if all(type(value) is float or type(value) is int for value in values):
            return ",".join([f"{value}" for value in values])
        return self.results.format(cells)

    def write_trailer(self, record: RunRecord) -> None:
        """Append the status trailer; the file stays readable as results."""
        self._file.write(record.trailer() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class WaveformStore:
    """Scope captures kept beside a results file, one compressed ``.npz`` per capture group.

    A group is the set of captures that share their row labels: one pulse with its baseline
    reads and the reads after it, or one phase of ``set``. For capture ``i`` of the group,
    file ``NNNN-<group>.npz`` contains the arrays ``i_time_s``, ``i_voltage_v`` (at the
    device) and ``i_current_a``. Per capture it also contains ``kind`` (``read`` or
    ``pulse``), ``row`` (index of the results row derived from it, -1 for none) and
    ``start_time_s`` (bench time of the first sample, from the start of the run).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if self.directory.exists():
            raise FileExistsError(f"waveform folder {self.directory} already exists; choose another output")
        self.files = 0
        self._group: str | None = None
        self._captures: list[dict] = []

    def add(self, group: str, kind: str, row: int, start_time_s: float, traces: dict) -> None:
        """Add one capture to ``group``; a new group name writes the previous group to disk."""
        if group != self._group:
            self.flush()
            self._group = group
        self._captures.append(
            {"kind": kind, "row": row, "start_time_s": start_time_s, "traces": traces}
        )

    def flush(self) -> None:
        """Write the captures of the current group, if any."""
        if not self._captures:
            return
        arrays: dict[str, np.ndarray] = {
            "kind": np.array([capture["kind"] for capture in self._captures]),
            "row": np.array([capture["row"] for capture in self._captures], dtype=np.int64),
            "start_time_s": np.array([capture["start_time_s"] for capture in self._captures]),
        }
        for index, capture in enumerate(self._captures):
            for name, values in capture["traces"].items():
                arrays[f"{index}_{name}"] = np.asarray(values)

        self.directory.mkdir(parents=True, exist_ok=True)
        self.files += 1
        final = self.directory / f"{self.files:04d}-{self._group}.npz"
        partial = final.with_suffix(".partial.npz")
        np.savez_compressed(partial, **arrays)
        os.replace(partial, final)
        self._captures = []

    def close(self) -> None:
        self.flush()
