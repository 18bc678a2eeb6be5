"""Protocol tests of the R&S RTE1104 driver: exact messages, waveform download, failures.

PyMeasure 0.16's ``expected_protocol`` hands a bytes reply out in the slices that
``read_bytes`` requests, and fails if any byte is left unread, so the block tests also
prove that the driver consumes the trailing LF and nothing more.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from pymeasure.test import expected_protocol
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from instruments.errors import InstrumentConnectionError, InstrumentError, InstrumentTimeout
from instruments.rs_rte1104 import RohdeSchwarzRTE1104
from instruments.scpi_instrument import send_setting

OK = '0,"No error"'


def setting(command):
    """The pairs of one setting: the command, then the error-queue read."""
    return [(command, None), ("SYST:ERR?", OK)]


def scope(pairs, **kwargs):
    return expected_protocol(RohdeSchwarzRTE1104, pairs, **kwargs)


def raise_visa(status):
    def fail(*args, **kwargs):
        raise VisaIOError(status)

    return fail


#: The download format, sent as one batch before the first download.
FORMAT_PAIRS = [("FORM REAL,32", None), ("FORM:BORD LSBF", None), ("EXP:WAV:INCX OFF", None),
                ("SYST:ERR?", OK)]
#: The error-queue read after the downloads of an acquisition.
CHECK = [("SYST:ERR?", OK)]


def discard_on_clear(inst):
    """Make the mocked device clear discard the unread reply, as VISA's does."""
    inst.adapter.connection.clear.side_effect = lambda: setattr(inst.adapter, "_read_buffer", None)


def float_block(values, large=False):
    """A REAL,32 little-endian block built by hand, with the trailing LF."""
    data = struct.pack(f"<{len(values)}f", *values)
    if large:
        return b"#(" + str(len(data)).encode() + b")" + data + b"\n"
    length = str(len(data)).encode()
    return b"#" + str(len(length)).encode() + length + data + b"\n"


# ---- channel settings ---------------------------------------------------------------------


def test_state_getter():
    with scope([("CHAN1:STAT?", "1"), ("CHAN3:STAT?", "0")]) as inst:
        assert inst.ch_1.state is True
        assert inst.ch_3.state is False


def test_state_setter():
    with scope(setting("CHAN2:STAT ON") + setting("CHAN4:STAT OFF")) as inst:
        inst.ch_2.state = True
        inst.ch_4.state = False


def test_scale_getter():
    with scope([("CHAN1:SCAL?", "5.0E-02")]) as inst:
        assert inst.ch_1.scale == 0.05


def test_scale_setter():
    with scope(setting("CHAN1:SCAL 0.05")) as inst:
        inst.ch_1.scale = 0.05


def test_scale_setter_rejects_without_clipping():
    with scope([]) as inst:
        for bad in (1e-4, 20.0, float("nan")):
            with pytest.raises(ValueError):
                inst.ch_1.scale = bad


def test_offset_getter():
    with scope([("CHAN2:OFFS?", "-1.5")]) as inst:
        assert inst.ch_2.offset == -1.5


def test_offset_setter():
    with scope(setting("CHAN2:OFFS -1.5")) as inst:
        inst.ch_2.offset = -1.5


def test_position_getter():
    with scope([("CHAN1:POS?", "2")]) as inst:
        assert inst.ch_1.position == 2.0


def test_position_setter():
    with scope(setting("CHAN1:POS -2.5")) as inst:
        inst.ch_1.position = -2.5
    with scope([]) as inst, pytest.raises(ValueError):
        inst.ch_1.position = 6


def test_coupling_getter():
    replies = [("CHAN1:COUP?", "DC"), ("CHAN1:COUP?", "DCL"), ("CHAN1:COUP?", "DCLIMIT"),
               ("CHAN1:COUP?", "AC")]
    with scope(replies) as inst:
        assert [inst.ch_1.coupling for _ in range(4)] == ["DC", "DCLimit", "DCLimit", "AC"]


