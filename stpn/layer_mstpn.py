"""The m-STPN layer: short-term plastic synapses constrained to what the memristor can do."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from stpn.mstpn_kernel import MODE_OUTPUT_ONLY
from stpn.mstpn_ops import (
    MSTPNRecorder,
    SynapseConstraints,
    clamp_decay,
    mstpn_sequence,
    normalise_input,
    reference_sequence,
    run_steps,
    select_steps,
)
from stpn.recurrent import RecurrentState

log = logging.getLogger(__name__)

ORIGINAL_HEBBIAN_INIT = 1.25e-4
"""Half-width of the original STPN's uniform Gamma initialisation."""

HEBBIAN_INIT_STEPS = 50.0
"""Default half-width of the m-STPN's Gamma initialisation, in device dF steps."""


def default_hebbian_init(constraints: SynapseConstraints) -> float:
    """Return the default half-width of Gamma's initialisation: 50 device dF steps.

    With unit-normalised inputs every product |h_i zn_j| stays below 1, so the original
    STPN half-width (1.25e-4) keeps every update below half a step and dF is always zero.
    On Pong frames through the untrained encoder the largest products are about 0.03.
    With 50 steps (25 for the published device), the untrained agent changed about 0.01 %
    of its synapses per step. Training raised that to 4-6 % within 20,000 frames. Both
    figures were measured with seed 1 and frame skip 1, first with random actions, then
    with A2C. With no discretisation (df_step 0) the original value is used.
    """
    if constraints.df_step > 0:
        return HEBBIAN_INIT_STEPS * constraints.df_step
    return ORIGINAL_HEBBIAN_INIT


