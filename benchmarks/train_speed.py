"""Measure Pong training speed of the m-STPN and LSTM agents against the emulator alone.

In one process, rounds of three measurements alternate so that a change of machine load
affects all three alike:

* the emulator alone: ale-py's vectorised Pong with the training settings, random actions;
* A2C training of the m-STPN agent (acting, replay with gradients, optimiser step);
* A2C training of the LSTM baseline, the same way;
* the m-STPN layer alone: acting steps and the replay with its backward pass on random
  encoder features, which shows what the layer itself costs within the training rate.

Each is reported in emulator frames per second: agent steps x frame skip, over all
environments. The script prints the median of the rounds and the ratios to the emulator.
The m-STPN's cost grows with the share of synapses that receive an update at a step,
which rises from about 0.01 % in an untrained agent to a few per cent within the first
updates of training. The training probes therefore run --warmup-updates updates before
the first timed round, and the script prints the share measured while timing. The device
file is the file of published figures. Example:

    .venv/bin/python benchmarks/train_speed.py --rounds 3 --updates 4
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from stpn.a2c import A2CTrainer
from stpn.device import PUBLISHED_DEVICE_PATH, load_device_file
from stpn.layer_mstpn import MSTPN
from stpn.mstpn_kernel import load_kernel
from stpn.network import FEATURES, AgentConfig, default_hidden_size
from stpn.pong_env import make_pong_env
from stpn.settings import TrainSettings


def emulator_rate(envs: int, frame_skip: int, steps: int, seed: int) -> float:
    """Return emulator frames per second stepping random actions."""
    env = make_pong_env(envs, frame_skip)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, 6, envs))
    elapsed = time.perf_counter() - start
    env.close()
    return steps * envs * frame_skip / elapsed


class TrainingProbe:
    """A trainer kept between rounds, so that only steady-state updates are timed."""

    def __init__(self, layer: str, envs: int, frame_skip: int, seed: int, run_dir: str,
                 warmup_updates: int) -> None:
        device = load_device_file(PUBLISHED_DEVICE_PATH)
        settings = TrainSettings(frames=10**12, layer=layer, envs=envs, frame_skip=frame_skip,
                                 seed=seed)
        config = AgentConfig(
            layer=layer, hidden_size=default_hidden_size(layer),
            constraints=device.synapse_constraints() if layer == "mstpn" else None,
            checkpoint_every=settings.state_checkpoint_every,
            hebbian_init=settings.agent_hebbian_init)
        self.trainer = A2CTrainer(settings, config, run_dir)
        self.trainer.start_environments()
        self.frames_per_update = settings.rollout_steps * envs * frame_skip
        self.steps_per_update = settings.rollout_steps * envs
        self.synapse_updates = 0
        self.synapse_steps = 0
        # Warm-up: kernel build or load, first allocations, and a state like training's.
        self.rate(max(1, warmup_updates))
        self.synapse_updates = self.synapse_steps = 0

    def rate(self, updates: int) -> float:
        """Return emulator frames per second over `updates` training updates."""
        trainer = self.trainer
        start = time.perf_counter()
        for _ in range(updates):
            rollout = trainer.collect_rollout(None)
            trainer.update(rollout, trainer.settings.learning_rate)
            trainer.progress.updates += 1
            self.synapse_updates += rollout.synapse_updates
            self.synapse_steps += self.steps_per_update
        return updates * self.frames_per_update / (time.perf_counter() - start)

    def update_share(self) -> float:
        """Return the share of synapses updated per step over the timed m-STPN updates."""
        core = self.trainer.agent.core
        if core.kind != "mstpn" or self.synapse_steps == 0:
            return float("nan")
        return self.synapse_updates / (self.synapse_steps * core.synapse_count())

    def close(self) -> None:
        self.trainer.env.close()


def layer_rate(envs: int, frame_skip: int, updates: int, seed: int) -> float:
    """Return frames per second of the m-STPN layer alone over `updates` rollouts."""
    device = load_device_file(PUBLISHED_DEVICE_PATH)
    torch.manual_seed(seed)
    layer = MSTPN(FEATURES, 64, device.synapse_constraints())
    steps = 50
    features = torch.relu(torch.randn(steps, envs, FEATURES))
    state = layer.initial_state(envs)
    start = time.perf_counter()
    for _ in range(updates):
        layer.start_recording(steps, envs)
        for t in range(steps):
            layer.step(features[t], state, record_step=t)
        layer(features).sum().backward()
    return updates * steps * envs * frame_skip / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=8, help="parallel environments")
    parser.add_argument("--frame-skip", type=int, default=1, help="emulator frames per step")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--updates", type=int, default=4, help="training updates per round")
    parser.add_argument("--seed", type=int, default=1, help="seed of weights and games")
    parser.add_argument("--warmup-updates", type=int, default=10,
                        help="untimed training updates before the first round")
    args = parser.parse_args()

    kernel = load_kernel()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"m-STPN kernel: {'C (' + str(kernel.path) + ')' if kernel else 'torch fallback'}")
    print(f"{args.envs} environments, frame skip {args.frame_skip}, rollout 50 steps, "
          f"{args.rounds} rounds of {args.updates} updates")

    emulator_steps = args.updates * 50
    rates = {"emulator": [], "mstpn": [], "lstm": [], "layer": []}
    with tempfile.TemporaryDirectory() as scratch:
        probes = {layer: TrainingProbe(layer, args.envs, args.frame_skip, args.seed,
                                       os.path.join(scratch, layer), args.warmup_updates)
                  for layer in ("mstpn", "lstm")}
        for round_index in range(args.rounds):
            rates["emulator"].append(emulator_rate(args.envs, args.frame_skip, emulator_steps,
                                                   args.seed + round_index))
            for layer, probe in probes.items():
                rates[layer].append(probe.rate(args.updates))
            rates["layer"].append(layer_rate(args.envs, args.frame_skip, args.updates,
                                             args.seed))
            print(f"round {round_index + 1}: " + ", ".join(
                f"{name} {values[-1]:.0f}" for name, values in rates.items()) + " frames/s")
        update_share = probes["mstpn"].update_share()
        for probe in probes.values():
            probe.close()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    print()
    print("| measurement | frames/s (median) | ratio to emulator |")
    print("|---|---|---|")
    labels = {"emulator": "emulator alone, random actions", "mstpn": "m-STPN A2C training",
              "lstm": "LSTM A2C training", "layer": "m-STPN layer alone (random features)"}
    for name, value in medians.items():
        print(f"| {labels[name]} | {value:.0f} | {value / medians['emulator']:.2f} |")
    print(f"m-STPN / LSTM training: {medians['mstpn'] / medians['lstm']:.2f}")
    print(f"m-STPN training: {update_share:.2%} of the synapses updated per step while timed, "
          f"after {args.warmup_updates} warm-up updates")
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{value:.1f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
