"""`memsyn fit`: fit a campaign's results files into a device parameter file, or check one."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

# Only dependency-free modules here: lmfit, scipy, pandas and matplotlib load in the
# handlers, so that building the parser for --help stays fast.
from fitting.defaults import DEFAULT_STEP_INTERVAL_S, DF_STEP_GRID_S
from memsyn.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit results files into a device parameter file (JSON), or check such a file",
        description=(
            "Fit the results files of one measurement campaign (short-term and bias-decay runs "
            "required, long-term-levels and set runs used when present) into the device "
            "parameter file that 'memsyn pong' and 'memsyn energy' read. With --check, validate "
            "an existing device file and print a summary instead."
        ),
    )
    parser.add_argument(
        "results_dir", nargs="?", metavar="RESULTS_DIR", type=Path,
        help="directory with the campaign's results files (*.csv, searched recursively)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="device parameter file to write")
    parser.add_argument(
        "--step-interval-s", type=float, default=DEFAULT_STEP_INTERVAL_S, metavar="S",
        help=(
            "network step interval in seconds that turns a decay time tau into the per-step "
            f"factor Lambda = exp(-S / tau) (default {DEFAULT_STEP_INTERVAL_S:g} s; the "
            "published material does not state it)"
        ),
    )
    parser.add_argument(
        "--df-step-grid-ns", type=float, default=DF_STEP_GRID_S * 1e9, metavar="NS",
        help=(
            "grid in nS to which the largest dF standard deviation is rounded up to give the "
            f"discretisation step df_step (default {DF_STEP_GRID_S * 1e9:g} nS: the published "
            "spread is below 1 nS, so the published step is 1 nS)"
        ),
    )
    parser.add_argument("--plots", type=Path, metavar="DIR", help="also write one PNG per fit into DIR")
    parser.add_argument(
        "--continue-on-warning", action="store_true",
        help=(
            "record data-quality problems (failed or bounded fits, missing uncertainties, NaN "
            "rows, backward times) under 'warnings' in the file instead of stopping"
        ),
    )
    parser.add_argument(
        "--check", type=Path, metavar="FILE",
        help="validate a device parameter file and print its summary (no fitting)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.check is not None:
        if args.results_dir is not None or args.out is not None:
            raise UsageError("--check takes only a device file; leave out RESULTS_DIR and --out")
        return _check(args.check)
    if args.results_dir is None or args.out is None:
        raise UsageError("give RESULTS_DIR and --out FILE to fit, or --check FILE to validate")
    if not (math.isfinite(args.step_interval_s) and args.step_interval_s > 0):
        raise UsageError(f"--step-interval-s must be a positive number of seconds, got {args.step_interval_s!r}")
    if not (math.isfinite(args.df_step_grid_ns) and args.df_step_grid_ns > 0):
        raise UsageError(f"--df-step-grid-ns must be a positive number of nS, got {args.df_step_grid_ns!r}")

    from fitting.campaign import fit_campaign
    from fitting.device_file import summarize_device, write_device_file
    from fitting.errors import FittingError

    try:
        fit = fit_campaign(
            args.results_dir,
            step_interval_s=args.step_interval_s,
            continue_on_warning=args.continue_on_warning,
            df_step_grid_s=args.df_step_grid_ns * 1e-9,
        )
    except FittingError as error:
        raise UsageError(f"{error}; no device file written") from error

    plots = []
    if args.plots is not None:
        from fitting.plots import write_fit_plots  # matplotlib loads only when plots are wanted

        try:
            plots = write_fit_plots(fit, args.plots)
        except OSError as error:
            raise UsageError(f"cannot write plots to {args.plots}: {error}; no device file written") from error
    try:
        write_device_file(fit.document, args.out)
    except (FittingError, OSError) as error:
        raise UsageError(f"{error}; no device file written") from error

    print(summarize_device(fit.document))
    print(f"device file: {args.out}")
    if plots:
        print(f"plots: {len(plots)} PNG files in {args.plots}")
    if fit.warnings:
        print(f"{len(fit.warnings)} warnings are listed under 'warnings' in the device file")
    return 0


def _check(path: Path) -> int:
    from fitting.device_file import load_device_file, summarize_device
    from fitting.errors import FittingError

    try:
        document = load_device_file(path)
    except FittingError as error:
        raise UsageError(str(error)) from error
    print(summarize_device(document))
    print(f"{path}: valid {document['format']} version {document['version']}")
    return 0
