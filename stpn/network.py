"""The Pong agent: convolutional encoder, one recurrent layer, actor and critic heads."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional

from stpn.layer_lstm import LSTMBaseline
from stpn.layer_mstpn import MSTPN
from stpn.layer_stpn import STPN
from stpn.mstpn_ops import SynapseConstraints
from stpn.recurrent import RecurrentState

log = logging.getLogger(__name__)

FRAME_SIZE = 84
FEATURES = 2592
"""Flattened output of the encoder for one 84 x 84 frame: 32 channels x 9 x 9."""
N_ACTIONS = 6
"""Minimal action set of Pong in the ALE: NOOP, FIRE, RIGHT, LEFT, RIGHTFIRE, LEFTFIRE."""
LAYERS = ("mstpn", "stpn", "lstm")


@dataclass(frozen=True)
class AgentConfig:
    """Everything needed to rebuild an agent before loading its weights."""

    layer: str = "mstpn"
    hidden_size: int = 64
    constraints: SynapseConstraints | None = None
    checkpoint_every: int = 5
    n_actions: int = N_ACTIONS
    hebbian_init: float | None = None

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"expected layer one of {', '.join(LAYERS)}, got {self.layer!r}")
        if self.layer == "mstpn" and self.constraints is None:
            raise ValueError("an m-STPN agent needs synapse constraints from a device file")

    def as_dict(self) -> dict:
        data = asdict(self)
        data["constraints"] = None if self.constraints is None else self.constraints.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AgentConfig:
        constraints = data.get("constraints")
        return cls(layer=data["layer"], hidden_size=int(data["hidden_size"]),
                   constraints=None if constraints is None else SynapseConstraints(**constraints),
                   checkpoint_every=int(data.get("checkpoint_every", 5)),
                   n_actions=int(data.get("n_actions", N_ACTIONS)),
                   hebbian_init=data.get("hebbian_init"))


def default_hidden_size(layer: str) -> int:
    """Return 64 units for the STPN layers and 48 for the LSTM (about equal parameters)."""
    return 48 if layer == "lstm" else 64


class ConvEncoder(nn.Sequential):
    """Two convolutions that turn (B, 1, 84, 84) uint8 frames into (B, 2592) features.

    Conv(1 -> 16, kernel 8, stride 4) + ReLU, Conv(16 -> 32, kernel 4, stride 2) + ReLU,
    flatten; pixels are scaled to [0, 1] first. The first convolution is evaluated as an
    equivalent kernel-2, stride-1 convolution over the frame rearranged into 16 channels
    of 4 x 4 pixel blocks (space to depth). The result is the same up to float rounding,
    and the backward pass on CPU is about 3 times faster than with the strided
    single-channel form (measured with torch 2.13 on 400 frames).
    """

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 16, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )

    @property
    def conv1(self) -> nn.Conv2d:
        return self[0]

    @property
    def conv2(self) -> nn.Conv2d:
        return self[2]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = frames.shape
        if (height, width) != (FRAME_SIZE, FRAME_SIZE):
            raise ValueError(f"expected frames of {FRAME_SIZE} x {FRAME_SIZE} pixels, got "
                             f"{height} x {width}")
        blocks = FRAME_SIZE // 4
        pixels = frames.float() / 255.0
        # (B, 1, 84, 84) -> (B, 16, 21, 21): channel dy * 4 + dx contains pixel (4i + dy, 4j + dx).
        stacked = (pixels.view(batch, blocks, 4, blocks, 4).permute(0, 2, 4, 1, 3)
                   .reshape(batch, 16, blocks, blocks))
        # Weight w[o, 0, 4 ky + dy, 4 kx + dx] becomes w'[o, dy * 4 + dx, ky, kx].
        weight = (self.conv1.weight.view(16, 2, 4, 2, 4).permute(0, 2, 4, 1, 3)
                  .reshape(16, 16, 2, 2))
        hidden = functional.relu(functional.conv2d(stacked, weight, self.conv1.bias))
        return functional.relu(self.conv2(hidden)).flatten(1)


class PongAgent(nn.Module):
    """Actor-critic agent: encoder -> recurrent layer -> actor (logits) and critic (value).

    Initialisation of encoder and heads follows common A2C practice: orthogonal weights
    with gain sqrt(2) for the convolutions, 0.01 for the actor and 1 for the critic, zero
    biases. The recurrent layer keeps its own initialisation.
    """

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ConvEncoder()
        if config.layer == "mstpn":
            self.core = MSTPN(FEATURES, config.hidden_size, config.constraints,
                              checkpoint_every=config.checkpoint_every,
                              hebbian_init=config.hebbian_init)
        elif config.layer == "stpn":
            self.core = STPN(FEATURES, config.hidden_size,
                             checkpoint_every=config.checkpoint_every)
        else:
            self.core = LSTMBaseline(FEATURES, config.hidden_size)
        self.actor = nn.Linear(config.hidden_size, config.n_actions)
        self.critic = nn.Linear(config.hidden_size, 1)
        self._initialise_heads()

    def _initialise_heads(self) -> None:
        for conv in (self.encoder.conv1, self.encoder.conv2):
            nn.init.orthogonal_(conv.weight, gain=math.sqrt(2.0))
            nn.init.zeros_(conv.bias)
        nn.init.orthogonal_(self.actor.weight, gain=0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, gain=1.0)
        nn.init.zeros_(self.critic.bias)

    def initial_state(self, batch: int) -> RecurrentState:
        return self.core.initial_state(batch)

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (..., n_actions), value (...)) for hidden states h (..., N)."""
        return self.actor(h), self.critic(h).squeeze(-1)

    @torch.no_grad()
    def act_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(frames)
