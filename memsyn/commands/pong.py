"""`memsyn pong`: train, initialise, play and evaluate the m-STPN Pong agent."""

from __future__ import annotations

import os

# Idle OpenMP threads of torch and of the m-STPN kernel otherwise spin for a while after
# each parallel region and take the cores from the emulator threads. The variable is
# read when the OpenMP runtime starts, so it must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import logging
from pathlib import Path

from memsyn.errors import UsageError
from memsyn.logging_setup import progress_enabled

log = logging.getLogger(__name__)

RESUME_SETTINGS = ("frames", "lr_decay_frames")
"""Training settings that --resume may change."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pong", help="train, play and evaluate the m-STPN agent on Atari Pong",
        description="Train an m-STPN (or STPN, LSTM) actor-critic agent on Atari Pong, play "
                    "games and record synapse traces for the energy estimate.")
    actions = parser.add_subparsers(dest="pong_command", metavar="ACTION")
    _register_train(actions)
    _register_init(actions)
    _register_play(actions)
    _register_eval(actions)
    parser.set_defaults(handler=lambda args: _missing_action(parser))


def _missing_action(parser) -> int:
    parser.print_help()
    return 2


def _register_train(actions) -> None:
    from stpn.settings import TrainSettings

    helps = TrainSettings.help_texts()
    defaults = TrainSettings()
    parser = actions.add_parser(
        "train", help="train an agent with A2C into a run directory",
        description="Train with A2C and truncated backpropagation through time. Checkpoints, "
                    "updates.csv, episodes.csv and TensorBoard logs go into --out; "
                    "--resume continues a killed run from its last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", type=Path,
                        help="device parameter file (required for --layer mstpn)")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint")
    types = {"int": int, "float": float, "str": str}
    for setting in dataclasses.fields(TrainSettings):
        kwargs = {"type": types[setting.type], "default": getattr(defaults, setting.name),
                  "help": helps[setting.name]}
        if setting.name == "layer":
            kwargs["choices"] = ("mstpn", "stpn", "lstm")
        if setting.name == "frames":
            kwargs["default"] = None
            kwargs["help"] += " (required unless --resume; with --resume, a new total)"
        if setting.name == "lr_decay_frames":
            kwargs["help"] += " (with --resume, a new end of the schedule)"
        parser.add_argument("--" + setting.name.replace("_", "-"), **kwargs)
    parser.set_defaults(handler=run_train)


def _register_init(actions) -> None:
    parser = actions.add_parser("init", help="write a checkpoint of an untrained agent")
    parser.add_argument("--device", type=Path, required=True, help="device parameter file")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--layer", choices=("mstpn", "stpn", "lstm"), default="mstpn",
                        help="recurrent layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--lambda-range", default="device",
                        help="decay range: device, none, wide, slow or LOW,HIGH")
    parser.set_defaults(handler=run_init)


def _register_play(actions) -> None:
    parser = actions.add_parser(
        "play", help="play games and record the synapse trace for 'memsyn energy'")
    parser.add_argument("checkpoint", nargs="?", type=Path,
                        help="checkpoint file or run directory (omit with --untrained)")
    parser.add_argument("--untrained", action="store_true",
                        help="play with freshly initialised weights (needs --device)")
    parser.add_argument("--device", type=Path,
                        help="device parameter file; sets the m-STPN's discretisation and clip")
    parser.add_argument("--games", type=int, default=1, help="games to play, one after another")
    parser.add_argument("--trace", type=Path, help="trace file to write (.npz)")
    parser.add_argument("--seed", type=int, default=0, help="seed of emulator and actions")
    parser.add_argument("--frame-skip", type=int, default=None,
                        help="emulator frames per step (default: the training setting)")
    parser.set_defaults(handler=run_play)


def _register_eval(actions) -> None:
    parser = actions.add_parser("eval", help="play games in parallel and report the returns")
    parser.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    parser.add_argument("--games", type=int, default=10, help="games to play")
    parser.add_argument("--envs", type=int, default=8, help="parallel environments")
    parser.add_argument("--seed", type=int, default=0, help="seed of emulator and actions")
    parser.add_argument("--frame-skip", type=int, default=None,
                        help="emulator frames per step (default: the training setting)")
    parser.set_defaults(handler=run_eval)


# --- handlers ---------------------------------------------------------------------------


def run_train(args) -> int:
    from stpn.a2c import A2CTrainer, load_run_settings
    from stpn.checkpoint import CheckpointError
    from stpn.device import DeviceFileError
    from stpn.settings import TrainSettings

    try:
        if args.resume:
            if not (args.out / "checkpoint.pt").exists():
                raise UsageError(f"{args.out} contains no training run to resume (no "
                                 f"checkpoint.pt): start it without --resume")
            settings, config, info = load_run_settings(args.out)
            _check_resume_arguments(args, settings, info)
            trainer = A2CTrainer(settings, config, args.out, info)
            trainer.restore()
            _apply_resume_schedule(args, settings, trainer.progress.frames)
        else:
            if (args.out / "checkpoint.pt").exists():
                raise UsageError(f"{args.out} already contains a training run: pass --resume to "
                                 f"continue it or choose another --out")
            if args.frames is None:
                raise UsageError("--frames is required to start a run")
            values = {name: getattr(args, name) for name in TrainSettings.help_texts()}
            settings = _settings_from_options(values)
            config, info = _agent_config(settings, args.device)
            trainer = A2CTrainer(settings, config, args.out, info)
    except (ValueError, DeviceFileError, CheckpointError) as error:
        raise UsageError(str(error)) from None

    summary = trainer.run(progress_bar=progress_enabled(args.quiet))
    recent = "n/a" if summary.recent_return is None else f"{summary.recent_return:+.1f}"
    state = "stopped at" if summary.stopped_early else "trained"
    print(f"{state} {summary.frames} frames in {summary.wall_time_s / 60:.1f} min "
          f"({summary.updates} updates, {summary.episodes} games, recent return {recent}); "
          f"checkpoint: {trainer.checkpoint_path}")
    return 0


def _settings_from_options(values: dict):
    """Build TrainSettings, naming the command-line option in a validation error."""
    from stpn.settings import TrainSettings

    try:
        return TrainSettings(**values)
    except ValueError as error:
        message = str(error)
        for name in values:
            if message.startswith(name + " "):
                message = "--" + name.replace("_", "-") + message[len(name):]
                break
        raise UsageError(message) from None


def _apply_resume_schedule(args, settings, frames_done: int) -> None:
    """Apply --frames and --lr-decay-frames of a resumed run to its settings.

    Without --lr-decay-frames the learning rate keeps decaying over the run's first total,
    so frames beyond it train at learning rate 0, which is logged as a warning.
    """
    if args.frames is not None and args.frames < frames_done:
        raise UsageError(f"--frames {args.frames} is below the {frames_done} frames this run "
                         f"has already trained: give a larger total")
    if args.frames is not None and args.frames != settings.frames:
        settings.lr_decay_frames = settings.decay_frames
        settings.frames = args.frames
    if args.lr_decay_frames:
        settings.lr_decay_frames = args.lr_decay_frames
    log.info("training to %d frames; the learning rate decays linearly to 0 at %d frames",
             settings.frames, settings.decay_frames)
    if settings.frames > settings.decay_frames:
        log.warning("frames %d to %d train at learning rate 0, because the schedule ends at "
                    "%d frames: pass --lr-decay-frames with a larger total to stretch it",
                    max(frames_done, settings.decay_frames), settings.frames,
                    settings.decay_frames)


def _check_resume_arguments(args, settings, info) -> None:
    """Raise UsageError if --resume comes with settings that differ from the run's own."""
    from stpn.device import load_device_file
    from stpn.settings import TrainSettings

    defaults = TrainSettings()
    changed = [name for name in TrainSettings.help_texts()
               if name not in RESUME_SETTINGS and getattr(args, name) != getattr(defaults, name)
               and getattr(args, name) != getattr(settings, name)]
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise UsageError(f"{flags} cannot change when resuming: the run continues with the "
                         f"settings in {args.out / 'settings.json'} (only --frames and "
                         f"--lr-decay-frames may change)")
    if args.device is not None and info.get("sha256") not in (None,
                                                              load_device_file(args.device).sha256):
        raise UsageError(f"{args.device} is not the device file this run was trained with "
                         f"({info.get('path', 'unknown')}); resume without --device")


