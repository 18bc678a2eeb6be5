"""Synaptic energy of a game played by an m-STPN agent: memristor against GPU.

Memristor, per synapse i of the trace (device-file formulas in ``stpn.energy_device``):

* pulse energy: ``c * (|dF| * siemens_per_weight_unit / 1 nS) ** alpha`` for each non-zero
  update dF (simulated weight units);
* bias energy: ``V_i**2 * sum_t G_meas_i(t) * dt`` with
  ``G_meas = g_min + siemens_per_weight_unit * |W + F_t|``, in two variants: the worst-case
  bias ``bias_power.v_bias`` (published 0.6 V) on every synapse, and the bias ``V_i`` that
  realises the synapse's learned Lambda through the inverse of the decay sigmoid. The
  second variant needs the sigmoid; without it (as in the file of published figures)
  its values are None.

The read current that the bias drives also computes the input x weight product (I = G U),
so the product costs no energy beyond the bias energy.

GPU (``stpn.gpu_energy_model``): the four operations of a step for every synapse, from
per-operation energies, measured or estimated.

Time bases, both explicit parameters reported with every result:

* the network step interval (default: the device file's ``decay.step_interval_s``) is the
  time base of Lambda. A learned Lambda is converted to the device file's time base
  before the bias that realises it is looked up.
* the game duration (default: frames / 60 Hz, i.e. ``n_steps * frame_skip / 60`` per game,
  the emulator's real-time rate) sets the step duration ``dt`` of the bias-energy integral.
  The published study states that a game lasts about 50 s (``PUBLISHED_GAME_DURATION_S``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from stpn.energy_device import EnergyDevice, EnergyInputError, load_energy_device
from stpn.energy_replay import DEFAULT_REPLAY_RTOL, ReplayResult, check_replay, replay_trace
from stpn.energy_trace import GameTrace, load_trace
from stpn.gpu_energy_model import (
    OPERATION_DESCRIPTIONS,
    GpuCase,
    GpuEnergyModel,
    load_gpu_energy,
    register_only_estimate,
)

log = logging.getLogger(__name__)

ENERGY_FORMAT = "memsyn-energy"
ENERGY_VERSION = 1

# Real-time frame rate of the Atari 2600 emulator (ALE), in frames per second.
EMULATOR_FRAME_RATE_HZ = 60.0
# "A game lasts about 50 s" in the published study, for 6826 steps (7.3 ms a step).
PUBLISHED_GAME_DURATION_S = 50.0

RESULTS_FILE = "energy.json"
MAX_SYNAPSE_CSV = "energy-max-synapse.csv"
HISTOGRAM_BINS = 40


@dataclass(frozen=True)
class TimeBases:
    """The two time bases of the estimate, with where each value came from.

    ``game_duration_s`` is the mean duration of a game; every network step of the trace
    lasts ``step_dt_s = game_duration_s * n_games / n_steps``.
    """

    step_interval_s: float
    step_interval_source: str
    game_duration_s: float
    game_duration_source: str
    step_dt_s: float


@dataclass(frozen=True)
class LearnedBias:
    """Per-synapse bias in volts that realises each learned Lambda, and how many synapses
    needed a bias outside the measured range (set to the nearest end of that range)."""

    bias_v: np.ndarray
    n_outside: int


@dataclass(frozen=True)
class SynapseEnergies:
    """Per-synapse energies over the whole trace, in joules, and update statistics.
    ``bias_learned_j`` is None when the device file has no decay sigmoid."""

    pulse_j: np.ndarray
    bias_worst_j: np.ndarray
    bias_learned_j: np.ndarray | None
    abs_df_total: np.ndarray
    update_count: np.ndarray


def resolve_time_bases(
    device: EnergyDevice,
    trace: GameTrace,
    step_interval_s: float | None = None,
    game_duration_s: float | None = None,
) -> TimeBases:
    """Return the time bases, taking defaults from the device file and the trace.

    Raises EnergyInputError when a given value is not a positive finite number of seconds.
    """
    for name, value in (("step interval", step_interval_s), ("game duration", game_duration_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise EnergyInputError(f"the {name} must be a positive number of seconds, got {value}")

    if step_interval_s is None:
        step_interval_s = device.step_interval_s
        step_interval_source = "device file decay.step_interval_s"
    else:
        step_interval_source = "given"

    if game_duration_s is None:
        frames = trace.n_steps * trace.frame_skip
        game_duration_s = frames / EMULATOR_FRAME_RATE_HZ / trace.n_games
        game_duration_source = (
            f"frames / {EMULATOR_FRAME_RATE_HZ:g} Hz (n_steps x frame_skip / "
            f"{EMULATOR_FRAME_RATE_HZ:g}, mean over games); the published study states about "
            f"{PUBLISHED_GAME_DURATION_S:g} s per game"
        )
    else:
        game_duration_source = "given"

    step_dt_s = game_duration_s * trace.n_games / trace.n_steps
    if not math.isclose(step_interval_s, step_dt_s, rel_tol=1e-6):
        log.info(
            "the network step interval (%.4g s, time base of Lambda) differs from the duration "
            "of a game step (%.4g s, used for the bias energy)", step_interval_s, step_dt_s,
        )
    return TimeBases(step_interval_s, step_interval_source, game_duration_s,
                     game_duration_source, step_dt_s)


def learned_bias(
    device: EnergyDevice, lam: np.ndarray, step_interval_s: float
) -> LearnedBias | None:
    """Return the bias of each synapse that realises its learned decay factor ``lam``, or
    None when the device file has no decay sigmoid.

    ``lam`` is the factor per network step of ``step_interval_s`` seconds. The device's
    sigmoid is defined per step of ``device.step_interval_s``, so each factor becomes
    ``lam ** (device.step_interval_s / step_interval_s)`` before the sigmoid is inverted.
    Factors that no bias inside the measured range realises get the end of the range
    whose Lambda is nearest, and are counted in ``n_outside``.
    """
    if device.sigmoid is None:
        return None
    v_low, v_high = device.bias_range_v
    with np.errstate(invalid="ignore"):
        lam_device = np.power(lam.astype(np.float64), device.step_interval_s / step_interval_s)

    lam_at_low, lam_at_high = (float(device.sigmoid.decay_factor(v)) for v in (v_low, v_high))
    lam_floor, lam_ceiling = sorted((lam_at_low, lam_at_high))
    bias_at_floor, bias_at_ceiling = (v_low, v_high) if lam_at_low <= lam_at_high else (v_high, v_low)

    inside = np.isfinite(lam_device) & (lam_device >= lam_floor) & (lam_device <= lam_ceiling)
    bias = np.where(lam_device > lam_ceiling, bias_at_ceiling, bias_at_floor).astype(np.float64)
    bias[inside] = np.clip(device.sigmoid.bias_for(lam_device[inside]), v_low, v_high)
    # Factors at the range ends can round past the sigmoid's open range and give NaN.
    rounding = inside & ~np.isfinite(bias)
    bias[rounding] = np.where(
        np.abs(lam_device[rounding] - lam_floor) <= np.abs(lam_device[rounding] - lam_ceiling),
        bias_at_floor, bias_at_ceiling,
    )

    # NOTE: synapses whose Lambda lies outside what the measured bias range realises are
    # charged the bias at the nearer end of that range, which understates their energy if
    # the device could reach the Lambda only with a larger bias. A device file whose decay
    # points span the network's Lambda range removes the doubt. estimate_energy warns.
    n_outside = int(np.count_nonzero(~inside))
    return LearnedBias(bias_v=bias, n_outside=n_outside)


def update_pulse_energies_j(device: EnergyDevice, update_df: np.ndarray) -> np.ndarray:
    """Return the pulse energy in joules of each update dF (simulated weight units)."""
    df_in_law_units = (
        np.abs(update_df.astype(np.float64)) * device.siemens_per_weight_unit
        / device.pulse_df_unit_s
    )
    return device.pulse_c_j * df_in_law_units ** device.pulse_alpha


def synapse_energies(
    device: EnergyDevice, trace: GameTrace, times: TimeBases, bias: LearnedBias | None,
    replay: ReplayResult, update_energy_j: np.ndarray,
) -> SynapseEnergies:
    """Return per-synapse pulse and bias energies over the whole trace."""
    n = trace.n_synapses
    # NOTE: a signed weight is taken to map to the conductance of its magnitude,
    # G_meas = g_min + siemens_per_weight_unit * |G_sim|. The published map
    # G_min + 2 nS x G_sim does not cover negative weights. A differential pair of
    # devices per synapse would change the bias energy.
    conductance_time_s_s = times.step_dt_s * (
        trace.n_steps * device.g_min_s + device.siemens_per_weight_unit * replay.abs_g_step_sum
    )
    return SynapseEnergies(
        pulse_j=np.bincount(trace.update_index, weights=update_energy_j, minlength=n),
        bias_worst_j=device.v_bias_v**2 * conductance_time_s_s,
        bias_learned_j=bias.bias_v**2 * conductance_time_s_s if bias is not None else None,
        abs_df_total=np.bincount(
            trace.update_index, weights=np.abs(trace.update_df.astype(np.float64)), minlength=n
        ),
        update_count=np.bincount(
            trace.update_index, weights=(trace.update_df != 0), minlength=n
        ).astype(np.int64),
    )


def game_energies(
    device: EnergyDevice, trace: GameTrace, times: TimeBases, bias: LearnedBias | None,
    replay: ReplayResult, update_energy_j: np.ndarray,
) -> list[dict]:
    """Return the memristor energies of each game of the trace."""
    game_of_update = np.searchsorted(trace.episode_starts, trace.update_step, side="right") - 1
    pulse = np.bincount(game_of_update, weights=update_energy_j, minlength=trace.n_games)
    sum_squared_bias = float(np.sum(bias.bias_v**2)) if bias is not None else 0.0

    games = []
    for game, (first, end) in enumerate(trace.game_bounds()):
        steps = end - first
        conductance_sum_s = (
            trace.n_synapses * steps * device.g_min_s
            + device.siemens_per_weight_unit * float(replay.g_abs_sum[first:end].sum())
        )
        bias_learned = None
        if bias is not None:
            bias_learned = _quantity(times.step_dt_s * (
                steps * device.g_min_s * sum_squared_bias
                + device.siemens_per_weight_unit * float(replay.weighted_abs_g_per_game[game])
            ), "J")
        games.append({
            "game": game,
            "steps": steps,
            "duration": _quantity(steps * times.step_dt_s, "s"),
            "return": float(trace.game_returns[game]),
            "pulse": _quantity(float(pulse[game]), "J"),
            "bias_worst_case": _quantity(device.v_bias_v**2 * conductance_sum_s * times.step_dt_s, "J"),
            "bias_learned": bias_learned,
        })
    return games


def estimate_energy(
    device_file: str | Path,
    trace_file: str | Path,
    out_dir: str | Path,
    gpu_energy_file: str | Path | None = None,
    *,
    step_interval_s: float | None = None,
    game_duration_s: float | None = None,
    replay_rtol: float = DEFAULT_REPLAY_RTOL,
    figures: bool = True,
) -> dict:
    """Estimate the synaptic energy of the games in a trace and write the results.

    Writes ``energy.json`` (every number with its unit), ``energy-max-synapse.csv`` (G(t)
    of the synapse with the largest total |dF|) and, unless ``figures`` is False, PNG
    figures into ``out_dir``, and returns the JSON content. The GPU energies come from
    ``gpu_energy_file`` (written by ``benchmarks/gpu_energy.py``) or, without one, from the
    built-in register-only estimate. Raises EnergyInputError for invalid inputs and when
    the replay of F does not match the trace's recorded sums.
    """
    device = load_energy_device(device_file)
    trace = load_trace(trace_file)
    gpu = load_gpu_energy(gpu_energy_file) if gpu_energy_file is not None else register_only_estimate()
    times = resolve_time_bases(device, trace, step_interval_s, game_duration_s)
    warnings = _input_warnings(device, trace)

    update_energy_j = update_pulse_energies_j(device, trace.update_df)
    bias = learned_bias(device, trace.lam, times.step_interval_s)
    abs_df_total = np.bincount(
        trace.update_index, weights=np.abs(trace.update_df.astype(np.float64)),
        minlength=trace.n_synapses,
    )
    tracked_index = int(np.argmax(abs_df_total))

    replay = replay_trace(trace, tracked_index,
                          synapse_weights=bias.bias_v**2 if bias is not None else None)
    max_deviation = check_replay(trace, replay, replay_rtol)

    synapses = synapse_energies(device, trace, times, bias, replay, update_energy_j)
    games = game_energies(device, trace, times, bias, replay, update_energy_j)
    lambda_warning = _lambda_range_warning(device, trace, bias, times.step_interval_s)
    if lambda_warning is not None:
        log.warning("%s", lambda_warning)
        warnings.append(lambda_warning)

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnergyInputError(
            f"output folder {out_dir} could not be created ({error.strerror}); pass a folder "
            "path that can be written"
        ) from None
    csv_path = _write_max_synapse_csv(out_dir, trace, times, device, replay, synapses)
    results = _results_document(
        device, trace, gpu, times, bias, synapses, games, max_deviation, replay_rtol,
        warnings, gpu_energy_file, csv_path,
    )
    if figures:
        from stpn.energy_figures import write_figures

        results["files"]["figures"] = [
            str(path) for path in write_figures(out_dir, results, synapses, replay, times, device)
        ]

    json_path = out_dir / RESULTS_FILE
    results["files"]["results"] = str(json_path)
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log.info("wrote the energy estimate to %s", json_path)
    return results


def gpu_case_energy_j(case: GpuCase, n_synapses: int, n_steps: float) -> float:
    """Return the GPU energy of ``n_steps`` network steps over ``n_synapses`` synapses."""
    return case.energy_per_synapse_step_j() * n_synapses * n_steps


def _input_warnings(device: EnergyDevice, trace: GameTrace) -> list[str]:
    """Return warnings about inputs that are usable but suspect, each logged once."""
    warnings = []
    if trace.device_sha256 != device.sha256:
        warnings.append(
            f"the trace was recorded with a device file of SHA-256 {trace.device_sha256[:12]}..., "
            f"not with {device.path} ({device.sha256[:12]}...); the energy uses the latter"
        )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _lambda_range_warning(
    device: EnergyDevice, trace: GameTrace, bias: LearnedBias | None, step_interval_s: float
) -> str | None:
    """Return one warning about the synapses whose Lambda lies outside the device's range,
    or None when every Lambda lies inside.

    With a decay sigmoid, the range is what biases of the measured range realise, and the
    warning states how the learned-bias energy treats the synapses outside it. Without one,
    it is the file's ``lambda_min .. lambda_max``, to which the network clamps Lambda.
    """
    n_synapses = trace.lam.size
    outside_file_range = int(np.count_nonzero(
        (trace.lam < device.lambda_min - 1e-6) | (trace.lam > device.lambda_max + 1e-6)
    ))
    file_range = f"lambda_min .. lambda_max = {device.lambda_min:.3g} .. {device.lambda_max:.3g}"

    if bias is not None and bias.n_outside:
        v_low, v_high = device.bias_range_v
        lam_floor, lam_ceiling = sorted(
            float(device.sigmoid.decay_factor(v)) for v in device.bias_range_v
        )
        warning = (
            f"{bias.n_outside} of {n_synapses} synapses have a Lambda outside "
            f"{lam_floor:.3g} .. {lam_ceiling:.3g} per {device.step_interval_s:g} s step, "
            f"which is what biases of {v_low:g} .. {v_high:g} V realise on this device"
        )
        if not math.isclose(step_interval_s, device.step_interval_s):
            warning += f" (Lambda converted from the {step_interval_s:g} s network step)"
        if outside_file_range and outside_file_range != bias.n_outside:
            warning += f", and {outside_file_range} lie outside the file's {file_range}"
        return warning + (
            ". The learned-bias energy charges them the bias at the nearer end of that range, "
            "which underestimates it if their Lambda needs a larger bias"
        )

    if outside_file_range:
        return (
            f"{outside_file_range} of {n_synapses} synapses have a Lambda outside the device "
            f"file's {file_range}, to which the network clamps Lambda; the trace may come from "
            "another device file or Lambda range"
        )
    return None


def _quantity(value: float, unit: str, **extra) -> dict:
    return {"value": value, "unit": unit, **extra}


def _memristor_totals(
    pulse_j: float, bias_worst_j: float, bias_learned_j: float | None, divisor: float = 1.0
) -> dict:
    """Return the memristor energy components divided by ``divisor``; the learned-bias
    entries are None without a learned bias."""
    totals = {
        "pulse": _quantity(pulse_j / divisor, "J"),
        "bias_worst_case": _quantity(bias_worst_j / divisor, "J"),
        "bias_learned": None,
        "total_worst_case": _quantity((pulse_j + bias_worst_j) / divisor, "J"),
        "total_learned": None,
    }
    if bias_learned_j is not None:
        totals["bias_learned"] = _quantity(bias_learned_j / divisor, "J")
        totals["total_learned"] = _quantity((pulse_j + bias_learned_j) / divisor, "J")
    return totals


def _histogram(values_j: np.ndarray, note: str) -> dict:
    """Return a histogram of the positive values on log-spaced bins, with the zero count."""
    positive = values_j[values_j > 0]
    result = {"unit": "J", "note": note, "zero_count": int(values_j.size - positive.size)}
    if positive.size == 0:
        return {**result, "bin_edges": [], "counts": []}
    low, high = float(positive.min()), float(positive.max())
    if low == high:
        low, high = low / 1.01, high * 1.01
    edges = np.geomspace(low, high, HISTOGRAM_BINS + 1)
    counts, edges = np.histogram(positive, bins=edges)
    return {**result, "bin_edges": edges.tolist(), "counts": counts.tolist()}


def _gpu_section(gpu: GpuEnergyModel, trace: GameTrace) -> dict:
    steps_per_game = trace.n_steps / trace.n_games
    cases = []
    for case in gpu.cases:
        interval = case.interval_per_synapse_step_j()
        per_step = _quantity(case.energy_per_synapse_step_j(), "J")
        if interval is not None:
            per_step["interval_99"] = list(interval)
            per_step["interval_note"] = "sum of the per-operation 99 % bootstrap interval bounds"
        cases.append({
            "label": case.label,
            "precision": case.precision,
            "case": case.name,
            "rows": case.rows,
            "energy_per_synapse_step": per_step,
            "operations": {
                op: _quantity(energy, "J", description=OPERATION_DESCRIPTIONS[op])
                for op, energy in case.energy_j.items()
            },
            "per_game": _quantity(gpu_case_energy_j(case, trace.n_synapses, steps_per_game), "J"),
            "total": _quantity(gpu_case_energy_j(case, trace.n_synapses, trace.n_steps), "J"),
        })
    return {
        "source": gpu.source,
        "description": gpu.description,
        "file": str(gpu.path) if gpu.path else None,
        "cases": cases,
        "best_case": gpu.best_case().label,
    }


def _results_document(
    device: EnergyDevice, trace: GameTrace, gpu: GpuEnergyModel, times: TimeBases,
    bias: LearnedBias | None, synapses: SynapseEnergies, games: list[dict],
    max_deviation: float, replay_rtol: float, warnings: list[str],
    gpu_energy_file: str | Path | None, csv_path: Path,
) -> dict:
    """Assemble the JSON document of the estimate."""
    memristor = _memristor_section(device, trace, bias, synapses, games, csv_path)
    gpu_section = _gpu_section(gpu, trace)
    return {
        "format": ENERGY_FORMAT,
        "version": ENERGY_VERSION,
        "software": _software_version(),
        "inputs": _inputs_section(device, trace, gpu_energy_file),
        "time_bases": _time_bases_section(times),
        "device": _device_section(device),
        "memristor": memristor,
        "gpu": gpu_section,
        "ratio": _ratio_section(memristor["per_game"], gpu_section, gpu),
        "replay": {"max_deviation": _quantity(max_deviation, "1"), "rtol": replay_rtol,
                   "note": "deviation relative to the recorded sum of |G| of the step"},
        "histograms": _histogram_section(synapses),
        "warnings": warnings,
        "files": {"max_synapse_trace": str(csv_path)},
    }


def _inputs_section(
    device: EnergyDevice, trace: GameTrace, gpu_energy_file: str | Path | None
) -> dict:
    return {
        "device_file": {"path": str(device.path), "sha256": device.sha256},
        "trace_file": {
            "path": str(trace.path), "layer": trace.layer, "games": trace.n_games,
            "steps": trace.n_steps, "n_post": trace.n_post, "n_pre": trace.n_pre,
            "synapses": trace.n_synapses, "frame_skip": trace.frame_skip,
            "updates": int(trace.update_df.size), "device_sha256": trace.device_sha256,
        },
        "gpu_energy_file": str(gpu_energy_file) if gpu_energy_file is not None else None,
    }


def _time_bases_section(times: TimeBases) -> dict:
    return {
        "step_interval": _quantity(times.step_interval_s, "s", source=times.step_interval_source,
                                   meaning="time base of Lambda (decay per network step)"),
        "game_duration": _quantity(times.game_duration_s, "s", source=times.game_duration_source,
                                   meaning="mean duration of one game"),
        "step_duration": _quantity(times.step_dt_s, "s",
                                   meaning="dt of the bias-energy integral: game duration x "
                                           "games / steps"),
    }


def _device_section(device: EnergyDevice) -> dict:
    return {
        "g_min": _quantity(device.g_min_s, "S"),
        "siemens_per_weight_unit": _quantity(device.siemens_per_weight_unit, "S"),
        "pulse_energy_c": _quantity(device.pulse_c_j, "J"),
        "pulse_energy_alpha": _quantity(device.pulse_alpha, "1"),
        "pulse_energy_df_unit": device.pulse_df_unit,
        "v_bias_worst_case": _quantity(device.v_bias_v, "V"),
        "bias_range": {"value": list(device.bias_range_v), "unit": "V",
                       "source": device.bias_range_source},
        "lambda_time_base": _quantity(device.step_interval_s, "s"),
        "decay_sigmoid": device.sigmoid is not None,
    }


def _memristor_section(
    device: EnergyDevice, trace: GameTrace, bias: LearnedBias | None,
    synapses: SynapseEnergies, games: list[dict], csv_path: Path,
) -> dict:
    pulse_j = float(synapses.pulse_j.sum())
    bias_worst_j = float(synapses.bias_worst_j.sum())
    bias_learned_j = None if synapses.bias_learned_j is None else float(synapses.bias_learned_j.sum())
    updated = np.count_nonzero(synapses.update_count)

    if bias is None:
        learned = {"available": False,
                   "reason": "the device file has no decay sigmoid Lambda(V)"}
    else:
        learned = {
            "available": True,
            "mean_abs_bias": _quantity(float(np.mean(np.abs(bias.bias_v))), "V"),
            "max_abs_bias": _quantity(float(np.max(np.abs(bias.bias_v))), "V"),
            "synapses_outside_bias_range": bias.n_outside,
        }
    return {
        "per_game": _memristor_totals(pulse_j, bias_worst_j, bias_learned_j, trace.n_games),
        "total": _memristor_totals(pulse_j, bias_worst_j, bias_learned_j),
        "per_synapse_mean": _memristor_totals(pulse_j, bias_worst_j, bias_learned_j,
                                              trace.n_synapses),
        "games": games,
        "updates": {
            "count": int(np.count_nonzero(trace.update_df)),
            "synapses_updated": int(updated),
            "share_never_updated": _quantity(1.0 - updated / trace.n_synapses, "1"),
        },
        "learned_bias": learned,
        "max_update_synapse": _max_synapse_section(trace, synapses, device, csv_path),
    }


def _ratio_section(per_game: dict, gpu_section: dict, gpu: GpuEnergyModel) -> dict:
    """Return the GPU energy per game of the best GPU case over the memristor's."""
    best = next(case for case in gpu_section["cases"] if case["label"] == gpu_section["best_case"])
    gpu_j = best["per_game"]["value"]
    learned = per_game["total_learned"]
    source_note = ("the GPU figure is a lower-bound estimate without memory traffic"
                   if gpu.source == "estimate" else "the GPU figure is measured")
    return {
        "gpu_best_over_memristor_worst_case": _quantity(
            gpu_j / per_game["total_worst_case"]["value"], "1"),
        "gpu_best_over_memristor_learned": (
            _quantity(gpu_j / learned["value"], "1")
            if learned is not None and learned["value"] > 0 else None
        ),
        "gpu_case": best["label"],
        "note": f"GPU energy per game divided by memristor energy per game; {source_note}",
    }