class MSTPN(nn.Module):
    r"""Memristive short-term plasticity neuron layer (m-STPN), one step per input frame.

    For each sequence of the batch and each step t::

        z_t   = [x_t ; h_(t-1)]
        zn_t  = z_t / sqrt(|z_t|^2 + 1e-12)
        h_t   = tanh((W + F_(t-1)) zn_t + b)
        dF_t  = Q(Gamma * (h_t zn_t^T))
        F_t   = clamp(Lambda, lambda_min, lambda_max) * F_(t-1) + dF_t

    where h_t is the output, F the short-term synapse state (one matrix per sequence),
    W the long-term weights, Lambda the per-synapse decay, Gamma the per-synapse Hebbian
    strength, and Q(r) = clip(df_step * round(r / df_step), -df_max, df_max) rounds each
    update to the device's conductance step and clips it to the device's largest update.
    Unlike the original STPN (:class:`stpn.layer_stpn.STPN`), only the input is
    normalised, so the decay is Lambda itself and stays inside the device range. G = W + F
    is the synapse conductance in weight units.

    Gradients: rounding is passed straight through (dQ/dr = 1) where abs(r) <= df_max, and
    dQ/dr = 0 where the clip is active. Lambda gets the gradient of the clamp (zero
    outside the range); :meth:`project_parameters` keeps the parameter inside the range
    after each optimiser step, so that it never gets stuck outside.

    Args:
        input_size: number of external inputs (2592 CNN features for Pong).
        hidden_size: number of units N (64 for Pong).
        constraints: device limits in weight units (see :class:`SynapseConstraints`).
        checkpoint_every: the backward pass keeps F at every checkpoint_every-th step and
            recomputes the rest (1: keep all, most memory, no recomputation).
        hebbian_init: half-width of Gamma's uniform initialisation (None: 50 device dF
            steps, see :func:`default_hebbian_init`).
        backend: "auto" (C kernel when it builds), "kernel" or "torch".

    Shapes (N = hidden_size, M = input_size + hidden_size synapses per unit):
        input x: (T, B, input_size); state h: (B, N), F: (B, N, M) and the zero-row
        flags of F: (B, N) uint8; output: (T, B, N).

    Use: :meth:`step` advances the state in place without autograd, one step at a time,
    as when acting. For training, call :meth:`start_recording` before a rollout, pass
    ``record_step=t`` to each :meth:`step`, then call the layer on the rollout's inputs
    to get the outputs with a gradient (the forward pass is not repeated).

    Parameters:
        weight (W): (N, M), U(-1/8, 1/8). bias (b): (N,), U(-1/8, 1/8).
        decay (Lambda): (N, M), U(lambda_min, lambda_max).
        hebbian (Gamma): (N, M), U(-g, g) with g = hebbian_init, by default 50 dF steps
            (25 for the published device). The original STPN's g = 1.25e-4 would keep
            every update below half a discretisation step, so that no synapse changed
            and Lambda got no gradient until training had grown Gamma about 10^5-fold.

    Equivalent to this loop (the reference that the fast path is tested against)::

        for t in range(T):
            zn = normalise(cat([x[t], h]))
            h = tanh(zn @ W.T + b + einsum("bnm,bm->bn", F, zn))
            F = lam * F + Q(Gamma * h[:, :, None] * zn[:, None, :])
    """

    kind = "mstpn"

    def __init__(self, input_size: int, hidden_size: int, constraints: SynapseConstraints,
                 checkpoint_every: int = 5, hebbian_init: float | None = None,
                 backend: str = "auto") -> None:
        super().__init__()
        if hebbian_init is not None and not hebbian_init >= 0.0:
            raise ValueError(f"hebbian_init must be >= 0, got {hebbian_init}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_pre = input_size + hidden_size
        self.constraints = constraints
        self.checkpoint_every = checkpoint_every
        self.backend = backend
        self.hebbian_init = (default_hebbian_init(constraints) if hebbian_init is None
                             else float(hebbian_init))
        self.weight = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.decay = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self.hebbian = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self._recorder: MSTPNRecorder | None = None
        self._recording_decay: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -1 / 8, 1 / 8)
        nn.init.uniform_(self.bias, -1 / 8, 1 / 8)
        nn.init.uniform_(self.decay, self.constraints.lambda_min, self.constraints.lambda_max)
        nn.init.uniform_(self.hebbian, -self.hebbian_init, self.hebbian_init)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, "
                f"constraints={self.constraints.as_dict()}, hebbian_init={self.hebbian_init:g}")

    # --- state ---------------------------------------------------------------------------

    def initial_state(self, batch: int) -> RecurrentState:
        """Return a zero state: h (B, N), F (B, N, M) and the zero-row flags of F (B, N).

        The flags (uint8, 1: the row of F is all zero, 0: not known) let the kernel skip
        rows of F without reading them. A flag of 0 makes the kernel read the row, so
        zeroing flags, as RecurrentState.reset_ does, costs time but never changes results.
        """
        dtype = self.weight.dtype
        return RecurrentState(torch.zeros(batch, self.hidden_size, dtype=dtype),
                              torch.zeros(batch, self.hidden_size, self.n_pre, dtype=dtype),
                              torch.ones(batch, self.hidden_size, dtype=torch.uint8))

    def applied_decay(self) -> torch.Tensor:
        """Return Lambda as applied, clamped into the device range, shape (N, M)."""
        return clamp_decay(self.decay, self.constraints)

    @torch.no_grad()
    def project_parameters(self) -> None:
        """Clamp the decay parameter into the device range (call after optimiser steps)."""
        self.decay.clamp_(self.constraints.lambda_min, self.constraints.lambda_max)

    # --- acting: no autograd, state updated in place ---------------------------------------

    @torch.no_grad()
    def step(self, x: torch.Tensor, state: RecurrentState, *,
             episode_start: torch.Tensor | None = None, record_step: int | None = None,
             counts: torch.Tensor | None = None, df_out: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Advance the state by one step in place and return h (B, N).

        x: (B, input_size). episode_start: optional (B,) bool, zero the state of those
        sequences first. record_step: position t in the rollout being recorded for
        :meth:`forward` (see :meth:`start_recording`), None when not training.
        counts: optional (B * N,) int32 receiving the number of non-zero updates per row.
        df_out: optional (B, N, M) receiving the applied updates (for traces).
        """
        steps = select_steps(self.backend, x.dtype)
        h, f, zero_rows = state.tensors
        recorder = None
        if record_step is not None:
            if self._recorder is None:
                raise RuntimeError("record_step given before start_recording()")
            recorder = self._recorder
        # While recording, the parameters stay fixed, so the clamped decay is reused.
        lam = self._recording_decay if recorder is not None else self.applied_decay()
        run_steps(x[None], h, f, self.weight, self.bias, self.hebbian, lam, self.constraints,
                  steps,
                  episode_start=None if episode_start is None else episode_start[None],
                  recorder=recorder, first_step=record_step or 0,
                  counts=None if counts is None else counts[None],
                  df_out=None if df_out is None else df_out[None], zero_rows=zero_rows)
        return h

    @torch.no_grad()
    def peek(self, x: torch.Tensor, state: RecurrentState) -> torch.Tensor:
        """Return the output h (B, N) of the next step without changing the state."""
        steps = select_steps(self.backend, x.dtype)
        h, f, zero_rows = state.tensors
        zn, _ = normalise_input(torch.cat([x, h], dim=1))
        u = torch.addmm(self.bias, zn, self.weight.t())
        out = torch.empty_like(h)
        lam = self.applied_decay().contiguous()
        steps.forward_step(f, f, zn, u, self.hebbian.detach(), lam, self.constraints.df_step,
                           self.constraints.df_max, MODE_OUTPUT_ONLY, out, zero_in=zero_rows)
        return out

    def start_recording(self, steps: int, batch: int) -> None:
        """Prepare to record the next `steps` calls of :meth:`step` for :meth:`forward`."""
        recorder = self._recorder
        if recorder is None or not recorder.shape_matches(
                steps, batch, self.hidden_size, self.n_pre, self.checkpoint_every):
            self._recorder = MSTPNRecorder(steps, batch, self.hidden_size, self.n_pre,
                                           self.checkpoint_every, self.weight.dtype)
        self._recorder.recorded_steps = 0
        self._recording_decay = self.applied_decay().detach().contiguous()

    # --- training: differentiable replay of the recorded steps -----------------------------

    def forward(self, x: torch.Tensor, check_inputs: bool = False) -> torch.Tensor:
        """Return the outputs (T, B, N) of the recorded rollout, differentiable.

        x: (T, B, input_size) with its autograd history: the inputs that were passed to
        :meth:`step` while recording, or a recomputation of them equal up to float
        rounding. The gradient is that of the recorded rollout. check_inputs compares x
        with the recording and raises ValueError if they differ by more than rounding.
        """
        if self._recorder is None:
            raise RuntimeError("forward() replays a recorded rollout: call start_recording() "
                               "and step(..., record_step=t) first")
        steps = select_steps(self.backend, x.dtype)
        return mstpn_sequence(x, self.weight, self.bias, self.decay, self.hebbian,
                              self._recorder, self.constraints, steps, check_inputs)

    def reference_forward(self, x: torch.Tensor, state: RecurrentState,
                          episode_start: torch.Tensor | None = None):
        """Run the slow autograd loop from state; returns (outputs, final state tensors)."""
        h, f = state.tensors[:2]
        return reference_sequence(x, h, f, self.weight, self.bias, self.decay, self.hebbian,
                                  self.constraints, episode_start)

    def synapse_count(self) -> int:
        return self.hidden_size * self.n_pre


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable scalars of a module."""
    return sum(math.prod(p.shape) for p in module.parameters() if p.requires_grad)
