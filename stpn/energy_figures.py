"""PNG figures of a synaptic energy estimate, drawn with matplotlib's Agg canvas.

Figures are built on ``matplotlib.figure.Figure`` directly, without pyplot, so drawing
them changes no global backend or state.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

log = logging.getLogger(__name__)

HISTOGRAM_FIGURE = "energy-histograms.png"
MAX_SYNAPSE_FIGURE = "energy-max-synapse.png"
COMPARISON_FIGURE = "energy-comparison.png"


def write_figures(out_dir: Path, results: dict, synapses, replay, times, device) -> list[Path]:
    """Draw the histogram, max-synapse and comparison figures into ``out_dir``.

    ``synapses``, ``replay``, ``times`` and ``device`` are the SynapseEnergies,
    ReplayResult, TimeBases and EnergyDevice of ``stpn.energy``; returns the written paths.
    """
    paths = [
        _plot_histograms(out_dir / HISTOGRAM_FIGURE, synapses),
        _plot_max_synapse(out_dir / MAX_SYNAPSE_FIGURE, results, replay, times, device),
        _plot_comparison(out_dir / COMPARISON_FIGURE, results),
    ]
    log.info("wrote energy figures to %s", out_dir)
    return paths


def _plot_histograms(path: Path, synapses) -> Path:
    """Histograms of per-synapse energy on log-spaced bins, one panel per component."""
    panels = [
        ("pulse energy (updated synapses)", synapses.pulse_j),
        ("bias energy, worst-case bias", synapses.bias_worst_j),
        ("bias energy, learned bias", synapses.bias_learned_j),
        ("total, worst-case bias", synapses.pulse_j + synapses.bias_worst_j),
    ]
    figure = Figure(figsize=(10, 7), layout="constrained")
    axes = figure.subplots(2, 2)
    for axis, (title, values) in zip(axes.ravel(), panels):
        axis.set_title(title)
        axis.set_ylabel("number of synapses")
        if values is None:
            axis.set_axis_off()
            axis.text(0.5, 0.5, "not available: the device file has no decay sigmoid",
                      ha="center", va="center", transform=axis.transAxes)
            continue
        positive = values[values > 0]
        if positive.size == 0:
            axis.text(0.5, 0.5, "no synapse with energy > 0", ha="center", va="center",
                      transform=axis.transAxes)
            continue
        scale, unit = energy_unit(float(positive.max()))
        positive = positive / scale
        axis.set_xlabel(f"energy per synapse over the trace ({unit})")
        low, high = positive.min(), positive.max()
        if low == high:
            low, high = low / 1.01, high * 1.01
        # Log-spaced bins only where the values span a decade or more.
        if high / low >= 10:
            axis.hist(positive, bins=np.geomspace(low, high, 41))
            axis.set_xscale("log")
        else:
            axis.hist(positive, bins=np.linspace(low, high, 41))
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    figure.savefig(path, dpi=110)
    return path


def _plot_max_synapse(path: Path, results: dict, replay, times, device) -> Path:
    """Measured conductance G(t) of the synapse with the largest total |dF|, with a dashed
    line at the start of each game after the first."""
    figure = Figure(figsize=(9, 4), layout="constrained")
    axis = figure.subplots()
    section = results["memristor"]["max_update_synapse"]
    if section is None:
        axis.text(0.5, 0.5, "no synapse was updated in this trace", ha="center", va="center",
                  transform=axis.transAxes)
    else:
        time_s = np.arange(replay.tracked_g.size) * times.step_dt_s
        conductance_ns = (device.g_min_s + device.siemens_per_weight_unit
                          * np.abs(replay.tracked_g)) * 1e9
        axis.plot(time_s, conductance_ns, linewidth=0.8)
        durations_s = [game["duration"]["value"] for game in results["memristor"]["games"]]
        for number, start in enumerate(np.cumsum(durations_s)[:-1]):
            axis.axvline(start, color="tab:gray", linestyle="--", linewidth=0.8,
                         label="start of a game" if number == 0 else None)
        if len(durations_s) > 1:
            axis.legend(loc="upper right", fontsize="small")
        axis.set_title(
            f"synapse post {section['post']}, pre {section['pre']}: {section['updates']} updates, "
            f"total |dF| {section['abs_df_total']['value']:.4g} weight units"
        )
    axis.set_xlabel(f"time (s), {times.step_dt_s * 1e3:.3g} ms per network step")
    axis.set_ylabel("G_meas (nS)")
    figure.savefig(path, dpi=110)
    return path


def _plot_comparison(path: Path, results: dict) -> Path:
    """Draw ``comparison_figure`` into ``path``."""
    comparison_figure(results).savefig(path, dpi=110)
    return path


def comparison_figure(results: dict) -> Figure:
    """Return a figure of horizontal bars of the energy per game on a linear axis, the
    memristor variants above the GPU cases. Each bar is labelled with its value, and each GPU bar also with
    its ratio to the memristor worst case."""
    per_game = results["memristor"]["per_game"]
    labels = ["memristor, worst-case bias"]
    values = [per_game["total_worst_case"]["value"]]
    if per_game["total_learned"] is not None:
        labels.append("memristor, learned bias")
        values.append(per_game["total_learned"]["value"])
    n_memristor = len(labels)
    for case in results["gpu"]["cases"]:
        labels.append(textwrap.fill(f"GPU {case['precision']}, {case['case']}", 28))
        values.append(case["per_game"]["value"])

    scale, unit = energy_unit(max(values))
    memristor_worst_j = values[0]
    bar_texts = [f"{value / scale:.3g} {unit}" for value in values]
    if memristor_worst_j > 0:
        for index in range(n_memristor, len(values)):
            ratio = values[index] / memristor_worst_j
            bar_texts[index] += f"\n= {ratio:.3g} × memristor worst case"

    figure = Figure(figsize=(9, 1.6 + 0.7 * len(labels)), layout="constrained")
    axis = figure.subplots()
    colours = ["tab:green"] * n_memristor + ["tab:gray"] * (len(labels) - n_memristor)
    positions = np.arange(len(labels))
    bars = axis.barh(positions, np.asarray(values) / scale, color=colours)
    axis.bar_label(bars, labels=bar_texts, padding=4, fontsize=9)
    axis.set_yticks(positions, labels, fontsize=9)
    axis.invert_yaxis()
    if max(values) > 0:
        # Room on the right for the longest bar's text.
        axis.set_xlim(0, max(values) / scale * 1.7)
    axis.set_xlabel(f"synaptic energy per game ({unit}, linear axis)")
    axis.set_title(f"Energy per game: memristor vs GPU ({_gpu_source_text(results['gpu'])})")
    return figure


def energy_unit(largest_j: float) -> tuple[float, str]:
    """Return the scale in joules and the unit name (J, mJ, µJ, nJ, pJ, fJ) that show
    ``largest_j`` with one to three digits before the decimal point (more from 1000 J)."""
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if largest_j >= scale:
            return scale, unit
    return 1e-15, "fJ"


def _gpu_source_text(gpu: dict) -> str:
    """Return the short description of the GPU figures for a title."""
    if gpu["source"] == "estimate":
        return "GPU: register-only lower-bound estimate"
    if gpu.get("file"):
        return f"GPU: measured, {Path(gpu['file']).name}"
    return "GPU: measured"