def _histogram_section(synapses: SynapseEnergies) -> dict:
    learned = synapses.bias_learned_j
    return {
        "pulse_per_synapse": _histogram(synapses.pulse_j, "synapses never updated are zero"),
        "bias_worst_case_per_synapse": _histogram(synapses.bias_worst_j, ""),
        "bias_learned_per_synapse": _histogram(learned, "") if learned is not None else None,
        "total_worst_case_per_synapse": _histogram(synapses.pulse_j + synapses.bias_worst_j, ""),
    }


def _max_synapse_section(
    trace: GameTrace, synapses: SynapseEnergies, device: EnergyDevice, csv_path: Path
) -> dict | None:
    index = int(np.argmax(synapses.abs_df_total))
    if synapses.abs_df_total[index] == 0:
        return None
    post, pre = divmod(index, trace.n_pre)
    return {
        "index": index,
        "post": post,
        "pre": pre,
        "updates": int(synapses.update_count[index]),
        "abs_df_total": _quantity(float(synapses.abs_df_total[index]), "weight units"),
        "abs_df_total_conductance": _quantity(
            float(synapses.abs_df_total[index]) * device.siemens_per_weight_unit, "S"),
        "pulse": _quantity(float(synapses.pulse_j[index]), "J"),
        "bias_worst_case": _quantity(float(synapses.bias_worst_j[index]), "J"),
        "bias_learned": (None if synapses.bias_learned_j is None
                         else _quantity(float(synapses.bias_learned_j[index]), "J")),
        "conductance_trace_file": str(csv_path),
    }


