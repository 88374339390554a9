"""Webhooks / postbacks: templated HTTP requests per event, retried, signed, logged."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog

from callflow.events.config import WebhookConfig, WebhookDeliveryConfig
from callflow.events.deliverylog import DeliveryLog
from callflow.events.droplog import DropLog
from callflow.events.metrics import Metrics
from callflow.events.model import payload_json
from callflow.events.template import PLACEHOLDERS, context, render, render_value

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Request",
    "WebhookDispatcher",
    "build_request",
    "sign",
]

log = structlog.get_logger("callflow.events.webhooks")

SIGNATURE_HEADER = "X-Callflow-Signature"
TIMESTAMP_HEADER = "X-Callflow-Timestamp"
_RETRYABLE_4XX = frozenset({408, 425, 429})
_USER_AGENT = "callflow-webhooks/1"


def sign(secret: str, message: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of message>``."""
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Request:
    """One webhook request, ready to send (the same bytes on every attempt)."""

    method: str
    url: str
    body: bytes | None
    headers: Mapping[str, str]


def _fields(hook: WebhookConfig, payload: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The request's fields: the template's, else the whole payload (JSON) or flat values."""
    if hook.template is not None:
        return {name: render_value(text, values) for name, text in hook.template.items()}
    if hook.method == "POST" and hook.format == "json":
        return dict(payload)
    return {k: values[k] for k in sorted(PLACEHOLDERS) if values.get(k) is not None}


def _text(value: Any) -> str:
    """A field value as form/query text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def build_request(
    hook: WebhookConfig, payload: Mapping[str, Any], call: Mapping[str, Any], now: float
) -> Request:
    """Render a webhook's request for one event (``call``: the call's start fields)."""
    values = context(payload, call)
    url = render(hook.url, values, quote=lambda s: quote(s, safe=""))
    fields = _fields(hook, payload, values)
    headers = {"User-Agent": _USER_AGENT, **hook.headers}
    body: bytes | None = None
    if hook.method == "GET":
        query = urlencode({k: _text(v) for k, v in fields.items()})
        signed = query.encode()
        if query:
            url += ("&" if "?" in url else "?") + query
    elif hook.format == "json":
        body = signed = payload_json(fields)
        headers["Content-Type"] = "application/json"
    else:
        body = signed = urlencode({k: _text(v) for k, v in fields.items()}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-Callflow-Event"] = str(payload.get("event", ""))
    headers["X-Callflow-Delivery"] = str(payload.get("id", ""))
    headers[TIMESTAMP_HEADER] = str(int(now))
    if hook.hmac_secret is not None:
        headers[SIGNATURE_HEADER] = sign(hook.hmac_secret, signed)
    return Request(hook.method, url, body, headers)


@dataclass
class _Job:
    """One event to deliver to one webhook."""

    hook: str
    payload: dict[str, Any]
    call: dict[str, Any] = field(default_factory=dict)


class WebhookDispatcher:
    """A bounded queue of deliveries worked by a few tasks; submit() never waits."""

    def __init__(
        self,
        hooks: tuple[WebhookConfig, ...],
        settings: WebhookDeliveryConfig,
        metrics: Metrics,
        log_path: Path,
        pending_path: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Describe the dispatcher; nothing runs until start()."""
        self.hooks = {hook.name: hook for hook in hooks}
        self.settings = settings
        self.metrics = metrics
        self.log_path = log_path
        self.pending_path = pending_path
        self.clock = clock
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=settings.queue_max)
        self._current: dict[int, _Job] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._log: DeliveryLog | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._drops = DropLog(log, "webhook.dropped")
        metrics.track(metrics.webhook_backlog, lambda: self.backlog)

    @property
    def backlog(self) -> int:
        """Deliveries queued or in flight."""
        return self._queue.qsize() + len(self._current)

    def submit(self, payload: dict[str, Any], call: Mapping[str, Any]) -> None:
        """Queue the event for every webhook that wants it; count a drop when the queue is full."""
        kind, campaign = str(payload.get("event")), str(payload.get("campaign"))
        for hook in self.hooks.values():
            if hook.wants(kind, campaign):
                self._enqueue(_Job(hook.name, payload, dict(call)))

    def _enqueue(self, job: _Job) -> None:
        """Queue one delivery or count it dropped."""
        reason = "stopped" if self._closed else None
        if reason is None:
            try:
                self._queue.put_nowait(job)
                return
            except asyncio.QueueFull:
                reason = "queue_full"
        self.metrics.webhook_failures.labels(job.hook, reason).inc()
        self._drops.dropped(1, reason, webhook=job.hook, backlog=self.backlog)

    async def start(self) -> None:
        """Open the delivery log, reload deliveries left pending by the last stop, start workers."""
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-log")
        self._log = await loop.run_in_executor(self._executor, DeliveryLog, self.log_path)
        days = self.settings.log_retention_days
        if days:
            await loop.run_in_executor(self._executor, self._log.prune, self.clock() - days * 86400)
        self._reload_pending()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.concurrency),
            headers={"User-Agent": _USER_AGENT},
        )
        self._workers = [
            asyncio.create_task(self._work(i), name=f"webhook-worker-{i}")
            for i in range(self.settings.concurrency)
        ]

    def _reload_pending(self) -> None:
        """Queue the deliveries the last stop saved, then forget the file."""
        try:
            lines = self.pending_path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                saved = json.loads(line)
                job = _Job(str(saved["hook"]), dict(saved["payload"]), dict(saved.get("call", {})))
            except (ValueError, KeyError, TypeError):
                log.warning("webhook.pending_corrupt", file=str(self.pending_path))
                continue
            if job.hook in self.hooks:
                self._enqueue(job)
            else:
                log.warning("webhook.pending_unknown", webhook=job.hook)
        self.pending_path.unlink(missing_ok=True)
        log.info("webhook.pending_reloaded", deliveries=len(lines))

    async def stop(self, timeout: float) -> None:
        """Finish deliveries for up to ``timeout`` seconds; save the rest for the next start."""
        self._closed = True
        if self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        self._save_pending()
        self._drops.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._executor is not None:
            if self._log is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._log.close)
            self._executor.shutdown(wait=False)
            self._executor, self._log = None, None

    def _save_pending(self) -> None:
        """Write unfinished deliveries (in flight first, then queued) to the pending file."""
        jobs = list(self._current.values())
        self._current.clear()
        while not self._queue.empty():
            jobs.append(self._queue.get_nowait())
            self._queue.task_done()
        if not jobs:
            return
        self.pending_path.parent.mkdir(parents=True, exist_ok=True)
        with self.pending_path.open("ab") as f:
            for job in jobs:
                record = {"hook": job.hook, "payload": job.payload, "call": job.call}
                f.write(payload_json(record) + b"\n")
        log.warning("webhook.pending_saved", deliveries=len(jobs), file=str(self.pending_path))

    async def _work(self, index: int) -> None:
        """Deliver queued jobs one at a time."""
        while True:
            job = await self._queue.get()
            self._current[index] = job
            try:
                await self._deliver(job)
            except Exception as exc:
                self.metrics.webhook_failures.labels(job.hook, "error").inc()
                log.exception("webhook.bug", webhook=job.hook, error=repr(exc))
            finally:
                self._queue.task_done()
            self._current.pop(index, None)  # kept when cancelled: stop() saves it as pending

    async def _deliver(self, job: _Job) -> None:
        """Send one delivery, retrying with exponential backoff; log every attempt."""
        hook = self.hooks.get(job.hook)
        if hook is None:  # removed by a reload
            log.warning("webhook.unknown", webhook=job.hook, call_event=job.payload.get("event"))
            return
        request = build_request(hook, job.payload, job.call, self.clock())
        last = hook.retries + 1
        for attempt in range(1, last + 1):
            status, error = await self._attempt(hook, request, attempt)
            ok = status is not None and 200 <= status < 300
            permanent = status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX
            final = ok or permanent or attempt == last
            await self._record(hook, job, request, attempt, status, error, final)
            if ok:
                self.metrics.webhook_delivered.labels(hook.name).inc()
                log.info(
                    "webhook.delivered",
                    webhook=hook.name,
                    call_event=job.payload.get("event"),
                    uniqueid=job.payload.get("uniqueid"),
                    attempt=attempt,
                    status=status,
                )
                return
            self.metrics.webhook_attempts_failed.labels(hook.name).inc()
            if final:
                reason = "rejected" if permanent else "retries_exhausted"
                self.metrics.webhook_failures.labels(hook.name, reason).inc()
                log.warning(
                    "webhook.failed",
                    webhook=hook.name,
                    call_event=job.payload.get("event"),
                    uniqueid=job.payload.get("uniqueid"),
                    attempts=attempt,
                    status=status,
                    error=error,
                    reason=reason,
                )
                return
            await asyncio.sleep(min(hook.backoff * 2 ** (attempt - 1), hook.backoff_max))

    async def _attempt(
        self, hook: WebhookConfig, request: Request, attempt: int
    ) -> tuple[int | None, str | None]:
        """One HTTP attempt: (status, error) where error is None on 2xx."""
        assert self._session is not None
        headers = {**request.headers, "X-Callflow-Attempt": str(attempt)}
        try:
            async with self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=hook.timeout),
                allow_redirects=request.method == "GET",
            ) as response:
                snippet = await response.content.read(300)
                if 200 <= response.status < 300:
                    return response.status, None
                text = snippet.decode("utf-8", "replace").strip()
                return response.status, f"HTTP {response.status}" + (f": {text}" if text else "")
        except TimeoutError:
            return None, f"timeout after {hook.timeout:g}s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def _record(
        self,
        hook: WebhookConfig,
        job: _Job,
        request: Request,
        attempt: int,
        status: int | None,
        error: str | None,
        final: bool,
    ) -> None:
        """Append the attempt to the delivery log (a failing log is logged, not raised)."""
        row = {
            "delivery": job.payload.get("id", ""),
            "webhook": hook.name,
            "event": job.payload.get("event", ""),
            "uniqueid": job.payload.get("uniqueid", ""),
            "campaign": job.payload.get("campaign", ""),
            "method": request.method,
            "url": request.url,
            "attempt": attempt,
            "status": status,
            "error": error,
            "final": int(final),
            "at": self.clock(),
        }
        if self._log is None or self._executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._log.record, row)
        except Exception as exc:
            log.warning("webhook.log_failed", error=repr(exc), file=str(self.log_path))
