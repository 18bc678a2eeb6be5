"""Report sections of the network side: training curves, a synapse's G(t), energy."""

from __future__ import annotations

import html
import json
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from memsyn.report.run_layout import RunLayout

log = logging.getLogger(__name__)

# Figures that `memsyn energy` writes into its output folder.
ENERGY_FIGURES = {
    "synapse-trace": ("One synapse's conductance over a game", "energy-max-synapse.png"),
    "energy-histograms": ("Energy per synapse", "energy-histograms.png"),
    "energy-comparison": ("Memristor against GPU, per game", "energy-comparison.png"),
}


def add_game_sections(builder, layout: RunLayout) -> None:
    """Add the training, synapse-trace and energy sections of a run folder."""
    episodes = sorted(layout.agent.rglob("episodes.csv")) if layout.agent.is_dir() else []
    if episodes:
        builder.add_figure("training-curves", "Training curves",
                           lambda: training_curves(episodes[0]))
    else:
        builder.add_missing("training-curves", "Training curves",
                            "needs a training run (episodes.csv) under agent/")

    energy_json = layout.energy / "energy.json"
    results = _load_json(energy_json)
    for key, (title, file_name) in ENERGY_FIGURES.items():
        path = layout.energy / file_name
        if path.exists():
            builder.add_image(key, title, path, _figure_parameters(key, results))
        else:
            builder.add_missing(key, title, f"needs {file_name} from memsyn energy")

    if results is None:
        builder.add_missing("energy-table", "Memristor against GPU", "needs energy/energy.json from memsyn energy")
    else:
        try:
            table, parameters = energy_table(results)
        except (KeyError, TypeError, ValueError) as error:
            builder.add_missing("energy-table", "Memristor against GPU", f"energy.json is incomplete: {error}")
        else:
            builder.add_table("energy-table", "Memristor against GPU", table, parameters)


def training_curves(episodes_csv):
    """Plot episode return against frames with a running mean, and the losses when present."""
    episodes = pd.read_csv(episodes_csv)
    updates_csv = episodes_csv.parent / "updates.csv"
    updates = pd.read_csv(updates_csv) if updates_csv.exists() else None

    figure, (returns, losses) = plt.subplots(1, 2, figsize=(11, 4))
    returns.plot(episodes["frames"], episodes["return"], ".", ms=3, alpha=0.5, label="episode")
    window = max(1, min(20, len(episodes) // 5))
    running = episodes["return"].rolling(window, min_periods=1).mean()
    returns.plot(episodes["frames"], running, "-", label=f"mean of {window}")
    returns.set(xlabel="Frames", ylabel="Episode return", title="Return against frames")
    returns.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    returns.legend()
    if updates is not None and len(updates):
        for column in ("policy_loss", "value_loss", "entropy"):
            if column in updates:
                losses.plot(updates["frames"], updates[column], lw=0.8, label=column)
        losses.set(xlabel="Frames", ylabel="Loss per update (policy, value) or entropy (nats)",
                   title="Losses")
        losses.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        losses.legend()
    else:
        losses.set_axis_off()
    figure.tight_layout()

    parameters = {
        "episodes": len(episodes),
        "frames": int(episodes["frames"].max()) if len(episodes) else 0,
        "best return": f"{episodes['return'].max():g}" if len(episodes) else "n/a",
        f"mean of the last {window} returns": f"{running.iloc[-1]:.2f}" if len(episodes) else "n/a",
        "metrics file": str(episodes_csv),
    }
    return figure, parameters


def energy_table(results: dict):
    """Return an HTML table of memristor and GPU energy per game, and its parameters."""
    memristor = results["memristor"]["per_game"]
    rows = [
        ("memristor: pulses", memristor["pulse"]),
        ("memristor: bias, worst case", memristor["bias_worst_case"]),
        ("memristor: total, worst case", memristor["total_worst_case"]),
    ]
    if memristor.get("bias_learned"):
        rows.append(("memristor: bias, learned Lambda", memristor["bias_learned"]))
    if memristor.get("total_learned"):
        rows.append(("memristor: total, learned Lambda", memristor["total_learned"]))
    for case in results["gpu"]["cases"]:
        rows.append((f"GPU: {case['label']}", case["per_game"]))

    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_joules(quantity)}</td></tr>" for name, quantity in rows
    )
    table = f"<table><tr><th>energy per game</th><th>value</th></tr>{cells}</table>"

    time_bases = results["time_bases"]
    ratio = results["ratio"]
    parameters = {
        "step interval (Lambda time base)": _quantity_text(time_bases["step_interval"]),
        "game duration": _quantity_text(time_bases["game_duration"]),
        "GPU source": results["gpu"].get("source", "unknown"),
        "GPU best case over memristor (worst case)": _quantity_text(ratio["gpu_best_over_memristor_worst_case"]),
        "ratio note": ratio.get("note", ""),
        "share of synapses never updated": _quantity_text(results["memristor"]["updates"]["share_never_updated"]),
    }
    return table, parameters


# Readable labels of the "max_update_synapse" entries of energy.json.
SYNAPSE_LABELS = {
    "index": "synapse index (post x inputs + pre)",
    "post": "postsynaptic unit",
    "pre": "presynaptic input",
    "updates": "updates in the game",
    "abs_df_total": "total |dF|",
    "abs_df_total_conductance": "total |dF| as conductance",
    "pulse": "pulse energy",
    "bias_worst_case": "bias energy, worst case",
    "bias_learned": "bias energy, learned Lambda",
    "conductance_trace_file": "G(t) file",
}


def _figure_parameters(key: str, results: dict | None) -> dict:
    if results is None:
        return {}
    try:
        if key == "synapse-trace":
            section = results["memristor"]["max_update_synapse"]
            if not section:
                return {"note": "no synapse received an update in this game"}
            return {SYNAPSE_LABELS.get(name, name):
                    _quantity_text(value) if isinstance(value, dict) else value
                    for name, value in section.items()
                    if value is not None and not isinstance(value, list)}
        if key == "energy-histograms":
            return {"synapses": results["inputs"]["trace_file"]["synapses"],
                    "games": results["inputs"]["trace_file"]["games"]}
        if key == "energy-comparison":
            return {"GPU case": results["ratio"]["gpu_case"]}
    except (KeyError, TypeError) as error:
        log.debug("energy.json lacks parameters for %s: %s", key, error)
    return {}


def _load_json(path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("%s is unreadable: %s", path, error)
        return None


def _joules(quantity: dict) -> str:
    value = float(quantity["value"])
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(value) >= scale or unit == "pJ":
            return f"{value / scale:.4g} {unit}"
    return f"{value:g} J"


def _quantity_text(quantity) -> str:
    if not isinstance(quantity, dict) or "value" not in quantity:
        return str(quantity)
    value = quantity["value"]
    unit = quantity.get("unit", "")
    text = f"{value:.4g}" if isinstance(value, (int, float, np.floating)) else str(value)
    return f"{text} {unit}".strip() if unit not in ("", "1") else text
