"""Read and validate a game trace (``memsyn-trace`` version 1) for the energy estimate.

A trace holds, for one agent and one or more games, the long-term weights ``w`` and decay
factors ``lam`` of every synapse, the sparse short-term updates dF of every step, and the
per-step sums of G = W + F that the replay is checked against. The recurrence it encodes,
per step t, is ``F_t = lam * F_(t-1) + dF_t`` with ``F = 0`` at each episode start.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stpn.energy_device import EnergyInputError

log = logging.getLogger(__name__)

TRACE_FORMAT = "memsyn-trace"
TRACE_VERSION = 1
# Layers whose synapses the trace records. An "lstm" trace has no synapse arrays.
# NOTE: the original STPN divides F by the row norm of G every step, so its trace follows
# F_t = lam * F_(t-1) + dF_t only if the recorder folds that factor into what it stores.
# The replay check against g_sum rejects an "stpn" trace that does not.
SYNAPSE_LAYERS = ("mstpn", "stpn")

TRACE_KEYS = (
    "format", "version", "n_steps", "n_post", "n_pre", "frame_skip", "w", "lam",
    "episode_starts", "update_step", "update_index", "update_df", "g_sum", "g_abs_sum",
    "game_returns", "device_sha256", "layer",
)


@dataclass(frozen=True)
class GameTrace:
    """A validated trace. Arrays are flat over synapses (index ``post * n_pre + pre``);
    updates are sorted by step, and ``step_bounds[t]:step_bounds[t + 1]`` selects step t."""

    path: Path
    layer: str
    n_steps: int
    n_post: int
    n_pre: int
    frame_skip: int
    w: np.ndarray
    lam: np.ndarray
    episode_starts: np.ndarray
    update_step: np.ndarray
    update_index: np.ndarray
    update_df: np.ndarray
    step_bounds: np.ndarray
    g_sum: np.ndarray
    g_abs_sum: np.ndarray
    game_returns: np.ndarray
    device_sha256: str

    @property
    def n_synapses(self) -> int:
        return self.n_post * self.n_pre

    @property
    def n_games(self) -> int:
        return int(self.episode_starts.size)

    def game_bounds(self) -> list[tuple[int, int]]:
        """Return the ``(first_step, end_step)`` of each game, end exclusive."""
        ends = list(self.episode_starts[1:]) + [self.n_steps]
        return [(int(start), int(end)) for start, end in zip(self.episode_starts, ends)]


def load_trace(path: str | Path) -> GameTrace:
    """Load a trace file and check its keys, types, shapes and value ranges.

    Raises EnergyInputError naming the file and the key for a missing or unreadable file,
    another format or version, an LSTM trace, or arrays that contradict each other.
    """
    path = Path(path)
    arrays = _read_npz(path)
    check = _TraceChecker(path, arrays)

    check.header()
    n_steps = check.positive_int("n_steps")
    n_post = check.positive_int("n_post")
    n_pre = check.positive_int("n_pre")
    frame_skip = check.positive_int("frame_skip")
    n_synapses = n_post * n_pre

    w = check.float_array("w", (n_post, n_pre)).ravel()
    lam = check.float_array("lam", (n_post, n_pre)).ravel()
    g_sum = check.float_array("g_sum", (n_steps,))
    g_abs_sum = check.float_array("g_abs_sum", (n_steps,))
    episode_starts = check.episode_starts(n_steps)
    game_returns = check.float_array("game_returns", (episode_starts.size,))
    update_step, update_index, update_df = check.updates(n_steps, n_synapses)

    order = np.argsort(update_step, kind="stable")
    update_step = update_step[order]
    update_index = update_index[order]
    update_df = update_df[order]
    _reject_duplicate_updates(path, update_step, update_index, n_synapses)
    step_bounds = np.searchsorted(update_step, np.arange(n_steps + 1), side="left")

    trace = GameTrace(
        path=path, layer=check.text("layer"), n_steps=n_steps, n_post=n_post, n_pre=n_pre,
        frame_skip=frame_skip, w=w, lam=lam, episode_starts=episode_starts,
        update_step=update_step, update_index=update_index, update_df=update_df,
        step_bounds=step_bounds, g_sum=g_sum, g_abs_sum=g_abs_sum, game_returns=game_returns,
        device_sha256=check.text("device_sha256"),
    )
    log.info(
        "loaded trace %s: %d games, %d steps, %d x %d synapses, %d updates",
        path, trace.n_games, n_steps, n_post, n_pre, update_df.size,
    )
    return trace


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Return every array of an ``.npz`` file, loaded without pickle.

    Raises EnergyInputError when the file is missing, is no ``.npz`` archive or contains
    object arrays. numpy's own message for pickled data advises loading with
    ``allow_pickle``, which would let the file run code, so it is never passed on.
    """
    if path.is_dir():
        raise EnergyInputError(f"trace file {path} is a folder; pass the .npz file in it")
    if not path.is_file():
        raise EnergyInputError(f"trace file {path} not found")
    if not zipfile.is_zipfile(path):
        raise EnergyInputError(
            f"trace file {path} is not a memsyn trace: it could not be read as a numpy .npz "
            f"archive ({_describe_non_archive(path)}); pass the .npz file written by "
            "'memsyn pong play --trace'"
        )

    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = _read_array(path, npz, key)
    except EnergyInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        detail = "it contains pickled data" if "pickle" in str(error) else str(error)
        raise EnergyInputError(
            f"trace file {path} could not be read as a numpy .npz archive ({detail}); pass the "
            "trace written by 'memsyn pong play --trace'"
        ) from None
    return arrays


