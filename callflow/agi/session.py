"""One FastAGI connection over asyncio streams, with exactly one command in flight."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from typing import Final

from callflow.agi.protocol import (
    HangupNotice,
    Header,
    HeaderParser,
    ProtocolError,
    Reply,
    ReplyEvent,
    ReplyParser,
    format_command,
)

__all__ = [
    "DEFAULT",
    "AgiCommandError",
    "AgiDisconnected",
    "AgiError",
    "AgiHangup",
    "AgiSession",
    "AgiTimeout",
]

_READ_SIZE = 64 * 1024


class _Default(enum.Enum):
    """Sentinel type meaning "use the session's default command timeout"."""

    TOKEN = 0


#: Pass as ``timeout`` to use the session's ``command_timeout``; ``None`` means no timeout.
DEFAULT: Final = _Default.TOKEN

Timeout = float | None | _Default


class AgiError(Exception):
    """Base class for session-level AGI failures."""


class AgiTimeout(AgiError, TimeoutError):
    """No reply (or no complete header) arrived in time; the connection has been dropped."""


class AgiDisconnected(AgiError, ConnectionError):
    """Asterisk closed the connection (or it was already closed)."""


class AgiHangup(AgiError):
    """The channel has hung up, so the command could not do its job."""


class AgiCommandError(AgiError):
    """Asterisk answered a command with an error or failure reply."""

    def __init__(self, reply: Reply, message: str | None = None) -> None:
        """Keep the offending reply for callers that want to inspect it."""
        super().__init__(message or reply.text)
        self.reply = reply


class AgiSession:
    """A FastAGI conversation: the parsed header plus a strictly sequential command channel."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        header: Header,
        *,
        trailing: bytes = b"",
        command_timeout: float | None = 10.0,
        close_timeout: float = 1.0,
    ) -> None:
        """Wrap streams whose header has already been read; ``trailing`` is what followed it."""
        self.header = header
        self.hung_up = False
        self.command_timeout = command_timeout
        self.close_timeout = close_timeout
        self._reader = reader
        self._writer = writer
        self._parser = ReplyParser()
        self._events: deque[ReplyEvent] = deque(self._parser.feed(trailing))
        self._lock = asyncio.Lock()
        self._closed = False
        self._expired = False

    @classmethod
    async def accept(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        header_timeout: float | None = 5.0,
        command_timeout: float | None = 10.0,
    ) -> AgiSession:
        """Read the header from a fresh connection (raises IncompleteHeader, ProtocolError...)."""
        parser = HeaderParser()
        header: Header | None = None
        try:
            async with asyncio.timeout(header_timeout):
                while header is None:
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        parser.eof()
                    header = parser.feed(data)
        except TimeoutError:
            raise AgiTimeout(f"no complete AGI header within {header_timeout}s") from None
        except ConnectionError as exc:
            raise AgiDisconnected(f"connection lost while reading the header: {exc}") from exc
        return cls(
            reader, writer, header, trailing=parser.trailing, command_timeout=command_timeout
        )

    @property
    def closed(self) -> bool:
        """True once the session has been closed or dropped."""
        return self._closed

    async def command(self, verb: str, *args: str, timeout: Timeout = DEFAULT) -> Reply:
        """Send one command and return its final reply (any code), skipping 100 and HANGUP."""
        line = format_command(verb, *args)
        limit = self.command_timeout if timeout is DEFAULT else timeout
        async with self._lock:
            if self._closed:
                raise AgiDisconnected("AGI session is closed")
            self._note_stale_events()
            # A plain timer that drops the connection is much cheaper than asyncio.timeout().
            timer = None
            if limit is not None:
                timer = asyncio.get_running_loop().call_later(limit, self._expire)
            try:
                writer = self._writer
                writer.write(line)
                if writer.transport.get_write_buffer_size():
                    await writer.drain()  # only when the socket did not take it all at once
                return await self._read_final()
            except (AgiDisconnected, ConnectionError) as exc:
                self.abort()
                if self._expired:
                    raise AgiTimeout(f"{verb}: no reply within {limit}s") from None
                if isinstance(exc, AgiDisconnected):
                    raise
                raise AgiDisconnected(f"{verb}: connection lost: {exc}") from exc
            except BaseException:
                # Cancelled or garbled mid-command: the next reply can no longer be matched.
                self.abort()
                raise
            finally:
                if timer is not None:
                    timer.cancel()

    def _expire(self) -> None:
        """The command in flight got no reply in time: drop the connection."""
        self._expired = True
        self.abort()

    def _note_stale_events(self) -> None:
        """Consume events that arrived between commands, keeping only the hangup flag."""
        while self._events:
            if isinstance(self._events.popleft(), HangupNotice):
                self.hung_up = True

    async def _read_final(self) -> Reply:
        """Read events until a final reply, noting HANGUP lines and skipping 100 Trying."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, HangupNotice):
                    self.hung_up = True
                elif event.code != 100:
                    if event.code == 511:
                        self.hung_up = True
                    return event
            data = await self._reader.read(_READ_SIZE)
            if not data:
                raise AgiDisconnected("Asterisk closed the AGI connection")
            self._events.extend(self._parser.feed(data))

    def _check(self, reply: Reply) -> Reply:
        """Return a 200 reply; raise AgiHangup for 511 and AgiCommandError for the rest."""
        if reply.code == 511:
            raise AgiHangup(reply.text)
        if reply.code != 200:
            raise AgiCommandError(reply)
        return reply

    async def answer(self) -> None:
        """Answer the channel."""
        reply = self._check(await self.command("ANSWER"))
        if reply.result != "0":
            raise AgiCommandError(reply, f"ANSWER failed: {reply.text}")

    async def get_data(
        self,
        prompt: str,
        timeout_ms: int,
        max_digits: int,
        *,
        timeout: Timeout = None,
    ) -> tuple[str, bool]:
        """Play ``prompt`` and collect digits; return (digits, timed_out), AgiHangup on hangup."""
        reply = self._check(
            await self.command(
                "GET DATA", prompt, str(timeout_ms), str(max_digits), timeout=timeout
            )
        )
        if reply.result == "-1":
            self.hung_up = True
            raise AgiHangup("caller hung up during GET DATA")
        return reply.result, reply.data == "timeout"

    async def stream_file(
        self,
        name: str,
        escape_digits: str = "",
        *,
        timeout: Timeout = None,
    ) -> str | None:
        """Play a file; return the escape digit pressed, or None if it played to the end."""
        reply = self._check(await self.command("STREAM FILE", name, escape_digits, timeout=timeout))
        code = reply.int_result
        if code is None or code < 0:
            raise AgiCommandError(reply, f"STREAM FILE {name!r} failed: {reply.text}")
        return chr(code) if code > 0 else None

    async def get_variable(self, name: str) -> str | None:
        """Return a channel variable (or function value), None if unset; capped at 1024 bytes."""
        return self._variable(await self.command("GET VARIABLE", name))

    async def get_full_variable(self, expr: str, channel: str | None = None) -> str | None:
        """Evaluate a ``${...}`` expression, optionally on another channel; None if unset."""
        args = (expr,) if channel is None else (expr, channel)
        return self._variable(await self.command("GET FULL VARIABLE", *args))

    def _variable(self, reply: Reply) -> str | None:
        """Interpret a GET (FULL) VARIABLE reply."""
        reply = self._check(reply)
        if reply.result == "0":
            return None
        if reply.result == "1":
            return reply.data if reply.data is not None else ""
        raise AgiCommandError(reply)

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (works after hangup)."""
        self._check(await self.command("SET VARIABLE", name, value))

    async def exec(self, app: str, *app_args: str, timeout: Timeout = None) -> Reply:
        """Run a dialplan application (args joined with ','); no timeout unless given."""
        args = (app, ",".join(app_args)) if app_args else (app,)
        return self._check(await self.command("EXEC", *args, timeout=timeout))

    async def verbose(self, msg: str, level: int = 1) -> None:
        """Log a message on the Asterisk console at the given verbosity level."""
        self._check(await self.command("VERBOSE", msg, str(level)))

    async def hangup(self) -> None:
        """Hang up the channel; a channel that is already gone is not an error."""
        reply = await self.command("HANGUP")
        if reply.code == 511:
            return
        self._check(reply)
        self.hung_up = True

    def abort(self) -> None:
        """Drop the connection at once (the conversation can no longer be trusted)."""
        self._closed = True
        self._writer.transport.abort()

    async def close(self) -> None:
        """Half-close, absorb Asterisk's final HANGUP line until EOF (briefly), then close."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        try:
            if not self._lock.locked() and not writer.is_closing():
                if writer.can_write_eof():
                    writer.write_eof()
                async with asyncio.timeout(self.close_timeout):
                    await self._drain_to_eof()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(self.close_timeout):
                    await writer.wait_closed()

    async def _drain_to_eof(self) -> None:
        """Read and discard until EOF, still noting a HANGUP line."""
        while data := await self._reader.read(_READ_SIZE):
            try:
                events = self._parser.feed(data)
            except ProtocolError:
                return
            if any(isinstance(event, HangupNotice) for event in events):
                self.hung_up = True
