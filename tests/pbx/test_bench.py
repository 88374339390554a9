"""The real-PBX bench itself: SIPp carrier → sandbox Asterisk → FastAGI → SIPp agents."""

from __future__ import annotations

import asyncio
import time

import pytest

from callflow.agi import AgiSession
from callflow.testing.sandbox import Sandbox

pytestmark = pytest.mark.pbx


async def cdr_for(sandbox: Sandbox, uniqueid: str, timeout: float = 5.0) -> dict[str, str]:
    """Wait for Asterisk's own CDR row of a call (the first row with its uniqueid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in sandbox.cdrs() if r["uniqueid"] == uniqueid]
        if rows:
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no Asterisk CDR for {uniqueid}")


def dial_handler(dial: str, seen: dict[str, object]):  # type: ignore[no-untyped-def]
    """An AGI handler that records the header, dials, and reads back the outcome."""

    done = seen["done"] = asyncio.Event()

    async def handle(session: AgiSession) -> None:
        seen["header"] = session.header
        reply = await session.exec("Dial", dial)
        seen["dial_result"] = reply.result
        seen["dialstatus"] = await session.get_variable("DIALSTATUS")
        await session.set_variable("CALLFLOW_STATUS", "done")
        done.set()

    return handle


async def handled(seen: dict[str, object]) -> None:
    """Wait until the AGI handler has finished with the call."""
    await asyncio.wait_for(seen["done"].wait(), 10)  # type: ignore[attr-defined]


async def test_answered_call_through_fastagi(sandbox, agi_server, agents, place_call) -> None:
    seen: dict[str, object] = {}
    await agi_server({"/inbound": dial_handler("PJSIP/agent1,20", seen)})
    agent = await agents("agent1", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", caller_name="Jane Roe", hold=3)
    await handled(seen)

    header = seen["header"]
    assert header.callerid == "2125550100"  # type: ignore[attr-defined]
    assert header.calleridname == "Jane Roe"  # type: ignore[attr-defined]
    assert header.dnid == "8005550001"  # type: ignore[attr-defined]
    assert header.query["dnis"] == "8005550001"  # type: ignore[attr-defined]
    assert header.script == "/inbound"  # type: ignore[attr-defined]
    assert result.answered and result.final_code == 200
    assert result.hung_up_by == "carrier"
    assert result.duration == pytest.approx(3, abs=0.5)
    (invite,) = agent.invites
    assert invite.request_uri.startswith("sip:agent1@127.0.0.11")  # type: ignore[union-attr]
    assert "2125550100" in (invite.header("from") or "")
    cdr = await cdr_for(sandbox, header.uniqueid)  # type: ignore[attr-defined]
    assert cdr["disposition"] == "ANSWERED"
    assert cdr["src"] == "2125550100" and cdr["dst"] == "8005550001"
    assert cdr["dstchannel"].startswith("PJSIP/agent1-")
    assert int(cdr["billsec"]) == pytest.approx(3, abs=1)
    assert seen["dialstatus"] == "ANSWER"
    # Asterisk's CEL tells the same story, leg by leg
    uid = header.uniqueid  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    kinds: list[str] = []
    while time.monotonic() < deadline and "LINKEDID_END" not in kinds:
        kinds = [e["eventtype"] for e in sandbox.cel() if e["linkedid"] == uid]
        await asyncio.sleep(0.1)
    assert {"CHAN_START", "ANSWER", "BRIDGE_ENTER", "HANGUP", "LINKEDID_END"} <= set(kinds)
    agent_legs = {e["channel"] for e in sandbox.cel() if e["linkedid"] == uid}
    assert any(c.startswith("PJSIP/agent1-") for c in agent_legs)


@pytest.mark.parametrize("digits", ["123", "1123#"])
async def test_dtmf_after_answer_read_with_get_data(agi_server, place_call, digits) -> None:
    got: dict[str, object] = {}

    async def handle(session: AgiSession) -> None:
        await session.answer()
        got["data"] = await session.get_data("callflow-silence", 6000, len(digits.rstrip("#")))
        await session.set_variable("CALLFLOW_STATUS", "done")
        await session.hangup()

    await agi_server({"/inbound": handle})
    result = await place_call(ani="2125550100", dnis="8005550001", digits=digits, hold=8)

    assert result.answered
    assert result.hung_up_by == "pbx"
    assert got["data"] == (digits.rstrip("#"), False)


async def test_no_daemon_reaches_fallback(sandbox, agents, place_call) -> None:
    fallback = await agents("fallback", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)

    assert result.answered
    (invite,) = fallback.invites
    assert invite.request_uri.startswith("sip:fallback@")  # type: ignore[union-attr]
    started = result.invite_sent_at
    assert started is not None
    ok = next(m.at for m in result.messages if m.received and m.code == 200)
    assert ok - started < 1.5  # refused at once: no 2 s connect timeout


async def test_daemon_failing_mid_call_reaches_fallback(agi_server, agents, place_call) -> None:
    async def crash(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("daemon bug")

    await agi_server({"/inbound": crash})
    fallback = await agents("fallback", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)

    assert result.answered
    assert len(fallback.invites) == 1


@pytest.mark.parametrize(
    ("behaviour", "statuses"),
    [
        ({"reject": 486}, {"BUSY"}),
        ({"answer_after": None}, {"NOANSWER"}),
        ({"reject": 503}, {"CONGESTION", "CHANUNAVAIL"}),
        ({"reject": 603}, {"CONGESTION", "CHANUNAVAIL"}),
    ],
    ids=["busy", "no-answer", "reject-503", "reject-603"],
)
async def test_agent_failures_give_dialstatus(
    agi_server, agents, place_call, behaviour, statuses
) -> None:
    seen: dict[str, object] = {}
    await agi_server({"/inbound": dial_handler("PJSIP/agent2,3", seen)})
    agent = await agents("agent2", **behaviour)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=1)
    await handled(seen)

    assert seen["dialstatus"] in statuses
    assert len(agent.invites) == 1
    assert not result.answered  # the handler ended without answering: the caller is released


async def test_pstn_dial_string_reaches_trunk(agi_server, agents, place_call) -> None:
    seen: dict[str, object] = {}
    await agi_server({"/inbound": dial_handler("PJSIP/+15551234567@pstn-trunk,10", seen)})
    trunk = await agents("pstn-trunk", answer_after=0.5)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=2)
    await handled(seen)

    assert result.answered
    (invite,) = trunk.invites
    assert invite.request_uri.startswith("sip:+15551234567@127.0.0.9")  # type: ignore[union-attr]
    assert seen["dialstatus"] == "ANSWER"


async def test_caller_cancels_while_ringing(agi_server, agents, place_call) -> None:
    seen: dict[str, object] = {}
    await agi_server({"/inbound": dial_handler("PJSIP/agent3,30", seen)})
    agent = await agents("agent3", answer_after=None)

    result = await place_call(ani="2125550100", dnis="8005550001", cancel_after=1.0)
    await handled(seen)

    assert not result.answered and result.final_code == 487
    assert seen["dialstatus"] == "CANCEL"
    assert seen["dial_result"] == "-1"
    assert len(agent.invites) == 1
