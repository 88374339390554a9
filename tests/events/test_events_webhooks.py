"""Webhooks/postbacks against a real aiohttp receiver: retries, signatures, GET, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from events_samples import call_end, call_events, call_start

from callflow.events import EventHub, EventsConfig, delivery_log, ended, started
from callflow.events.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP endpoint of the test's own: answers each path from a script of statuses."""

    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    delay: float = 0.0
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer with the next scripted status (else 200)."""
        body = await request.read()
        self.requests.append(Received(request.method, request.path,
                                      parse_qs(request.query_string, keep_blank_values=True),
                                      dict(request.headers), body))  # fmt: skip
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay)
        statuses = self.script.get(request.path, [])
        status = statuses.pop(0) if statuses else 200
        return web.Response(status=status, text="nope" if status >= 400 else "ok")

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"got {len(self.requests)} requests"
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver on a free loopback port."""
    r = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    r.url = f"http://127.0.0.1:{port}"
    yield r
    r.release.set()
    await runner.cleanup()


def make_hub(tmp_path: Path, *hooks: dict[str, Any], **delivery: Any) -> EventHub:
    """A hub with webhooks only."""
    config = EventsConfig.model_validate({"webhooks": list(hooks), "webhook_delivery": delivery})
    return EventHub(config, node="pbx1", spool_dir=tmp_path / "spool")


