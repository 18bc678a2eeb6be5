"""Long-term conductance levels, the minimum conductance G_min and the weight map.

The long-term level of a pulse is its baseline: the mean conductance of the reads before
it. A level's conductance is the mean of the baselines of its pulses. Its standard error
is the larger of the scatter of those baselines (std / sqrt(n_pulses)) and the read noise
propagated from the reads inside each baseline. A level measured by few pulses thus never
gets an error bar below the read noise. Levels come from the long-term-levels
file (column ``Level``). When a campaign has no such file, the short-term file's pulses
give a single level 0.

The reads of a set file taken before its SET train (``Phase`` = ``before``) give the
pre-SET state: the device's state before any SET train of the campaign, which on the
simulated device is its lowest long-term state. G_min is the lowest of the levels and the
pre-SET state, and G_max the highest level.

NOTE: the published G_min (about 12 nS) is known only through the bias power of 4.3 nW at
0.6 V. Whether it is the state before SET or the lowest stacked level is not stated, so
the lower of the two is taken. The pre-SET reads must follow a settle time: reads taken
while F from an earlier I-V sweep still decays show up as a large stderr of ``pre_set``.

Weight map. The network's simulated weights map to measured conductance linearly,

    G_meas = g_min + siemens_per_weight_unit * G_sim,

with ``siemens_per_weight_unit = df_step / 0.5``, because the network discretises updates
to 0.5 weight units (published: a 1 nS step is 0.5 units, so 2 nS per unit).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from fitting.errors import FitWarnings
from fitting.results_files import ResultsFile, require_columns
from fitting.short_term import SIMULATED_DF_STEP, PulseResponse

log = logging.getLogger(__name__)

# Largest relative deviation of a read voltage from the median before it is flagged.
READ_VOLTAGE_TOLERANCE = 0.01


@dataclass
class ConductanceLevel:
    """One long-term state: its conductance and the mean short-term response there.

    ``level`` is None for the pre-SET state, which has no pulses (``n_pulses`` 0 and
    ``df_mean_s`` None).
    """

    level: int | None
    g_s: float
    g_stderr_s: float | None
    n_pulses: int
    df_mean_s: float | None
    source: str


def levels_from_pulses(
    pulses: list[PulseResponse], where: str, fit_warnings: FitWarnings
) -> list[ConductanceLevel]:
    """Return the levels found in ``pulses`` (level None counts as level 0), sorted by level.

    A level with a single pulse has no stderr and is flagged.
    """
    by_level: dict[int, list[PulseResponse]] = {}
    for pulse in pulses:
        by_level.setdefault(pulse.level if pulse.level is not None else 0, []).append(pulse)

    levels: list[ConductanceLevel] = []
    for level, members in sorted(by_level.items()):
        baselines = np.array([pulse.baseline_s for pulse in members])
        stderr = None
        if len(baselines) >= 2:
            stderr = max(
                float(baselines.std(ddof=1) / math.sqrt(len(baselines))),
                _read_noise_stderr(members),
            )
        else:
            fit_warnings.flag(
                f"{where} level {level}",
                "only one pulse, so the uncertainty of the level cannot be estimated",
            )
        levels.append(
            ConductanceLevel(
                level=level,
                g_s=float(baselines.mean()),
                g_stderr_s=stderr,
                n_pulses=len(members),
                df_mean_s=float(np.mean([pulse.df_s for pulse in members])),
                source=where,
            )
        )
        log.info("level %d: G = %.4g S from %d pulses", level, levels[-1].g_s, len(members))
    return levels


def pre_set_state(
    results: ResultsFile, fit_warnings: FitWarnings
) -> ConductanceLevel | None:
    """Return the state read before the SET train of a set file, or None without such reads."""
    require_columns(results)
    phases = results.data["Phase"].astype(str).str.strip()
    conductance = results.column("Conductance (S)")[(phases == "before").to_numpy()]
    conductance = conductance[np.isfinite(conductance)]
    if conductance.size == 0:
        return None
    where = f"set file {results.path.name}"
    stderr = None
    if conductance.size >= 2:
        stderr = float(conductance.std(ddof=1) / math.sqrt(conductance.size))
    else:
        fit_warnings.flag(where, "only one read before the SET train, so its uncertainty is unknown")
    log.info("pre-SET state: G = %.4g S from %d reads", conductance.mean(), conductance.size)
    return ConductanceLevel(
        level=None, g_s=float(conductance.mean()), g_stderr_s=stderr, n_pulses=0,
        df_mean_s=None, source="set (reads before the SET train)",
    )


def _read_noise_stderr(pulses: list[PulseResponse]) -> float:
    """Return the error of the mean of the baselines that the read noise alone causes."""
    variances = [
        pulse.baseline_std_s**2 / pulse.n_baseline_reads
        for pulse in pulses
        if pulse.baseline_std_s is not None
    ]
    if not variances:
        return 0.0
    return math.sqrt(sum(variances)) / len(variances)


def read_voltage_v(results: ResultsFile, fit_warnings: FitWarnings) -> float:
    """Return the median read voltage of a file's rows; flag reads that stray from it by > 1 %."""
    voltages = results.column("Voltage (V)")
    voltages = voltages[np.isfinite(voltages)]
    median = float(np.median(voltages))
    deviation = float(np.max(np.abs(voltages - median)))
    if median == 0 or deviation > READ_VOLTAGE_TOLERANCE * abs(median):
        fit_warnings.flag(
            f"{results.protocol} file {results.path.name}",
            f"the read voltage varies from {voltages.min():.6g} V to {voltages.max():.6g} V "
            f"(median {median:.6g} V); conductances read at different voltages do not compare",
        )
    return median


def siemens_per_weight_unit(df_step_s: float) -> float:
    """Return the conductance of one simulated weight unit: df_step / 0.5."""
    return df_step_s / SIMULATED_DF_STEP
