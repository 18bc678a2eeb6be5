"""Report sections of the network side: training curves, a synapse's G(t), energy."""

from __future__ import annotations

from memsyn.report.run_layout import RunLayout


def add_game_sections(builder, layout: RunLayout) -> None:
    """Add the training, synapse-trace and energy sections of a run folder."""
    builder.add_missing("training-curves", "Training curves", "not yet wired")
    builder.add_missing("synapse-trace", "One synapse's conductance over a game", "not yet wired")
    builder.add_missing("energy-histograms", "Energy per synapse", "not yet wired")
    builder.add_missing("energy-table", "Memristor against GPU", "not yet wired")
