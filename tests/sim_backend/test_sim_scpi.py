"""The SCPI parser and error queue of the simulated instruments, driven through their adapter."""

import pytest
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from sim_backend.scpi import HeaderPattern, ScpiError, parse_number, split_message, tokenize_header


def ask(adapter, message: str) -> str:
    adapter.write(message)
    return adapter.read()


def errors(adapter) -> list[str]:
    """Read the error queue until it is empty."""
    entries = []
    while True:
        reply = ask(adapter, "SYST:ERR?")
        if reply.split(",")[0] in ("+0", "0"):
            return entries
        entries.append(reply)


@pytest.fixture
def generator(bench):
    return bench.generator.adapter


@pytest.fixture
def scope(bench):
    return bench.scope.adapter


def test_header_pattern_short_and_long_forms():
    pattern = HeaderPattern("[SOURce#:]VOLTage[:LEVel][:IMMediate]:OFFSet")
    for header in ("SOUR2:VOLT:OFFS", "source2:voltage:level:immediate:offset", "SOUR2:VOLT:LEV:OFFS"):
        assert pattern.match(tokenize_header(header)) == {"SOUR": 2}
    assert pattern.match(tokenize_header("VOLT:OFFS")) == {"SOUR": 1}
    assert pattern.match(tokenize_header("SOURC2:VOLT:OFFS")) is None  # neither short nor long form
    assert pattern.match(tokenize_header("VOLT2:OFFS")) is None  # VOLTage takes no suffix


def test_optional_node_with_suffix():
    pattern = HeaderPattern("CHANnel#[:WAVeform#]:DATA[:VALues]")
    assert pattern.match(tokenize_header("CHAN3:DATA")) == {"CHAN": 3, "WAV": 1}
    assert pattern.match(tokenize_header("CHAN3:WAV2:DATA:VAL")) == {"CHAN": 3, "WAV": 2}


def test_split_message_with_blocks_and_strings():
    payload = b"a;b\n\x00#"
    message = b'DATA:ARB:DAC X,#16' + payload + b';:DISP:TEXT "x;y"\n'
    commands = split_message(message)
    assert [command.header for command in commands] == ["DATA:ARB:DAC", "DISP:TEXT"]
    assert commands[0].params == ["X", payload]
    assert commands[1].params == ['"x;y"']
    assert commands[1].absolute


def test_split_message_block_forms():
    assert split_message(b"D #(3)abc")[0].params == [b"abc"]
    assert split_message(b"D #0abc\x01\n")[0].params == [b"abc\x01"]
    with pytest.raises(ScpiError) as error:
        split_message(b"D #15ab")
    assert error.value.code == -161


def test_parse_number_units_and_keywords():
    assert parse_number("100US", "width", 0, 1) == pytest.approx(100e-6)
    assert parse_number("2 kHz", "f", 0, 1e6) == pytest.approx(2e3)
    assert parse_number("MAX", "f", 0, 5.0) == 5.0
    assert parse_number("def", "f", 0, 5.0, default=1.5) == 1.5
    with pytest.raises(ScpiError) as error:
        parse_number("7", "f", 0, 5.0)
    assert error.value.code == -222
    with pytest.raises(ScpiError) as error:
        parse_number("7 furlongs", "f", 0, 5.0)
    assert error.value.code == -131
    with pytest.raises(ScpiError) as error:
        parse_number("seven", "f", 0, 5.0)
    assert error.value.code == -104


def test_case_and_optional_nodes_reach_same_setting(bench, generator):
    generator.write("sour1:function:shape pulse")
    assert ask(generator, "FUNC?") == "PULS"
    generator.write("SOURCE2:FUNCTION SQU")
    assert ask(generator, "SOUR2:FUNC?") == "SQU"
    assert ask(generator, "SOUR1:FUNC?") == "PULS"
    assert errors(generator) == []


def test_compound_message_relative_and_absolute(generator):
    generator.write("SOUR1:VOLT:HIGH 1.0;LOW -0.5;:OUTP1:LOAD INF;*OPC?;:SOUR1:VOLT:HIGH?;LOW?")
    assert generator.read() == "1;+1.000000000000000E+00;-5.000000000000000E-01"
    assert errors(generator) == []


def test_relative_header_follows_previous_path(generator):
    generator.write("SOUR1:VOLT 1;FREQ 100")  # the path is SOUR1:, so FREQ is SOUR1:FREQ
    assert errors(generator) == []
    assert float(ask(generator, "SOUR1:FREQ?")) == 100.0
    generator.write("SOUR1:VOLT:HIGH 1;FREQ 200")  # the path is SOUR1:VOLT:, which has no FREQ
    assert errors(generator) == ['-113,"Undefined header;FREQ"']


def test_undefined_header_queues_113(generator, scope):
    generator.write("FOO:BAR 1")
    assert errors(generator) == ['-113,"Undefined header;FOO:BAR"']
    scope.write("CHAN1:BOGUS 3")
    assert errors(scope) == ['-113,"Undefined header;CHAN1:BOGUS"']


def test_bad_value_queues_222_and_keeps_setting(generator):
    generator.write("SOUR1:FREQ 1e9")
    assert errors(generator) == ['-222,"Data out of range;frequency 1e+09 outside 1e-06 to 3e+07"']
    assert float(ask(generator, "SOUR1:FREQ?")) == 1000.0


def test_parameter_count_errors(generator):
    generator.write("SOUR1:FREQ")
    generator.write("OUTP1 ON,OFF")
    codes = [entry.split(",")[0] for entry in errors(generator)]
    assert codes == ["-109", "-108"]


def test_error_queue_overflow(generator):
    for _ in range(25):
        generator.write("NOPE")
    entries = errors(generator)
    assert len(entries) == 20
    assert entries[-1] == '-350,"Queue overflow"'


def test_common_commands(bench, generator, scope):
    assert ask(generator, "*IDN?").startswith("Keysight Technologies,33522B")
    assert ask(scope, "*IDN?").startswith("Rohde&Schwarz,RTE1104")
    generator.write("NOPE")
    generator.write("*CLS")
    assert errors(generator) == []
    generator.write("SOUR1:FUNC PULS")
    generator.write("*RST")
    assert ask(generator, "SOUR1:FUNC?") == "SIN"
    assert ask(scope, "*OPC?") == "1"
    assert ask(scope, "SYST:ERR?") == '0,"No error"'
    assert ask(generator, "SYST:ERR?") == '+0,"No error"'


def test_unread_reply_interrupted(generator):
    generator.write("*IDN?")
    generator.write("SOUR1:FREQ?")
    assert float(generator.read()) == 1000.0
    assert errors(generator) == ['-410,"Query INTERRUPTED"']


def test_read_without_query_times_out(generator):
    with pytest.raises(VisaIOError) as error:
        generator.read()
    assert error.value.error_code == StatusCode.error_timeout
    assert errors(generator) == ['-420,"Query UNTERMINATED"']


def test_read_bytes_counts_and_termination(generator):
    generator.write("*IDN?")
    first = generator.read_bytes(4)
    rest = generator.read_bytes(-1)
    assert (first + rest).endswith(b"\n")
    assert first + rest == b"Keysight Technologies,33522B,SIM00002,simulated\n"


def test_device_clear_discards_reply(bench, generator):
    generator.write("*IDN?")
    generator.connection.clear()
    generator.write("*OPC?")
    assert generator.read() == "1"
    assert errors(generator) == []
