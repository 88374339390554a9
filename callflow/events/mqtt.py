"""The MQTT publisher: a bounded memory queue, one publishing task, a disk spool while offline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiomqtt
import structlog

from callflow.events.config import MqttConfig
from callflow.events.droplog import DropLog
from callflow.events.metrics import Metrics
from callflow.events.model import SCHEMA, topic_level
from callflow.events.spool import Spool

__all__ = ["MqttPublisher", "status_topic"]

log = structlog.get_logger("callflow.events.mqtt")
T = TypeVar("T")
_BATCH = 100  # spooled events read (and their cursor committed) at a time
_STABLE = 10.0  # seconds a connection must last for the reconnect delay to start over


class _Closing(Exception):
    """Raised inside the publisher task when stop() was asked while offline."""


@dataclass(frozen=True, slots=True)
class _Message:
    """One MQTT message waiting to be published."""

    topic: str
    payload: bytes


def status_topic(prefix: str, node: str) -> str:
    """``<prefix>/<node>/status``: retained ``online``/``offline`` state of the daemon."""
    return f"{prefix}/{topic_level(node)}/status"


def _status(node: str, online: bool) -> bytes:
    """The retained status payload."""
    return json.dumps({"schema": SCHEMA, "node": node, "online": online}).encode()


class MqttPublisher:
    """Publishes messages in order, at least once (QoS 1), spooling to disk while offline."""

    def __init__(
        self,
        config: MqttConfig,
        node: str,
        spool: Spool,
        metrics: Metrics,
        client_factory: Callable[[], aiomqtt.Client] | None = None,
    ) -> None:
        """Describe the publisher; nothing connects until start()."""
        self.config = config
        self.node = node
        self.spool = spool
        self.metrics = metrics
        self._client_factory = client_factory or self._new_client
        self._queue: deque[_Message] = deque()
        self._high_water = max(1, config.queue_max // 2)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False
        self._closed = False
        self._tls: ssl.SSLContext | None = None
        self._lost_seen = 0
        self._drops = DropLog(log, "mqtt.dropped")
        self.connected = False
        self.status_topic = status_topic(config.topic_prefix, node)
        metrics.track(metrics.mqtt_backlog, lambda: self.backlog)
        metrics.track(metrics.mqtt_spooled, lambda: self.spool.count)

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged by the broker (memory queue + spool)."""
        return len(self._queue) + self.spool.count

    def submit(self, topic: str, payload: bytes) -> None:
        """Queue a message (O(1), never blocks); count and log it if it must be dropped."""
        if self._closed:
            self._drop(1, "stopped")
        elif len(self._queue) >= self.config.queue_max:
            self._drop(1, "queue_full")
        else:
            self._queue.append(_Message(topic, payload))
            self._wake.set()

    def _drop(self, count: int, reason: str) -> None:
        """Count and log (rate-limited) dropped messages."""
        self.metrics.mqtt_dropped.labels(reason).inc(count)
        self._drops.dropped(count, reason, backlog=self.backlog)

    async def start(self) -> None:
        """Open the spool (events left by the last run are sent first) and start publishing."""
        self._started = True
        waiting = self.spool.open()
        if waiting:
            log.info("mqtt.spool_found", events=waiting, directory=str(self.spool.directory))
        if self.config.tls:
            self._tls = ssl.create_default_context(cafile=self.config.ca_file)
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self, timeout: float) -> None:
        """Publish what can be within ``timeout`` seconds, then spool the rest to disk."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task})
            self._task = None
        self._closed = True
        if not self._started and self._queue:  # emitted before a start that never came
            with contextlib.suppress(OSError):
                self.spool.open()
        self._spool_memory()
        self.spool.close()
        self._drops.flush(backlog=self.backlog)
        if self.spool.count:
            log.warning("mqtt.stopped_with_spool", events=self.spool.count)

    def _new_client(self) -> aiomqtt.Client:
        """A fresh aiomqtt client for one connection attempt."""
        c = self.config
        return aiomqtt.Client(
            c.host,
            c.port,
            username=c.username,
            password=c.password,
            identifier=c.client_id,
            keepalive=c.keepalive,
            timeout=c.publish_timeout,
            tls_context=self._tls,
            will=aiomqtt.Will(self.status_topic, _status(self.node, False), qos=1, retain=True),
        )

    async def _run(self) -> None:
        """Run the publisher; a bug is logged and the publisher restarted, never left dead."""
        while not self._closing:
            try:
                await self._connect_loop()
            except Exception as exc:
                log.exception("mqtt.publisher_bug", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _connect_loop(self) -> None:
        """Connect, publish, reconnect with exponential backoff; spool while offline."""
        delay = self.config.backoff_initial
        failures = 0
        while not self._closing:
            client = self._client_factory()
            try:
                await self._offline_until(client.__aenter__(), until_done=True)
            except _Closing:
                return
            except Exception as exc:
                failures += 1
                report = log.warning if failures == 1 else log.debug
                report(
                    "mqtt.connect_failed",
                    error=str(exc),
                    retry_in=delay,
                    failures=failures,
                    backlog=self.backlog,
                )
                try:
                    await self._offline_until(asyncio.sleep(delay))
                except _Closing:
                    return
                delay = min(delay * 2, self.config.backoff_max)
                continue
            log.info(
                "mqtt.connected",
                host=self.config.host,
                port=self.config.port,
                backlog=self.backlog,
                after_failures=failures,
            )
            failures = 0
            since = asyncio.get_running_loop().time()
            await self._connected(client)
            if asyncio.get_running_loop().time() - since >= _STABLE:
                delay = self.config.backoff_initial
                continue
            try:  # dropped soon after connecting: back off before the next try
                await self._offline_until(asyncio.sleep(delay))
            except _Closing:
                return
            delay = min(delay * 2, self.config.backoff_max)

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Publish on one connection until it drops or stop() drains it."""
        self._set_online(True)
        disconnected: asyncio.Future[Any] | None = getattr(client, "_disconnected", None)
        try:
            await self._publish(client, disconnected, self.status_topic, _status(self.node, True))
            await self._pump(client, disconnected)
            with contextlib.suppress(Exception):
                await self._publish(
                    client, disconnected, self.status_topic, _status(self.node, False)
                )
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            log.warning("mqtt.disconnected", error=str(exc), backlog=self.backlog)
        finally:
            self._set_online(False)
            if disconnected is not None and disconnected.done() and not disconnected.cancelled():
                disconnected.exception()  # retrieved: no "exception never retrieved" noise
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.__aexit__(None, None, None), 1.0)

    def _set_online(self, online: bool) -> None:
        """Record the connection state."""
        self.connected = online
        self.metrics.mqtt_connected.set(1 if online else 0)

    async def _offline_until(self, awaitable: Awaitable[T], until_done: bool = False) -> T:
        """Await while spooling queued messages; stop() ends the wait unless ``until_done``."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                self._spool_memory()
                if task.done():
                    return task.result()
                if self._closing and not until_done:
                    raise _Closing
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _spool_memory(self) -> None:
        """Move every queued message to the tail of the spool (bounded; overflow is dropped)."""
        self._count_lost()
        if not self._queue:
            return
        records = [{"t": m.topic, "p": m.payload.decode()} for m in self._queue]
        self._queue.clear()
        try:
            dropped = self.spool.append(records)
        except OSError as exc:
            log.error("mqtt.spool_error", error=str(exc), directory=str(self.spool.directory))
            self._drop(len(records), "spool_error")
            return
        if dropped:
            self._drop(dropped, "spool_full")

    def _count_lost(self) -> None:
        """Count spooled records lost to corrupt files."""
        if self.spool.lost > self._lost_seen:
            self._drop(self.spool.lost - self._lost_seen, "spool_corrupt")
            self._lost_seen = self.spool.lost

    async def _pump(self, client: aiomqtt.Client, disconnected: asyncio.Future[Any] | None) -> None:
        """Send the spool, then the memory queue, in order; return when stopping and drained."""
        while True:
            if self.spool.count:
                if len(self._queue) >= self._high_water:
                    self._spool_memory()  # keep order: newer messages queue behind the spool
                await self._send_spooled(client, disconnected)
            elif self._queue:
                message = self._queue[0]
                await self._publish(client, disconnected, message.topic, message.payload)
                self._queue.popleft()
                self.metrics.mqtt_published.inc()
            elif self._closing:
                return
            else:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                watch: set[asyncio.Future[Any]] = {waiter}
                if disconnected is not None:
                    watch.add(disconnected)
                try:
                    await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if disconnected is not None and disconnected.done():
                    raise aiomqtt.MqttError("connection lost")

    async def _send_spooled(
        self, client: aiomqtt.Client, disconnected: asyncio.Future[Any] | None
    ) -> None:
        """Publish one batch from the spool's head, acknowledging each message as it is sent."""
        batch = self.spool.peek(_BATCH)
        self._count_lost()
        sent = 0
        try:
            for record in batch:
                topic, payload = record.get("t"), record.get("p")
                if isinstance(topic, str) and isinstance(payload, str):
                    await self._publish(client, disconnected, topic, payload.encode())
                    self.metrics.mqtt_published.inc()
                else:
                    self._drop(1, "spool_corrupt")
                sent += 1
        finally:
            self.spool.advance(sent)
            self.spool.commit()

    async def _publish(
        self,
        client: aiomqtt.Client,
        disconnected: asyncio.Future[Any] | None,
        topic: str,
        payload: bytes,
    ) -> None:
        """Publish one message; wait for the broker's acknowledgement or the connection's loss."""
        c = self.config
        publish = asyncio.ensure_future(
            client.publish(topic, payload, qos=c.qos, retain=c.retain, timeout=c.publish_timeout)
        )
        if disconnected is None:
            await publish
            return
        try:
            await asyncio.wait({publish, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not publish.done():
                publish.cancel()
                with contextlib.suppress(BaseException):
                    await publish
        if publish.cancelled():
            raise aiomqtt.MqttError("connection lost")
        publish.result()
