"""Asyncio FastAGI server with an explicit start/stop lifecycle and per-script routing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeAlias

import structlog
from structlog.contextvars import bind_contextvars

from callflow.agi.deadlines import Deadlines
from callflow.agi.eager import start_eagerly
from callflow.agi.protocol import IncompleteHeader, ProtocolError
from callflow.agi.session import (
    AgiConnection,
    AgiDisconnected,
    AgiHangup,
    AgiSession,
    AgiTimeout,
)

__all__ = ["AgiServer", "Handler"]

Handler: TypeAlias = Callable[[AgiSession], Awaitable[None]]

log = structlog.get_logger(__name__)


def _normalise(script: str) -> str:
    """Normalise a route key the way Header.script is normalised ("/inbound")."""
    return "/" + script.strip("/")


class AgiServer:
    """Accept FastAGI connections and run the handler routed by the script path."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        backlog: int = 4096,
        command_timeout: float | None = 10.0,
        header_timeout: float = 5.0,
        default: Handler | None = None,
    ) -> None:
        """Configure the server; nothing is bound until start()."""
        self.routes = {_normalise(key): handler for key, handler in routes.items()}
        self.host = host
        self.backlog = backlog
        self.command_timeout = command_timeout
        self.header_timeout = header_timeout
        self.default = default
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Bound once and shared by every connection and task: three objects less per call.
        self._on_header: Callable[[AgiConnection], None] = self._header_received
        self._on_error: Callable[[AgiConnection, ProtocolError], None] = self._not_agi
        self._forget: Callable[[asyncio.Task[None]], None] = self._tasks.discard
        self._header_late_cb: Callable[[AgiConnection], None] = self._header_late
        self._pending: set[AgiConnection] = set()  # connected, header not yet complete
        self._deadlines: Deadlines | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port once started (useful with port=0), else the configured one."""
        server: Any = self._server  # uvloop's sockets are a list, not the tuple typeshed says
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port

    @property
    def active(self) -> int:
        """Number of connections currently being served (header phase included)."""
        return len(self._tasks) + len(self._pending)

    @property
    def serving(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None and not self._stopping

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._stopping = False
        self._loop = loop = asyncio.get_running_loop()
        self._deadlines = Deadlines(loop)
        self._server = await loop.create_server(
            self._new_connection, self.host, self._port, backlog=self.backlog
        )
        log.info("agi.server.started", host=self.host, port=self.port)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let calls in progress finish for ``grace`` seconds, cancel the rest."""
        server = self._server
        if server is None or self._stopping:
            return
        self._stopping = True
        server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (self._tasks or self._pending) and (remaining := deadline - loop.time()) > 0:
            if self._tasks:  # headers still arriving become calls: look again soon
                await asyncio.wait(set(self._tasks), timeout=min(remaining, 0.05))
            else:
                await asyncio.sleep(min(remaining, 0.05))
        for conn in list(self._pending):
            self._drop(conn)
        leftovers = set(self._tasks)
        for task in leftovers:
            task.cancel()
        if leftovers:
            log.warning("agi.server.cancelled_calls", count=len(leftovers))
            await asyncio.wait(leftovers)
        if self._deadlines is not None:  # closes connections still waiting for Asterisk's EOF
            self._deadlines.expire_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await server.wait_closed()
        self._server = None
        log.info("agi.server.stopped")

    async def __aenter__(self) -> AgiServer:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    def _new_connection(self) -> AgiConnection:
        """A protocol for a new connection, dropped if no header comes within header_timeout."""
        loop, deadlines = self._loop, self._deadlines
        assert loop is not None and deadlines is not None
        conn = AgiConnection(self._on_header, self._on_error, loop, deadlines)
        self._pending.add(conn)
        deadlines.set(conn, self.header_timeout, self._header_late_cb)
        return conn

    def _header_received(self, conn: AgiConnection) -> None:
        """The header is complete: serve the call at once, in its own task from its first wait."""
        self._pending.discard(conn)
        conn.deadlines.clear(conn)
        session = AgiSession(conn, command_timeout=self.command_timeout)
        task = start_eagerly(conn.loop, self._serve(session))
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._forget)

    def _not_agi(self, conn: AgiConnection, exc: ProtocolError) -> None:
        """The peer sent something other than an AGI header, or left before finishing it."""
        peer = _peer(conn)
        if isinstance(exc, IncompleteHeader):
            log.debug("agi.header.eof", peer=peer, error=str(exc))
        else:
            log.warning("agi.header.invalid", peer=peer, error=str(exc))
        self._drop(conn)

    def _header_late(self, conn: AgiConnection) -> None:
        """No complete header in time."""
        if conn in self._pending:
            log.warning("agi.header.timeout", peer=_peer(conn), timeout=self.header_timeout)
            self._drop(conn)

    def _drop(self, conn: AgiConnection) -> None:
        """Forget a connection that never became a call, and close it."""
        self._pending.discard(conn)
        conn.deadlines.clear(conn)
        if conn.transport is not None:
            conn.transport.abort()

    async def _serve(self, session: AgiSession) -> None:
        """Run the routed handler with the call's uniqueid bound to the log context."""
        header = session.header
        handler = self.routes.get(header.script, self.default)
        # Each call's task runs in its own copy of the context: the binding ends with it.
        bind_contextvars(uniqueid=header.uniqueid, script=header.script)
        try:
            if handler is None:
                log.warning("agi.route.unknown", query=dict(header.query))
            else:
                await handler(session)
        except asyncio.CancelledError:
            # Cancelled by stop() after the grace period: end the task normally.
            session.abort()
            log.info("agi.connection.cancelled")
            return
        except AgiHangup as exc:
            log.info("agi.handler.hangup", error=str(exc))
        except AgiDisconnected as exc:
            log.info("agi.handler.disconnected", error=str(exc))
        except AgiTimeout as exc:
            log.warning("agi.handler.timeout", error=str(exc))
        except Exception:
            log.exception("agi.handler.error")
        try:
            await session.close()
        except asyncio.CancelledError:
            session.abort()  # stop() after the grace period


def _peer(conn: AgiConnection) -> object:
    """The peer's address, for logs."""
    return conn.transport.get_extra_info("peername") if conn.transport is not None else None
