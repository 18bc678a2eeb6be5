"""Tests of the simulated memristor: published figures reproduced by running the published
protocols on the model, plus state handling, determinism and electroforming."""

import copy
import dataclasses

import numpy as np
import pytest
from scipy.optimize import curve_fit

from sim_backend.device_model import (
    DeviceState,
    FormingEvent,
    MemristorModel,
    MemristorParams,
    iv_shape,
    short_term_tau_s,
)

READ_V = 0.6
NS = 1e-9
AMPLITUDES_V = (2.0, 2.5, 3.0, 3.5)
WIDTHS_S = (20e-6, 100e-6, 500e-6)
REPEATS = 5
STEP_INTERVAL_S = 1.0

# Published figures (Weilenmann, Ziogas et al., Nat. Commun. 15, 2024).
PUBLISHED_DF_NS = {(2.0, 100e-6): 3.0, (2.5, 100e-6): 5.0, (3.0, 100e-6): 10.0}
PUBLISHED_WEAKEST_DF_NS = 0.7
PUBLISHED_STRONGEST_DF_NS = 38.6


def noiseless_params(**changes) -> MemristorParams:
    """Default parameters without read noise and cycle-to-cycle spread."""
    quiet = {
        "read_noise_rel": 0.0,
        "read_noise_floor_a": 0.0,
        "short_term_spread": 0.0,
        "set_spread": 0.0,
    }
    return dataclasses.replace(MemristorParams(), **{**quiet, **changes})


def apply_set_train(model, pulses=100, amplitude_v=4.0, width_s=500e-6, period_s=1e-3, dt_s=1e-6):
    """Apply a burst of rectangular SET pulses at 0 V between pulses; return the currents."""
    high = round(width_s / dt_s)
    low = round((period_s - width_s) / dt_s)
    period = np.concatenate((np.full(high, amplitude_v), np.zeros(low)))
    return model.apply(np.tile(period, pulses), dt_s)


def read_conductance_s(model, window_s=2e-3, dt_s=1e-5) -> float:
    """Read at 0.6 V for one window and return the mean current over the read voltage."""
    current = model.apply(np.full(round(window_s / dt_s), READ_V), dt_s)
    return float(current.mean() / READ_V)


def apply_pulse(model, amplitude_v, width_s, dt_s=1e-6) -> float:
    """Apply one rectangular pulse; return its energy, the integral of V x I, in joules."""
    voltage = np.full(round(width_s / dt_s), amplitude_v)
    current = model.apply(voltage, dt_s)
    return float(np.sum(voltage * current) * dt_s)


def set_device(seed=1, params=None) -> MemristorModel:
    """A fresh device after the published SET protocol: 100 x 4 V, 500 us, then 240 s at 0 V."""
    model = MemristorModel(params, np.random.default_rng(seed))
    apply_set_train(model)
    model.hold(0.0, 240.0)
    return model


@pytest.fixture(scope="module")
def set_model():
    """A device after the SET protocol; tests get their own copy, random generator included."""
    model = set_device(seed=3)
    return lambda: copy.deepcopy(model)


@pytest.fixture(scope="module")
def short_term_grid():
    """The published short-term grid: dF (nS) and pulse energy (J), shape (4, 3, 5).

    Continuous read at 0.6 V: baseline read, pulse, first read right after it, then
    100 s at the read voltage so F decays before the next pulse.
    """
    model = set_device(seed=7)
    df_ns = np.empty((len(AMPLITUDES_V), len(WIDTHS_S), REPEATS))
    energy_j = np.empty_like(df_ns)
    for i, amplitude_v in enumerate(AMPLITUDES_V):
        for j, width_s in enumerate(WIDTHS_S):
            for k in range(REPEATS):
                baseline_s = read_conductance_s(model)
                energy_j[i, j, k] = apply_pulse(model, amplitude_v, width_s)
                df_ns[i, j, k] = (read_conductance_s(model) - baseline_s) / NS
                model.hold(READ_V, 100.0)
    return df_ns, energy_j


def fit_exponential_decay_tau_s(time_s, conductance_s) -> float:
    """Fit G(t) = G_inf + A exp(-t / tau) and return tau in seconds."""

    def model(t, g_inf, amplitude, tau):
        return g_inf + amplitude * np.exp(-t / tau)

    conductance_ns = conductance_s / NS
    start = (conductance_ns[-1], conductance_ns[0] - conductance_ns[-1], 1.0)
    popt, _ = curve_fit(model, time_s, conductance_ns, p0=start)
    return float(popt[2])