def _write_max_synapse_csv(
    out_dir: Path, trace: GameTrace, times: TimeBases, device: EnergyDevice,
    replay: ReplayResult, synapses: SynapseEnergies,
) -> Path:
    """Write G(t) of the synapse with the largest total |dF|, one row per step."""
    path = out_dir / MAX_SYNAPSE_CSV
    steps = np.arange(trace.n_steps)
    game = np.searchsorted(trace.episode_starts, steps, side="right") - 1
    conductance_s = device.g_min_s + device.siemens_per_weight_unit * np.abs(replay.tracked_g)
    table = np.column_stack([steps, game, steps * times.step_dt_s, replay.tracked_g, conductance_s])
    header = (
        f"# synapse index {replay.tracked_index} (post {replay.tracked_index // trace.n_pre}, pre "
        f"{replay.tracked_index % trace.n_pre}), total |dF| "
        f"{synapses.abs_df_total[replay.tracked_index]:.6g} weight units\n"
        "Step,Game,Time (s),G_sim (weight units),Conductance (S)"
    )
    np.savetxt(path, table, delimiter=",", header=header, comments="",
               fmt=["%d", "%d", "%.9g", "%.9g", "%.9g"])
    return path


def _software_version() -> str:
    try:
        return f"memsyn {metadata.version('memsyn')}"
    except metadata.PackageNotFoundError:
        return "memsyn (version unknown: not installed)"
