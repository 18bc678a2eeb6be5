"""The simulated FEMTO DHPCA-100 current amplifier and the control lines that set it.

The real ``FemtoDHPCA100`` driver writes its control word to a ``DigitalOutput``. Here
that ``DigitalOutput`` is ``SimulatedControlLines``. It decodes the word with the
driver's published coding (``instruments.femto_dhpca100.decode_control_bits``) and sets
the simulated amplifier. So the gain in a bench file reaches the simulation only through
the driver, as it reaches the real amplifier.

Signal path: ``output = -gain * I`` (the DHPCA-100 inverts), through a first-order
low-pass at the bandwidth of the present setting. That bandwidth comes from the driver's
table, capped by the bandwidth limit filter. White output noise and clipping at the
output swing are added when the scope samples the output.

NOTE: the coupling setting is accepted but AC coupling is not simulated: the output is
always DC coupled, which the device reads need anyway.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.femto_dhpca100 import (
    BANDWIDTH_HZ,
    BANDWIDTH_LIMIT_HZ,
    CONTROL_WIDTH,
    OUTPUT_SWING_V,
    AmplifierSetting,
    decode_control_bits,
)
from sim_backend.faults import FaultInjector, FaultKind

log = logging.getLogger(__name__)

#: Input-referred current noise density of the simulated amplifier, in A/sqrt(Hz), by mode.
# NOTE: a simulator assumption, not a DHPCA-100 data-sheet figure. The real density
# depends on the gain and should come from the data sheet once it is at hand.
CURRENT_NOISE_DENSITY_A_PER_SQRT_HZ = {"low_noise": 4.3e-15, "high_speed": 13e-15}


class SimulatedDHPCA100:
    """Gain, bandwidth, noise and output clipping of a DHPCA-100, as set by its control word."""

    def __init__(self, rng: np.random.Generator, output_swing_v: float = OUTPUT_SWING_V):
        self.rng = rng
        self.output_swing_v = float(output_swing_v)
        self.setting = AmplifierSetting(1e6, "low_noise")
        self.overloaded = False

    @property
    def gain_v_per_a(self) -> float:
        """Transimpedance gain of the present setting, in V/A."""
        return self.setting.gain_v_per_a

    @property
    def bandwidth_hz(self) -> float:
        """-3 dB bandwidth of the present setting, in Hz."""
        full = BANDWIDTH_HZ[self.setting.mode][self.setting.gain_v_per_a]
        return min(full, BANDWIDTH_LIMIT_HZ[self.setting.bandwidth_limit])

    def apply_control_word(self, bits: int) -> None:
        """Take the setting that the control word selects (raises ValueError if none)."""
        self.setting = decode_control_bits(bits)
        log.debug("simulated DHPCA-100 set to %s", self.setting.describe())

    def respond(self, current_a: np.ndarray, dt_s: float, previous_output_v: float | None) -> np.ndarray:
        """Return the noise-free output for contiguous current samples ``dt_s`` apart.

        ``previous_output_v`` is the output just before the first sample; None means the
        amplifier had settled on the first sample's current.
        """
        target = -self.gain_v_per_a * np.asarray(current_a, dtype=float)
        tau_s = 1.0 / (2.0 * math.pi * self.bandwidth_hz)
        decay = math.exp(-dt_s / tau_s)
        if decay < 1e-12:
            return target
        start = target[0] if previous_output_v is None else previous_output_v
        return first_order_lowpass(target, decay, start)

    def output_noise_rms_v(self) -> float:
        """Return the rms output noise over the amplifier bandwidth, in volts."""
        density = CURRENT_NOISE_DENSITY_A_PER_SQRT_HZ[self.setting.mode]
        noise_bandwidth_hz = math.pi / 2.0 * self.bandwidth_hz  # first-order low-pass
        return density * math.sqrt(noise_bandwidth_hz) * self.gain_v_per_a

    def finish_output(self, output_v: np.ndarray) -> np.ndarray:
        """Add output noise and clip at the swing; latch the overload flag if it clipped."""
        noisy = self.rng.standard_normal(output_v.size)
        noisy *= self.output_noise_rms_v()
        noisy += output_v
        swing_v = self.output_swing_v
        # Two reductions instead of abs(); a NaN sample is not counted, as with abs().
        self.overloaded = bool(noisy.max() >= swing_v or -noisy.min() >= swing_v) if noisy.size else False
        np.maximum(noisy, -swing_v, out=noisy)
        return np.minimum(noisy, swing_v, out=noisy)


def first_order_lowpass(target: np.ndarray, decay: float, start: float) -> np.ndarray:
    """Return ``y[n] = decay * y[n - 1] + (1 - decay) * target[n]`` with ``y[-1] = start``.

    A fast decay uses the truncated impulse response ``(1 - decay) * decay**k`` (cut where
    it falls below 1e-16). A slow one runs in chunks, within which
    ``y[n] = decay**n * (y0 + (1 - decay) * sum_k decay**-k * target[k])``, with chunks
    short enough that ``decay**-n`` stays below 1e150.
    """
    target = np.asarray(target, dtype=float)
    output = np.empty_like(target)
    if target.size == 0:
        return output
    if decay <= 0.0:
        output[:] = target
        return output
    taps = math.ceil(36.8 / -math.log(decay))
    if taps <= 64:
        powers = decay ** np.arange(taps)
        output[:] = np.convolve(target, (1.0 - decay) * powers)[:target.size]
        head = min(taps, target.size)
        output[:head] += decay * powers[:head] * start
        return output
    chunk = max(1, min(target.size, int(345.0 / -math.log(decay))))
    powers = decay ** np.arange(1, chunk + 1)
    previous = float(start)
    for first in range(0, target.size, chunk):
        part = target[first:first + chunk]
        growth = powers[:part.size]
        sums = np.cumsum(part / growth)
        output[first:first + part.size] = growth * (previous + (1.0 - decay) * sums)
        previous = float(output[first + part.size - 1])
    return output


class SimulatedControlLines:
    """``DigitalOutput`` whose lines set the simulated amplifier (for the real driver).

    ``read_overload`` returns whether the amplifier output clipped in the latest scope
    acquisition. Faults: TIMEOUT raises ``InstrumentTimeout``, CONNECTION_LOST
    ``InstrumentConnectionError`` and INSTRUMENT_ERROR ``InstrumentError``, each naming
    the call; the word is not applied then.
    """

    def __init__(self, amplifier: SimulatedDHPCA100, faults: FaultInjector,
                 name: str = "simulated control lines"):
        self.name = name
        self.width = CONTROL_WIDTH
        self.amplifier = amplifier
        self.faults = faults
        self.bits: int | None = None
        self.closed = False

    def write_bits(self, bits: int, description: str) -> None:
        """Apply the control word to the simulated amplifier."""
        self._check_fault(f"write_bits({bits:#04x})")
        try:
            self.amplifier.apply_control_word(bits)
        except ValueError as error:
            raise InstrumentError(self.name, f"write_bits({bits:#04x})", str(error)) from error
        self.bits = bits
        log.debug("%s: control word %#04x (%s)", self.name, bits, description)

    def read_overload(self) -> bool:
        """Return True if the amplifier output clipped in the latest scope acquisition."""
        self._check_fault("read_overload()")
        return self.amplifier.overloaded

    def close(self) -> None:
        """Mark the lines released; safe to call twice."""
        self.closed = True

    def _check_fault(self, call: str) -> None:
        if self.closed:
            raise InstrumentConnectionError(self.name, call, "control lines were closed")
        fault = self.faults.next_command()
        if fault is None:
            return
        if fault.kind is FaultKind.TIMEOUT:
            raise InstrumentTimeout(self.name, call, "control interface did not respond (injected timeout)")
        if fault.kind is FaultKind.CONNECTION_LOST:
            raise InstrumentConnectionError(self.name, call, "control interface lost (injected fault)")
        raise InstrumentError(self.name, call, f"{fault.error_code},{fault.error_message} (injected fault)")
