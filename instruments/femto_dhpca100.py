"""Driver for the FEMTO DHPCA-100 variable-gain transimpedance (current) amplifier.

The amplifier turns the device current into a voltage that the oscilloscope records. Its
input is a virtual ground, so no setting of it can put a voltage on the device. It is set
by TTL control lines (``instruments.digital_output``) or by hand, and it has no readback:
the driver keeps the setting it last wrote.

Sign convention: the DHPCA-100 inverts. A current flowing into its input (from the Ti
electrode of a device whose Pt electrode is at a positive voltage) gives a negative output
voltage, so ``current_a(output_v) = -output_v / gain``. The input current is positive when
it flows into the amplifier.

Control word written to the control lines (bit 0 first):

=====  ==========================================================================
bits   meaning
=====  ==========================================================================
0-2    gain index within the mode, 0 = lowest gain of that mode
3      mode: 1 = low noise, 0 = high speed
4      coupling: 1 = DC, 0 = AC
5      10 MHz bandwidth limit on
6      1 MHz bandwidth limit on
=====  ==========================================================================

NOTE: this coding follows the EPICS synApps database for FEMTO amplifiers (three gain
bits, a low-noise/high-speed bit, a coupling bit and, for the DHPCA-100 only, 10 MHz and
1 MHz filter bits, with the DLPCA-200's bit order and levels). It was not checked against
the DHPCA-100 data sheet, nor were the gains per mode, bandwidths and output swing below.
Check them before the first remote-controlled measurement.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from instruments.digital_output import DigitalOutput, ManualControl
from instruments.errors import InstrumentError

log = logging.getLogger(__name__)

MODES = ("low_noise", "high_speed")
COUPLINGS = ("DC", "AC")
BANDWIDTH_LIMITS = ("full", "10MHz", "1MHz")

#: Gains in V/A available in each mode, in gain-index order.
# NOTE: low noise 1e2 ... 1e7 and high speed 1e3 ... 1e8 follow FEMTO's OE-300 photoreceiver
# (built on the DHPCA-100) as coded in a public QCoDeS driver; not checked against the
# DHPCA-100 data sheet.
GAINS_V_PER_A: dict[str, tuple[float, ...]] = {
    "low_noise": (1e2, 1e3, 1e4, 1e5, 1e6, 1e7),
    "high_speed": (1e3, 1e4, 1e5, 1e6, 1e7, 1e8),
}

#: Full -3 dB bandwidth in hertz for each mode and gain.
# NOTE: recalled from the DHPCA-100 data sheet, not read from a copy of it; the maximum of
# 200 MHz matches the published product name ("variable gain up to 200 MHz"). Measure the
# step response before trusting rise times.
BANDWIDTH_HZ: dict[str, dict[float, float]] = {
    "low_noise": {1e2: 200e6, 1e3: 175e6, 1e4: 80e6, 1e5: 14e6, 1e6: 1.8e6, 1e7: 220e3},
    "high_speed": {1e3: 200e6, 1e4: 175e6, 1e5: 80e6, 1e6: 14e6, 1e7: 1.8e6, 1e8: 220e3},
}

#: Upper cut-off of each bandwidth limit filter in hertz.
BANDWIDTH_LIMIT_HZ = {"full": math.inf, "10MHz": 10e6, "1MHz": 1e6}

#: Rise time (10 % to 90 %) of a first-order low-pass filter times its -3 dB bandwidth.
RISE_TIME_BANDWIDTH_PRODUCT = 0.35

#: Linear output swing in volts (magnitude) into the scope's 50 ohm input.
# NOTE: +-1 V into 50 ohm is recalled from the data sheet, not checked. The driver treats
# any output at or beyond this swing as overload.
OUTPUT_SWING_V = 1.0

_MODE_BIT = 3
_COUPLING_BIT = 4
_LIMIT_BITS = {"full": 0, "10MHz": 1 << 5, "1MHz": 1 << 6}
CONTROL_WIDTH = 7


class AmplifierOverloadError(InstrumentError):
    """An amplifier output reached its swing limit, so the current it stands for is unknown."""


@dataclass(frozen=True)
class AmplifierSetting:
    """One complete DHPCA-100 setting."""

    gain_v_per_a: float
    mode: str
    coupling: str = "DC"
    bandwidth_limit: str = "full"

    def describe(self) -> str:
        """Return the setting in words, for logs and for a person dialling it."""
        limit = (
            "full bandwidth"
            if self.bandwidth_limit == "full"
            else f"{self.bandwidth_limit} bandwidth limit"
        )
        return f"gain {self.gain_v_per_a:.0e} V/A, {self.mode}, {self.coupling} coupling, {limit}"


def validate_setting(setting: AmplifierSetting) -> AmplifierSetting:
    """Return ``setting`` with its gain snapped to the exact table value, or raise ValueError.

    The error names the invalid value and lists the valid ones.
    """
    if setting.mode not in MODES:
        raise ValueError(f"mode {setting.mode!r} is not one of {', '.join(map(repr, MODES))}")
    if setting.coupling not in COUPLINGS:
        raise ValueError(
            f"coupling {setting.coupling!r} is not one of {', '.join(map(repr, COUPLINGS))}"
        )
    if setting.bandwidth_limit not in BANDWIDTH_LIMITS:
        raise ValueError(
            f"bandwidth_limit {setting.bandwidth_limit!r} is not one of "
            f"{', '.join(map(repr, BANDWIDTH_LIMITS))}"
        )

    gain = setting.gain_v_per_a
    valid = GAINS_V_PER_A[setting.mode]
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain):
        raise ValueError(f"gain_v_per_a must be a number of V/A, got {gain!r}")
    for allowed in valid:
        if math.isclose(gain, allowed, rel_tol=1e-9):
            return AmplifierSetting(
                allowed, setting.mode, setting.coupling, setting.bandwidth_limit
            )

    other_modes = [
        mode
        for mode in MODES
        if any(math.isclose(gain, g, rel_tol=1e-9) for g in GAINS_V_PER_A[mode])
    ]
    hint = f"; mode {other_modes[0]!r} offers it" if other_modes else ""
    raise ValueError(
        f"gain {gain:g} V/A is not available in {setting.mode} mode "
        f"(valid: {', '.join(f'{g:.0e}' for g in valid)} V/A){hint}"
    )


def encode_control_bits(setting: AmplifierSetting) -> int:
    """Return the control word of a valid setting (see the module docstring for the coding)."""
    setting = validate_setting(setting)
    word = GAINS_V_PER_A[setting.mode].index(setting.gain_v_per_a)
    if setting.mode == "low_noise":
        word |= 1 << _MODE_BIT
    if setting.coupling == "DC":
        word |= 1 << _COUPLING_BIT
    return word | _LIMIT_BITS[setting.bandwidth_limit]


def decode_control_bits(bits: int) -> AmplifierSetting:
    """Return the setting that the control word ``bits`` selects; raise ValueError if none does.

    The simulated amplifier uses this to follow what the driver writes.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits < (1 << CONTROL_WIDTH):
        raise ValueError(
            f"control word must be an int from 0 to {(1 << CONTROL_WIDTH) - 1}, got {bits!r}"
        )
    mode = "low_noise" if bits >> _MODE_BIT & 1 else "high_speed"
    index = bits & 0b111
    gains = GAINS_V_PER_A[mode]
    if index >= len(gains):
        raise ValueError(
            f"control word {bits:#04x} selects gain index {index}, "
            f"but {mode} has only {len(gains)} gains"
        )
    coupling = "DC" if bits >> _COUPLING_BIT & 1 else "AC"
    limits = [name for name, mask in _LIMIT_BITS.items() if mask and bits & mask]
    if len(limits) > 1:
        raise ValueError(f"control word {bits:#04x} turns on both bandwidth limits")
    return AmplifierSetting(gains[index], mode, coupling, limits[0] if limits else "full")