def _agent_config(settings, device_path):
    from stpn.device import load_device_file
    from stpn.network import AgentConfig, default_hidden_size
    from stpn.play import device_info

    hidden = settings.hidden_size or default_hidden_size(settings.layer)
    if settings.layer == "mstpn":
        if device_path is None:
            raise UsageError("--device is required for --layer mstpn: give a device parameter "
                             "file, e.g. stpn/data/published-device.json")
        device = load_device_file(device_path)
        constraints = device.synapse_constraints(settings.lambda_range)
        info = device_info(device, settings.lambda_range)
    else:
        constraints, info = None, {}
        if device_path is not None:
            info = device_info(load_device_file(device_path), settings.lambda_range)
    config = AgentConfig(layer=settings.layer, hidden_size=hidden, constraints=constraints,
                         checkpoint_every=settings.state_checkpoint_every,
                         hebbian_init=settings.agent_hebbian_init)
    return config, info


def run_init(args) -> int:
    from stpn.device import DeviceFileError
    from stpn.play import write_untrained_checkpoint

    try:
        path = write_untrained_checkpoint(args.device, args.out, layer=args.layer,
                                          seed=args.seed, lambda_range=args.lambda_range)
    except (ValueError, DeviceFileError) as error:
        raise UsageError(str(error)) from None
    print(f"wrote untrained {args.layer} agent: {path}")
    return 0