def test_coupling_setter():
    pairs = setting("CHAN1:COUP DC") + setting("CHAN2:COUP DCL") + setting("CHAN3:COUP AC")
    with scope(pairs) as inst:
        inst.ch_1.coupling = "DC"
        inst.ch_2.coupling = "DCLimit"
        inst.ch_3.coupling = "AC"
    with scope([]) as inst, pytest.raises(ValueError):
        inst.ch_1.coupling = "GND"


def test_trigger_level_getter():
    with scope([("TRIG1:LEV2?", "0.3")]) as inst:
        assert inst.ch_2.trigger_level == 0.3


def test_trigger_level_setter():
    with scope(setting("TRIG1:LEV2 0.3") + setting("TRIG1:LEV1 -0.05")) as inst:
        inst.ch_2.trigger_level = 0.3
        inst.ch_1.trigger_level = -0.05


# ---- timebase, acquisition, trigger ------------------------------------------------------


def test_timebase_scale_getter():
    with scope([("TIM:SCAL?", "1E-4")]) as inst:
        assert inst.timebase_scale == 1e-4


def test_timebase_scale_setter():
    with scope(setting("TIM:SCAL 0.0001")) as inst:
        inst.timebase_scale = 1e-4


def test_timebase_position_getter():
    with scope([("TIM:HOR:POS?", "2.5E-4")]) as inst:
        assert inst.timebase_position == 2.5e-4


def test_timebase_position_setter():
    with scope(setting("TIM:HOR:POS 0.00025")) as inst:
        inst.timebase_position = 2.5e-4


def test_timebase_reference_getter():
    with scope([("TIM:REF?", "10")]) as inst:
        assert inst.timebase_reference == 10.0


def test_timebase_reference_setter():
    with scope(setting("TIM:REF 10.0")) as inst:
        inst.timebase_reference = 10
    with scope([]) as inst, pytest.raises(ValueError):
        inst.timebase_reference = 101


def test_record_length_getter():
    with scope([("ACQ:POIN?", "100000")]) as inst:
        assert inst.record_length == 100000


def test_record_length_setter():
    with scope(setting("ACQ:POIN 100000")) as inst:
        inst.record_length = 100000
    with scope([]) as inst, pytest.raises(TypeError):
        inst.record_length = 1e5


def test_sample_rate_getter():
    with scope([("ACQ:SRAT?", "1E+08")]) as inst:
        assert inst.sample_rate == 1e8


def test_sample_rate_setter():
    with scope(setting("ACQ:SRAT 100000000.0")) as inst:
        inst.sample_rate = 1e8


def test_trigger_source_getter():
    replies = [
        ("TRIG1:SOUR?", "CHAN2"),
        ("TRIG1:SOUR?", "CHANNEL2"),
        ("TRIG1:SOUR?", "EXTERNANALOG"),
    ]
    with scope(replies) as inst:
        assert [inst.trigger_source for _ in range(3)] == ["CHAN2", "CHAN2", "EXT"]


def test_trigger_source_setter():
    with scope(setting("TRIG1:SOUR CHAN2") + setting("TRIG1:SOUR EXT")) as inst:
        inst.trigger_source = "CHAN2"
        inst.trigger_source = "EXT"


def test_trigger_slope_getter():
    with scope([("TRIG1:EDGE:SLOP?", "POS"), ("TRIG1:EDGE:SLOP?", "NEGATIVE")]) as inst:
        assert inst.trigger_slope == "POS"
        assert inst.trigger_slope == "NEG"


def test_trigger_slope_setter():
    with scope(setting("TRIG1:EDGE:SLOP NEG")) as inst:
        inst.trigger_slope = "NEG"


def test_trigger_mode_getter():
    with scope([("TRIG1:MODE?", "NORM"), ("TRIG1:MODE?", "FREERUN")]) as inst:
        assert inst.trigger_mode == "NORM"
        assert inst.trigger_mode == "FRE"


