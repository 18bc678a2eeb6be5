"""Figures of the measured device: I-V, SET, short-term responses, decay and energy.

Each function takes the data it plots and returns ``(figure, parameters)``, where
``parameters`` are the settings and fitted values behind the figure, shown beside it.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

NANO = 1e9


def iv_hysteresis(data: pd.DataFrame):
    """Plot current against voltage for every cycle of an I-V sweep."""
    figure, (linear, logarithmic) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    cycles = sorted(data["Cycle"].unique())
    colour_map = plt.cm.viridis
    norm = matplotlib.colors.Normalize(vmin=min(cycles), vmax=max(max(cycles), min(cycles) + 1))
    for cycle in cycles:
        rows = data[data["Cycle"] == cycle]
        colour = colour_map(norm(cycle))
        linear.plot(rows["Voltage (V)"], rows["Current (A)"] * 1e6, color=colour, lw=0.8)
        logarithmic.semilogy(rows["Voltage (V)"], np.abs(rows["Current (A)"]) * 1e6 + 1e-9,
                             color=colour, lw=0.8)
    linear.set(xlabel="Voltage at Pt (V)", ylabel="Current (uA)", title="I-V, all cycles")
    logarithmic.set(xlabel="Voltage at Pt (V)", ylabel="|Current| (uA)", title="I-V, log scale")
    bar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour_map), ax=[linear, logarithmic],
                          label="cycle", shrink=0.9)
    bar.locator = matplotlib.ticker.MaxNLocator(integer=True)
    bar.update_ticks()

    voltage = data["Voltage (V)"].to_numpy()
    current = data["Current (A)"].to_numpy()
    extremes = np.abs(voltage) >= 0.95 * np.abs(voltage).max()
    chord = np.abs(current[extremes] / voltage[extremes])
    parameters = {
        "cycles": len(cycles),
        "voltage range (V)": f"{voltage.min():.2f} to {voltage.max():.2f}",
        "conductance at the sweep extremes (nS)": f"{chord.min() * NANO:.0f} to {chord.max() * NANO:.0f}",
    }
    return figure, parameters


def set_transition(data: pd.DataFrame):
    """Plot the read conductance before and after the SET train and during the settle wait."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for phase, marker in (("before", "o"), ("after", "s"), ("settle", ".")):
        rows = data[data["Phase"] == phase]
        if len(rows):
            axis.plot(rows["Time (s)"], rows["Conductance (S)"] * NANO, marker, label=phase)
    axis.set(xlabel="Time (s)", ylabel="Conductance at read (nS)", title="SET transition")
    axis.legend()
    figure.tight_layout()

    parameters = {}
    for phase in ("before", "after", "settle"):
        rows = data[data["Phase"] == phase]
        if len(rows):
            parameters[f"mean conductance {phase} (nS)"] = f"{rows['Conductance (S)'].mean() * NANO:.2f}"
    return figure, parameters


def pulse_responses(data: pd.DataFrame) -> pd.DataFrame:
    """Return one row per pulse: amplitude, width, repeat, dF (S) and pulse energy (J).

    dF is the conductance of the first read after the pulse minus the mean of the reads
    before it, as defined in ``docs/data-format.md``.
    """
    keys = ["Pulse amplitude (V)", "Pulse width (s)", "Repeat"]
    if "Level" in data.columns:
        keys = ["Level"] + keys
    rows = []
    for key, group in data.groupby(keys):
        before = group[group["Time since pulse (s)"] < 0]
        after = group[group["Time since pulse (s)"] > 0].sort_values("Time since pulse (s)")
        if before.empty or after.empty:
            continue
        record = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        record["dF (S)"] = after["Conductance (S)"].iloc[0] - before["Conductance (S)"].mean()
        if "Pulse energy (J)" in group.columns:
            record["Pulse energy (J)"] = group["Pulse energy (J)"].iloc[0]
        rows.append(record)
    return pd.DataFrame(rows)


