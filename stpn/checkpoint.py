"""Agent checkpoints: one torch file of plain state dicts, written atomically.

A checkpoint file holds the agent configuration, the model state dict and, for training
checkpoints, the optimizer state, progress counters and random generator states. A JSON
file with the same stem holds the readable settings. Files are loaded with
``torch.load(weights_only=True)``, so they contain only tensors and plain Python values.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from stpn.network import AgentConfig, PongAgent

log = logging.getLogger(__name__)

FORMAT = "memsyn-pong-agent"
VERSION = 1
TRAINING_CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or of another format."""


@dataclass
class LoadedCheckpoint:
    """An agent rebuilt from a checkpoint, plus the rest of what the file holds."""

    agent: PongAgent
    config: AgentConfig
    payload: dict
    path: Path


def atomic_write_bytes(path: Path, write) -> None:
    """Call write(file) on a temporary file beside path, then rename it over path.

    A process killed at any moment leaves either the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file readable by its owner only; use the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, lambda file: file.write(text.encode()))


def save_checkpoint(path: str | Path, agent: PongAgent, *, extra: dict | None = None) -> Path:
    """Write the agent (and extra plain entries such as optimizer state) to path."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION,
               "agent_config": agent.config.as_dict(),
               "model": agent.state_dict()}
    payload.update(extra or {})
    atomic_write_bytes(path, lambda file: torch.save(payload, file))
    readable = {key: value for key, value in payload.items()
                if key in ("format", "version", "agent_config", "progress", "device", "settings",
                           "exported_from")}
    write_json(path.with_suffix(".json"), readable)
    log.debug("wrote checkpoint %s", path)
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """Accept a checkpoint file or a training run directory that contains one."""
    path = Path(path)
    if path.is_dir():
        path = path / TRAINING_CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: give a .pt file written by "
                              f"'memsyn pong train' or 'memsyn pong init', or its run directory")
    return path


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Rebuild the agent stored in a checkpoint file (or run directory)."""
    path = resolve_checkpoint_path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as error:
        # torch.load raises these for corrupt, truncated or foreign files.
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a memsyn Pong agent checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint version {payload.get('version')}")

    config = AgentConfig.from_dict(payload["agent_config"])
    agent = PongAgent(config)
    agent.load_state_dict(payload["model"])
    return LoadedCheckpoint(agent, config, payload, path)


def export_agent(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a copy of a checkpoint without optimizer and random states, for shipping.

    The copy keeps the agent, its configuration, the device, settings and progress
    entries, so it plays like the original and records where it came from.
    """
    loaded = load_checkpoint(checkpoint)
    kept = {key: loaded.payload[key] for key in ("device", "settings", "progress")
            if key in loaded.payload}
    kept["exported_from"] = str(loaded.path)
    return save_checkpoint(out, loaded.agent, extra=kept)
