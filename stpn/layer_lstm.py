"""LSTM baseline of about the m-STPN's parameter count, for comparison on Pong."""

from __future__ import annotations

import torch
from torch import nn

from stpn.recurrent import RecomputingCore, RecurrentState


class LSTMBaseline(RecomputingCore):
    r"""Long short-term memory layer (``torch.nn.LSTMCell``) behind the Pong agent interface.

    Per step: i, f, g, o = split(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh);
    c_t = sigmoid(f) * c_(t-1) + sigmoid(i) * tanh(g); h_t = sigmoid(o) * tanh(c_t).
    With 2592 inputs and 48 units it has 4 * 48 * (2592 + 48 + 2) = 507,264 parameters,
    about the 510,016 of an m-STPN layer of 64 units (3 * 64 * 2656 + 64).
    Initialisation is PyTorch's: every weight and bias U(-1/sqrt(48), 1/sqrt(48)).

    Shapes: input x (T, B, input_size); state h, c: (B, hidden_size);
    output (T, B, hidden_size).
    """

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int = 48, checkpoint_every: int = 10):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.checkpoint_every = checkpoint_every
        self.lstm = nn.LSTMCell(input_size, hidden_size)
        self._recording = None

    def initial_state(self, batch: int) -> RecurrentState:
        dtype = self.lstm.weight_ih.dtype
        return RecurrentState(torch.zeros(batch, self.hidden_size, dtype=dtype),
                              torch.zeros(batch, self.hidden_size, dtype=dtype))

    def cell(self, x, tensors):
        h, c = self.lstm(x, tensors)
        return h, (h, c)
