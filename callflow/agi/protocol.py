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
_ARG_RE = re.compile(r"agi_arg_([0-9]{1,9})\Z")
#: The keys res_agi.c sends (``setup_env``), besides ``agi_arg_N``: recognised by one lookup.
# fmt: off
_KEYS = frozenset({
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language",
    "agi_type", "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname",
    "agi_callingpres", "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid",
    "agi_rdnis", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
    "agi_accountcode", "agi_threadid",
})
# fmt: on
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


@dataclass(frozen=True, slots=True, init=False)
class Header:
    """The ``agi_*`` environment Asterisk sends when a FastAGI connection opens."""

    env: Mapping[str, str] = field(hash=False)
    script: str = "/"
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    args: tuple[str, ...] = ()

    def __init__(
        self,
        env: Mapping[str, str],
        script: str = "/",
        query: Mapping[str, str] = _EMPTY,
        args: tuple[str, ...] = (),
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "env", env)
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "args", args)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, args: bool = True) -> Header:
        """Build a header from decoded ``agi_*`` pairs, splitting the script path and query.

        ``args=False`` says no ``agi_arg_N`` key is among them (the parser knows), so none is
        looked for.
        """
        raw_script = env.get("agi_network_script", "")
        path, _, qs = raw_script.partition("?")
        script = "/" + path.strip("/")
        query = _parse_query(qs)
        numbered = (
            sorted(
                (int(m.group(1)), value)
                for key, value in env.items()
                if key.startswith("agi_arg_") and (m := _ARG_RE.match(key)) is not None
            )
            if args
            else []
        )
        return cls(
            env=MappingProxyType(env if isinstance(env, _OwnedEnv) else dict(env)),
            script=script,
            query=MappingProxyType(query),
            args=tuple(value for _, value in numbered),
        )

    def get(self, name: str) -> str | None:
        """Return ``agi_<name>`` (prefix optional), or None if missing or Asterisk's ``unknown``."""
        key = name if name.startswith("agi_") else "agi_" + name
        value = self.env.get(key)
        return None if value is None or value == "unknown" else value

    @property
    def uniqueid(self) -> str | None:
        """Asterisk's channel unique id."""
        return self.get("uniqueid")

    @property
    def channel(self) -> str | None:
        """The channel name, e.g. ``PJSIP/trunk-00000001``."""
        return self.get("channel")

    @property
    def callerid(self) -> str | None:
        """The caller number (ANI)."""
        return self.get("callerid")

    @property
    def calleridname(self) -> str | None:
        """The caller name."""
        return self.get("calleridname")

    @property
    def dnid(self) -> str | None:
        """The dialed number, ``CALLERID(dnid)``."""
        return self.get("dnid")

    @property
    def extension(self) -> str | None:
        """The dialplan extension the AGI was launched from."""
        return self.get("extension")

    @property
    def context(self) -> str | None:
        """The dialplan context the AGI was launched from."""
        return self.get("context")


class _OwnedEnv(dict[str, str]):
    """A header parser's own env dict: handed to the Header without a defensive copy."""


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
        self._env: dict[str, str] = _OwnedEnv()
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
            self._add_lines(bytes(buf[self._scanned : upto]))
            self._scanned = upto
        if end is None:
            if len(buf) - upto >= self._max_line:
                raise ProtocolError(f"header line longer than {self._max_line} bytes")
            self._check_size(len(buf))
            return None
        after = end[1]
        self._check_size(after)
        self._size = after
        del buf[:after]
        return self._finish()

    def _add_lines(self, block: bytes) -> None:
        """Record complete ``agi_key: value`` lines (a block ending at a line boundary)."""
        args = b"agi_arg_" in block
        self._args = self._args or args
        if len(block) < self._max_line and b"\r" not in block and self._add_known(block, args):
            return
        for line in block.split(b"\n"):  # line by line, to name the first bad one
            if not line:
                continue  # the empty piece after the block's final newline
            if len(line) + 1 > self._max_line:
                raise ProtocolError(f"header line longer than {self._max_line} bytes")
            self._add_line(line[:-1] if line.endswith(b"\r") else line)

    def _add_known(self, block: bytes, args: bool) -> bool:
        """Record the block's lines if each is ``key: value`` with a key res_agi.c sends.

        False at the first other line; ``_add_line`` then decides, line by line.
        """
        env = self._env
        for line in _decode(block).split("\n"):
            key, sep, value = line.partition(": ")
            if sep and (key in _KEYS or (args and _ARG_RE.match(key) is not None)):
                env[key] = value
            elif line:  # not the empty piece after the block's final newline
                return False
        return True

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

    def _add_line(self, line: bytes) -> None:
        """Record one ``agi_key: value`` line."""
        raw_key, sep, raw_value = line.partition(b":")
        # agi_ then ASCII letters, digits and underscores (bytes.isalnum is ASCII-only).
        name = raw_key[4:].replace(b"_", b"")
        if not sep or not raw_key.startswith(b"agi_") or not (name.isalnum() or not name):
            raise ProtocolError(f"not an AGI header line: {line[:80]!r}")
        if len(raw_key) == 4:
            raise ProtocolError(f"not an AGI header line: {line[:80]!r}")
        key = raw_key.decode("ascii")
        if raw_value.startswith(b" "):
            raw_value = raw_value[1:]
        self._env[key] = _decode(raw_value)

    def _finish(self) -> Header:
        """Build the Header at the blank line and keep any bytes that followed it."""
        if not self._env:
            raise ProtocolError("empty AGI header")
        self._header = Header.from_env(self._env, args=self._args)
        self.trailing = bytes(self._buf)
        self._buf.clear()
        return self._header


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
