"""Encode and decode IEEE 488.2 arbitrary block data, the framing of binary SCPI transfers.

A definite-length block is ``#<n><length><payload>``: one ASCII digit ``n`` (1 to 9) gives
the number of digits of ``length``, and ``length`` is the payload size in bytes. Its largest
payload is therefore 999,999,999 bytes.

Rohde & Schwarz instruments extend this for larger payloads with ``#(<length>)<payload>``,
for example ``#(3)abc``. Source: Rohde & Schwarz, "Remote control via SCPI, getting
started", section "Block data", which also describes ``#0`` (indefinite length, ended by
the message terminator NL^END). The indefinite form cannot be framed by counting bytes, so
it is rejected here.

The drivers use ``read_block`` to take a block from an instrument connection and
``encode_block`` to send one; the simulated instruments use the same two functions.
"""

from __future__ import annotations

from collections.abc import Callable

#: Largest payload of the standard definite-length form (nine length digits).
MAX_DEFINITE_LENGTH = 999_999_999


class BlockFormatError(ValueError):
    """The bytes do not form a valid IEEE 488.2 definite-length block."""


def encode_block(payload: bytes, *, large_form: bool | None = None) -> bytes:
    """Return ``payload`` framed as a block.

    ``large_form=None`` chooses the standard form and switches to the R&S form
    ``#(<length>)`` only when the payload is longer than 999,999,999 bytes. ``True``
    always uses the R&S form. ``False`` never does, so a payload too long for the standard
    form raises ``BlockFormatError``.
    """
    payload = bytes(payload)
    length = len(payload)
    if large_form is None:
        large_form = length > MAX_DEFINITE_LENGTH
    if large_form:
        return b"#(" + str(length).encode("ascii") + b")" + payload
    if length > MAX_DEFINITE_LENGTH:
        raise BlockFormatError(
            f"a payload of {length} bytes does not fit the definite-length form "
            f"(at most {MAX_DEFINITE_LENGTH} bytes); use large_form=True"
        )
    digits = str(length).encode("ascii")
    return b"#" + str(len(digits)).encode("ascii") + digits + payload


def decode_block(data: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` that starts with a block into ``(payload, rest)``.

    ``rest`` is whatever follows the payload, usually the ``\\n`` message terminator.
    """
    data = bytes(data)
    position = 0

    def take(count: int) -> bytes:
        nonlocal position
        chunk = data[position:position + count]
        position += len(chunk)
        return chunk

    payload = read_block(take)
    return payload, data[position:]


def read_block(read_bytes: Callable[[int], bytes], extra_bytes: int = 0) -> bytes:
    """Read one block through ``read_bytes(count)`` and return its payload.

    ``read_bytes`` must return exactly ``count`` bytes, or fewer only when the data ends
    (a short read is reported as a truncated block). The function reads the header a few
    bytes at a time and then the payload in one call, so it never reads past the block:
    a terminator after it is left for the caller. ``extra_bytes`` more bytes (the
    terminator the caller expects) are read with the payload and returned after it.
    """
    start = _read_exactly(read_bytes, 2, "block header")
    if start[:1] != b"#":
        raise BlockFormatError(
            f"expected a binary block starting with '#', got {start!r}; check that the "
            "instrument is set to a binary data format"
        )
    marker = start[1:2]
    if marker == b"(":
        length = _read_large_form_length(read_bytes)
    elif marker == b"0":
        raise BlockFormatError(
            "the instrument sent an indefinite-length block ('#0'), which cannot be read by "
            "byte count; configure it for definite-length blocks"
        )
    elif marker.isdigit():
        digits = _read_exactly(read_bytes, int(marker), "block length")
        if not digits.isdigit():
            raise BlockFormatError(f"block length field {digits!r} is not a decimal number")
        length = int(digits)
    else:
        raise BlockFormatError(f"invalid block header {start!r}: '#' must be followed by a digit")
    what = "block payload and terminator" if extra_bytes else "block payload"
    return _read_exactly(read_bytes, length + extra_bytes, what)


def _read_large_form_length(read_bytes: Callable[[int], bytes]) -> int:
    """Read the ``<length>)`` part of an R&S ``#(<length>)`` header."""
    digits = b""
    while True:
        character = _read_exactly(read_bytes, 1, "block length")
        if character == b")":
            break
        if not character.isdigit() or len(digits) >= 20:
            raise BlockFormatError(
                f"invalid large-form block length {digits + character!r}: expected "
                "'#(<decimal length>)'"
            )
        digits += character
    if not digits:
        raise BlockFormatError("large-form block header '#()' has no length")
    return int(digits)


def _read_exactly(read_bytes: Callable[[int], bytes], count: int, what: str) -> bytes:
    if count == 0:
        return b""
    chunk = bytes(read_bytes(count))
    if len(chunk) != count:
        raise BlockFormatError(
            f"truncated binary block: expected {count} bytes of {what}, got {len(chunk)}"
        )
    return chunk
