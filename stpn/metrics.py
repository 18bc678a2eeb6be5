"""Training metrics: CSV files and TensorBoard scalars in the run directory."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)

UPDATE_COLUMNS = (
    "frames", "updates", "wall_time_s", "frames_per_s", "learning_rate", "policy_loss",
    "value_loss", "entropy", "grad_norm", "synapse_update_fraction", "episodes",
    "recent_return",
)
EPISODE_COLUMNS = ("frames", "episode", "env_index", "return", "length_steps", "truncated")


class MetricsWriter:
    """Append rows to updates.csv and episodes.csv and mirror them to TensorBoard.

    When resuming at frames_done, rows logged after that point (by a run that was killed
    before its next checkpoint) are dropped from the CSV files and TensorBoard, so that
    every frame count appears once.
    """

    def __init__(self, run_dir: Path, frames_done: int = 0, tensorboard: bool = True) -> None:
        self.update_path = run_dir / "updates.csv"
        self.episode_path = run_dir / "episodes.csv"
        for path, columns in ((self.update_path, UPDATE_COLUMNS),
                              (self.episode_path, EPISODE_COLUMNS)):
            _truncate_after(path, columns, frames_done)
        self._update_file = self.update_path.open("a", newline="")
        self._episode_file = self.episode_path.open("a", newline="")
        self._updates = csv.DictWriter(self._update_file, UPDATE_COLUMNS)
        self._episodes = csv.DictWriter(self._episode_file, EPISODE_COLUMNS)
        self._tensorboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"),
                                              purge_step=frames_done or None)

    def log_update(self, row: dict) -> None:
        self._updates.writerow(row)
        self._update_file.flush()
        if self._tensorboard is not None:
            step = row["frames"]
            for name in UPDATE_COLUMNS[3:]:
                value = row.get(name)
                if value is not None and value != "":
                    self._tensorboard.add_scalar(f"train/{name}", value, step)

    def log_episode(self, row: dict) -> None:
        self._episodes.writerow(row)
        self._episode_file.flush()
        if self._tensorboard is not None:
            self._tensorboard.add_scalar("episode/return", row["return"], row["frames"])
            self._tensorboard.add_scalar("episode/length_steps", row["length_steps"],
                                         row["frames"])

    def close(self) -> None:
        self._update_file.close()
        self._episode_file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _truncate_after(path: Path, columns: tuple[str, ...], frames_done: int) -> None:
    """Create path with a header, or keep only its rows with frames <= frames_done."""
    if not path.exists() or path.stat().st_size == 0:
        with path.open("w", newline="") as file:
            csv.DictWriter(file, columns).writeheader()
        return
    with path.open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if int(row["frames"]) <= frames_done]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(rows)


def read_episodes(run_dir: Path) -> list[dict]:
    """Return the rows of episodes.csv as dicts of numbers."""
    with (run_dir / "episodes.csv").open(newline="") as file:
        return [{"frames": int(row["frames"]), "return": float(row["return"]),
                 "length_steps": int(row["length_steps"])} for row in csv.DictReader(file)]


def read_update_shares(run_dir: Path) -> list[tuple[int, float]]:
    """Return (frames, synapse update fraction) of each logged update row of an m-STPN run.

    Rows without a fraction (the LSTM and original STPN layers) are left out.
    """
    path = Path(run_dir) / "updates.csv"
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return [(int(row["frames"]), float(row["synapse_update_fraction"]))
                for row in csv.DictReader(file) if row.get("synapse_update_fraction")]


def plot_learning_curve(run_dir: Path, out_path: Path, window: int = 10, title: str = "") -> Path:
    """Draw game return and game length against training frames into a PNG file.

    Each game panel shows every finished game and the moving mean over `window` games. In
    Pong, longer games are often the first sign of learning: the agent returns the ball
    more often before it wins points. For an m-STPN run a third panel shows the share of
    synapses updated per step, from updates.csv.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    episodes = read_episodes(Path(run_dir))
    if not episodes:
        raise ValueError(f"{run_dir}/episodes.csv has no finished games to plot")
    frames = np.array([row["frames"] for row in episodes], dtype=float) / 1e6
    panels = (
        ("return (points won - points lost)", [row["return"] for row in episodes]),
        ("game length (agent steps)", [row["length_steps"] for row in episodes]),
    )

    shares = read_update_shares(Path(run_dir))
    rows = 3 if shares else 2
    figure, axes = plt.subplots(rows, 1, figsize=(7, 3 * rows), dpi=120, sharex=True)
    for axis, (label, values) in zip(axes, panels):
        values = np.array(values, dtype=float)
        axis.plot(frames, values, ".", alpha=0.35, label="one game")
        if len(values) >= window:
            mean = np.convolve(values, np.ones(window) / window, mode="valid")
            axis.plot(frames[window - 1:], mean, "-", label=f"mean of {window} games")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left")
    axes[0].set_ylim(-21.5, 21.5)
    if shares:
        share_frames, share_values = np.array(shares, dtype=float).T
        axes[2].plot(share_frames / 1e6, 100 * share_values, "-", lw=0.8)
        axes[2].set_ylabel("synapses updated per step (%)")
        axes[2].grid(alpha=0.3)
    axes[-1].set_xlabel("emulator frames (millions)")
    if title:
        axes[0].set_title(title)
    figure.tight_layout()
    figure.savefig(out_path)
    plt.close(figure)
    return Path(out_path)