def run_play(args) -> int:
    from stpn.checkpoint import CheckpointError
    from stpn.device import DeviceFileError
    from stpn.play import UNTRAINED, play_games

    if args.untrained == (args.checkpoint is not None):
        raise UsageError("give either a CHECKPOINT or --untrained")
    if args.untrained and args.device is None:
        raise UsageError("--untrained needs --device for the synapse constraints")
    try:
        summary = play_games(UNTRAINED if args.untrained else args.checkpoint, args.device,
                             args.games, args.trace, args.seed, frame_skip=args.frame_skip,
                             progress=progress_enabled(args.quiet))
    except (ValueError, DeviceFileError, CheckpointError) as error:
        raise UsageError(str(error)) from None
    returns = ", ".join(f"{value:+.0f}" for value in summary.returns)
    print(f"played {summary.games} game(s) with the {summary.layer} agent: returns {returns} "
          f"(mean {summary.mean_return:+.2f}), {sum(summary.lengths_steps)} steps")
    if summary.trace_path is not None:
        print(f"trace: {summary.trace_path} ({summary.synapse_updates} synapse updates)")
    return 0


def run_eval(args) -> int:
    import numpy as np

    from stpn.checkpoint import CheckpointError
    from stpn.play import evaluate

    try:
        summary = evaluate(args.checkpoint, args.games, args.seed, args.envs,
                           frame_skip=args.frame_skip, progress=progress_enabled(args.quiet))
    except (ValueError, CheckpointError) as error:
        raise UsageError(str(error)) from None
    returns = np.array(summary.returns)
    print(f"{summary.games} games: mean return {returns.mean():+.2f} (std {returns.std():.2f}, "
          f"min {returns.min():+.0f}, max {returns.max():+.0f}), "
          f"mean length {np.mean(summary.lengths_steps):.0f} steps")
    return 0
