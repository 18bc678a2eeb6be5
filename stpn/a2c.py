"""A2C training of the Pong agent with truncated backpropagation through time.

Each update starts with a rollout: every environment plays `rollout_steps` agent steps
with the current policy, without autograd. The recurrent state is carried over from the
previous rollout and zeroed at episode starts. Then the encoder runs once more, with
autograd, on all frames of the rollout in one batch, the recurrent layer replays the
rollout with gradients, and one RMSprop step minimises

    loss = value_coef * mean((R_t - V_t)^2) - mean(A_t log pi(a_t)) - entropy_coef * H

with R_t the discounted return bootstrapped from the value after the rollout, A_t =
R_t - V_t (no gradient through A_t in the policy term) and rewards clipped to their sign.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import torch
from torch.nn import functional

from stpn.checkpoint import (
    TRAINING_CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    write_json,
)
from stpn.metrics import MetricsWriter
from stpn.network import AgentConfig, PongAgent
from stpn.pong_env import EpisodeTracker, make_pong_env
from stpn.settings import TrainSettings

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.json"
RECENT_EPISODES = 10
"""Episodes averaged for the recent return shown in the progress bar and metrics."""


@dataclass
class Progress:
    """Counters that a resumed run continues from."""

    frames: int = 0
    updates: int = 0
    episodes: int = 0
    wall_time_s: float = 0.0
    recent_returns: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"frames": self.frames, "updates": self.updates, "episodes": self.episodes,
                "wall_time_s": self.wall_time_s, "recent_returns": list(self.recent_returns)}


@dataclass
class TrainSummary:
    """Summary of a finished or stopped training call."""

    run_dir: Path
    frames: int
    updates: int
    episodes: int
    wall_time_s: float
    recent_return: float | None
    stopped_early: bool


@dataclass
class Rollout:
    """One rollout of T steps on B environments."""

    observations: torch.Tensor        # (T, B, 1, 84, 84) uint8, the frames acted on
    actions: torch.Tensor             # (T, B) int64
    rewards: torch.Tensor             # (T, B) clipped to their sign
    dones: torch.Tensor               # (T, B) episode ended with this step
    next_value: torch.Tensor          # (B,) value of the state after the rollout
    synapse_updates: int              # non-zero dF in the rollout (m-STPN only)


def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, next_value: torch.Tensor,
                       discount: float) -> torch.Tensor:
    """Return R_t = r_t + discount * R_(t+1) * (1 - done_t), with R_T = next_value."""
    returns = torch.empty_like(rewards)
    running = next_value
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + discount * running * (1.0 - dones[t])
        returns[t] = running
    return returns


def a2c_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor,
             returns: torch.Tensor, entropy_coef: float, value_coef: float
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Return the A2C loss and its parts; logits (T, B, A), values, actions, returns (T, B)."""
    log_probs = functional.log_softmax(logits, dim=-1)
    advantages = returns - values
    value_loss = advantages.pow(2).mean()
    chosen = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    policy_loss = -(advantages.detach() * chosen).mean()
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1).mean()
    loss = value_coef * value_loss + policy_loss - entropy_coef * entropy
    parts = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
             "entropy": entropy.item()}
    return loss, parts


