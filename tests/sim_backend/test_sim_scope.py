"""The real RohdeSchwarzRTE1104 driver against the simulated scope: settings, triggers, records."""

import numpy as np
import pytest
from sim_bench_helpers import make_bench, pulse_burst, scope_window, smu_bias

from instruments.errors import InstrumentError, InstrumentTimeout

CHANNEL_ROUND_TRIPS = [
    ("state", True, True),
    ("state", False, False),
    ("scale", 0.2, 0.2),
    ("offset", -0.3, -0.3),
    ("position", 2.5, 2.5),
    ("coupling", "DC", "DC"),
    ("coupling", "DCLimit", "DCLimit"),
    ("coupling", "AC", "AC"),
    ("trigger_level", 0.7, 0.7),
]

SCOPE_ROUND_TRIPS = [
    ("timebase_scale", 2e-4, 2e-4),
    ("timebase_position", 1e-4, 1e-4),
    ("timebase_reference", 20.0, 20.0),
    ("trigger_source", "CHAN2", "CHAN2"),
    ("trigger_source", "EXT", "EXT"),
    ("trigger_slope", "NEG", "NEG"),
    ("trigger_slope", "EITH", "EITH"),
    ("trigger_mode", "NORM", "NORM"),
    ("trigger_mode", "FRE", "FRE"),
    ("external_trigger_level", 1.4, 1.4),
]


@pytest.mark.parametrize("name,value,expected", CHANNEL_ROUND_TRIPS)
@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_channel_property_round_trip(bench, number, name, value, expected):
    channel = getattr(bench.scope, f"ch_{number}")
    setattr(channel, name, value)
    assert getattr(channel, name) == expected


@pytest.mark.parametrize("name,value,expected", SCOPE_ROUND_TRIPS)
def test_scope_property_round_trip(bench, name, value, expected):
    setattr(bench.scope, name, value)
    assert getattr(bench.scope, name) == expected


def test_record_length_and_sample_rate_are_coupled(bench):
    scope = bench.scope
    scope.timebase_scale = 1e-3  # 10 ms window
    scope.sample_rate = 1e6
    assert scope.record_length == 10_000
    scope.record_length = 5000
    assert scope.sample_rate == pytest.approx(5e5)
    scope.timebase_scale = 2e-3
    assert scope.sample_rate == pytest.approx(5e5)
    assert scope.record_length == 10_000


def test_sample_rate_beyond_record_memory_is_rejected(bench):
    bench.scope.timebase_scale = 1.0
    with pytest.raises(InstrumentError) as error:
        bench.scope.sample_rate = 1e8  # 1e9 samples over 10 s
    assert "-222" in str(error.value)


def test_triggered_pulse_and_read_current(bench):
    smu_bias(bench, 0.6)
    pulse_burst(bench, 1.4, 100e-6)
    scope_window(bench, level_v=1.2)
    bench.clock.sleep(2.0)
    conductance_s = bench.world.device.conductance_s(0.6)

    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    time_s, pt_v = bench.scope.read_waveform(2)
    _, amplifier_v = bench.scope.read_waveform(1)

    assert time_s[0] == pytest.approx(-100e-6)
    assert time_s.size == 10_000
    in_pulse = (time_s > 2e-6) & (time_s < 98e-6)
    assert np.median(pt_v[in_pulse]) == pytest.approx(2.0, abs=0.03)
    assert np.all(pt_v[(time_s > 102e-6)] < 0.7)
    width_s = np.count_nonzero(pt_v > 1.3) * 1e-7
    assert width_s == pytest.approx(100e-6, abs=0.5e-6)

    current_a = bench.amplifier.current_a(amplifier_v[time_s < -1e-6])
    assert current_a.mean() / 0.6 == pytest.approx(conductance_s, rel=0.01)


