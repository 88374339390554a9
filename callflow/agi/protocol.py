"""Pure FastAGI protocol logic: bytes in, frozen events out; no sockets, no asyncio.

The wire format follows Asterisk's ``res/res_agi.c``: an ``agi_*: value`` header ended by a
blank line, then one command line at a time answered by ``NNN ...`` reply lines, with bare
``HANGUP`` lines written inline whenever the channel hangs up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, TypeAlias
from urllib.parse import parse_qsl

__all__ = [
    "AGI_BUF_LEN",
    "MAX_ARGS",
    "CommandError",
    "HangupNotice",
    "Header",
    "HeaderParser",
    "IncompleteHeader",
    "ProtocolError",
    "Reply",
    "ReplyEvent",
    "ReplyParser",
    "format_command",
]

#: Asterisk's command read buffer; a command line (with its ``\n``) must fit in it minus the NUL.
AGI_BUF_LEN = 8192
#: Asterisk's ``argv`` size; one slot is the NULL terminator, so at most 127 words per command.
MAX_ARGS = 128

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
_EMPTY: Mapping[str, str] = MappingProxyType({})
#: Header lines as res_agi.c writes them, and as ``HeaderParser`` accepts them: ``agi_`` and a
#: name of ASCII letters, digits and underscores, a colon, then the value up to the newline
#: (the block's last line may come without it).
_LINES_RE = re.compile(rb"(?:agi_[A-Za-z0-9_]+:[^\n]*(?:\n|\Z))*\Z")
#: The numbered script arguments (at most nine digits, as ``int`` keeps them exact).
_ARG_LINE_RE = re.compile(rb"\nagi_arg_([0-9]{1,9}):")
_REPLY_RE = re.compile(r"([1-5][0-9]{2})([ -])(.*)\Z", re.DOTALL)
_VERB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?: [A-Za-z][A-Za-z0-9_]*)*\Z")


class ProtocolError(Exception):
    """The peer sent bytes that are not valid FastAGI."""


class IncompleteHeader(ProtocolError):
    """The peer closed the connection before the header's blank line (a quiet disconnect)."""


class CommandError(ValueError):
    """A command could not be encoded safely for Asterisk's command parser."""


def _decode(data: bytes) -> str:
    """Decode wire bytes leniently, keeping invalid UTF-8 as surrogates."""
    return data.decode(_ENCODING, _ERRORS)


#: What each key's line starts with, for the keys looked up so far (the daemon reads a few).
_NEEDLES: dict[str, bytes] = {}


def _needle(key: str) -> bytes:
    """What a ``key`` line starts with in a header block (empty if no line can have the key)."""
    needle = _NEEDLES.get(key)
    if needle is None:
        needle = b"\n" + key.encode("ascii") + b":" if key.isascii() else b""
        if len(_NEEDLES) < 256:
            _NEEDLES[key] = needle
    return needle


def _value(lines: bytes, key: str) -> str | None:
    """The value of the last ``key`` line of a checked header block (``\\n`` first), or None.

    As res_agi.c writes it: one space after the colon and a final ``\\r`` are not the value's.
    """
    name = _needle(key)
    at = lines.rfind(name) if name else -1
    if at < 0:
        return None
    start = at + len(name)
    end = lines.index(b"\n", start)
    if end > start and lines[end - 1] == 13:  # b"\r"
        end -= 1
    if end > start and lines[start] == 32:  # b" "
        start += 1
    return _decode(lines[start:end])


def _pairs(lines: bytes) -> dict[str, str]:
    """Every ``agi_*`` key of a checked header block with its value (the last line of a key)."""
    env: dict[str, str] = {}
    for line in lines.split(b"\n"):
        if line:
            key = line[: line.index(b":")].decode("ascii")
            env[key] = _value(lines, key) or ""
    return env


