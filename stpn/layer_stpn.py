"""The original short-term plasticity neuron (STPN) layer, without device constraints."""

from __future__ import annotations

import torch
from torch import nn

from stpn.recurrent import RecomputingCore, RecurrentState

ROW_NORM_EPS = 1e-12
"""Added to each row norm of G before dividing by it."""


class STPN(RecomputingCore):
    r"""Short-term plasticity neuron layer as in the public STPN code (ICML 2022).

    For each sequence and step t, with z_t = [x_t ; h_(t-1)]::

        G_t = W + F_(t-1)
        n_t = |G_t[j, :]|_2 + eps            (one norm per unit j)
        h_t = tanh((G_t / n_t) z_t + b)
        F_t = Lambda * (F_(t-1) / n_t) + Gamma * (h_t z_t^T)

    Lambda is not bounded, and because F is divided by n_t each step, the effective
    decay Lambda / n_t changes from step to step and can exceed 1. The m-STPN
    (:class:`stpn.layer_mstpn.MSTPN`) removes both properties so a device can realise it.

    Initialisation: W, b ~ U(-1/8, 1/8); Lambda ~ U(0, 1); Gamma ~ U(-1.25e-4, 1.25e-4).

    Shapes (M = input_size + hidden_size): input x (T, B, input_size); state h (B, N),
    F (B, N, M); output (T, B, N). This layer runs on plain torch operations (no fused
    kernel), so it trains several times slower than the m-STPN.

    Equivalent to this loop::

        for t in range(T):
            z = cat([x[t], h]); G = W + F
            n = G.norm(dim=2, keepdim=True) + eps
            h = tanh(einsum("bnm,bm->bn", G / n, z) + b)
            F = Lambda * F / n + Gamma * h[:, :, None] * z[:, None, :]
    """

    kind = "stpn"

    def __init__(self, input_size: int, hidden_size: int, checkpoint_every: int = 5):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_pre = input_size + hidden_size
        self.checkpoint_every = checkpoint_every
        self.weight = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.decay = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self.hebbian = nn.Parameter(torch.empty(hidden_size, self.n_pre))
        self._recording = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -1 / 8, 1 / 8)
        nn.init.uniform_(self.bias, -1 / 8, 1 / 8)
        nn.init.uniform_(self.decay, 0.0, 1.0)
        nn.init.uniform_(self.hebbian, -1.25e-4, 1.25e-4)

    def initial_state(self, batch: int) -> RecurrentState:
        dtype = self.weight.dtype
        return RecurrentState(torch.zeros(batch, self.hidden_size, dtype=dtype),
                              torch.zeros(batch, self.hidden_size, self.n_pre, dtype=dtype))

    def cell(self, x, tensors):
        h, f = tensors
        z = torch.cat([x, h], dim=1)
        g = self.weight + f
        norm = g.norm(dim=2, keepdim=True) + ROW_NORM_EPS
        h = torch.tanh(torch.einsum("bnm,bm->bn", g / norm, z) + self.bias)
        f = self.decay * (f / norm) + self.hebbian * (h[:, :, None] * z[:, None, :])
        return h, (h, f)

    def applied_decay(self) -> torch.Tensor:
        """Return Lambda as stored (the STPN applies Lambda / n_t, which varies per step)."""
        return self.decay

    def synapse_count(self) -> int:
        return self.hidden_size * self.n_pre
