"""Tests of the FEMTO DHPCA-100 driver and of its control interfaces."""

from __future__ import annotations

import ctypes
import logging
import math

import numpy as np
import pytest

from instruments.digital_output import (
    LUCI10_NOT_FOUND_MESSAGE,
    DigitalOutput,
    Luci10DigitalOutput,
    ManualControl,
    TtlLines,
)
from instruments.errors import InstrumentConnectionError, InstrumentError
from instruments.femto_dhpca100 import (
    BANDWIDTH_HZ,
    BANDWIDTH_LIMITS,
    COUPLINGS,
    GAINS_V_PER_A,
    MODES,
    AmplifierOverloadError,
    AmplifierSetting,
    FemtoDHPCA100,
    decode_control_bits,
    encode_control_bits,
)

ALL_SETTINGS = [
    AmplifierSetting(gain, mode, coupling, limit)
    for mode in MODES
    for gain in GAINS_V_PER_A[mode]
    for coupling in COUPLINGS
    for limit in BANDWIDTH_LIMITS
]


class RecordingOutput:
    """DigitalOutput fake that records every control word and scripts the overload line."""

    def __init__(self, overload: bool | None = False):
        self.name = "recording output"
        self.width = 8
        self.writes: list[tuple[int, str]] = []
        self.overload = overload
        self.closed = False

    def write_bits(self, bits: int, description: str) -> None:
        self.writes.append((bits, description))

    def read_overload(self) -> bool | None:
        return self.overload

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def output():
    return RecordingOutput()


@pytest.fixture
def amplifier(output):
    """Amplifier at 1e6 V/A, low noise, DC, full bandwidth; writes recorded from here on."""
    driver = FemtoDHPCA100(control=output, gain_v_per_a=1e6, mode="low_noise")
    output.writes.clear()
    return driver


# -- settings and control word ---------------------------------------------------------


def test_construction_writes_initial_setting(output):
    FemtoDHPCA100(control=output, gain_v_per_a=1e3, mode="high_speed")
    assert output.writes == [(0b0010000, "gain 1e+03 V/A, high_speed, DC coupling, full bandwidth")]


@pytest.mark.parametrize("setting", ALL_SETTINGS, ids=lambda s: s.describe())
def test_every_setting_round_trips(output, setting):
    amplifier = FemtoDHPCA100(
        control=output,
        gain_v_per_a=setting.gain_v_per_a,
        mode=setting.mode,
        coupling=setting.coupling,
        bandwidth_limit=setting.bandwidth_limit,
    )
    assert amplifier.setting == setting
    assert output.writes[-1][0] == amplifier.control_bits
    assert decode_control_bits(amplifier.control_bits) == setting


def test_every_setting_has_own_word():
    words = [encode_control_bits(setting) for setting in ALL_SETTINGS]
    assert len(set(words)) == len(words)
    assert max(words) < 128


@pytest.mark.parametrize(
    "setting, word",
    [
        (AmplifierSetting(1e2, "low_noise", "DC", "full"), 0b0011000),
        (AmplifierSetting(1e7, "low_noise", "DC", "full"), 0b0011101),
        (AmplifierSetting(1e3, "high_speed", "DC", "full"), 0b0010000),
        (AmplifierSetting(1e8, "high_speed", "AC", "1MHz"), 0b1000101),
        (AmplifierSetting(1e5, "low_noise", "AC", "10MHz"), 0b0101011),
    ],
)
def test_control_word_coding(setting, word):
    assert encode_control_bits(setting) == word


@pytest.mark.parametrize("mode", MODES)
def test_gain_setter_each_gain(amplifier, output, mode):
    amplifier.configure(gain_v_per_a=GAINS_V_PER_A[mode][0], mode=mode)
    for gain in GAINS_V_PER_A[mode]:
        amplifier.gain_v_per_a = gain
        assert amplifier.gain_v_per_a == gain
        assert decode_control_bits(output.writes[-1][0]).gain_v_per_a == gain


def test_gain_snaps_to_table_value(amplifier):
    amplifier.gain_v_per_a = 1e5 * (1 + 1e-12)
    assert amplifier.gain_v_per_a == 1e5


@pytest.mark.parametrize(
    "mode, gain, hint",
    [
        ("low_noise", 1e8, "'high_speed' offers it"),
        ("high_speed", 1e2, "'low_noise' offers it"),
        ("low_noise", 3e5, ""),
    ],
)
def test_gain_not_in_mode_rejected(amplifier, output, mode, gain, hint):
    amplifier.configure(mode=mode, gain_v_per_a=GAINS_V_PER_A[mode][2])
    output.writes.clear()
    with pytest.raises(ValueError) as caught:
        amplifier.gain_v_per_a = gain
    assert f"{gain:g} V/A" in str(caught.value)
    assert hint in str(caught.value)
    assert output.writes == []