def short_term_responses(data: pd.DataFrame):
    """Plot the conductance change after pulses of each amplitude, one panel per width.

    Each curve is the mean over repeats of G - G(before the pulse), on a log time axis.
    Repeats are matched by their scheduled read times where the file has them.
    """
    time_column = _time_axis_column(data)
    widths = sorted(data["Pulse width (s)"].unique())
    figure, axes = plt.subplots(1, len(widths), figsize=(4 * len(widths), 3.6), squeeze=False)
    for axis, width in zip(axes[0], widths):
        subset = data[data["Pulse width (s)"] == width]
        for amplitude in sorted(subset["Pulse amplitude (V)"].unique()):
            rows = subset[subset["Pulse amplitude (V)"] == amplitude]
            mean = _mean_change_after_pulse(rows, time_column)
            axis.semilogx(mean.index, mean.to_numpy() * NANO, "-", marker=".", ms=3, label=f"{amplitude:g} V")
        axis.set(xlabel="Time since pulse (s)", ylabel="G - G(before pulse) (nS)",
                 title=f"width {width * 1e6:g} us")
        axis.legend(fontsize=8, title="amplitude", title_fontsize=8)
    figure.tight_layout()
    return figure, {"widths (us)": ", ".join(f"{w * 1e6:g}" for w in widths),
                    "repeats": int(data["Repeat"].nunique())}


def _time_axis_column(data: pd.DataFrame) -> str:
    if "Scheduled time since pulse (s)" in data.columns:
        return "Scheduled time since pulse (s)"
    return "Time since pulse (s)"


def _mean_change_after_pulse(rows: pd.DataFrame, time_column: str) -> pd.Series:
    """Return the mean over repeats of G - G(before the pulse) for reads after the pulse."""
    changes = []
    for _, repeat in rows.groupby("Repeat"):
        baseline = repeat.loc[repeat["Time since pulse (s)"] < 0, "Conductance (S)"].mean()
        after = repeat[repeat["Time since pulse (s)"] > 0]
        changes.append(after.assign(change=after["Conductance (S)"] - baseline))
    joined = pd.concat(changes)
    return joined.groupby(time_column)["change"].mean().sort_index()


def df_heat_map(table: list[dict]):
    """Plot the mean dF over the amplitude x width grid from the device file's table."""
    frame = pd.DataFrame(table)
    grid = frame.pivot_table(index="amplitude_v", columns="width_s", values="df_mean_s")
    spread = frame.pivot_table(index="amplitude_v", columns="width_s", values="df_std_s")
    figure, axis = plt.subplots(figsize=(5.5, 4))
    image = axis.imshow(grid.to_numpy() * NANO, origin="lower", cmap="magma", aspect="auto")
    axis.set_xticks(range(len(grid.columns)), [f"{w * 1e6:g}" for w in grid.columns])
    axis.set_yticks(range(len(grid.index)), [f"{a:g}" for a in grid.index])
    for (i, j), value in np.ndenumerate(grid.to_numpy() * NANO):
        axis.text(j, i, f"{value:.1f}\n+-{spread.to_numpy()[i, j] * NANO:.2f}", ha="center",
                  va="center", color="white" if value < np.nanmax(grid.to_numpy()) * NANO / 2 else "black",
                  fontsize=7)
    axis.set(xlabel="Pulse width (us)", ylabel="Pulse amplitude (V)", title="dF (nS), mean +- std")
    figure.colorbar(image, label="dF (nS)")
    figure.tight_layout()
    return figure, {
        "smallest dF (nS)": f"{np.nanmin(grid.to_numpy()) * NANO:.2f}",
        "largest dF (nS)": f"{np.nanmax(grid.to_numpy()) * NANO:.2f}",
        "largest spread (nS)": f"{np.nanmax(spread.to_numpy()) * NANO:.2f}",
    }


def decay_curves(data: pd.DataFrame, points: list[dict]):
    """Plot the decay after the main pulse on a log time axis, one curve per bias, with the
    exponential of the fitted time constant drawn over each."""
    tau_by_bias = {round(float(point["bias_v"]), 6): float(point["tau"]["value"]) for point in points}
    time_column = _time_axis_column(data)
    biases = sorted(data["Bias (V)"].unique())
    colours = plt.cm.coolwarm(np.linspace(0, 1, max(len(biases), 2)))
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for colour, bias in zip(colours, biases):
        mean = _mean_change_after_pulse(data[data["Bias (V)"] == bias], time_column)
        time_s = mean.index.to_numpy(dtype=float)
        change_ns = mean.to_numpy() * NANO
        axis.semilogx(time_s, change_ns, "o", ms=3, color=colour, label=f"{bias:+.2f} V")
        tau = tau_by_bias.get(round(float(bias), 6))
        if tau is not None and tau > 0 and time_s.size >= 2:
            dense = np.geomspace(time_s.min(), time_s.max(), 200)
            axis.semilogx(dense, _matched_exponential(time_s, change_ns, tau, dense), "-", lw=1, color=colour)
    axis.set(xlabel="Time since main pulse (s)", ylabel="G - G(before pulse) (nS)",
             title="Bias-controlled decay: mean of repeats (points), exponential fits (lines)")
    axis.legend(fontsize=7, ncol=2, title="bias", title_fontsize=7)
    figure.tight_layout()
    parameters = {f"tau at {float(p['bias_v']):+.2f} V (s)": _with_error(p["tau"]) for p in points}
    parameters["lines"] = ("offset + amplitude x exp(-t / tau) with the fitted tau; offset and "
                           "amplitude matched to the mean curve by linear least squares")
    return figure, parameters


