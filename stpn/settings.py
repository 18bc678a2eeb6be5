"""Training settings of the Pong agent, each documented once; the CLI shows these as help."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _setting(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass
class TrainSettings:
    """A2C with truncated backpropagation through time on vectorised Pong.

    Defaults are the published settings where they were published: rollout 50, gradient
    clipping 40, discount 0.99, linear learning-rate decay, entropy 0.01, value 0.5,
    one emulator frame per agent step. The learning rate defaults to 7e-4, the value of
    the public STPN code. The study itself used 1e-4 decayed over 2e8 steps, which
    learns too slowly for runs of a few million frames.
    """

    frames: int = _setting(1_000_000, "emulator frames to train for, over all environments")
    layer: str = _setting("mstpn", "recurrent layer: mstpn, stpn or lstm")
    hidden_size: int = _setting(0, "units of the recurrent layer (0: 64, or 48 for lstm)")
    envs: int = _setting(8, "parallel Pong environments (the study used 4 workers, the "
                            "public STPN code 64)")
    seed: int = _setting(1, "seed of weights, action sampling and environment resets")
    lambda_range: str = _setting("device", "decay range: device, none, wide (0,1), slow "
                                           "(0.5,0.99) or LOW,HIGH")
    frame_skip: int = _setting(1, "emulator frames per agent step (1 in the published runs)")
    rollout_steps: int = _setting(50, "agent steps per environment between updates "
                                      "(truncated BPTT length)")
    discount: float = _setting(0.99, "reward discount per agent step")
    learning_rate: float = _setting(7e-4, "initial RMSprop learning rate")
    lr_decay_frames: int = _setting(0, "frames over which the learning rate decays linearly "
                                       "to 0 (0: the run's --frames)")
    entropy_coef: float = _setting(0.01, "weight of the entropy bonus")
    value_coef: float = _setting(0.5, "weight of the value loss")
    max_grad_norm: float = _setting(40.0, "global gradient norm clip")
    rmsprop_alpha: float = _setting(0.99, "RMSprop smoothing constant")
    rmsprop_eps: float = _setting(1e-5, "RMSprop epsilon")
    hebbian_init: float = _setting(0.0, "m-STPN: half-width of the uniform initialisation of "
                                         "the Hebbian strength Gamma, in weight units (0: 50 "
                                         "device dF steps, "
                                         "25 for the published device; the original STPN "
                                         "used 1.25e-4, too small for any update to reach a "
                                         "device step)")
    noop_max: int = _setting(30, "up to this many random no-op frames start each game")
    state_checkpoint_every: int = _setting(5, "m-STPN backward pass: keep the synapse "
                                              "state every this many steps, recompute the rest")
    save_interval_s: float = _setting(300.0, "seconds between training checkpoints")
    log_interval_updates: int = _setting(10, "updates between metric rows")
    threads: int = _setting(0, "torch threads (0: torch's default)")
    env_threads: int = _setting(0, "emulator threads (0: ale-py's default)")

    def __post_init__(self) -> None:
        positive = ("frames", "envs", "frame_skip", "rollout_steps", "state_checkpoint_every",
                    "log_interval_updates")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {self.discount}")
        if self.learning_rate <= 0.0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.hebbian_init >= 0.0:
            raise ValueError(f"hebbian_init must be >= 0, got {self.hebbian_init}")
        if self.layer not in ("mstpn", "stpn", "lstm"):
            raise ValueError(f"layer must be mstpn, stpn or lstm, got {self.layer!r}")

    @property
    def agent_hebbian_init(self) -> float | None:
        """Gamma half-width for AgentConfig: None, the layer's default, when the setting is 0."""
        return self.hebbian_init or None

    @property
    def decay_frames(self) -> int:
        return self.lr_decay_frames or self.frames

    def learning_rate_at(self, frames_done: int) -> float:
        """Return the linearly decayed learning rate after frames_done frames."""
        remaining = max(0.0, 1.0 - frames_done / self.decay_frames)
        return self.learning_rate * remaining

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def help_texts(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}
