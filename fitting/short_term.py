"""Short-term response dF of single pulses: per-pulse values, the table, df_step and df_max.

dF of a pulse is the conductance of the first read after it (``Time since pulse (s) >= 0``)
minus the mean conductance of the baseline reads before it (``Time since pulse (s) < 0``).
The rows of one pulse share its amplitude, width and repeat index (and level, in a
long-term-levels file). The table groups the pulses by (amplitude, width) and gives the
mean and the standard deviation over repeats (ddof = 1).

Discretisation rule. The network maps a conductance step of ``siemens_per_weight_unit``
to one simulated weight unit and discretises every update to 0.5 units, so adjacent
device states are ``df_step = 0.5 * siemens_per_weight_unit`` apart. They must differ by
at least the largest spread of dF, so ``df_step`` is the largest standard deviation over
the table, rounded up to a multiple of a grid step (default 1 nS). This is the published
reasoning: the spread is below 1 nS for every (amplitude, width), so the step is 1 nS and
``siemens_per_weight_unit`` 2 nS. A finer grid (``grid_s``) gives a finer step, and with it
a smaller weight unit and a larger clip ``df_max / siemens_per_weight_unit``.
``df_max`` is the largest mean dF of the table, as measured (the published 38.6 nS, which
the study rounded up to 40 nS = 20 units).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fitting.defaults import DF_STEP_GRID_S
from fitting.errors import FitWarnings
from fitting.results_files import ResultsFile, require_columns, rows_without_nan

log = logging.getLogger(__name__)

SIMULATED_DF_STEP = 0.5

_ROW_COLUMNS = (
    "Pulse amplitude (V)", "Pulse width (s)", "Repeat", "Time since pulse (s)", "Conductance (S)",
)


@dataclass
class PulseResponse:
    """dF of one pulse with the reads it came from."""

    amplitude_v: float
    width_s: float
    repeat: int
    level: int | None
    df_s: float
    baseline_s: float
    baseline_std_s: float | None
    n_baseline_reads: int
    first_read_delay_s: float
    energy_j: float | None


@dataclass
class ResponseCell:
    """Statistics over the repeats of one (amplitude, width) pulse."""

    amplitude_v: float
    width_s: float
    repeats: int
    df_mean_s: float
    df_std_s: float | None
    energy_mean_j: float | None
    energy_std_j: float | None
    first_read_delay_s: float

    @property
    def df_stderr_s(self) -> float | None:
        """Standard error of the mean dF (None with a single repeat)."""
        if self.df_std_s is None:
            return None
        return self.df_std_s / math.sqrt(self.repeats)

    def as_table_row(self) -> dict:
        """Return the row of the device file's ``short_term.table``."""
        return {
            "amplitude_v": self.amplitude_v,
            "width_s": self.width_s,
            "repeats": self.repeats,
            "df_mean_s": self.df_mean_s,
            "df_std_s": self.df_std_s,
            "energy_mean_j": self.energy_mean_j,
            "energy_std_j": self.energy_std_j,
            "first_read_delay_s": self.first_read_delay_s,
        }


def extract_pulse_responses(results: ResultsFile, fit_warnings: FitWarnings) -> list[PulseResponse]:
    """Return dF of every pulse of a short-term or long-term-levels results file.

    A pulse without baseline reads or without a read after it, or whose ``Time since
    pulse (s)`` does not increase from row to row, is flagged and left out. Rows with NaN
    in the conductance or time columns are left out (flagged). ``Pulse energy (J)`` may be
    empty on some rows, and the pulse takes the median of its finite values.
    """
    require_columns(results)
    keys = ["Pulse amplitude (V)", "Pulse width (s)", "Repeat"]
    has_level = "Level" in results.data.columns
    if has_level:
        keys.insert(0, "Level")
    rows = rows_without_nan(results, tuple(keys) + _ROW_COLUMNS[3:], fit_warnings)
    has_energy = "Pulse energy (J)" in rows.columns

    pulses: list[PulseResponse] = []
    missing_energy = 0
    for key, group in rows.groupby(keys, sort=False):
        values = dict(zip(keys, key))
        where = _pulse_name(values, results)
        pulse = _pulse_response(values, group, has_level, has_energy, where, fit_warnings)
        if pulse is None:
            continue
        if has_energy and pulse.energy_j is None:
            missing_energy += 1
        pulses.append(pulse)

    if missing_energy:
        fit_warnings.flag(
            f"{results.protocol} file {results.path.name}",
            f"{missing_energy} pulses have no finite 'Pulse energy (J)'; they are left out of "
            "the energy statistics",
        )
    log.info("%s: dF of %d pulses", results.path.name, len(pulses))
    return pulses


