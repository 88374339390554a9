"""`callflow serve` routing real SIPp calls through the sandbox Asterisk, with exact CDRs."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from callflow.cli import app
from callflow.testing.sandbox import Sandbox

pytestmark = pytest.mark.pbx


async def asterisk_cdr(sandbox: Sandbox, uniqueid: str) -> dict[str, str]:
    """Asterisk's own CDR for the call (first row with its uniqueid)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = [r for r in sandbox.cdrs() if r["uniqueid"] == uniqueid]
        if rows:
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no Asterisk CDR for {uniqueid}")


async def test_answered_call_gives_exact_cdr(daemon, agents, place_call, cdr, sandbox) -> None:
    agent = await agents("agent1", answer_after=1.0)

    result = await place_call(ani="2125550100", dnis="8005550001", caller_name="Jane Roe", hold=4)
    call = await cdr(status="completed")

    assert result.answered and result.hung_up_by == "carrier"
    assert len(agent.invites) == 1
    assert call["disposition"] == "answered"
    assert call["ani_raw"] == "2125550100" and call["ani_e164"] == "+12125550100"
    assert call["caller_name"] == "Jane Roe"
    assert (call["area_code"], call["state"], call["city"]) == ("212", "NY", "New York")
    assert call["timezone"] == "America/New_York" and call["country"] == "US"
    assert call["dnis"] == "8005550001" and call["tracking_number"] == "+18005550001"
    assert call["number_known"] in (1, True)
    assert (call["campaign"], call["source"], call["medium"], call["keyword"], call["ad"]) == (
        "spring-promo", "google", "cpc", "emergency plumber", "ad-17",
    )  # fmt: skip
    assert call["final_target"] == "a1" and call["final_destination"] == "PJSIP/agent1"
    assert call["hangup_by"] == "caller"
    assert call["repeat_caller"] in (0, False)
    assert call["ring_seconds"] == pytest.approx(1.0, abs=0.5)
    # the carrier held 4 s from its answer, which came when the agent answered
    assert call["talk_seconds"] == pytest.approx(result.duration, abs=1.0)
    assert call["talk_seconds"] == pytest.approx(4.0, abs=1.0)
    (attempt,) = call["attempts"]
    assert attempt["result"] == "ANSWER" and attempt["target"] == "a1"
    reason = json.loads(call["route_reason"])
    assert reason["campaign"] == "spring-promo" and reason["attempts"] == ["a1:ANSWER"]
    # Asterisk's own CDR agrees
    ast = await asterisk_cdr(sandbox, str(call["uniqueid"]))
    assert ast["disposition"] == "ANSWERED"
    assert int(ast["billsec"]) == pytest.approx(call["talk_seconds"], abs=1)
    assert call["linkedid"] == ast["linkedid"]


async def test_cli_shows_and_exports_the_call(daemon, agents, place_call, cdr, db_path) -> None:
    await agents("agent1", reject=486)
    await agents("agent2", answer_after=0.0)
    await place_call(ani="2125550100", dnis="8005550001", hold=1)
    call = await cdr(status="completed")
    runner = CliRunner()

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return asyncio.to_thread(runner.invoke, app, [*args, "--db", str(db_path)])

    shown = await cli("cdr", "show", str(call["uniqueid"]))
    exported = await cli("cdr", "export", "--format", "jsonl")
    listed = await cli("cdr", "list")

    assert shown.exit_code == 0, shown.output
    assert "spring-promo" in shown.output and "BUSY" in shown.output and "ANSWER" in shown.output
    (line,) = exported.output.splitlines()
    row = json.loads(line)
    assert row["uniqueid"] == call["uniqueid"] and row["campaign"] == "spring-promo"
    assert [a["result"] for a in row["attempts"]] == ["BUSY", "ANSWER"]
    assert listed.exit_code == 0 and "New York" in listed.output


async def test_busy_then_next_agent_answers(daemon, agents, place_call, cdr) -> None:
    busy = await agents("agent1", reject=486)
    second = await agents("agent2", answer_after=0.5)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=2)
    call = await cdr(status="completed")

    assert result.answered
    assert len(busy.invites) == 1 and len(second.invites) == 1
    assert [(a["seq"], a["target"], a["result"]) for a in call["attempts"]] == [
        (1, "a1", "BUSY"), (2, "a2", "ANSWER"),
    ]  # fmt: skip
    assert call["disposition"] == "answered" and call["final_target"] == "a2"


