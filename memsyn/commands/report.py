"""`memsyn report`: write the HTML report of a run folder."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (and its PNGs) for a run folder",
        description=(
            "Write index.html and one PNG per figure for a run folder laid out as memsyn demo "
            "writes it: measurements/ (results files), device.json, agent/ (training metrics), "
            "energy/ (memsyn energy output). Parts that are missing are listed in the report "
            "with the reason instead of a figure."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder for the report (default: RUN_DIR/report)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from memsyn.report import build_report

    index = build_report(args.run_dir, args.out)
    print(f"report: {index}")
    return 0
