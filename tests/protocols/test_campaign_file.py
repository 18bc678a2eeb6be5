"""Campaign files: parsing, every error path, and a campaign run on the fake bench."""

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from instruments.errors import InstrumentError
from protocols.campaign import CampaignError, load_campaign, prepare_campaign, run_campaign
from protocols.preflight import PreflightError
from protocols.results_file import read_run_status

REPOSITORY = Path(__file__).resolve().parents[2]

SMALL_CAMPAIGN = """
[campaign]
name = "small"

[[steps]]
protocol = "iv-sweep"
[steps.parameters]
cycles = 1
step_v = 0.5

[[steps]]
protocol = "short-term"
name = "st"
[steps.parameters]
amplitudes_v = [2.0]
widths_s = [1e-4]
repeats = 1
last_read_s = 0.2
reads_per_decade = 2

[[steps]]
protocol = "set"
[steps.parameters]
pulse_count = 5
reads_before = 1
reads_after = 1
settle_s = 2.0
settle_read_interval_s = 1.0
"""


def write(tmp_path, text, name="campaign.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_small_campaign_loads(tmp_path):
    campaign = load_campaign(write(tmp_path, SMALL_CAMPAIGN))
    assert campaign.name == "small"
    assert [step.file_name for step in campaign.steps] == ["01-iv-sweep.csv", "02-st.csv", "03-set.csv"]
    assert campaign.steps[1].parameters["amplitudes_v"] == [2.0]
    assert len(campaign.sha256) == 64


PUBLISHED_ORDER = ["iv-sweep", "set", "short-term", "bias-decay", "long-term-levels"]
# The quick campaign runs the I-V cycles last, so they do not raise the reads before SET.
QUICK_ORDER = ["set", "short-term", "bias-decay", "long-term-levels", "iv-sweep"]


@pytest.mark.parametrize("name, order", [("published.toml", PUBLISHED_ORDER),
                                         ("quick.toml", QUICK_ORDER)])
def test_shipped_campaigns_load(name, order):
    campaign = load_campaign(REPOSITORY / "campaigns" / name)
    assert [step.protocol for step in campaign.steps] == order


def test_quick_campaign_has_fit_grid():
    campaign = load_campaign(REPOSITORY / "campaigns" / "quick.toml")
    by_protocol = {step.protocol: step.procedure() for step in campaign.steps}
    short_term = by_protocol["short-term"]
    assert short_term.widths_s == (20e-6, 100e-6, 500e-6)
    assert short_term.amplitudes_v == (2.0, 2.5, 3.0, 3.5)
    assert short_term.repeats == 3
    decay = by_protocol["bias-decay"]
    assert decay.biases_v == (-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6)
    assert decay.repeats == 3
    assert short_term.last_read_s == decay.last_read_s == 40.0


def test_published_campaign_uses_published_values():
    campaign = load_campaign(REPOSITORY / "campaigns" / "published.toml")
    by_protocol = {step.protocol: step.procedure() for step in campaign.steps}
    assert by_protocol["iv-sweep"].cycles == 30
    assert by_protocol["set"].pulse_count == 100
    assert by_protocol["set"].pulse_amplitude_v == 4.0
    assert by_protocol["set"].settle_s == 240.0
    assert by_protocol["short-term"].amplitudes_v == (2.0, 2.5, 3.0, 3.5)
    assert by_protocol["short-term"].widths_s == (20e-6, 100e-6, 500e-6)
    assert by_protocol["short-term"].repeats == 5
    assert len(by_protocol["bias-decay"].biases_v) == 13
    assert by_protocol["bias-decay"].pulse_amplitude_v == 3.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("[campaign\nname = 1", "not a valid TOML file"),
        ("[campaign]\nname = 'x'\n", "no steps"),
        ("steps = []\n", "no steps"),
        ("steps = 3\n", "array of tables"),
        ("[other]\n[[steps]]\nprotocol = 'set'\n", "unknown table or key 'other'"),
        ("[campaign]\ncolour = 'red'\n[[steps]]\nprotocol = 'set'\n", "unknown key 'colour'"),
        ("[campaign]\nname = 3\n[[steps]]\nprotocol = 'set'\n", "'name' must be a non-empty string"),
        ("[[steps]]\nname = 'a'\n", "step 1: missing key 'protocol'"),
        ("[[steps]]\nprotocol = 'reset'\n", "step 1: unknown protocol 'reset'; choose one of iv-sweep"),
        ("[[steps]]\nprotocol = 'campaign'\n", "cannot run another campaign"),
        ("[[steps]]\nprotocol = 'set'\nspeed = 1\n", "step 1: unknown key 'speed'"),
        ("[[steps]]\nprotocol = 'set'\nname = 'a b'\n", "must start with a letter or digit"),
        ("[[steps]]\nprotocol = 'set'\n[[steps]]\nprotocol = 'set'\n", "step name 'set' is used more than once"),
        ("[[steps]]\nprotocol = 'set'\nparameters = 3\n", "'parameters' must be a table"),
        ("[[steps]]\nprotocol = 'set'\n[steps.parameters]\npulse_cnt = 3\n",
         "step 1: protocol 'set' has no parameter 'pulse_cnt'"),
        ("[[steps]]\nprotocol = 'set'\n[steps.parameters]\npulse_count = 0\n",
         "parameter 'pulse_count' of protocol 'set': SET pulses: 0 is below the minimum 1"),
        ("[[steps]]\nprotocol = 'short-term'\n[steps.parameters]\namplitudes_v = 'loud'\n",
         "'loud' is not a number"),
        ("[[steps]]\nprotocol = 'set'\n[steps.parameters]\npulse_width_s = 'wide'\n",
         "expected a number, got 'wide'"),
    ],
)
def test_campaign_file_errors(tmp_path, text, message):
    with pytest.raises(CampaignError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_campaign(write(tmp_path, text))


def test_missing_campaign_file(tmp_path):
    with pytest.raises(CampaignError, match="not found"):
        load_campaign(tmp_path / "absent.toml")


def test_error_names_the_file(tmp_path):
    path = write(tmp_path, "[[steps]]\nprotocol = 'nope'\n", name="mine.toml")
    with pytest.raises(CampaignError, match="mine.toml: step 1"):
        load_campaign(path)


def test_campaign_runs_every_step(fake_bench, tmp_path):
    campaign = load_campaign(write(tmp_path, SMALL_CAMPAIGN))
    out = tmp_path / "out"
    seen = []
    record = run_campaign(campaign, fake_bench, out, seed=3,
                          progress=lambda percent, label: seen.append((percent, label)))

    assert record.status == "completed"
    for name in ("01-iv-sweep.csv", "02-st.csv", "03-set.csv"):
        assert read_run_status(out / name)["status"] == "completed"
        assert len(pd.read_csv(out / name, comment="#")) > 0
    saved = json.loads((out / "campaign.json").read_text())
    assert saved["status"] == "completed"
    assert [step["status"] for step in saved["steps"]] == ["completed"] * 3
    assert saved["seed"] == 3
    percents = [percent for percent, _ in seen]
    assert percents == sorted(percents)
    assert percents[-1] == pytest.approx(100.0)


def test_campaign_stops_at_failed_step(fake_bench, tmp_path):
    campaign = load_campaign(write(tmp_path, SMALL_CAMPAIGN))
    out = tmp_path / "out"
    fake_bench.fail_on("generator", "trigger", InstrumentError("gen", "*TRG", "broken"))
    record = run_campaign(campaign, fake_bench, out)

    assert record.status == "failed"
    assert [step["status"] for step in record.steps] == ["completed", "failed", "not run"]
    assert not (out / "03-set.csv").exists()
    saved = json.loads((out / "campaign.json").read_text())
    assert saved["steps"][1]["reason"].startswith("InstrumentError")


def test_every_step_passes_preflight_before_anything_runs(fake_bench, tmp_path):
    text = SMALL_CAMPAIGN.replace("pulse_count = 5", "pulse_count = 5\npulse_amplitude_v = 4.5")
    campaign = load_campaign(write(tmp_path, text))
    with pytest.raises(PreflightError, match=r"step 3 \(set\)"):
        run_campaign(campaign, fake_bench, tmp_path / "out")
    assert fake_bench.calls == []
    assert not (tmp_path / "out" / "01-iv-sweep.csv").exists()


def test_campaign_never_overwrites_results(fake_bench, tmp_path):
    campaign = load_campaign(write(tmp_path, SMALL_CAMPAIGN))
    out = tmp_path / "out"
    out.mkdir()
    (out / "02-st.csv").write_text("old\n")
    with pytest.raises(CampaignError, match="02-st.csv already exists"):
        prepare_campaign(campaign, fake_bench, out)
    assert fake_bench.calls == []


def test_ctrl_c_during_shutdown_ends_campaign(fake_bench, tmp_path):
    campaign = load_campaign(write(tmp_path, SMALL_CAMPAIGN))
    def press_ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)

    object.__setattr__(fake_bench.scope, "shutdown", press_ctrl_c)

    record = run_campaign(campaign, fake_bench, tmp_path / "out")

    assert record.status == "aborted"
    assert [step["status"] for step in record.steps] == ["completed", "not run", "not run"]
    saved = json.loads((tmp_path / "out" / "campaign.json").read_text())
    assert saved["status"] == "aborted"
