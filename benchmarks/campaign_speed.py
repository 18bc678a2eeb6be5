"""Run a campaign on the simulated bench and report bench time against wall time.

    .venv/bin/python benchmarks/campaign_speed.py                       # campaigns/published.toml
    .venv/bin/python benchmarks/campaign_speed.py --campaign campaigns/quick.toml --profile 20

The campaign runs through the same code as ``memsyn measure campaign``, on the default
bench file (``benches/sim.toml``), into a temporary folder that is deleted afterwards
(``--out`` keeps it). For every step the script prints the bench time (virtual clock),
the wall time, their ratio, the rows written and the wall time per row. ``--profile N``
also prints the N functions with the largest cumulative time (cProfile), to show where
the wall time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from memsyn.bench_config import default_bench_path, load_bench_config
from memsyn.bench_factory import open_bench
from protocols.campaign import load_campaign, run_campaign

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, default=REPOSITORY / "campaigns" / "published.toml",
                        help="campaign file (default: campaigns/published.toml)")
    parser.add_argument("--bench", type=Path, default=default_bench_path(),
                        help="bench file (default: benches/sim.toml)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated bench")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the results in this folder (default: a deleted temporary folder)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the largest cumulative time")
    args = parser.parse_args()

    campaign = load_campaign(args.campaign)
    bench = open_bench(load_bench_config(args.bench), seed=args.seed)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="campaign-speed-"))
    profiler = cProfile.Profile() if args.profile else None

    wall_start = time.perf_counter()
    try:
        if profiler is not None:
            profiler.enable()
        record = run_campaign(campaign, bench, out_dir, seed=args.seed)
        if profiler is not None:
            profiler.disable()
    finally:
        bench.close()
        if args.out is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    wall_s = time.perf_counter() - wall_start

    print(f"campaign {campaign.name} ({args.campaign}) on {args.bench}, seed {args.seed}: {record.status}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {_cpu_count()} CPU cores")
    print(f"{'step':<22} {'bench s':>9} {'wall s':>8} {'ratio':>7} {'rows':>6} {'ms/row':>7}")
    bench_total_s = 0.0
    for step in record.steps:
        if "bench_time_s" not in step:
            print(f"{step['name']:<22} {step['status']}")
            continue
        bench_total_s += step["bench_time_s"]
        ratio = step["bench_time_s"] / step["wall_time_s"]
        per_row_ms = 1000 * step["wall_time_s"] / max(step["rows"], 1)
        print(f"{step['name']:<22} {step['bench_time_s']:>9.1f} {step['wall_time_s']:>8.1f} "
              f"{ratio:>7.1f} {step['rows']:>6} {per_row_ms:>7.2f}")
    print(f"{'total':<22} {bench_total_s:>9.1f} {wall_s:>8.1f} {bench_total_s / wall_s:>7.1f}")

    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