def test_trigger_mode_setter():
    with scope(setting("TRIG1:MODE NORM") + setting("TRIG1:MODE FRE")) as inst:
        inst.trigger_mode = "NORM"
        inst.trigger_mode = "FRE"
    with scope([]) as inst, pytest.raises(ValueError):
        inst.trigger_mode = "SINGLE"


def test_external_trigger_level_getter():
    with scope([("TRIG1:LEV5?", "0.5")]) as inst:
        assert inst.external_trigger_level == 0.5


def test_external_trigger_level_setter():
    with scope(setting("TRIG1:LEV5 0.5")) as inst:
        inst.external_trigger_level = 0.5


# ---- acquisition control -----------------------------------------------------------------


def test_arm():
    with scope([("SING", None)]) as inst:
        inst.arm()


def test_wait_for_acquisition():
    with scope([("*OPC?", "1")], connection_attributes={"timeout": 2000}) as inst:
        seen = []
        read = inst.adapter._read

        def record_timeout(**kwargs):
            seen.append(inst.adapter.connection.timeout)
            return read(**kwargs)

        inst.adapter._read = record_timeout
        inst.wait_for_acquisition(30.0)
    assert seen == [30000.0]
    assert inst.adapter.connection.timeout == 2000


def test_wait_for_acquisition_timeout_clears_device():
    with scope([("*OPC?", None)], connection_attributes={"timeout": 2000}) as inst:
        inst.adapter._read = raise_visa(StatusCode.error_timeout)
        with pytest.raises(InstrumentTimeout, match="within 0.5 s") as info:
            inst.wait_for_acquisition(0.5)
    assert info.value.command == "*OPC?"
    inst.adapter.connection.clear.assert_called_once_with()
    assert inst.adapter.connection.timeout == 2000


def test_wait_for_acquisition_rejects_bad_timeout():
    with scope([]) as inst:
        for bad in (0.0, -1.0, float("inf")):
            with pytest.raises(ValueError):
                inst.wait_for_acquisition(bad)


def test_wait_for_acquisition_rejects_odd_reply():
    with scope([("*OPC?", "0")]) as inst, pytest.raises(InstrumentError, match="expected '1'"):
        inst.wait_for_acquisition(1.0)


def test_single_acquisition():
    with scope([("SING;*OPC?", "1")]) as inst:
        inst.single_acquisition(5.0)


def test_single_acquisition_timeout():
    with scope([("SING;*OPC?", None)]) as inst:
        inst.adapter._read = raise_visa(StatusCode.error_timeout)
        with pytest.raises(InstrumentTimeout) as info:
            inst.single_acquisition(5.0)
    assert info.value.command == "SING;*OPC?"


def test_settings_batch_reads_queue_once():
    pairs = [("TIM:SCAL 0.0001", None), ("ACQ:SRAT 1000000.0", None), ("TRIG1:MODE NORM", None),
             ("SYST:ERR?", OK)]
    with scope(pairs) as inst, inst.settings_batch():
        inst.timebase_scale = 1e-4
        inst.sample_rate = 1e6
        inst.trigger_mode = "NORM"


def test_settings_batch_error_names_every_setting():
    pairs = [("TIM:SCAL 0.0001", None), ("ACQ:SRAT 1000000.0", None),
             ("SYST:ERR?", '-222,"Data out of range"'), ("SYST:ERR?", OK)]
    raises = pytest.raises(InstrumentError, match="-222")
    with scope(pairs) as inst, raises as info, inst.settings_batch():
        inst.timebase_scale = 1e-4
        inst.sample_rate = 1e6
    assert info.value.command == "TIM:SCAL 0.0001; ACQ:SRAT 1000000.0"


def test_settings_batch_checks_each_setting_on_request():
    pairs = setting("TIM:SCAL 0.0001") + setting("ACQ:SRAT 1000000.0")
    with scope(pairs) as inst:
        inst.check_each_setting = True
        with inst.settings_batch():
            inst.timebase_scale = 1e-4
            inst.sample_rate = 1e6


