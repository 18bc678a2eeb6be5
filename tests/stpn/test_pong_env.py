"""The Pong environment wrapper and the per-environment episode bookkeeping."""

import numpy as np
import pytest

from stpn.pong_env import EpisodeTracker, make_pong_env


def test_tracker_sums_rewards_until_episode_end():
    tracker = EpisodeTracker(2)
    no = np.array([False, False])
    assert tracker.update(np.array([1.0, -1.0]), no, no) == []
    finished = tracker.update(np.array([-1.0, 0.0]), np.array([True, False]), no)
    assert len(finished) == 1
    assert finished[0].env_index == 0
    assert finished[0].episode_return == 0.0
    assert finished[0].length_steps == 2
    assert not finished[0].truncated
    # Environment 0 starts over; environment 1 keeps counting.
    finished = tracker.update(np.array([1.0, 1.0]), no, np.array([False, True]))
    assert [(e.env_index, e.episode_return, e.length_steps, e.truncated) for e in finished] == [
        (1, 0.0, 3, True)]
    assert tracker.returns.tolist() == [1.0, 0.0]


@pytest.mark.slow
def test_pong_env_observations_and_same_step_reset():
    env = make_pong_env(2, frame_skip=4, num_threads=1)
    observations, _ = env.reset(seed=3)
    assert observations.shape == (2, 1, 84, 84)
    assert observations.dtype == np.uint8
    assert env.single_action_space.n == 6
    ended = False
    for _ in range(3000):
        _, rewards, terminated, _, info = env.step(np.zeros(2, dtype=np.int64))
        assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
        if terminated.any():
            # The observation returned with the end is already the next game's first one.
            index = int(np.flatnonzero(terminated)[0])
            assert info["episode_frame_number"][index] <= 4 * 31
            ended = True
            break
    env.close()
    assert ended


def test_pong_env_rejects_bad_frame_skip():
    with pytest.raises(ValueError, match="frame_skip >= 1"):
        make_pong_env(1, frame_skip=0)
