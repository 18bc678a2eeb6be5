"""Fit plots: readable log ticks, integer level ticks, units on every axis, energy in pJ."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from fitting import plots

# Axis labels of dimensionless quantities, which carry no unit.
DIMENSIONLESS_LABELS = {"Residual", "dF / model - 1", "ln(E / model)"}


@pytest.fixture(scope="module")
def figures(campaign_fit, tmp_path_factory):
    """Every figure of the campaign fit by file name, built but not saved."""
    captured = {}

    def keep(figure, path):
        captured[path.name] = figure
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "_save", keep)
        plots.write_fit_plots(campaign_fit, tmp_path_factory.mktemp("plots"))
    return captured


def tick_labels(axis) -> list[str]:
    """Return the major tick labels of an axis that lie inside its view limits."""
    low, high = sorted(axis.get_view_interval())
    values = [value for value in axis.get_major_locator()() if low <= value <= high]
    return axis.get_major_formatter().format_ticks(values)


def test_log_axis_labels_are_plain_numbers():
    axes = Figure().subplots()
    axes.plot([0.7, 40.0], [1.0, 2.0])
    axes.set_xscale("log")
    plots._label_log_axis(axes.xaxis)
    assert tick_labels(axes.xaxis) == ["1", "2", "5", "10", "20"]


def test_log_axis_over_many_decades_labels_powers():
    axes = Figure().subplots()
    axes.plot([1e-3, 60.0], [1.0, 2.0])
    axes.set_xscale("log")
    plots._label_log_axis(axes.xaxis)
    assert tick_labels(axes.xaxis) == ["0.001", "0.01", "0.1", "1", "10", "100"]


def test_pulse_energy_plot_in_picojoules(figures, campaign_fit):
    axes = figures["pulse-energy.png"].axes[0]
    assert axes.get_ylabel() == "Pulse energy (pJ)"
    points = axes.get_lines()[0]
    np.testing.assert_allclose(points.get_ydata(), campaign_fit.power_law.energy_j * 1e12)
    assert len(tick_labels(axes.yaxis)) >= 4
    assert len(tick_labels(axes.xaxis)) >= 4
    assert all("$" not in label for label in tick_labels(axes.yaxis))


def test_df_surface_log_axis_readable(figures):
    axes = figures["df-surface.png"].axes[0]
    labels = tick_labels(axes.yaxis)
    assert len(labels) >= 4
    assert "1" in labels
    assert "10" in labels


def test_level_axis_has_integer_ticks(figures):
    axes = figures["conductance-levels.png"].axes[0]
    low, high = axes.get_xlim()
    ticks = [value for value in axes.xaxis.get_major_locator()() if low <= value <= high]
    assert len(ticks) >= 2
    assert all(value == int(value) for value in ticks)


def test_every_axis_names_its_unit(figures):
    for name, figure in figures.items():
        bottom = figure.axes[-1]
        assert bottom.get_xlabel(), f"{name}: x axis without a label"
        for axes in figure.axes:
            label = axes.get_ylabel()
            assert label, f"{name}: y axis without a label"
            assert label in DIMENSIONLESS_LABELS or "(" in label, f"{name}: {label!r} has no unit"
        assert "(" in bottom.get_xlabel(), f"{name}: {bottom.get_xlabel()!r} has no unit"
