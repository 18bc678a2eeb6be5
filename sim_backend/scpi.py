"""A small SCPI parser and command table for the simulated SCPI instruments.

Supported syntax (IEEE 488.2 and SCPI 1999):

* case-insensitive keywords in short or long form, numeric suffixes (``SOUR2``,
  ``TRIG1:LEV2``) and optional nodes (``[SOURce#:]``, ``[:VALue]``);
* ``;``-compound messages. After ``;`` a header without a leading ``:`` continues from
  the path of the previous header, as SCPI specifies;
* common commands (``*IDN?``, ``*RST``, ...), quoted strings, and binary blocks as
  parameters: definite length (``#<n><length><bytes>``), indefinite length (``#0...``)
  and the R&S large form (``#(<length>)<bytes>``).

Command errors do not raise out of ``ScpiInstrument.execute``. They go into the
instrument's error queue with the standard SCPI codes (``-113,"Undefined header"``,
``-222,"Data out of range"``, ...), as on a real instrument. The one exception is
``QueryTimeout``, for a query that gets no reply.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Standard SCPI error codes and messages used by the simulated instruments.
ERROR_MESSAGES: dict[int, str] = {
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -131: "Invalid suffix",
    -161: "Invalid block data",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}

# Unit suffixes accepted after numbers, as multipliers. In IEEE 488.2 suffixes "M" is milli
# (MV, MS), except in MHZ and MOHM, where it is mega.
_UNIT_MULTIPLIERS: dict[str, float] = {
    "": 1.0, "V": 1.0, "MV": 1e-3, "UV": 1e-6, "VPP": 1.0,
    "S": 1.0, "MS": 1e-3, "US": 1e-6, "NS": 1e-9, "PS": 1e-12,
    "HZ": 1.0, "KHZ": 1e3, "MHZ": 1e6, "GHZ": 1e9,
    "OHM": 1.0, "KOHM": 1e3, "MOHM": 1e6,
    "DEG": 1.0, "PCT": 1.0, "SA/S": 1.0,
}
_KEYWORD = re.compile(r"([A-Za-z_]+)(\d*)")
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/]*)$")


class ScpiError(Exception):
    """An error that a simulated instrument puts into its error queue."""

    def __init__(self, code: int, detail: str | None = None):
        self.code = code
        base = ERROR_MESSAGES.get(code, "Error")
        self.text = base if not detail else f"{base};{detail}"
        super().__init__(f"{code},{self.text}")


class QueryTimeout(Exception):
    """A query whose reply never comes (the VISA read then times out)."""


@dataclass
class Command:
    """One program message unit: header, query flag and parameters (str, or bytes for blocks)."""

    header: str
    query: bool
    params: list
    absolute: bool


# ---------------------------------------------------------------- message splitting


def split_message(message: bytes) -> list[Command]:
    """Split a program message into commands; raise ScpiError for malformed input."""
    commands: list[Command] = []
    position = 0
    length = len(message)
    while position < length:
        position = _skip_whitespace(message, position)
        if position >= length:
            break
        start = position
        while position < length and message[position] not in b" \t;\r\n":
            position += 1
        header = message[start:position].decode("ascii", errors="replace")
        if not header:
            if message[position:position + 1] == b";":
                position += 1
                continue
            break
        params: list = []
        position = _skip_whitespace(message, position)
        if position < length and message[position] not in b";\r\n":
            params, position = _parse_parameters(message, position)
        query = header.endswith("?")
        if query:
            header = header[:-1]
        absolute = header.startswith(":")
        commands.append(Command(header.lstrip(":"), query, params, absolute))
        position = _skip_whitespace(message, position)
        if position < length and message[position:position + 1] == b";":
            position += 1
        elif position < length and message[position] in b"\r\n":
            position = _skip_terminators(message, position)
            if position < length:
                raise ScpiError(-102, "text after the message terminator")
    return commands


def _skip_whitespace(message: bytes, position: int) -> int:
    while position < len(message) and message[position] in b" \t":
        position += 1
    return position


def _skip_terminators(message: bytes, position: int) -> int:
    while position < len(message) and message[position] in b" \t\r\n":
        position += 1
    return position


def _parse_parameters(message: bytes, position: int) -> tuple[list, int]:
    params: list = []
    length = len(message)
    while True:
        position = _skip_whitespace(message, position)
        if position < length and message[position:position + 1] == b"#":
            block, position = _parse_block(message, position)
            params.append(block)
        elif position < length and message[position] in b"\"'":
            quote = message[position]
            end = message.find(bytes([quote]), position + 1)
            if end < 0:
                raise ScpiError(-102, "unterminated string")
            params.append(message[position:end + 1].decode("ascii", errors="replace"))
            position = end + 1
        else:
            start = position
            while position < length and message[position] not in b",;\r\n":
                position += 1
            params.append(message[start:position].decode("ascii", errors="replace").strip())
        position = _skip_whitespace(message, position)
        if position < length and message[position:position + 1] == b",":
            position += 1
            continue
        return params, position


def _parse_block(message: bytes, position: int) -> tuple[bytes, int]:
    """Parse an IEEE 488.2 block starting at ``#``; return the payload and the next position."""
    if position + 1 >= len(message):
        raise ScpiError(-161, "block header is cut off")
    marker = message[position + 1:position + 2]
    if marker == b"(":
        end = message.find(b")", position + 2)
        if end < 0:
            raise ScpiError(-161, "large block header has no closing bracket")
        size = int(message[position + 2:end])
        start = end + 1
    elif marker.isdigit():
        digits = int(marker)
        if digits == 0:
            payload = message[position + 2:]
            return payload.rstrip(b"\r\n"), len(message)
        size_text = message[position + 2:position + 2 + digits]
        if len(size_text) != digits or not size_text.isdigit():
            raise ScpiError(-161, "block length field is not numeric")
        size = int(size_text)
        start = position + 2 + digits
    else:
        raise ScpiError(-161, "expected a digit after '#'")
    if start + size > len(message):
        raise ScpiError(-161, f"block announces {size} bytes but {len(message) - start} follow")
    return message[start:start + size], start + size