class _StopRequest:
    """Flag that SIGTERM and SIGINT set, checked between updates.

    A stopped run thus writes a checkpoint before it exits. A second signal raises
    KeyboardInterrupt at once. The previous handlers are restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self) -> Self:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        log.warning("received signal %d: stopping after this update", signum)
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class A2CTrainer:
    """Train one agent into a run directory; see the module docstring for the update."""

    def __init__(self, settings: TrainSettings, agent_config: AgentConfig, run_dir: Path,
                 device_info: dict | None = None) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.device_info = device_info or {}
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)

        torch.manual_seed(settings.seed)
        self.agent = PongAgent(agent_config)
        self.optimizer = torch.optim.RMSprop(
            self.agent.parameters(), lr=settings.learning_rate, alpha=settings.rmsprop_alpha,
            eps=settings.rmsprop_eps)
        self.sampler = torch.Generator().manual_seed(settings.seed)
        self.progress = Progress()
        self.env = None

    # --- checkpoints ---------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / TRAINING_CHECKPOINT_NAME

    def save(self) -> None:
        extra = {
            "optimizer": self.optimizer.state_dict(),
            "progress": self.progress.as_dict(),
            "rng": {"torch": torch.get_rng_state(), "sampler": self.sampler.get_state()},
            "settings": self.settings.as_dict(),
            "device": self.device_info,
        }
        save_checkpoint(self.checkpoint_path, self.agent, extra=extra)
        log.info("checkpoint written at %d frames: %s", self.progress.frames,
                 self.checkpoint_path)

    def restore(self) -> None:
        """Load model, optimizer, progress and random states from the run's checkpoint."""
        loaded = load_checkpoint(self.checkpoint_path)
        if loaded.config != self.agent.config:
            raise CheckpointError(f"{self.checkpoint_path}: its agent configuration "
                                  f"{loaded.config.as_dict()} differs from this run's")
        payload = loaded.payload
        self.agent.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.progress = Progress(**payload["progress"])
        torch.set_rng_state(payload["rng"]["torch"])
        self.sampler.set_state(payload["rng"]["sampler"])
        log.info("resuming %s at %d frames, update %d", self.run_dir, self.progress.frames,
                 self.progress.updates)

    def write_settings(self) -> None:
        write_json(self.run_dir / SETTINGS_NAME, {
            "settings": self.settings.as_dict(),
            "agent_config": self.agent.config.as_dict(),
            "device": self.device_info,
            "torch": torch.__version__,
        })

    # --- one update ----------------------------------------------------------------------

    def start_environments(self) -> None:
        """Create and reset the environments and a zero recurrent state."""
        settings = self.settings
        self.env = make_pong_env(settings.envs, settings.frame_skip, settings.noop_max,
                                 settings.env_threads)
        # A resumed run starts new games; their seed depends on where it resumed.
        observations, _ = self.env.reset(seed=settings.seed * 100_003 + self.progress.updates)
        self.observations = torch.from_numpy(observations)
        self.state = self.agent.initial_state(settings.envs)
        self.episode_start = torch.ones(settings.envs, dtype=torch.bool)
        self.tracker = EpisodeTracker(settings.envs)

    def collect_rollout(self, metrics: MetricsWriter | None) -> Rollout:
        """Play rollout_steps steps on every environment, recording for the replay."""
        settings = self.settings
        steps, batch = settings.rollout_steps, settings.envs
        core = self.agent.core
        core.start_recording(steps, batch)
        counts = None
        if core.kind == "mstpn":
            counts = torch.zeros(steps, batch * core.hidden_size, dtype=torch.int32)

        frames = torch.zeros(steps, *self.observations.shape, dtype=torch.uint8)
        actions = torch.zeros(steps, batch, dtype=torch.int64)
        rewards = torch.zeros(steps, batch)
        dones = torch.zeros(steps, batch)
        for t in range(steps):
            frames[t] = self.observations
            step_kwargs = {"episode_start": self.episode_start, "record_step": t}
            if counts is not None:
                step_kwargs["counts"] = counts[t]
            with torch.no_grad():
                x = self.agent.encoder(self.observations)
                h = core.step(x, self.state, **step_kwargs)
                logits, _ = self.agent.heads(h)
                action = torch.multinomial(functional.softmax(logits, dim=-1), 1,
                                           generator=self.sampler).squeeze(-1)
            observations, reward, terminated, truncated, _ = self.env.step(action.numpy())

            actions[t] = action
            rewards[t] = torch.from_numpy(np.sign(reward).astype(np.float32))
            # NOTE: truncated games (108,000 frames without an end) are treated like ended
            # ones, without bootstrapping from their last frame; Pong games end long before.
            done = terminated | truncated
            dones[t] = torch.from_numpy(done.astype(np.float32))
            self.observations = torch.from_numpy(observations)
            self.episode_start = torch.from_numpy(done)
            self._record_episodes(self.tracker.update(reward, terminated, truncated), t, metrics)

        with torch.no_grad():
            x = self.agent.encoder(self.observations)
            _, next_value = self.agent.heads(core.peek(x, self.state))
        synapse_updates = 0 if counts is None else int(counts.sum())
        return Rollout(frames, actions, rewards, dones, next_value, synapse_updates)

    def _record_episodes(self, finished, step_in_rollout, metrics) -> None:
        settings = self.settings
        frames = self.progress.frames + (step_in_rollout + 1) * settings.envs * settings.frame_skip
        for episode in finished:
            self.progress.episodes += 1
            self.progress.recent_returns = (self.progress.recent_returns
                                            + [episode.episode_return])[-RECENT_EPISODES:]
            if metrics is not None:
                metrics.log_episode({
                    "frames": frames, "episode": self.progress.episodes,
                    "env_index": episode.env_index, "return": episode.episode_return,
                    "length_steps": episode.length_steps, "truncated": int(episode.truncated),
                })

    def update(self, rollout: Rollout, learning_rate: float) -> dict[str, float]:
        """Take one optimiser step on the rollout; returns the loss parts and gradient norm."""
        settings = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

        steps, batch = rollout.actions.shape
        # One batched pass over all frames; the features equal those computed while acting
        # up to float rounding, which the first replay checks.
        x = self.agent.encoder(rollout.observations.flatten(0, 1)).view(steps, batch, -1)
        outputs = self.agent.core(x, check_inputs=self.progress.updates == 0)
        logits, values = self.agent.heads(outputs)
        returns = discounted_returns(rollout.rewards, rollout.dones, rollout.next_value,
                                     settings.discount)
        loss, parts = a2c_loss(logits, values, rollout.actions, returns,
                               settings.entropy_coef, settings.value_coef)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.agent.parameters(),
                                                   settings.max_grad_norm)
        if torch.isfinite(grad_norm):
            self.optimizer.step()
            self.agent.core.project_parameters()
        else:
            # Clipping cannot rescale an infinite or NaN gradient, and one such step would
            # turn every weight into NaN. The straight-through gradient of the m-STPN's
            # rounding passes Gamma (|Gamma| up to 25 by default) at every step, so it can
            # grow geometrically over a rollout.
            log.warning("update %d: the gradient norm is %s, so this optimiser step is "
                        "skipped", self.progress.updates + 1, float(grad_norm))
            self.optimizer.zero_grad(set_to_none=True)
        parts["grad_norm"] = float(grad_norm)
        return parts

    # --- the loop ------------------------------------------------------------------------

    def run(self, progress_bar: bool = False) -> TrainSummary:
        """Train until settings.frames, writing checkpoints and metrics; return a summary."""
        settings = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_settings()
        self.start_environments()
        metrics = MetricsWriter(self.run_dir, self.progress.frames)
        frames_per_update = settings.rollout_steps * settings.envs * settings.frame_skip
        synapses_per_update = settings.rollout_steps * settings.envs * _synapses(self.agent)
        bar = _progress_bar(progress_bar, settings.frames, self.progress.frames)
        last_save = time.monotonic()
        interval_start = time.monotonic()
        interval_frames = 0
        interval_updates = 0
        synapse_updates = 0
        wall_base = self.progress.wall_time_s
        run_start = time.monotonic()
        stopped = False

        with _StopRequest() as stop:
            while self.progress.frames < settings.frames:
                rollout = self.collect_rollout(metrics)
                parts = self.update(rollout, settings.learning_rate_at(self.progress.frames))
                self.progress.frames += frames_per_update
                self.progress.updates += 1
                self.progress.wall_time_s = wall_base + time.monotonic() - run_start
                interval_frames += frames_per_update
                interval_updates += 1
                synapse_updates += rollout.synapse_updates
                if bar is not None:
                    bar.update(frames_per_update)

                if self.progress.updates % settings.log_interval_updates == 0:
                    elapsed = time.monotonic() - interval_start
                    row = self._metrics_row(parts, interval_frames / max(elapsed, 1e-9),
                                            synapse_updates,
                                            synapses_per_update * interval_updates)
                    metrics.log_update(row)
                    if bar is not None:
                        bar.set_postfix(fps=f"{row['frames_per_s']:.0f}",
                                        ret=row["recent_return"])
                    interval_start, interval_frames = time.monotonic(), 0
                    interval_updates, synapse_updates = 0, 0

                if time.monotonic() - last_save >= settings.save_interval_s:
                    self.save()
                    last_save = time.monotonic()
                if stop.requested:
                    stopped = True
                    break

        self.save()
        metrics.close()
        if bar is not None:
            bar.close()
        self.env.close()
        recent = self.progress.recent_returns
        return TrainSummary(self.run_dir, self.progress.frames, self.progress.updates,
                            self.progress.episodes, self.progress.wall_time_s,
                            float(np.mean(recent)) if recent else None, stopped)

    def _metrics_row(self, parts, frames_per_s, synapse_updates, synapse_steps) -> dict:
        recent = self.progress.recent_returns
        fraction = synapse_updates / synapse_steps if self.agent.core.kind == "mstpn" else ""
        return {
            "frames": self.progress.frames, "updates": self.progress.updates,
            "wall_time_s": round(self.progress.wall_time_s, 3),
            "frames_per_s": round(frames_per_s, 1),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "policy_loss": parts["policy_loss"], "value_loss": parts["value_loss"],
            "entropy": parts["entropy"], "grad_norm": parts["grad_norm"],
            "synapse_update_fraction": fraction, "episodes": self.progress.episodes,
            "recent_return": round(float(np.mean(recent)), 2) if recent else "",
        }


def _synapses(agent: PongAgent) -> int:
    core = agent.core
    return core.synapse_count() if hasattr(core, "synapse_count") else 0


def _progress_bar(enabled: bool, total: int, done: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="frame", unit_scale=True, dynamic_ncols=True,
                desc="train")


def load_run_settings(run_dir: Path) -> tuple[TrainSettings, AgentConfig, dict]:
    """Return the settings, agent configuration and device information of a run."""
    path = Path(run_dir) / SETTINGS_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"cannot read the settings of run {run_dir} ({path}): {error}"
                              ) from None
    return (TrainSettings.from_dict(data["settings"]),
            AgentConfig.from_dict(data["agent_config"]), data.get("device", {}))