def _read_array(path: Path, npz, key: str) -> np.ndarray:
    """Return one array of an open ``.npz`` archive; object arrays are rejected."""
    try:
        return npz[key]
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
        raise EnergyInputError(
            f"trace file {path} is not a memsyn trace: array {key!r} contains pickled Python "
            "objects, which no memsyn trace contains, and they are not loaded because "
            "unpickling can run code; pass the .npz file written by 'memsyn pong play --trace'"
        ) from None


def _describe_non_archive(path: Path) -> str:
    """Return a short description of a file that is no zip archive, from its first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as error:
        return f"it could not be read: {error.strerror}"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array"
    if head.lstrip()[:1] in (b"{", b"["):
        return "it looks like JSON"
    if not head:
        return "it is empty"
    return "it is not a zip archive"


class _TraceChecker:
    """Checks of single trace keys; each failure raises EnergyInputError naming the key."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray]):
        self.path = path
        self.arrays = arrays

    def fail(self, message: str) -> EnergyInputError:
        return EnergyInputError(f"trace file {self.path}: {message}")

    def header(self) -> None:
        if "format" not in self.arrays:
            raise self.fail(f"key 'format' is missing, so this is not a {TRACE_FORMAT!r} file")
        if self.text("format") != TRACE_FORMAT:
            raise self.fail(
                f"format is {self.text('format')!r}, expected {TRACE_FORMAT!r}; pass the trace "
                "written by 'memsyn pong play --trace'"
            )
        version = self.integer("version")
        if version != TRACE_VERSION:
            raise self.fail(
                f"version {version} is not supported, expected {TRACE_VERSION}; record the "
                "trace again with this memsyn version"
            )

        layer = self.text("layer")
        if layer == "lstm":
            raise self.fail(
                "the trace is of an LSTM agent, which has no plastic synapses to estimate the "
                f"energy of; play an agent with one of the layers {', '.join(SYNAPSE_LAYERS)}"
            )
        if layer not in SYNAPSE_LAYERS:
            raise self.fail(f"layer is {layer!r}, expected one of {', '.join(SYNAPSE_LAYERS)}")

        missing = [key for key in TRACE_KEYS if key not in self.arrays]
        if missing:
            raise self.fail(f"keys missing: {', '.join(missing)}")

    def get(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise self.fail(f"key '{key}' is missing")
        return self.arrays[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if value.shape != () or value.dtype.kind not in "US":
            raise self.fail(f"'{key}' must be a string scalar, got {value.dtype} {value.shape}")
        return str(value.item() if value.dtype.kind == "U" else value.item().decode())

    def integer(self, key: str) -> int:
        value = self.get(key)
        if value.shape != () or value.dtype.kind not in "iu":
            raise self.fail(f"'{key}' must be an integer scalar, got {value.dtype} {value.shape}")
        return int(value)

    def positive_int(self, key: str) -> int:
        value = self.integer(key)
        if value < 1:
            raise self.fail(f"'{key}' is {value}, expected at least 1")
        return value

    def float_array(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = self.get(key)
        if value.dtype.kind != "f":
            raise self.fail(f"'{key}' must be a float array, got dtype {value.dtype}")
        if value.shape != shape:
            raise self.fail(f"'{key}' has shape {value.shape}, expected {shape}")
        if not np.all(np.isfinite(value)):
            raise self.fail(f"'{key}' contains NaN or infinite values")
        return value

    def int_array(self, key: str) -> np.ndarray:
        value = self.get(key)
        if value.dtype.kind not in "iu" or value.ndim != 1:
            raise self.fail(
                f"'{key}' must be a one-dimensional integer array, got {value.dtype} {value.shape}"
            )
        return value.astype(np.int64, copy=False)

    def episode_starts(self, n_steps: int) -> np.ndarray:
        starts = self.int_array("episode_starts")
        if starts.size == 0 or starts[0] != 0:
            raise self.fail("'episode_starts' must begin with step 0")
        if np.any(np.diff(starts) <= 0) or starts[-1] >= n_steps:
            raise self.fail(
                f"'episode_starts' must be strictly increasing steps below n_steps = {n_steps}"
            )
        return starts

    def updates(self, n_steps: int, n_synapses: int) -> tuple[np.ndarray, ...]:
        update_step = self.int_array("update_step")
        update_index = self.int_array("update_index")
        update_df = self.get("update_df")
        if update_df.dtype.kind != "f" or update_df.ndim != 1:
            raise self.fail(
                f"'update_df' must be a one-dimensional float array, got {update_df.dtype} "
                f"{update_df.shape}"
            )
        if not update_step.size == update_index.size == update_df.size:
            raise self.fail(
                "'update_step', 'update_index' and 'update_df' must have the same length, got "
                f"{update_step.size}, {update_index.size} and {update_df.size}"
            )

        if update_step.size and (update_step.min() < 0 or update_step.max() >= n_steps):
            raise self.fail(f"'update_step' has steps outside 0 .. {n_steps - 1}")
        if update_index.size and (update_index.min() < 0 or update_index.max() >= n_synapses):
            raise self.fail(
                f"'update_index' has synapse indices outside 0 .. {n_synapses - 1} "
                "(n_post * n_pre - 1)"
            )
        if not np.all(np.isfinite(update_df)):
            raise self.fail("'update_df' contains NaN or infinite values")
        return update_step, update_index, update_df


def _reject_duplicate_updates(
    path: Path, update_step: np.ndarray, update_index: np.ndarray, n_synapses: int
) -> None:
    """Raise EnergyInputError if a synapse has two updates in one step (sorted by step)."""
    if update_step.size < 2:
        return
    keys = update_step * n_synapses + update_index
    keys.sort()
    repeated = np.flatnonzero(keys[1:] == keys[:-1])
    if repeated.size:
        step, index = divmod(int(keys[repeated[0]]), n_synapses)
        raise EnergyInputError(
            f"trace file {path}: synapse {index} has more than one update at step {step} "
            f"({repeated.size} duplicate updates in all); a trace holds one dF per synapse "
            "and step"
        )
