"""Seeded synthetic results files with known ground truth, for tests of the fitting chain.

``write_campaign`` writes a set, a short-term, a bias-decay and a long-term-levels file in
the format of ``docs/data-format.md`` (PyMeasure header, unit-named columns, status
trailer), generated from a ``SyntheticTruth`` whose parameters a fit must recover:

* conductance read at 0.6 V: ``G = W + F`` plus Gaussian read noise, with W at
  ``pre_set_s`` before the SET train and at ``levels_s[k]`` on level k afterwards;
* pulse response: ``dF = df_ref_s * exp(slope_per_v (A - 2.75 V)) * (w / 100 us) ** width_exponent``
  (a log-linear surface), times ``1 + spread_rel z`` plus ``spread_floor_s z'``;
* decay of F after a pulse: ``exp(-t / tau(bias))`` with ``tau = -step_interval_s / ln Lambda(bias)``
  and ``Lambda(V) = L / (1 + exp(-k (V - V0))) + Lambda0``; F decays with tau(read voltage)
  after short-term pulses;
* pulse energy: ``E = c (dF / 1 nS) ** alpha`` times a log-normal factor.

The defaults follow the published figures (Lambda 0.08-0.92 at 1 s steps, c = 30 pJ,
alpha = 1.52, G_min = 12 nS before SET, levels up to 23 nS, dF from 0.7 nS at 2 V, 20 us to 38.6 nS at 3.5 V, 500 us), chosen
as ground truth here, not measured. The log-linear surface through those two corners gives
2.1, 3.8 and 7.0 nS for 100 us pulses of 2, 2.5 and 3 V (published: about 3, 5 and 10 nS).
The same seed gives the same files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SHORT_TERM_COLUMNS = (
    "Time (s)", "Pulse amplitude (V)", "Pulse width (s)", "Repeat", "Time since pulse (s)",
    "Voltage (V)", "Current (A)", "Conductance (S)", "Pulse energy (J)",
)
BIAS_DECAY_COLUMNS = (
    "Time (s)", "Bias (V)", "Repeat", "Pulse amplitude (V)", "Pulse width (s)",
    "Time since pulse (s)", "Scheduled time since pulse (s)", "Voltage (V)", "Current (A)",
    "Conductance (S)",
)
LONG_TERM_LEVELS_COLUMNS = ("Level", *SHORT_TERM_COLUMNS)

SET_COLUMNS = ("Time (s)", "Phase", "Voltage (V)", "Current (A)", "Conductance (S)")

PROCEDURES = {
    "set": "protocols.set_train.SetProcedure",
    "short-term": "protocols.short_term.ShortTermProcedure",
    "bias-decay": "protocols.bias_decay.BiasDecayProcedure",
    "long-term-levels": "protocols.long_term_levels.LongTermLevelsProcedure",
}


@dataclass(frozen=True)
class SyntheticTruth:
    """Ground-truth device parameters of the synthetic campaign (SI units)."""

    read_voltage_v: float = 0.6
    pre_set_s: float = 12e-9
    levels_s: tuple[float, ...] = (14e-9, 17e-9, 20e-9, 23e-9)
    read_noise_s: float = 0.05e-9
    # Pulse response surface, at the reference point 2.75 V, 100 us.
    df_ref_s: float = 5.2e-9
    slope_per_v: float = 1.204
    width_exponent: float = 0.687
    amplitude_ref_v: float = 2.75
    width_ref_s: float = 100e-6
    spread_rel: float = 0.015
    spread_floor_s: float = 0.1e-9
    # Decay factor per step and its sigmoid in bias.
    step_interval_s: float = 1.0
    L: float = 0.84
    k: float = 8.0
    V0: float = 0.0
    Lambda0: float = 0.08
    main_pulse_df_s: float = 30e-9
    # Pulse energy power law.
    c_j: float = 30e-12
    alpha: float = 1.52
    energy_scatter: float = 0.03

    def lambda_at(self, bias_v):
        """Return the true Lambda(V)."""
        return self.L / (1.0 + np.exp(-self.k * (np.asarray(bias_v, float) - self.V0))) + self.Lambda0

    def tau_s(self, bias_v):
        """Return the true decay time at a bias, in seconds."""
        return -self.step_interval_s / np.log(self.lambda_at(bias_v))

    def df_s(self, amplitude_v, width_s):
        """Return the true mean dF of a pulse, in siemens."""
        return (
            self.df_ref_s
            * np.exp(self.slope_per_v * (np.asarray(amplitude_v, float) - self.amplitude_ref_v))
            * (np.asarray(width_s, float) / self.width_ref_s) ** self.width_exponent
        )

    def energy_j(self, df_s):
        """Return the true pulse energy for a dF, in joules."""
        return self.c_j * (np.asarray(df_s, float) / 1e-9) ** self.alpha


@dataclass(frozen=True)
class SyntheticPlan:
    """Measurement plan of the synthetic campaign (the published grid by default)."""

    amplitudes_v: tuple[float, ...] = (2.0, 2.5, 3.0, 3.5)
    widths_s: tuple[float, ...] = (20e-6, 100e-6, 500e-6)
    repeats: int = 5
    baseline_reads: int = 4
    reads_after_pulse: int = 6
    biases_v: tuple[float, ...] = tuple(np.round(np.linspace(-0.6, 0.6, 13), 10))
    decay_repeats: int = 5
    decay_reads: int = 40
    decay_first_read_s: float = 1e-3
    decay_last_read_s: float = 60.0
    level_pulses: tuple[tuple[float, float], ...] = ((3.0, 100e-6),)
    level_repeats: int = 3
    bench: dict = field(default_factory=lambda: {"name": "synthetic", "backend": "synthetic"})


def short_term_frame(truth: SyntheticTruth, plan: SyntheticPlan, rng: np.random.Generator,
                     level_s: float | None = None, pulses=None, repeats: int | None = None,
                     start_time_s: float = 0.0) -> pd.DataFrame:
    """Return the rows of a short-term run over ``pulses`` (default: the amplitude x width grid)."""
    level_s = truth.levels_s[0] if level_s is None else level_s
    if pulses is None:
        pulses = [(a, w) for a in plan.amplitudes_v for w in plan.widths_s]
    repeats = plan.repeats if repeats is None else repeats
    tau_read_s = float(truth.tau_s(truth.read_voltage_v))
    baseline_times = -np.linspace(1.0, 0.2, plan.baseline_reads)
    after_times = np.geomspace(1e-3, 3 * tau_read_s, plan.reads_after_pulse)

    rows = []
    clock_s = start_time_s
    for amplitude_v, width_s in pulses:
        for repeat in range(repeats):
            df = float(truth.df_s(amplitude_v, width_s))
            df = df * (1 + truth.spread_rel * rng.standard_normal()) + truth.spread_floor_s * rng.standard_normal()
            energy = float(truth.energy_j(max(df, 1e-12))) * math.exp(truth.energy_scatter * rng.standard_normal())
            pulse_time_s = clock_s + 1.2
            for since in (*baseline_times, *after_times):
                f = df * math.exp(-since / tau_read_s) if since >= 0 else 0.0
                g = level_s + f + truth.read_noise_s * rng.standard_normal()
                rows.append({
                    "Time (s)": pulse_time_s + since,
                    "Pulse amplitude (V)": amplitude_v,
                    "Pulse width (s)": width_s,
                    "Repeat": repeat,
                    "Time since pulse (s)": since,
                    "Voltage (V)": truth.read_voltage_v,
                    "Current (A)": g * truth.read_voltage_v,
                    "Conductance (S)": g,
                    "Pulse energy (J)": energy,
                })
            # Ten decay times later F is below 1e-4 of dF, so the next baseline is clean.
            clock_s = pulse_time_s + 10 * tau_read_s
    return pd.DataFrame(rows, columns=list(SHORT_TERM_COLUMNS))


def bias_decay_frame(truth: SyntheticTruth, plan: SyntheticPlan, rng: np.random.Generator) -> pd.DataFrame:
    """Return the rows of a bias-decay run: main pulse, then log-spaced reads at each bias."""
    scheduled = np.geomspace(plan.decay_first_read_s, plan.decay_last_read_s, plan.decay_reads)
    level_s = truth.levels_s[0]
    rows = []
    clock_s = 0.0
    for bias_v in plan.biases_v:
        tau_s = float(truth.tau_s(bias_v))
        for repeat in range(plan.decay_repeats):
            df = truth.main_pulse_df_s * (1 + truth.spread_rel * rng.standard_normal())
            pulse_time_s = clock_s + 1.0
            # Actual read times jitter by up to 0.1 ms about the schedule.
            actual = scheduled + rng.uniform(0, 1e-4, size=scheduled.size)
            times = [(-0.5, -0.5), (-0.25, -0.25), *zip(actual, scheduled)]
            for since, planned in times:
                f = df * math.exp(-since / tau_s) if since >= 0 else 0.0
                g = level_s + f + truth.read_noise_s * rng.standard_normal()
                rows.append({
                    "Time (s)": pulse_time_s + since,
                    "Bias (V)": bias_v,
                    "Repeat": repeat,
                    "Pulse amplitude (V)": 3.5,
                    "Pulse width (s)": 500e-6,
                    "Time since pulse (s)": since,
                    "Scheduled time since pulse (s)": planned,
                    "Voltage (V)": truth.read_voltage_v,
                    "Current (A)": g * truth.read_voltage_v,
                    "Conductance (S)": g,
                })
            clock_s = pulse_time_s + plan.decay_last_read_s + 1.0
    return pd.DataFrame(rows, columns=list(BIAS_DECAY_COLUMNS))


def long_term_levels_frame(truth: SyntheticTruth, plan: SyntheticPlan, rng: np.random.Generator) -> pd.DataFrame:
    """Return the rows of a long-term-levels run: a short-term block at each level."""
    frames = []
    start_s = 0.0
    for level, level_s in enumerate(truth.levels_s, start=1):
        block = short_term_frame(
            truth, plan, rng, level_s=level_s, pulses=list(plan.level_pulses),
            repeats=plan.level_repeats, start_time_s=start_s,
        )
        block.insert(0, "Level", level)
        frames.append(block)
        start_s = float(block["Time (s)"].max()) + 300.0
    return pd.DataFrame(pd.concat(frames, ignore_index=True), columns=list(LONG_TERM_LEVELS_COLUMNS))


def set_frame(truth: SyntheticTruth, plan: SyntheticPlan, rng: np.random.Generator) -> pd.DataFrame:
    """Return the rows of a set run: reads before the train, after it, and while settling."""
    rows = []
    phases = [("before", truth.pre_set_s, np.arange(5.0))]
    phases.append(("after", truth.levels_s[0], 6.0 + np.arange(5.0)))
    phases.append(("settle", truth.levels_s[0], 30.0 + 20.0 * np.arange(12)))
    for phase, level_s, times_s in phases:
        for time_s in times_s:
            g = level_s + truth.read_noise_s * rng.standard_normal()
            rows.append({
                "Time (s)": time_s, "Phase": phase, "Voltage (V)": truth.read_voltage_v,
                "Current (A)": g * truth.read_voltage_v, "Conductance (S)": g,
            })
    return pd.DataFrame(rows, columns=list(SET_COLUMNS))


def write_results_file(
    path: str | Path,
    frame: pd.DataFrame,
    protocol: str,
    bench: dict | None = None,
    status: str | None = "completed",
    procedure: str | None = None,
    parameters: dict[str, str] | None = None,
) -> Path:
    """Write ``frame`` as a PyMeasure-style results file with a header and status trailer.

    ``status`` None writes no trailer, as a killed run leaves it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    procedure = PROCEDURES.get(protocol, f"protocols.{protocol}.Procedure") if procedure is None else procedure
    lines = [f"#Procedure: <{procedure}>", "#Parameters:"]
    for name, value in (parameters or {"Seed": "0"}).items():
        lines.append(f"#\t{name}: {value}")
    lines += [
        "#Metadata:",
        f"#\tProtocol: {protocol}",
        "#\tSoftware: memsyn synthetic",
        f"#\tBench: {json.dumps(bench or {'name': 'synthetic'})}",
        "#Data:",
    ]
    text = "\n".join(lines) + "\n" + frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    if status is not None:
        record = {"status": status, "reason": "" if status == "completed" else "stopped", "rows": len(frame)}
        text += f"#Run status: {json.dumps(record)}\n"
    path.write_text(text, encoding="utf-8")
    return path


def write_campaign(
    directory: str | Path,
    seed: int = 0,
    truth: SyntheticTruth | None = None,
    plan: SyntheticPlan | None = None,
    protocols: tuple[str, ...] = ("set", "short-term", "bias-decay", "long-term-levels"),
) -> dict[str, Path]:
    """Write a synthetic campaign into ``directory`` and return the file of each protocol."""
    truth = truth or SyntheticTruth()
    plan = plan or SyntheticPlan()
    rng = np.random.default_rng(seed)
    builders = {
        "set": set_frame,
        "short-term": short_term_frame,
        "bias-decay": bias_decay_frame,
        "long-term-levels": long_term_levels_frame,
    }
    paths = {}
    for protocol in protocols:
        frame = builders[protocol](truth, plan, rng)
        paths[protocol] = write_results_file(
            Path(directory) / f"{protocol}.csv", frame, protocol, bench={**plan.bench, "seed": seed},
        )
    return paths
