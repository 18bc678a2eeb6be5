"""`memsyn pong train`: resuming, the learning-rate schedule and invalid options."""

import json

import pytest

from memsyn.cli import main
from stpn.device import PUBLISHED_DEVICE_PATH

SMALL_RUN = ["--envs", "2", "--rollout-steps", "10", "--frame-skip", "4",
             "--state-checkpoint-every", "5", "--log-interval-updates", "1"]


def train(run_dir, *extra):
    return main(["--quiet", "pong", "train", "--out", str(run_dir), *extra])


def run_settings(run_dir):
    return json.loads((run_dir / "settings.json").read_text())["settings"]


def test_resume_without_run_rejected(tmp_path, capsys):
    assert train(tmp_path / "absent", "--resume") == 2
    assert "no training run to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_schedule(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "--device", str(PUBLISHED_DEVICE_PATH), "--frames", "80", *SMALL_RUN) == 0

    # A total below the frames already trained is rejected and changes nothing.
    assert train(run, "--resume", "--frames", "40") == 2
    assert "below the 80 frames" in capsys.readouterr().err
    assert run_settings(run)["frames"] == 80

    # Extending keeps the first schedule, so the extra frames train at learning rate 0.
    assert train(run, "--resume", "--frames", "160") == 0
    assert "train at learning rate 0" in capsys.readouterr().err
    assert run_settings(run)["lr_decay_frames"] == 80

    # --lr-decay-frames stretches the schedule over the new total.
    assert train(run, "--resume", "--frames", "240", "--lr-decay-frames", "400") == 0
    assert "learning rate 0" not in capsys.readouterr().err
    assert run_settings(run)["frames"] == 240
    assert run_settings(run)["lr_decay_frames"] == 400


def test_invalid_setting_names_option(tmp_path, capsys):
    status = train(tmp_path / "run", "--device", str(PUBLISHED_DEVICE_PATH), "--frames", "-5")
    assert status == 2
    assert "--frames must be >= 1, got -5" in capsys.readouterr().err
