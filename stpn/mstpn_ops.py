"""The m-STPN recurrence as step functions, a recorder for acting, and its autograd Function.

One step, for a batch of B sequences with N postsynaptic units and M presynaptic inputs
(all float32 unless a test passes float64 to the torch functions):

    zn_t  = z_t / sqrt(|z_t|^2 + eps),       z_t = [x_t ; h_(t-1)]
    u_t   = W zn_t + b
    h_t   = tanh(u_t + F_(t-1) zn_t)
    dF_t  = Q(Gamma * (h_t zn_t^T))
    F_t   = lam * F_(t-1) + dF_t

with Q(r) = clip(step * round(r / step), -df_max, df_max) (round half to even; step 0
leaves r unrounded) and lam the clamped decay. In the backward pass Q is treated as the
identity where abs(r) <= df_max and as a constant where the clip is active (a
straight-through estimator: rounding has zero gradient almost everywhere, so without it
Gamma would never learn).

Two implementations of the step exist with the same arguments: the fused C kernel
(:mod:`stpn.mstpn_kernel`) and :func:`torch_forward_step` / :func:`torch_backward_step`.
:func:`reference_sequence` is the plain autograd loop that both are tested against.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from stpn.mstpn_kernel import MODE_OUTPUT_ONLY, MODE_UPDATE, MODE_UPDATE_GIVEN_H, load_kernel

log = logging.getLogger(__name__)

NORM_EPS = 1e-12
"""Added to |z|^2 before the square root, so that an all-zero input stays zero."""


@dataclass(frozen=True)
class SynapseConstraints:
    """Limits that make every m-STPN synapse realisable by the device, in weight units.

    lambda_min, lambda_max: range that the decay Lambda is clamped into (0 <= min <= max <= 1).
    df_step: discretisation step of each update dF (0: no discretisation).
    df_max: largest abs(dF) of one update (math.inf: no clip).
    """

    lambda_min: float
    lambda_max: float
    df_step: float
    df_max: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.lambda_min <= self.lambda_max <= 1.0:
            raise ValueError(
                "expected 0 <= lambda_min <= lambda_max <= 1, got "
                f"lambda_min={self.lambda_min}, lambda_max={self.lambda_max}"
            )
        if not (self.df_step >= 0.0 and math.isfinite(self.df_step)):
            raise ValueError(f"expected a finite df_step >= 0, got {self.df_step}")
        if not self.df_max > 0.0:
            raise ValueError(f"expected df_max > 0, got {self.df_max}")

    def as_dict(self) -> dict[str, float]:
        return {"lambda_min": self.lambda_min, "lambda_max": self.lambda_max,
                "df_step": self.df_step, "df_max": self.df_max}


# --- the pieces shared by every implementation ------------------------------------------


def normalise_input(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (zn, scale) with zn = z * scale and scale = 1 / sqrt(|z|^2 + eps), per row."""
    scale = torch.rsqrt(z.square().sum(dim=-1, keepdim=True) + NORM_EPS)
    return z * scale, scale


def discretise(raw: torch.Tensor, step: float, df_max: float) -> torch.Tensor:
    """Round to a multiple of step (ties to even; step 0: no rounding) and clip to +-df_max."""
    rounded = torch.round(raw / step) * step if step > 0 else raw
    return rounded.clamp(-df_max, df_max)


def clamp_decay(decay: torch.Tensor, constraints: SynapseConstraints) -> torch.Tensor:
    """Return Lambda clamped into the device range (gradient passes inside the range)."""
    return decay.clamp(constraints.lambda_min, constraints.lambda_max)


# --- torch implementation of one step (same contract as the C kernel) --------------------


def torch_forward_step(f_in, f_out, zn, u, gamma, lam, step, df_max, mode, h,
                       counts=None, df_out=None, zero_in=None, zero_out=None) -> None:
    """Run one forward step in place.

    f_in, f_out: (B, N, M) synapse state before / after (f_out may be f_in).
    zn: (B, M) normalised input; u: (B, N) W zn + b (unused in MODE_UPDATE_GIVEN_H).
    gamma, lam: (N, M) Hebbian strength and clamped decay. mode: MODE_OUTPUT_ONLY writes
    h only; MODE_UPDATE writes h and f_out; MODE_UPDATE_GIVEN_H reads h and writes f_out.
    counts: optional (B * N,) int32, number of non-zero updates per row.
    df_out: optional (B, N, M), the applied updates.
    zero_in, zero_out: optional (B, N) uint8 flags of rows known to be all zero in f_in
    (an optimisation hint this implementation ignores) and in f_out (written exactly).
    """
    if mode != MODE_UPDATE_GIVEN_H:
        synaptic = torch.einsum("bnm,bm->bn", f_in, zn)
        h.copy_(torch.tanh(u + synaptic))
    if mode == MODE_OUTPUT_ONLY:
        if zero_out is not None:
            zero_out.copy_((f_in == 0).all(dim=-1).reshape(zero_out.shape))
        return

    update = discretise(gamma * (h[:, :, None] * zn[:, None, :]), step, df_max)
    if counts is not None:
        counts.copy_((update != 0).sum(dim=-1).reshape(-1))
    if df_out is not None:
        df_out.copy_(update)
    f_out.copy_(lam * f_in + update)
    if zero_out is not None:
        zero_out.copy_((f_out == 0).all(dim=-1).reshape(zero_out.shape))


