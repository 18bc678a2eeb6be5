"""Paths of the parts of a run inside a run folder.

``memsyn demo`` writes this layout; ``memsyn report RUN_DIR`` reads it. A folder made by
hand works too: every part is optional, and the report lists the figures it had to leave out
and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths of the parts of one run folder."""

    root: Path

    @property
    def measurements(self) -> Path:
        """Results files of the measurement campaign."""
        return self.root / "measurements"

    @property
    def device_file(self) -> Path:
        """The fitted device parameter file."""
        return self.root / "device.json"

    @property
    def fit_plots(self) -> Path:
        """One PNG per fit, from ``memsyn fit --plots``."""
        return self.root / "fit-plots"

    @property
    def agent(self) -> Path:
        """The checkpoint that played, and the training run folder when one was trained."""
        return self.root / "agent"

    @property
    def trace(self) -> Path:
        """The game trace recorded by ``memsyn pong play``."""
        return self.root / "trace.npz"

    @property
    def energy(self) -> Path:
        """Output of ``memsyn energy``."""
        return self.root / "energy"

    @property
    def report(self) -> Path:
        """The HTML report and its PNG figures."""
        return self.root / "report"
