"""A small fake bench for protocol tests: drivers with the real drivers' members, a toy device.

Every member call that reaches an instrument is appended to ``FakeBench.calls`` as
``(role, member, value)``, so tests can assert what was sent (or that nothing was). The
toy device has a constant long-term conductance and a short-term part that each pulse
raises by ``DF_PER_VOLT_SECOND * amplitude * width`` and that decays with a time
constant of ``TAU_S``. A fault can be scheduled on any member call with ``fail_on``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from instruments.bench import Bench
from instruments.safety import SafetyLimits

G_LONG_TERM_S = 15e-9
DF_PER_VOLT_SECOND = 1.0e-9 / 100e-6
TAU_S = 0.2


class FakeClock:
    def __init__(self, device):
        self.time_s = 0.0
        self.device = device

    def now(self) -> float:
        return self.time_s

    def sleep(self, duration_s: float) -> None:
        if duration_s > 0:
            self.device.relax(duration_s)
            self.time_s += duration_s


class ToyDevice:
    def __init__(self):
        self.f_s = 0.0
        self.max_voltage_v = 0.0
        self.min_voltage_v = 0.0

    def conductance_s(self) -> float:
        return G_LONG_TERM_S + self.f_s

    def relax(self, duration_s: float) -> None:
        self.f_s *= math.exp(-duration_s / TAU_S)

    def see(self, voltage_v: float) -> None:
        self.max_voltage_v = max(self.max_voltage_v, voltage_v)
        self.min_voltage_v = min(self.min_voltage_v, voltage_v)


class _Recorder:
    """Base of the fake instruments: records calls and raises scheduled faults."""

    def __init__(self, bench: FakeBench, role: str):
        object.__setattr__(self, "_bench", bench)
        object.__setattr__(self, "_role", role)

    def _record(self, member: str, value=None) -> None:
        bench = self._bench
        bench.calls.append((self._role, member, value))
        fault = bench.faults.get((self._role, member))
        if fault is not None:
            remaining, error = fault
            if remaining <= 1:
                del bench.faults[(self._role, member)]
                raise error
            bench.faults[(self._role, member)] = (remaining - 1, error)

    def __setattr__(self, name, value):
        if not name.startswith("_"):
            self._record(name, value)
        object.__setattr__(self, name, value)

    @contextmanager
    def settings_batch(self):
        """Group settings as the real drivers do; the fake has no error queue to read."""
        yield


class FakeSMU(_Recorder):
    def __init__(self, bench):
        super().__init__(bench, "smu")
        object.__setattr__(self, "level_v", 0.0)
        object.__setattr__(self, "enabled", False)

    @property
    def source_voltage_v(self):
        return self.level_v

    @source_voltage_v.setter
    def source_voltage_v(self, voltage_v):
        self._bench.limits.check_voltage(voltage_v, "SMU set-point")
        self._record("source_voltage_v", voltage_v)
        object.__setattr__(self, "level_v", voltage_v)
        self._bench.update_device_voltage()

    @property
    def output_enabled(self):
        return self.enabled

    @output_enabled.setter
    def output_enabled(self, enabled):
        self._record("output_enabled", enabled)
        object.__setattr__(self, "enabled", bool(enabled))
        self._bench.update_device_voltage()

    def sweep(self, voltages_v, aperture_s, source_delay_s):
        self._record("sweep", tuple(voltages_v))
        voltages = self._bench.limits.check_waveform(voltages_v, "sweep")
        object.__setattr__(self, "enabled", True)
        times = []
        for voltage_v in voltages:
            self._bench.device.see(voltage_v)
            self._bench.clock.sleep(source_delay_s + aperture_s)
            times.append(self._bench.clock.now())
        object.__setattr__(self, "level_v", float(voltages[-1]))
        start = times[0] - (source_delay_s + aperture_s)
        current = voltages * self._bench.device.conductance_s()
        return {"time_s": np.array(times) - start, "voltage_v": voltages, "current_a": current}

    def shutdown(self):
        self._record("shutdown")
        object.__setattr__(self, "level_v", 0.0)
        object.__setattr__(self, "enabled", False)
        self._bench.update_device_voltage()


class FakeGeneratorChannel(_Recorder):
    def __init__(self, bench):
        super().__init__(bench, "generator")
        for name, value in (("low_v", 0.0), ("high_v", 0.0), ("output", False),
                            ("pulse_width", 1e-4), ("pulse_period", 1e-3), ("burst_ncycles", 1)):
            object.__setattr__(self, name, value)

    def set_pulse_levels_v(self, low_v, high_v):
        self._record("set_pulse_levels_v", (low_v, high_v))
        object.__setattr__(self, "low_v", low_v)
        object.__setattr__(self, "high_v", high_v)


class FakeGenerator(_Recorder):
    def __init__(self, bench):
        super().__init__(bench, "generator")
        object.__setattr__(self, "ch_1", FakeGeneratorChannel(bench))

    def trigger(self):
        self._record("trigger")
        bench = self._bench
        channel = self.ch_1
        amplitude_v = bench.smu_voltage() + channel.high_v
        bench.device.see(amplitude_v)
        start_s = bench.clock.now()
        for _ in range(channel.burst_ncycles):
            bench.device.f_s += DF_PER_VOLT_SECOND * amplitude_v * channel.pulse_width
        duration_s = (channel.burst_ncycles - 1) * channel.pulse_period + channel.pulse_width
        if bench.scope.armed:
            bench.scope.capture_pulse(start_s, duration_s, amplitude_v)
        else:
            bench.clock.sleep(duration_s)

    def shutdown(self):
        self._record("shutdown")
        object.__setattr__(self.ch_1, "output", False)


class FakeScopeChannel(_Recorder):
    def __init__(self, bench):
        super().__init__(bench, "scope")
        object.__setattr__(self, "scale", 1.0)


class FakeScope(_Recorder):
    def __init__(self, bench):
        super().__init__(bench, "scope")
        object.__setattr__(self, "ch_1", FakeScopeChannel(bench))
        object.__setattr__(self, "ch_2", FakeScopeChannel(bench))
        object.__setattr__(self, "armed", False)
        object.__setattr__(self, "record", None)
        for name, value in (("timebase_scale", 1e-4), ("sample_rate", 1e6), ("timebase_reference", 0.0)):
            object.__setattr__(self, name, value)

    def _time_axis(self):
        window_s = 10 * self.timebase_scale
        points = max(2, round(self.sample_rate * window_s))
        start_s = -self.timebase_reference / 100.0 * window_s
        return start_s + np.arange(points) * window_s / (points - 1)

    def single_acquisition(self, timeout_s):
        self._record("single_acquisition", timeout_s)
        bench = self._bench
        time_s = self._time_axis()
        voltage_v = np.full(time_s.size, bench.smu_voltage())
        current_a = voltage_v * bench.device.conductance_s()
        bench.clock.sleep(float(time_s[-1]))
        object.__setattr__(self, "record", (time_s, -current_a * bench.amplifier.gain_v_per_a, voltage_v))

    def arm(self):
        self._record("arm")
        object.__setattr__(self, "armed", True)

    def capture_pulse(self, start_s, duration_s, amplitude_v):
        bench = self._bench
        time_s = self._time_axis()
        on = (time_s >= 0) & (time_s < duration_s)
        voltage_v = np.where(on, amplitude_v, bench.smu_voltage())
        current_a = voltage_v * bench.device.conductance_s() * np.where(on, 20.0, 1.0)
        bench.clock.sleep(max(duration_s, float(time_s[-1])))
        object.__setattr__(self, "record", (time_s, -current_a * bench.amplifier.gain_v_per_a, voltage_v))
        object.__setattr__(self, "armed", False)

    def wait_for_acquisition(self, timeout_s):
        self._record("wait_for_acquisition", timeout_s)
        if self.armed:
            raise TimeoutError("fake scope: no trigger")

    def read_waveform(self, channel):
        self._record("read_waveform", channel)
        time_s, current_v, voltage_v = self.record
        return time_s, (current_v if channel == 1 else voltage_v)

    def read_waveforms(self, channels):
        return [self.read_waveform(channel) for channel in channels]

    def shutdown(self):
        self._record("shutdown")


class FakeAmplifier(_Recorder):
    def __init__(self, bench, gain_v_per_a=1e4):
        super().__init__(bench, "amplifier")
        object.__setattr__(self, "gain_v_per_a", gain_v_per_a)
        object.__setattr__(self, "output_swing_v", 1.0)

    def current_a(self, output_v):
        return -np.asarray(output_v, dtype=float) / self.gain_v_per_a

    def overload_line_active(self):
        return False

    def shutdown(self):
        self._record("shutdown")


class FakeBench(Bench):
    """A ``Bench`` of fake instruments; ``calls`` lists every member call in order."""

    def __init__(self, limits: SafetyLimits | None = None, gain_v_per_a: float = 1e4):
        self.calls: list[tuple[str, str, object]] = []
        self.faults: dict = {}
        self.device = ToyDevice()
        limits = limits or SafetyLimits(max_voltage_v=4.0, min_voltage_v=-2.5, max_current_a=1e-4)
        self.limits = limits
        super().__init__(
            name="fake", backend="fake", smu=FakeSMU(self), generator=FakeGenerator(self),
            amplifier=FakeAmplifier(self, gain_v_per_a), scope=FakeScope(self),
            limits=limits, clock=FakeClock(self.device), description={"bench_name": "fake"},
        )

    def smu_voltage(self) -> float:
        return self.smu.level_v if self.smu.enabled else 0.0

    def update_device_voltage(self) -> None:
        self.device.see(self.smu_voltage())

    def fail_on(self, role: str, member: str, error: BaseException, at_call: int = 1) -> None:
        """Raise ``error`` at the ``at_call``-th call of ``member`` on ``role`` from now."""
        self.faults[(role, member)] = (at_call, error)

    def sent(self, role: str | None = None) -> list[tuple[str, str, object]]:
        """Return the recorded calls, of one role if given."""
        return [call for call in self.calls if role is None or call[0] == role]