def measure_bias_decay_tau_s(model, bias_v) -> float:
    """Run the published bias-decay protocol on ``model``; return the fitted decay time in s.

    Pulse 3.5 V, 500 us, then the bias held between reads at 0.6 V, 8 reads a decade from
    1 ms to 60 s after the pulse (later where reads would overlap). A read is 0.2 ms of
    settling and a 0.5 ms window, and its time is the middle of the window.
    """
    settle_s, window_s, dt_s = 2e-4, 5e-4, 1e-5
    apply_pulse(model, 3.5, 500e-6)
    pulse_end_s = model.state.time_s
    read_times_s = []
    conductance = []
    for scheduled_s in np.logspace(-3, np.log10(60.0), 39):
        wait_s = pulse_end_s + scheduled_s - window_s / 2 - settle_s - model.state.time_s
        model.hold(bias_v, max(wait_s, 0.0))
        read_start_s = model.state.time_s
        current = model.apply(np.full(round((settle_s + window_s) / dt_s), READ_V), dt_s)
        read_times_s.append(read_start_s + settle_s + window_s / 2 - pulse_end_s)
        conductance.append(current[round(settle_s / dt_s) :].mean() / READ_V)
    return fit_exponential_decay_tau_s(np.array(read_times_s), np.array(conductance))


def sigmoid(v, big_l, k, v0, lambda0):
    return big_l / (1.0 + np.exp(-k * (v - v0))) + lambda0


# ----- parameters and interface -------------------------------------------------------


def test_params_reject_invalid_value():
    with pytest.raises(ValueError, match="tau_min_s"):
        MemristorParams(tau_min_s=-1.0)
    with pytest.raises(ValueError, match="f_max_s"):
        MemristorParams(f_max_s=float("nan"))
    with pytest.raises(ValueError, match="forming_threshold_v"):
        MemristorParams(forming_threshold_v=1.0)


def test_fresh_device_at_minimum_conductance():
    model = MemristorModel()

    assert model.conductance_s(READ_V) == pytest.approx(12.0 * NS)
    # Published: 4.3 nW at 0.6 V in the lowest state.
    assert READ_V**2 * model.conductance_s(READ_V) == pytest.approx(4.3e-9, rel=0.02)
    assert model.state == DeviceState(0.0, 12e-9, 0.0, 0, False, False, 0.0)


def test_conductance_at_read_is_w_plus_f():
    model = MemristorModel(rng=np.random.default_rng(0))
    apply_pulse(model, 3.0, 100e-6)
    state = model.state

    assert state.f_s > 0
    assert model.conductance_s(READ_V) == pytest.approx(state.w_s + state.f_s, rel=1e-12)