def sample(hub: EventHub, name: str, **labels: str) -> float:
    """A metric's current value (0 if never set)."""
    return hub.metrics.registry.get_sample_value(name, labels) or 0.0


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_500_then_200_is_delivered_once_signed_and_logged(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/hook"] = [500]
    hub = make_hub(tmp_path, {"name": "crm", "url": f"{receiver.url}/hook", "retries": 3,
                              "backoff": 0.05, "hmac_secret": "s3cret"})  # fmt: skip
    await hub.start()
    for event in call_events(7):
        hub.emit(event)
    await receiver.wait(2)
    await until(lambda: sample(hub, "callflow_webhook_deliveries_total", webhook="crm") == 1)
    await asyncio.sleep(0.1)
    await hub.stop()

    first, second = receiver.requests  # only "ended" is sent by default; one retry
    assert first.body == second.body
    assert first.headers["X-Callflow-Delivery"] == second.headers["X-Callflow-Delivery"]
    assert (first.headers["X-Callflow-Attempt"], second.headers["X-Callflow-Attempt"]) == ("1", "2")
    for request in (first, second):
        expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
        assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"
        assert abs(int(request.headers[TIMESTAMP_HEADER]) - time.time()) < 60
        assert request.headers["Content-Type"] == "application/json"
    payload = json.loads(second.body)
    assert payload["event"] == "ended" and payload["schema"] == 1
    assert payload["data"]["disposition"] == "answered" and payload["data"]["ani_e164"]

    log = delivery_log(hub.delivery_log_path)
    assert [(r["attempt"], r["status"], r["final"]) for r in log] == [(1, 500, 0), (2, 200, 1)]
    assert log[0]["error"] == "HTTP 500: nope" and log[1]["error"] is None
    assert {r["webhook"] for r in log} == {"crm"} and log[0]["event"] == "ended"
    assert delivery_log(hub.delivery_log_path, webhook="other") == []
    assert delivery_log(hub.delivery_log_path, since=time.time() + 60) == []
    assert sample(hub, "callflow_webhook_failed_attempts_total", webhook="crm") == 1
    assert sample(hub, "callflow_webhook_failures_total", webhook="crm", reason="error") == 0


async def test_get_postback_with_templated_query(receiver: Receiver, tmp_path: Path) -> None:
    hub = make_hub(
        tmp_path,
        {"name": "ads", "method": "GET", "campaigns": ["spring"],
         "url": f"{receiver.url}/pb?token=abc&call={{uniqueid}}",
         "template": {"ani": "{ani}", "campaign": "{campaign}", "duration": "{duration}",
                      "gclid": "{gclid}", "where": "{city}, {state}"}},
        {"name": "other", "url": f"{receiver.url}/other", "campaigns": ["autumn"]},
    )  # fmt: skip
    await hub.start()
    for event in call_events(1):
        hub.emit(event)
    await receiver.wait(1)
    await hub.stop()

    (request,) = receiver.requests
    assert request.method == "GET" and request.path == "/pb" and request.body == b""
    assert request.query == {
        "token": ["abc"], "call": ["1700000000.1"], "ani": ["+12125550100"],
        "campaign": ["spring"], "duration": ["33"], "gclid": [""], "where": ["New York, NY"],
    }  # fmt: skip


async def test_form_post_and_typed_json_template(receiver: Receiver, tmp_path: Path) -> None:
    hub = make_hub(
        tmp_path,
        {"name": "form", "url": f"{receiver.url}/form", "format": "form",
         "events": ["started", "ended"], "template": {"caller": "{ani}", "secs": "{duration}"}},
        {"name": "json", "url": f"{receiver.url}/json", "events": ["ended"],
         "template": {"secs": "{duration}", "answered": "{ani_valid}", "text": "{duration}s"}},
    )  # fmt: skip
    await hub.start()
    for event in call_events(1):
        hub.emit(event)
    await receiver.wait(3)
    await hub.stop()

    by_path = {(r.path, r.headers["X-Callflow-Event"]): r for r in receiver.requests}
    started_form = by_path["/form", "started"]
    assert started_form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(started_form.body.decode(), keep_blank_values=True) == {
        "caller": ["+12125550100"], "secs": [""]
    }  # fmt: skip
    assert parse_qs(by_path["/form", "ended"].body.decode())["secs"] == ["33"]
    assert json.loads(by_path["/json", "ended"].body) == {
        "secs": 33, "answered": True, "text": "33s"
    }  # fmt: skip


async def test_timeouts_are_retried_then_given_up(receiver: Receiver, tmp_path: Path) -> None:
    receiver.delay = 1.0
    hub = make_hub(tmp_path, {"name": "slow", "url": f"{receiver.url}/slow", "timeout": 0.2,
                              "retries": 1, "backoff": 0.01})  # fmt: skip
    await hub.start()
    hub.emit(ended(call_end(1), "spring"))
    await until(lambda: sample(hub, "callflow_webhook_failures_total",
                               webhook="slow", reason="retries_exhausted") == 1)  # fmt: skip
    await hub.stop()
    log = delivery_log(hub.delivery_log_path)
    assert [(r["attempt"], r["status"], r["error"], r["final"]) for r in log] == [
        (1, None, "timeout after 0.2s", 0), (2, None, "timeout after 0.2s", 1)
    ]  # fmt: skip


async def test_client_errors_are_not_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script["/gone"] = [404]
    hub = make_hub(tmp_path, {"name": "gone", "url": f"{receiver.url}/gone", "backoff": 0.01})
    await hub.start()
    hub.emit(ended(call_end(1), "spring"))
    await until(lambda: sample(hub, "callflow_webhook_failures_total",
                               webhook="gone", reason="rejected") == 1)  # fmt: skip
    await hub.stop()
    assert len(receiver.requests) == 1
    assert sample(hub, "callflow_webhook_failures_total", webhook="gone", reason="error") == 0


async def test_dead_endpoint_never_blocks_emit(receiver: Receiver, tmp_path: Path) -> None:
    receiver.delay = 30.0  # accepts, then never answers in time
    hook = {"name": "dead", "url": f"{receiver.url}/dead", "timeout": 60, "retries": 0}
    hub = make_hub(tmp_path, hook, concurrency=1, queue_max=5)
    await hub.start()
    events = [ended(call_end(n), "spring") for n in range(50)]
    t = time.perf_counter()
    for event in events[:1]:
        hub.emit(event)
    await receiver.wait(1)  # the worker is stuck on the first delivery
    for event in events[1:]:
        hub.emit(event)
    assert time.perf_counter() - t < 1.0
    assert sample(hub, "callflow_webhook_failures_total", webhook="dead", reason="queue_full") == 44
    assert sample(hub, "callflow_webhook_backlog") == 6

    t = time.perf_counter()
    await hub.stop(timeout=0.2)  # gives up on the endpoint, keeps the 6 for the next start
    assert time.perf_counter() - t < 2.0
    pending = (tmp_path / "spool" / "webhooks-pending.jsonl").read_bytes().splitlines()
    assert len(pending) == 6

    receiver.delay = 0.0
    again = make_hub(tmp_path, hook)
    await again.start()
    await receiver.wait(1 + 6)
    await again.stop()
    ids = [r.headers["X-Callflow-Delivery"] for r in receiver.requests[1:]]
    assert sorted(ids) == sorted(e.id for e in events[:6])
    assert not (tmp_path / "spool" / "webhooks-pending.jsonl").exists()


async def test_started_fields_reach_ended_templates(receiver: Receiver, tmp_path: Path) -> None:
    hub = make_hub(tmp_path, {"name": "x", "url": f"{receiver.url}/x",
                              "template": {"ani": "{ani}", "source": "{source}"}})  # fmt: skip
    await hub.start()
    hub.emit(started(call_start(3)))
    hub.emit(ended(call_end(3), "spring"))
    await receiver.wait(1)
    await hub.stop()
    assert json.loads(receiver.requests[0].body) == {"ani": "+12125550100", "source": "google"}