async def test_all_targets_fail(daemon, agents, place_call, cdr) -> None:
    await agents("agent1", reject=486)
    await agents("agent2", answer_after=None)  # rings past its 5 s timeout

    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)
    call = await cdr(status="completed")

    assert not result.answered
    assert [a["result"] for a in call["attempts"]] == ["BUSY", "NOANSWER"]
    assert call["disposition"] == "no-answer"
    assert call["attempts"][1]["ring_seconds"] == pytest.approx(5, abs=0.7)


async def test_caller_hangs_up_while_ringing_is_abandoned(daemon, agents, place_call, cdr) -> None:
    await agents("agent1", answer_after=None)

    result = await place_call(ani="2125550100", dnis="8005550001", cancel_after=1.5)
    call = await cdr(status="completed")

    assert result.final_code == 487
    assert call["disposition"] == "abandoned" and call["hangup_by"] == "caller"
    assert [a["result"] for a in call["attempts"]] == ["CANCEL"]
    assert call["ring_seconds"] == pytest.approx(1.5, abs=0.7)


async def test_unknown_dnis_goes_to_default_route(daemon, agents, place_call, cdr) -> None:
    agent = await agents("agent3", answer_after=0.0)

    result = await place_call(ani="3125550199", dnis="8005559999", hold=1)
    call = await cdr(status="completed")

    assert result.answered and len(agent.invites) == 1
    assert call["number_known"] in (0, False) and call["tracking_number"] is None
    assert call["campaign"] == "general" and call["dnis"] == "8005559999"
    assert call["city"] == "Chicago" and call["state"] == "IL"


async def test_pstn_target_through_trunk(daemon, agents, place_call, cdr) -> None:
    trunk = await agents("pstn-trunk", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="+18005550003", hold=1)
    call = await cdr(status="completed")

    assert result.answered
    (invite,) = trunk.invites
    assert invite.request_uri.startswith("sip:+15551234567@127.0.0.9")  # type: ignore[union-attr]
    assert call["final_destination"] == "PJSIP/+15551234567@pstn-trunk"


@pytest.mark.parametrize(
    ("ani", "name"),
    [
        ("2125550100&PJSIP/agent5", "Eve"),
        ("2125550100,1,U(evil)", "Eve"),
        ("2125550100", "Eve),PJSIP/agent5&x"),
        ("2125550100$(x)", "Eve\\n"),
    ],
)
async def test_caller_id_cannot_inject_into_dial_string(
    daemon, agents, place_call, cdr, ani, name
) -> None:
    agent = await agents("agent1", answer_after=0.0)
    evil = await agents("agent5", answer_after=0.0)

    result = await place_call(ani=ani, dnis="8005550001", caller_name=name, hold=1)
    call = await cdr(status="completed")

    assert result.answered
    assert len(agent.invites) == 1 and evil.invites == []
    assert call["ani_raw"] == ani
    assert [a["destination"] for a in call["attempts"]] == ["PJSIP/agent1"]


async def test_repeat_caller_flagged(daemon, agents, place_call, cdr) -> None:
    await agents("agent1", answer_after=0.0)

    await place_call(ani="2125550177", dnis="8005550001", hold=1)
    first = await cdr(status="completed", ani_raw="2125550177")
    await place_call(ani="2125550177", dnis="8005550001", hold=1)
    deadline = time.monotonic() + 5
    second = first
    while second["uniqueid"] == first["uniqueid"] and time.monotonic() < deadline:
        second = await cdr(status="completed", ani_raw="2125550177")

    assert first["repeat_caller"] in (0, False)
    assert second["uniqueid"] != first["uniqueid"]
    assert second["repeat_caller"] in (1, True)


