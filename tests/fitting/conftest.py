"""Shared fixtures of the fitting tests: small seeded synthetic campaigns."""

import pytest

from fitting.synthetic import SyntheticPlan, SyntheticTruth, write_campaign

# Fewer biases, repeats and reads than the published campaign keep a full fit near one
# second. The short-term grid stays the published 4 amplitudes x 3 widths x 5 repeats.
SMALL_PLAN = SyntheticPlan(
    biases_v=(-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6),
    decay_repeats=2,
    decay_reads=24,
    level_repeats=3,
)

# Smaller still, for the tests that fit a campaign only to see one problem reported.
TINY_PLAN = SyntheticPlan(
    amplitudes_v=(2.0, 3.0, 3.5),
    widths_s=(20e-6, 500e-6),
    repeats=3,
    biases_v=(-0.6, -0.3, 0.0, 0.3, 0.6),
    decay_repeats=2,
    decay_reads=16,
    level_repeats=2,
)


@pytest.fixture(scope="session")
def truth() -> SyntheticTruth:
    return SyntheticTruth()


@pytest.fixture(scope="session")
def small_plan() -> SyntheticPlan:
    return SMALL_PLAN


@pytest.fixture(scope="session")
def campaign_dir(tmp_path_factory):
    """A synthetic campaign directory that tests must not modify."""
    directory = tmp_path_factory.mktemp("campaign")
    write_campaign(directory, seed=11, plan=SMALL_PLAN)
    return directory


@pytest.fixture(scope="session")
def campaign_fit(campaign_dir):
    from fitting.campaign import fit_campaign

    return fit_campaign(campaign_dir)


@pytest.fixture
def fresh_campaign(tmp_path):
    """Write a synthetic campaign into a fresh directory and return its file paths."""

    def write(seed: int = 11, plan: SyntheticPlan = TINY_PLAN, **kwargs):
        return write_campaign(tmp_path / "campaign", seed=seed, plan=plan, **kwargs)

    return write
