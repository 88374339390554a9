"""`callflow serve`: the FastAGI daemon's lifecycle (start, reload, graceful stop)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from callflow import compiled_modules, contract, directory
from callflow.agi import AgiServer, AgiSession
from callflow.ami import Ami, AmiError, AmiUrl
from callflow.billing import load_state
from callflow.call.answers import LiveAnswers
from callflow.call.inbound import Billing, CallContext, Routing, handle_inbound
from callflow.call.reconcile import Reconciler
from callflow.call.recording import sweep
from callflow.config import Config, ConfigError, load_config
from callflow.events.hub import EventHub
from callflow.rules import Counters
from callflow.store import CdrStore
from callflow.store.writer import BATCH_INTERVAL

#: Young-generation thresholds of the garbage collector while serving (CPython's are 700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)

log = structlog.get_logger("callflow.daemon")

CURSORS_KEY = "round_robin_cursors"
HISTORY_DAYS = 32  # counters are rebuilt from this much history (monthly caps)


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
    spool_dir: Path | None = None  # events kept while MQTT/webhooks are down (default: beside db)
    watch_interval: float = 2.0  # how often the rules file is checked for changes (0: never)
    housekeeping_interval: float = 5.0  # cursors saved, recordings swept (hourly), …
    cdr_batch_interval: float = BATCH_INTERVAL  # seconds a CDR batch gathers rows


class Daemon:
    """The routing daemon: rules + counters + CDR store + FastAGI server + events."""

    def __init__(self, options: DaemonOptions) -> None:
        """Configure the daemon; nothing runs until start()."""
        self.options = options
        self._routing: Routing | None = None
        self._counters: Counters | None = None
        self._store: CdrStore | None = None
        self._server: AgiServer | None = None
        self._ami: Ami | None = None
        self._live: LiveAnswers | None = None
        self._reconciler: Reconciler | None = None
        self._gc_thresholds: tuple[int, int, int] | None = None
        self._events: EventHub | None = None
        self._billing: Billing | None = None
        self._ctx: CallContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._config_mtime = 0.0
        self._saved_cursors: dict[str, int] = {}
        self._swept_at = 0.0

    @property
    def routing(self) -> Routing:
        """The live routing snapshot (replaced as a whole on reload)."""
        assert self._routing is not None, "daemon not started"
        return self._routing

    @property
    def counters(self) -> Counters:
        """The live routing counters (caps, concurrency, cursors)."""
        assert self._counters is not None, "daemon not started"
        return self._counters

    @property
    def store(self) -> CdrStore:
        """The CDR store."""
        assert self._store is not None, "daemon not started"
        return self._store

    @property
    def events(self) -> EventHub:
        """The event hub (MQTT, webhooks, metrics)."""
        assert self._events is not None, "daemon not started"
        return self._events

    @property
    def port(self) -> int:
        """The port the FastAGI server is bound to."""
        assert self._server is not None, "daemon not started"
        return self._server.port

    async def start(self) -> None:
        """Load the rules (ConfigError if invalid), open the store, resolve leftovers, listen."""
        o = self.options
        self._config_mtime = _mtime(o.config)
        config = await asyncio.to_thread(load_config, o.config)
        self._routing = Routing.build(config)
        o.database.parent.mkdir(parents=True, exist_ok=True)
        self._store = store = await CdrStore.open(o.database, batch_interval=o.cdr_batch_interval)
        await self._start_reconciling(config)
        days = max(config.settings.repeat_window_days, self._routing.sticky_days)
        await store.warm_repeat_cache(time.time() - days * 86400)
        self._counters = await self._load_counters()
        contacts = directory.load(o.database)
        state = await store.transact(lambda conn: load_state(conn, config))
        self._billing = Billing(state, store)
        self._events = EventHub(config.events, node=o.node,
                                spool_dir=o.spool_dir or o.database.parent / "spool")  # fmt: skip
        self._events.metrics.set_cdr_queue_depth(lambda: float(store.pending))
        await self._events.start()
        self._ctx = ctx = CallContext(
            routing=self._routing, store=store, counters=self._counters, node=o.node,
            reconciler=self._reconciler, directory=contacts, events=self._events,
            billing=self._billing, live=self._live,
        )  # fmt: skip

        self._server = AgiServer(
            # A partial, not a wrapper coroutine: one frame less on every resumption of a call.
            {contract.SCRIPT_INBOUND: functools.partial(handle_inbound, ctx=ctx)},
            host=o.host,
            port=o.port,
            backlog=o.backlog,
            command_timeout=o.command_timeout,
            default=_unknown_script,
        )
        gc.freeze()  # what start-up built (rules, indexes, caches) is never walked by full GCs
        # A call's objects live for the whole call: collecting every 700 allocations walked them
        # over and over (about 300 ms per 3,000 bench calls; 65 ms at these thresholds).
        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        await self._server.start()
        self._spawn(self._housekeeping, o.housekeeping_interval)
        if o.watch_interval > 0:
            self._spawn(self._watch_config, o.watch_interval)
        log.info("daemon.started", host=o.host, port=self.port, config=str(o.config),
                 database=str(o.database), numbers=len(config.numbers),
                 rules=len(config.rules), targets=len(config.targets),
                 compiled=len(compiled_modules()))  # fmt: skip

    async def _load_counters(self) -> Counters:
        """Counters rebuilt from this month's attempts, with the saved round-robin cursors."""
        counters = Counters(self.routing.config)
        counters.load(await self.store.attempts_since(time.time() - HISTORY_DAYS * 86400))
        saved = await self.store.load_state(CURSORS_KEY)
        if saved:
            with contextlib.suppress(ValueError, TypeError):
                self._saved_cursors = {str(k): int(v) for k, v in json.loads(saved).items()}
                counters.restore_cursors(self._saved_cursors)
        return counters

    async def _start_reconciling(self, config: Config) -> None:
        """Close rows a previous run left in progress: from Asterisk's CDRs when AMI is set.

        With AMI, the ``answered`` event goes out as the agent picks up when something
        subscribes to it (MQTT, or a webhook for it); else when the Dial ends.
        """
        assert self._store is not None
        if self.options.ami is not None:
            hooks = config.events.webhooks
            if config.events.mqtt is not None or any("answered" in h.events for h in hooks):
                self._live = LiveAnswers()
            ami = Ami(self.options.ami, answers=self._live.on_event if self._live else None)
            try:
                await ami.start()
            except AmiError as exc:
                log.warning("ami.unavailable", error=str(exc))
                self._live = None
            else:
                self._ami = ami
                self._reconciler = Reconciler(self._store, ami)
                await self._reconciler.start()
                return
        unknown = await self._store.resolve_in_progress()
        if unknown:
            log.warning("cdr.resolved_in_progress", calls=unknown, status="unknown")

    async def reload(self) -> bool:
        """Reload the rules file; an invalid file is logged and the old rules stay live.

        The swap is atomic: calls in progress keep the routing snapshot they started with.
        """
        self._config_mtime = _mtime(self.options.config)
        try:
            config = await asyncio.to_thread(load_config, self.options.config)
            routing = Routing.build(config)
        except ConfigError as exc:
            log.error("config.reload_rejected", error=str(exc))
            if self._events is not None:
                self._events.metrics.rules_reload(False)
            return False
        self._routing = routing
        self.counters.reconfigure(config)
        if self._billing is not None:
            self._billing.state.reconfigure(config)
        contacts = directory.load(self.options.database)
        if self._ctx is not None:  # what the next calls see (attributes: read on every call)
            self._ctx.routing, self._ctx.directory = routing, contacts
        if self._events is not None:
            self._events.metrics.rules_reload(True)
            self._events.reload_webhooks(config.events)
        log.info("config.reloaded", numbers=len(config.numbers), rules=len(config.rules),
                 contacts=len(contacts))  # fmt: skip
        return True

    def _spawn(self, job: Callable[[], Awaitable[None]], every: float) -> None:
        """Run a job every few seconds until stop (an error is logged, never fatal)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await job()
                except Exception:
                    log.exception("daemon.job_failed", job=job.__name__)

        self._tasks.append(asyncio.get_running_loop().create_task(loop()))

    async def _watch_config(self) -> None:
        """Reload when the rules file changes on disk."""
        if _mtime(self.options.config) != self._config_mtime:
            await self.reload()

    async def _housekeeping(self) -> None:
        """Save the round-robin cursors when they moved; sweep old recordings hourly."""
        self._save_cursors()
        now = time.time()
        if now - self._swept_at >= 3600:
            self._swept_at = now
            rec = self.routing.config.recordings
            await asyncio.to_thread(sweep, rec.daemon_dir, rec.retention_days, now)

    def _save_cursors(self) -> None:
        """Keep the round-robin cursors across restarts."""
        if self._counters is None or self._store is None:
            return
        cursors = self._counters.cursors()
        if cursors != self._saved_cursors:
            self._store.save_state(CURSORS_KEY, json.dumps(cursors, sort_keys=True))
            self._saved_cursors = dict(cursors)

    async def stop(self) -> None:
        """Stop accepting calls, let calls in progress finish (up to grace), flush the store."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            await self._server.stop(grace=self.options.grace)
            self._server = None
        if self._ctx is not None and self._ctx.background:
            await asyncio.gather(*self._ctx.background, return_exceptions=True)
        if self._reconciler is not None:
            await self._reconciler.stop()
            self._reconciler = None
        if self._ami is not None:
            await self._ami.stop()
            self._ami = None
        if self._events is not None:
            await self._events.stop(timeout=5.0)
            self._events = None
        self._billing = None
        if self._store is not None:
            self._save_cursors()
            await self._store.close()
            self._store = None
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            gc.unfreeze()
            self._gc_thresholds = None
        log.info("daemon.stopped")

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT (graceful stop); SIGHUP reloads the rules."""
        loop = asyncio.get_running_loop()
        stopping: asyncio.Future[None] = loop.create_future()
        reloads: set[asyncio.Task[bool]] = set()

        def request_stop() -> None:
            if not stopping.done():
                stopping.set_result(None)

        def request_reload() -> None:
            task = loop.create_task(self.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        await self.start()
        loop.add_signal_handler(signal.SIGTERM, request_stop)
        loop.add_signal_handler(signal.SIGINT, request_stop)
        loop.add_signal_handler(signal.SIGHUP, request_reload)
        try:
            await stopping
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.stop()


def _mtime(path: Path) -> float:
    """A file's modification time (0 when it cannot be read)."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


async def _unknown_script(session: AgiSession) -> None:
    """A script path we don't serve: leave CALLFLOW_STATUS unset so the dialplan falls back."""
    log.warning("agi.unknown_script", script=session.header.script)