def tabulate_responses(
    pulses: list[PulseResponse], where: str, fit_warnings: FitWarnings
) -> list[ResponseCell]:
    """Group pulses by (amplitude, width) into table cells, sorted by amplitude then width.

    A cell with a single repeat has no spread (``df_std_s`` None) and is flagged.
    """
    frame = pd.DataFrame([vars(pulse) for pulse in pulses])
    if frame.empty:
        return []
    cells: list[ResponseCell] = []
    for (amplitude_v, width_s), group in frame.groupby(["amplitude_v", "width_s"], sort=True):
        df = group["df_s"].to_numpy(dtype=float)
        energies = group["energy_j"].dropna().to_numpy(dtype=float)
        if len(df) < 2:
            fit_warnings.flag(
                f"{where} at {amplitude_v:g} V, {width_s:g} s",
                "only one repeat, so the spread of dF cannot be estimated",
            )
        cells.append(
            ResponseCell(
                amplitude_v=float(amplitude_v),
                width_s=float(width_s),
                repeats=len(df),
                df_mean_s=float(df.mean()),
                df_std_s=float(df.std(ddof=1)) if len(df) >= 2 else None,
                energy_mean_j=float(energies.mean()) if len(energies) else None,
                energy_std_j=float(energies.std(ddof=1)) if len(energies) >= 2 else None,
                first_read_delay_s=float(group["first_read_delay_s"].mean()),
            )
        )
    return cells


def df_step_from_spread(
    cells: list[ResponseCell], grid_s: float = DF_STEP_GRID_S
) -> tuple[float, float]:
    """Return ``(df_step_s, largest_std_s)``: the largest dF spread rounded up to ``grid_s``.

    NOTE: with 5 repeats per cell the largest standard deviation is a noisy estimate, so a
    device whose true spread lies near a grid step gives either step from run to run. The
    simulated device spreads by about 0.6 nS at its largest dF and gives 2 nS in some runs.
    """
    spreads = [cell.df_std_s for cell in cells if cell.df_std_s is not None]
    if not spreads:
        raise ValueError("no table cell has two or more repeats, so the dF spread is unknown")
    largest = max(spreads)
    # The small tolerance keeps a spread of exactly one grid step from rounding up to two.
    steps = max(1, math.ceil(largest / grid_s - 1e-9))
    return steps * grid_s, largest


def df_max_from_table(cells: list[ResponseCell]) -> ResponseCell:
    """Return the cell with the largest mean |dF|: the largest step the device supports."""
    return max(cells, key=lambda cell: abs(cell.df_mean_s))


def _pulse_response(
    values: dict, group: pd.DataFrame, has_level: bool, has_energy: bool, where: str,
    fit_warnings: FitWarnings,
) -> PulseResponse | None:
    time_since_pulse = group["Time since pulse (s)"].to_numpy(dtype=float)
    conductance = group["Conductance (S)"].to_numpy(dtype=float)
    if np.any(np.diff(time_since_pulse) <= 0):
        fit_warnings.flag(where, "'Time since pulse (s)' does not increase from row to row; the pulse is left out")
        return None
    baseline = time_since_pulse < 0
    if not baseline.any() or baseline.all():
        missing = "baseline reads before" if not baseline.any() else "reads after"
        fit_warnings.flag(where, f"no {missing} the pulse; the pulse is left out")
        return None

    first_after = int(np.flatnonzero(~baseline)[0])
    energy = None
    if has_energy:
        energies = group["Pulse energy (J)"].to_numpy(dtype=float)
        energies = energies[np.isfinite(energies)]
        energy = float(np.median(energies)) if energies.size else None
    baseline_reads = conductance[baseline]
    baseline_s = float(baseline_reads.mean())
    return PulseResponse(
        amplitude_v=float(values["Pulse amplitude (V)"]),
        width_s=float(values["Pulse width (s)"]),
        repeat=int(values["Repeat"]),
        level=int(values["Level"]) if has_level else None,
        df_s=float(conductance[first_after]) - baseline_s,
        baseline_s=baseline_s,
        baseline_std_s=float(baseline_reads.std(ddof=1)) if baseline_reads.size >= 2 else None,
        n_baseline_reads=int(baseline_reads.size),
        first_read_delay_s=float(time_since_pulse[first_after]),
        energy_j=energy,
    )


def _pulse_name(values: dict, results: ResultsFile) -> str:
    level = f"level {int(values['Level'])}, " if "Level" in values else ""
    return (
        f"{results.protocol} pulse {level}{values['Pulse amplitude (V)']:g} V, "
        f"{values['Pulse width (s)']:g} s, repeat {int(values['Repeat'])}"
    )