# ---------------------------------------------------------------- header patterns


@dataclass(frozen=True)
class _Node:
    long: str
    short: str
    optional: bool
    suffix: bool


class HeaderPattern:
    """A SCPI header in manual notation, for example ``[SOURce#:]VOLTage[:LEVel]:OFFSet``.

    Upper-case letters form the short form, ``#`` marks a numeric suffix (default 1) and
    brackets an optional node.
    """

    def __init__(self, notation: str):
        self.notation = notation
        self.nodes = tuple(self._compile(notation))

    @staticmethod
    def _compile(notation: str) -> list[_Node]:
        nodes = []
        for optional_part, plain_part in re.findall(r"\[([^\]]+)\]|([^:\[\]]+)", notation):
            text = (optional_part or plain_part).strip(":")
            suffix = text.endswith("#")
            word = text.rstrip("#")
            short = "".join(character for character in word if not character.islower())
            nodes.append(_Node(word.upper(), short.upper(), bool(optional_part), suffix))
        return nodes

    def match(self, tokens: tuple[tuple[str, int | None], ...]) -> dict[str, int] | None:
        """Return the numeric suffixes by short node name, or None when the header differs."""
        return self._match(0, 0, tokens, {})

    def _match(self, node_index, token_index, tokens, suffixes):
        if node_index == len(self.nodes):
            return dict(suffixes) if token_index == len(tokens) else None
        node = self.nodes[node_index]
        if token_index < len(tokens):
            name, number = tokens[token_index]
            if name in (node.long, node.short) and (node.suffix or number is None):
                if node.suffix:
                    suffixes[node.short] = 1 if number is None else number
                found = self._match(node_index + 1, token_index + 1, tokens, suffixes)
                if found is not None:
                    return found
                suffixes.pop(node.short, None)
        if node.optional:
            if node.suffix:
                suffixes[node.short] = 1
            found = self._match(node_index + 1, token_index, tokens, suffixes)
            if found is not None:
                return found
            suffixes.pop(node.short, None)
        return None


@functools.lru_cache(maxsize=1024)
def tokenize_header(header: str) -> tuple[tuple[str, int | None], ...]:
    """Split ``SOUR1:VOLT:OFFS`` into ``(("SOUR", 1), ("VOLT", None), ("OFFS", None))``."""
    tokens = []
    for part in header.split(":"):
        match = _KEYWORD.fullmatch(part)
        if match is None:
            raise ScpiError(-113, f"'{part}' is not a header keyword")
        name, digits = match.groups()
        tokens.append((name.upper(), int(digits) if digits else None))
    return tuple(tokens)


# ---------------------------------------------------------------- parameter values


