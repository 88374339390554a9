"""AMI: reconciling a call whose AGI session was lost, and `callflow callback`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp import web
from typer.testing import CliRunner

from callflow.ami import AmiUrl
from callflow.cli import app
from callflow.daemon import Daemon, DaemonOptions

pytestmark = pytest.mark.pbx


async def test_lost_call_is_reconciled_from_asterisk_cdr(
    sandbox, daemon_process, agents, place_call, cdr
) -> None:
    agent = await agents("agent1", answer_after=0.0)
    daemon_process.extra = ["--ami", sandbox.ami_url()]
    await daemon_process.start()

    call_task = asyncio.create_task(place_call(ani="2125550100", dnis="8005550001", hold=10))
    await agent.wait_for_invites(1)
    await asyncio.sleep(0.5)
    await daemon_process.kill()
    left = await cdr(status="in_progress")
    await daemon_process.start()  # back while the call is still up: it is watched, not guessed
    result = await call_task
    call = await cdr(status="completed")

    assert result.answered
    assert call["uniqueid"] == left["uniqueid"]
    assert call["disposition"] == "answered"
    assert call["talk_seconds"] == pytest.approx(result.duration, abs=1.0)
    assert call["final_destination"] == "PJSIP/agent1"
    assert "reconciled" in str(call["route_reason"])
    await daemon_process.stop()


ONE_AGENT = """\
targets: {a1: {endpoint: agent1}}
campaigns: {promo: {route: [a1]}}
"""
#: Two numbers rung together through one trunk: their legs' channels name only the trunk.
TWO_NUMBERS_ONE_TRUNK = """\
trunks: {pstn-trunk: {}}
targets:
  n1: {number: "+15551230001", trunk: pstn-trunk}
  n2: {number: "+15551230002", trunk: pstn-trunk}
groups: {both: {targets: [n1, n2], strategy: simultaneous}}
campaigns: {promo: {route: [n1]}}
rules: [{name: both, route: both}]
"""


@pytest.mark.parametrize(
    ("routing", "endpoint", "legs"),
    [(ONE_AGENT, "agent1", 1), (TWO_NUMBERS_ONE_TRUNK, "pstn-trunk", 2)],
)
async def test_answered_event_goes_out_while_the_call_is_up(
    sandbox, agents, place_call, cdr, hook_server, tmp_path: Path, db_path: Path,
    routing: str, endpoint: str, legs: int,
) -> None:  # fmt: skip
    received: list[tuple[float, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((time.time(), json.loads(await request.read())))
        return web.Response(text="ok")

    port = await hook_server(hook)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"""\
version: 1
settings: {{default_country: US, ring_timeout: 5}}
numbers: [{{number: "8005550001", campaign: promo}}]
unknown_number: {{campaign: promo}}
events:
  webhooks: [{{name: live, url: "http://127.0.0.1:{port}/hook", events: [answered, dial]}}]
"""
        + routing
    )
    daemon = Daemon(DaemonOptions(config=rules, database=db_path, port=sandbox.config.agi_port,
                                  grace=5, ami=AmiUrl.parse(sandbox.ami_url())))  # fmt: skip
    await daemon.start()
    try:
        await agents(endpoint, answer_after=0.5)
        result = await place_call(ani="2125550100", dnis="8005550001", hold=4)
        call = await cdr(status="completed")
        for _ in range(50):
            if len(received) >= 1 + legs:
                break
            await asyncio.sleep(0.1)
    finally:
        await daemon.stop()

    assert result.answered
    kinds = [body["event"] for _, body in received]
    assert kinds == ["answered"] + ["dial"] * legs  # told once, live, then the finished attempts
    (at, answered), *dials = received
    assert at < float(str(call["ended_at"])) - 2  # while the caller and the agent still talked
    assert answered["uniqueid"] == call["uniqueid"]
    assert answered["data"]["target"] == call["final_target"]  # the leg that won, by name
    (attempt,) = [a for a in call["attempts"] if a["result"] == "ANSWER"]
    assert answered["data"]["answered_at"] == pytest.approx(attempt["answered_at"], abs=0.5)
    assert answered["data"]["ring_seconds"] == pytest.approx(0.5, abs=0.5)
    won = [d for _, d in dials if d["data"]["result"] == "ANSWER"]
    assert len(won) == 1 and won[0]["data"]["talk_seconds"] > 2


async def test_callback_lands_on_an_agent_attributed_to_campaign(
    sandbox, daemon, agents, cdr, rules_file
) -> None:
    customer = await agents("pstn-trunk", answer_after=0.5, talk=3.0)
    agent = await agents("agent1", answer_after=0.5)
    args = ["callback", "--number", "(212) 555-0123", "--campaign", "spring-promo",
            "--config", str(rules_file), "--ami", sandbox.ami_url()]  # fmt: skip

    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    call = await cdr(status="completed", timeout=20)

    assert result.exit_code == 0, result.output
    (invite,) = customer.invites
    assert invite.request_uri.startswith("sip:+12125550123@127.0.0.9")  # type: ignore[union-attr]
    assert len(agent.invites) == 1
    assert call["campaign"] == "spring-promo" and call["ani_e164"] == "+12125550123"
    assert call["disposition"] == "answered" and call["final_target"] == "a1"
    assert call["hangup_by"] == "caller"  # the customer hung up


def test_callback_rejects_bad_requests(rules_file) -> None:
    runner = CliRunner()
    base = ["callback", "--config", str(rules_file), "--ami", "tcp://u:p@127.0.0.1:1"]
    bad_number = runner.invoke(app, [*base, "--number", "12&PJSIP/x", "--campaign", "general"])
    no_tracking = runner.invoke(app, [*base, "--number", "2125550123", "--campaign", "general"])
    assert bad_number.exit_code == 1 and "not a phone number" in bad_number.output
    assert no_tracking.exit_code == 1 and "no tracking number" in no_tracking.output
