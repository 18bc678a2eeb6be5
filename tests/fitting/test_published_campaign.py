"""The simulated published campaign, measured and fitted, reproduces the published figures.

Published figures (Weilenmann, Ziogas et al., "Single neuromorphic memristor closely
emulates multiple synaptic mechanisms for energy efficient neural networks", Nat. Commun.
15, 2024): Lambda range 0.08-0.92, pulse energy c = 30 pJ and alpha = 1.52, G_min about
12 nS, dF spread below 1 nS (so df_step 1 nS and 2 nS per weight unit), largest dF
38.6 nS. The tolerances below are this project's choice: they allow the simulated
device's calibration and the scatter of one seeded campaign, and each is far smaller than
a change that would alter the network (a Lambda range off by 0.1, an energy off by half).
"""

import json
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
    }
    summary = json.dumps(figures, indent=1)
    for name, value in figures.items():
        assert within(name, value), f"{name} = {value!r} outside {TOLERANCES[name]}: {summary}"
    assert document["short_term"]["df_step"]["value"] == pytest.approx(1e-9)
    assert document["conductance"]["siemens_per_weight_unit"]["value"] == pytest.approx(2e-9)
    assert document["warnings"] == []
