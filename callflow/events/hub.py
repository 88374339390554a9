"""EventHub: the one object the daemon starts and stops and the call flow emits into."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from callflow.events.config import EventsConfig, parse_listen
from callflow.events.deliverylog import DELIVERY_LOG_NAME
from callflow.events.metrics import Metrics, MetricsServer
from callflow.events.model import CallEvent, envelope, payload_json, topic
from callflow.events.mqtt import MqttPublisher
from callflow.events.spool import Spool
from callflow.events.webhooks import WebhookDispatcher

__all__ = ["PENDING_WEBHOOKS_NAME", "EventHub", "delivery_log_path"]

log = structlog.get_logger("callflow.events")

#: Where unfinished webhook deliveries are kept between a stop and the next start.
PENDING_WEBHOOKS_NAME = "webhooks-pending.jsonl"
_MAX_CALLS = 100_000  # calls whose start fields are remembered until their ``ended`` event


@dataclass
class _Call:
    """What the hub remembers about a call between its events."""

    seq: int = 0
    start: dict[str, Any] = field(default_factory=dict)


def delivery_log_path(config: EventsConfig, spool_dir: Path) -> Path:
    """The webhook delivery log file: ``webhook_delivery.log``, else in the spool directory."""
    configured = config.webhook_delivery.log
    return Path(configured) if configured else spool_dir / DELIVERY_LOG_NAME


class EventHub:
    """Fans call events out to MQTT and webhooks and owns the metrics; emit() never blocks."""

    def __init__(
        self,
        config: EventsConfig,
        *,
        node: str,
        spool_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the publishers (nothing connects or listens until start())."""
        self.config = config
        self.node = node
        self.spool_dir = spool_dir
        self.clock = clock
        self.metrics = Metrics(enabled=config.metrics.listen is not None)
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self.mqtt: MqttPublisher | None = None
        if config.mqtt is not None:
            spool = Spool(spool_dir, "mqtt", config.mqtt.spool_max_events)
            self.mqtt = MqttPublisher(config.mqtt, node, spool, self.metrics)
        self.webhooks: WebhookDispatcher | None = None
        if config.webhooks:
            self.webhooks = WebhookDispatcher(
                config.webhooks,
                config.webhook_delivery,
                self.metrics,
                delivery_log_path(config, spool_dir),
                spool_dir / PENDING_WEBHOOKS_NAME,
                clock,
            )
        #: Whether events go anywhere (MQTT or webhooks configured); else only metrics count.
        #: A plain attribute, read on every call: the publishers are fixed at construction.
        self.active = self.mqtt is not None or self.webhooks is not None
        self.metrics_server: MetricsServer | None = None
        if config.metrics.listen is not None:
            host, port = parse_listen(config.metrics.listen)
            self.metrics_server = MetricsServer(self.metrics, host, port)

    @property
    def delivery_log_path(self) -> Path:
        """Where this hub logs webhook attempts (see ``delivery_log``)."""
        return delivery_log_path(self.config, self.spool_dir)

    async def start(self) -> None:
        """Open the spool, start the publisher and webhook workers, serve /metrics if configured."""
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            if self.metrics_server is not None:
                await self.metrics_server.start()
            if self.mqtt is not None:
                await self.mqtt.start()
            if self.webhooks is not None:
                await self.webhooks.start()
        except BaseException:
            await self.stop(timeout=0)  # undo what did start
            raise
        log.info(
            "events.started",
            mqtt=self.mqtt is not None,
            webhooks=len(self.config.webhooks),
            metrics=self.config.metrics.listen,
        )

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush MQTT and webhooks for up to ``timeout`` seconds; spool what is left to disk."""
        stops = []
        if self.mqtt is not None:
            stops.append(self.mqtt.stop(timeout))
        if self.webhooks is not None:
            stops.append(self.webhooks.stop(timeout))
        results = await asyncio.gather(*stops, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("events.stop_error", error=repr(result))
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        log.info("events.stopped")

    def reload_webhooks(self, config: EventsConfig) -> None:
        """Apply a reloaded ``webhooks`` list (other event settings change on restart)."""
        if self.webhooks is not None:
            self.webhooks.hooks = {hook.name: hook for hook in config.webhooks}
        elif config.webhooks:
            log.warning("events.reload_needs_restart", reason="webhooks added to a hub without any")

    def emit(self, event: CallEvent) -> None:
        """Hand an event to MQTT and webhooks (never blocks, never raises)."""
        if not self.active:
            return  # nowhere to send it: metrics only
        try:
            self._emit(event)
        except Exception as exc:
            try:
                self.metrics.events_errors.inc()
                log.error("events.emit_failed", kind=event.kind, error=repr(exc))
            except Exception:
                pass

    def _emit(self, event: CallEvent) -> None:
        """Number the call's event, complete ``ended`` with the start fields, fan out."""
        call = self._calls.get(event.uniqueid)
        if call is None:
            call = self._calls[event.uniqueid] = _Call()
            if len(self._calls) > _MAX_CALLS:
                self._calls.popitem(last=False)
        call.seq += 1
        data: dict[str, Any] = dict(event.data)
        if event.kind == "started":
            call.start = data
        elif event.kind == "ended":
            data = {**call.start, **data}
            self._calls.pop(event.uniqueid, None)
        payload = envelope(event, self.node, call.seq, data)
        if self.mqtt is not None:
            body = payload_json(payload)
            self.mqtt.submit(topic(self.mqtt.config.topic_prefix, self.node, event), body)
        if self.webhooks is not None:
            self.webhooks.submit(payload, call.start)
