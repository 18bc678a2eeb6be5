"""Assemble the report of a run folder into one self-contained HTML page and its PNGs."""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt

from memsyn import __version__
from memsyn.errors import UsageError
from memsyn.report import game_figures, measurement_figures
from memsyn.report.measurement_data import find_results
from memsyn.report.run_layout import RunLayout

log = logging.getLogger(__name__)


@dataclass
class Section:
    """One figure of the report, or the reason it is missing."""

    key: str
    title: str
    png: Path | None = None
    parameters: dict = field(default_factory=dict)
    missing_reason: str | None = None
    table_html: str | None = None


class ReportBuilder:
    """Collect the sections of one report; each section is built independently, so one
    missing or broken input costs only its own figure."""

    def __init__(self, layout: RunLayout, out_dir: Path):
        self.layout = layout
        self.out_dir = out_dir
        self.sections: list[Section] = []

    def add_figure(self, key: str, title: str, make, *inputs_needed: str) -> None:
        """Run ``make()`` for a (figure, parameters) pair and save it as ``key``.png."""
        if inputs_needed:
            self.sections.append(Section(key, title, missing_reason=" ".join(inputs_needed)))
            return
        try:
            figure, parameters = make()
        except (KeyError, ValueError, TypeError, IndexError) as error:
            log.warning("figure %r could not be drawn: %s", key, error)
            self.sections.append(Section(key, title, missing_reason=f"could not be drawn: {error}"))
            return
        path = self.out_dir / f"{key}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        self.sections.append(Section(key, title, png=path, parameters=parameters))

    def add_image(self, key: str, title: str, source: Path, parameters: dict) -> None:
        """Copy a PNG that another command wrote into the report as ``key``.png."""
        path = self.out_dir / f"{key}.png"
        path.write_bytes(source.read_bytes())
        self.sections.append(Section(key, title, png=path, parameters=parameters))

    def add_missing(self, key: str, title: str, reason: str) -> None:
        self.sections.append(Section(key, title, missing_reason=reason))

    def add_table(self, key: str, title: str, table_html: str, parameters: dict) -> None:
        self.sections.append(Section(key, title, table_html=table_html, parameters=parameters))


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``index.html`` and one PNG per figure for a run folder; return the HTML path."""
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise UsageError(f"run folder {layout.root} not found; pass the folder that memsyn demo wrote")
    out = Path(out_dir) if out_dir else layout.report
    out.mkdir(parents=True, exist_ok=True)
    builder = ReportBuilder(layout, out)

    device = _load_device(layout.device_file)
    results = find_results(layout.measurements)
    _add_measurement_sections(builder, results, device)
    game_figures.add_game_sections(builder, layout)

    page = _render_html(layout, builder.sections)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    drawn = sum(section.missing_reason is None for section in builder.sections)
    log.info("report written to %s (%d of %d sections)", index, drawn, len(builder.sections))
    return index


def _load_device(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("device file %s is unreadable: %s", path, error)
        return None


def _add_measurement_sections(builder: ReportBuilder, results: dict, device: dict | None) -> None:
    no_device = None if device else "needs device.json (memsyn fit)"

    def first(protocol):
        return results[protocol][0].data if protocol in results else None

    iv, set_data, short, decay = first("iv-sweep"), first("set"), first("short-term"), first("bias-decay")
    builder.add_figure("iv-hysteresis", "I-V hysteresis",
                       lambda: measurement_figures.iv_hysteresis(iv),
                       *(["needs an iv-sweep results file"] if iv is None else []))
    builder.add_figure("set-transition", "SET transition",
                       lambda: measurement_figures.set_transition(set_data),
                       *(["needs a set results file"] if set_data is None else []))
    builder.add_figure("short-term-responses", "Short-term responses",
                       lambda: measurement_figures.short_term_responses(short),
                       *(["needs a short-term results file"] if short is None else []))
    builder.add_figure("df-heat-map", "dF over pulse amplitude and width",
                       lambda: measurement_figures.df_heat_map(device["short_term"]["table"]),
                       *([no_device] if no_device else []))
    needs_decay = [reason for reason in (
        "needs a bias-decay results file" if decay is None else None, no_device) if reason]
    builder.add_figure("decay-curves", "Decay curves with exponential fits",
                       lambda: measurement_figures.decay_curves(decay, device["decay"]["points"]),
                       *needs_decay)
    builder.add_figure("lambda-bias", "Lambda against bias with the sigmoid fit",
                       lambda: measurement_figures.lambda_against_bias(device["decay"]),
                       *([no_device] if no_device else []))
    needs_energy = [reason for reason in (
        "needs a short-term results file" if short is None else None, no_device) if reason]
    builder.add_figure("pulse-energy", "Pulse energy against dF",
                       lambda: measurement_figures.energy_against_df(
                           measurement_figures.pulse_responses(short), device["pulse_energy"]),
                       *needs_energy)


def _render_html(layout: RunLayout, sections: list[Section]) -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>memsyn report: {html.escape(layout.root.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "section{border-top:1px solid #ccc;padding:1em 0}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        ".missing{color:#a33}</style></head><body>",
        f"<h1>memsyn report: {html.escape(str(layout.root))}</h1>",
        f"<p>memsyn {html.escape(__version__)}, created {created}. Every figure lists the "
        "parameters behind it. Figures that could not be drawn say why.</p>",
        "<ul>",
    ]
    parts += [f"<li><a href='#{s.key}'>{html.escape(s.title)}</a>"
              + (" <span class='missing'>(missing)</span>" if s.missing_reason else "") + "</li>"
              for s in sections]
    parts.append("</ul>")
    for section in sections:
        parts.append(f"<section id='{section.key}'><h2>{html.escape(section.title)}</h2>")
        if section.missing_reason:
            parts.append(f"<p class='missing'>Not drawn: {html.escape(section.missing_reason)}.</p>")
        if section.png is not None:
            encoded = base64.b64encode(section.png.read_bytes()).decode("ascii")
            parts.append(f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{encoded}'>")
        if section.table_html:
            parts.append(section.table_html)
        if section.parameters:
            parts.append("<table><tr><th>parameter</th><th>value</th></tr>")
            parts += [f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                      for k, v in section.parameters.items()]
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
