"""Read the results files of a campaign and sort them by protocol.

The protocol of a file is recognised from its columns (see ``docs/data-format.md``), so
files written by other software in the documented format are read the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

PROTOCOL_COLUMNS = {
    "iv-sweep": {"Cycle", "Voltage (V)", "Current (A)"},
    "set": {"Phase", "Conductance (S)"},
    "long-term-levels": {"Level", "Time since pulse (s)", "Conductance (S)"},
    "bias-decay": {"Bias (V)", "Time since pulse (s)", "Conductance (S)"},
    "short-term": {"Pulse amplitude (V)", "Pulse width (s)", "Time since pulse (s)", "Conductance (S)"},
}

# More specific column sets first: a long-term-levels file also has the short-term columns.
_MATCH_ORDER = ("iv-sweep", "set", "long-term-levels", "bias-decay", "short-term")


@dataclass
class ResultsFile:
    """One results file: protocol, path, header lines and data."""

    protocol: str
    path: Path
    header: list[str]
    data: pd.DataFrame = field(repr=False)


def read_header(path: Path) -> list[str]:
    """Return the comment lines at the top of a results file, without the ``#``."""
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            lines.append(line[1:].rstrip("\n"))
    return lines


def identify_protocol(columns) -> str | None:
    """Return the protocol whose columns a file has, or None."""
    present = set(columns)
    for protocol in _MATCH_ORDER:
        if PROTOCOL_COLUMNS[protocol] <= present:
            return protocol
    return None


def find_results(folder: Path) -> dict[str, list[ResultsFile]]:
    """Return the results files below ``folder`` by protocol; unreadable files are logged."""
    found: dict[str, list[ResultsFile]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*.csv")):
        try:
            data = pd.read_csv(path, comment="#")
        except (OSError, ValueError, pd.errors.ParserError) as error:
            log.warning("skipping %s: not a readable results file (%s)", path, error)
            continue
        protocol = identify_protocol(data.columns)
        if protocol is None:
            log.info("skipping %s: its columns match no protocol", path)
            continue
        found.setdefault(protocol, []).append(ResultsFile(protocol, path, read_header(path), data))
    return found
