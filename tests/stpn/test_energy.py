"""Synaptic energy estimate: arithmetic, replay, inputs and the `memsyn energy` command."""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from memsyn.commands import energy as energy_command
from memsyn.errors import UsageError
from stpn.energy import (
    EMULATOR_FRAME_RATE_HZ,
    estimate_energy,
    learned_bias,
    resolve_time_bases,
)
from stpn.energy_device import EnergyInputError, load_energy_device
from stpn.energy_figures import comparison_figure, energy_unit
from stpn.energy_replay import check_replay, replay_trace
from stpn.energy_synthetic import synthetic_trace, write_trace
from stpn.energy_trace import load_trace
from stpn.gpu_energy_model import load_gpu_energy, register_only_estimate

# Sigmoid of the hand-computed case: L = 1, Lambda0 = 0, V0 = 0 and k chosen so that
# Lambda(-0.4 V) = 0.25 and Lambda(0 V) = 0.5.
HAND_K_PER_V = math.log(3.0) / 0.4
PICO = 1e-12
NANO = 1e-9


def quantity(value, unit):
    return {"value": value, "stderr": None, "unit": unit}


def device_document(**changes) -> dict:
    """Device file of test values: g_min 10 nS, 2 nS per weight unit, c 30 pJ, alpha 2,
    worst-case bias 0.5 V, measured biases -0.6 .. 0.6 V. Not fitted figures."""
    document = {
        "format": "memsyn-device",
        "version": 1,
        "conductance": {
            "read_voltage": quantity(0.6, "V"),
            "g_min": quantity(10e-9, "S"),
            "g_max": quantity(23e-9, "S"),
            "levels": [],
            "siemens_per_weight_unit": quantity(2e-9, "S"),
        },
        "short_term": {"df_step": quantity(1e-9, "S"), "df_max": quantity(40e-9, "S")},
        "decay": {
            "step_interval_s": quantity(1.0, "s"),
            "lambda_min": quantity(0.0, "1"),
            "lambda_max": quantity(1.0, "1"),
            "sigmoid": {
                "L": quantity(1.0, "1"),
                "k": quantity(HAND_K_PER_V, "1/V"),
                "V0": quantity(0.0, "V"),
                "Lambda0": quantity(0.0, "1"),
            },
            "points": [{"bias_v": -0.6}, {"bias_v": 0.0}, {"bias_v": 0.6}],
        },
        "pulse_energy": {"c": quantity(30e-12, "J"), "alpha": quantity(2.0, "1"),
                         "df_unit": "nS", "formula": "E = c * (|dF| / 1 nS) ** alpha"},
        "bias_power": {"v_bias": quantity(0.5, "V")},
        "warnings": [],
        "provenance": {},
    }
    for dotted, value in changes.items():
        node = document
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return document


