"""Playing games: checkpoints of untrained agents, evaluation, and the game trace file."""

import numpy as np
import pytest
import torch

from memsyn.cli import main
from stpn.checkpoint import CheckpointError, load_checkpoint
from stpn.device import PUBLISHED_DEVICE_PATH, load_device_file
from stpn.play import build_untrained_agent, play_games, write_untrained_checkpoint

TRACE_KEYS = {
    "format", "version", "n_steps", "n_post", "n_pre", "frame_skip", "w", "lam",
    "episode_starts", "update_step", "update_index", "update_df", "g_sum", "g_abs_sum",
    "game_returns", "device_sha256", "layer",
}


def test_untrained_checkpoint_roundtrip(tmp_path):
    path = write_untrained_checkpoint(PUBLISHED_DEVICE_PATH, tmp_path / "agent.pt", seed=5)
    loaded = load_checkpoint(path)
    expected = build_untrained_agent(load_device_file(PUBLISHED_DEVICE_PATH), seed=5)
    for (name, a), (_, b) in zip(loaded.agent.state_dict().items(),
                                 expected.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.payload["device"]["lambda_range"] == "device"
    assert (tmp_path / "agent.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_checkpoint_of_other_format_rejected(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a memsyn Pong agent checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def replay_trace(trace):
    """Replay F_t = lam * F_(t-1) + dF_t in float32 and return the sums of W + F per step."""
    w = trace["w"].reshape(-1).astype(np.float32)
    lam = trace["lam"].reshape(-1).astype(np.float32)
    f = np.zeros_like(w)
    starts = set(trace["episode_starts"].tolist())
    order = np.argsort(trace["update_step"], kind="stable")
    steps, index, df = (trace[key][order] for key in ("update_step", "update_index",
                                                        "update_df"))
    bounds = np.searchsorted(steps, np.arange(int(trace["n_steps"]) + 1))
    sums = np.empty(int(trace["n_steps"]))
    for t in range(int(trace["n_steps"])):
        if t in starts:
            f[:] = 0.0
        f = lam * f
        f[index[bounds[t]:bounds[t + 1]]] += df[bounds[t]:bounds[t + 1]]
        sums[t] = (w.astype(np.float64) + f.astype(np.float64)).sum()
    return sums


@pytest.mark.slow
def test_trace_replays_to_recorded_sums(tmp_path):
    # The default Hebbian strengths of an untrained agent give sparse updates.
    checkpoint = write_untrained_checkpoint(PUBLISHED_DEVICE_PATH, tmp_path / "plastic.pt",
                                            seed=1, frame_skip=4)
    summary = play_games(checkpoint, PUBLISHED_DEVICE_PATH, 1, tmp_path / "trace.npz", seed=2)
    trace = np.load(summary.trace_path, allow_pickle=False)

    assert set(trace.files) == TRACE_KEYS
    assert summary.synapse_updates == len(trace["update_df"]) > 0
    assert np.all(np.abs(trace["update_df"]) <= 20.0)
    assert np.all(trace["update_df"] == np.round(trace["update_df"] / 0.5) * 0.5)
    assert trace["update_index"].max() < 64 * 2656
    np.testing.assert_allclose(replay_trace(trace), trace["g_sum"], rtol=1e-6, atol=1e-3)


@pytest.mark.slow
def test_cli_play_untrained_writes_trace_of_whole_game(tmp_path, capsys):
    trace_path = tmp_path / "trace.npz"
    status = main(["pong", "play", "--untrained", "--device", str(PUBLISHED_DEVICE_PATH),
                   "--games", "1", "--trace", str(trace_path), "--frame-skip", "4"])
    assert status == 0
    assert "played 1 game(s)" in capsys.readouterr().out

    trace = np.load(trace_path, allow_pickle=False)
    assert str(trace["format"]) == "memsyn-trace"
    assert int(trace["version"]) == 1
    assert str(trace["layer"]) == "mstpn"
    assert (int(trace["n_post"]), int(trace["n_pre"])) == (64, 2656)
    assert trace["w"].shape == trace["lam"].shape == (64, 2656)
    assert trace["w"].dtype == trace["lam"].dtype == np.float32
    assert trace["lam"].min() >= np.float32(0.08)
    assert trace["lam"].max() <= np.float32(0.92)
    assert trace["episode_starts"].tolist() == [0]
    assert trace["g_sum"].shape == (int(trace["n_steps"]),)
    assert trace["g_sum"].dtype == np.float64
    # A whole game of Pong ends when one side reaches 21 points.
    assert abs(float(trace["game_returns"][0])) >= 1
    assert int(trace["frame_skip"]) == 4
    assert str(trace["device_sha256"]) == load_device_file(PUBLISHED_DEVICE_PATH).sha256
    # The default Hebbian strengths update a small share of the synapses at each step.
    pairs = int(trace["n_steps"]) * 64 * 2656
    assert 0 < len(trace["update_df"]) < 0.1 * pairs
    np.testing.assert_allclose(replay_trace(trace), trace["g_sum"], rtol=1e-6, atol=1e-3)


def test_cli_play_needs_checkpoint_or_untrained(capsys):
    assert main(["pong", "play", "--games", "1"]) == 2
    assert "give either a CHECKPOINT or --untrained" in capsys.readouterr().err


def test_cli_train_rejects_missing_device(tmp_path, capsys):
    status = main(["pong", "train", "--frames", "100", "--out", str(tmp_path / "run")])
    assert status == 2
    assert "--device is required for --layer mstpn" in capsys.readouterr().err


def test_cli_init_writes_checkpoint(tmp_path, capsys):
    out = tmp_path / "untrained.pt"
    assert main(["pong", "init", "--device", str(PUBLISHED_DEVICE_PATH), "--out", str(out)]) == 0
    assert out.is_file()
    assert "wrote untrained mstpn agent" in capsys.readouterr().out


def test_stpn_trace_rejected(tmp_path):
    path = write_untrained_checkpoint(PUBLISHED_DEVICE_PATH, tmp_path / "stpn.pt", layer="stpn")
    with pytest.raises(ValueError, match="traces need the m-STPN"):
        play_games(path, None, 1, tmp_path / "trace.npz")


def test_play_rejects_zero_games(tmp_path):
    with pytest.raises(ValueError, match="expected games >= 1, got 0"):
        play_games("untrained", PUBLISHED_DEVICE_PATH, 0)


@pytest.mark.slow
def test_evaluate_plays_each_game_once(tmp_path):
    from stpn.play import evaluate

    path = write_untrained_checkpoint(PUBLISHED_DEVICE_PATH, tmp_path / "agent.pt")
    summary = evaluate(path, games=3, seed=1, envs=2, frame_skip=4)
    assert len(summary.returns) == 3
    assert all(-21 <= value <= 21 for value in summary.returns)
    assert all(length > 0 for length in summary.lengths_steps)
