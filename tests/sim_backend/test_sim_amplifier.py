"""The real FemtoDHPCA100 driver setting the simulated amplifier through simulated control lines."""

import math

import numpy as np
import pytest
from sim_bench_helpers import make_bench, pulse_burst, scope_window, smu_bias

from instruments.errors import InstrumentTimeout
from instruments.femto_dhpca100 import BANDWIDTH_HZ, GAINS_V_PER_A, encode_control_bits
from sim_backend.amplifier_dhpca100 import SimulatedDHPCA100, first_order_lowpass


@pytest.mark.parametrize("mode", ["low_noise", "high_speed"])
def test_every_gain_reaches_simulation(bench, mode):
    amplifier = bench.amplifier
    simulated = bench.world.amplifier
    for gain in GAINS_V_PER_A[mode]:
        amplifier.configure(gain_v_per_a=gain, mode=mode)
        assert simulated.gain_v_per_a == gain
        assert simulated.setting.mode == mode
        assert simulated.bandwidth_hz == BANDWIDTH_HZ[mode][gain]


def test_bench_gain_is_written_through_driver():
    bench = make_bench(gain_v_per_a=1e7, mode="low_noise")
    control = bench.amplifier.control
    assert control.bits == bench.amplifier.control_bits
    assert bench.world.amplifier.gain_v_per_a == 1e7


def test_invalid_bench_gain_is_rejected():
    with pytest.raises(ValueError):
        make_bench(gain_v_per_a=1e8, mode="low_noise")


def test_bandwidth_limit_caps_simulated_bandwidth(bench):
    bench.amplifier.configure(gain_v_per_a=1e3, mode="low_noise", bandwidth_limit="1MHz")
    assert bench.world.amplifier.bandwidth_hz == 1e6


def test_output_is_minus_gain_times_current():
    bench = make_bench(gain_v_per_a=1e7, mode="low_noise")
    smu_bias(bench, 0.6)
    scope_window(bench, mode="AUTO")
    bench.scope.ch_1.scale = 0.02
    bench.scope.ch_1.position = 4.0
    bench.scope.single_acquisition(1.0)
    _, output_v = bench.scope.read_waveform(1)
    expected_v = -1e7 * bench.world.device.conductance_s(0.6) * 0.6
    assert output_v.mean() == pytest.approx(expected_v, rel=0.01)


def test_first_order_step_response():
    amplifier = SimulatedDHPCA100(np.random.default_rng(0))
    amplifier.apply_control_word(encode_control_bits(amplifier.setting))  # 1e6 V/A, 1.8 MHz
    tau_s = 1.0 / (2.0 * math.pi * amplifier.bandwidth_hz)
    dt_s = tau_s / 100
    output = amplifier.respond(np.full(500, 1e-6), dt_s, previous_output_v=0.0)
    assert output[99] == pytest.approx(-1.0 * (1 - math.exp(-1.0)), rel=1e-2)
    assert output[-1] == pytest.approx(-1.0, rel=1e-2)


def test_overload_line_reports_clipping(bench):
    smu_bias(bench, 0.6)
    pulse_burst(bench, 2.4, 100e-6)
    scope_window(bench, level_v=1.5)
    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    _, output_v = bench.scope.read_waveform(1)
    assert output_v.min() <= -0.89  # clipped at the bottom of the screen or the swing
    assert bench.amplifier.overload_line_active() is True

    bench.amplifier.gain_v_per_a = 1e3
    bench.scope.trigger_mode = "AUTO"
    bench.scope.single_acquisition(1.0)
    assert bench.amplifier.overload_line_active() is False


def test_control_line_timeout_reaches_driver(bench):
    bench.world.faults.amplifier.timeout_at(1)
    with pytest.raises(InstrumentTimeout):
        bench.amplifier.gain_v_per_a = 1e5
    assert bench.amplifier.gain_v_per_a == 1e6  # the driver keeps its last good setting


@pytest.mark.parametrize("decay", [0.99999, 0.9, 0.5, 1e-3, 1e-10])
def test_lowpass_matches_reference_loop(decay):
    target = np.random.default_rng(4).standard_normal(3000)
    expected = np.empty_like(target)
    previous = 0.25
    for index, value in enumerate(target):
        previous = decay * previous + (1.0 - decay) * value
        expected[index] = previous
    np.testing.assert_allclose(first_order_lowpass(target, decay, 0.25), expected, rtol=0, atol=1e-12)
