"""Reading of results files: header, run status, unit-checked columns, protocol lookup.

A results file is a PyMeasure ``Results`` CSV file (``docs/data-format.md``). Comment lines
starting with ``#`` carry the procedure class, its parameters, metadata such as the bench
description, and a status trailer when the run recorded one. The CSV rows follow. This
module reads such a file without importing the procedure class, so that data measured
elsewhere in the same format can be fitted too.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fitting.errors import FitWarnings, ResultsFileError

log = logging.getLogger(__name__)

PROTOCOLS = ("iv-sweep", "set", "short-term", "long-term-levels", "bias-decay")

# Columns that fitting reads from each protocol's file, named as in docs/data-format.md.
FIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "short-term": (
        "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat",
        "Time since pulse (s)", "Voltage (V)", "Conductance (S)", "Pulse energy (J)",
    ),
    "long-term-levels": (
        "Level", "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat",
        "Time since pulse (s)", "Voltage (V)", "Conductance (S)",
    ),
    "bias-decay": (
        "Time (s)", "Bias (V)", "Repeat", "Time since pulse (s)", "Voltage (V)",
        "Conductance (S)",
    ),
    "set": ("Time (s)", "Phase", "Conductance (S)"),
    "iv-sweep": ("Time (s)", "Cycle", "Voltage (V)", "Current (A)"),
}

_COLUMN_PATTERN = re.compile(r"^(?P<quantity>.*?)\s*\((?P<unit>[^()]*)\)\s*$")
_COMPLETED = "completed"


@dataclass
class ResultsFile:
    """One results file: its header entries, run status and data rows.

    ``sections`` maps a header section (``Parameters``, ``Metadata`` or any other
    ``Name:`` line followed by tab-indented entries) to its entries. ``entries`` contains
    the un-indented ``Key: value`` lines, such as ``Procedure``. ``status`` is the recorded run
    status (``completed``, ``aborted``, ``failed``) or None when the file records none.
    """

    path: Path
    protocol: str
    procedure: str | None
    entries: dict[str, str]
    sections: dict[str, dict[str, str]]
    data: pd.DataFrame
    sha256: str
    status: str | None = None
    status_reason: str | None = None
    status_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def header_value(self, name: str) -> str | None:
        """Return the header entry ``name`` (case-insensitive) from any section, or None."""
        folded_name = name.casefold()
        for key, value in self.entries.items():
            if key.casefold() == folded_name:
                return value
        for section in self.sections.values():
            for key, value in section.items():
                if key.casefold() == folded_name:
                    return value
        return None

    def bench_description(self) -> Any:
        """Return the bench description of the header, parsed from JSON where possible."""
        for section in self.sections.values():
            for key, value in section.items():
                if key.casefold().startswith("bench"):
                    return _parse_json_or_text(value)
        for key, value in self.entries.items():
            if key.casefold().startswith("bench"):
                return _parse_json_or_text(value)
        return None

    def column(self, name: str) -> np.ndarray:
        """Return a numeric column as a float array."""
        return self.data[name].to_numpy(dtype=float)


def split_column_name(name: str) -> tuple[str, str | None]:
    """Split ``"Conductance (S)"`` into ``("Conductance", "S")``; no brackets gives None."""
    match = _COLUMN_PATTERN.match(name)
    if match is None:
        return name.strip(), None
    return match.group("quantity").strip(), match.group("unit").strip()


def sha256_of(path: Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_results_file(path: Path | str, protocol: str | None = None) -> ResultsFile:
    """Read a results file and identify its protocol.

    ``protocol`` overrides the identification. Otherwise the protocol comes from the
    procedure named in the header (see ``identify_protocol``). Raises ``ResultsFileError``
    for an unreadable file, a file without data rows or an unknown protocol.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsFileError(f"cannot read results file {path}: {error}") from error

    comment_lines = [line[1:] for line in text.splitlines() if line.startswith("#")]
    entries, sections = _parse_comment_lines(comment_lines)
    data = _read_rows(path, text)
    procedure = entries.get("Procedure")
    if protocol is None:
        protocol = identify_protocol(path, entries, sections, list(data.columns))

    results = ResultsFile(
        path=path, protocol=protocol, procedure=procedure, entries=entries,
        sections=sections, data=data, sha256=sha256_of(path),
    )
    _attach_status(results)
    log.debug("read %s: protocol %s, %d rows", path, protocol, len(data))
    return results


