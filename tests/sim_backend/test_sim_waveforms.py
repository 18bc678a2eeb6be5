"""Generator waveform synthesis: interval means keep pulse area and width on any sample grid."""

import numpy as np
import pytest

from sim_backend.waveforms import Waveform


def pulse(width_s=100e-6, period_s=1e-3, low_v=0.0, high_v=2.0, edges_s=0.0):
    return Waveform("PULS", period_s=period_s, amplitude_v=high_v - low_v, offset_v=(high_v + low_v) / 2,
                    width_s=width_s, lead_s=edges_s, trail_s=edges_s)


@pytest.mark.parametrize("dt_s", [1e-6, 3.3e-6, 7e-6])
def test_pulse_area_kept_on_any_grid(dt_s):
    waveform = pulse()
    count = int(3e-3 / dt_s)
    samples = waveform.burst_samples(-50e-6, count, dt_s, cycles=2)
    assert samples.sum() * dt_s == pytest.approx(2 * 2.0 * 100e-6, rel=1e-9)
    above_s = np.count_nonzero(samples > 1.0) * dt_s
    assert above_s == pytest.approx(200e-6, abs=2 * dt_s)


def test_pulse_edges_keep_fifty_percent_width():
    waveform = pulse(edges_s=10e-6)
    samples = waveform.burst_samples(0.0, 2000, 0.5e-6, cycles=1)
    assert samples.sum() * 0.5e-6 == pytest.approx(2.0 * 100e-6, rel=1e-6)
    assert np.count_nonzero(samples > 1.0) * 0.5e-6 == pytest.approx(100e-6, abs=1e-6)


def test_burst_idles_at_low_level_before_and_after():
    waveform = pulse(low_v=-0.2, high_v=1.0)
    samples = waveform.burst_samples(-1e-3, 4000, 1e-6, cycles=1)
    assert np.all(samples[:1000] == pytest.approx(-0.2))
    assert np.all(samples[-1000:] == pytest.approx(-0.2))
    assert waveform.start_level_v() == pytest.approx(-0.2)


def test_sine_mean_and_peak():
    waveform = Waveform("SIN", period_s=1e-3, amplitude_v=2.0, offset_v=0.5)
    samples = waveform.continuous_samples(0.0, 1000, 1e-6)
    assert samples.mean() == pytest.approx(0.5, abs=1e-9)
    assert samples.max() == pytest.approx(1.5, abs=1e-4)
    assert waveform.peak_levels_v() == (-0.5, 1.5)


def test_sine_burst_starts_at_burst_phase():
    waveform = Waveform("SIN", period_s=1e-3, amplitude_v=2.0, offset_v=0.0, phase_deg=90.0)
    assert waveform.start_level_v() == pytest.approx(1.0)
    samples = waveform.burst_samples(0.0, 10, 1e-7, cycles=1)
    assert samples[0] == pytest.approx(1.0, abs=1e-3)


def test_arb_is_held_per_sample_and_scaled():
    arb = np.array([0.0, 1.0, 1.0, -0.5, 0.0, 0.0, 0.0, 0.0])
    waveform = Waveform("ARB", period_s=0.0, amplitude_v=4.0, offset_v=1.0, arb=arb, sample_rate_hz=1e6)
    assert waveform.period_s == pytest.approx(8e-6)
    samples = waveform.continuous_samples(0.0, 16, 0.5e-6)
    np.testing.assert_allclose(samples[::2], 1.0 + 2.0 * arb, atol=1e-12)
    assert waveform.peak_levels_v() == (0.0, 3.0)


def test_square_duty_and_ramp_symmetry():
    square = Waveform("SQU", period_s=1e-3, amplitude_v=2.0, offset_v=0.0, duty=0.25)
    samples = square.continuous_samples(0.0, 1000, 1e-6)
    assert np.count_nonzero(samples > 0) == 250
    ramp = Waveform("RAMP", period_s=1e-3, amplitude_v=2.0, offset_v=0.0, symmetry=1.0)
    values = ramp.continuous_samples(0.0, 1000, 1e-6)
    assert np.all(np.diff(values[:-1]) > 0)  # rises over the whole period


def test_inverted_waveform_mirrors_about_offset():
    waveform = Waveform("PULS", period_s=1e-3, amplitude_v=2.0, offset_v=1.0, width_s=1e-4, inverted=True)
    assert waveform.start_level_v() == pytest.approx(2.0)
    samples = waveform.burst_samples(0.0, 200, 1e-6, cycles=1)
    assert samples[:99].max() == pytest.approx(0.0, abs=1e-9)


def test_dc_and_invalid_waveforms():
    dc = Waveform("DC", period_s=0.0, amplitude_v=0.0, offset_v=0.7)
    assert dc.is_constant
    assert np.all(dc.continuous_samples(0.0, 5, 1e-3) == 0.7)
    with pytest.raises(ValueError):
        Waveform("SAW", period_s=1e-3, amplitude_v=1.0, offset_v=0.0)
    with pytest.raises(ValueError):
        Waveform("ARB", period_s=0.0, amplitude_v=1.0, offset_v=0.0)
