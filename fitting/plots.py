"""One PNG per fit: the data, the model and the residuals (matplotlib, Agg renderer).

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so
nothing touches pyplot's global state or needs a display. Fixed margins replace the
constrained layout and log axes carry no minor ticks, because the layout solver and the
minor ticks took most of the drawing time of these figures. Log axes get plain-number
labels instead (``_label_log_axis``). Every axis names its unit; energies are in pJ and
conductances in nS, as in the report. Files written into the plot directory:

* ``decay-bias<+V.VVV>V.png``: every repeat of the decay at one bias with its exponential fit;
* ``lambda-sigmoid.png``: Lambda per bias with the sigmoid and the reachable range;
* ``df-surface.png``: mean dF of the short-term table with the interpolation surface;
* ``pulse-energy.png``: the power law E(dF) on log axes;
* ``conductance-levels.png``: the long-term levels and the pre-SET state, with G_min.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from fitting.campaign import CampaignFit
from fitting.decay import BiasDecayPoint
from fitting.decay_factor import sigmoid

log = logging.getLogger(__name__)


def write_fit_plots(fit: CampaignFit, directory: str | Path) -> list[Path]:
    """Write every plot of a campaign fit into ``directory``; return the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [_plot_decay(point, directory) for point in fit.decay.points]
    written.append(_plot_sigmoid(fit, directory))
    if fit.df_surface is not None:
        written.append(_plot_df_surface(fit, directory))
    written.append(_plot_pulse_energy(fit, directory))
    written.append(_plot_levels(fit, directory))
    log.info("wrote %d plots to %s", len(written), directory)
    return written


def _figure_with_residuals(title: str) -> tuple[Figure, object, object]:
    figure = Figure(figsize=(6.4, 5.6))
    FigureCanvasAgg(figure)
    data_axes, residual_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    figure.subplots_adjust(left=0.16, right=0.97, top=0.92, bottom=0.1, hspace=0.08)
    figure.suptitle(title)
    residual_axes.axhline(0.0, color="0.5", linewidth=0.8)
    return figure, data_axes, residual_axes


def _label_log_axis(axis: Axis) -> None:
    """Label a log axis with plain numbers (0.1, 1, 10) instead of powers of ten.

    An axis spanning under 3.5 decades gets labels at 1, 2 and 5 times each power of ten,
    so that a short range still shows several. A wider one gets a label at each power of
    ten. Call it after plotting, because the span comes from the current view limits.
    """
    low, high = axis.get_view_interval()
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = (1.0, 2.0, 5.0) if decades < 3.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=40))
    axis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axis.set_minor_locator(NullLocator())


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=100)
    return path


def _plot_decay(point: BiasDecayPoint, directory: Path) -> Path:
    figure, axes, residual_axes = _figure_with_residuals(
        f"Decay at bias {point.bias_v:+.3g} V: tau = {point.tau_s:.4g} s"
    )
    for curve in point.curves:
        positive = curve.time_s > 0
        label = f"repeat {curve.repeat}" + ("" if curve.usable else " (left out)")
        markers = axes.plot(curve.time_s[positive], curve.conductance_ns[positive], ".", label=label)
        if curve.exponential is None:
            continue
        dense = np.geomspace(curve.time_s[positive].min(), curve.time_s.max(), 200)
        axes.plot(dense, curve.exponential.eval(time_s=dense), "-", color=markers[0].get_color())
        residual_axes.plot(
            curve.time_s[positive], -curve.exponential.residual[positive], ".",
            color=markers[0].get_color(),
        )
    axes.set_xscale("log")
    _label_log_axis(axes.xaxis)
    axes.set_ylabel("Conductance (nS)")
    axes.legend(fontsize="small")
    residual_axes.set_xlabel("Time since pulse (s)")
    residual_axes.set_ylabel("Residual (nS)")
    return _save(figure, directory / f"decay-bias{point.bias_v:+.3f}V.png")


def _plot_sigmoid(fit: CampaignFit, directory: Path) -> Path:
    fitted = fit.sigmoid
    decay = fit.document["decay"]
    figure, axes, residual_axes = _figure_with_residuals(
        f"Lambda per step of {decay['step_interval_s']['value']:g} s against bias"
    )
    errors = fitted.lambda_stderrs
    axes.errorbar(fitted.bias_v, fitted.lambda_values, yerr=errors, fmt="o", label="from tau fits")
    low, high = fitted.bias_range_v
    dense = np.linspace(low, high, 200)
    axes.plot(dense, sigmoid(dense, **fitted.values), "-", label="sigmoid fit")
    for name in ("lambda_min", "lambda_max"):
        axes.axhline(
            decay[name]["value"], color="0.6", linestyle="--", linewidth=0.8,
            label="lambda_min, lambda_max" if name == "lambda_min" else None,
        )
    axes.set_ylabel("Lambda (dimensionless)")
    axes.legend()
    residual = fitted.lambda_values - sigmoid(fitted.bias_v, **fitted.values)
    residual_axes.errorbar(fitted.bias_v, residual, yerr=errors, fmt="o")
    residual_axes.set_xlabel("Bias (V)")
    residual_axes.set_ylabel("Residual")
    return _save(figure, directory / "lambda-sigmoid.png")