def torch_backward_step(f_prev, zn, h, gamma, lam, df_max, adjoint, grad_h, dpre,
                        dgamma, dlam, dzn, zero_prev=None) -> None:
    """Run one backward step in place.

    In: f_prev (B, N, M) the state entering the step, zn (B, M), h (B, N) the step's
    output, gamma and lam (N, M), grad_h (B, N) dL/dh from outside the synapse state.
    adjoint (B, N, M): dL/dF_t on entry, dL/dF_(t-1) on return.
    dgamma, dlam (N, M): accumulated into. dpre (B, N): dL/du. dzn (B, M): dL/dzn through
    the synapse terms only. zero_prev: flags of rows of f_prev known to be zero (ignored).
    """
    hz = h[:, :, None] * zn[:, None, :]
    passed = torch.where((gamma * hz).abs() <= df_max, adjoint, torch.zeros_like(adjoint))

    grad_h_update = (passed * gamma * zn[:, None, :]).sum(dim=-1)
    dpre.copy_((grad_h + grad_h_update) * (1.0 - h * h))

    dgamma.add_((passed * hz).sum(dim=0))
    dlam.add_((adjoint * f_prev).sum(dim=0))
    dzn.copy_((passed * gamma * h[:, :, None]).sum(dim=1)
              + torch.einsum("bn,bnm->bm", dpre, f_prev))
    adjoint.copy_(adjoint * lam + dpre[:, :, None] * zn[:, None, :])


class TorchSteps:
    """The torch implementation behind the same interface as :class:`MSTPNKernel`."""

    path = None

    @staticmethod
    def forward_step(*args, **kwargs) -> None:
        torch_forward_step(*args, **kwargs)

    @staticmethod
    def backward_step(*args, **kwargs) -> None:
        torch_backward_step(*args, **kwargs)


def select_steps(backend: str = "auto", dtype: torch.dtype = torch.float32):
    """Return the step implementation: "kernel", "torch", or "auto" (kernel when it builds
    and the tensors are float32, else torch)."""
    if backend not in ("auto", "kernel", "torch"):
        raise ValueError(f"expected backend 'auto', 'kernel' or 'torch', got {backend!r}")
    if backend == "torch" or dtype != torch.float32:
        if backend == "kernel":
            raise ValueError(f"the C kernel computes in float32 only, got {dtype}")
        return TorchSteps
    kernel = load_kernel()
    if kernel is None:
        if backend == "kernel":
            raise RuntimeError("the m-STPN C kernel is unavailable (see the log for why)")
        return TorchSteps
    return kernel


# --- recording a forward pass for the backward pass --------------------------------------