def test_settings_batch_skips_queue_after_timeout():
    pairs = [("TIM:SCAL 0.0001", None)]
    with scope(pairs) as inst, pytest.raises(InstrumentTimeout), inst.settings_batch():
        inst.timebase_scale = 1e-4
        raise InstrumentTimeout(inst.name, "ACQ:SRAT?", "no reply")


def test_stop():
    with scope(setting("STOP")) as inst:
        inst.stop()


def test_shutdown():
    with scope(setting("STOP")) as inst:
        inst.shutdown()
    assert inst.isShutdown


def test_shutdown_raises_after_failure():
    with scope([]) as inst:
        inst.adapter._write = raise_visa(StatusCode.error_connection_lost)
        with pytest.raises(InstrumentConnectionError, match="STOP"):
            inst.shutdown()
    assert inst.isShutdown


# ---- waveform download -------------------------------------------------------------------

VOLTAGES = [0.0, 1.0, -0.5, 2.0, -1e-3]


def test_read_waveform():
    pairs = FORMAT_PAIRS + [
        ("CHAN2:DATA:HEAD?", "-1E-6,3E-6,5,1"),
        ("CHAN2:DATA?", float_block(VOLTAGES)),
    ] + CHECK
    with scope(pairs) as inst:
        time_s, voltage_v = inst.read_waveform(2)
    np.testing.assert_allclose(time_s, [-1e-6, 0.0, 1e-6, 2e-6, 3e-6], atol=1e-18)
    np.testing.assert_array_equal(voltage_v, np.array(VOLTAGES, dtype=np.float32))
    assert voltage_v.dtype == np.float64


def test_read_waveform_large_form_block():
    pairs = FORMAT_PAIRS + [
        ("CHAN1:DATA:HEAD?", "0,4E-9,5,1"),
        ("CHAN1:DATA?", float_block(VOLTAGES, large=True)),
    ] + CHECK
    with scope(pairs) as inst:
        time_s, voltage_v = inst.read_waveform(1)
    np.testing.assert_allclose(time_s, [0, 1e-9, 2e-9, 3e-9, 4e-9])
    np.testing.assert_array_equal(voltage_v, np.array(VOLTAGES, dtype=np.float32))


def test_read_waveform_single_sample():
    pairs = FORMAT_PAIRS + [
        ("CHAN1:DATA:HEAD?", "2E-6,2E-6,1,1"),
        ("CHAN1:DATA?", float_block([0.25])),
    ] + CHECK
    with scope(pairs) as inst:
        time_s, voltage_v = inst.read_waveform(1)
    assert time_s.tolist() == [2e-6]
    assert voltage_v.tolist() == [0.25]


def test_read_waveform_rejects_envelope_record():
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "-1E-6,1E-6,1000,2")] + CHECK
    rejection = pytest.raises(InstrumentError, match="2 values per sample")
    with scope(pairs) as inst, rejection as info:
        inst.read_waveform(1)
    assert info.value.command == "CHAN1:DATA:HEAD?"


def test_read_waveform_rejects_length_mismatch():
    pairs = FORMAT_PAIRS + [
        ("CHAN1:DATA:HEAD?", "0,1E-6,6,1"),
        ("CHAN1:DATA?", float_block(VOLTAGES)),
    ] + CHECK
    rejection = pytest.raises(InstrumentError, match="expected 6 float32 values")
    with scope(pairs) as inst, rejection:
        inst.read_waveform(1)


def test_read_waveform_rejects_missing_terminator():
    # One byte more than the header declares, so the LF is not where it should be.
    block = float_block(VOLTAGES)[:-1] + b"\x00\n"
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,5,1"), ("CHAN1:DATA?", block)] + CHECK
    with scope(pairs) as inst:
        discard_on_clear(inst)
        with pytest.raises(InstrumentError, match="after the binary block"):
            inst.read_waveform(1)
        inst.adapter.connection.clear.assert_called_once_with()


