"""How much faster than real time the simulated bench runs a measurement campaign.

Two workloads:

* ``synthetic`` (default): about one hour of bench time driven through the real drivers.
  It runs a SET train of 100 pulses of 4 V, 500 us with a 240 s settle, and 30 I-V cycles
  from -2 V to +2 V on the SMU. Then come 5 repeats x 13 biases of a bias-decay curve: a
  captured 3.5 V, 500 us pulse, then scope reads on a log time axis out to 40 s with the
  bias held in between.
* ``--campaign FILE``: a protocol campaign file run with ``protocols.campaign`` on the
  simulated bench (for example ``campaigns/published.toml``).

It prints virtual bench time, wall time and process CPU time; ``--record`` also writes
them into this benchmark's section of ``docs/benchmarks.md``. Run from the repository root:

    .venv/bin/python benchmarks/sim_speed.py
    .venv/bin/python benchmarks/sim_speed.py --campaign campaigns/published.toml --record
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from instruments.safety import SafetyLimits
from sim_backend.bench import build_simulated_bench

LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)
SECTION_TITLE = "## Simulated bench speed (`benchmarks/sim_speed.py`)"
READ_WINDOW_S = 10e-3
READ_POINTS = 1000
BIASES_V = np.round(np.linspace(-0.6, 0.6, 13), 2)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, help="campaign TOML file to run instead of the synthetic hour")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated bench (default 1)")
    parser.add_argument("--gain", type=float, default=1e4,
                        help="amplifier gain in V/A (default 1e4, low-noise mode)")
    parser.add_argument("--record", action="store_true",
                        help="write the result into this benchmark's section of docs/benchmarks.md")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------- synthetic


def configure_scope(bench, window_s: float, points: int, mode: str, reference_pct: float) -> None:
    scope = bench.scope
    scope.timebase_scale = window_s / 10.0
    scope.timebase_reference = reference_pct
    scope.sample_rate = points / window_s
    scope.trigger_mode = mode


def configure_pulse(bench, amplitude_v: float, width_s: float, count: int, period_s: float) -> None:
    channel = bench.generator.ch_1
    channel.output = False
    channel.function = "PULS"
    channel.pulse_period = period_s
    channel.pulse_width = width_s
    channel.set_pulse_levels_v(0.0, amplitude_v)
    channel.burst_ncycles = count
    channel.burst_state = True
    channel.trigger_source = "BUS"
    channel.output = True


def scope_read(bench) -> float:
    """Take one AUTO-mode read of the current; return the conductance at 0.6 V."""
    bench.scope.single_acquisition(1.0)
    _, output_v = bench.scope.read_waveform(1)
    return float(np.mean(bench.amplifier.current_a(output_v))) / 0.6


def run_synthetic(bench) -> dict:
    """Run the synthetic hour; return counts of what it did."""
    counts = {"reads": 0, "pulses": 0, "sweep points": 0}
    scope, smu = bench.scope, bench.smu
    for channel, scale in ((scope.ch_1, 0.05), (scope.ch_2, 0.5)):
        channel.state = True
        channel.scale = scale
    scope.ch_1.position = 4.0
    scope.ch_2.position = -4.0
    scope.trigger_source = "CHAN2"
    scope.ch_2.trigger_level = 1.0
    smu.current_limit_a = 1e-5
    smu.aperture_s = 1e-3
    smu.source_voltage_v = 0.0
    smu.output_enabled = True

    # SET train and settle.
    configure_pulse(bench, 4.0, 500e-6, 100, 1e-3)
    bench.generator.trigger()
    counts["pulses"] += 100
    bench.clock.sleep(240.0)

    # I-V cycles.
    up = np.arange(0.0, 2.0 + 1e-9, 0.05)
    cycle = np.concatenate([up, up[::-1][1:], -up[1:], -up[::-1][1:]])
    for _ in range(30):
        smu.sweep(cycle, aperture_s=5e-3, source_delay_s=0.0)
        counts["sweep points"] += cycle.size
    smu.source_voltage_v = 0.0
    bench.clock.sleep(60.0)

    # Bias-controlled decay: captured main pulse, then reads on a log time axis.
    configure_pulse(bench, 3.5, 500e-6, 1, 1e-3)
    read_times_s = np.geomspace(1e-2, 40.0, 24)
    for _repeat in range(5):
        for bias_v in BIASES_V:
            smu.source_voltage_v = float(bias_v)
            configure_scope(bench, 2e-3, 2000, "NORM", 10.0)
            bench.clock.sleep(0.5)
            scope.arm()
            bench.generator.trigger()
            scope.wait_for_acquisition(1.0)
            scope.read_waveform(1)
            scope.read_waveform(2)
            counts["pulses"] += 1
            pulse_end_s = bench.clock.now()
            configure_scope(bench, READ_WINDOW_S, READ_POINTS, "AUTO", 0.0)
            for read_s in read_times_s:
                wait_s = pulse_end_s + read_s - bench.clock.now()
                if wait_s > 0:
                    bench.clock.sleep(wait_s)
                smu.source_voltage_v = 0.6
                scope_read(bench)
                smu.source_voltage_v = float(bias_v)
                counts["reads"] += 1
            bench.clock.sleep(20.0)
    bench.shutdown()
    return counts


# ---------------------------------------------------------------------------------- campaign


def run_campaign_file(bench, path: Path, seed: int) -> dict:
    from protocols.campaign import load_campaign, run_campaign

    campaign = load_campaign(path)
    with tempfile.TemporaryDirectory() as out_dir:
        record = run_campaign(campaign, bench, out_dir, seed=seed)
    return {"status": record.status, "steps": len(campaign.steps)}


# ---------------------------------------------------------------------------------- report


def measure(args: argparse.Namespace) -> dict:
    bench = build_simulated_bench(LIMITS, args.gain, "low_noise", seed=args.seed)
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    if args.campaign is None:
        details = run_synthetic(bench)
        workload = "synthetic hour"
    else:
        details = run_campaign_file(bench, args.campaign, args.seed)
        workload = f"campaign {args.campaign}"
    wall_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    virtual_s = bench.clock.now()
    return {
        "workload": workload,
        "details": details,
        "virtual_s": virtual_s,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "speedup_wall": virtual_s / wall_s,
        "speedup_cpu": virtual_s / cpu_s,
        "wall_per_hour_s": 3600.0 * wall_s / virtual_s,
        "cpu_per_hour_s": 3600.0 * cpu_s / virtual_s,
    }


def format_row(result: dict) -> str:
    return (
        f"| {result['workload']} | {result['virtual_s']:.0f} s ({result['virtual_s'] / 3600:.2f} h) "
        f"| {result['wall_s']:.1f} s | {result['cpu_s']:.1f} s | {result['speedup_wall']:.0f}x "
        f"| {result['speedup_cpu']:.0f}x | {result['cpu_per_hour_s']:.1f} s |"
    )


def record_result(result: dict, command: str) -> None:
    """Replace this benchmark's row for the same workload in docs/benchmarks.md.

    The file is read right before it is written, and only this benchmark's section changes.
    """
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    before, after, rows, notes, kept = _take_section(text)

    rows[result["workload"]] = format_row(result)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    invocation = f".venv/bin/python {command}"
    notes = [note for note in notes if not note.startswith(f"- `{invocation}`")]
    notes.append(f"- `{invocation}`: {machine}, load average {load:.1f} at the end of the run.")

    section = _render_section(rows, notes) + kept
    if after:
        path.write_text(before + section + "\n" + after)
    else:
        path.write_text(before.rstrip("\n") + "\n\n" + section)


def _take_section(text: str) -> tuple[str, str, dict[str, str], list[str], str]:
    """Split ``text`` around this benchmark's section.

    Returns the text before and after the section, its result rows and command notes, and
    its subsections (``### ...`` to the end of the section, written by hand), which are
    kept as they are. Without the section, all text counts as before it.
    """
    start = text.find(SECTION_TITLE)
    if start < 0:
        return text, "", {}, [], ""
    end = text.find("\n## ", start + len(SECTION_TITLE))
    end = len(text) if end < 0 else end + 1
    subsection = text.find("\n### ", start, end)
    kept = "" if subsection < 0 else "\n" + text[subsection + 1:end].rstrip("\n") + "\n"
    generated_end = end if subsection < 0 else subsection + 1
    rows: dict[str, str] = {}
    notes: list[str] = []
    for line in text[start:generated_end].splitlines():
        match = re.match(r"\| (synthetic hour|campaign \S+) \|", line)
        if match:
            rows[match.group(1)] = line
        elif line.startswith("- `.venv/bin/python benchmarks/sim_speed.py"):
            notes.append(line)
    return text[:start], text[end:], rows, notes, kept


def _render_section(rows: dict[str, str], notes: list[str]) -> str:
    header = (
        f"{SECTION_TITLE}\n\n"
        "Virtual bench time that the simulated bench (real drivers, simulated instruments and\n"
        "device, virtual clock) gets through per second of computing. CPU time is the process\n"
        "time of the run; wall time depends on what else the machine runs. Import time is not\n"
        "included. Goal: one hour of bench time in under 10 s. The cost follows the number of\n"
        "instrument commands and scope reads, not the bench time, because waits are computed in\n"
        "closed form. A protocol read costs six scope messages through PyMeasure (acquire,\n"
        "header and data of two channels, one error-queue read), one device-model call and\n"
        "the noise of two 1000-sample channels. The synthetic hour drives the drivers\n"
        "directly: its reads download the current channel only, and it sends each setting\n"
        "with its own error-queue read.\n\n"
        "| workload | virtual time | wall time | CPU time | speed-up (wall) | speed-up (CPU) "
        "| CPU s per bench hour |\n|---|---|---|---|---|---|---|\n"
    )
    footer = "\nCommands (from the repository root) and machines of the rows above:\n\n"
    return header + "\n".join(rows.values()) + "\n" + footer + "\n".join(notes) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = measure(args)
    print(f"workload:      {result['workload']} {result['details']}")
    print(f"virtual time:  {result['virtual_s']:.1f} s")
    print(f"wall time:     {result['wall_s']:.2f} s  ({result['speedup_wall']:.0f}x real time)")
    print(f"CPU time:      {result['cpu_s']:.2f} s  ({result['speedup_cpu']:.0f}x real time)")
    print(f"per bench hour: {result['wall_per_hour_s']:.1f} s wall, {result['cpu_per_hour_s']:.1f} s CPU")
    if args.record:
        command = "benchmarks/sim_speed.py" + (f" --campaign {args.campaign}" if args.campaign else "")
        record_result(result, command)
        print("recorded in docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
