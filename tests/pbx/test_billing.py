"""Pay per call through the real PBX: conversions on the agent leg, duplicates, money caps."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from callflow.cli import app

pytestmark = pytest.mark.pbx

HEAD = """\
version: 1
settings: {default_country: US, ring_timeout: 8}
targets:
  acme-agent: {endpoint: agent1, priority: 0}
  beta-agent: {endpoint: agent2, priority: 1}
groups: {buyers: {targets: [acme-agent, beta-agent], strategy: priority}}
numbers:
  - {number: "8005550001", campaign: main}
unknown_number: {campaign: main}
publishers:
  radio: {numbers: ["8005550001"], payout: {percent: 40}}
"""


def ledger(db_path) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Every ledger entry, oldest first."""
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM ledger ORDER BY id")]
    conn.close()
    return rows


async def posted(db_path, *uniqueids: object) -> None:  # type: ignore[no-untyped-def]
    """Wait until the ledger holds entries for each call (it is posted after the CDR)."""
    for _ in range(100):
        have = {e["uniqueid"] for e in ledger(db_path)}
        if have.issuperset(uniqueids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ledger entries for {set(uniqueids) - have}")


def money(db_path, uniqueid: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    """The call's ledger total of one kind (revenue or payout), in cents."""
    return sum(int(e["amount_minor"]) for e in ledger(db_path)  # type: ignore[call-overload]
               if e["uniqueid"] == uniqueid and e["kind"] == kind)  # fmt: skip


async def test_conversion_is_measured_on_the_agent_leg(
    start_daemon, agents, place_call, cdr, db_path
) -> None:
    await start_daemon(
        HEAD
        + """
menus: {accept: {prompt: callflow-silence, choices: ["1"], digit_timeout: 3}}
campaigns: {main: {route: [acme-agent]}}
buyers:
  acme: {targets: [acme-agent], revenue: {per_call: "25.00"}, convert_after: 90}
  beta: {targets: [beta-agent], revenue: {per_call: "15.00"}}
rules:
  - {name: press-1, when: {campaign: main}, ivr: accept}
  - {name: buyers, route: buyers}
"""
    )
    await agents("agent1", answer_after=4.0)  # 4 s of ringing after the menu
    # The caller's leg is answered at the menu: it lasts menu + ring + talk. Both calls hold
    # longer than 90 s on the caller's leg, but only the first talks 90 s with the agent.
    long_call = asyncio.create_task(
        place_call(ani="2125550101", dnis="8005550001", digits="1", hold=101)
    )
    await asyncio.sleep(0.5)
    short_call = asyncio.create_task(
        place_call(ani="2125550102", dnis="8005550001", digits="1", hold=93)
    )
    results = await asyncio.gather(long_call, short_call)
    first = await cdr(status="completed", ani_e164="+12125550101", timeout=30)
    second = await cdr(status="completed", ani_e164="+12125550102", timeout=30)
    await posted(db_path, first["uniqueid"])

    assert all(r.answered for r in results)
    assert results[1].duration > 90  # the caller's leg …
    assert second["talk_seconds"] < 90  # … but not the agent's
    assert first["talk_seconds"] >= 90
    assert money(db_path, first["uniqueid"], "revenue") == 2500
    assert money(db_path, first["uniqueid"], "payout") == 1000  # 40 % of $25.00
    assert money(db_path, second["uniqueid"], "revenue") == 0
    assert money(db_path, second["uniqueid"], "payout") == 0

    statement = await asyncio.to_thread(
        CliRunner().invoke, app,
        ["billing", "statement", "--buyer", "acme", "--format", "json", "--db", str(db_path)],
    )  # fmt: skip
    assert statement.exit_code == 0, statement.output
    total = sum(int(e["amount_minor"]) for e in ledger(db_path)  # type: ignore[call-overload]
                if e["account"] == "acme")  # fmt: skip
    assert total == 2500
    assert json.loads(statement.output)["total_minor"] == total  # the statement is the ledger
    shown = await asyncio.to_thread(
        CliRunner().invoke, app, ["cdr", "show", str(second["uniqueid"]), "--db", str(db_path)]
    )
    assert "billing" in shown.output and "acme" in shown.output


async def test_repeat_caller_within_window_is_routed_to_another_buyer(
    start_daemon, agents, place_call, cdr, db_path
) -> None:
    await start_daemon(
        HEAD
        + """
campaigns: {main: {route: [acme-agent]}}
buyers:
  acme:
    targets: [acme-agent]
    revenue: {per_call: "25.00"}
    convert_after: 1
    duplicate: {window: 48h, bill: false, route_elsewhere: true}
  beta: {targets: [beta-agent], revenue: {per_call: "15.00"}, convert_after: 1}
rules:
  - {name: buyers, route: buyers}
"""
    )
    acme = await agents("agent1", answer_after=0.0)
    beta = await agents("agent2", answer_after=0.0)

    await place_call(ani="3125550111", dnis="8005550001", hold=3)
    first = await cdr(status="completed", ani_e164="+13125550111")
    await asyncio.sleep(0.5)
    await place_call(ani="3125550111", dnis="8005550001", hold=3)
    calls = []
    for _ in range(50):
        with sqlite3.connect(db_path) as conn:
            calls = conn.execute(
                "SELECT uniqueid, final_target, route_reason FROM calls "
                "WHERE status = 'completed' ORDER BY started_at"
            ).fetchall()
        conn.close()
        if len(calls) == 2:
            break
        await asyncio.sleep(0.1)

    (_, target1, _), (uid2, target2, reason2) = calls
    await posted(db_path, first["uniqueid"], uid2)
    assert (target1, target2) == ("acme-agent", "beta-agent")
    assert len(acme.invites) == 1 and len(beta.invites) == 1
    assert "duplicate" in json.loads(reason2)["refused_at_dial"][0]
    assert money(db_path, first["uniqueid"], "revenue") == 2500
    assert money(db_path, uid2, "revenue") == 1500  # billed to beta, not twice to acme


async def test_buyer_at_its_daily_revenue_cap_is_skipped(
    start_daemon, agents, place_call, cdr, db_path
) -> None:
    await start_daemon(
        HEAD
        + """
campaigns: {main: {route: [acme-agent]}}
buyers:
  acme:
    targets: [acme-agent]
    revenue: {per_call: "25.00"}
    convert_after: 1
    caps: {daily: {revenue: "25.00"}}
  beta: {targets: [beta-agent], revenue: {per_call: "15.00"}, convert_after: 1}
rules:
  - {name: buyers, route: buyers}
"""
    )
    await agents("agent1", answer_after=0.0)
    await agents("agent2", answer_after=0.0)

    await place_call(ani="4155550111", dnis="8005550001", hold=3)
    first = await cdr(status="completed", ani_e164="+14155550111")
    await asyncio.sleep(0.5)
    await place_call(ani="4155550122", dnis="8005550001", hold=2)
    second = await cdr(status="completed", ani_e164="+14155550122")

    assert first["final_target"] == "acme-agent"
    assert second["final_target"] == "beta-agent"
    assert "revenue cap" in str(second["route_reason"])


async def test_buyer_paying_from_a_press_1_acceptance(
    start_daemon, agents, place_call, cdr, db_path
) -> None:
    await start_daemon(
        HEAD
        + """
campaigns: {main: {route: [acme-agent]}}
buyers:
  acme:
    targets: [acme-agent]
    revenue: {per_call: "25.00"}
    convert_after: 3
    count_from: accept
  beta: {targets: [beta-agent], revenue: {per_call: "15.00"}, convert_after: 1}
rules:
  - {name: buyers, route: buyers}
"""
    )
    silent = await agents("agent1", answer_after=0.0)  # answers but never presses 1
    beta = await agents("agent2", answer_after=0.0)

    await place_call(ani="6465550111", dnis="8005550001", hold=3)
    declined = await cdr(status="completed", ani_e164="+16465550111")
    await silent.stop()
    accepting = await agents("agent1", answer_after=0.0, press="1")
    await place_call(ani="6465550122", dnis="8005550001", hold=6)
    accepted = await cdr(status="completed", ani_e164="+16465550122")
    await posted(db_path, accepted["uniqueid"])

    # not accepted: that leg is congestion and the call moves on to the next buyer
    assert [(a["target"], a["result"]) for a in declined["attempts"]] == [
        ("acme-agent", "CONGESTION"), ("beta-agent", "ANSWER"),
    ]  # fmt: skip
    assert len(silent.invites) == 1 and len(beta.invites) == 1
    # accepted: bridged after the press, billed counting from it
    (attempt,) = accepted["attempts"]
    assert attempt["result"] == "ANSWER" and attempt["accepted_at"] is not None
    assert attempt["accepted_at"] >= attempt["answered_at"]
    assert len(accepting.invites) == 1
    assert money(db_path, accepted["uniqueid"], "revenue") == 2500
