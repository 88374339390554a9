"""Asyncio FastAGI server with an explicit start/stop lifecycle and per-script routing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TypeAlias

import structlog
from structlog.contextvars import bound_contextvars

from callflow.agi.protocol import IncompleteHeader, ProtocolError
from callflow.agi.session import (
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
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port once started (useful with port=0), else the configured one."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def active(self) -> int:
        """Number of connections currently being served (header phase included)."""
        return len(self._tasks)

    @property
    def serving(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None and not self._stopping

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._stopping = False
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self._port, backlog=self.backlog
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
        while self._tasks and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)
        leftovers = set(self._tasks)
        for task in leftovers:
            task.cancel()
        if leftovers:
            log.warning("agi.server.cancelled_calls", count=len(leftovers))
            await asyncio.wait(leftovers)
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

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection; every failure stays inside it."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._stopping:
                return
            session = await self._accept(reader, writer)
            if session is not None:
                await self._serve(session)
        except asyncio.CancelledError:
            # Cancelled by stop() after the grace period.  End normally: Python 3.11's
            # start_server callback calls task.exception() and would log a cancelled task.
            log.info("agi.connection.cancelled")
        except Exception:
            log.exception("agi.connection.error")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AgiSession | None:
        """Read the header, returning None (and logging) for a peer that is not speaking AGI."""
        peer = writer.get_extra_info("peername")
        try:
            return await AgiSession.accept(
                reader,
                writer,
                header_timeout=self.header_timeout,
                command_timeout=self.command_timeout,
            )
        except (IncompleteHeader, AgiDisconnected) as exc:
            log.debug("agi.header.eof", peer=peer, error=str(exc))
        except AgiTimeout as exc:
            log.warning("agi.header.timeout", peer=peer, error=str(exc))
        except ProtocolError as exc:
            log.warning("agi.header.invalid", peer=peer, error=str(exc))
        return None

    async def _serve(self, session: AgiSession) -> None:
        """Run the routed handler with the call's uniqueid bound to the log context."""
        header = session.header
        handler = self.routes.get(header.script, self.default)
        with bound_contextvars(uniqueid=header.uniqueid, script=header.script):
            try:
                if handler is None:
                    log.warning("agi.route.unknown", query=dict(header.query))
                else:
                    await handler(session)
            except asyncio.CancelledError:
                session.abort()
                raise
            except AgiHangup as exc:
                log.info("agi.handler.hangup", error=str(exc))
            except AgiDisconnected as exc:
                log.info("agi.handler.disconnected", error=str(exc))
            except AgiTimeout as exc:
                log.warning("agi.handler.timeout", error=str(exc))
            except Exception:
                log.exception("agi.handler.error")
            await session.close()
