"""Prometheus metrics on a registry of our own, and the loopback ``/metrics`` endpoint."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics", "MetricsServer"]

log = structlog.get_logger("callflow.events.metrics")
P = ParamSpec("P")
R = TypeVar("R")

_DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_RING_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120)
_TALK_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def _safe(method: Callable[P, None]) -> Callable[P, None]:
    """Make a metrics helper log instead of raising (the call flow must never fail on metrics)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:
            log.warning("metrics.error", helper=method.__name__, error=repr(exc))

    return wrapper


def _guarded(fn: Callable[[], float]) -> Callable[[], float]:
    """A gauge callback that reads NaN instead of failing the scrape."""

    def read() -> float:
        try:
            return float(fn())
        except Exception:
            return math.nan

    return read


class Metrics:
    """Every metric callflow exports, on its own registry (never the process-global one)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True) -> None:
        """Create the metrics on ``registry``; disabled, the per-call counts are not kept."""
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.enabled = enabled

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, namespace="callflow", registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, namespace="callflow", registry=r)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, buckets=buckets, namespace="callflow", registry=r)

        self.calls_in_progress = gauge("calls_in_progress", "Calls being routed or connected.")
        self.calls_started = counter("calls_started_total", "Inbound calls started.", ("campaign",))
        self.calls = counter(
            "calls_total",
            "Finished calls by campaign and disposition.",
            ("campaign", "disposition"),
        )
        self.ring_seconds = histogram(
            "call_ring_seconds", "Seconds a finished call rang (all attempts).", _RING_BUCKETS
        )
        self.talk_seconds = histogram(
            "call_talk_seconds", "Seconds a finished call was connected.", _TALK_BUCKETS
        )
        self.decision_seconds = histogram(
            "routing_decision_seconds", "Time to decide a call's route.", _DECISION_BUCKETS
        )
        self.agi_errors = counter("agi_errors_total", "AGI errors by kind.", ("kind",))
        self.rules_reloads = counter(
            "rules_reloads_total", "Rules reloads by result (ok, error).", ("result",)
        )
        self.cdr_queue_depth = gauge("cdr_write_queue_depth", "CDR writes not yet committed.")
        self.mqtt_backlog = gauge("mqtt_backlog", "Call events not yet acknowledged by the broker.")
        self.mqtt_spooled = gauge("mqtt_spool_events", "Call events waiting in the disk spool.")
        self.mqtt_connected = gauge("mqtt_connected", "1 while connected to the MQTT broker.")
        self.mqtt_published = counter("mqtt_published_total", "Call events the broker accepted.")
        self.mqtt_dropped = counter(
            "mqtt_dropped_total", "Call events dropped before the broker, by reason.", ("reason",)
        )
        self.webhook_backlog = gauge("webhook_backlog", "Webhook deliveries queued or in flight.")
        self.webhook_delivered = counter(
            "webhook_deliveries_total", "Webhooks delivered (2xx).", ("webhook",)
        )
        self.webhook_failures = counter(
            "webhook_failures_total", "Deliveries given up or dropped.", ("webhook", "reason")
        )
        self.webhook_attempts_failed = counter(
            "webhook_failed_attempts_total", "Failed webhook attempts.", ("webhook",)
        )
        self.events_errors = counter("events_errors_total", "Events the hub failed to handle.")

    @_safe
    def call_started(self, campaign: str | None) -> None:
        """Count a call that arrived (and is now in progress)."""
        if not self.enabled:
            return  # per-call metrics cost prometheus_client locks: only when scraped
        self.calls_started.labels(campaign or "unknown").inc()
        self.calls_in_progress.inc()

    @_safe
    def call_ended(
        self, campaign: str | None, disposition: str, ring: float = 0.0, talk: float = 0.0
    ) -> None:
        """Count a finished call with its disposition, ring and talk seconds."""
        if not self.enabled:
            return
        self.calls.labels(campaign or "unknown", disposition).inc()
        self.calls_in_progress.dec()
        self.ring_seconds.observe(max(0.0, ring))
        self.talk_seconds.observe(max(0.0, talk))

    @_safe
    def decision_latency(self, seconds: float) -> None:
        """Observe how long a routing decision took."""
        if not self.enabled:
            return
        self.decision_seconds.observe(max(0.0, seconds))

    @_safe
    def agi_error(self, kind: str) -> None:
        """Count an AGI error (``kind``: a short fixed word or exception class name)."""
        self.agi_errors.labels(kind[:64] or "unknown").inc()

    @_safe
    def rules_reload(self, ok: bool) -> None:
        """Count a rules reload, accepted or rejected."""
        self.rules_reloads.labels("ok" if ok else "error").inc()

    @_safe
    def set_cdr_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the CDR write queue depth from ``depth`` at each scrape."""
        self.cdr_queue_depth.set_function(_guarded(depth))

    @_safe
    def track(self, gauge: Gauge, value: Callable[[], float]) -> None:
        """Read a gauge from a callback at each scrape."""
        gauge.set_function(_guarded(value))

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class MetricsServer:
    """A tiny aiohttp server answering ``GET /metrics`` (loopback unless told otherwise)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        """Describe the server; nothing listens until start()."""
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        """Serve the current metrics."""
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        """Listen (OSError if the address is taken); ``port`` becomes the bound port."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("metrics.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