def _matched_exponential(time_s, change_ns, tau_s, dense_s):
    """Return offset + amplitude exp(-t / tau) on ``dense_s``, with offset and amplitude the
    linear least-squares match to the points for the given tau."""
    basis = np.column_stack([np.ones_like(time_s), np.exp(-time_s / tau_s)])
    (offset, amplitude), *_ = np.linalg.lstsq(basis, change_ns, rcond=None)
    return offset + amplitude * np.exp(-dense_s / tau_s)


def lambda_against_bias(decay: dict):
    """Plot Lambda per bias with the fitted sigmoid and the reachable range."""
    points = decay["points"]
    sigmoid = decay["sigmoid"]
    bias = np.array([float(p["bias_v"]) for p in points])
    value = np.array([float(p["lambda"]["value"]) for p in points])
    error = np.array([float(p["lambda"]["stderr"] or 0.0) for p in points])
    L, k, v0, offset = (float(sigmoid[name]["value"]) for name in ("L", "k", "V0", "Lambda0"))
    dense = np.linspace(bias.min(), bias.max(), 200)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.errorbar(bias, value, yerr=error, fmt="o", label="exp(-dt / tau) per bias")
    axis.plot(dense, L / (1 + np.exp(-k * (dense - v0))) + offset, "-", label="sigmoid fit")
    for name in ("lambda_min", "lambda_max"):
        axis.axhline(float(decay[name]["value"]), color="grey", ls=":", lw=1)
    step = float(decay["step_interval_s"]["value"])
    axis.set(xlabel="Bias between reads (V)", ylabel="Lambda per network step",
             title=f"Decay factor, step interval {step:g} s")
    axis.legend()
    figure.tight_layout()
    parameters = {f"{name} ({sigmoid[name].get('unit', '1')})": _with_error(sigmoid[name])
                  for name in ("L", "k", "V0", "Lambda0")}
    parameters["step interval (s)"] = f"{step:g}"
    parameters["Lambda range"] = (f"{float(decay['lambda_min']['value']):.3f} to "
                                  f"{float(decay['lambda_max']['value']):.3f}")
    return figure, parameters


def energy_against_df(pulses: pd.DataFrame, pulse_energy: dict):
    """Plot the measured pulse energy against dF with the fitted power law."""
    c_j = float(pulse_energy["c"]["value"])
    alpha = float(pulse_energy["alpha"]["value"])
    usable = pulses[(pulses["dF (S)"] > 0) & (pulses["Pulse energy (J)"] > 0)]
    figure, axis = plt.subplots(figsize=(6, 4))
    df_ns = usable["dF (S)"].to_numpy() * NANO
    axis.loglog(df_ns, usable["Pulse energy (J)"].to_numpy() * 1e12, "o", ms=3, label="pulses")
    if len(df_ns):
        dense = np.geomspace(df_ns.min(), df_ns.max(), 100)
        axis.loglog(dense, c_j * dense**alpha * 1e12, "-", label=f"E = {c_j * 1e12:.1f} pJ x dF^{alpha:.2f}")
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.set(xlabel="dF (nS)", ylabel="Pulse energy (pJ)", title="Pulse energy against dF")
    axis.legend()
    figure.tight_layout()
    return figure, {"c (pJ)": _with_error(pulse_energy["c"], scale=1e12), "alpha": _with_error(pulse_energy["alpha"])}


def _with_error(quantity: dict, scale: float = 1.0) -> str:
    value = float(quantity["value"]) * scale
    stderr = quantity.get("stderr")
    if stderr is None or not math.isfinite(float(stderr)):
        return f"{value:.4g} (no uncertainty)"
    return f"{value:.4g} +- {float(stderr) * scale:.2g}"