def test_read_waveform_rejects_indefinite_block():
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,5,1"), ("CHAN1:DATA?", b"#0abc\n")]
    pairs += CHECK
    with scope(pairs) as inst:
        discard_on_clear(inst)
        with pytest.raises(InstrumentError, match="indefinite-length"):
            inst.read_waveform(1)


def test_read_waveform_rejects_ascii_reply():
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,2,1"), ("CHAN1:DATA?", b"0.1,0.2\n")]
    pairs += CHECK
    with scope(pairs) as inst:
        discard_on_clear(inst)
        with pytest.raises(InstrumentError, match="starting with '#'"):
            inst.read_waveform(1)


def test_read_waveform_rejects_bad_header():
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,5")] + CHECK
    with scope(pairs) as inst, pytest.raises(InstrumentError, match="x_start,x_stop"):
        inst.read_waveform(1)


def test_read_waveform_rejects_bad_channel():
    with scope([]) as inst:
        for bad in (0, 5, "1", True):
            with pytest.raises(ValueError):
                inst.read_waveform(bad)


def test_read_waveform_reports_format_error():
    pairs = FORMAT_PAIRS[:3] + [("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)]
    with scope(pairs) as inst, pytest.raises(InstrumentError, match="Undefined header") as info:
        inst.read_waveform(1)
    assert info.value.command == "FORM REAL,32; FORM:BORD LSBF; EXP:WAV:INCX OFF"


def test_read_waveform_sends_format_again_after_error():
    pairs = FORMAT_PAIRS[:3] + [("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)]
    pairs += FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,2,1"),
                             ("CHAN1:DATA?", float_block([0.5, 0.25]))] + CHECK
    with scope(pairs) as inst:
        with pytest.raises(InstrumentError):
            inst.read_waveform(1)
        _, voltage_v = inst.read_waveform(1)
    assert voltage_v.tolist() == [0.5, 0.25]


def download(channel, values=(0.5, 0.25)):
    """The pairs of one channel's download without the format and the queue read."""
    return [(f"CHAN{channel}:DATA:HEAD?", "0,1E-6,2,1"),
            (f"CHAN{channel}:DATA?", float_block(list(values)))]


def test_read_waveforms_one_queue_read():
    pairs = FORMAT_PAIRS + download(1, (0.5, 0.25)) + download(2, (0.6, 0.6)) + CHECK
    with scope(pairs) as inst:
        (time_s, current_v), (_, voltage_v) = inst.read_waveforms((1, 2))
    assert time_s.tolist() == [0.0, 1e-6]
    assert current_v.tolist() == [0.5, 0.25]
    np.testing.assert_allclose(voltage_v, [0.6, 0.6], rtol=1e-7)


def test_read_waveforms_rejects_empty_and_bad_channels():
    with scope([]) as inst:
        with pytest.raises(ValueError, match="at least one"):
            inst.read_waveforms(())
        with pytest.raises(ValueError):
            inst.read_waveforms((1, 5))


def test_format_sent_once_per_connection():
    pairs = FORMAT_PAIRS + download(1) + CHECK + [("SING;*OPC?", "1")] + download(1) + CHECK
    with scope(pairs) as inst:
        inst.read_waveform(1)
        inst.single_acquisition(1.0)
        inst.read_waveform(1)


def test_format_sent_again_after_reset():
    pairs = FORMAT_PAIRS + download(1) + CHECK + [("*RST", None)] + FORMAT_PAIRS
    pairs += download(1) + CHECK
    with scope(pairs) as inst:
        inst.read_waveform(1)
        inst.reset()
        inst.read_waveform(1)


def test_format_sent_again_after_format_command():
    pairs = FORMAT_PAIRS + download(1) + CHECK + setting("FORM ASC") + FORMAT_PAIRS
    pairs += download(1) + CHECK
    with scope(pairs) as inst:
        inst.read_waveform(1)
        send_setting(inst, "FORM ASC")
        inst.read_waveform(1)


def test_format_sent_again_after_timeout():
    pairs = FORMAT_PAIRS + download(1) + CHECK + [("*OPC?", None)] + FORMAT_PAIRS
    pairs += download(1) + CHECK
    with scope(pairs) as inst:
        inst.read_waveform(1)
        read = inst.adapter._read
        inst.adapter._read = raise_visa(StatusCode.error_timeout)
        with pytest.raises(InstrumentTimeout):
            inst.wait_for_acquisition(1.0)
        inst.adapter._read = read
        inst.read_waveform(1)


def test_format_sent_again_on_request():
    pairs = FORMAT_PAIRS + download(1) + CHECK + FORMAT_PAIRS + download(1) + CHECK
    with scope(pairs) as inst:
        inst.read_waveform(1)
        inst.forget_format()
        inst.read_waveform(1)


def test_read_waveform_error_after_download():
    pairs = FORMAT_PAIRS + download(1)
    pairs += [("SYST:ERR?", '-410,"Query INTERRUPTED"'), ("SYST:ERR?", OK)]
    with scope(pairs) as inst, pytest.raises(InstrumentError, match="-410") as info:
        inst.read_waveform(1)
    assert info.value.command == "CHAN1:DATA:HEAD?; CHAN1:DATA?"


def test_read_waveform_data_timeout():
    pairs = FORMAT_PAIRS + [("CHAN1:DATA:HEAD?", "0,1E-6,5,1"), ("CHAN1:DATA?", None)]
    pairs += [("SYST:ERR?", '-230,"Data corrupt or stale"'), ("SYST:ERR?", OK)]
    with scope(pairs) as inst:
        read_bytes = inst.adapter._read_bytes

        def fail_binary_read(count, *args, **kwargs):
            # Text replies read everything (count -1); only the block read times out.
            if count == -1:
                return read_bytes(count, *args, **kwargs)
            raise VisaIOError(StatusCode.error_timeout)

        inst.adapter._read_bytes = fail_binary_read
        with pytest.raises(InstrumentTimeout, match="-230,") as info:
            inst.read_waveform(1)
    assert info.value.command == "CHAN1:DATA?"


# ---- error queue and I/O failures ------------------------------------------------------


def test_setting_error_raises_with_command():
    pairs = [
        ("TIM:SCAL 0.0001", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        ("SYST:ERR?", OK),
    ]
    with scope(pairs) as inst, pytest.raises(InstrumentError) as info:
        inst.timebase_scale = 1e-4
    assert info.value.command == "TIM:SCAL 0.0001"
    assert info.value.instrument == "R&S RTE1104"
    assert "Data out of range" in info.value.message


def test_check_errors_returns_entries():
    pairs = [("SYST:ERR?", '-221,"Settings conflict;CHAN1:SCAL"'), ("SYST:ERR?", OK)]
    with scope(pairs) as inst:
        assert inst.check_errors() == [(-221, "Settings conflict;CHAN1:SCAL")]


def test_query_timeout_names_command():
    with scope([("ACQ:SRAT?", None)]) as inst:
        inst.adapter._read = raise_visa(StatusCode.error_timeout)
        with pytest.raises(InstrumentTimeout) as info:
            _ = inst.sample_rate
    assert info.value.command == "ACQ:SRAT?"


def test_connection_lost_on_query():
    with scope([("TRIG1:MODE?", None)]) as inst:
        inst.adapter._read = raise_visa(StatusCode.error_connection_lost)
        with pytest.raises(InstrumentConnectionError) as info:
            _ = inst.trigger_mode
    assert info.value.command == "TRIG1:MODE?"


def test_close_logs_and_closes(caplog):
    with scope([]) as inst, caplog.at_level("INFO", logger="instruments"):
        inst.close()
    inst.adapter.connection.close.assert_called_once_with()
    assert "closing connection" in caplog.text


def test_connect_is_logged(caplog):
    attributes = {"resource_name": "TCPIP::10.0.0.5::INSTR"}
    with caplog.at_level("INFO", logger="instruments"), scope([], connection_attributes=attributes):
        pass
    assert "R&S RTE1104 connected (resource TCPIP::10.0.0.5::INSTR)" in caplog.text
