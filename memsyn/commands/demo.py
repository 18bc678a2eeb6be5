"""`memsyn demo`: the main job end to end on the simulated bench."""

from __future__ import annotations

from pathlib import Path

from memsyn.logging_setup import progress_enabled


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="measure, fit, play Pong, estimate energy and write the report, in one run",
        description=(
            "Run the quick measurement campaign on the simulated bench, fit the device file, "
            "let the shipped m-STPN agent (or an untrained one) play a game of Pong under the "
            "fitted constraints, estimate the synaptic energy of the game on memristors and on "
            "a GPU, and write the HTML report. Every output goes into one run folder."
        ),
    )
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="run folder to create (default: runs/demo-<UTC time>)")
    parser.add_argument("--published", action="store_true",
                        help="run the full published campaign instead of the quick one "
                             "(about 3.4 h of bench time, simulated in minutes)")
    parser.add_argument("--bench", type=Path, metavar="FILE",
                        help="bench file (default: benches/sim.toml, the simulated bench)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the simulated bench and of the game (default 1)")
    parser.add_argument("--games", type=int, default=1, help="games of Pong to play (default 1)")
    parser.add_argument("--step-interval-s", type=float, default=None, metavar="S",
                        help="network step interval in seconds, the time base of Lambda "
                             "(default: memsyn fit's default)")
    parser.add_argument("--untrained", action="store_true",
                        help="play with untrained weights instead of the shipped checkpoint")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from tqdm import tqdm

    from memsyn.errors import UsageError
    from memsyn.pipeline import STEPS, default_run_dir, run_demo

    if args.games < 1:
        raise UsageError(f"--games must be at least 1, got {args.games}")
    run_dir = args.out or default_run_dir()
    bars = {}
    show = progress_enabled(args.quiet)

    def progress(step: str, percent: float) -> None:
        if not show:
            return
        if step not in bars:
            for other in bars.values():
                other.close()
            bars[step] = tqdm(total=100, desc=f"{STEPS.index(step) + 1}/{len(STEPS)} {step}",
                              unit="%", bar_format="{desc:<12} {bar} {n:3.0f}%")
        bar = bars[step]
        bar.update(max(0.0, min(100.0, percent)) - bar.n)

    try:
        result = run_demo(
            run_dir, published=args.published, bench_file=args.bench, seed=args.seed,
            games=args.games, step_interval_s=args.step_interval_s, untrained=args.untrained,
            progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()

    print(f"memsyn demo finished in {result.run_dir}")
    print(f"  agent: {result.agent}; game returns: {', '.join(f'{r:+.0f}' for r in result.game_returns)}")
    for name, path in result.outputs.items():
        print(f"  {name:<14} {path}")
    energy = result.energy
    if energy:
        per_game = energy["memristor"]["per_game"]
        ratio = energy["ratio"]["gpu_best_over_memristor_worst_case"]["value"]
        print(f"  memristor energy per game (worst-case bias): "
              f"{per_game['total_worst_case']['value'] * 1e3:.3g} mJ; "
              f"GPU best case / memristor: {ratio:.3g} ({energy['ratio']['note']})")
    return 0