class MSTPNRecorder:
    """Storage that one forward pass over T steps fills and the backward pass reads.

    Per step it keeps zn (T, B, M), scale (T, B, 1), h (T, B, N) and the episode-start
    flags (T, B). Of the synapse state it keeps only F entering steps 0, K, 2K, ...
    (K = checkpoint_every, after any episode-start reset); the backward pass recomputes
    the other states of each chunk from the recorded outputs. K = 1 recomputes nothing
    but copies the (B, N, M) state every step and keeps T copies in memory.
    The buffers are reused by the next rollout of the same shape.
    """

    def __init__(self, steps: int, batch: int, n_post: int, n_pre: int,
                 checkpoint_every: int, dtype: torch.dtype = torch.float32) -> None:
        if steps < 1 or checkpoint_every < 1:
            raise ValueError(f"expected steps >= 1 and checkpoint_every >= 1, got {steps}, "
                             f"{checkpoint_every}")
        self.steps, self.batch, self.n_post, self.n_pre = steps, batch, n_post, n_pre
        self.checkpoint_every = checkpoint_every
        self.zn = torch.zeros(steps, batch, n_pre, dtype=dtype)
        self.scale = torch.zeros(steps, batch, 1, dtype=dtype)
        self.h = torch.zeros(steps, batch, n_post, dtype=dtype)
        self.episode_start = torch.zeros(steps, batch, dtype=torch.bool)
        # Non-zero updates per row and step; a chunk without any is not recomputed when
        # its checkpoint is all zero.
        self.update_counts = torch.zeros(steps, batch * n_post, dtype=torch.int32)
        n_checkpoints = math.ceil(steps / checkpoint_every)
        self.checkpoints = [torch.zeros(batch, n_post, n_pre, dtype=dtype)
                            for _ in range(n_checkpoints)]
        # Rows of each checkpoint known to be all zero (see mstpn_forward_step's zero_in).
        self.checkpoint_zero_rows = [torch.zeros(batch, n_post, dtype=torch.uint8)
                                     for _ in range(n_checkpoints)]
        self.h0 = torch.zeros(batch, n_post, dtype=dtype)
        self.recorded_steps = 0

    def shape_matches(self, steps: int, batch: int, n_post: int, n_pre: int,
                      checkpoint_every: int) -> bool:
        return (self.steps, self.batch, self.n_post, self.n_pre, self.checkpoint_every) == (
            steps, batch, n_post, n_pre, checkpoint_every)

    def checkpoint_index(self, t: int) -> int | None:
        """Return the checkpoint that keeps F entering step t, or None if t is no chunk start."""
        if t % self.checkpoint_every:
            return None
        return t // self.checkpoint_every


def run_steps(x, h, f, weight, bias, gamma, lam, constraints, steps_impl, *,
              episode_start=None, recorder=None, first_step=0, counts=None,
              df_out=None, zero_rows=None) -> torch.Tensor:
    """Advance the state (h, F) in place over the T steps of x (T, B, input), no autograd.

    h (B, N) and f (B, N, M) are updated in place. episode_start (T, B) bool zeroes the
    state of those sequences before the step. With a recorder, the steps are stored as
    steps first_step, first_step + 1, ... of its rollout, and F is copied into its
    checkpoint buffer before each chunk start. counts: optional (T, B * N) int32, the
    number of non-zero updates per row; df_out: optional (T, B, N, M), the applied
    updates. zero_rows: optional (B, N) uint8, flags of rows of F known to be all zero,
    read and updated in place (1: zero; 0: not known). Returns the outputs h_t as (T, B, N).
    """
    with torch.no_grad():
        return _run_steps(x, h, f, weight.detach(), bias.detach(),
                          gamma.detach().contiguous(), lam.detach().contiguous(), constraints,
                          steps_impl, episode_start, recorder, first_step, counts, df_out,
                          zero_rows)


def _run_steps(x, h, f, weight, bias, gamma, lam, constraints, steps_impl, episode_start,
               recorder, first_step, counts, df_out, zero_rows):
    n_steps = x.shape[0]
    outputs = torch.empty(n_steps, h.shape[0], h.shape[1], dtype=h.dtype)
    for k in range(n_steps):
        t = first_step + k
        if episode_start is not None and episode_start[k].any():
            starting = episode_start[k]
            h[starting] = 0.0
            f[starting] = 0.0
            if zero_rows is not None:
                zero_rows[starting] = 1
        if recorder is not None:
            if t == 0:
                recorder.h0.copy_(h)
            index = recorder.checkpoint_index(t)
            if index is not None:
                recorder.checkpoints[index].copy_(f)
                flags = recorder.checkpoint_zero_rows[index]
                if zero_rows is None:
                    flags.zero_()
                else:
                    flags.copy_(zero_rows)

        zn, scale = normalise_input(torch.cat([x[k], h], dim=1))
        u = torch.addmm(bias, zn, weight.t())
        step_counts = None if counts is None else counts[k]
        if recorder is not None and step_counts is None:
            step_counts = recorder.update_counts[t]
        steps_impl.forward_step(f, f, zn, u, gamma, lam, constraints.df_step,
                                constraints.df_max, MODE_UPDATE, h, counts=step_counts,
                                df_out=None if df_out is None else df_out[k],
                                zero_in=zero_rows, zero_out=zero_rows)
        outputs[k] = h

        if recorder is not None:
            recorder.zn[t] = zn
            recorder.scale[t] = scale
            recorder.h[t] = h
            recorder.episode_start[t] = False if episode_start is None else episode_start[k]
            if counts is not None:
                recorder.update_counts[t] = counts[k]
            recorder.recorded_steps = t + 1
    return outputs


# --- the autograd Function over a whole sequence -----------------------------------------


