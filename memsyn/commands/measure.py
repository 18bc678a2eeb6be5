"""`memsyn measure`: run one protocol, or a campaign of protocols, on a bench.

    memsyn measure PROTOCOL [--bench FILE] [--param NAME=VALUE ...] [--seed N]
                   [--keep-waveforms] [--dry-run] --out DIR
    memsyn measure campaign CAMPAIGN.toml [--bench FILE] [--seed N] [--keep-waveforms]
                   [--dry-run] --out DIR

Every plan passes pre-flight against the bench limits before any output turns on. The
exit status is 0 when every run completed, 1 when one failed, 130 when one was aborted
(Ctrl+C) and 2 for bad input (nothing measured).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from instruments.safety import SafetyLimitError
from memsyn.errors import UsageError
from memsyn.logging_setup import progress_enabled

log = logging.getLogger(__name__)

EXIT_STATUS = {"completed": 0, "failed": 1, "aborted": 130}

# The keys of protocols.PROTOCOLS, listed here so that building the parser does not import
# PyMeasure (a test keeps the two in step).
PROTOCOL_NAMES = ("iv-sweep", "set", "short-term", "long-term-levels", "bias-decay")


def register(subparsers) -> None:
    names = ", ".join(PROTOCOL_NAMES)
    parser = subparsers.add_parser(
        "measure",
        help="run a measurement protocol or a campaign on a bench",
        description=(
            f"Run one protocol ({names}) or a campaign file of several, on the bench of a "
            "bench file (default: the simulated bench). Each run writes a PyMeasure results "
            "file (CSV) whose last line records whether it completed."
        ),
    )
    parser.add_argument(
        "protocol", metavar="PROTOCOL", choices=[*PROTOCOL_NAMES, "campaign"],
        help=f"protocol to run: {names}, or 'campaign' followed by a campaign file",
    )
    parser.add_argument("campaign_file", metavar="CAMPAIGN.toml", nargs="?",
                        help="campaign file (only with 'campaign')")
    parser.add_argument("--bench", metavar="FILE", type=Path, default=None,
                        help="bench file (default: benches/sim.toml, the simulated bench)")
    parser.add_argument(
        "--param", metavar="NAME=VALUE", action="append", default=[],
        help="set a protocol parameter, named with its SI unit, e.g. pulse_width_s=1e-4 or "
             "amplitudes_v=2,2.5,3 (repeatable; not with 'campaign'); see --list-params",
    )
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the simulated bench (default: the bench file's [sim] seed)")
    parser.add_argument("--keep-waveforms", action="store_true",
                        help="keep the scope records behind every read and pulse (.npz files "
                             "in a folder beside each results file)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and check the plan against the bench limits, then stop "
                             "without measuring")
    parser.add_argument("--list-params", action="store_true",
                        help="list the protocol's parameters with units and defaults, then stop")
    parser.add_argument("--out", metavar="DIR", type=Path, default=None,
                        help="output folder for the results files (required to measure)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from protocols.actions import RangeExceededError
    from protocols.campaign import CampaignError

    if args.list_params:
        return _list_parameters(args.protocol)
    try:
        if args.protocol == "campaign":
            return _run_campaign(args)
        return _run_protocol(args)
    except (CampaignError, SafetyLimitError, RangeExceededError) as error:
        raise UsageError(str(error)) from None


def _run_protocol(args) -> int:
    from protocols.campaign import make_procedure
    from protocols.runner import prepare_procedure, run_procedure

    if args.campaign_file is not None:
        raise UsageError(
            f"unexpected argument {args.campaign_file!r}: only 'campaign' takes a file; "
            "set parameters with --param NAME=VALUE"
        )
    procedure = make_procedure(args.protocol, _parse_params(args.param))
    # Check the output folder before the bench is opened, so that a missing --out touches
    # no instrument.
    out_dir = None if args.dry_run else _require_out(args)
    bench = _open_bench(args.bench, args.seed)
    try:
        summary = prepare_procedure(procedure, bench)
        if args.dry_run:
            _print_summary(args.protocol, summary)
            return 0
        path = _free_path(out_dir, args.protocol)
        with _progress_bar(args) as report:
            record = run_procedure(
                procedure, bench, path, seed=bench.description.get("seed", args.seed),
                keep_waveforms=args.keep_waveforms, progress=report,
            )
    finally:
        bench.close()

    print(f"{args.protocol}: {record.status} ({record.reason})")
    print(f"  {record.rows} rows in {record.path}")
    if record.waveforms:
        print(f"  waveforms in {record.waveforms}")
    print(f"  bench time {record.bench_time_s:.1f} s, wall time {record.wall_time_s:.1f} s")
    return EXIT_STATUS.get(record.status, 1)


def _run_campaign(args) -> int:
    from protocols.campaign import load_campaign, prepare_campaign, run_campaign

    if args.campaign_file is None:
        raise UsageError("missing campaign file: memsyn measure campaign CAMPAIGN.toml --out DIR")
    if args.param:
        raise UsageError("--param does not apply to a campaign; set parameters in the campaign file")
    campaign = load_campaign(args.campaign_file)
    out_dir = None if args.dry_run else _require_out(args)
    bench = _open_bench(args.bench, args.seed)
    try:
        if args.dry_run:
            procedures = prepare_campaign(campaign, bench, args.out or Path("."))
            for step, procedure in zip(campaign.steps, procedures):
                _print_summary(f"{step.index:02d} {step.name} ({step.protocol})", procedure.summary)
            total_s = sum(procedure.summary.duration_s for procedure in procedures)
            print(f"campaign {campaign.name}: {len(procedures)} steps, about {total_s:.0f} s of bench time")
            return 0
        with _progress_bar(args) as report:
            record = run_campaign(
                campaign, bench, out_dir, seed=bench.description.get("seed", args.seed),
                keep_waveforms=args.keep_waveforms, progress=report,
            )
    finally:
        bench.close()

    print(f"campaign {campaign.name}: {record.status}")
    for step in record.steps:
        line = f"  {step['index']:02d} {step['name']:<20} {step['status']:<9}"
        if "rows" in step:
            line += f" {step['rows']:>6} rows  {out_dir / step['file']}"
        print(line)
        if step["status"] not in ("completed", "not run"):
            print(f"     reason: {step['reason']}")
    print(f"  record of the campaign: {out_dir / 'campaign.json'}")
    return EXIT_STATUS.get(record.status, 1)


def _parse_params(items: list[str]) -> dict[str, object]:
    """Turn ``NAME=VALUE`` arguments into parameter values (strings the parameters convert)."""
    parameters: dict[str, object] = {}
    for item in items:
        name, separator, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not name or not value:
            raise UsageError(f"--param {item!r} must have the form NAME=VALUE, e.g. repeats=3")
        parameters[name] = value
    return parameters


def _open_bench(path: Path | None, seed: int | None):
    from memsyn.bench_config import default_bench_path, load_bench_config
    from memsyn.bench_factory import open_bench

    config = load_bench_config(path if path is not None else default_bench_path())
    return open_bench(config, seed)


def _require_out(args) -> Path:
    if args.out is None:
        raise UsageError("missing --out DIR: the folder the results files are written to")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    return args.out


def _free_path(out_dir: Path, protocol: str) -> Path:
    """Return ``out_dir/<protocol>.csv``, or ``<protocol>-2.csv`` and so on if it exists."""
    path = out_dir / f"{protocol}.csv"
    number = 2
    while path.exists() or path.with_name(path.stem + "-waveforms").exists():
        path = out_dir / f"{protocol}-{number}.csv"
        number += 1
    return path


def _print_summary(label: str, summary) -> None:
    print(
        f"{label}: {summary.steps} steps, {summary.reads} reads, {summary.pulses} pulses, "
        f"{summary.sweep_points} sweep points; device voltage {summary.min_device_voltage_v:g} "
        f"... {summary.max_device_voltage_v:g} V; about {summary.duration_s:.0f} s of bench time"
    )


class _progress_bar:
    """A tqdm bar on standard error fed by the runner's progress callback."""

    def __init__(self, args):
        self.enabled = progress_enabled(getattr(args, "quiet", False))
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        self.bar = tqdm(total=100.0, unit="%", file=sys.stderr,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")

        def report(percent: float, label: str) -> None:
            self.bar.set_description_str(label, refresh=False)
            self.bar.n = min(100.0, percent)
            self.bar.refresh()

        return report

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def _list_parameters(protocol: str) -> int:
    from protocols import PROTOCOLS

    if protocol == "campaign":
        raise UsageError("a campaign has no parameters of its own; list those of a protocol instead")
    procedure = PROTOCOLS[protocol]()
    print(f"parameters of {protocol} (set with --param NAME=VALUE):")
    for name, parameter in sorted(procedure.parameter_objects().items()):
        description = getattr(parameter, "description", None) or ""
        print(f"  {name:<24} default {parameter}  {description}")
    return 0