def test_read_conductance_rises_after_pulse(bench):
    smu_bias(bench, 0.6)
    pulse_burst(bench, 2.4, 100e-6)
    scope_window(bench, scale_s=1e-3, sample_rate_hz=1e6, level_v=1.5)
    bench.clock.sleep(2.0)
    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    time_s, amplifier_v = bench.scope.read_waveform(1)
    current_a = bench.amplifier.current_a(amplifier_v, allow_overload=True)
    before_s = current_a[time_s < -10e-6].mean() / 0.6
    after_s = current_a[time_s > 200e-6].mean() / 0.6
    assert after_s - before_s > 2e-9  # a 3 V pulse raises F by several nS
    assert after_s == pytest.approx(bench.world.device.conductance_s(0.6), rel=0.02)


def test_auto_mode_completes_on_dc(bench):
    smu_bias(bench, 0.6)
    scope_window(bench, mode="AUTO")
    bench.scope.single_acquisition(1.0)
    assert bench.clock.now() == pytest.approx(900e-6)
    _, amplifier_v = bench.scope.read_waveform(1)
    current_a = bench.amplifier.current_a(amplifier_v)
    assert current_a.mean() / 0.6 == pytest.approx(bench.world.device.conductance_s(0.6), rel=0.01)


def test_auto_mode_triggers_itself_during_wait(bench):
    pulse_burst(bench, 2.0, 100e-6)
    scope_window(bench, mode="AUTO")
    bench.scope.arm()
    bench.clock.sleep(1.0)  # longer than the auto-trigger timeout of 0.1 s
    assert bench.world.scope.state == "IDLE"
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.1)
    bench.generator.trigger()
    _, pt_v = bench.scope.read_waveform(2)
    assert pt_v.max() < 0.1  # the record was taken before the pulse


def test_normal_mode_without_trigger_times_out(bench):
    scope_window(bench, mode="NORM")
    bench.scope.arm()
    with pytest.raises(InstrumentTimeout):
        bench.scope.wait_for_acquisition(1.5)
    assert bench.clock.now() == pytest.approx(1.5)
    assert bench.world.scope.state == "ARMED"  # a timeout does not stop the acquisition
    bench.scope.stop()
    assert bench.scope.check_errors() == []


def test_normal_mode_waits_for_running_bursts(bench):
    pulse_burst(bench, 2.0, 100e-6)
    channel = bench.generator.ch_1
    channel.output = False
    channel.burst_period = 0.3
    channel.trigger_source = "IMM"
    channel.output = True
    scope_window(bench, mode="NORM", level_v=1.0)
    bench.clock.sleep(0.05)
    bench.scope.arm()
    bench.scope.wait_for_acquisition(2.0)
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.3, abs=1e-6)
    assert bench.clock.now() == pytest.approx(0.301, abs=1e-6)  # the burst piece runs to its end


def test_external_trigger_on_burst_start(bench):
    pulse_burst(bench, 2.0, 100e-6)
    scope_window(bench, trigger_source="EXT")
    bench.clock.sleep(0.5)
    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.5)


def test_channel_one_trigger_on_falling_amplifier_output(bench):
    smu_bias(bench, 0.6)
    pulse_burst(bench, 1.0, 100e-6)
    scope_window(bench, trigger_source="CHAN1", level_v=-0.05)
    bench.scope.trigger_slope = "NEG"  # the amplifier inverts: more current, lower output
    bench.clock.sleep(0.2)
    bench.scope.arm()
    bench.generator.trigger()
    bench.scope.wait_for_acquisition(1.0)
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.2, abs=2e-6)


def test_step_of_dc_level_triggers_channel_two(bench):
    scope_window(bench, trigger_source="CHAN2", level_v=0.3)
    bench.scope.arm()
    bench.clock.sleep(0.01)
    smu_bias(bench, 0.6)
    bench.clock.sleep(0.01)
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.01)
    time_s, pt_v = bench.scope.read_waveform(2)
    assert np.all(pt_v[time_s < -1e-8] < 0.05)
    assert np.all(np.abs(pt_v[time_s > 1e-8] - 0.6) < 0.05)