def parse_number(
    token, what: str, minimum: float, maximum: float, default: float | None = None,
    allow_inf: bool = False,
) -> float:
    """Parse a numeric parameter (with MIN/MAX/DEF and unit suffixes); raise ScpiError if invalid."""
    if isinstance(token, bytes):
        raise ScpiError(-104, f"{what} expects a number, not a block")
    text = token.strip().upper()
    keywords = {"MIN": minimum, "MINIMUM": minimum, "MAX": maximum, "MAXIMUM": maximum}
    if default is not None:
        keywords.update({"DEF": default, "DEFAULT": default})
    if text in keywords:
        return float(keywords[text])
    if allow_inf and text in ("INF", "INFINITY"):
        return math.inf
    match = _NUMBER.match(text)
    if match is None:
        raise ScpiError(-104, f"{what} expects a number, got '{token}'")
    value_text, unit = match.groups()
    if unit not in _UNIT_MULTIPLIERS:
        raise ScpiError(-131, f"unit '{unit}' after {what}")
    value = float(value_text) * _UNIT_MULTIPLIERS[unit]
    if not math.isfinite(value):
        raise ScpiError(-222, f"{what} {token}")
    if value < minimum or value > maximum:
        raise ScpiError(-222, f"{what} {value:g} outside {minimum:g} to {maximum:g}")
    return value


def parse_integer(token, what: str, minimum: int, maximum: int, default: int | None = None) -> int:
    """Parse an integer parameter (rounding a decimal value, as SCPI instruments do)."""
    value = parse_number(token, what, minimum, maximum, default)
    return round(value)


def parse_bool(token, what: str) -> bool:
    """Parse ON/OFF/1/0."""
    text = str(token).strip().upper()
    if text in ("ON", "1"):
        return True
    if text in ("OFF", "0"):
        return False
    raise ScpiError(-224, f"{what} expects ON or OFF, got '{token}'")


def parse_choice(token, what: str, choices: list[str]) -> str:
    """Match a keyword parameter against choices in manual notation; return its short form."""
    text = str(token).strip().upper()
    for choice in choices:
        long_form, short_form = _keyword_forms(choice)
        if text in (long_form, short_form):
            return short_form
    raise ScpiError(-224, f"{what} '{token}' is not one of {', '.join(choices)}")


@functools.lru_cache(maxsize=256)
def _keyword_forms(notation: str) -> tuple[str, str]:
    """Return the long and short form of a keyword in manual notation (``DCLimit``)."""
    node = HeaderPattern(notation).nodes[0]
    return node.long, node.short


def parse_string(token, what: str) -> str:
    """Return a quoted or bare string parameter without its quotes."""
    if isinstance(token, bytes):
        raise ScpiError(-104, f"{what} expects a string, not a block")
    text = token.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


# ---------------------------------------------------------------- the instrument base


Setter = Callable[[dict[str, int], list], None]
Getter = Callable[[dict[str, int], list], str | bytes]


@dataclass
class _Entry:
    pattern: HeaderPattern
    setter: Setter | None
    getter: Getter | None


