"""The real Keysight33500B driver against the simulated 33500B: settings, uploads, output physics."""

import math

import numpy as np
import pytest
from sim_bench_helpers import make_bench, pulse_burst

from instruments.errors import InstrumentError

# (property, value written, value read back) for the channel properties.
CHANNEL_ROUND_TRIPS = [
    ("frequency", 2500.0, 2500.0),
    ("phase", 45.0, 45.0),
    ("square_dutycycle", 30.0, 30.0),
    ("ramp_symmetry", 40.0, 40.0),
    ("pulse_period", 2e-3, 2e-3),
    ("pulse_width", 2e-4, 2e-4),
    ("pulse_transition", 2e-8, 2e-8),
    ("pulse_leading_edge", 3e-8, 3e-8),
    ("pulse_trailing_edge", 4e-8, 4e-8),
    ("pulse_hold", "DCYC", "DCYC"),
    ("pulse_dutycycle", 20.0, 20.0),
    ("burst_state", True, True),
    ("burst_mode", "GAT", "GAT"),
    ("burst_ncycles", 100, 100),
    ("burst_ncycles", "INF", math.inf),
    ("burst_period", 0.5, 0.5),
    ("trigger_source", "BUS", "BUS"),
    ("trigger_timer", 0.25, 0.25),
    ("output_load", 50.0, 50.0),
    ("output_load", "INF", math.inf),
    ("output_load", 1000.0, 1000.0),
    ("polarity", "INV", "INV"),
    ("amplitude_unit", "VPP", "VPP"),
    ("arb_srate", 1e6, 1e6),
    ("arb_filter", "OFF", "OFF"),
    ("arb_advance", "TRIG", "TRIG"),
]


@pytest.mark.parametrize("name,value,expected", CHANNEL_ROUND_TRIPS)
@pytest.mark.parametrize("number", [1, 2])
def test_channel_property_round_trip(bench, number, name, value, expected):
    channel = getattr(bench.generator, f"ch_{number}")
    setattr(channel, name, value)
    assert getattr(channel, name) == expected


def test_voltage_properties_round_trip(bench):
    channel = bench.generator.ch_1
    channel.function = "SIN"
    channel.amplitude = 1.2
    channel.offset = 0.3
    assert channel.function == "SIN"
    assert channel.amplitude == pytest.approx(1.2)
    assert channel.offset == pytest.approx(0.3)
    assert channel.voltage_high == pytest.approx(0.9)
    assert channel.voltage_low == pytest.approx(-0.3)
    channel.voltage_high = 1.0
    channel.voltage_low = -1.0
    assert channel.amplitude == pytest.approx(2.0)
    assert channel.offset == pytest.approx(0.0)


def test_output_and_byte_order_round_trip(bench):
    bench.generator.ch_1.function = "DC"
    bench.generator.ch_1.output = True
    assert bench.generator.ch_1.output is True
    bench.generator.byte_order = "NORM"
    assert bench.generator.byte_order == "NORM"


def test_instrument_error_reaches_driver(bench):
    channel = bench.generator.ch_1
    channel.pulse_period = 1e-3
    with pytest.raises(InstrumentError) as error:
        channel.pulse_width = 2e-3  # wider than the period: the instrument refuses
    assert "-221" in str(error.value)
    assert "SOUR1:FUNC:PULS:WIDT" in str(error.value)
    assert channel.pulse_width == pytest.approx(100e-6)


def test_fifty_ohm_setting_doubles_device_voltage():
    bench = make_bench(generator_load="INF")
    channel = bench.generator.ch_1
    channel.output_load = 50.0
    channel.function = "DC"
    channel.offset = 1.0  # programmed for a 50 ohm load
    channel.output = True
    bench.clock.sleep(0.1)
    assert bench.world.present_voltage_v() == pytest.approx(2.0)
    assert bench.world.max_device_voltage_v == pytest.approx(2.0)


def test_high_z_setting_gives_programmed_voltage():
    bench = make_bench(generator_load="INF")
    channel = bench.generator.ch_1
    channel.set_dc_voltage_v(1.5)
    channel.output = True
    assert channel.offset == pytest.approx(1.5)
    assert bench.world.present_voltage_v() == pytest.approx(1.5)


def test_load_change_rescales_programmed_values(bench):
    channel = bench.generator.ch_1
    channel.output_load = "INF"
    channel.set_dc_voltage_v(1.2)
    channel.output_load = 50.0
    assert channel.offset == pytest.approx(0.6)
    channel.output = True
    assert bench.world.present_voltage_v() == pytest.approx(1.2)


def test_driver_accounts_for_fifty_ohm_setting():
    bench = make_bench(generator_load=50.0)
    channel = bench.generator.ch_1
    channel.set_dc_voltage_v(1.5)
    assert channel.offset == pytest.approx(0.75)
    channel.output = True
    assert bench.world.present_voltage_v() == pytest.approx(1.5)


def test_negative_voltage_reaches_device_negative(bench):
    channel = bench.generator.ch_1
    channel.set_dc_voltage_v(-0.5)
    channel.output = True
    bench.clock.sleep(1.0)
    assert bench.world.present_voltage_v() == pytest.approx(-0.5)
    assert bench.world.min_device_voltage_v == pytest.approx(-0.5)
    assert bench.world.max_device_voltage_v == 0.0


