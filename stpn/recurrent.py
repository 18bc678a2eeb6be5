"""The recurrent state shared by the layers, and the interface the Pong agent expects of them."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.utils.checkpoint


class RecurrentState:
    """State of a batch of sequences: tensors whose first dimension is the batch.

    The STPN contains (h, F), the m-STPN (h, F, zero-row flags of F) and the LSTM (h, c).
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tuple(tensors)

    @property
    def batch(self) -> int:
        return self.tensors[0].shape[0]

    def clone(self) -> RecurrentState:
        return RecurrentState(*(tensor.clone() for tensor in self.tensors))

    @torch.no_grad()
    def reset_(self, mask: torch.Tensor) -> None:
        """Zero the state of the sequences where mask (B,) is True, in place."""
        if mask.any():
            for tensor in self.tensors:
                tensor[mask] = 0.0

    @torch.no_grad()
    def copy_(self, other: RecurrentState) -> None:
        for mine, theirs in zip(self.tensors, other.tensors, strict=True):
            mine.copy_(theirs)


class RecurrentCore(Protocol):
    """What :class:`stpn.network.PongAgent` needs of a recurrent layer.

    Acting runs :meth:`step` without autograd and updates the state in place. Training
    then calls :meth:`forward` on the same inputs, which returns the recorded outputs with
    a gradient, by replaying the recording or by recomputing from the recorded start state.
    """

    kind: str
    hidden_size: int

    def initial_state(self, batch: int) -> RecurrentState: ...

    def step(self, x: torch.Tensor, state: RecurrentState, *,
             episode_start: torch.Tensor | None = None,
             record_step: int | None = None) -> torch.Tensor: ...

    def peek(self, x: torch.Tensor, state: RecurrentState) -> torch.Tensor: ...

    def start_recording(self, steps: int, batch: int) -> None: ...

    def forward(self, x: torch.Tensor, check_inputs: bool = False) -> torch.Tensor: ...

    def project_parameters(self) -> None: ...


class RecomputingCore(torch.nn.Module):
    """Base of the layers whose training pass recomputes the rollout with autograd.

    Subclasses define :meth:`cell`, one differentiable step. Recording keeps the state
    at step 0 and the episode-start flags; :meth:`forward` then replays the steps from
    that state with autograd, in chunks of `checkpoint_every` steps whose activations are
    recomputed during the backward pass (torch.utils.checkpoint) to bound memory.
    """

    kind = "recomputing"
    hidden_size: int
    checkpoint_every: int = 10

    def cell(self, x: torch.Tensor, tensors: tuple[torch.Tensor, ...]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Return (h, new state tensors) for one step; must be differentiable."""
        raise NotImplementedError

    def initial_state(self, batch: int) -> RecurrentState:
        raise NotImplementedError

    def _prepare(self, x: torch.Tensor, state: RecurrentState,
                 episode_start: torch.Tensor | None) -> None:
        if episode_start is not None:
            state.reset_(episode_start)

    @torch.no_grad()
    def step(self, x: torch.Tensor, state: RecurrentState, *,
             episode_start: torch.Tensor | None = None,
             record_step: int | None = None) -> torch.Tensor:
        """Advance the state by one step in place and return h (B, hidden_size)."""
        self._prepare(x, state, episode_start)
        if record_step is not None:
            recording = self._recording
            if recording is None:
                raise RuntimeError("record_step given before start_recording()")
            if record_step == 0:
                recording["state0"] = state.clone()
            flags = recording["episode_start"]
            flags[record_step] = False if episode_start is None else episode_start
            recording["recorded_steps"] = record_step + 1
        h, tensors = self.cell(x, state.tensors)
        state.copy_(RecurrentState(*tensors))
        return h

    @torch.no_grad()
    def peek(self, x: torch.Tensor, state: RecurrentState) -> torch.Tensor:
        h, _ = self.cell(x, state.tensors)
        return h

    def start_recording(self, steps: int, batch: int) -> None:
        self._recording = {"steps": steps, "recorded_steps": 0, "state0": None,
                           "episode_start": torch.zeros(steps, batch, dtype=torch.bool)}

    def forward(self, x: torch.Tensor, check_inputs: bool = False) -> torch.Tensor:
        """Return the outputs (T, B, hidden_size) of the recorded rollout, recomputed with
        autograd from the recorded start state. check_inputs is accepted for interface
        compatibility; the recomputation needs no check."""
        recording = getattr(self, "_recording", None)
        if recording is None or recording["recorded_steps"] != x.shape[0]:
            raise RuntimeError("forward() replays a recorded rollout of the same length: call "
                               "start_recording() and step(..., record_step=t) first")
        tensors = recording["state0"].tensors
        flags = recording["episode_start"]
        outputs = []
        for start in range(0, x.shape[0], self.checkpoint_every):
            stop = min(start + self.checkpoint_every, x.shape[0])
            chunk_outputs, *tensors = torch.utils.checkpoint.checkpoint(
                self._run_chunk, x[start:stop], flags[start:stop], *tensors,
                use_reentrant=False)
            outputs.append(chunk_outputs)
        return torch.cat(outputs)

    def _run_chunk(self, x, flags, *tensors):
        outputs = []
        for t in range(x.shape[0]):
            keep = (~flags[t]).to(x.dtype)
            tensors = tuple(tensor * keep.view(-1, *([1] * (tensor.dim() - 1)))
                            for tensor in tensors)
            h, tensors = self.cell(x[t], tensors)
            outputs.append(h)
        return (torch.stack(outputs), *tensors)

    def project_parameters(self) -> None:
        """No parameter of this layer is constrained."""
