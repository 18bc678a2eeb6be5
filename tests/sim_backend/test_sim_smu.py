"""The real KeysightM9601A driver against the simulated SMU session."""

import numpy as np
import pytest
from sim_bench_helpers import pulse_burst, smu_bias

from instruments.errors import InstrumentError, InstrumentTimeout


def test_settings_round_trip(bench):
    smu = bench.smu
    smu.current_limit_a = 2e-6
    smu.source_voltage_v = -0.4
    smu.aperture_s = 5e-3
    smu.source_delay_s = 1e-3
    assert smu.current_limit_a == 2e-6
    assert smu.source_voltage_v == -0.4
    assert smu.aperture_s == 5e-3
    assert smu.source_delay_s == 1e-3
    assert smu.output_enabled is False
    smu.output_enabled = True
    assert smu.output_enabled is True
    assert "M9601A" in smu.identify()


def test_measure_gives_device_conductance(bench):
    smu_bias(bench, 0.6, aperture_s=10e-3)
    reading = bench.smu.measure()
    assert reading.voltage_v == 0.6
    assert reading.current_a / 0.6 == pytest.approx(bench.world.device.conductance_s(0.6), rel=2e-3)
    assert bench.clock.now() == pytest.approx(10e-3)


def test_measure_with_output_off_reads_open_relay(bench):
    bench.smu.source_voltage_v = 0.6
    reading = bench.smu.measure()
    assert abs(reading.current_a) < 1e-12
    assert reading.voltage_v == 0.0


def test_sweep_points_times_and_time_accounting(bench):
    smu_bias(bench, 0.0)
    voltages = np.linspace(-1.0, 1.0, 21)
    data = bench.smu.sweep(voltages, aperture_s=2e-3, source_delay_s=1e-3)
    np.testing.assert_allclose(data["voltage_v"], voltages)
    np.testing.assert_allclose(data["time_s"], 1e-3 + 3e-3 * np.arange(21))
    assert bench.clock.now() == pytest.approx(21 * 3e-3)
    assert np.all(np.sign(data["current_a"][voltages != 0]) == np.sign(voltages[voltages != 0]))


def test_iv_sweep_counter_clockwise_hysteresis(bench):
    smu_bias(bench, 0.0)
    up = np.linspace(0.0, 2.0, 41)
    voltages = np.concatenate([up, up[::-1][1:]])
    data = bench.smu.sweep(voltages, aperture_s=20e-3, source_delay_s=0.0)
    current = data["current_a"]
    rising = current[20]  # 1.0 V on the way up
    falling = current[len(up) + 19]  # 1.0 V on the way back
    assert voltages[20] == voltages[len(up) + 19] == pytest.approx(1.0)
    assert falling > rising  # counter-clockwise: more current on the way back
    assert current.max() / 2.0 > 100e-9  # hundreds of nS at +2 V


def test_output_holds_last_list_voltage_until_level_written(bench):
    smu_bias(bench, 0.0)
    session = bench.world.smu
    session.set_attribute("SWEEP_MODE", "LIST")
    session.set_attribute("VOLTAGE_LIST", (0.1, 0.2, 0.3))
    session.set_attribute("TRIGGER_COUNT", 3)
    session.initiate()
    session.fetch(1.0)
    assert bench.world.present_voltage_v() == pytest.approx(0.3)
    session.set_attribute("VOLTAGE_LEVEL", 0.05)
    assert bench.world.present_voltage_v() == pytest.approx(0.05)


def test_list_length_mismatch_raises(bench):
    session = bench.world.smu
    session.set_attribute("SWEEP_MODE", "LIST")
    session.set_attribute("VOLTAGE_LIST", (0.1, 0.2))
    session.set_attribute("TRIGGER_COUNT", 3)
    with pytest.raises(InstrumentError):
        session.initiate()


def test_fetch_without_initiate_raises(bench):
    with pytest.raises(InstrumentError):
        bench.world.smu.fetch(1.0)


def test_fetch_timeout_lets_time_pass(bench):
    smu_bias(bench, 0.6, aperture_s=0.5)
    session = bench.world.smu
    session.set_attribute("TRIGGER_COUNT", 10)
    session.initiate()
    with pytest.raises(InstrumentTimeout):
        session.fetch(1.0)
    assert bench.clock.now() == pytest.approx(1.0)
    data = session.fetch(10.0)
    assert data["current_a"].size == 10
    assert bench.clock.now() == pytest.approx(5.0)


def test_compliance_limits_current_and_voltage(bench):
    smu_bias(bench, 0.0)
    bench.smu.current_limit_a = 1e-8
    data = bench.smu.sweep([0.3, 2.0], aperture_s=1e-3, source_delay_s=0.0)
    assert abs(data["current_a"][0]) < 1e-8
    assert data["voltage_v"][0] == 0.3
    assert data["current_a"][1] == pytest.approx(1e-8, abs=1e-12)
    assert data["voltage_v"][1] < 2.0


def test_invalid_value_goes_to_error_queue(bench):
    session = bench.world.smu
    session.set_attribute("MEASUREMENT_APERTURE", -1.0)
    assert session.get_attribute("MEASUREMENT_APERTURE") == 1e-3
    with pytest.raises(InstrumentError) as error:
        bench.smu.check_errors()
    assert "-222" in str(error.value)
    bench.smu.check_errors()  # the queue is empty now


def test_unknown_attribute_raises(bench):
    with pytest.raises(InstrumentError):
        bench.world.smu.set_attribute("NOT_AN_ATTRIBUTE", 1)


def test_background_acquisition_sees_pulse(bench):
    smu_bias(bench, 0.0, aperture_s=10e-3)
    pulse_burst(bench, 2.5, 500e-6)
    session = bench.world.smu
    session.set_attribute("VOLTAGE_LEVEL", 0.6)
    session.set_attribute("TRIGGER_COUNT", 50)
    session.initiate()
    bench.clock.sleep(0.2)
    bench.generator.trigger()
    data = session.fetch(5.0)
    conductance = data["current_a"] / 0.6
    assert bench.clock.now() == pytest.approx(0.5)
    pulse_point = 20  # 0.2 s into the acquisition, 10 ms per point
    assert conductance[pulse_point] > 5 * conductance[:pulse_point].mean()  # the pulse current
    assert conductance[pulse_point + 2:].mean() > conductance[:pulse_point].mean() + 5e-9  # F rose


def test_shutdown_ramps_to_zero_and_turns_off(bench):
    smu_bias(bench, 0.6)
    bench.smu.shutdown()
    assert bench.smu.output_enabled is False
    assert bench.smu.source_voltage_v == 0.0
    assert bench.world.present_voltage_v() == 0.0
