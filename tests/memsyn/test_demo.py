"""The main job end to end: quick campaign, fit, one game, energy and report."""

import json
import re

import pytest

from memsyn.errors import UsageError
from memsyn.pipeline import SHIPPED_AGENT, STEPS, run_demo


@pytest.mark.slow
def test_demo_writes_every_output(tmp_path):
    seen = []
    result = run_demo(tmp_path / "run", seed=2, progress=lambda step, percent: seen.append(step))

    assert set(seen) == set(STEPS)
    for name in ("measurements", "device file", "game trace", "energy", "report"):
        assert result.outputs[name].exists(), name
    device = json.loads((tmp_path / "run" / "device.json").read_text())
    assert device["format"] == "memsyn-device"
    assert len(result.game_returns) == 1
    assert result.energy["memristor"]["per_game"]["total_worst_case"]["value"] > 0

    page = result.outputs["report"].read_text()
    drawn = set(re.findall(r"<section id='([^']+)'><h2>[^<]*</h2>\n<img", page))
    expected = {"iv-hysteresis", "set-transition", "short-term-responses", "df-heat-map",
                "decay-curves", "lambda-bias", "pulse-energy", "synapse-trace",
                "energy-histograms", "energy-comparison"}
    if SHIPPED_AGENT.exists():
        expected.add("training-curves")
        # The shipped agent's synapses receive updates, so its pulses cost energy.
        assert result.energy["memristor"]["per_game"]["pulse"]["value"] > 0
    assert expected <= drawn


def test_demo_refuses_non_empty_folder(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        run_demo(tmp_path)
    assert (tmp_path / "old.txt").read_text() == "keep me"