@pytest.mark.parametrize("gain", [math.nan, math.inf, True, "1e6", None])
def test_gain_not_a_number_rejected(output, gain):
    with pytest.raises(ValueError):
        FemtoDHPCA100(control=output, gain_v_per_a=gain)
    assert output.writes == []


def test_mode_setter(amplifier, output):
    amplifier.mode = "high_speed"
    assert amplifier.mode == "high_speed"
    assert decode_control_bits(output.writes[-1][0]) == AmplifierSetting(1e6, "high_speed")


def test_mode_change_needs_gain_in_new_mode(amplifier, output):
    amplifier.configure(gain_v_per_a=1e2)
    output.writes.clear()
    with pytest.raises(ValueError):
        amplifier.mode = "high_speed"
    assert output.writes == []
    assert amplifier.mode == "low_noise"

    amplifier.configure(gain_v_per_a=1e3, mode="high_speed")
    assert len(output.writes) == 1
    assert amplifier.setting == AmplifierSetting(1e3, "high_speed")


@pytest.mark.parametrize(
    "keyword, value",
    [("mode", "fast"), ("coupling", "dc"), ("bandwidth_limit", "100MHz")],
)
def test_invalid_setting_rejected(amplifier, output, keyword, value):
    with pytest.raises(ValueError) as caught:
        amplifier.configure(**{keyword: value})
    assert repr(value) in str(caught.value)
    assert output.writes == []


def test_coupling_and_limit_setters(amplifier, output):
    amplifier.coupling = "AC"
    amplifier.bandwidth_limit = "1MHz"
    assert amplifier.coupling == "AC"
    assert amplifier.bandwidth_limit == "1MHz"
    assert decode_control_bits(output.writes[-1][0]) == AmplifierSetting(
        1e6, "low_noise", "AC", "1MHz"
    )


@pytest.mark.parametrize("word", [0b0011110, 0b0011111, 0b1111000, 128, -1, True])
def test_decode_rejects_invalid_words(word):
    with pytest.raises(ValueError):
        decode_control_bits(word)


# -- bandwidth and rise time -----------------------------------------------------------


@pytest.mark.parametrize(
    "setting", [s for s in ALL_SETTINGS if s.coupling == "DC"], ids=lambda s: s.describe()
)
def test_bandwidth_and_rise_time(output, setting):
    amplifier = FemtoDHPCA100(
        output, setting.gain_v_per_a, setting.mode, bandwidth_limit=setting.bandwidth_limit
    )
    full = BANDWIDTH_HZ[setting.mode][setting.gain_v_per_a]
    limit = {"full": math.inf, "10MHz": 10e6, "1MHz": 1e6}[setting.bandwidth_limit]
    assert amplifier.bandwidth_hz == min(full, limit)
    assert amplifier.rise_time_s == pytest.approx(0.35 / amplifier.bandwidth_hz)


def test_bandwidth_table_covers_every_gain():
    for mode in MODES:
        assert set(BANDWIDTH_HZ[mode]) == set(GAINS_V_PER_A[mode])


def test_high_speed_faster_at_same_gain():
    for gain in set(GAINS_V_PER_A["low_noise"]) & set(GAINS_V_PER_A["high_speed"]):
        assert BANDWIDTH_HZ["high_speed"][gain] > BANDWIDTH_HZ["low_noise"][gain]


# -- conversion and overload -----------------------------------------------------------


def test_current_from_negative_output_is_positive(amplifier):
    assert amplifier.current_a(-0.5) == pytest.approx(5e-7)


def test_current_from_positive_output_is_negative(amplifier):
    assert amplifier.current_a(0.3) == pytest.approx(-3e-7)


def test_current_scalar_returns_float(amplifier):
    assert isinstance(amplifier.current_a(-0.1), float)


@pytest.mark.parametrize(
    "setting", [s for s in ALL_SETTINGS if s.coupling == "DC" and s.bandwidth_limit == "full"]
)
def test_current_scales_with_every_gain(output, setting):
    amplifier = FemtoDHPCA100(output, setting.gain_v_per_a, setting.mode)
    assert amplifier.current_a(-0.6) == pytest.approx(0.6 / setting.gain_v_per_a)


def test_current_array_keeps_shape(amplifier):
    output_v = np.array([[-0.1, 0.2], [0.0, -0.9]])
    current = amplifier.current_a(output_v)
    assert current.shape == (2, 2)
    np.testing.assert_allclose(current, -output_v / 1e6)


@pytest.mark.parametrize("output_v", [1.0, -1.0, 1.2, [0.1, -1.5], [0.0, math.nan], math.inf])
def test_overloaded_output(amplifier, output_v):
    assert amplifier.is_overloaded(output_v)