def identify_protocol(
    path: Path, entries: dict[str, str], sections: dict[str, dict[str, str]],
    columns: list[str],
) -> str:
    """Return the protocol name of a results file.

    The rules apply in order:

    1. a header entry ``Protocol`` that names a protocol;
    2. the procedure class of the ``Procedure:`` line, lower-cased, with non-letters and a
       trailing ``procedure`` removed (``BiasDecayProcedure`` is ``bias-decay``);
    3. the column set: ``Bias (V)`` means bias-decay, ``Level`` long-term-levels,
       ``Pulse energy (J)`` short-term, ``Phase`` set and ``Cycle`` iv-sweep.
    """
    section_items = [item for section in sections.values() for item in section.items()]
    for key, value in [*entries.items(), *section_items]:
        if key.strip().casefold() == "protocol" and value.strip() in PROTOCOLS:
            return value.strip()

    procedure = entries.get("Procedure", "")
    class_name = procedure.strip().strip("<>").rsplit(".", 1)[-1]
    normalised = re.sub(r"[^a-z]", "", class_name.lower()).removesuffix("procedure")
    for name in PROTOCOLS:
        if normalised and normalised == name.replace("-", ""):
            return name

    column_set = set(columns)
    if "Bias (V)" in column_set:
        return "bias-decay"
    if "Level" in column_set and "Pulse amplitude (V)" in column_set:
        return "long-term-levels"
    if "Pulse energy (J)" in column_set:
        return "short-term"
    if "Phase" in column_set:
        return "set"
    if "Cycle" in column_set:
        return "iv-sweep"
    raise ResultsFileError(
        f"cannot tell which protocol wrote {path}: the header names procedure "
        f"{procedure or '(none)'!r} and the columns match no protocol of docs/data-format.md"
    )


def require_columns(results: ResultsFile, names: tuple[str, ...] | None = None) -> None:
    """Raise ``ResultsFileError`` unless every column in ``names`` is present.

    ``names`` defaults to the columns fitting reads from the file's protocol. A column
    present with another unit (``Conductance (nS)`` for ``Conductance (S)``) is reported
    as a wrong unit, because fitting never rescales data silently.
    """
    if names is None:
        names = FIT_COLUMNS[results.protocol]
    present = list(results.data.columns)
    for name in names:
        if name in present:
            continue
        quantity, unit = split_column_name(name)
        for other in present:
            other_quantity, other_unit = split_column_name(other)
            if other_quantity.casefold() == quantity.casefold() and other_unit != unit:
                raise ResultsFileError(
                    f"{results.path}: column {other!r} is in {other_unit or 'no unit'}, but "
                    f"fitting expects {name!r}; write the column in SI units as "
                    "docs/data-format.md describes"
                )
        raise ResultsFileError(
            f"{results.path}: missing column {name!r} of the {results.protocol} protocol "
            f"(columns present: {', '.join(present)})"
        )
    _require_numeric(results, [name for name in names if name != "Phase"])


def check_run_status(results: ResultsFile, fit_warnings: FitWarnings) -> None:
    """Flag a results file whose run did not complete or records no status at all.

    ``docs/data-format.md`` counts a file without a status trailer as not known to be
    complete: the process may have been killed before the end of the plan.
    """
    if results.status == _COMPLETED:
        return
    if results.status is None:
        fit_warnings.flag(
            f"{results.protocol} file {results.path.name}",
            "the file records no run status ('#Run status:' trailer), so the run may have "
            "ended early; add the trailer if the run completed",
        )
        return
    reason = f": {results.status_reason}" if results.status_reason else ""
    fit_warnings.flag(
        f"{results.protocol} file {results.path.name}",
        f"the run ended with status {results.status!r}{reason}; its data stop early",
    )


def check_time_increases(results: ResultsFile, fit_warnings: FitWarnings) -> None:
    """Flag NaN or decreasing values in the bench-clock column ``Time (s)``."""
    if "Time (s)" not in results.data.columns:
        return
    time_s = results.column("Time (s)")
    where = f"{results.protocol} file {results.path.name}"
    not_finite = ~np.isfinite(time_s)
    if not_finite.any():
        fit_warnings.flag(where, f"'Time (s)' is NaN or infinite in {not_finite.sum()} rows")
    steps = np.diff(time_s[~not_finite])
    if (steps < 0).any():
        first = int(np.flatnonzero(steps < 0)[0])
        fit_warnings.flag(
            where,
            f"'Time (s)' decreases ({int((steps < 0).sum())} times, first after "
            f"{time_s[~not_finite][first]!r} s); the bench clock must be monotonic",
        )


def rows_without_nan(
    results: ResultsFile, columns: tuple[str, ...], fit_warnings: FitWarnings
) -> pd.DataFrame:
    """Return the data rows whose ``columns`` are all finite; flag the rows left out."""
    values = results.data[list(columns)].to_numpy(dtype=float)
    finite = np.isfinite(values)
    keep = finite.all(axis=1)
    if not keep.all():
        bad_columns = [name for name, ok in zip(columns, finite.all(axis=0)) if not ok]
        first = int(np.flatnonzero(~keep)[0])
        fit_warnings.flag(
            f"{results.protocol} file {results.path.name}",
            f"{int((~keep).sum())} rows hold NaN or infinite values (columns "
            f"{', '.join(repr(name) for name in bad_columns)}; first at data row {first + 1}); "
            "these rows are left out of the fit",
        )
    return results.data.loc[keep]