def test_inverted_polarity_mirrors_about_offset(bench):
    channel = bench.generator.ch_1
    pulse_burst(bench, 1.0, 100e-6)
    channel.output = False
    channel.set_pulse_levels_v(-1.0, 1.0)
    channel.polarity = "INV"
    channel.output = True
    assert bench.world.present_voltage_v() == pytest.approx(1.0)  # idles at the mirrored low level
    bench.generator.trigger()
    assert bench.world.min_device_voltage_v == pytest.approx(-1.0, rel=1e-6)
    assert bench.world.max_device_voltage_v == pytest.approx(1.0, rel=1e-6)


def test_arb_upload_little_endian_and_playback(bench):
    channel = bench.generator.ch_1
    samples_v = np.concatenate([np.zeros(10), np.full(20, 1.8), np.full(10, -0.4), np.zeros(10)])
    upload = channel.upload_waveform_v("STEP3", samples_v, 1e5)
    stored = bench.world.generator.channels[1].arbs["STEP3"]
    assert stored.size == samples_v.size
    assert channel.arb_file == "STEP3"
    assert channel.function == "ARB"

    channel.burst_ncycles = 1
    channel.burst_state = True
    channel.trigger_source = "BUS"
    channel.output = True
    counts_before = bench.world.device.state.pulse_count
    bench.generator.trigger()
    assert bench.clock.now() == pytest.approx(samples_v.size / 1e5)
    assert bench.world.max_device_voltage_v == pytest.approx(upload.samples_v.max(), abs=1e-3)
    assert bench.world.min_device_voltage_v == pytest.approx(-0.4, abs=1e-3)
    assert bench.world.device.state.pulse_count == counts_before + 1


def test_arb_dac_block_honours_big_endian(bench):
    adapter = bench.generator.adapter
    codes = np.array([0, 32767, -32767, 16384, 0, 0, 0, 0], dtype=">i2")
    adapter.write("FORM:BORD NORM")
    adapter.write_bytes(b"SOUR1:DATA:ARB:DAC BIG1,#216" + codes.tobytes() + b"\n")
    adapter.write("SYST:ERR?")
    assert adapter.read() == '+0,"No error"'
    stored = bench.world.generator.channels[1].arbs["BIG1"]
    np.testing.assert_allclose(stored, codes.astype(float) / 32767.0)


def test_arb_catalog_clear_and_duplicate(bench):
    channel = bench.generator.ch_1
    channel.upload_waveform_dac("ONE", np.zeros(8, dtype=int))
    with pytest.raises(InstrumentError) as error:
        channel.upload_waveform_dac("ONE", np.zeros(8, dtype=int))
    assert "already exists" in str(error.value)
    adapter = bench.generator.adapter
    adapter.write("SOUR1:DATA:VOL:CAT?")
    assert adapter.read() == '"ONE"'
    channel.clear_volatile_memory()
    adapter.write("SOUR1:DATA:VOL:CAT?")
    assert adapter.read() == '""'


def test_reset_keeps_arbs_and_sets_fifty_ohm():
    bench = make_bench(generator_load="INF")
    bench.generator.ch_1.upload_waveform_dac("KEEP", np.zeros(8, dtype=int))
    bench.generator.reset()
    assert bench.generator.ch_1.output_load == 50.0
    assert "KEEP" in bench.world.generator.channels[1].arbs


def test_burst_takes_its_length_in_virtual_time(bench):
    pulse_burst(bench, 2.0, 100e-6, cycles=5, period_s=2e-3)
    bench.generator.trigger()
    assert bench.clock.now() == pytest.approx(10e-3)
    assert bench.world.device.state.pulse_count == 5


def test_channel_trigger_fires_its_burst(bench):
    pulse_burst(bench, 2.0, 50e-6, cycles=3)
    bench.generator.ch_1.trigger()
    assert bench.world.device.state.pulse_count == 3
    assert bench.clock.now() == pytest.approx(3e-3)


def test_trigger_delay_postpones_burst(bench):
    pulse_burst(bench, 2.0, 50e-6)
    bench.generator.adapter.write("TRIG1:DEL 0.01")
    bench.generator.trigger()
    assert bench.clock.now() == pytest.approx(0.011)


def test_immediate_bursts_repeat_during_wait(bench):
    pulse_burst(bench, 2.0, 100e-6, cycles=2)
    channel = bench.generator.ch_1
    channel.output = False
    channel.burst_period = 0.1
    channel.trigger_source = "IMM"
    channel.output = True
    bench.clock.sleep(1.0)
    assert bench.world.device.state.pulse_count == 20


def test_continuous_square_wave_during_wait(bench):
    channel = bench.generator.ch_1
    channel.function = "SQU"
    channel.frequency = 100.0
    channel.set_pulse_levels_v(0.0, 1.8)
    channel.output = True
    bench.clock.sleep(0.1)
    assert bench.world.device.state.pulse_count == 10
    assert bench.world.max_device_voltage_v == pytest.approx(1.8)


def test_output_off_reaches_nothing(bench):
    pulse_burst(bench, 2.0, 100e-6)
    bench.generator.ch_1.output = False
    bench.generator.trigger()
    assert bench.world.max_device_voltage_v == 0.0
    assert bench.world.device.state.pulse_count == 0


def test_channel_two_is_not_connected(bench):
    channel = bench.generator.ch_2
    channel.set_dc_voltage_v(1.0)
    channel.output = True
    bench.clock.sleep(0.5)
    assert bench.world.max_device_voltage_v == 0.0


def test_shutdown_leaves_zero_volts(bench):
    pulse_burst(bench, 2.0, 100e-6)
    bench.generator.shutdown()
    assert bench.generator.ch_1.output is False
    assert bench.generator.ch_1.function == "DC"
    assert bench.generator.ch_1.offset == 0.0
    assert bench.world.present_voltage_v() == 0.0
