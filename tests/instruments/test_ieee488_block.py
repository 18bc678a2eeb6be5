"""Tests of IEEE 488.2 block encoding and decoding, including the R&S large form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import instruments.ieee488_block as block
from instruments.ieee488_block import BlockFormatError, decode_block, encode_block, read_block


def test_encode_definite_form():
    assert encode_block(b"abc") == b"#13abc"
    assert encode_block(b"x" * 16) == b"#216" + b"x" * 16
    assert encode_block(b"") == b"#10"


def test_encode_large_form_on_request():
    assert encode_block(b"abc", large_form=True) == b"#(3)abc"


def test_encode_switches_to_large_form(monkeypatch):
    monkeypatch.setattr(block, "MAX_DEFINITE_LENGTH", 4)
    assert encode_block(b"abcde") == b"#(5)abcde"
    with pytest.raises(BlockFormatError, match="does not fit"):
        encode_block(b"abcde", large_form=False)


def test_decode_returns_payload_and_rest():
    assert decode_block(b"#15hello\n") == (b"hello", b"\n")
    assert decode_block(b"#(5)hello\n") == (b"hello", b"\n")


def test_decode_keeps_terminator_bytes_inside_payload():
    payload = b"\n#\n(\x00"
    assert decode_block(encode_block(payload) + b"\n") == (payload, b"\n")


@given(st.binary(max_size=300), st.booleans())
def test_round_trip(payload, large_form):
    assert decode_block(encode_block(payload, large_form=large_form)) == (payload, b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"13abc", "starting with '#'"),
        (b"#0abc\n", "indefinite-length"),
        (b"#x3abc", "followed by a digit"),
        (b"#2a3abc", "not a decimal number"),
        (b"#15abc", "truncated"),
        (b"#(3abc", "invalid large-form"),
        (b"#()abc", "no length"),
        (b"#(12", "truncated"),
    ],
)
def test_decode_rejects_malformed_block(data, message):
    with pytest.raises(BlockFormatError, match=message):
        decode_block(data)


def byte_stream(data):
    """Return (read_bytes, stream, requests): a reader that consumes stream and logs counts."""
    stream = bytearray(data)
    requests = []

    def read_bytes(count):
        requests.append(count)
        chunk = bytes(stream[:count])
        del stream[:count]
        return chunk

    return read_bytes, stream, requests


def test_read_block_reads_no_further_than_the_block():
    read_bytes, stream, requests = byte_stream(b"#14abcd\nNEXT")

    assert read_block(read_bytes) == b"abcd"
    assert bytes(stream) == b"\nNEXT"
    assert requests == [2, 1, 4]


def test_read_block_reads_extra_bytes_with_payload():
    read_bytes, stream, requests = byte_stream(b"#14abcd\nNEXT")

    assert read_block(read_bytes, extra_bytes=1) == b"abcd\n"
    assert bytes(stream) == b"NEXT"
    assert requests == [2, 1, 5]


def test_read_block_extra_bytes_missing_is_truncated():
    read_bytes, _, _ = byte_stream(b"#14abcd")

    with pytest.raises(BlockFormatError, match="5 bytes of block payload and terminator, got 4"):
        read_block(read_bytes, extra_bytes=1)