def find_campaign_files(
    results_dir: Path | str, fit_warnings: FitWarnings
) -> dict[str, ResultsFile]:
    """Find the results file of each protocol in a campaign directory (searched recursively).

    Every ``*.csv`` file is read and its protocol identified. When a protocol has several
    files, the only one whose run completed is taken and the others are logged. Several
    completed files of one protocol, or several files none of which completed, are an
    error, because fitting cannot tell which run belongs to the campaign.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsFileError(f"results directory {results_dir} does not exist")
    paths = sorted(results_dir.rglob("*.csv"))
    if not paths:
        raise ResultsFileError(
            f"no results files (*.csv) in {results_dir}; run 'memsyn measure campaign' first"
        )

    by_protocol: dict[str, list[ResultsFile]] = {}
    for path in paths:
        results = read_results_file(path)
        by_protocol.setdefault(results.protocol, []).append(results)

    chosen: dict[str, ResultsFile] = {}
    for protocol, candidates in by_protocol.items():
        chosen[protocol] = _choose_one(protocol, candidates, results_dir)
    for results in chosen.values():
        check_run_status(results, fit_warnings)
    return chosen


def _choose_one(protocol: str, candidates: list[ResultsFile], results_dir: Path) -> ResultsFile:
    if len(candidates) == 1:
        return candidates[0]
    completed = [item for item in candidates if item.status == _COMPLETED]
    if len(completed) == 1:
        for item in candidates:
            if item is not completed[0]:
                log.info("ignoring %s run %s (status %s)", protocol, item.path, item.status)
        return completed[0]

    def name(item: ResultsFile) -> str:
        return str(item.path.relative_to(results_dir))

    if completed:
        raise ResultsFileError(
            f"found {len(completed)} completed {protocol} results files in {results_dir} "
            f"({', '.join(name(item) for item in completed)}), and fitting cannot tell which "
            "run belongs to the campaign; move all but one of them out of RESULTS_DIR, or "
            "pass a folder that holds one campaign"
        )
    statuses = ", ".join(f"{name(item)}: {item.status or 'no status'}" for item in candidates)
    raise ResultsFileError(
        f"found {len(candidates)} {protocol} results files in {results_dir} and none of them "
        f"completed ({statuses}); measure the protocol again, or keep only the run to fit in "
        "RESULTS_DIR"
    )


def _parse_comment_lines(lines: list[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    entries: dict[str, str] = {}
    sections: dict[str, dict[str, str]] = {}
    section: str | None = None
    for line in lines:
        if line.startswith("\t") and section is not None:
            key, separator, value = line[1:].partition(": ")
            if separator:
                sections[section][key.strip()] = value.strip()
            continue
        key, separator, value = line.partition(":")
        key = key.strip()
        if not separator or not key:
            continue
        if value.strip():
            entries[key] = value.strip()
            section = None
        else:
            section = key
            sections.setdefault(section, {})
    return entries, sections


def _read_rows(path: Path, text: str) -> pd.DataFrame:
    try:
        data = pd.read_csv(io.StringIO(text), comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise ResultsFileError(f"cannot parse the data rows of {path}: {error}") from error
    if data.empty:
        raise ResultsFileError(f"results file {path} contains no data rows")
    data.columns = [str(name).strip() for name in data.columns]
    return data


def _require_numeric(results: ResultsFile, names: list[str]) -> None:
    for name in names:
        column = results.data[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ResultsFileError(
                f"{results.path}: column {name!r} has an invalid, non-numeric value "
                f"{column.iloc[row]!r} in data row {row + 1}"
            )
        results.data[name] = converted


def _attach_status(results: ResultsFile) -> None:
    """Fill the run status from the trailer, a header entry or a JSON file beside the results.

    The protocols write a trailer line ``#Run status: {"status": ..., "reason": ...}``.
    """
    trailer = results.header_value("Run status")
    if trailer is not None:
        record = _parse_json_or_text(trailer)
        if isinstance(record, dict) and "status" in record:
            results.status = str(record["status"]).strip().lower()
            reason = record.get("reason")
            results.status_reason = None if reason in (None, "") else str(reason)
            results.status_source = "trailer"
            return
    status = results.header_value("Status")
    if status is not None:
        results.status = status.strip().lower()
        results.status_reason = results.header_value("Reason")
        results.status_source = "header"
        return
    for sidecar in (
        results.path.with_suffix(".status.json"),
        results.path.with_suffix(".json"),
    ):
        if not sidecar.is_file():
            continue
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("cannot read run status file %s: %s", sidecar, error)
            continue
        if isinstance(record, dict) and "status" in record:
            results.status = str(record["status"]).strip().lower()
            reason = record.get("reason")
            results.status_reason = None if reason in (None, "") else str(reason)
            results.status_source = str(sidecar)
            return


def _parse_json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