def write_device(tmp_path, document=None, name="device.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document if document is not None else device_document()))
    return path


def hand_trace() -> dict:
    """Two synapses, four steps, two games of two steps (F reset at step 2).

    W = [0.5, -1.0], Lambda = [0.5, 0.25]; updates: step 0 synapse 0 +1.0, step 1
    synapse 1 +2.0, step 2 synapse 0 -0.5. Then F and G = W + F per step are
    F = [1, 0], [0.5, 2], [-0.5, 0], [-0.25, 0] and G = [1.5, -1], [1, 1], [0, -1], [0.25, -1].
    """
    return {
        "format": np.array("memsyn-trace"),
        "version": np.array(1),
        "n_steps": np.array(4),
        "n_post": np.array(1),
        "n_pre": np.array(2),
        "frame_skip": np.array(1),
        "w": np.array([[0.5, -1.0]], dtype=np.float32),
        "lam": np.array([[0.5, 0.25]], dtype=np.float32),
        "episode_starts": np.array([0, 2], dtype=np.int64),
        "update_step": np.array([0, 1, 2], dtype=np.int32),
        "update_index": np.array([0, 1, 0], dtype=np.int64),
        "update_df": np.array([1.0, 2.0, -0.5], dtype=np.float32),
        "g_sum": np.array([0.5, 2.0, -1.0, -0.75]),
        "g_abs_sum": np.array([2.5, 2.0, 1.0, 1.25]),
        "game_returns": np.array([-21.0, 3.0], dtype=np.float32),
        "device_sha256": np.array("0" * 64),
        "layer": np.array("mstpn"),
    }


@pytest.fixture
def device_path(tmp_path):
    return write_device(tmp_path)


@pytest.fixture
def hand_results(tmp_path, device_path):
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    # Game duration 1 s over 2 games of 4 steps in all: dt = 0.5 s per step.
    return estimate_energy(device_path, trace_path, tmp_path / "out",
                           game_duration_s=1.0, figures=False)


def reference_replay(arrays: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense loop over steps: return the per-synapse sum of |G|, and the per-step sums of G
    and |G|, computed the plain way."""
    n_steps = int(arrays["n_steps"])
    w = arrays["w"].ravel().astype(np.float64)
    lam = arrays["lam"].ravel().astype(np.float64)
    f = np.zeros_like(w)
    abs_sum = np.zeros_like(w)
    g_sum = np.zeros(n_steps)
    g_abs_sum = np.zeros(n_steps)
    for step in range(n_steps):
        f = np.zeros_like(f) if step in set(arrays["episode_starts"].tolist()) else lam * f
        chosen = arrays["update_step"] == step
        np.add.at(f, arrays["update_index"][chosen], arrays["update_df"][chosen])
        g = w + f
        g_sum[step] = g.sum()
        g_abs_sum[step] = np.abs(g).sum()
        abs_sum += np.abs(g)
    return abs_sum, g_sum, g_abs_sum


# Energy arithmetic against the hand-computed case.


def test_hand_case_pulse_energy(hand_results):
    # |dF| in nS: 2, 4, 1 -> c * (4 + 16 + 1) with alpha = 2.
    assert hand_results["memristor"]["total"]["pulse"]["value"] == pytest.approx(21 * 30 * PICO)
    games = hand_results["memristor"]["games"]
    assert games[0]["pulse"]["value"] == pytest.approx(20 * 30 * PICO)
    assert games[1]["pulse"]["value"] == pytest.approx(1 * 30 * PICO)


def test_hand_case_worst_case_bias(hand_results):
    # Sum over steps of |G|: synapse 0 2.75, synapse 1 4.0. Conductance x time per synapse:
    # 0.5 s x (4 x 10 nS + 2 nS x sum |G|) = 22.75 and 24 nS s; times (0.5 V)^2.
    total = hand_results["memristor"]["total"]
    assert total["bias_worst_case"]["value"] == pytest.approx(0.25 * (22.75 + 24.0) * NANO)
    games = hand_results["memristor"]["games"]
    assert games[0]["bias_worst_case"]["value"] == pytest.approx(0.25 * 0.5 * 49 * NANO)
    assert games[1]["bias_worst_case"]["value"] == pytest.approx(0.25 * 0.5 * 44.5 * NANO)


def test_hand_case_learned_bias(hand_results):
    # Lambda 0.5 needs 0 V, Lambda 0.25 needs -0.4 V: only synapse 1 pays, 0.16 x 24 nS s.
    total = hand_results["memristor"]["total"]
    assert total["bias_learned"]["value"] == pytest.approx(0.16 * 24 * NANO)
    games = hand_results["memristor"]["games"]
    assert games[0]["bias_learned"]["value"] == pytest.approx(0.16 * 12 * NANO)
    assert games[1]["bias_learned"]["value"] == pytest.approx(0.16 * 12 * NANO)


def test_hand_case_totals_and_ratio(hand_results):
    per_game = hand_results["memristor"]["per_game"]
    worst_total_j = 21 * 30 * PICO + 0.25 * 46.75 * NANO
    assert per_game["total_worst_case"]["value"] == pytest.approx(worst_total_j / 2)
    gpu_fp16 = hand_results["gpu"]["cases"][0]
    # 5 flop x 5.9 pJ per synapse and step, 2 synapses x 2 steps per game.
    assert gpu_fp16["per_game"]["value"] == pytest.approx(5 * 5.9 * PICO * 4)
    ratio = hand_results["ratio"]["gpu_best_over_memristor_worst_case"]["value"]
    assert ratio == pytest.approx(5 * 5.9 * PICO * 4 / (worst_total_j / 2))


def test_hand_case_max_update_synapse(hand_results, tmp_path):
    section = hand_results["memristor"]["max_update_synapse"]
    assert (section["index"], section["post"], section["pre"]) == (1, 0, 1)
    assert section["abs_df_total"]["value"] == pytest.approx(2.0)
    table = np.loadtxt(tmp_path / "out" / "energy-max-synapse.csv", delimiter=",", skiprows=2)
    assert table[:, 3].tolist() == [-1.0, 1.0, -1.0, -1.0]
    assert table[:, 4] == pytest.approx([12e-9, 12e-9, 12e-9, 12e-9])
    assert table[:, 1].tolist() == [0, 0, 1, 1]


def test_hand_case_time_bases(hand_results):
    times = hand_results["time_bases"]
    assert times["step_duration"]["value"] == pytest.approx(0.5)
    assert times["game_duration"]["value"] == 1.0
    assert times["step_interval"]["value"] == 1.0
    assert times["step_interval"]["unit"] == "s"


def test_every_number_has_a_unit(hand_results):
    def check(node, where):
        if isinstance(node, dict):
            if "value" in node:
                assert "unit" in node, where
            for key, child in node.items():
                check(child, f"{where}.{key}")
        elif isinstance(node, list):
            for number, child in enumerate(node):
                check(child, f"{where}[{number}]")

    check(hand_results, "results")
    written = json.loads(Path(hand_results["files"]["results"]).read_text())
    assert written["memristor"]["total"] == hand_results["memristor"]["total"]


def test_no_updates_costs_only_bias(tmp_path, device_path):
    arrays = synthetic_trace(np.random.default_rng(3), 4, 6, 50, update_step_share=0.0)
    assert arrays["update_df"].size == 0
    trace_path = write_trace(tmp_path / "still.npz", arrays)

    results = estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)

    dt = 1 / EMULATOR_FRAME_RATE_HZ
    abs_w = np.abs(arrays["w"].astype(np.float64)).sum()
    expected = 0.25 * dt * 50 * (24 * 10e-9 + 2e-9 * abs_w)
    total = results["memristor"]["total"]
    assert total["pulse"]["value"] == 0.0
    assert total["bias_worst_case"]["value"] == pytest.approx(expected, rel=1e-12)
    assert total["total_worst_case"]["value"] == total["bias_worst_case"]["value"]
    assert results["memristor"]["updates"]["share_never_updated"]["value"] == 1.0
    assert results["memristor"]["max_update_synapse"] is None


def test_share_never_updated(tmp_path, device_path):
    arrays = hand_trace()
    arrays["w"] = np.array([[0.5, -1.0, 0.25, 0.0]], dtype=np.float32)
    arrays["lam"] = np.array([[0.5, 0.25, 0.5, 0.5]], dtype=np.float32)
    arrays["n_pre"] = np.array(4)
    arrays["g_sum"] = arrays["g_sum"] + 0.25
    arrays["g_abs_sum"] = arrays["g_abs_sum"] + 0.25
    trace_path = write_trace(tmp_path / "trace.npz", arrays)

    results = estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)

    assert results["memristor"]["updates"]["synapses_updated"] == 2
    assert results["memristor"]["updates"]["share_never_updated"]["value"] == 0.5
    assert results["histograms"]["pulse_per_synapse"]["zero_count"] == 2


# Replay.


def test_replay_matches_reference_loop():
    arrays = synthetic_trace(np.random.default_rng(7), 3, 40, 120, episode_starts=(0, 37, 90),
                             update_step_share=0.3, updated_synapse_share=0.05)
    trace = _load(arrays)
    weights = np.random.default_rng(1).uniform(0, 1, size=trace.n_synapses)

    replay = replay_trace(trace, tracked_index=5, synapse_weights=weights)

    abs_sum, g_sum, g_abs_sum = reference_replay(arrays)
    np.testing.assert_allclose(replay.abs_g_step_sum, abs_sum, rtol=1e-12)
    np.testing.assert_allclose(replay.g_sum, g_sum, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(replay.g_abs_sum, g_abs_sum, rtol=1e-12)
    assert replay.weighted_abs_g_per_game.sum() == pytest.approx(weights @ abs_sum, rel=1e-12)


def test_replay_per_game_weighted_sums():
    arrays = synthetic_trace(np.random.default_rng(8), 2, 10, 30, episode_starts=(0, 11),
                             update_step_share=0.5, updated_synapse_share=0.2)
    trace = _load(arrays)
    weights = np.arange(trace.n_synapses, dtype=np.float64)

    replay = replay_trace(trace, tracked_index=0, synapse_weights=weights)

    first_game = {key: value for key, value in arrays.items()}
    first_game["n_steps"] = np.array(11)
    chosen = arrays["update_step"] < 11
    for key in ("update_step", "update_index", "update_df"):
        first_game[key] = arrays[key][chosen]
    first_game["episode_starts"] = np.array([0])
    abs_sum_first, _, _ = reference_replay(first_game)
    assert replay.weighted_abs_g_per_game[0] == pytest.approx(weights @ abs_sum_first, rel=1e-12)


def test_replay_matches_recorded_g_sum():
    arrays = synthetic_trace(np.random.default_rng(11), 8, 64, 200, episode_starts=(0, 150),
                             update_step_share=0.2, updated_synapse_share=0.02)
    trace = _load(arrays)

    replay = replay_trace(trace, tracked_index=0)

    assert check_replay(trace, replay) < 1e-6


def test_replay_tracks_synapse():
    trace = _load(hand_trace())
    replay = replay_trace(trace, tracked_index=0)
    assert replay.tracked_g.tolist() == [1.5, 1.0, 0.0, 0.25]


def test_replay_mismatch_rejected(tmp_path, device_path):
    arrays = hand_trace()
    arrays["g_sum"] = arrays["g_sum"].copy()
    arrays["g_sum"][2] += 0.5
    trace_path = write_trace(tmp_path / "trace.npz", arrays)
    with pytest.raises(EnergyInputError, match="does not match the recorded sums") as caught:
        estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)
    assert "step 2" in str(caught.value)


def test_replay_detects_missing_decay(tmp_path, device_path):
    # A trace that kept F without decay between steps 0 and 1: sums of G differ at step 1.
    arrays = hand_trace()
    arrays["g_sum"] = np.array([0.5, 2.5, -1.0, -0.75])
    arrays["g_abs_sum"] = np.array([2.5, 2.5, 1.0, 1.25])
    trace_path = write_trace(tmp_path / "trace.npz", arrays)
    with pytest.raises(EnergyInputError, match="step 1"):
        estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)


def test_updates_need_not_be_sorted():
    arrays = hand_trace()
    order = [2, 0, 1]
    for key in ("update_step", "update_index", "update_df"):
        arrays[key] = arrays[key][order]
    trace = _load(arrays)
    replay = replay_trace(trace, tracked_index=0)
    assert replay.g_sum.tolist() == [0.5, 2.0, -1.0, -0.75]


# Learned bias and time bases.


def test_learned_bias_inverts_sigmoid(device_path):
    device = load_energy_device(device_path)
    lam = np.array([0.25, 0.5, 0.75], dtype=np.float32)
    bias = learned_bias(device, lam, step_interval_s=1.0)
    np.testing.assert_allclose(bias.bias_v, [-0.4, 0.0, 0.4], atol=1e-6)
    assert bias.n_outside == 0
    np.testing.assert_allclose(device.sigmoid.decay_factor(bias.bias_v), lam, rtol=1e-6)


def test_learned_bias_outside_range(device_path):
    device = load_energy_device(device_path)
    # The sigmoid reaches 0.161 .. 0.839 over -0.6 .. 0.6 V; 0 and 1 are unreachable.
    bias = learned_bias(device, np.array([0.0, 0.05, 0.95, 1.0]), step_interval_s=1.0)
    assert bias.bias_v.tolist() == [-0.6, -0.6, 0.6, 0.6]
    assert bias.n_outside == 4


def test_learned_bias_at_range_ends(device_path):
    device = load_energy_device(device_path)
    ends = device.sigmoid.decay_factor(np.array([-0.6, 0.6]))
    bias = learned_bias(device, ends, step_interval_s=1.0)
    np.testing.assert_allclose(bias.bias_v, [-0.6, 0.6], atol=1e-9)


def test_learned_bias_converts_time_base(device_path):
    device = load_energy_device(device_path)
    # Lambda 0.5 per 0.5 s step is 0.25 per 1 s step of the device file: -0.4 V.
    bias = learned_bias(device, np.array([0.5]), step_interval_s=0.5)
    assert bias.bias_v[0] == pytest.approx(-0.4, abs=1e-9)


def test_learned_bias_decreasing_sigmoid(tmp_path):
    document = device_document(**{"decay.sigmoid.k": quantity(-HAND_K_PER_V, "1/V")})
    device = load_energy_device(write_device(tmp_path, document))
    bias = learned_bias(device, np.array([0.25, 0.0]), step_interval_s=1.0)
    assert bias.bias_v[0] == pytest.approx(0.4, abs=1e-9)
    assert bias.bias_v[1] == 0.6


def test_default_game_duration_from_frames(tmp_path, device_path):
    arrays = hand_trace()
    arrays["frame_skip"] = np.array(4)
    trace = _load(arrays)
    times = resolve_time_bases(load_energy_device(device_path), trace)
    # 4 steps x 4 frames / 60 Hz over 2 games.
    assert times.game_duration_s == pytest.approx(16 / 60 / 2)
    assert times.step_dt_s == pytest.approx(4 / 60)
    assert times.step_interval_s == 1.0


def test_given_time_bases(tmp_path, device_path):
    times = resolve_time_bases(load_energy_device(device_path), _load(hand_trace()),
                               step_interval_s=0.0073, game_duration_s=50.0)
    assert times.step_interval_s == 0.0073
    assert times.step_dt_s == pytest.approx(25.0)
    assert times.game_duration_source == "given"


@pytest.mark.parametrize("keyword", ["step_interval_s", "game_duration_s"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_invalid_time_base_rejected(device_path, keyword, value):
    with pytest.raises(EnergyInputError, match="positive number of seconds"):
        resolve_time_bases(load_energy_device(device_path), _load(hand_trace()), **{keyword: value})


def test_bias_energy_scales_with_game_duration(tmp_path, device_path):
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    short = estimate_energy(device_path, trace_path, tmp_path / "a", game_duration_s=1.0,
                            figures=False)
    long = estimate_energy(device_path, trace_path, tmp_path / "b", game_duration_s=50.0,
                           figures=False)
    ratio = (long["memristor"]["total"]["bias_worst_case"]["value"]
             / short["memristor"]["total"]["bias_worst_case"]["value"])
    assert ratio == pytest.approx(50.0)
    assert long["memristor"]["total"]["pulse"] == short["memristor"]["total"]["pulse"]


# Bad inputs.


def test_output_folder_not_creatable(tmp_path, device_path):
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EnergyInputError, match="could not be created"):
        estimate_energy(device_path, trace_path, blocker / "out", figures=False)


TRACE_DEFECTS = [
    ({"format": np.array("something-else")}, "format is 'something-else'"),
    ({"version": np.array(2)}, "version 2 is not supported"),
    ({"layer": np.array("lstm")}, "LSTM agent"),
    ({"layer": np.array("gru")}, "layer is 'gru'"),
    ({"w": np.zeros((2, 1), dtype=np.float32)}, r"'w' has shape \(2, 1\), expected \(1, 2\)"),
    ({"lam": np.zeros((1, 2), dtype=np.int32)}, "'lam' must be a float array"),
    ({"g_sum": np.zeros(3)}, r"'g_sum' has shape \(3,\), expected \(4,\)"),
    ({"update_df": np.array([1.0, 2.0], dtype=np.float32)}, "must have the same length"),
    ({"update_index": np.array([0, 1, 2])}, "synapse indices outside 0 .. 1"),
    ({"update_step": np.array([0, 1, 4])}, "steps outside 0 .. 3"),
    ({"update_step": np.array([0, 0, 2]), "update_index": np.array([0, 0, 0])},
     "synapse 0 has more than one update at step 0"),
    ({"episode_starts": np.array([1])}, "must begin with step 0"),
    ({"episode_starts": np.array([0, 2, 2])}, "strictly increasing"),
    ({"update_df": np.array([1.0, np.nan, 0.5], dtype=np.float32)}, "NaN or infinite"),
    ({"n_steps": np.array(0)}, "'n_steps' is 0, expected at least 1"),
    ({"n_post": np.array(1.0)}, "'n_post' must be an integer scalar"),
]


@pytest.mark.parametrize("changes, message", TRACE_DEFECTS,
                         ids=[f"{'-'.join(changes)}-{number}"
                              for number, (changes, _) in enumerate(TRACE_DEFECTS)])
def test_bad_trace_rejected(tmp_path, changes, message):
    arrays = {**hand_trace(), **changes}
    path = write_trace(tmp_path / "trace.npz", arrays)
    with pytest.raises(EnergyInputError, match=message):
        load_trace(path)


def test_trace_missing_key_rejected(tmp_path):
    arrays = hand_trace()
    del arrays["g_abs_sum"]
    path = write_trace(tmp_path / "trace.npz", arrays)
    with pytest.raises(EnergyInputError, match="keys missing: g_abs_sum"):
        load_trace(path)


def test_trace_not_npz_rejected(tmp_path):
    path = tmp_path / "trace.npz"
    path.write_text("not an archive")
    with pytest.raises(EnergyInputError, match="could not be read as a numpy .npz archive"):
        load_trace(path)


def test_trace_json_file_rejected(tmp_path):
    path = tmp_path / "some.json"
    path.write_text('{"format": "memsyn-trace"}')
    with pytest.raises(EnergyInputError, match="is not a memsyn trace") as caught:
        load_trace(path)
    message = str(caught.value)
    assert "it looks like JSON" in message
    assert "memsyn pong play --trace" in message
    assert "allow_pickle" not in message
    assert "pickle.load" not in message


def test_trace_npy_file_rejected(tmp_path):
    path = tmp_path / "trace.npy"
    np.save(path, np.arange(3))
    with pytest.raises(EnergyInputError, match="it is a single .npy array"):
        load_trace(path)


def test_trace_object_array_not_unpickled(tmp_path):
    path = tmp_path / "trace.npz"
    np.savez(path, format=np.array(["memsyn-trace", {"code": 1}], dtype=object))
    with pytest.raises(EnergyInputError, match="array 'format' contains pickled Python objects") as caught:
        load_trace(path)
    assert "allow_pickle" not in str(caught.value)


def test_trace_folder_rejected(tmp_path):
    with pytest.raises(EnergyInputError, match="is a folder"):
        load_trace(tmp_path)


def test_trace_not_found(tmp_path):
    with pytest.raises(EnergyInputError, match="not found"):
        load_trace(tmp_path / "missing.npz")


DEVICE_DEFECTS = [
    ({"format": "memsyn-other"}, "expected format 'memsyn-device', got 'memsyn-other'"),
    ({"version": 2}, "unsupported version 2"),
    ({"pulse_energy.alpha": None}, "field 'pulse_energy.alpha' is missing"),
    ({"decay.sigmoid.L": None}, "field 'decay.sigmoid.L' is missing"),
    ({"conductance.g_min": None}, "field 'conductance.g_min' is missing"),
    ({"conductance.g_min": quantity(10.0, "nS")}, "conductance.g_min.* unit .*'nS'"),
    ({"bias_power.v_bias": quantity(None, "V")}, "must be a finite number"),
    ({"pulse_energy.c": quantity(-1e-12, "J")}, "expected at least 0"),
    ({"decay.sigmoid.k": quantity(0.0, "1/V")}, "must not be zero"),
    ({"pulse_energy.df_unit": "mV"}, "'pulse_energy.df_unit' is 'mV'"),
    ({"conductance.siemens_per_weight_unit": 2e-9},
     "field conductance.siemens_per_weight_unit must be an object with 'value'"),
    ({"decay.lambda_min": quantity(0.6, "1"), "decay.lambda_max": quantity(0.5, "1")},
     r"decay.lambda_min \(0.6\) is larger than decay.lambda_max"),
    ({"bias_power.v_bias": quantity(0.6, "mV")}, "'bias_power.v_bias' has unit 'mV', expected 'V'"),
]


@pytest.mark.parametrize("changes, message", DEVICE_DEFECTS,
                         ids=[f"defect-{number}" for number in range(len(DEVICE_DEFECTS))])
def test_bad_device_rejected(tmp_path, changes, message):
    path = write_device(tmp_path, device_document(**changes))
    with pytest.raises(EnergyInputError, match=message):
        load_energy_device(path)


def test_device_not_json_rejected(tmp_path):
    path = tmp_path / "device.json"
    path.write_text("{ not json")
    with pytest.raises(EnergyInputError, match="is not valid JSON"):
        load_energy_device(path)


def test_device_pulse_unit_in_siemens(tmp_path):
    document = device_document(**{"pulse_energy.df_unit": "S"})
    device = load_energy_device(write_device(tmp_path, document))
    assert device.pulse_df_unit_s == 1.0


def test_device_bias_range_without_points(tmp_path):
    device = load_energy_device(write_device(tmp_path, device_document(**{"decay.points": None})))
    assert device.bias_range_v == (-0.5, 0.5)


def test_device_without_sigmoid_skips_learned_bias(tmp_path):
    device_path = write_device(tmp_path, device_document(**{"decay.sigmoid": None}))
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())

    results = estimate_energy(device_path, trace_path, tmp_path / "out", game_duration_s=1.0,
                              figures=False)

    total = results["memristor"]["total"]
    assert total["bias_worst_case"]["value"] == pytest.approx(0.25 * 46.75 * NANO)
    assert total["bias_learned"] is None
    assert total["total_learned"] is None
    assert results["memristor"]["games"][0]["bias_learned"] is None
    assert results["memristor"]["learned_bias"]["available"] is False
    assert results["ratio"]["gpu_best_over_memristor_learned"] is None
    assert results["histograms"]["bias_learned_per_synapse"] is None


def test_published_device_file_accepted(tmp_path):
    from stpn.device import PUBLISHED_DEVICE_PATH

    arrays = synthetic_trace(np.random.default_rng(2), 4, 10, 40)
    trace_path = write_trace(tmp_path / "trace.npz", arrays)

    results = estimate_energy(PUBLISHED_DEVICE_PATH, trace_path, tmp_path / "out", figures=False)

    assert results["device"]["g_min"]["value"] == 12e-9
    assert results["device"]["v_bias_worst_case"]["value"] == 0.6
    assert results["time_bases"]["step_interval"]["value"] == 0.007325
    assert results["memristor"]["total"]["pulse"]["value"] > 0


def test_device_mismatch_warns(hand_results):
    assert any("SHA-256" in warning for warning in hand_results["warnings"])


# GPU energy model.


def lambda_warnings(results: dict) -> list[str]:
    return [warning for warning in results["warnings"] if "Lambda" in warning]


def test_lambda_in_range_not_warned(hand_results):
    assert lambda_warnings(hand_results) == []


def test_lambda_outside_bias_range_warned_once(tmp_path, caplog):
    # Lambda outside both the file's 0.1 .. 0.9 and what the measured biases realise.
    document = device_document(**{
        "decay.lambda_min": quantity(0.1, "1"),
        "decay.lambda_max": quantity(0.9, "1"),
    })
    device_path = write_device(tmp_path, document)
    arrays = synthetic_trace(np.random.default_rng(7), 2, 10, 20, lambda_range=(0.01, 0.99))
    outside_file_range = np.count_nonzero((arrays["lam"] < 0.1) | (arrays["lam"] > 0.9))
    trace_path = write_trace(tmp_path / "trace.npz", arrays)
    with caplog.at_level("WARNING", logger="stpn"):
        results = estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)
    n_outside = results["memristor"]["learned_bias"]["synapses_outside_bias_range"]
    warnings = lambda_warnings(results)
    assert 0 < outside_file_range < n_outside
    assert len(warnings) == 1
    # Lambda(-0.6 V) = 1 / (1 + 3 ** 1.5) = 0.161 and Lambda(0.6 V) = 0.839.
    assert warnings[0].startswith(
        f"{n_outside} of 20 synapses have a Lambda outside 0.161 .. 0.839 per 1 s step"
    )
    assert "-0.6 .. 0.6 V" in warnings[0]
    assert f"and {outside_file_range} lie outside the file's lambda_min .. lambda_max" in warnings[0]
    assert "bias at the nearer end" in warnings[0]
    logged = [record for record in caplog.records if "Lambda outside" in record.getMessage()]
    assert len(logged) == 1


def test_lambda_outside_file_range_warned_once(tmp_path):
    document = device_document(**{
        "decay.sigmoid": None,
        "decay.lambda_min": quantity(0.1, "1"),
        "decay.lambda_max": quantity(0.4, "1"),
    })
    device_path = write_device(tmp_path, document)
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    results = estimate_energy(device_path, trace_path, tmp_path / "out", figures=False)
    expected = (
        "1 of 2 synapses have a Lambda outside the device file's lambda_min .. lambda_max = "
        "0.1 .. 0.4, to which the network clamps Lambda; the trace may come from another "
        "device file or Lambda range"
    )
    assert lambda_warnings(results) == [expected]


def test_register_only_estimate():
    model = register_only_estimate()
    fp16, fp32 = model.cases
    assert fp16.energy_j == pytest.approx(
        {"add_w_f": 5.9e-12, "decay_mul": 5.9e-12, "add_df": 5.9e-12, "matvec_mac": 11.8e-12})
    assert fp32.energy_per_synapse_step_j() == pytest.approx(5 * 9.5e-12)
    assert model.best_case() is fp16
    assert "lower bound" in model.description


def gpu_file_document() -> dict:
    """Measured GPU energies: fp16 at 64 and 1024 rows (1024 the cheaper), fp32 at 64 rows
    with one operation unresolved."""
    entries = []
    per_rows = {("fp16", 64): 4e-12, ("fp16", 1024): 1e-12, ("fp32", 64): 6e-12}
    for (precision, rows), energy in per_rows.items():
        for operation in ("add_w_f", "decay_mul", "add_df", "matvec_mac"):
            resolved = not (precision == "fp32" and operation == "add_df")
            entries.append({
                "precision": precision, "rows": rows, "cols": 2656, "operation": operation,
                "resolved": resolved,
                "energy_per_element_j": {"value": energy, "ci99_low": 0.9 * energy,
                                         "ci99_high": 1.1 * energy, "unit": "J"},
            })
    return {"format": "memsyn-gpu-energy", "version": 1, "gpu": {"name": "Test GPU"},
            "settings": {"standard_rows": 64}, "measurements": entries}


def test_measured_gpu_file_cases(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(gpu_file_document()))

    model = load_gpu_energy(path)

    assert [case.label for case in model.cases] == [
        "fp16 standard (64 rows)", "fp16 optimal (1024 rows)"]
    assert model.best_case().energy_per_synapse_step_j() == pytest.approx(4e-12)
    assert model.best_case().interval_per_synapse_step_j() == pytest.approx((3.6e-12, 4.4e-12))
    assert model.gpu_name == "Test GPU"


def test_measured_gpu_file_used_by_estimate(tmp_path, device_path):
    gpu_path = tmp_path / "gpu.json"
    gpu_path.write_text(json.dumps(gpu_file_document()))
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())

    results = estimate_energy(device_path, trace_path, tmp_path / "out", gpu_path, figures=False)

    assert results["gpu"]["source"] == "measured"
    assert results["gpu"]["best_case"] == "fp16 optimal (1024 rows)"
    best = results["gpu"]["cases"][1]
    assert best["per_game"]["value"] == pytest.approx(4e-12 * 2 * 2)
    assert best["energy_per_synapse_step"]["interval_99"] == pytest.approx([3.6e-12, 4.4e-12])


def test_gpu_file_without_complete_size_rejected(tmp_path):
    document = gpu_file_document()
    for entry in document["measurements"]:
        if entry["operation"] == "matvec_mac":
            entry["resolved"] = False
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(document))
    with pytest.raises(EnergyInputError, match="no precision has all four operations"):
        load_gpu_energy(path)


@pytest.mark.parametrize("change, message", [
    ({"format": "memsyn-device"}, "expected 'memsyn-gpu-energy'"),
    ({"version": 3}, "version 3 is not supported"),
    ({"measurements": {}}, "'measurements' must be a list"),
])
def test_bad_gpu_file_rejected(tmp_path, change, message):
    document = copy.deepcopy(gpu_file_document())
    document.update(change)
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(document))
    with pytest.raises(EnergyInputError, match=message):
        load_gpu_energy(path)


def test_gpu_file_malformed_entry_rejected(tmp_path):
    document = gpu_file_document()
    del document["measurements"][3]["energy_per_element_j"]["ci99_low"]
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(document))
    with pytest.raises(EnergyInputError, match=r"measurements\[3\] is malformed"):
        load_gpu_energy(path)


# Command line and figures.


def energy_args(*arguments):
    """Parse `memsyn energy` arguments with only that subcommand registered, so the other
    commands' heavy imports stay out of these tests."""
    parser = argparse.ArgumentParser()
    energy_command.register(parser.add_subparsers())
    return parser.parse_args(["energy", *arguments])


def test_cli_prints_table(tmp_path, device_path, capsys):
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    args = energy_args("--device", str(device_path), "--trace", str(trace_path),
                       "--game-duration-s", "1", "--out", str(tmp_path / "out"), "--no-figures")
    status = args.handler(args)
    output = capsys.readouterr().out
    assert status == 0
    assert "memristor pulse" in output
    assert "315.000 pJ" in output
    assert "GPU fp16 register-only estimate" in output
    assert "game duration 1 s (500 ms per step)" in output
    assert str(tmp_path / "out" / "energy.json") in output


def test_cli_table_without_sigmoid(tmp_path, capsys):
    device_path = write_device(tmp_path, device_document(**{"decay.sigmoid": None}))
    trace_path = write_trace(tmp_path / "trace.npz", hand_trace())
    args = energy_args("--device", str(device_path), "--trace", str(trace_path),
                       "--out", str(tmp_path / "out"), "--no-figures")
    assert args.handler(args) == 0
    assert "n/a (no decay sigmoid)" in capsys.readouterr().out


def test_cli_bad_input_is_usage_error(tmp_path, device_path):
    # memsyn.cli.main prints a UsageError as one line "memsyn energy: error: ..." with status 2.
    arrays = hand_trace()
    arrays["layer"] = np.array("lstm")
    trace_path = write_trace(tmp_path / "trace.npz", arrays)
    args = energy_args("--device", str(device_path), "--trace", str(trace_path),
                       "--out", str(tmp_path / "out"))
    with pytest.raises(UsageError) as caught:
        args.handler(args)
    message = str(caught.value)
    assert message.startswith(f"trace file {trace_path}: the trace is of an LSTM agent")
    assert "\n" not in message


@pytest.mark.slow
def test_figures_written(tmp_path, device_path):
    arrays = synthetic_trace(np.random.default_rng(5), 4, 20, 60, episode_starts=(0, 30))
    trace_path = write_trace(tmp_path / "trace.npz", arrays)

    results = estimate_energy(device_path, trace_path, tmp_path / "out")

    names = sorted(path.split("/")[-1] for path in results["files"]["figures"])
    assert names == ["energy-comparison.png", "energy-histograms.png", "energy-max-synapse.png"]
    for path in results["files"]["figures"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_comparison_figure_bars_readable(hand_results):
    figure = comparison_figure(hand_results)
    axis = figure.axes[0]
    assert axis.get_xscale() == "linear"
    assert axis.get_title() == (
        "Energy per game: memristor vs GPU (GPU: register-only lower-bound estimate)"
    )
    per_game = hand_results["memristor"]["per_game"]
    values_j = [per_game["total_worst_case"]["value"], per_game["total_learned"]["value"]]
    values_j += [case["per_game"]["value"] for case in hand_results["gpu"]["cases"]]
    scale, unit = energy_unit(max(values_j))
    assert axis.get_xlabel() == f"synaptic energy per game ({unit}, linear axis)"
    bar_widths = [patch.get_width() for patch in axis.patches]
    assert bar_widths == pytest.approx([value / scale for value in values_j])
    printed = [text.get_text() for text in axis.texts]
    assert len(printed) == len(bar_widths)
    assert printed[0] == f"{bar_widths[0]:.3g} {unit}"
    ratio = hand_results["ratio"]["gpu_best_over_memristor_worst_case"]["value"]
    assert f"= {ratio:.3g} × memristor worst case" in printed[2]


@pytest.mark.parametrize(("largest_j", "unit"), [
    (2.5, "J"), (0.036, "mJ"), (5.87e-5, "µJ"), (1e-9, "nJ"), (3.15e-10, "pJ"), (2e-16, "fJ"),
])
def test_energy_unit_prefix(largest_j, unit):
    scale, name = energy_unit(largest_j)
    assert name == unit
    assert 1 <= largest_j / scale < 1000 or unit == "fJ"


def _load(arrays: dict):
    """Write trace arrays to a temporary file and load them back, validated."""
    with tempfile.TemporaryDirectory() as folder:
        return load_trace(write_trace(Path(folder) / "trace.npz", arrays))



def test_device_error_names_file_once(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# not JSON\n")
    with pytest.raises(EnergyInputError) as caught:
        load_energy_device(path)
    assert str(caught.value).startswith(f"device file {path} is not valid JSON")
    assert str(caught.value).count("device file") == 1
