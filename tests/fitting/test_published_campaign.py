"""The simulated published campaign, measured and fitted, reproduces the published figures.

Published figures (Weilenmann, Ziogas et al., "Single neuromorphic memristor closely
emulates multiple synaptic mechanisms for energy efficient neural networks", Nat. Commun.
15, 2024): Lambda range 0.08-0.92, pulse energy c = 30 pJ and alpha = 1.52, G_min about
12 nS, dF spread below 1 nS (so df_step 1 nS and 2 nS per weight unit), largest dF
38.6 nS. The tolerances below are this project's choice. They allow the simulated
device's calibration and the scatter of one seeded campaign. Each is far smaller than a
change that would alter the network, such as a Lambda range off by 0.1 or an energy off
by half.
The spread is checked against 1.5 nS, not 1 nS, because the largest of twelve standard
deviations over 5 repeats each exceeds a true spread of about 0.6 nS by half in some runs.
"""

import json
import math
from pathlib import Path

import pytest

from fitting.campaign import fit_campaign
from memsyn.cli import main

CAMPAIGN = Path(__file__).resolve().parents[2] / "campaigns" / "published.toml"
TOLERANCES = {
    "lambda_min": (0.08, 0.02),
    "lambda_max": (0.92, 0.02),
    "c_pj": (30.0, 10.0),
    "alpha": (1.52, 0.15),
    "g_min_ns": (12.0, 1.0),
    "df_max_ns": (38.6, 3.0),
    # Published: below 1 nS. A standard deviation over 5 repeats scatters by about 35 %.
    "df_std_max_ns": (0.75, 0.75),
}


def within(name: str, value: float) -> bool:
    expected, tolerance = TOLERANCES[name]
    return abs(value - expected) <= tolerance


@pytest.mark.slow
def test_published_campaign_reproduces_figures(tmp_path, capsys):
    results = tmp_path / "published"
    assert main(["--quiet", "measure", "campaign", str(CAMPAIGN), "--out", str(results)]) == 0
    capsys.readouterr()
    document = fit_campaign(results, step_interval_s=1.0).document

    figures = {
        "lambda_min": document["decay"]["lambda_min"]["value"],
        "lambda_max": document["decay"]["lambda_max"]["value"],
        "c_pj": document["pulse_energy"]["c"]["value"] * 1e12,
        "alpha": document["pulse_energy"]["alpha"]["value"],
        "g_min_ns": document["conductance"]["g_min"]["value"] * 1e9,
        "df_max_ns": document["short_term"]["df_max"]["value"] * 1e9,
        "df_std_max_ns": document["short_term"]["df_std_max"]["value"] * 1e9,
    }
    summary = json.dumps(figures, indent=1)
    for name, value in figures.items():
        assert within(name, value), f"{name} = {value!r} outside {TOLERANCES[name]}: {summary}"
    # The published rule: the largest spread rounded up to whole nS (1 nS when below 1 nS).
    df_step = document["short_term"]["df_step"]["value"]
    assert df_step == pytest.approx(math.ceil(figures["df_std_max_ns"]) * 1e-9)
    assert document["conductance"]["siemens_per_weight_unit"]["value"] == pytest.approx(2 * df_step)
    assert document["warnings"] == []
