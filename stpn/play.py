"""Play Pong with a trained or untrained agent: evaluation and synapse traces for the energy estimate."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from stpn.checkpoint import load_checkpoint, save_checkpoint
from stpn.device import DeviceParameters, load_device_file
from stpn.network import AgentConfig, PongAgent, default_hidden_size
from stpn.pong_env import EpisodeTracker, make_pong_env
from stpn.trace import TraceRecorder

log = logging.getLogger(__name__)

UNTRAINED = "untrained"
"""Pass as the checkpoint to play with freshly initialised weights."""


@dataclass
class PlaySummary:
    """Outcome of played games."""

    games: int
    returns: list[float]
    lengths_steps: list[int]
    frame_skip: int
    layer: str
    trace_path: Path | None = None
    synapse_updates: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")


def device_info(device: DeviceParameters, lambda_range: str) -> dict:
    """Return what checkpoints and traces record about the device file used."""
    return {"path": str(device.path), "sha256": device.sha256, "lambda_range": lambda_range}


def build_untrained_agent(device: DeviceParameters, layer: str = "mstpn", seed: int = 0,
                          lambda_range: str = "device") -> PongAgent:
    """Return a freshly initialised agent (seeded) constrained by the device file."""
    torch.manual_seed(seed)
    constraints = device.synapse_constraints(lambda_range) if layer == "mstpn" else None
    return PongAgent(AgentConfig(layer=layer, hidden_size=default_hidden_size(layer),
                                 constraints=constraints))


def write_untrained_checkpoint(device_file: str | Path, out: str | Path, *, layer: str = "mstpn",
                               seed: int = 0, lambda_range: str = "device",
                               frame_skip: int = 1) -> Path:
    """Write a checkpoint of an untrained agent, so the energy path works before training."""
    device = load_device_file(device_file)
    agent = build_untrained_agent(device, layer, seed, lambda_range)
    extra = {"device": device_info(device, lambda_range),
             "settings": {"frame_skip": frame_skip, "seed": seed, "untrained": True},
             "progress": {"frames": 0}}
    return save_checkpoint(out, agent, extra=extra)


@dataclass
class _LoadedAgent:
    agent: PongAgent
    frame_skip: int
    device_sha256: str


def _load_agent(checkpoint: str | Path | None, device_file: str | Path | None, seed: int,
                frame_skip: int | None) -> _LoadedAgent:
    """Return the agent to play: untrained (needs a device file) or from a checkpoint.

    With both a checkpoint and a device file, an m-STPN agent takes its discretisation
    and clip from the device file. It also takes the decay range from there if it was
    trained with the device's range. The trace then refers to that file.
    """
    device = load_device_file(device_file) if device_file is not None else None
    if checkpoint is None or str(checkpoint) == UNTRAINED:
        if device is None:
            raise ValueError("an untrained agent needs a device file for its constraints")
        agent = build_untrained_agent(device, seed=seed)
        return _LoadedAgent(agent, frame_skip or 1, device.sha256)

    loaded = load_checkpoint(checkpoint)
    payload = loaded.payload
    trained_device = payload.get("device") or {}
    skip = frame_skip or int((payload.get("settings") or {}).get("frame_skip", 1))
    agent = loaded.agent
    sha = trained_device.get("sha256", "")
    if device is not None and loaded.config.layer == "mstpn":
        if trained_device.get("sha256") not in (None, device.sha256):
            log.warning("playing with device file %s, not the one the agent was trained with "
                        "(%s)", device.path, trained_device.get("path", "unknown"))
        constraints = device.synapse_constraints(trained_device.get("lambda_range", "device"))
        config = AgentConfig(layer="mstpn", hidden_size=loaded.config.hidden_size,
                             constraints=constraints,
                             checkpoint_every=loaded.config.checkpoint_every,
                             hebbian_init=loaded.config.hebbian_init)
        agent = PongAgent(config)
        agent.load_state_dict(payload["model"])
        sha = device.sha256
    return _LoadedAgent(agent, skip, sha)


def play_games(checkpoint_or_untrained: str | Path | None, device_file: str | Path | None,
               games: int, trace_path: str | Path | None = None, seed: int = 0, *,
               frame_skip: int | None = None, progress: bool = False) -> PlaySummary:
    """Play `games` games of Pong one after the other and optionally write a trace.

    checkpoint_or_untrained: a checkpoint file or run directory, or "untrained" / None
    for freshly initialised weights (then device_file is required). The agent samples
    its actions from the policy with a generator seeded by `seed`. The emulator is seeded
    with `seed` too, so the same arguments give the same games. The trace format is
    described in docs/trace-format.md.
    """
    if games < 1:
        raise ValueError(f"expected games >= 1, got {games}")
    loaded = _load_agent(checkpoint_or_untrained, device_file, seed, frame_skip)
    threads = torch.get_num_threads()
    # One frame at a time is too little work to share between threads.
    torch.set_num_threads(1)
    try:
        return _play_sequentially(loaded, games, trace_path, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _play_sequentially(loaded: _LoadedAgent, games: int, trace_path, seed: int,
                       progress: bool) -> PlaySummary:
    agent = loaded.agent.eval()
    core = agent.core
    if trace_path is not None and core.kind == "stpn":
        raise ValueError("traces need the m-STPN (or LSTM) layer: the STPN's effective decay "
                         "Lambda / n_t changes every step, which the trace format cannot encode")

    env = make_pong_env(1, loaded.frame_skip, noop_max=30, num_threads=1)
    observations, _ = env.reset(seed=seed)
    observations = torch.from_numpy(observations)
    sampler = torch.Generator().manual_seed(seed)
    state = agent.initial_state(1)
    tracker = EpisodeTracker(1)
    recorder = TraceRecorder(agent, loaded.frame_skip, loaded.device_sha256) \
        if trace_path is not None else None
    df_buffer = counts = None
    if core.kind == "mstpn":
        df_buffer = torch.zeros(1, core.hidden_size, core.n_pre)
        counts = torch.zeros(core.hidden_size, dtype=torch.int32)

    returns, lengths = [], []
    episode_start = torch.ones(1, dtype=torch.bool)
    bar = _progress_bar(progress, games)
    with torch.no_grad():
        while len(returns) < games:
            if recorder is not None and bool(episode_start[0]):
                recorder.start_game()
            x = agent.encoder(observations)
            if df_buffer is not None:
                h = core.step(x, state, episode_start=episode_start, df_out=df_buffer,
                              counts=counts)
            else:
                h = core.step(x, state, episode_start=episode_start)
            if recorder is not None:
                recorder.record_step(state, df_buffer,
                                     None if counts is None else int(counts.sum()))
            logits, _ = agent.heads(h)
            action = torch.multinomial(functional.softmax(logits, dim=-1), 1,
                                       generator=sampler).squeeze(-1)
            observations, reward, terminated, truncated, _ = env.step(action.numpy())
            observations = torch.from_numpy(observations)
            episode_start = torch.from_numpy(terminated | truncated)
            for episode in tracker.update(reward, terminated, truncated):
                returns.append(episode.episode_return)
                lengths.append(episode.length_steps)
                log.info("game %d: return %+.0f in %d steps", len(returns),
                         episode.episode_return, episode.length_steps)
                if bar is not None:
                    bar.update(1)
    env.close()
    if bar is not None:
        bar.close()

    summary = PlaySummary(games, returns, lengths, loaded.frame_skip, core.kind)
    if recorder is not None:
        summary.trace_path = recorder.write(Path(trace_path), returns)
        summary.synapse_updates = recorder.update_count
    return summary


def evaluate(checkpoint: str | Path, games: int, seed: int = 0, envs: int = 8,
             frame_skip: int | None = None, progress: bool = False) -> PlaySummary:
    """Play `games` games on up to `envs` parallel environments and return their returns.

    Environment k plays games k, k + envs, ...; every environment finishes its share, so
    short games are not over-represented.
    """
    if games < 1:
        raise ValueError(f"expected games >= 1, got {games}")
    loaded = _load_agent(checkpoint, None, seed, frame_skip)
    agent = loaded.agent.eval()
    batch = min(envs, games)
    quota = np.array([len(range(k, games, batch)) for k in range(batch)])
    env = make_pong_env(batch, loaded.frame_skip, noop_max=30)
    observations, _ = env.reset(seed=seed)
    observations = torch.from_numpy(observations)
    sampler = torch.Generator().manual_seed(seed)
    state = agent.initial_state(batch)
    tracker = EpisodeTracker(batch)
    episode_start = torch.ones(batch, dtype=torch.bool)
    finished = np.zeros(batch, dtype=np.int64)
    returns, lengths = [], []
    bar = _progress_bar(progress, games)
    with torch.no_grad():
        while (finished < quota).any():
            x = agent.encoder(observations)
            h = agent.core.step(x, state, episode_start=episode_start)
            logits, _ = agent.heads(h)
            action = torch.multinomial(functional.softmax(logits, dim=-1), 1,
                                       generator=sampler).squeeze(-1)
            observations, reward, terminated, truncated, _ = env.step(action.numpy())
            observations = torch.from_numpy(observations)
            episode_start = torch.from_numpy(terminated | truncated)
            for episode in tracker.update(reward, terminated, truncated):
                if finished[episode.env_index] < quota[episode.env_index]:
                    finished[episode.env_index] += 1
                    returns.append(episode.episode_return)
                    lengths.append(episode.length_steps)
                    if bar is not None:
                        bar.update(1)
    env.close()
    if bar is not None:
        bar.close()
    return PlaySummary(games, returns, lengths, loaded.frame_skip, agent.core.kind)


def _progress_bar(enabled: bool, games: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=games, unit="game", desc="play", dynamic_ncols=True)
