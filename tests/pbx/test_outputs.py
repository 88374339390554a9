"""What leaves the daemon about a real call: recordings, MQTT events, signed webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from callflow.cli import app
from callflow.testing.mosquitto import Broker, Subscriber, free_port

pytestmark = pytest.mark.pbx

HEAD = """\
version: 1
settings: {default_country: US, ring_timeout: 5}
targets: {a1: {endpoint: agent1}}
numbers:
  - {number: "8005550001", campaign: promo}
unknown_number: {campaign: promo}
"""


def seconds_of_audio(path: Path) -> float:
    """The duration of a sound file, as sox measures it."""
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


async def test_recorded_call_has_audio_of_its_length(
    sandbox, start_daemon, agents, place_call, cdr
) -> None:
    inner = f"{sandbox.config.inner_dir}/spool/monitor"
    local = sandbox.config.dir / "spool" / "monitor"
    await start_daemon(
        HEAD
        + f"""
campaigns: {{promo: {{route: [a1], record: true}}}}
recordings: {{dir: {inner}, local_dir: {local}, retention_days: 30}}
"""
    )
    await agents("agent1", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=4, audio=True)
    call = await cdr(status="completed")
    for _ in range(50):  # the size is written once Asterisk has closed the file
        call = await cdr(status="completed")
        if call["recording_bytes"]:
            break
        await asyncio.sleep(0.2)

    assert result.answered
    path = Path(str(call["recording_path"]))
    assert path == local / f"{call['uniqueid']}.wav" and path.exists()
    assert call["recording_bytes"] == path.stat().st_size > 1000
    assert seconds_of_audio(path) == pytest.approx(call["talk_seconds"], abs=1.0)


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Mosquitto of the test's own."""
    b = Broker(tmp_path / "mqtt")
    b.start()
    yield b
    b.stop()


async def test_call_events_and_a_signed_webhook(
    start_daemon, agents, place_call, cdr, broker, db_path, hook_server
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    attempts = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return web.Response(status=500)  # the first delivery fails: it must be retried
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    metrics_port = free_port()
    port = await hook_server(hook)
    subscriber = Subscriber(broker.port, "callflow/#")
    sub_task = asyncio.create_task(subscriber.run())
    await asyncio.wait_for(subscriber.subscribed.wait(), 5)
    try:
        await start_daemon(
            HEAD
            + f"""
campaigns: {{promo: {{route: [a1], source: google}}}}
events:
  mqtt: {{host: 127.0.0.1, port: {broker.port}, topic_prefix: callflow, backoff_initial: 0.1}}
  metrics: {{listen: "127.0.0.1:{metrics_port}"}}
  webhooks:
    - name: crm
      url: http://127.0.0.1:{port}/hook
      events: [ended]
      template: {{caller: "{{ani}}", campaign: "{{campaign}}", seconds: "{{duration}}"}}
      retries: 3
      backoff: 0.2
      hmac_secret: s3cret
"""
        )
        agent = await agents("agent1", answer_after=0.5)
        live = asyncio.create_task(place_call(ani="2125550100", dnis="8005550001", hold=3))
        await agent.wait_for_invites(1)
        broker.stop()  # the broker goes away in the middle of the live call …
        await asyncio.sleep(1.0)
        broker.start()  # … and comes back: events were spooled, nothing is lost
        await live
        call = await cdr(status="completed")
        uid = call["uniqueid"]
        await subscriber.wait_for(
            lambda s: any(e["event"] == "ended" for e in s.events()), timeout=10
        )
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.1)
    finally:
        sub_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sub_task

    mine = [(t, e) for t, e in subscriber.messages if "/calls/" in t and e["uniqueid"] == uid]
    kinds = [e["event"] for _, e in mine]
    assert kinds == ["started", "routed", "answered", "dial", "ended"]
    assert all(t.startswith("callflow/callflow/calls/promo/") for t, _ in mine)
    ended = mine[-1][1]
    assert ended["data"]["disposition"] == "answered" and ended["data"]["source"] == "google"

    ((headers, body),) = received
    payload = json.loads(body)
    assert payload["caller"] == "+12125550100" and payload["campaign"] == "promo"
    assert float(payload["seconds"]) == pytest.approx(call["talk_seconds"], abs=1)
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Callflow-Signature"] == f"sha256={expected}"
    assert attempts == 2  # one 500, one retry

    async with (
        ClientSession() as http,
        http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response,
    ):
        scraped = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    ended = [
        s for s in families["callflow_calls"].samples
        if s.labels.get("campaign") == "promo" and s.labels.get("disposition") == "answered"
    ]  # fmt: skip
    assert ended and ended[0].value == 1

    log = await asyncio.to_thread(
        CliRunner().invoke, app, ["webhooks", "log", "--db", str(db_path),
                                  "--config", str(db_path.parent / "rules.yaml")],
    )  # fmt: skip
    assert log.exit_code == 0, log.output
    assert "crm" in log.output and "500" in log.output and "200" in log.output


async def test_recording_per_party_with_a_notice(
    sandbox, start_daemon, agents, place_call, cdr
) -> None:
    inner = f"{sandbox.config.inner_dir}/spool/monitor"
    local = sandbox.config.dir / "spool" / "monitor"
    await start_daemon(
        HEAD
        + f"""
campaigns: {{promo: {{route: [a1], record: true}}}}
recordings: {{dir: {inner}, local_dir: {local}, split: true, notice: callflow-beep}}
"""
    )
    agent = await agents("agent1", answer_after=1.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=4, audio=True)
    call = await cdr(status="completed")
    for _ in range(50):  # the size is written once Asterisk has closed the files
        call = await cdr(status="completed")
        if call["recording_bytes"]:
            break
        await asyncio.sleep(0.2)

    ok_at = next(m.at for m in result.messages if m.received and m.code == 200)
    (invite,) = agent.invites
    assert ok_at < invite.at  # the caller was answered for the notice before the agent rang
    stem = local / str(call["uniqueid"])
    mixed, caller, agent_side = (
        Path(f"{stem}{suffix}.wav") for suffix in ("", "-caller", "-agent")
    )
    assert mixed.exists() and caller.exists() and agent_side.exists()
    # the caller talked (a tone) for the whole call: their own file holds the talk
    assert seconds_of_audio(caller) == pytest.approx(call["talk_seconds"], abs=1.0)