class _MSTPNSequence(torch.autograd.Function):
    """Differentiable m-STPN over a recorded sequence; see :func:`mstpn_sequence`."""

    @staticmethod
    def forward(ctx, x, weight, bias, decay, gamma, recorder, constraints, steps_impl):
        lam = clamp_decay(decay, constraints)
        ctx.recorder, ctx.constraints, ctx.steps_impl = recorder, constraints, steps_impl
        ctx.input_size = x.shape[-1]
        ctx.save_for_backward(weight, bias, decay, gamma, lam)
        return recorder.h.clone()

    @staticmethod
    def backward(ctx, grad_output):
        weight, _bias, decay, gamma, lam = ctx.saved_tensors
        recorder: MSTPNRecorder = ctx.recorder
        constraints: SynapseConstraints = ctx.constraints
        steps_impl = ctx.steps_impl
        n_steps, batch, n_post, n_pre = (recorder.steps, recorder.batch, recorder.n_post,
                                         recorder.n_pre)
        dtype = grad_output.dtype
        gamma, lam = gamma.detach().contiguous(), lam.detach().contiguous()

        adjoint = torch.zeros(batch, n_post, n_pre, dtype=dtype)
        grad_h_carry = torch.zeros(batch, n_post, dtype=dtype)
        dgamma = torch.zeros(n_post, n_pre, dtype=dtype)
        dlam = torch.zeros(n_post, n_pre, dtype=dtype)
        dpre = torch.zeros(n_steps, batch, n_post, dtype=dtype)
        dzn = torch.zeros(n_steps, batch, n_pre, dtype=dtype)
        projection = torch.zeros(n_steps, batch, 1, dtype=dtype)
        grad_output = grad_output.contiguous()
        inputs = ctx.input_size
        weight = weight.detach()
        weight_h = weight[:, inputs:]
        # W zn for every step at once: the normalisation's backward pass needs
        # zn . dL/dzn = zn . dzn_synapses + (W zn) . dL/du, and only the h columns of
        # dL/dzn are needed step by step; the x columns are formed after the loop.
        weighted_inputs = recorder.zn @ weight.t()

        chunk = recorder.checkpoint_every
        states = [torch.empty(batch, n_post, n_pre, dtype=dtype) for _ in range(chunk - 1)]
        zero_flags = [torch.empty(batch, n_post, dtype=torch.uint8) for _ in range(chunk - 1)]
        for start in reversed(range(0, n_steps, chunk)):
            stop = min(start + chunk, n_steps)
            entering, entering_zero_rows = _recompute_chunk(
                recorder, start, stop, states, zero_flags, gamma, lam, constraints, steps_impl)
            for t in reversed(range(start, stop)):
                grad_h = grad_output[t] + grad_h_carry
                steps_impl.backward_step(entering[t - start], recorder.zn[t], recorder.h[t],
                                         gamma, lam, constraints.df_max, adjoint, grad_h,
                                         dpre[t], dgamma, dlam, dzn[t],
                                         zero_prev=entering_zero_rows[t - start])
                zn = recorder.zn[t]
                projection[t] = ((zn * dzn[t]).sum(dim=-1, keepdim=True)
                                 + (weighted_inputs[t] * dpre[t]).sum(dim=-1, keepdim=True))
                grad_zn_h = dzn[t, :, inputs:] + dpre[t] @ weight_h
                grad_h_carry = recorder.scale[t] * (grad_zn_h - zn[:, inputs:] * projection[t])
                starting = recorder.episode_start[t]
                if starting.any():
                    adjoint[starting] = 0.0
                    grad_h_carry[starting] = 0.0

        grad_zn_x = dzn[:, :, :inputs] + dpre @ weight[:, :inputs]
        grad_x = recorder.scale * (grad_zn_x - recorder.zn[:, :, :inputs] * projection)
        grad_weight = torch.einsum("tbn,tbm->nm", dpre, recorder.zn)
        grad_bias = dpre.sum(dim=(0, 1))
        inside = (decay >= constraints.lambda_min) & (decay <= constraints.lambda_max)
        grad_decay = dlam * inside
        return grad_x, grad_weight, grad_bias, grad_decay, dgamma, None, None, None


