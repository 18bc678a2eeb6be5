"""Injected faults reach the drivers as InstrumentTimeout, InstrumentConnectionError or InstrumentError."""

import pytest
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from sim_bench_helpers import smu_bias

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from sim_backend.faults import FaultInjector


def test_generator_query_timeout(bench):
    bench.world.faults.generator.timeout_at(1)
    with pytest.raises(InstrumentTimeout) as error:
        bench.generator.ch_1.frequency  # noqa: B018 - the query is the test
    assert "SOUR1:FREQ?" in str(error.value)
    assert bench.generator.ch_1.frequency == 1000.0  # a one-off timeout


def test_generator_write_timeout(bench):
    bench.world.faults.generator.timeout_at(1)
    with pytest.raises(InstrumentTimeout) as error:
        bench.generator.ch_1.phase = 10.0
    assert "SOUR1:PHAS" in str(error.value)


def test_persistent_timeout(bench):
    bench.world.faults.scope.timeout_at(3, persistent=True)
    bench.scope.timebase_scale = 1e-3  # commands 1 (the setting) and 2 (SYST:ERR?) pass
    for _ in range(3):
        with pytest.raises(InstrumentTimeout):
            bench.scope.timebase_scale  # noqa: B018


def test_scope_connection_lost_is_permanent(bench):
    bench.world.faults.scope.connection_lost_at(1)
    for _ in range(2):
        with pytest.raises(InstrumentConnectionError):
            bench.scope.ch_1.scale = 0.1


def test_adapter_raises_visa_status_codes(bench):
    adapter = bench.generator.adapter
    bench.world.faults.generator.timeout_at(1)
    adapter.write("SOUR1:FREQ?")
    with pytest.raises(VisaIOError) as error:
        adapter.read()
    assert error.value.error_code == StatusCode.error_timeout
    bench.world.faults.generator.connection_lost_at(1)
    with pytest.raises(VisaIOError) as error:
        adapter.write("*IDN?")
    assert error.value.error_code == StatusCode.error_connection_lost


def test_injected_instrument_error_names_command(bench):
    bench.world.faults.generator.instrument_error_at(1, -310, "System error")
    with pytest.raises(InstrumentError) as error:
        bench.generator.ch_1.trigger_source = "BUS"
    assert '-310,"System error"' in str(error.value)
    assert "TRIG1:SOUR BUS" in str(error.value)
    assert bench.generator.ch_1.trigger_source == "IMM"  # the command was not executed


def test_smu_faults_reach_driver(bench):
    faults = bench.world.faults.smu
    faults.timeout_at(1)
    with pytest.raises(InstrumentTimeout):
        bench.smu.source_voltage_v = 0.1
    faults.instrument_error_at(1, -300, "Device-specific error")
    with pytest.raises(InstrumentError) as error:
        bench.smu.aperture_s = 1e-3
    assert "-300" in str(error.value)
    with pytest.raises(InstrumentError):
        bench.smu.check_errors()  # the injected error is in the queue too
    faults.connection_lost_at(1)
    with pytest.raises(InstrumentConnectionError):
        bench.smu.identify()


def test_bench_shutdown_continues_past_failed_instrument(bench):
    smu_bias(bench, 0.6)
    bench.generator.ch_1.set_dc_voltage_v(0.5)
    bench.generator.ch_1.output = True
    bench.world.faults.generator.connection_lost_at(1)
    failures = bench.shutdown()
    assert [role for role, _ in failures] == ["generator"]
    assert bench.smu.output_enabled is False
    assert bench.world.smu.get_attribute("VOLTAGE_LEVEL") == 0.0


def test_commands_are_counted_from_scheduling():
    faults = FaultInjector("test")
    faults.next_command()
    faults.timeout_at(2)
    assert faults.next_command() is None
    assert faults.next_command().kind.value == "timeout"
    assert faults.next_command() is None
    with pytest.raises(ValueError):
        faults.timeout_at(0)
    with pytest.raises(ValueError):
        faults.instrument_error_at(1, 5, "positive")


def test_device_drift_shows_in_reads(bench):
    smu_bias(bench, 0.6, aperture_s=10e-3)
    first = bench.smu.measure().current_a / 0.6
    bench.world.device.set_drift(1e-12)
    bench.clock.sleep(1000.0)
    second = bench.smu.measure().current_a / 0.6
    assert second - first == pytest.approx(1e-9, rel=0.1)