def test_header_time_axis_and_ascii_format(bench):
    scope_window(bench, mode="AUTO")
    bench.scope.single_acquisition(1.0)
    adapter = bench.scope.adapter
    adapter.write("CHAN1:DATA:HEAD?")
    x_start, x_stop, length, values = adapter.read().split(",")
    assert float(x_start) == pytest.approx(-100e-6)
    assert float(x_stop) == pytest.approx(900e-6 - 1e-7)
    assert int(length) == 10_000
    assert values == "1"
    adapter.write("FORM ASC")
    adapter.write("CHAN2:DATA?")
    ascii_values = np.array(adapter.read().split(","), dtype=float)
    _, binary_values = bench.scope.read_waveform(2)
    np.testing.assert_allclose(ascii_values, binary_values, rtol=1e-6, atol=1e-9)


def test_big_endian_download(bench):
    scope_window(bench, mode="AUTO")
    bench.scope.single_acquisition(1.0)
    _, little = bench.scope.read_waveform(2)
    adapter = bench.scope.adapter
    adapter.write("FORM:BORD MSBF")
    adapter.write("CHAN2:DATA?")
    raw = adapter.read_bytes(-1)
    digits = int(raw[1:2])
    length = int(raw[2:2 + digits])
    payload = raw[2 + digits:2 + digits + length]
    np.testing.assert_array_equal(np.frombuffer(payload, dtype=">f4"), little.astype(np.float32))


def test_data_before_any_acquisition_is_an_error(bench):
    bench.scope.ch_1.state = True
    # A query that fails sends no reply; the driver then reads the queue into its error.
    with pytest.raises(InstrumentTimeout, match="-230,") as info:
        bench.scope.read_waveform(1)
    assert info.value.command == "CHAN1:DATA:HEAD?"
    assert bench.world.scope.errors == []


def test_data_of_disabled_channel_is_an_error(bench):
    scope_window(bench, mode="AUTO")
    bench.scope.single_acquisition(1.0)
    with pytest.raises(InstrumentTimeout, match="-221,"):
        bench.scope.read_waveform(3)
    assert bench.world.scope.errors == []


def test_vertical_clipping_and_quantisation(bench):
    smu_bias(bench, 0.6)
    scope_window(bench, mode="AUTO")
    bench.scope.ch_2.scale = 0.01
    bench.scope.ch_2.position = 0.0  # screen spans -50 mV to +50 mV
    bench.scope.single_acquisition(1.0)
    _, pt_v = bench.scope.read_waveform(2)
    assert np.all(pt_v == pytest.approx(0.05))
    bench.scope.ch_2.scale = 0.5
    bench.scope.ch_2.position = -4.0
    bench.scope.single_acquisition(1.0)
    _, pt_v = bench.scope.read_waveform(2)
    steps = np.unique(np.round(pt_v / (0.5 / 25), 6))
    assert np.allclose(steps, np.round(steps))


def test_stop_disarms(bench):
    scope_window(bench, mode="NORM")
    bench.scope.arm()
    bench.scope.stop()
    bench.scope.wait_for_acquisition(1.0)
    assert bench.clock.now() == 0.0


def test_scope_noise_is_seeded():
    records = []
    for _ in range(2):
        bench = make_bench(seed=3)
        smu_bias(bench, 0.6)
        scope_window(bench, mode="AUTO")
        bench.scope.single_acquisition(1.0)
        records.append(bench.scope.read_waveform(1)[1])
    np.testing.assert_array_equal(records[0], records[1])


def test_free_run_triggers_when_time_passes(bench):
    scope_window(bench, mode="FRE")
    bench.clock.sleep(0.5)
    bench.scope.arm()
    bench.clock.sleep(0.01)
    assert bench.world.scope.record.trigger_time_s == pytest.approx(0.5)