@pytest.mark.parametrize("output_v", [0.0, 0.999, -0.999, [0.5, -0.5], []])
def test_output_within_swing(amplifier, output_v):
    assert not amplifier.is_overloaded(output_v)


def test_overload_threshold_configurable(output):
    amplifier = FemtoDHPCA100(output, output_swing_v=0.5)
    assert amplifier.is_overloaded(0.6)
    assert not amplifier.is_overloaded(0.4)


def test_conversion_of_overloaded_output_raises(amplifier):
    with pytest.raises(AmplifierOverloadError) as caught:
        amplifier.current_a([0.1, 0.2, -1.3])
    assert "sample 2" in caught.value.message
    assert "-1.3 V" in caught.value.message
    assert "lower the gain" in caught.value.message


def test_conversion_of_overload_allowed_on_request(amplifier, caplog):
    with caplog.at_level(logging.WARNING, logger="instruments.femto_dhpca100"):
        current = amplifier.current_a(1.1, allow_overload=True)
    assert current == pytest.approx(-1.1e-6)
    assert "overloaded" in caplog.text


@pytest.mark.parametrize("line", [True, False, None])
def test_overload_line_read_through_control(output, line):
    output.overload = line
    amplifier = FemtoDHPCA100(control=output)
    assert amplifier.overload_line_active() is line


@pytest.mark.parametrize("swing_v", [0.0, -1.0, math.nan])
def test_invalid_output_swing_rejected(output, swing_v):
    with pytest.raises(ValueError):
        FemtoDHPCA100(output, output_swing_v=swing_v)


# -- shutdown and close ----------------------------------------------------------------


def test_shutdown_changes_nothing(amplifier, output, caplog):
    with caplog.at_level(logging.INFO, logger="instruments.femto_dhpca100"):
        amplifier.shutdown()
    assert output.writes == []
    assert not output.closed
    assert amplifier.setting == AmplifierSetting(1e6, "low_noise")
    assert "nothing to shut down" in caplog.text


def test_close_releases_control(amplifier, output):
    amplifier.close()
    assert output.closed


# -- ManualControl ---------------------------------------------------------------------


def test_default_control_is_manual():
    amplifier = FemtoDHPCA100(gain_v_per_a=1e4, mode="low_noise")
    assert isinstance(amplifier.control, ManualControl)
    assert amplifier.control.bits == amplifier.control_bits


def test_manual_control_warns_to_dial(caplog):
    with caplog.at_level(logging.WARNING, logger="instruments.digital_output"):
        amplifier = FemtoDHPCA100(control=ManualControl(), gain_v_per_a=1e7, mode="high_speed")
    assert "gain 1e+07 V/A, high_speed" in caplog.text
    assert amplifier.control.description == amplifier.setting.describe()


def test_manual_control_cannot_read_overload():
    assert ManualControl().read_overload() is None


def test_manual_control_rejects_wide_word():
    with pytest.raises(ValueError):
        ManualControl(width=7).write_bits(0x80, "too wide")


# -- TtlLines --------------------------------------------------------------------------


def test_ttl_lines_write_each_bit():
    levels: list[tuple[int, bool]] = []
    lines = TtlLines(lambda line, level: levels.append((line, level)))
    lines.write_bits(0b0011010, "gain 1e4 V/A, low_noise")
    assert levels == [
        (0, False),
        (1, True),
        (2, False),
        (3, True),
        (4, True),
        (5, False),
        (6, False),
    ]


def test_ttl_lines_custom_wiring():
    levels: list[tuple[int, bool]] = []
    lines = TtlLines(lambda line, level: levels.append((line, level)), lines=(7, 6, 5))
    lines.write_bits(0b101, "three bits")
    assert levels == [(7, True), (6, False), (5, True)]


def test_ttl_lines_drive_amplifier():
    levels: dict[int, bool] = {}
    lines = TtlLines(levels.__setitem__)
    amplifier = FemtoDHPCA100(
        control=lines, gain_v_per_a=1e5, mode="high_speed", bandwidth_limit="10MHz"
    )
    word = sum(int(levels[bit]) << bit for bit in range(7))
    assert decode_control_bits(word) == amplifier.setting


def test_ttl_lines_reject_wide_word():
    lines = TtlLines(lambda line, level: None, lines=(0, 1, 2))
    with pytest.raises(ValueError):
        lines.write_bits(0b1000, "four bits")


def test_ttl_lines_reject_shared_line():
    with pytest.raises(ValueError):
        TtlLines(lambda line, level: None, lines=(0, 1, 1))


def test_ttl_writer_failure_wrapped():
    def broken(line, level):
        raise OSError("card removed")

    with pytest.raises(InstrumentError) as caught:
        TtlLines(broken).write_bits(1, "gain 1e3 V/A")
    assert "card removed" in caught.value.message
    assert "line 0" in caught.value.command


