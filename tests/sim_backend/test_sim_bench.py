"""The simulated bench as a whole: factory, virtual time, determinism, device safety records."""

import json
import math

import numpy as np
import pytest
from sim_bench_helpers import count_device_samples, make_bench, pulse_burst, scope_window, smu_bias

from instruments.clock import Clock
from sim_backend.virtual_clock import VirtualClock
from sim_backend.world import SimulationLimitError


def test_factory_builds_sim_bench(bench):
    assert bench.backend == "sim"
    assert isinstance(bench.clock, VirtualClock)
    for method in vars(Clock):
        if not method.startswith("_"):
            assert callable(getattr(bench.clock, method))
    assert bench.world.device.electroformed is False
    assert bench.description["backend"] == "sim"
    assert bench.description["seed"] == 7
    json.dumps(bench.description)  # plain values only: it goes into results-file headers


def test_factory_rejects_bad_arguments():
    with pytest.raises(ValueError):
        make_bench(seed=-1)
    with pytest.raises(ValueError):
        make_bench(generator_load="fifty")
    with pytest.raises(ValueError):
        make_bench(generator_load=0.5)


def test_generator_load_setting_at_build():
    assert make_bench(generator_load="INF").generator.ch_1.output_load == math.inf
    assert make_bench(generator_load=50).generator.ch_1.output_load == 50.0


def run_script(seed: int):
    """Run a short fixed sequence and return what the scope and the SMU recorded."""
    bench = make_bench(seed=seed)
    smu_bias(bench, 0.6)
    pulse_burst(bench, 1.6, 100e-6)
    scope_window(bench, level_v=1.2)
    bench.clock.sleep(1.0)
    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    _, amplifier_v = bench.scope.read_waveform(1)
    readings = bench.smu.sweep(np.linspace(-1.0, 1.0, 11), aperture_s=1e-3, source_delay_s=0.0)
    return amplifier_v, readings["current_a"]


def test_same_seed_is_bit_identical():
    first = run_script(seed=11)
    second = run_script(seed=11)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_different_seed_differs():
    first = run_script(seed=11)
    second = run_script(seed=12)
    assert not np.array_equal(first[0], second[0])


def test_virtual_time_accounting(bench):
    smu_bias(bench, 0.6, aperture_s=2e-3)
    pulse_burst(bench, 1.4, 100e-6, cycles=10, period_s=1e-3)
    scope_window(bench, scale_s=1e-3, sample_rate_hz=1e6, reference_pct=10.0, level_v=1.2)
    expected_s = 0.0

    bench.clock.sleep(240.0)
    expected_s += 240.0
    bench.smu.measure()
    expected_s += 2e-3
    bench.generator.trigger()  # 10 periods of 1 ms
    expected_s += 10e-3
    bench.scope.arm()
    bench.generator.trigger()  # the burst, then the window runs to 9 ms after the trigger
    expected_s += 10e-3
    bench.scope.wait_for_acquisition(1.0)
    bench.smu.sweep([0.1, 0.2, 0.3], aperture_s=1e-3, source_delay_s=4e-3)
    expected_s += 3 * 5e-3
    assert bench.clock.now() == pytest.approx(expected_s, abs=1e-9)


def test_long_wait_costs_no_samples(bench):
    smu_bias(bench, 0.6)
    counts = count_device_samples(bench)
    bench.clock.sleep(240.0)
    bench.clock.sleep(3600.0)
    assert sum(counts) == 0
    bench.smu.measure()
    assert sum(counts) == 8  # eight samples for the one reading


def test_wait_relaxes_device_at_applied_bias(bench):
    smu_bias(bench, 0.0)
    pulse_burst(bench, 3.0, 500e-6)
    bench.generator.trigger()
    f_after_pulse = bench.world.device.state.f_s
    bench.smu.source_voltage_v = -0.6
    bench.clock.sleep(0.4)
    f_negative = bench.world.device.state.f_s
    assert f_negative < 0.5 * f_after_pulse  # tau(-0.6 V) is a few hundred ms


def test_wait_with_fast_running_waveform_is_rejected(bench):
    channel = bench.generator.ch_1
    channel.function = "SIN"
    channel.frequency = 1e6
    channel.amplitude = 0.2
    channel.output = True
    with pytest.raises(SimulationLimitError):
        bench.clock.sleep(240.0)
    assert bench.clock.now() == 0.0


def test_voltage_beyond_limits_is_stopped_by_driver(bench):
    with pytest.raises(ValueError):
        bench.generator.ch_1.set_dc_voltage_v(4.5)
    assert bench.world.device.forming_events == []


def test_forming_recorded_past_driver(bench):
    adapter = bench.generator.adapter
    adapter.write("OUTP1:LOAD INF;:SOUR1:FUNC DC;VOLT:OFFS 4.5;:OUTP1 ON")
    bench.clock.sleep(0.01)
    events = bench.world.device.forming_events
    assert bench.world.device.electroformed is True
    assert bench.world.max_device_voltage_v == pytest.approx(4.5)
    assert len(events) == 1
    assert events[0].voltage_v == pytest.approx(4.5)


def test_clock_sleep_validation():
    clock = VirtualClock()
    clock.sleep(1.5)
    assert clock.now() == 1.5
    with pytest.raises(ValueError):
        clock.sleep(-1.0)
    with pytest.raises(ValueError):
        clock.sleep(float("nan"))
    with pytest.raises(ValueError):
        clock.advance_to(1.0)


def test_clock_start_time():
    bench = make_bench(start_time_s=100.0)
    smu_bias(bench, 0.6, aperture_s=1e-3)
    bench.smu.measure()
    assert bench.clock.now() == pytest.approx(100.001)
