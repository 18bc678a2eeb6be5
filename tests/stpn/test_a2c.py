"""A2C pieces, and short training runs that checkpoint and resume."""

import csv

import pytest
import torch

from stpn.a2c import A2CTrainer, a2c_loss, discounted_returns, load_run_settings
from stpn.checkpoint import load_checkpoint
from stpn.device import PUBLISHED_DEVICE_PATH, load_device_file
from stpn.metrics import MetricsWriter
from stpn.network import AgentConfig
from stpn.settings import TrainSettings


def test_discounted_returns_bootstrap_and_episode_end():
    rewards = torch.tensor([[1.0], [0.0], [0.0], [-1.0]])
    dones = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    returns = discounted_returns(rewards, dones, torch.tensor([10.0]), 0.5)
    # Step 1 ends an episode, so nothing flows back across it.
    expected = torch.tensor([[1.0], [0.0], [0.5 * (-1.0 + 0.5 * 10.0)], [-1.0 + 0.5 * 10.0]])
    torch.testing.assert_close(returns, expected)


def test_a2c_loss_raises_probability_of_advantaged_action():
    logits = torch.zeros(1, 1, 3, requires_grad=True)
    values = torch.zeros(1, 1, requires_grad=True)
    loss, parts = a2c_loss(logits, values, torch.tensor([[2]]), torch.tensor([[1.0]]),
                           entropy_coef=0.0, value_coef=0.5)
    loss.backward()
    assert logits.grad[0, 0, 2] < 0          # descending the loss raises logit 2
    assert values.grad[0, 0] < 0             # and moves the value towards the return
    assert parts["entropy"] == pytest.approx(torch.log(torch.tensor(3.0)).item())


def test_learning_rate_decays_linearly():
    settings = TrainSettings(frames=1000, learning_rate=1e-3)
    assert settings.learning_rate_at(0) == pytest.approx(1e-3)
    assert settings.learning_rate_at(250) == pytest.approx(7.5e-4)
    assert settings.learning_rate_at(1000) == 0.0
    assert settings.learning_rate_at(2000) == 0.0


def test_agent_hebbian_init_zero_means_default():
    assert TrainSettings().agent_hebbian_init is None
    assert TrainSettings(hebbian_init=1.25e-4).agent_hebbian_init == 1.25e-4


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="envs must be >= 1, got 0"):
        TrainSettings(envs=0)
    with pytest.raises(ValueError, match="discount must be in"):
        TrainSettings(discount=1.5)


def small_trainer(run_dir, frames, layer="mstpn", seed=3):
    device = load_device_file(PUBLISHED_DEVICE_PATH)
    settings = TrainSettings(frames=frames, layer=layer, envs=2, rollout_steps=10, seed=seed,
                             log_interval_updates=1, save_interval_s=1e9, frame_skip=4,
                             state_checkpoint_every=3)
    hidden = 48 if layer == "lstm" else 64
    constraints = device.synapse_constraints() if layer == "mstpn" else None
    config = AgentConfig(layer=layer, hidden_size=hidden, constraints=constraints,
                         checkpoint_every=3)
    return A2CTrainer(settings, config, run_dir, {"sha256": device.sha256})


def read_rows(path):
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["mstpn", "lstm"])
def test_training_writes_checkpoint_and_metrics(tmp_path, layer):
    summary = small_trainer(tmp_path, 160, layer).run()
    assert summary.frames == 160
    assert summary.updates == 2
    rows = read_rows(tmp_path / "updates.csv")
    assert [int(row["frames"]) for row in rows] == [80, 160]
    assert all(float(row["frames_per_s"]) > 0 for row in rows)
    loaded = load_checkpoint(tmp_path)
    assert loaded.payload["progress"]["frames"] == 160
    assert loaded.config.layer == layer
    assert (tmp_path / "settings.json").is_file()
    assert (tmp_path / "checkpoint.json").is_file()
    assert any((tmp_path / "tensorboard").iterdir())


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    first = small_trainer(tmp_path / "a", 80)
    first.run()
    second = small_trainer(tmp_path / "b", 80)
    second.run()
    for (name, a), (_, b) in zip(first.agent.state_dict().items(),
                                 second.agent.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_resume_continues_counters_schedule_and_rng(tmp_path):
    first = small_trainer(tmp_path, 160)
    first.run()
    saved = load_checkpoint(tmp_path).payload

    settings, config, info = load_run_settings(tmp_path)
    assert settings.frames == 160
    settings.lr_decay_frames = settings.decay_frames
    settings.frames = 320
    resumed = A2CTrainer(settings, config, tmp_path, info)
    resumed.restore()
    assert resumed.progress.frames == 160
    assert torch.equal(resumed.sampler.get_state(), saved["rng"]["sampler"])
    step_before = resumed.optimizer.state_dict()["state"][0]["step"]
    assert float(step_before) == 2

    summary = resumed.run()
    assert summary.frames == 320
    assert summary.updates == 4
    rows = read_rows(tmp_path / "updates.csv")
    assert [int(row["frames"]) for row in rows] == [80, 160, 240, 320]
    # The decay horizon stayed at the first run's 160 frames: the rate is 0 from there on.
    assert float(rows[2]["learning_rate"]) == 0.0


def test_resume_drops_metrics_after_checkpoint(tmp_path):
    writer = MetricsWriter(tmp_path, tensorboard=False)
    for frames in (100, 200, 300):
        writer.log_update({"frames": frames, "updates": frames // 100})
        writer.log_episode({"frames": frames, "episode": frames // 100, "return": -21})
    writer.close()

    MetricsWriter(tmp_path, frames_done=200, tensorboard=False).close()
    assert [row["frames"] for row in read_rows(tmp_path / "updates.csv")] == ["100", "200"]
    assert [row["frames"] for row in read_rows(tmp_path / "episodes.csv")] == ["100", "200"]


@pytest.mark.slow
def test_update_skips_non_finite_gradient(tmp_path, caplog):
    trainer = small_trainer(tmp_path, 80)
    trainer.start_environments()
    rollout = trainer.collect_rollout(None)
    trainer.agent.actor.weight.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    before = {name: value.clone() for name, value in trainer.agent.state_dict().items()}
    try:
        parts = trainer.update(rollout, 7e-4)
    finally:
        trainer.env.close()

    assert parts["grad_norm"] == float("inf")
    assert "optimiser step is skipped" in caplog.text
    for name, value in trainer.agent.state_dict().items():
        assert torch.equal(value, before[name]), name
