"""One FastAGI connection as an asyncio protocol, with exactly one command in flight."""

from __future__ import annotations

import asyncio
import enum
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, cast

from mypy_extensions import mypyc_attr

from callflow.agi.deadlines import Deadlines
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
    "AgiConnection",
    "AgiDisconnected",
    "AgiError",
    "AgiHangup",
    "AgiSession",
    "AgiTimeout",
]


class _Default(enum.Enum):
    """Sentinel type meaning "use the session's default command timeout"."""

    TOKEN = 0


#: Pass as ``timeout`` to use the session's ``command_timeout``; ``None`` means no timeout.
DEFAULT: Final = _Default.TOKEN

Timeout = float | None | _Default


# Plain Python classes when compiled (scripts/compiled-modules): a compiled class cannot
# inherit from two built-in exceptions, as AgiTimeout and AgiDisconnected do.
@mypyc_attr(native_class=False)
class AgiError(Exception):
    """Base class for session-level AGI failures."""


@mypyc_attr(native_class=False)
class AgiTimeout(AgiError, TimeoutError):
    """No reply (or no complete header) arrived in time; the connection has been dropped."""


@mypyc_attr(native_class=False)
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


class AgiConnection(asyncio.Protocol):
    """The transport side of one FastAGI connection: bytes parsed as they arrive, one waiter woken.

    The header parser runs until the blank line, then the reply parser; parsed events queue up
    in ``events`` for the session. ``on_header`` is called once with the connection when the
    header is complete, ``on_error`` when the peer is not speaking AGI before that.
    """

    def __init__(
        self,
        on_header: Callable[[AgiConnection], None] | None = None,
        on_error: Callable[[AgiConnection, ProtocolError], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        """Create the protocol (in the loop that runs it); asyncio calls connection_made.

        A server shares one ``deadlines`` among its connections; else each has its own.
        """
        # Kept: on Python 3.11 every asyncio.get_running_loop() is a getpid() system call.
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.deadlines = deadlines if deadlines is not None else Deadlines(self.loop)
        self.transport: asyncio.Transport | None = None
        self.header: Header | None = None
        self.events: deque[ReplyEvent] = deque()
        self.error: ProtocolError | None = None
        self.eof = False
        self._on_header = on_header
        self._on_error = on_error
        self._header_parser: HeaderParser | None = HeaderParser()
        self._replies = ReplyParser()
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused = False
        self._lingering = False  # the session is closed: absorb the rest, close at EOF

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        """Parse the bytes (header first, then replies) and wake the waiter."""
        if self.error is not None or self._lingering:
            return
        try:
            parser = self._header_parser
            if parser is not None:
                header = parser.feed(data)
                if header is None:
                    return
                self.header, data = header, parser.trailing
                self._header_parser = None
                if data:
                    self.events.extend(self._replies.feed(data))
                self.wake()  # before on_header, which may start the call and wait anew
                if self._on_header is not None:
                    self._on_header(self)
                return
            else:
                self.events.extend(self._replies.feed(data))
        except ProtocolError as exc:
            self.error = exc
            if self.header is None and self._on_error is not None:
                self._on_error(self, exc)
        self.wake()

    def eof_received(self) -> bool:
        """Note the peer's EOF; keep the transport for the session, unless it is closed."""
        self.eof = True
        if self._lingering:
            self.deadlines.clear(self)
            return False  # the transport closes itself
        if self.header is None and self._header_parser is not None:
            try:
                self._header_parser.eof()
            except ProtocolError as exc:  # IncompleteHeader: a quiet disconnect
                self.error = exc
                if self._on_error is not None:
                    self._on_error(self, exc)
        self.wake()
        return True

    def linger(self, timeout: float) -> None:
        """The session is closed and half-closed: absorb what comes until EOF, then close.

        Without EOF within ``timeout`` seconds the transport is closed anyway.
        """
        self._lingering = True
        self.deadlines.set(self, timeout, _linger_late)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: wake everyone waiting."""
        if self._lingering:
            self.deadlines.clear(self)
        if not self.eof:
            self.eof_received()
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def pause_writing(self) -> None:
        """The socket's send buffer is full."""
        self._paused = True

    def resume_writing(self) -> None:
        """The socket's send buffer drained."""
        self._paused = False
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def write(self, data: bytes) -> Awaitable[None] | None:
        """Write bytes; return something to await only when the peer is not reading."""
        assert self.transport is not None
        self.transport.write(data)
        if not self._paused or self.transport.is_closing():
            return None
        if self._writable is None:
            self._writable = self.loop.create_future()
        return self._writable

    def wait(self) -> asyncio.Future[None]:
        """A future to await until more events, an error or EOF arrive.

        A plain future, not a coroutine: one frame less between a reply and its command.
        """
        waiter = self._waiter = self.loop.create_future()
        return waiter

    def wake(self) -> None:
        """Wake the waiter, if any (once: the next wait makes a new one)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


class AgiSession:
    """A FastAGI conversation: the parsed header plus a strictly sequential command channel."""

    def __init__(
        self,
        connection: AgiConnection,
        *,
        command_timeout: float | None = 10.0,
        close_timeout: float = 1.0,
    ) -> None:
        """Wrap a connection whose header is complete."""
        assert connection.header is not None and connection.transport is not None
        self.header: Header = connection.header
        self.hung_up = False
        self.command_timeout = command_timeout
        self.close_timeout = close_timeout
        self._conn = connection
        self._transport = connection.transport
        self._events = connection.events
        # One command in flight: the turn, and the commands waiting for it (first come first).
        self._busy = False
        self._turns: deque[asyncio.Future[None]] | None = None  # made on first contention
        self._closed = False
        self._released = False  # half-closed by release()
        self._expired = False

    @classmethod
    async def accept(
        cls,
        sock: socket.socket,
        *,
        header_timeout: float | None = 5.0,
        command_timeout: float | None = 10.0,
    ) -> AgiSession:
        """Read the header from an accepted socket (raises IncompleteHeader, ProtocolError...)."""
        loop = asyncio.get_running_loop()
        transport, conn = await loop.connect_accepted_socket(AgiConnection, sock)
        try:
            async with asyncio.timeout(header_timeout):
                while conn.header is None:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait()
        except TimeoutError:
            transport.abort()
            raise AgiTimeout(f"no complete AGI header within {header_timeout}s") from None
        except BaseException:
            transport.abort()
            raise
        return cls(conn, command_timeout=command_timeout)

    @property
    def closed(self) -> bool:
        """True once the session has been closed or dropped."""
        return self._closed

    async def command(self, verb: str, *args: str, timeout: Timeout = DEFAULT) -> Reply:
        """Send one command and return its final reply (any code), skipping 100 and HANGUP."""
        line = format_command(verb, *args)
        limit = self.command_timeout if timeout is DEFAULT else timeout
        if self._busy:
            await self._wait_turn()
        self._busy = True
        try:
            if self._closed or self._released:
                raise AgiDisconnected("AGI session is closed")
            self._note_stale_events()
            # A deadline that drops the connection is much cheaper than asyncio.timeout().
            deadlines = self._conn.deadlines
            if limit is not None:
                deadlines.set(self, limit, _command_late)
            try:
                blocked = self._conn.write(line)
                if blocked is not None:
                    await blocked  # only when Asterisk is not reading
                return await self._read_final()
            except (AgiDisconnected, ConnectionError) as exc:
                self.abort()
                if self._expired:
                    raise AgiTimeout(f"{verb}: no reply within {limit}s") from None
                if isinstance(exc, AgiDisconnected):
                    raise
                lost = AgiDisconnected(f"{verb}: connection lost: {exc}")
                lost.__cause__ = exc  # not `raise ... from`: compiled, that drops the cause
                raise lost  # noqa: B904 (its cause is set above)
            except BaseException:
                # Cancelled or garbled mid-command: the next reply can no longer be matched.
                self.abort()
                raise
            finally:
                if limit is not None:
                    deadlines.clear(self)
        finally:
            self._pass_turn()

    async def _wait_turn(self) -> None:
        """Wait until the command in flight hands this one the turn.

        An asyncio.Lock did this; this costs no interpreted frames on the uncontended path.
        """
        waiter = self._conn.loop.create_future()
        turns = self._turns
        if turns is None:
            turns = self._turns = deque()
        turns.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.cancelled():
                if waiter in turns:  # else a turn's end already dropped it
                    turns.remove(waiter)
            else:  # handed the turn, then cancelled before it ran: hand it on
                self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        """End a command's turn: hand it to the first command still waiting, else free it."""
        turns = self._turns
        while turns:
            waiter = turns.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy = False

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
        conn, events = self._conn, self._events
        while True:
            while events:
                event = events.popleft()
                if isinstance(event, HangupNotice):
                    self.hung_up = True
                elif event.code != 100:
                    if event.code == 511:
                        self.hung_up = True
                    return event
            if conn.error is not None:
                raise conn.error
            if conn.eof or self._closed:
                raise AgiDisconnected("Asterisk closed the AGI connection")
            await conn.wait()

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
        self._transport.abort()
        self._conn.wake()

    def release(self) -> None:
        """Half-close now, so Asterisk has its channel back before the call's CDR end is built.

        ``close()`` later finishes the session.
        """
        transport = self._transport
        if self._closed or self._released or self._busy or transport.is_closing():
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:
            return
        self._released = True

    async def close(self) -> None:
        """Half-close and return; the connection closes itself at Asterisk's EOF.

        Asterisk may still send its final HANGUP line: the connection absorbs it, and closes
        at EOF or after ``close_timeout``. The call's task need not wake again for that.
        """
        if self._closed:
            return
        self.release()
        self._closed = True
        self._note_stale_events()
        conn = self._conn
        if self._released and not (conn.eof or conn.error is not None):
            conn.linger(self.close_timeout)
        else:
            self._transport.close()


def _command_late(session: AgiSession) -> None:
    """The command in flight got no reply in time: drop the connection."""
    session._expire()


def _linger_late(conn: AgiConnection) -> None:
    """Asterisk's EOF did not come within the close timeout: close without it."""
    if conn.transport is not None:
        conn.transport.close()