@dataclass(frozen=True, slots=True, init=False)
class Header:
    """The ``agi_*`` environment Asterisk sends when a FastAGI connection opens.

    It keeps the header's lines as they came and decodes a value when it is asked for: a call
    reads a handful of the two dozen keys.
    """

    lines: bytes = field(repr=False)
    script: str = "/"
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    args: tuple[str, ...] = ()

    def __init__(
        self,
        lines: bytes,
        script: str = "/",
        query: Mapping[str, str] = _EMPTY,
        args: tuple[str, ...] = (),
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "args", args)

    @classmethod
    def parse(cls, lines: bytes, *, args: bool = True) -> Header:
        """Build a header from its checked lines (``\\n`` first), splitting the script and query.

        ``args=False`` says no ``agi_arg_N`` line is among them (the parser knows), so none is
        looked for.
        """
        path, _, qs = (_value(lines, "agi_network_script") or "").partition("?")
        numbered: list[tuple[int, str]] = []
        if args:
            keys = {m.group(1) for m in _ARG_LINE_RE.finditer(lines)}
            numbered = sorted(
                (int(digits), _value(lines, "agi_arg_" + digits.decode("ascii")) or "")
                for digits in keys
            )
        return cls(
            lines=lines,
            script="/" + path.strip("/"),
            query=MappingProxyType(_parse_query(qs)),
            args=tuple(value for _, value in numbered),
        )

    @property
    def env(self) -> Mapping[str, str]:
        """Every ``agi_*`` key with its value, read-only (decoded anew at each use)."""
        return MappingProxyType(_pairs(self.lines))

    def get(self, name: str) -> str | None:
        """Return ``agi_<name>`` (prefix optional), or None if missing or Asterisk's ``unknown``."""
        return self._get(name if name.startswith("agi_") else "agi_" + name)

    def _get(self, key: str) -> str | None:
        """Return the value of ``key``, or None if missing or Asterisk's ``unknown``."""
        value = _value(self.lines, key)
        return None if value is None or value == "unknown" else value

    @property
    def uniqueid(self) -> str | None:
        """Asterisk's channel unique id."""
        return self._get("agi_uniqueid")

    @property
    def channel(self) -> str | None:
        """The channel name, e.g. ``PJSIP/trunk-00000001``."""
        return self._get("agi_channel")

    @property
    def callerid(self) -> str | None:
        """The caller number (ANI)."""
        return self._get("agi_callerid")

    @property
    def calleridname(self) -> str | None:
        """The caller name."""
        return self._get("agi_calleridname")

    @property
    def dnid(self) -> str | None:
        """The dialed number, ``CALLERID(dnid)``."""
        return self._get("agi_dnid")

    @property
    def extension(self) -> str | None:
        """The dialplan extension the AGI was launched from."""
        return self._get("agi_extension")

    @property
    def context(self) -> str | None:
        """The dialplan context the AGI was launched from."""
        return self._get("agi_context")


def _parse_query(qs: str) -> dict[str, str]:
    """Parse the script's query string (``%`` and ``+`` decoded as urllib does)."""
    if "%" in qs or "+" in qs or ";" in qs:
        return dict(parse_qsl(qs, keep_blank_values=True, encoding=_ENCODING, errors=_ERRORS))
    query: dict[str, str] = {}
    for pair in qs.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            query[key] = value
    return query


def _blank_line(buf: bytearray) -> tuple[int, int] | None:
    """Where the header's blank line starts and where the bytes after it begin, if it came."""
    if buf.startswith(b"\n"):
        return 0, 1
    if buf.startswith(b"\r\n"):
        return 0, 2
    best: tuple[int, int] | None = None
    for sep in (b"\n\n", b"\n\r\n"):
        at = buf.find(sep)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, at + len(sep))
    return best