class ScpiInstrument:
    """Base of a simulated SCPI instrument: command table, error queue, common commands.

    Subclasses register their commands with ``add`` and override ``reset``,
    ``fire_trigger`` and ``operation_complete``. ``signed_error_codes`` selects how a
    queue entry is written: ``+0,"No error"`` (33500B) or ``0,"No error"`` (RTE1104).
    """

    QUEUE_SIZE = 20

    def __init__(self, name: str, identity: str, signed_error_codes: bool):
        self.name = name
        self.identity = identity
        self._signed_error_codes = signed_error_codes
        self._entries: list[_Entry] = []
        self._lookup: dict[tuple, tuple[_Entry, dict[str, int]] | None] = {}
        self._parsed: dict[bytes, list[Command]] = {}
        self._errors: deque[tuple[int, str]] = deque()
        self._path: tuple[tuple[str, int | None], ...] = ()
        self.add("SYSTem:ERRor[:NEXT]", getter=lambda s, p: self.format_error(self.pop_error()))

    # -- command table

    def add(self, notation: str, setter: Setter | None = None, getter: Getter | None = None) -> None:
        """Register a header with its set handler and/or query handler."""
        self._entries.append(_Entry(HeaderPattern(notation), setter, getter))
        self._lookup.clear()

    # -- error queue

    def push_error(self, code: int, text: str) -> None:
        """Append an error; on overflow the last entry becomes -350 Queue overflow."""
        log.debug("%s: error %d,%s", self.name, code, text)
        if len(self._errors) >= self.QUEUE_SIZE:
            self._errors[-1] = (-350, ERROR_MESSAGES[-350])
            return
        self._errors.append((code, text))

    def pop_error(self) -> tuple[int, str]:
        """Remove and return the oldest error, or ``(0, "No error")``."""
        if not self._errors:
            return 0, "No error"
        return self._errors.popleft()

    def format_error(self, error: tuple[int, str]) -> str:
        """Format an error queue entry as the instrument sends it."""
        code, text = error
        number = f"{code:+d}" if self._signed_error_codes else f"{code:d}"
        return f'{number},"{text}"'

    @property
    def errors(self) -> list[tuple[int, str]]:
        """Entries now in the error queue, oldest first (for tests; nothing is removed)."""
        return list(self._errors)

    # -- hooks for subclasses

    def reset(self) -> None:
        """Return every setting to its ``*RST`` value."""

    def fire_trigger(self) -> None:
        """Handle ``*TRG``."""

    def operation_complete(self) -> str:
        """Wait for pending operations (``*OPC?``) and return ``"1"``."""
        return "1"

    # -- execution

    def execute(self, message: bytes) -> list[str | bytes]:
        """Execute one program message; return the replies of its queries, in order.

        A reply is text, or bytes for a binary block.

        Raises QueryTimeout when a query gets no reply, so the caller's read times out.
        Every other problem goes into the error queue.
        """
        try:
            commands = self._split(message)
        except ScpiError as error:
            self.push_error(error.code, error.text)
            return []

        replies: list[str | bytes] = []
        self._path = ()
        for index, command in enumerate(commands):
            try:
                reply = self._execute_one(command, first=index == 0)
            except ScpiError as error:
                self.push_error(error.code, error.text)
                if error.code > -200:  # a command error ends parsing of the message
                    break
                continue
            if reply is not None:
                replies.append(reply)
        return replies

    def _split(self, message: bytes) -> list[Command]:
        """Split a message, reusing the result for short repeated messages without blocks."""
        cacheable = len(message) <= 256 and b"#" not in message
        if cacheable and message in self._parsed:
            return self._parsed[message]
        commands = split_message(message)
        if cacheable:
            if len(self._parsed) >= 4096:
                self._parsed.clear()
            self._parsed[message] = commands
        return commands

    def _execute_one(self, command: Command, first: bool) -> str | bytes | None:
        if command.header.startswith("*"):
            return self._execute_common(command)

        own_tokens = tokenize_header(command.header)
        tokens = own_tokens if (first or command.absolute) else self._path + own_tokens
        self._path = tokens[:-1]

        found = self._find(tokens)
        if found is None:
            raise ScpiError(-113, command.header)
        entry, suffixes = found
        if command.query:
            if entry.getter is None:
                raise ScpiError(-113, f"{command.header} has no query form")
            return entry.getter(dict(suffixes), command.params)
        if entry.setter is None:
            raise ScpiError(-113, f"{command.header} is a query only")
        entry.setter(dict(suffixes), command.params)
        return None

    def _find(self, tokens: tuple[tuple[str, int | None], ...]) -> tuple[_Entry, dict[str, int]] | None:
        """Return the command-table entry matching a header and its suffixes (cached)."""
        key = tokens
        if key not in self._lookup:
            self._lookup[key] = None
            for entry in self._entries:
                suffixes = entry.pattern.match(tokens)
                if suffixes is not None:
                    self._lookup[key] = (entry, suffixes)
                    break
        return self._lookup[key]

    def _execute_common(self, command: Command) -> str | None:
        name = command.header.upper() + ("?" if command.query else "")
        if name == "*IDN?":
            return self.identity
        if name == "*RST":
            self.reset()
            return None
        if name == "*CLS":
            self._errors.clear()
            return None
        if name == "*OPC?":
            return self.operation_complete()
        if name in ("*OPC", "*WAI"):
            try:
                self.operation_complete()
            except QueryTimeout:
                pass  # nothing waits for a reply, so nothing times out
            return None
        if name == "*TRG":
            self.fire_trigger()
            return None
        if name in ("*ESR?", "*STB?"):
            return "4" if self._errors else "0"
        if name in ("*ESE", "*SRE"):
            return None
        if name in ("*ESE?", "*SRE?"):
            return "0"
        raise ScpiError(-113, command.header)


def require_params(params: list, count: int, what: str) -> None:
    """Raise the SCPI error for a wrong number of parameters."""
    if len(params) < count:
        raise ScpiError(-109, what)
    if len(params) > count:
        raise ScpiError(-108, what)
