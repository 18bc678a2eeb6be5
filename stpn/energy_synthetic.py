"""Synthetic game traces in the ``memsyn-trace`` version 1 format, for tests and benchmarks.

The traces imitate an m-STPN agent, with weights W ~ U(-1/8, 1/8) and Lambda uniform in
the device range. In a chosen share of steps, a chosen share of synapses gets an update
dF, discretised to the device step and clipped to the device maximum. The recorded sums
``g_sum`` and ``g_abs_sum`` come from a float32 loop over steps, as the network runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_trace(
    rng: np.random.Generator,
    n_post: int,
    n_pre: int,
    n_steps: int,
    *,
    episode_starts: tuple[int, ...] = (0,),
    update_step_share: float = 0.1,
    updated_synapse_share: float = 0.01,
    df_step: float = 0.5,
    df_max: float = 20.0,
    lambda_range: tuple[float, float] = (0.08, 0.92),
    frame_skip: int = 1,
    layer: str = "mstpn",
    device_sha256: str = "0" * 64,
) -> dict[str, np.ndarray]:
    """Return the arrays of a synthetic trace, keyed as in the trace file.

    In each of ``round(update_step_share * n_steps)`` randomly chosen steps,
    ``max(1, round(updated_synapse_share * n_post * n_pre))`` distinct synapses get one
    update of ``df_step`` times a non-zero integer, at most ``df_max`` in magnitude.
    """
    n_synapses = n_post * n_pre
    w = rng.uniform(-0.125, 0.125, size=(n_post, n_pre)).astype(np.float32)
    lam = rng.uniform(*lambda_range, size=(n_post, n_pre)).astype(np.float32)
    update_step, update_index, update_df = _random_updates(
        rng, n_steps, n_synapses, update_step_share, updated_synapse_share, df_step, df_max
    )
    g_sum, g_abs_sum = _recorded_sums(w, lam, episode_starts, n_steps,
                                      update_step, update_index, update_df)
    return {
        "format": np.array("memsyn-trace"),
        "version": np.array(1),
        "n_steps": np.array(n_steps),
        "n_post": np.array(n_post),
        "n_pre": np.array(n_pre),
        "frame_skip": np.array(frame_skip),
        "w": w,
        "lam": lam,
        "episode_starts": np.asarray(episode_starts, dtype=np.int64),
        "update_step": update_step,
        "update_index": update_index,
        "update_df": update_df,
        "g_sum": g_sum,
        "g_abs_sum": g_abs_sum,
        "game_returns": rng.integers(-21, 22, size=len(episode_starts)).astype(np.float32),
        "device_sha256": np.array(device_sha256),
        "layer": np.array(layer),
    }


def write_trace(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write trace arrays as a compressed ``.npz`` file and return its path."""
    path = Path(path)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def _random_updates(
    rng: np.random.Generator, n_steps: int, n_synapses: int, update_step_share: float,
    updated_synapse_share: float, df_step: float, df_max: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_update_steps = round(update_step_share * n_steps)
    per_step = max(1, round(updated_synapse_share * n_synapses))
    steps = np.sort(rng.choice(n_steps, size=n_update_steps, replace=False))

    max_multiple = int(df_max / df_step)
    update_step = np.repeat(steps, per_step).astype(np.int32)
    update_index = np.concatenate(
        [rng.choice(n_synapses, size=per_step, replace=False) for _ in steps]
    ).astype(np.int64) if n_update_steps else np.zeros(0, dtype=np.int64)
    multiples = rng.integers(1, max_multiple + 1, size=update_step.size)
    signs = rng.choice(np.array([-1, 1]), size=update_step.size)
    update_df = (signs * multiples * df_step).astype(np.float32)
    return update_step, update_index, update_df


def _recorded_sums(
    w: np.ndarray, lam: np.ndarray, episode_starts: tuple[int, ...], n_steps: int,
    update_step: np.ndarray, update_index: np.ndarray, update_df: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the trace's recurrence in float32 and return the per-step sums of G and |G|."""
    w_flat = w.ravel()
    lam_flat = lam.ravel()
    f = np.zeros_like(w_flat)
    starts = set(episode_starts)
    bounds = np.searchsorted(update_step, np.arange(n_steps + 1))
    g_sum = np.empty(n_steps)
    g_abs_sum = np.empty(n_steps)
    for step in range(n_steps):
        f = np.zeros_like(f) if step in starts else lam_flat * f
        first, end = bounds[step], bounds[step + 1]
        f[update_index[first:end]] += update_df[first:end]
        g = w_flat + f
        g_sum[step] = g.sum(dtype=np.float64)
        g_abs_sum[step] = np.abs(g).sum(dtype=np.float64)
    return g_sum, g_abs_sum