def test_apply_rejects_bad_waveform():
    model = MemristorModel()
    with pytest.raises(ValueError, match="sample 2 is not a finite number"):
        model.apply(np.array([0.0, 0.6, np.nan]), 1e-6)
    with pytest.raises(ValueError, match="dt_s"):
        model.apply(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        model.apply(np.zeros((2, 2)), 1e-6)
    with pytest.raises(ValueError, match="duration"):
        model.hold(0.0, -1.0)
    assert model.state.time_s == 0.0


def test_apply_empty_waveform_changes_nothing():
    model = MemristorModel()
    current = model.apply(np.empty(0), 1e-6)

    assert current.shape == (0,)
    assert model.state.time_s == 0.0


def test_read_current_has_noise_around_g_times_v():
    model = MemristorModel(rng=np.random.default_rng(0))
    expected_a = model.conductance_s(READ_V) * READ_V
    current = model.apply(np.full(20000, READ_V), 1e-5)

    assert current.mean() == pytest.approx(expected_a, rel=1e-3)
    assert current.std() > 0.002 * expected_a
    assert current.std() < 0.01 * expected_a


# ----- long-term state W --------------------------------------------------------------


def test_set_train_raises_long_term_level():
    model = MemristorModel(rng=np.random.default_rng(1))
    apply_set_train(model)
    after_train = model.state
    model.hold(0.0, 240.0)
    settled = model.state

    assert after_train.pulse_count == 100
    assert after_train.w_s / NS == pytest.approx(18.3, abs=0.5)
    # 240 s at 0 V: F is gone, W kept most of the gain.
    assert settled.f_s < 0.01 * NS
    assert settled.w_s / NS == pytest.approx(17.9, abs=0.5)


def test_set_trains_stack_levels_up_to_23_ns():
    model = MemristorModel(rng=np.random.default_rng(2))
    levels_ns = [model.conductance_s(READ_V) / NS]
    for _ in range(5):
        apply_set_train(model)
        model.hold(0.0, 240.0)
        levels_ns.append(model.conductance_s(READ_V) / NS)

    assert levels_ns[0] == pytest.approx(12.0, abs=0.1)
    assert all(np.diff(levels_ns) > 0)
    assert levels_ns[-1] == pytest.approx(23.0, abs=0.7)
    assert max(levels_ns) < 24.0


def test_retention_at_zero_volts():
    model = set_device(seed=4)
    w_min_ns = model.params.w_min_s / NS
    times_s = np.array([0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0])
    levels_ns = []
    for step_s in np.diff(times_s, prepend=0.0):
        model.hold(0.0, step_s)
        levels_ns.append(model.conductance_s(READ_V) / NS)
    levels_ns = np.array(levels_ns)
    tau_s = -(np.polyfit(times_s, np.log(levels_ns - w_min_ns), 1)[0] ** -1)

    assert np.all(np.diff(levels_ns) < 0)
    assert levels_ns[3] < levels_ns[0] - 0.3
    assert 1000.0 < tau_s < 10000.0


def test_long_term_level_flat_during_short_term_run():
    model = set_device(seed=5)
    before_ns = model.state.w_s / NS
    for amplitude_v in (2.0, 2.5, 3.0):
        apply_pulse(model, amplitude_v, 100e-6)
        model.hold(READ_V, 125.0)
    after_ns = model.state.w_s / NS

    assert after_ns == pytest.approx(before_ns, abs=0.2)


# ----- short-term state F: pulse response -------------------------------------------


def test_short_term_df_matches_published_values(short_term_grid):
    df_ns, _ = short_term_grid
    mean_ns = df_ns.mean(axis=2)

    for (amplitude_v, width_s), published_ns in PUBLISHED_DF_NS.items():
        i, j = AMPLITUDES_V.index(amplitude_v), WIDTHS_S.index(width_s)
        assert mean_ns[i, j] == pytest.approx(published_ns, rel=0.10), (amplitude_v, width_s)
    assert mean_ns[0, 0] == pytest.approx(PUBLISHED_WEAKEST_DF_NS, abs=0.1)
    assert mean_ns[-1, -1] == pytest.approx(PUBLISHED_STRONGEST_DF_NS, rel=0.05)


def test_short_term_df_grows_with_amplitude_and_width(short_term_grid):
    mean_ns = short_term_grid[0].mean(axis=2)

    assert np.all(np.diff(mean_ns, axis=0) > 0)
    assert np.all(np.diff(mean_ns, axis=1) > 0)
    assert mean_ns.min() == mean_ns[0, 0]
    assert mean_ns.max() == mean_ns[-1, -1]


def test_short_term_spread_below_one_ns(short_term_grid):
    spread_ns = short_term_grid[0].std(axis=2, ddof=1)

    assert np.all(spread_ns < 1.0)
    assert np.all(spread_ns > 0.0)


def test_pulse_energy_follows_published_power_law(short_term_grid):
    df_ns, energy_j = short_term_grid
    slope, intercept = np.polyfit(np.log(df_ns.ravel()), np.log(energy_j.ravel()), 1)
    c_pj = np.exp(intercept) / 1e-12

    assert c_pj == pytest.approx(30.0, rel=0.15)
    assert slope == pytest.approx(1.52, abs=0.1)


def test_pulse_energy_is_integral_of_v_times_i():
    model = set_device(seed=6, params=noiseless_params())
    g_before = model.conductance_s(READ_V)
    energy_j = apply_pulse(model, 2.0, 20e-6, dt_s=1e-7)
    g_after = model.conductance_s(READ_V)
    shape = float(iv_shape(2.0, model.params))

    # F rises during the pulse, so E lies between the powers at its start and its end.
    assert 4.0 * shape * g_before * 20e-6 < energy_j < 4.0 * shape * g_after * 20e-6


def test_df_independent_of_sample_rate():
    coarse = set_device(seed=8, params=noiseless_params())
    fine = set_device(seed=8, params=noiseless_params())
    start_ns = coarse.state.f_s / NS
    coarse_energy_j = apply_pulse(coarse, 3.0, 100e-6, dt_s=1e-6)
    fine_energy_j = apply_pulse(fine, 3.0, 100e-6, dt_s=1e-7)

    assert coarse.state.f_s / NS - start_ns == pytest.approx(10.0, rel=0.1)
    assert fine.state.f_s == pytest.approx(coarse.state.f_s, rel=1e-9)
    assert fine_energy_j == pytest.approx(coarse_energy_j, rel=0.02)


def test_pulse_on_top_of_read_bias_is_detected():
    model = set_device(seed=9, params=noiseless_params())
    read = np.full(1000, READ_V)
    # Generator pulse of 2.4 V on top of the 0.6 V SMU level: 3 V at the device for 100 us.
    waveform = np.concatenate((read, np.full(100, READ_V + 2.4), read))
    before_s = model.conductance_s(READ_V)
    model.apply(waveform, 1e-6)

    assert (model.conductance_s(READ_V) - before_s) / NS == pytest.approx(10.0, rel=0.1)
    assert model.state.pulse_count == 101


def test_sub_threshold_voltage_builds_no_short_term_state():
    model = set_device(seed=10, params=noiseless_params())
    model.apply(np.full(1000, 1.5), 1e-6)

    assert model.state.f_s < 1e-15
    assert model.state.pulse_count == 100


# ----- short-term state F: bias-controlled decay --------------------------------------


def test_decay_factor_range_matches_published(set_model):
    tau_negative_s = measure_bias_decay_tau_s(set_model(), -0.6)
    tau_positive_s = measure_bias_decay_tau_s(set_model(), 0.6)

    assert tau_negative_s == pytest.approx(0.40, rel=0.1)
    assert tau_positive_s == pytest.approx(12.0, rel=0.1)
    assert np.exp(-STEP_INTERVAL_S / tau_negative_s) == pytest.approx(0.08, abs=0.02)
    assert np.exp(-STEP_INTERVAL_S / tau_positive_s) == pytest.approx(0.92, abs=0.02)


def test_decay_factor_follows_sigmoid_in_bias(set_model):
    biases_v = np.linspace(-0.6, 0.6, 13)
    taus_s = np.array([measure_bias_decay_tau_s(set_model(), bias_v) for bias_v in biases_v])
    decay_factor = np.exp(-STEP_INTERVAL_S / taus_s)
    popt, _ = curve_fit(sigmoid, biases_v, decay_factor, p0=(0.85, 7.0, 0.0, 0.07))

    assert np.all(np.diff(decay_factor) > 0)
    assert np.max(np.abs(sigmoid(biases_v, *popt) - decay_factor)) < 0.02
    assert popt[0] + popt[3] == pytest.approx(0.93, abs=0.05)


def test_tau_is_logistic_between_limits():
    params = MemristorParams()
    taus_s = short_term_tau_s(np.array([-5.0, -0.6, 0.0, 0.6, 5.0]), params)

    assert taus_s[0] == pytest.approx(params.tau_min_s, rel=1e-6)
    assert taus_s[-1] == pytest.approx(params.tau_max_s, rel=1e-6)
    assert taus_s[1] < 0.5
    assert taus_s[3] > 10.0
    # Midpoint of the logistic in ln tau: the geometric mean of the limits.
    assert taus_s[2] == pytest.approx(np.sqrt(params.tau_min_s * params.tau_max_s), rel=1e-9)


# ----- I-V sweep ----------------------------------------------------------------------


def iv_sweep_points(step_v=0.05):
    """One cycle 0 -> +2 V -> -2 V -> 0 of an SMU staircase."""
    return np.concatenate(
        (
            np.arange(0.0, 2.0, step_v),
            np.arange(2.0, -2.0, -step_v),
            np.arange(-2.0, 0.0, step_v),
        )
    )


def test_iv_sweep_counter_clockwise_hundreds_of_ns():
    model = set_device(seed=11)
    points_v = iv_sweep_points()
    samples_per_point = 20
    dwell_s = 20e-3
    at_plus_2 = np.flatnonzero(np.isclose(points_v, 2.0))[0]
    at_minus_2 = np.flatnonzero(np.isclose(points_v, -2.0))[0]
    up_1v5, down_1v5 = np.flatnonzero(np.isclose(points_v, 1.5))

    plus_2_ns, minus_2_ns, loop_areas = [], [], []
    for _ in range(30):
        current = model.apply(np.repeat(points_v, samples_per_point), dwell_s / samples_per_point)
        point_current = current[samples_per_point - 1 :: samples_per_point]
        plus_2_ns.append(point_current[at_plus_2] / 2.0 / NS)
        minus_2_ns.append(point_current[at_minus_2] / -2.0 / NS)
        # Closed-path integral of I dV; negative for a counter-clockwise loop.
        loop_areas.append(np.trapezoid(np.append(point_current, 0.0), np.append(points_v, 0.0)))
        # Positive branch: higher current on the way down from +2 V than on the way up.
        assert point_current[down_1v5] > 1.5 * point_current[up_1v5]

    # Published: conductance in the hundreds of nS at the sweep extremes.
    assert np.min(plus_2_ns) > 100.0
    assert np.max(plus_2_ns) < 1000.0
    assert np.min(minus_2_ns) > 100.0
    assert np.max(minus_2_ns) < 1000.0
    assert np.all(np.array(loop_areas) < 0)
    assert np.std(plus_2_ns[1:]) < 0.05 * np.mean(plus_2_ns[1:])
    assert not model.electroformed


# ----- electroforming -------------------------------------------------------------------


def test_published_set_pulses_do_not_electroform():
    model = set_device(seed=12)

    assert not model.electroformed
    assert model.forming_events == []


def test_voltage_at_threshold_does_not_electroform():
    model = MemristorModel(rng=np.random.default_rng(13))
    model.apply(np.full(100, 4.2), 1e-6)
    model.hold(4.2, 1.0)

    assert not model.electroformed
    assert model.forming_events == []


def test_voltage_above_threshold_electroforms_and_is_recorded():
    model = MemristorModel(rng=np.random.default_rng(14))
    model.hold(0.0, 10.0)
    waveform = np.concatenate((np.zeros(100), np.full(5, 4.3), np.full(5, 4.5), np.zeros(100)))
    before_s = model.conductance_s(READ_V)
    model.apply(waveform, 1e-6)

    assert model.electroformed
    assert model.state.electroformed
    assert len(model.forming_events) == 1
    event = model.forming_events[0]
    assert isinstance(event, FormingEvent)
    assert event.time_s == pytest.approx(10.0 + 100e-6)
    assert event.voltage_v == 4.5
    assert model.conductance_s(READ_V) > 100 * before_s


def test_electroformed_device_has_no_short_term_response():
    model = MemristorModel(rng=np.random.default_rng(15))
    model.hold(4.5, 1e-6)
    formed_s = model.conductance_s(READ_V)
    apply_pulse(model, 3.0, 500e-6)

    assert model.forming_events[0].voltage_v == 4.5
    assert model.state.f_s == 0.0
    assert model.conductance_s(READ_V) == pytest.approx(formed_s, rel=1e-6)


def test_every_excursion_above_threshold_is_recorded():
    model = MemristorModel(rng=np.random.default_rng(16))
    waveform = np.concatenate((np.full(3, 4.4), np.zeros(10), np.full(3, 4.6)))
    model.apply(waveform, 1e-3)

    assert [event.voltage_v for event in model.forming_events] == [4.4, 4.6]
    assert [event.time_s for event in model.forming_events] == pytest.approx([0.0, 13e-3])


def test_forming_threshold_is_configurable():
    params = MemristorParams(forming_threshold_v=3.0)
    model = MemristorModel(params, np.random.default_rng(17))
    apply_pulse(model, 3.5, 20e-6)

    assert model.electroformed
    assert model.forming_events[0].voltage_v == 3.5


# ----- determinism, chunking, snapshots, drift ------------------------------------------


def run_mixed_protocol(seed):
    model = MemristorModel(rng=np.random.default_rng(seed))
    currents = [apply_set_train(model, pulses=10)]
    model.hold(0.0, 30.0)
    currents.append(model.apply(np.full(500, READ_V), 1e-5))
    currents.append(model.apply(np.full(100, 3.0), 1e-6))
    currents.append(model.apply(np.full(500, READ_V), 1e-5))
    return np.concatenate(currents), model.state


def test_same_seed_gives_identical_results():
    first_current, first_state = run_mixed_protocol(seed=21)
    second_current, second_state = run_mixed_protocol(seed=21)
    other_current, _ = run_mixed_protocol(seed=22)

    assert np.array_equal(first_current, second_current)
    assert first_state == second_state
    assert not np.array_equal(first_current, other_current)


def test_splitting_waveform_gives_same_state():
    waveform = np.concatenate(
        (np.full(300, READ_V), np.full(100, 3.0), np.full(300, -0.3), np.full(500, 4.0))
    )
    whole = MemristorModel(noiseless_params())
    whole.apply(waveform, 1e-6)
    pieces = MemristorModel(noiseless_params())
    for chunk in np.split(waveform, [150, 350, 380, 650, 900, 901]):
        pieces.apply(chunk, 1e-6)

    assert pieces.state.f_s == pytest.approx(whole.state.f_s, rel=1e-9)
    assert pieces.state.w_s == pytest.approx(whole.state.w_s, rel=1e-9)
    assert pieces.state.pulse_count == whole.state.pulse_count == 1
    assert pieces.state.in_pulse and whole.state.in_pulse
    assert pieces.state.time_s == pytest.approx(whole.state.time_s)


def test_hold_matches_sampled_waveform():
    sampled = set_device(seed=23, params=noiseless_params())
    held = set_device(seed=23, params=noiseless_params())
    apply_pulse(sampled, 3.0, 100e-6)
    held.hold(3.0, 100e-6)
    sampled.apply(np.full(5000, 0.3), 1e-3)
    held.hold(0.3, 5.0)

    assert held.state.f_s == pytest.approx(sampled.state.f_s, rel=1e-9)
    assert held.state.w_s == pytest.approx(sampled.state.w_s, rel=1e-9)
    assert held.state.time_s == pytest.approx(sampled.state.time_s)
    assert held.state.pulse_count == sampled.state.pulse_count == 101


def test_snapshot_restore_replays_identically():
    model = set_device(seed=24)
    saved = model.snapshot()
    first = model.apply(np.concatenate((np.full(50, 3.0), np.full(500, READ_V))), 1e-6)
    model.restore(saved)
    second = model.apply(np.concatenate((np.full(50, 3.0), np.full(500, READ_V))), 1e-6)

    assert np.array_equal(first, second)


def test_drift_moves_long_term_level():
    drifting = set_device(seed=25, params=noiseless_params())
    steady = set_device(seed=25, params=noiseless_params())
    drifting.set_drift(1e-12)
    drifting.hold(READ_V, 100.0)
    steady.hold(READ_V, 100.0)
    drifting.apply(np.full(1000, READ_V), 1e-3)
    steady.apply(np.full(1000, READ_V), 1e-3)

    assert drifting.state.drift_rate_s_per_s == 1e-12
    assert drifting.state.w_s - steady.state.w_s == pytest.approx(101e-12, rel=1e-6)
    assert drifting.conductance_s(READ_V) - steady.conductance_s(READ_V) == pytest.approx(
        101e-12, rel=1e-6
    )


def test_apply_level_matches_general_path():
    # Three levels in one waveform take the general, per-sample path; one apply_level per
    # level takes the closed form. Both draw the same noise in the same order.
    levels = [(READ_V, 700), (-0.3, 500), (0.0, 300)]
    by_level = set_device(seed=26)
    general = set_device(seed=26)

    level_current = np.concatenate([by_level.apply_level(v, n, 1e-6) for v, n in levels])
    general_current = general.apply(np.concatenate([np.full(n, v) for v, n in levels]), 1e-6)

    np.testing.assert_allclose(level_current, general_current, rtol=1e-11, atol=1e-25)
    assert by_level.state.f_s == pytest.approx(general.state.f_s, rel=1e-11)
    assert by_level.state.w_s == pytest.approx(general.state.w_s, rel=1e-11)
    assert by_level.state.time_s == pytest.approx(general.state.time_s, rel=1e-12)


def test_apply_of_one_level_is_apply_level():
    constant = set_device(seed=27)
    level = set_device(seed=27)
    assert np.array_equal(constant.apply(np.full(400, READ_V), 1e-6),
                          level.apply_level(READ_V, 400, 1e-6))


def test_apply_level_above_threshold_raises_f():
    pulsed = set_device(seed=28)
    sampled = set_device(seed=28)
    before_s = pulsed.state.f_s
    assert np.array_equal(pulsed.apply_level(3.0, 100, 1e-6), sampled.apply(np.full(100, 3.0), 1e-6))
    assert pulsed.state.f_s > before_s


def test_apply_level_rejects_bad_input():
    model = MemristorModel()
    with pytest.raises(ValueError, match="count"):
        model.apply_level(READ_V, 0, 1e-6)
    with pytest.raises(ValueError, match="voltage"):
        model.apply_level(float("nan"), 10, 1e-6)
    with pytest.raises(ValueError, match="dt_s"):
        model.apply_level(READ_V, 10, -1e-6)
    assert model.state.time_s == 0.0