async def test_daemon_killed_mid_call_call_continues_and_restart_resolves(
    daemon_process, agents, place_call, cdr
) -> None:
    agent = await agents("agent1", answer_after=0.0)
    fallback = await agents("fallback", answer_after=0.0)
    await daemon_process.start()

    call_task = asyncio.create_task(place_call(ani="2125550100", dnis="8005550001", hold=4))
    await agent.wait_for_invites(1)
    await asyncio.sleep(1.0)  # bridged to the agent
    await daemon_process.kill()
    result = await call_task

    assert result.answered and result.hung_up_by == "carrier"
    assert result.duration == pytest.approx(4, abs=0.7)  # the call went on without the daemon
    assert fallback.invites == []  # an answered call is not sent to the fallback
    in_progress = await cdr(status="in_progress")
    assert in_progress["campaign"] == "spring-promo"

    await daemon_process.start()  # restart resolves the row left in progress
    resolved = await cdr(status="unknown")
    assert resolved["uniqueid"] == in_progress["uniqueid"]
    assert resolved["disposition"] == "unknown"
    # and the restarted daemon routes new calls
    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)
    assert result.answered
    done = await cdr(status="completed")
    assert done["disposition"] == "answered"
    await daemon_process.stop()


async def test_daemon_absent_falls_back(sandbox, agents, place_call) -> None:
    fallback = await agents("fallback", answer_after=0.0)
    agent = await agents("agent1", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)

    assert result.answered
    assert len(fallback.invites) == 1 and agent.invites == []


async def test_agent_hangs_up_first(daemon, agents, place_call, cdr) -> None:
    await agents("agent1", answer_after=0.5, talk=2.0)
    fallback = await agents("fallback", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=8)
    call = await cdr(status="completed")

    assert result.answered and result.hung_up_by == "pbx"
    assert fallback.invites == []  # the caller's channel left the dialplan with DIALSTATUS=ANSWER
    assert call["hangup_by"] == "agent"
    assert call["talk_seconds"] == pytest.approx(2.0, abs=0.5)


async def test_known_caller_is_enriched_from_the_directory(
    daemon, agents, place_call, cdr, db_path
) -> None:
    from callflow import directory

    contacts, _ = directory.parse_csv(
        "number,name,company,account_id,tags\n2125550100,Jane Roe,Acme,A-17,vip\n"
    )
    directory.save(db_path, contacts)
    assert await daemon.reload()  # SIGHUP reloads the directory with the rules
    await agents("agent1", answer_after=0.0)

    await place_call(ani="2125550100", dnis="8005550001", hold=1)
    call = await cdr(status="completed")

    assert (call["contact_name"], call["company"], call["account_id"], call["contact_tags"]) == (
        "Jane Roe", "Acme", "A-17", "vip",
    )  # fmt: skip


async def test_rows_lost_to_a_locked_database_come_back_from_the_daemons_log(
    daemon_process, agents, place_call, cdr, db_path, tmp_path
) -> None:
    import sqlite3
    import sys

    await agents("agent1", answer_after=0.0)
    daemon_process.log = tmp_path / "daemon.log"
    daemon_process.extra = ["--grace", "1"]  # the call waits for its commit: not for long
    await daemon_process.start()
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database: no commit gets through
    try:
        result = await place_call(ani="2125550100", dnis="8005550001", hold=1)
        assert result.answered  # the call itself never waits for its CDR
        await daemon_process.stop()  # closing, the writer retries for 10 s, then logs its rows
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    lines = [json.loads(line) for line in daemon_process.log.read_text().splitlines()
             if '"cdr_row_lost"' in line]  # fmt: skip
    calls = {line["uniqueid"] for line in lines if line["op"] == "finish_call"}
    assert len(calls) == 1 and {"start_call", "add_attempt"} <= {line["op"] for line in lines}

    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callflow.cli", "cdr", "replay", str(daemon_process.log),
        "--db", str(db_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, errors = await replay.communicate()
    assert replay.returncode == 0, errors.decode()
    assert out.decode().startswith(f"{len(lines)} rows written, 0 refused")
    call = await cdr(status="completed")
    assert call["uniqueid"] in calls
    assert call["disposition"] == "answered" and call["campaign"] == "spring-promo"
    assert call["final_target"] == "a1" and call["ani_e164"] == "+12125550100"
    assert call["talk_seconds"] == pytest.approx(1.0, abs=1.0)
    assert [(a["target"], a["result"]) for a in call["attempts"]] == [("a1", "ANSWER")]