def _recompute_chunk(recorder, start, stop, states, zero_flags, gamma, lam, constraints,
                     steps_impl):
    """Return the states F entering steps start ... stop - 1 and their zero-row flags,
    recomputed from the checkpoint at start with the recorded outputs h (so that they
    match the forward pass exactly, whatever the implementation)."""
    index = start // recorder.checkpoint_every
    entering = [recorder.checkpoints[index]]
    entering_zero_rows = [recorder.checkpoint_zero_rows[index]]
    if bool(entering_zero_rows[0].all()) and not recorder.update_counts[start:stop - 1].any():
        # F is zero at the chunk start and no step changes it: every state is the zero
        # checkpoint itself, which the backward pass only reads.
        return entering * (stop - start), entering_zero_rows * (stop - start)
    for t in range(start, stop - 1):
        following, following_zero_rows = states[t - start], zero_flags[t - start]
        steps_impl.forward_step(entering[-1], following, recorder.zn[t], None, gamma, lam,
                                constraints.df_step, constraints.df_max, MODE_UPDATE_GIVEN_H,
                                recorder.h[t], zero_in=entering_zero_rows[-1],
                                zero_out=following_zero_rows)
        starting = recorder.episode_start[t + 1]
        if starting.any():
            following[starting] = 0.0
            following_zero_rows[starting] = 1
        entering.append(following)
        entering_zero_rows.append(following_zero_rows)
    return entering, entering_zero_rows


def mstpn_sequence(x, weight, bias, decay, gamma, recorder, constraints, steps_impl,
                   check_inputs: bool = True) -> torch.Tensor:
    """Return the outputs h (T, B, N) of a recorded forward pass, differentiable with
    respect to x (T, B, input), W, b, Lambda and Gamma.

    The recorder must hold a forward pass (:func:`run_steps`) over these same inputs and
    parameter values, steps 0 to T - 1: the forward computation is not repeated, only its
    outputs are returned. With check_inputs, the recorded normalised inputs are compared
    against x and the recorded outputs (cheap next to the recurrence) and a mismatch
    raises ValueError. The state entering the sequence is treated as a constant
    (truncated backpropagation through time).
    """
    n_steps, batch = x.shape[0], x.shape[1]
    if recorder.recorded_steps != recorder.steps or recorder.steps != n_steps:
        raise ValueError(f"expected a recording of {n_steps} steps, got "
                         f"{recorder.recorded_steps} of {recorder.steps}")
    if recorder.batch != batch:
        raise ValueError(f"expected a recording of batch {batch}, got {recorder.batch}")
    if check_inputs:
        _check_recording(x.detach(), recorder)
    return _MSTPNSequence.apply(x, weight, bias, decay, gamma, recorder, constraints,
                                steps_impl)


def _check_recording(x: torch.Tensor, recorder: MSTPNRecorder) -> None:
    previous_h = torch.cat([recorder.h0[None], recorder.h[:-1]], dim=0)
    previous_h = previous_h.masked_fill(recorder.episode_start[:, :, None], 0.0)
    zn, _ = normalise_input(torch.cat([x, previous_h], dim=-1))
    if not torch.allclose(zn, recorder.zn, rtol=1e-4, atol=1e-6):
        worst = (zn - recorder.zn).abs().max().item()
        raise ValueError(
            "the recorded forward pass does not match these inputs (largest difference "
            f"of the normalised input {worst:.3g}): record with run_steps on the same x"
        )


# --- the plain autograd reference ---------------------------------------------------------


class _DiscretiseSTE(torch.autograd.Function):
    """Q(r) forward, straight-through backward (zero where the clip is active)."""

    @staticmethod
    def forward(ctx, raw, step, df_max):
        ctx.save_for_backward(raw)
        ctx.df_max = df_max
        return discretise(raw, step, df_max)

    @staticmethod
    def backward(ctx, grad):
        (raw,) = ctx.saved_tensors
        return grad * (raw.abs() <= ctx.df_max), None, None


def reference_sequence(x, h0, f0, weight, bias, decay, gamma, constraints,
                       episode_start=None):
    """Compute the m-STPN over x (T, B, input) with a plain autograd loop.

    The slow reference that the fast paths are tested against. Returns
    (outputs (T, B, N), (h_T, F_T)); gradients flow into every argument.
    """
    lam = clamp_decay(decay, constraints)
    h, f = h0, f0
    outputs = []
    for t in range(x.shape[0]):
        if episode_start is not None:
            keep = (~episode_start[t]).to(x.dtype)
            h = h * keep[:, None]
            f = f * keep[:, None, None]
        zn, _ = normalise_input(torch.cat([x[t], h], dim=1))
        pre = zn @ weight.t() + bias + torch.einsum("bnm,bm->bn", f, zn)
        h = torch.tanh(pre)
        update = _DiscretiseSTE.apply(gamma * (h[:, :, None] * zn[:, None, :]),
                                      constraints.df_step, constraints.df_max)
        f = lam * f + update
        outputs.append(h)
    return torch.stack(outputs), (h, f)
