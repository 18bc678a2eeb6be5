"""Helpers for the simulated-bench tests: a bench with test limits and common set-ups."""

import numpy as np

from instruments.safety import SafetyLimits
from sim_backend.bench import build_simulated_bench

LIMITS = SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)


def make_bench(seed: int = 7, gain_v_per_a: float = 1e6, mode: str = "low_noise", **kwargs):
    """Return a fresh simulated bench with the test limits."""
    return build_simulated_bench(LIMITS, gain_v_per_a, mode, seed=seed, **kwargs)


def smu_bias(bench, voltage_v: float, aperture_s: float = 1e-3) -> None:
    """Turn the SMU on at ``voltage_v`` with a 10 uA compliance."""
    smu = bench.smu
    smu.current_limit_a = 1e-5
    smu.source_voltage_v = voltage_v
    smu.aperture_s = aperture_s
    smu.output_enabled = True


def pulse_burst(bench, high_v: float, width_s: float, cycles: int = 1, period_s: float = 1e-3) -> None:
    """Set generator channel 1 to BUS-triggered bursts of 0 V to ``high_v`` pulses, output on."""
    channel = bench.generator.ch_1
    channel.function = "PULS"
    channel.pulse_period = period_s
    channel.pulse_width = width_s
    channel.set_pulse_levels_v(0.0, high_v)
    channel.burst_ncycles = cycles
    channel.burst_state = True
    channel.trigger_source = "BUS"
    channel.output = True


def scope_window(bench, scale_s: float = 100e-6, sample_rate_hz: float = 1e7, reference_pct: float = 10.0,
                 trigger_source: str = "CHAN2", level_v: float = 1.0, mode: str = "NORM") -> None:
    """Set channels 1 and 2 on, a window of 10 * ``scale_s`` and an edge trigger."""
    scope = bench.scope
    scope.ch_1.state = True
    scope.ch_2.state = True
    scope.ch_1.scale = 0.1
    scope.ch_1.position = 4.0  # the amplifier output is negative for a positive current
    scope.ch_2.scale = 0.5
    scope.ch_2.position = -4.0
    scope.timebase_scale = scale_s
    scope.timebase_reference = reference_pct
    scope.sample_rate = sample_rate_hz
    scope.trigger_source = trigger_source
    if trigger_source.startswith("CHAN"):
        getattr(scope, f"ch_{trigger_source[-1]}").trigger_level = level_v
    scope.trigger_slope = "POS"
    scope.trigger_mode = mode


def count_device_samples(bench) -> list:
    """Wrap the device's ``apply`` and ``apply_level`` so the returned list collects the
    sample count of each call."""
    counts = []
    device = bench.world.device
    original = device.apply
    original_level = device.apply_level

    def counting_apply(voltage_v, dt_s):
        counts.append(np.asarray(voltage_v).size)
        return original(voltage_v, dt_s)

    def counting_apply_level(voltage_v, count, dt_s):
        counts.append(count)
        return original_level(voltage_v, count, dt_s)

    device.apply = counting_apply
    device.apply_level = counting_apply_level
    return counts
