"""`callflow serve`: the FastAGI daemon's lifecycle (start, reload, graceful stop)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from callflow import contract, directory
from callflow.agi import AgiServer, AgiSession
from callflow.ami import Ami, AmiError, AmiUrl
from callflow.call.inbound import CallContext, Routing, handle_inbound
from callflow.call.reconcile import Reconciler
from callflow.config import ConfigError, load_config
from callflow.directory import Contact
from callflow.store import CdrStore

log = structlog.get_logger("callflow.daemon")


@dataclass(frozen=True)
class DaemonOptions:
    """Where the daemon reads its rules, listens, and keeps its CDRs."""

    config: Path
    database: Path
    host: str = "127.0.0.1"
    port: int = 4573
    node: str = "callflow"
    backlog: int = 4096
    command_timeout: float = 10.0
    grace: float = 30.0
    ami: AmiUrl | None = None  # reconcile calls whose AGI session was lost


class Daemon:
    """The routing daemon: rules + CDR store + FastAGI server, with an explicit lifecycle."""

    def __init__(self, options: DaemonOptions) -> None:
        """Configure the daemon; nothing runs until start()."""
        self.options = options
        self._routing: Routing | None = None
        self._store: CdrStore | None = None
        self._server: AgiServer | None = None
        self._ami: Ami | None = None
        self._reconciler: Reconciler | None = None
        self._directory: dict[str, Contact] = {}
        self._stopped = asyncio.Event()

    @property
    def routing(self) -> Routing:
        """The live routing snapshot (replaced as a whole on reload)."""
        assert self._routing is not None, "daemon not started"
        return self._routing

    @property
    def store(self) -> CdrStore:
        """The CDR store."""
        assert self._store is not None, "daemon not started"
        return self._store

    @property
    def port(self) -> int:
        """The port the FastAGI server is bound to."""
        assert self._server is not None, "daemon not started"
        return self._server.port

    async def start(self) -> None:
        """Load the rules (ConfigError if invalid), open the store, resolve leftovers, listen."""
        o = self.options
        self._routing = Routing.build(load_config(o.config))
        o.database.parent.mkdir(parents=True, exist_ok=True)
        self._store = await CdrStore.open(o.database)
        await self._start_reconciling()
        window = self.routing.config.settings.repeat_window_days * 86400
        await self._store.warm_repeat_cache(time.time() - window)
        self._directory = directory.load(o.database)
        ctx = CallContext(
            routing=lambda: self.routing, store=self._store, node=o.node,
            reconciler=self._reconciler, directory=lambda: self._directory,
        )  # fmt: skip

        async def inbound(session: AgiSession) -> None:
            await handle_inbound(session, ctx)

        self._server = AgiServer(
            {contract.SCRIPT_INBOUND: inbound},
            host=o.host,
            port=o.port,
            backlog=o.backlog,
            command_timeout=o.command_timeout,
            default=_unknown_script,
        )
        await self._server.start()
        log.info("daemon.started", host=o.host, port=self.port, config=str(o.config),
                 database=str(o.database), numbers=len(self.routing.config.numbers))  # fmt: skip

    async def _start_reconciling(self) -> None:
        """Close rows a previous run left in progress: from Asterisk's CDRs when AMI is set."""
        assert self._store is not None
        if self.options.ami is not None:
            ami = Ami(self.options.ami)
            try:
                await ami.start()
            except AmiError as exc:
                log.warning("ami.unavailable", error=str(exc))
            else:
                self._ami = ami
                self._reconciler = Reconciler(self._store, ami)
                await self._reconciler.start()
                return
        unknown = await self._store.resolve_in_progress()
        if unknown:
            log.warning("cdr.resolved_in_progress", calls=unknown, status="unknown")

    def reload(self) -> bool:
        """Reload the rules file; an invalid file is logged and the old rules stay live."""
        try:
            routing = Routing.build(load_config(self.options.config))
        except ConfigError as exc:
            log.error("config.reload_rejected", error=str(exc))
            return False
        self._routing = routing
        self._directory = directory.load(self.options.database)
        log.info("config.reloaded", numbers=len(routing.config.numbers),
                 contacts=len(self._directory))  # fmt: skip
        return True

    async def stop(self) -> None:
        """Stop accepting calls, let calls in progress finish (up to grace), flush the store."""
        if self._server is not None:
            await self._server.stop(grace=self.options.grace)
            self._server = None
        if self._reconciler is not None:
            await self._reconciler.stop()
            self._reconciler = None
        if self._ami is not None:
            await self._ami.stop()
            self._ami = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        self._stopped.set()
        log.info("daemon.stopped")

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT (graceful stop); SIGHUP reloads the rules."""
        loop = asyncio.get_running_loop()
        stopping: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            if not stopping.done():
                stopping.set_result(None)

        await self.start()
        loop.add_signal_handler(signal.SIGTERM, request_stop)
        loop.add_signal_handler(signal.SIGINT, request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            await stopping
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.stop()


async def _unknown_script(session: AgiSession) -> None:
    """A script path we don't serve: leave CALLFLOW_STATUS unset so the dialplan falls back."""
    log.warning("agi.unknown_script", script=session.header.script)