def test_ttl_overload_reader():
    assert TtlLines(lambda line, level: None).read_overload() is None
    assert TtlLines(lambda line, level: None, read_overload=lambda: 1).read_overload() is True


def test_ttl_overload_reader_failure_wrapped():
    def broken():
        raise OSError("input gone")

    with pytest.raises(InstrumentError):
        TtlLines(lambda line, level: None, read_overload=broken).read_overload()


# -- Luci10DigitalOutput -----------------------------------------------------------------


class FakeLuci10:
    """Stand-in for LUCI_10_x64.dll (LUCI_10.h version 2.0) with two adapters."""

    def __init__(self, adapter_ids=(3, 7)):
        self.adapter_ids = list(adapter_ids)
        self.calls: list[tuple] = []
        self.result = 0
        self.pins = {5: 0, 6: 0, 7: 0}

    def EnumerateUsbDevices(self):
        self.calls.append(("EnumerateUsbDevices",))
        return len(self.adapter_ids)

    def ReadAdapterID(self, index, adapter_id):
        assert type(index) is ctypes.c_int
        adapter_id._obj.value = self.adapter_ids[index.value - 1]
        self.calls.append(("ReadAdapterID", index.value))
        return 0

    def WriteData(self, index, low, high):
        assert all(type(arg) is ctypes.c_int for arg in (index, low, high))
        self.calls.append(("WriteData", index.value, low.value, high.value))
        return self.result

    def _status(self, pin, index, status):
        assert type(index) is ctypes.c_int
        status._obj.value = self.pins[pin]
        self.calls.append((f"GetStatusPin{pin}", index.value))
        return self.result

    def GetStatusPin5(self, index, status):
        return self._status(5, index, status)

    def GetStatusPin6(self, index, status):
        return self._status(6, index, status)

    def GetStatusPin7(self, index, status):
        return self._status(7, index, status)


def test_luci10_missing_library():
    with pytest.raises(InstrumentConnectionError) as caught:
        Luci10DigitalOutput()
    assert LUCI10_NOT_FOUND_MESSAGE in str(caught.value)


def test_luci10_selects_adapter_by_id():
    library = FakeLuci10()
    luci = Luci10DigitalOutput(adapter_id=7, library=library)
    luci.write_bits(0x1A5, "test word")
    assert library.calls == [
        ("EnumerateUsbDevices",),
        ("ReadAdapterID", 1),
        ("ReadAdapterID", 2),
        ("WriteData", 2, 0xA5, 0x01),
    ]


def test_luci10_first_adapter_by_default():
    library = FakeLuci10()
    Luci10DigitalOutput(library=library).write_bits(0x18, "gain 1e2 V/A")
    assert library.calls[-1] == ("WriteData", 1, 0x18, 0x00)


def test_luci10_unknown_adapter_id():
    with pytest.raises(InstrumentConnectionError) as caught:
        Luci10DigitalOutput(adapter_id=9, library=FakeLuci10())
    assert "[3, 7]" in caught.value.message


def test_luci10_no_adapter():
    with pytest.raises(InstrumentConnectionError) as caught:
        Luci10DigitalOutput(library=FakeLuci10(adapter_ids=()))
    assert "no LUCI-10 adapter" in caught.value.message


def test_luci10_write_error_code():
    library = FakeLuci10()
    luci = Luci10DigitalOutput(library=library)
    library.result = -2
    with pytest.raises(InstrumentError) as caught:
        luci.write_bits(1, "gain 1e3 V/A")
    assert "does not respond" in caught.value.message


@pytest.mark.parametrize(
    "pin_level, active_high, expected", [(1, True, True), (0, True, False), (0, False, True)]
)
def test_luci10_overload_pin(pin_level, active_high, expected):
    library = FakeLuci10()
    library.pins[6] = pin_level
    luci = Luci10DigitalOutput(library=library, overload_pin=6, overload_active_high=active_high)
    assert luci.read_overload() is expected
    assert library.calls[-1] == ("GetStatusPin6", 1)


def test_luci10_invalid_overload_pin():
    with pytest.raises(ValueError):
        Luci10DigitalOutput(library=FakeLuci10(), overload_pin=4)


def test_luci10_drives_amplifier():
    library = FakeLuci10()
    amplifier = FemtoDHPCA100(
        control=Luci10DigitalOutput(library=library), gain_v_per_a=1e6, mode="low_noise"
    )
    _, _, low, high = library.calls[-1]
    assert decode_control_bits(low | high << 8) == amplifier.setting


# -- protocol --------------------------------------------------------------------------


def test_implementations_satisfy_protocol():
    controls = [
        ManualControl(),
        TtlLines(lambda line, level: None),
        Luci10DigitalOutput(library=FakeLuci10()),
    ]
    for control in controls:
        assert isinstance(control, DigitalOutput)