class FemtoDHPCA100:
    """FEMTO DHPCA-100 current amplifier: validated settings, conversion and overload checks.

    ``control`` drives the amplifier's control lines. None means ``ManualControl``, which
    logs a request to dial each setting by hand. The initial setting is written (or requested) at
    construction. ``output_swing_v`` is the output magnitude at which the amplifier counts
    as overloaded.
    """

    def __init__(
        self,
        control: DigitalOutput | None = None,
        gain_v_per_a: float = 1e6,
        mode: str = "low_noise",
        coupling: str = "DC",
        bandwidth_limit: str = "full",
        output_swing_v: float = OUTPUT_SWING_V,
        name: str = "FEMTO DHPCA-100",
    ):
        if not math.isfinite(output_swing_v) or output_swing_v <= 0:
            raise ValueError(
                f"output_swing_v must be a positive number of volts, got {output_swing_v!r}"
            )
        self.name = name
        self.control = control if control is not None else ManualControl(f"{name} manual control")
        self.output_swing_v = float(output_swing_v)
        self._setting: AmplifierSetting | None = None
        self._bits: int | None = None
        self._apply(AmplifierSetting(gain_v_per_a, mode, coupling, bandwidth_limit))
        log.info("%s ready on %s", name, self.control.name)

    # -- settings ---------------------------------------------------------------------------

    def configure(
        self,
        gain_v_per_a: float | None = None,
        mode: str | None = None,
        coupling: str | None = None,
        bandwidth_limit: str | None = None,
    ) -> AmplifierSetting:
        """Validate the combined setting, write it in one control word and return it.

        Arguments left at None keep their present value. Use this to change gain and mode
        together when the new gain does not exist in the old mode. Nothing is written when
        the setting is invalid.
        """
        current = self._setting
        return self._apply(
            AmplifierSetting(
                gain_v_per_a if gain_v_per_a is not None else current.gain_v_per_a,
                mode if mode is not None else current.mode,
                coupling if coupling is not None else current.coupling,
                bandwidth_limit if bandwidth_limit is not None else current.bandwidth_limit,
            )
        )

    def _apply(self, setting: AmplifierSetting) -> AmplifierSetting:
        """Validate ``setting``, write its control word and remember it."""
        setting = validate_setting(setting)
        bits = encode_control_bits(setting)
        self.control.write_bits(bits, setting.describe())
        self._setting = setting
        self._bits = bits
        log.info("%s set to %s (control word %#04x)", self.name, setting.describe(), bits)
        return setting

    @property
    def setting(self) -> AmplifierSetting:
        """Get the complete setting last written (AmplifierSetting, always a valid one)."""
        return self._setting

    @property
    def gain_v_per_a(self) -> float:
        """Control the transimpedance gain in V/A (float, one of 1e2 ... 1e8, decades, per mode).

        Low noise offers 1e2 to 1e7 V/A and high speed 1e3 to 1e8 V/A; a gain that the
        present mode lacks raises ValueError (use ``configure`` to change both).
        """
        return self._setting.gain_v_per_a

    @gain_v_per_a.setter
    def gain_v_per_a(self, gain_v_per_a: float) -> None:
        self.configure(gain_v_per_a=gain_v_per_a)

    @property
    def mode(self) -> str:
        """Control the noise/speed mode (str, one of 'low_noise', 'high_speed').

        The present gain must exist in the new mode; otherwise use ``configure``.
        """
        return self._setting.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.configure(mode=mode)

    @property
    def coupling(self) -> str:
        """Control the input coupling (str, one of 'DC', 'AC'); device reads need 'DC'."""
        return self._setting.coupling

    @coupling.setter
    def coupling(self, coupling: str) -> None:
        self.configure(coupling=coupling)

    @property
    def bandwidth_limit(self) -> str:
        """Control the output low-pass filter (str, one of 'full', '10MHz', '1MHz')."""
        return self._setting.bandwidth_limit

    @bandwidth_limit.setter
    def bandwidth_limit(self, bandwidth_limit: str) -> None:
        self.configure(bandwidth_limit=bandwidth_limit)

    @property
    def control_bits(self) -> int:
        """Get the control word last written to the control lines (int from 0 to 127)."""
        return self._bits

    @property
    def bandwidth_hz(self) -> float:
        """Get the -3 dB bandwidth of the present setting in hertz (float from 2.2e5 to 2e8)."""
        setting = self._setting
        return min(
            BANDWIDTH_HZ[setting.mode][setting.gain_v_per_a],
            BANDWIDTH_LIMIT_HZ[setting.bandwidth_limit],
        )

    @property
    def rise_time_s(self) -> float:
        """Get the estimated 10-90 % rise time in seconds (float from 1.75e-9 to 1.6e-6).

        Estimated as 0.35 / bandwidth, the value for a first-order response.
        """
        return RISE_TIME_BANDWIDTH_PRODUCT / self.bandwidth_hz

    # -- conversion and overload --------------------------------------------------------------

    def current_a(self, output_v, allow_overload: bool = False):
        """Convert amplifier output voltage(s) in volts to input current(s) in amperes.

        ``output_v`` is a scalar or an array; the result has the same shape (a float for a
        scalar). The amplifier inverts: ``current = -output_v / gain``. When any sample is
        overloaded (see ``is_overloaded``) the conversion raises ``AmplifierOverloadError``,
        because the true current is unknown; ``allow_overload=True`` converts anyway and
        logs a warning.
        """
        output = np.asarray(output_v, dtype=float)
        if self.is_overloaded(output):
            message = self._overload_message(output)
            if not allow_overload:
                raise AmplifierOverloadError(self.name, "current_a", message)
            log.warning("%s: converting overloaded output anyway: %s", self.name, message)

        current = -output / self._setting.gain_v_per_a
        return float(current) if current.ndim == 0 else current

    def is_overloaded(self, output_v) -> bool:
        """Return True when any output sample reaches the swing limit or is not a finite number."""
        output = np.asarray(output_v, dtype=float)
        if output.size == 0:
            return False
        # One reduction: the largest magnitude is NaN if any sample is NaN, and inf if any
        # is infinite, so "not below the swing" covers both.
        return not bool(np.abs(output).max() < self.output_swing_v)

    def _overload_message(self, output: np.ndarray) -> str:
        flat = output.ravel()
        bad = ~np.isfinite(flat) | (np.abs(flat) >= self.output_swing_v)
        index = int(np.argmax(bad))
        return (
            f"output sample {index} is {flat[index]:g} V, at or beyond the output swing of "
            f"+-{self.output_swing_v:g} V at gain {self._setting.gain_v_per_a:.0e} V/A; "
            "lower the gain and measure again"
        )

    def overload_line_active(self) -> bool | None:
        """Return the overload status line of the control interface, or None if it has none."""
        return self.control.read_overload()

    # -- safe state -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Leave the amplifier as it is: it has nothing to turn off.

        The DHPCA-100 has no output enable, and its input is a virtual ground that puts no
        voltage on the device. Keeping the gain also keeps the setting of the last run
        visible on the front panel.
        """
        log.info("%s: nothing to shut down; left at %s", self.name, self._setting.describe())

    def close(self) -> None:
        """Release the control interface."""
        self.control.close()
        log.info("closed %s", self.name)
