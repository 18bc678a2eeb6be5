"""The main job in one call: measure, fit, play Pong, estimate energy, write the report.

``run_demo`` chains the packages the way a user would on the command line, writing every
part into one run folder (layout in ``memsyn.report.run_layout``), and returns where each
output went. It runs on the simulated bench unless a bench file names another backend.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from memsyn.bench_config import default_bench_path, load_bench_config
from memsyn.bench_factory import open_bench
from memsyn.errors import UsageError
from memsyn.report import build_report
from memsyn.report.run_layout import RunLayout

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
QUICK_CAMPAIGN = REPO / "campaigns" / "quick.toml"
PUBLISHED_CAMPAIGN = REPO / "campaigns" / "published.toml"
# A small m-STPN checkpoint trained on this project's machine; docs/training.md names the run.
SHIPPED_AGENT = REPO / "stpn" / "data" / "demo-agent"

STEPS = ("measure", "fit", "play", "energy", "report")


@dataclass
class DemoResult:
    """Output paths of a demo run, the agent that played and its results."""

    run_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    agent: str = ""
    game_returns: list[float] = field(default_factory=list)
    energy: dict = field(default_factory=dict)


def default_run_dir() -> Path:
    """Return a new run folder name under ``runs/`` stamped with the UTC time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"demo-{stamp}"


def run_demo(
    run_dir: Path,
    *,
    published: bool = False,
    bench_file: Path | None = None,
    seed: int = 1,
    games: int = 1,
    step_interval_s: float | None = None,
    untrained: bool = False,
    progress=None,
) -> DemoResult:
    """Run measure -> fit -> play -> energy -> report into ``run_dir``.

    ``progress(step, percent)`` is called as the work advances, with ``step`` one of
    ``STEPS``. ``untrained`` plays with fresh weights instead of the shipped checkpoint.
    """
    layout = RunLayout(Path(run_dir))
    if layout.root.exists() and any(layout.root.iterdir()):
        raise UsageError(f"run folder {layout.root} is not empty; choose a new --out folder")
    layout.root.mkdir(parents=True, exist_ok=True)
    result = DemoResult(layout.root)
    report = progress or (lambda step, percent: None)

    _measure(layout, published, bench_file, seed, report)
    result.outputs["measurements"] = layout.measurements

    _fit(layout, step_interval_s)
    result.outputs["device file"] = layout.device_file
    result.outputs["fit plots"] = layout.fit_plots
    report("fit", 100.0)

    result.agent, result.game_returns = _play(layout, seed, games, untrained, report)
    result.outputs["game trace"] = layout.trace

    result.energy = _energy(layout)
    result.outputs["energy"] = layout.energy
    report("energy", 100.0)

    result.outputs["report"] = build_report(layout.root)
    report("report", 100.0)
    return result


def _measure(layout: RunLayout, published: bool, bench_file: Path | None, seed: int, report) -> None:
    from protocols.campaign import load_campaign, run_campaign

    campaign = load_campaign(PUBLISHED_CAMPAIGN if published else QUICK_CAMPAIGN)
    config = load_bench_config(bench_file or default_bench_path())
    bench = open_bench(config, seed=seed)
    log.info("measuring campaign %s on bench %s (%s)", campaign.name, bench.name, bench.backend)
    try:
        record = run_campaign(
            campaign, bench, layout.measurements, seed=seed,
            progress=lambda percent, name: report("measure", percent),
        )
    finally:
        bench.close()
    if record.status != "completed":
        raise UsageError(f"the measurement campaign ended {record.status}; see {layout.measurements}")
    report("measure", 100.0)


def _fit(layout: RunLayout, step_interval_s: float | None) -> None:
    from fitting.campaign import DEFAULT_STEP_INTERVAL_S, fit_campaign
    from fitting.device_file import write_device_file

    interval = step_interval_s if step_interval_s is not None else DEFAULT_STEP_INTERVAL_S
    fit = fit_campaign(layout.measurements, step_interval_s=interval, plots_dir=layout.fit_plots)
    write_device_file(fit.document, layout.device_file)
    log.info("device file written to %s", layout.device_file)


def _play(layout: RunLayout, seed: int, games: int, untrained: bool, report) -> tuple[str, list[float]]:
    from stpn.play import play_games

    layout.agent.mkdir(parents=True, exist_ok=True)
    if untrained or not SHIPPED_AGENT.exists():
        checkpoint = None
        agent = f"untrained m-STPN agent (fresh weights, seed {seed})"
        if not untrained:
            log.warning("no shipped checkpoint at %s; playing with untrained weights", SHIPPED_AGENT)
    else:
        checkpoint = SHIPPED_AGENT
        agent = f"shipped checkpoint {SHIPPED_AGENT.relative_to(REPO)}"
        _copy_training_metrics(SHIPPED_AGENT, layout.agent)

    report("play", 0.0)
    summary = play_games(checkpoint, layout.device_file, games, layout.trace, seed=seed)
    report("play", 100.0)
    (layout.agent / "agent.txt").write_text(agent + "\n", encoding="utf-8")
    return agent, list(summary.returns)


def _copy_training_metrics(source: Path, target: Path) -> None:
    folder = source if source.is_dir() else source.parent
    for name in ("episodes.csv", "updates.csv", "settings.json"):
        if (folder / name).exists():
            shutil.copy2(folder / name, target / name)


def _energy(layout: RunLayout) -> dict:
    from stpn.energy import estimate_energy

    return estimate_energy(layout.device_file, layout.trace, layout.energy)
