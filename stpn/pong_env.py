"""Vectorised Atari Pong from ale-py, configured like the published STPN runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def make_pong_env(num_envs: int, frame_skip: int = 1, noop_max: int = 30, num_threads: int = 0):
    """Return ale-py's AtariVectorEnv for Pong: 84 x 84 grayscale, one frame per observation.

    Built directly, not through ``gymnasium.make_vec("ALE/Pong-v5")``, which turns sticky
    actions on (probability 0.25); here actions are never repeated at random, as in
    PongNoFrameskip-v4. frame_skip emulator frames pass per agent step (1 in the
    published runs); with frame_skip > 1 each observation is the pixel-wise maximum of
    the last two frames. Rewards are returned unclipped (Pong's are -1, 0 or +1 anyway).
    Episodes are reset in the same step that ends them (autoreset "SameStep"): the
    returned observation is the first of the next episode. The default ("NextStep")
    would instead return one extra step with reward 0 whose action is ignored.
    Observations: uint8 (num_envs, 1, 84, 84).
    """
    from ale_py.vector_env import AtariVectorEnv

    if num_envs < 1:
        raise ValueError(f"expected num_envs >= 1, got {num_envs}")
    if frame_skip < 1:
        raise ValueError(f"expected frame_skip >= 1, got {frame_skip}")
    return AtariVectorEnv(
        "pong", num_envs,
        num_threads=num_threads,
        repeat_action_probability=0.0,
        autoreset_mode="SameStep",
        img_height=84, img_width=84, grayscale=True, stack_num=1,
        frameskip=frame_skip, maxpool=frame_skip > 1,
        noop_max=noop_max, episodic_life=False, reward_clipping=False,
    )


@dataclass(frozen=True)
class FinishedEpisode:
    """One completed game: its index in the environment, return and length in agent steps."""

    env_index: int
    episode_return: float
    length_steps: int
    truncated: bool


class EpisodeTracker:
    """Sum rewards and count steps per environment (ale-py's info carries no returns)."""

    def __init__(self, num_envs: int) -> None:
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
               ) -> list[FinishedEpisode]:
        """Add one step and return the episodes that ended with it."""
        self.returns += rewards
        self.lengths += 1
        finished = []
        for index in np.flatnonzero(terminated | truncated):
            finished.append(FinishedEpisode(int(index), float(self.returns[index]),
                                            int(self.lengths[index]), bool(truncated[index])))
            self.returns[index] = 0.0
            self.lengths[index] = 0
        return finished
