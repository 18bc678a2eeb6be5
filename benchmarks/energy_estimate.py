"""Time the synaptic energy estimate on a synthetic full-size game.

The game has the published size, 6826 steps over 64 x 2656 = 169,984 synapses. In a
share of the steps (default 10 %) a share of the synapses (default 1 %) gets an update.
The script writes the trace and a device file (the published figures plus a decay sigmoid
of test values) into a temporary folder. It then times loading, the replay of F, and the
whole ``estimate_energy`` with and without figures.

    .venv/bin/python benchmarks/energy_estimate.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stpn.device import PUBLISHED_DEVICE_PATH
from stpn.energy import estimate_energy
from stpn.energy_replay import replay_trace
from stpn.energy_synthetic import synthetic_trace, write_trace
from stpn.energy_trace import load_trace


def quantity(value, unit):
    return {"value": value, "stderr": None, "unit": unit}


def benchmark_device() -> dict:
    """Return the device file of published figures with a decay sigmoid of test values
    added (the study did not publish its sigmoid), so that both bias variants run."""
    device = json.loads(PUBLISHED_DEVICE_PATH.read_text())
    device["decay"]["sigmoid"] = {
        "L": quantity(0.9, "1"), "k": quantity(8.0, "1/V"), "V0": quantity(0.0, "V"),
        "Lambda0": quantity(0.05, "1"),
    }
    device["decay"]["points"] = [{"bias_v": -0.6}, {"bias_v": 0.6}]
    return device


def timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6826, help="network steps of the game")
    parser.add_argument("--update-step-share", type=float, default=0.1,
                        help="share of steps with updates (default %(default)s)")
    parser.add_argument("--updated-synapse-share", type=float, default=0.01,
                        help="share of synapses updated in such a step (default %(default)s)")
    parser.add_argument("--game-duration-s", type=float, default=None,
                        help="game duration in seconds (default: frames / 60 Hz)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic trace")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        device_path = folder / "device.json"
        device_path.write_text(json.dumps(benchmark_device()))
        device_sha256 = hashlib.sha256(device_path.read_bytes()).hexdigest()
        arrays, generate_s = timed(lambda: synthetic_trace(
            np.random.default_rng(args.seed), 64, 2656, args.steps, device_sha256=device_sha256,
            update_step_share=args.update_step_share,
            updated_synapse_share=args.updated_synapse_share,
        ))
        trace_path = write_trace(folder / "trace.npz", arrays)

        trace, load_s = timed(lambda: load_trace(trace_path))
        _, replay_s = timed(lambda: replay_trace(trace, tracked_index=0))
        _, no_figures_s = timed(lambda: estimate_energy(
            device_path, trace_path, folder / "a", figures=False,
            game_duration_s=args.game_duration_s))
        results, total_s = timed(lambda: estimate_energy(
            device_path, trace_path, folder / "b", game_duration_s=args.game_duration_s))

    updates = results["memristor"]["updates"]
    per_game = results["memristor"]["per_game"]
    print(f"game: {args.steps} steps x {trace.n_synapses} synapses, {updates['count']} updates, "
          f"{updates['share_never_updated']['value']:.1%} of synapses never updated "
          f"(trace generated in {generate_s:.1f} s)")
    duration_s = results["time_bases"]["game_duration"]["value"]
    print(f"memristor per game ({duration_s:.4g} s): pulse {per_game['pulse']['value']:.4g} J, "
          f"bias at 0.6 V {per_game['bias_worst_case']['value']:.4g} J, "
          f"learned bias {per_game['bias_learned']['value']:.4g} J")
    print(f"load trace            {load_s:6.2f} s")
    print(f"replay of F           {replay_s:6.2f} s")
    print(f"estimate, no figures  {no_figures_s:6.2f} s")
    print(f"estimate, figures     {total_s:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
