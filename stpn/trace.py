"""Record what every synapse did while the agent played: the game trace file (memsyn-trace v1).

The format is described in docs/trace-format.md. Per step t the m-STPN applies
F_t = lam * F_(t-1) + dF_t (F = 0 at each game start) and G_t = W + F_t; the trace keeps
W, lam, every non-zero dF_t and the sums of G_t and abs(G_t), from which the energy
estimate replays the synapses and checks its replay. The sums are accumulated in
float64: sum(G) as sum(W) + sum(F), sum(abs(G)) over W + F formed in float32, as the
network computes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from stpn.checkpoint import atomic_write_bytes
from stpn.network import PongAgent

log = logging.getLogger(__name__)

FORMAT = "memsyn-trace"
VERSION = 1


class TraceRecorder:
    """Collect the per-step synapse updates of one agent over one or more games."""

    def __init__(self, agent: PongAgent, frame_skip: int, device_sha256: str) -> None:
        core = agent.core
        self.layer = core.kind
        self.frame_skip = frame_skip
        self.device_sha256 = device_sha256
        if self.layer == "mstpn":
            self.w = core.weight.detach().to(torch.float32).clone()
            self.lam = core.applied_decay().detach().to(torch.float32).clone()
        else:
            # The LSTM has no plastic synapses; its trace only carries returns and steps.
            self.w = torch.zeros(0, 0)
            self.lam = torch.zeros(0, 0)
        self._w_sum = float(self.w.sum(dtype=torch.float64))
        self._w_abs_sum = float(self.w.abs().sum(dtype=torch.float64))
        self._state_is_zero = True
        self.steps = 0
        self.episode_starts: list[int] = []
        self._update_steps: list[np.ndarray] = []
        self._update_index: list[np.ndarray] = []
        self._update_df: list[np.ndarray] = []
        self._g_sum: list[float] = []
        self._g_abs_sum: list[float] = []
        self.update_count = 0

    def start_game(self) -> None:
        self.episode_starts.append(self.steps)

    def record_step(self, state, df: torch.Tensor | None, updates: int | None = None) -> None:
        """Store the step just taken: df (1, N, M) the applied updates, state its result.

        updates: the number of non-zero entries of df when the caller knows it (the
        kernel counts them), which lets steps without updates skip the search.
        """
        if self.layer != "mstpn":
            self._g_sum.append(0.0)
            self._g_abs_sum.append(0.0)
            self.steps += 1
            return

        if self.episode_starts and self.episode_starts[-1] == self.steps:
            self._state_is_zero = True
        if updates is None or updates > 0:
            flat = df.reshape(-1)
            index = torch.nonzero(flat).squeeze(1)
            if index.numel():
                self._update_steps.append(np.full(index.numel(), self.steps, dtype=np.int32))
                self._update_index.append(index.numpy().astype(np.int64))
                self._update_df.append(flat[index].numpy().astype(np.float32))
                self.update_count += index.numel()
                self._state_is_zero = False

        if self._state_is_zero:
            # F = 0 since the game started, so G = W: the sums are those of W.
            self._g_sum.append(self._w_sum)
            self._g_abs_sum.append(self._w_abs_sum)
        else:
            f = state.tensors[1][0]
            self._g_sum.append(self._w_sum + float(f.sum(dtype=torch.float64)))
            self._g_abs_sum.append(float((self.w + f).abs().sum(dtype=torch.float64)))
        self.steps += 1

    def write(self, path: Path, game_returns: list[float]) -> Path:
        """Write the trace atomically to path (".npz" is appended if missing)."""
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")

        def concatenated(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        arrays = {
            "format": np.array(FORMAT),
            "version": np.array(VERSION),
            "n_steps": np.array(self.steps),
            "n_post": np.array(self.w.shape[0]),
            "n_pre": np.array(self.w.shape[1]),
            "frame_skip": np.array(self.frame_skip),
            "w": self.w.numpy().astype(np.float32),
            "lam": self.lam.numpy().astype(np.float32),
            "episode_starts": np.array(self.episode_starts, dtype=np.int64),
            "update_step": concatenated(self._update_steps, np.int32),
            "update_index": concatenated(self._update_index, np.int64),
            "update_df": concatenated(self._update_df, np.float32),
            "g_sum": np.array(self._g_sum, dtype=np.float64),
            "g_abs_sum": np.array(self._g_abs_sum, dtype=np.float64),
            "game_returns": np.array(game_returns, dtype=np.float32),
            "device_sha256": np.array(self.device_sha256),
            "layer": np.array(self.layer),
        }
        atomic_write_bytes(path, lambda file: np.savez_compressed(file, **arrays))
        log.info("wrote trace of %d steps, %d games and %d synapse updates to %s", self.steps,
                 len(game_returns), self.update_count, path)
        return path