class HeaderParser:
    """Incremental parser for the FastAGI header, fed raw bytes as they arrive."""

    def __init__(self, *, max_size: int = 64 * 1024, max_line: int = AGI_BUF_LEN) -> None:
        """Create a parser with limits on total header size and on each line."""
        self._max_size = max_size
        self._max_line = max_line
        self._buf = bytearray()
        self._scanned = 0
        self._size = 0
        self._args = False  # whether any line so far may be an agi_arg_N
        self._header: Header | None = None
        self.trailing = b""

    @property
    def header(self) -> Header | None:
        """The parsed header once complete, else None."""
        return self._header

    def feed(self, data: bytes) -> Header | None:
        """Consume bytes; return the Header exactly once, when its blank line arrives."""
        if self._header is not None:
            self.trailing += data
            return None
        buf = self._buf
        buf += data
        end = _blank_line(buf)
        # Lines complete so far (up to the blank line, or the last newline) are checked now,
        # so a garbled peer is refused at its first bad line, not at a blank line it never sends.
        upto = end[0] if end is not None else buf.rfind(b"\n") + 1
        if upto > self._scanned:
            self._check_lines(bytes(buf[self._scanned : upto]))
            self._scanned = upto
        if end is None:
            if len(buf) - upto >= self._max_line:
                raise ProtocolError(f"header line longer than {self._max_line} bytes")
            self._check_size(len(buf))
            return None
        after = end[1]
        self._check_size(after)
        self._size = after
        if end[0] == 0:
            raise ProtocolError("empty AGI header")
        lines = b"\n" + bytes(buf[: end[0] + 1])
        self._header = Header.parse(lines, args=self._args)
        del buf[:after]
        self.trailing = bytes(buf)
        buf.clear()
        return self._header

    def _check_lines(self, block: bytes) -> None:
        """Check complete ``agi_key: value`` lines (a block ending at a line boundary)."""
        self._args = self._args or b"agi_arg_" in block
        if len(block) < self._max_line and b"\r" not in block and _LINES_RE.match(block):
            return
        for line in block.split(b"\n"):  # line by line, to name the first bad one
            if not line:
                continue  # the empty piece after the block's final newline
            if len(line) + 1 > self._max_line:
                raise ProtocolError(f"header line longer than {self._max_line} bytes")
            self._check_line(line[:-1] if line.endswith(b"\r") else line)

    def eof(self) -> None:
        """Signal end of input; raise IncompleteHeader unless the header was complete."""
        if self._header is None:
            raise IncompleteHeader(
                f"connection closed after {self._size + len(self._buf)} header bytes"
            )

    def _check_size(self, pending: int) -> None:
        """Raise if the header has grown beyond its size limit."""
        if self._size + pending > self._max_size:
            raise ProtocolError(f"header larger than {self._max_size} bytes")

    @staticmethod
    def _check_line(line: bytes) -> None:
        """Raise unless a line is ``agi_<name>:`` and a value."""
        raw_key, sep, _ = line.partition(b":")
        # agi_ then ASCII letters, digits and underscores (bytes.isalnum is ASCII-only).
        name = raw_key[4:].replace(b"_", b"")
        if not sep or not raw_key.startswith(b"agi_") or not (name.isalnum() or not name):
            raise ProtocolError(f"not an AGI header line: {line[:80]!r}")
        if len(raw_key) == 4:
            raise ProtocolError(f"not an AGI header line: {line[:80]!r}")


class Reply(NamedTuple):
    """One complete reply from Asterisk, e.g. ``200 result=1 (value)``.

    Immutable like the other events; a named tuple because one is built per command and a
    frozen dataclass costs three times as much to build.
    """

    code: int
    result: str = ""
    data: str | None = None
    extras: Mapping[str, str] = _EMPTY
    text: str = ""

    @property
    def int_result(self) -> int | None:
        """The result token as an int, or None if absent or not numeric."""
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        """True for a final ``200`` reply."""
        return self.code == 200

    @staticmethod
    def parse(code: int, text: str, rest: str) -> Reply:
        """Build a Reply from its code, the full raw text and the part after the code."""
        if not rest.startswith("result="):
            return _reply(code, "", None, _EMPTY, text)
        result, _, tail = rest[len("result=") :].partition(" ")
        data: str | None = None
        close = tail.rfind(")")
        if tail.startswith("(") and close > 0:
            data = tail[1:close]
            tail = tail[close + 1 :]
        extras = _EMPTY
        if tail:
            found = {}
            for word in tail.split():
                key, sep, value = word.partition("=")
                if sep and key:
                    found[key] = value
            extras = MappingProxyType(found) if found else _EMPTY
        return _reply(code, result, data, extras, text)


def _reply(code: int, result: str, data: str | None, extras: Mapping[str, str], text: str) -> Reply:
    """Build a Reply from all its fields, without the named tuple's generated ``__new__``.

    That one runs interpreted, even called from compiled code, and a call builds two replies.
    """
    return tuple.__new__(Reply, (code, result, data, extras, text))


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """A bare ``HANGUP`` line: the channel hung up (may precede the reply in flight)."""


ReplyEvent: TypeAlias = Reply | HangupNotice