def _plot_df_surface(fit: CampaignFit, directory: Path) -> Path:
    surface = fit.df_surface
    figure, axes, residual_axes = _figure_with_residuals("Mean dF against pulse amplitude")
    for width_s in np.unique(surface.widths_s):
        chosen = surface.widths_s == width_s
        errors = None if surface.df_stderrs_ns is None else surface.df_stderrs_ns[chosen]
        bars = axes.errorbar(
            surface.amplitudes_v[chosen], surface.df_means_ns[chosen], yerr=errors, fmt="o",
            label=f"{width_s * 1e6:g} µs",
        )
        dense = np.linspace(*surface.amplitude_range_v, 100)
        model_ns = surface.predict_df(dense, np.full_like(dense, width_s)) * 1e9
        axes.plot(dense, model_ns, "-", color=bars[0].get_color())
        model_at_points = surface.predict_df(surface.amplitudes_v[chosen], surface.widths_s[chosen]) * 1e9
        residual_axes.errorbar(
            surface.amplitudes_v[chosen], surface.df_means_ns[chosen] / model_at_points - 1.0,
            yerr=None if errors is None else errors / model_at_points, fmt="o",
            color=bars[0].get_color(),
        )
    axes.set_yscale("log")
    _label_log_axis(axes.yaxis)
    axes.set_ylabel("Mean dF (nS)")
    axes.legend(title="pulse width", fontsize="small")
    residual_axes.set_xlabel("Pulse amplitude (V)")
    residual_axes.set_ylabel("dF / model - 1")
    return _save(figure, directory / "df-surface.png")


def _plot_pulse_energy(fit: CampaignFit, directory: Path) -> Path:
    power_law = fit.power_law
    figure, axes, residual_axes = _figure_with_residuals(
        f"Pulse energy: c = {power_law.c_j * 1e12:.3g} pJ, alpha = {power_law.alpha:.3g}"
    )
    df_ns = power_law.df_s * 1e9
    c_pj = power_law.c_j * 1e12
    axes.plot(df_ns, power_law.energy_j * 1e12, "o", label="table cells")
    dense = np.geomspace(df_ns.min(), df_ns.max(), 100)
    axes.plot(dense, c_pj * dense**power_law.alpha, "-", label="E = c (|dF| / 1 nS)^alpha")
    axes.set_xscale("log")
    axes.set_yscale("log")
    _label_log_axis(axes.xaxis)
    _label_log_axis(axes.yaxis)
    axes.set_ylabel("Pulse energy (pJ)")
    axes.legend()
    residual_axes.plot(df_ns, -power_law.result.residual, "o")
    residual_axes.set_xlabel("|dF| (nS)")
    residual_axes.set_ylabel("ln(E / model)")
    return _save(figure, directory / "pulse-energy.png")


def _plot_levels(fit: CampaignFit, directory: Path) -> Path:
    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    figure.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=0.13)
    levels = fit.levels
    errors = [level.g_stderr_s * 1e9 if level.g_stderr_s is not None else 0.0 for level in levels]
    axes.errorbar(
        [level.level for level in levels], [level.g_s * 1e9 for level in levels], yerr=errors,
        fmt="o", label="levels",
    )
    if fit.pre_set is not None:
        # The pre-SET state has no level number; it is drawn one step left of the first level.
        position = min(level.level for level in levels) - 1
        error = fit.pre_set.g_stderr_s * 1e9 if fit.pre_set.g_stderr_s is not None else 0.0
        axes.errorbar([position], [fit.pre_set.g_s * 1e9], yerr=[error], fmt="s", label="before SET")
    g_min = fit.document["conductance"]["g_min"]["value"] * 1e9
    axes.axhline(g_min, color="0.6", linestyle="--", label=f"G_min = {g_min:.3g} nS")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("Long-term level (index)")
    axes.set_ylabel("Conductance (nS)")
    axes.set_title(f"Long-term levels ({fit.document['conductance']['levels_source']} file)")
    axes.legend()
    return _save(figure, directory / "conductance-levels.png")
