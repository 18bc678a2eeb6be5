"""`memsyn energy`: synaptic energy of the games in a trace, memristor against GPU."""

from __future__ import annotations

import logging

from memsyn.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "energy",
        help="estimate the synaptic energy of a played game: memristor against GPU",
        description=(
            "Estimate the synaptic energy of the games in a trace written by 'memsyn pong play': "
            "memristor pulse and bias energy from the device parameter file, against the GPU "
            "energy of the same synapse operations. Writes energy.json (every number with its "
            "unit), a CSV of the most-updated synapse's conductance and PNG figures."
        ),
    )
    parser.add_argument("--device", required=True, metavar="FILE",
                        help="device parameter file (JSON, format memsyn-device)")
    parser.add_argument("--trace", required=True, metavar="FILE",
                        help="game trace written by 'memsyn pong play --trace' (.npz)")
    parser.add_argument(
        "--gpu-energy", metavar="FILE",
        help="per-operation GPU energies measured by benchmarks/gpu_energy.py; without it the "
             "built-in register-only estimate (5.9 pJ/flop fp16, 9.5 pJ/flop fp32, a lower "
             "bound without memory traffic) is used",
    )
    parser.add_argument(
        "--step-interval-s", type=float, metavar="S",
        help="network step interval in seconds, the time base of the learned Lambda "
             "(default: decay.step_interval_s of the device file)",
    )
    parser.add_argument(
        "--game-duration-s", type=float, metavar="S",
        help="duration of one game in seconds, which sets the bias-energy time step "
             "(default: frames / 60 Hz; the published study states about 50 s per game)",
    )
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for energy.json, the CSV and the figures (created if missing)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from stpn.energy import estimate_energy
    from stpn.energy_device import EnergyInputError

    try:
        results = estimate_energy(
            args.device, args.trace, args.out, args.gpu_energy,
            step_interval_s=args.step_interval_s,
            game_duration_s=args.game_duration_s,
            figures=not args.no_figures,
        )
    except EnergyInputError as error:
        raise UsageError(str(error)) from None

    print(format_summary(results))
    return 0


def format_summary(results: dict) -> str:
    """Return the short table that the command prints: energies per game, ratio, files."""
    memristor = results["memristor"]["per_game"]
    times = results["time_bases"]
    device = results["device"]
    trace = results["inputs"]["trace_file"]
    v_bias = device["v_bias_worst_case"]["value"]

    updates = results["memristor"]["updates"]
    lines = [
        (
            f"trace: {trace['games']} game(s), {trace['steps']} steps, {trace['synapses']} "
            f"synapses, {updates['count']} updates "
            f"({updates['share_never_updated']['value']:.1%} of synapses never updated)"
        ),
        (
            f"time bases: network step interval {times['step_interval']['value']:.4g} s "
            f"(Lambda), game duration {times['game_duration']['value']:.4g} s "
            f"({times['step_duration']['value'] * 1e3:.4g} ms per step)"
        ),
        "",
        "energy per game",
    ]
    rows = [
        ("memristor pulse", memristor["pulse"]),
        (f"memristor bias, {v_bias:g} V worst case", memristor["bias_worst_case"]),
        ("memristor total, worst case", memristor["total_worst_case"]),
        ("memristor bias, learned Lambda", memristor["bias_learned"]),
        ("memristor total, learned Lambda", memristor["total_learned"]),
    ]
    rows += [(f"GPU {case['label']}", case["per_game"]) for case in results["gpu"]["cases"]]
    for label, energy in rows:
        value = _joules(energy["value"]) if energy is not None else "     n/a (no decay sigmoid)"
        lines.append(f"  {label:<38}{value}")

    ratio = results["ratio"]
    lines += [
        "",
        (
            f"GPU ({ratio['gpu_case']}) / memristor worst case: "
            f"{ratio['gpu_best_over_memristor_worst_case']['value']:.3g}"
        ),
        f"GPU source: {results['gpu']['description']}",
    ]
    lines += [f"warning: {warning}" for warning in results["warnings"]]
    lines.append("")
    lines.append(f"results: {results['files']['results']}")
    lines.append(f"max-|dF| synapse trace: {results['files']['max_synapse_trace']}")
    for figure in results["files"].get("figures", []):
        lines.append(f"figure: {figure}")
    return "\n".join(lines)


def _joules(value: float) -> str:
    """Format an energy with an SI prefix, e.g. '36.2 mJ'."""
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:8.3f} {prefix}J"
    return f"{value:8.3g}  J"