class ReplyParser:
    """Incremental parser for Asterisk's reply stream, fed raw bytes as they arrive."""

    def __init__(self, *, max_line: int = 64 * 1024, max_block: int = 256 * 1024) -> None:
        """Create a parser; ``max_line`` is large since GET FULL VARIABLE is unbounded."""
        self._max_line = max_line
        self._max_block = max_block
        self._buf = bytearray()
        self._scanned = 0
        self._block: list[str] | None = None
        self._block_code = ""
        self._block_size = 0

    @property
    def pending(self) -> bool:
        """True if a partial line or an unfinished multi-line block is buffered."""
        return bool(self._buf) or self._block is not None

    def feed(self, data: bytes) -> list[ReplyEvent]:
        """Consume bytes and return the complete events they finish, in order."""
        if not self._buf and data.find(b"\n") == len(data) - 1 and len(data) <= self._max_line:
            # The usual case: exactly one whole line, nothing buffered (no copy into _buf).
            event = self._line(_decode(data[:-2] if data.endswith(b"\r\n") else data[:-1]))
            return [] if event is None else [event]
        self._buf += data
        events: list[ReplyEvent] = []
        while True:
            nl = self._buf.find(b"\n", self._scanned)
            if nl < 0:
                self._scanned = len(self._buf)
                if len(self._buf) >= self._max_line:
                    raise ProtocolError(f"reply line longer than {self._max_line} bytes")
                return events
            if nl + 1 > self._max_line:
                raise ProtocolError(f"reply line longer than {self._max_line} bytes")
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            self._scanned = 0
            if line.endswith(b"\r"):
                line = line[:-1]
            event = self._line(_decode(line))
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> ReplyEvent | None:
        """Interpret one decoded line, returning an event if it completes one."""
        if self._block is not None:
            return self._block_line(line)
        if line == "HANGUP":
            return HangupNotice()
        if not line:
            return None
        if line.startswith("200 "):  # most replies
            return Reply.parse(200, line, line[4:])
        m = _REPLY_RE.match(line)
        if m is None:
            raise ProtocolError(f"unexpected line from Asterisk: {line[:80]!r}")
        code, sep, rest = m.groups()
        if sep == "-":
            self._block = [line]
            self._block_code = code
            self._block_size = len(line)
            return None
        return Reply.parse(int(code), line, rest)

    def _block_line(self, line: str) -> Reply | None:
        """Accumulate a multi-line (``520-`` ... ``520 ``) block; return it when it ends."""
        assert self._block is not None
        self._block.append(line)
        self._block_size += len(line) + 1
        if self._block_size > self._max_block:
            raise ProtocolError(f"multi-line reply larger than {self._max_block} bytes")
        if not line.startswith(self._block_code + " "):
            return None
        text = "\n".join(self._block)
        self._block = None
        return _reply(int(self._block_code), "", None, _EMPTY, text)


def _quote(value: str) -> str:
    """Quote one argument for Asterisk's ``parse_args``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=4096)  # most command lines repeat across calls
def format_command(*words: str) -> bytes:
    """Encode a command line: the first word is the verb, unquoted; the rest are quoted args."""
    if not words:
        raise CommandError("no AGI command given")
    verb, args = words[0], words[1:]
    if not isinstance(verb, str) or _VERB_RE.match(verb) is None:
        raise CommandError(f"invalid AGI command verb: {verb!r}")
    if verb.lower().startswith("failure"):
        raise CommandError("a line starting with 'failure' aborts the AGI")
    count = len(verb.split(" ")) + len(args)
    if count > MAX_ARGS - 1:
        raise CommandError(f"{count} words; Asterisk accepts at most {MAX_ARGS - 1}")
    parts = [verb]
    for arg in args:
        if not isinstance(arg, str):
            raise CommandError(f"argument must be str, not {type(arg).__name__}")
        if "\n" in arg or "\r" in arg or "\0" in arg:
            raise CommandError(f"newline or NUL in AGI argument: {arg[:40]!r}")
        parts.append(_quote(arg))
    try:
        line = (" ".join(parts) + "\n").encode(_ENCODING, _ERRORS)
    except UnicodeEncodeError as exc:
        raise CommandError(f"argument not encodable: {exc}") from None
    if len(line) > AGI_BUF_LEN - 1:
        raise CommandError(f"command is {len(line)} bytes; the limit is {AGI_BUF_LEN - 1}")
    return line
