"""The rules engine through the real PBX: IVR, geography, ZIP, hours, caps, concurrency,
sticky callers, simultaneous ringing, and reloads during live calls."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime, timedelta

import pytest

from callflow.ami import Ami, AmiUrl

pytestmark = pytest.mark.pbx

HEAD = """\
version: 1
settings: {default_country: US, ring_timeout: 5, timezone: UTC}
trunks: {pstn-trunk: {}}
numbers:
  - {number: "8005550001", campaign: main}
unknown_number: {campaign: main}
"""


def rules(body: str) -> str:
    """A rules file: the common head plus targets, groups, menus, campaigns and rules."""
    return HEAD + body


async def test_ivr_choice_routes_to_the_chosen_group(start_daemon, agents, place_call, cdr):
    await start_daemon(
        rules("""
targets: {sales: {endpoint: agent3}, support: {endpoint: agent4}}
groups: {sales: {targets: [sales]}, support: {targets: [support]}}
menus: {main: {prompt: callflow-silence, choices: ["1", "2"], digit_timeout: 4}}
campaigns: {main: {route: [sales]}}
rules:
  - {name: menu, when: {campaign: main}, ivr: main}
  - {name: to-sales, when: {ivr: {main: "1"}}, route: sales}
  - {name: to-support, when: {ivr: {main: "2"}}, route: support}
""")
    )
    sales = await agents("agent3", answer_after=0.0)
    support = await agents("agent4", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", digits="2", hold=4)
    call = await cdr(status="completed")

    assert result.answered
    assert sales.invites == [] and len(support.invites) == 1
    assert call["ivr_digits"] == "main=2" and call["final_target"] == "support"
    assert json.loads(call["route_reason"])["rule"] == "to-support"


async def test_caller_geography_picks_the_office(start_daemon, agents, place_call, cdr):
    await start_daemon(
        rules("""
targets: {nyc: {endpoint: agent1}, sf: {endpoint: agent2}, hq: {endpoint: agent3}}
groups: {nyc: {targets: [nyc]}, sf: {targets: [sf]}}
campaigns: {main: {route: [hq]}}
rules:
  - {name: new-york, when: {area_code: "212"}, route: nyc}
  - {name: bay-area, when: {area_code: ["415", "628"]}, route: sf}
""")
    )
    nyc = await agents("agent1", answer_after=0.0)
    sf = await agents("agent2", answer_after=0.0)

    await place_call(ani="2125550100", dnis="8005550001", hold=1)
    first = await cdr(status="completed", ani_e164="+12125550100")
    await place_call(ani="4155550123", dnis="8005550001", hold=1)
    second = await cdr(status="completed", ani_e164="+14155550123")

    assert len(nyc.invites) == 1 and len(sf.invites) == 1
    assert first["final_target"] == "nyc" and second["final_target"] == "sf"


async def test_zip_entered_by_dtmf_routes_by_state(start_daemon, agents, place_call, cdr):
    await start_daemon(
        rules("""
targets: {east: {endpoint: agent1}, west: {endpoint: agent2}}
groups: {east: {targets: [east]}, west: {targets: [west]}}
campaigns: {main: {route: [east]}}
rules:
  - {name: ask-zip, when: {campaign: main}, collect_zip: {prompt: callflow-silence, retries: 1}}
  - {name: california, when: {state: CA}, route: west}
  - {name: elsewhere, route: east}
""")
    )
    east = await agents("agent1", answer_after=0.0)
    west = await agents("agent2", answer_after=0.0)

    await place_call(ani="2125550100", dnis="8005550001", digits="94103", hold=5)
    call = await cdr(status="completed")

    assert east.invites == [] and len(west.invites) == 1
    assert call["zip"] == "94103" and call["ivr_digits"] == "zip=94103"
    assert call["final_target"] == "west"


async def test_after_hours_goes_to_the_closed_action(start_daemon, agents, place_call, cdr):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%a").lower()
    await start_daemon(
        rules(f"""
targets: {{office: {{endpoint: agent1, hours: {{{tomorrow}: ["09:00-17:00"]}}}}}}
groups: {{office: {{targets: [office]}}}}
campaigns: {{main: {{route: [office]}}}}
rules:
  - {{name: office, route: office, fallback: {{play: callflow-beep}}}}
""")
    )
    office = await agents("agent1", answer_after=0.0)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=5)
    call = await cdr(status="completed")

    assert office.invites == []
    assert result.answered and result.hung_up_by == "pbx"  # the message, then goodbye
    assert call["disposition"] == "message"
    assert "closed" in call["route_reason"]


async def test_busy_agent_fails_over_to_voicemail(start_daemon, agents, place_call, cdr, sandbox):
    box = sandbox.voicemail_box("100")
    for old in box.glob("INBOX/msg*"):
        old.unlink()
    await start_daemon(
        rules("""
targets: {office: {endpoint: agent1}}
groups: {office: {targets: [office]}}
campaigns: {main: {route: [office]}}
rules:
  - {name: office, route: office, fallback: {voicemail: "100@default"}}
""")
    )
    office = await agents("agent1", reject=486)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=4, audio=True)
    call = await cdr(status="completed")

    assert len(office.invites) == 1
    assert result.answered and result.hung_up_by == "carrier"  # the caller left a message
    assert call["disposition"] == "voicemail" and call["final_target"] == "office"
    assert [a["result"] for a in call["attempts"]] == ["BUSY"]
    # app_voicemail recorded the caller's message in the box, with who called
    (info,) = box.glob("INBOX/msg*.txt")
    assert "callerid=" in info.read_text() and "2125550100" in info.read_text()
    (audio,) = box.glob("INBOX/msg*.wav")
    assert audio.stat().st_size > 8000  # more than a second of 8 kHz audio


async def test_voicemail_to_a_box_asterisk_lacks_is_a_failed_call(start_daemon, place_call, cdr):
    await start_daemon(
        rules("""
targets: {office: {endpoint: agent1}}
campaigns: {main: {route: [office]}}
rules:
  - {name: nobody, voicemail: "999@default"}
""")
    )
    await place_call(ani="2125550100", dnis="8005550001", hold=2)
    call = await cdr(status="completed")

    assert call["disposition"] == "failed" and call["attempts"] == []
    assert json.loads(call["route_reason"])["rule"] == "nobody"


async def test_capped_target_is_skipped_for_the_next(start_daemon, agents, place_call, cdr):
    await start_daemon(
        rules("""
targets:
  capped: {endpoint: agent1, priority: 0, caps: {daily: {max: 1, on: dialed}}}
  next: {endpoint: agent2, priority: 1}
groups: {buyers: {targets: [capped, next], strategy: priority}}
campaigns: {main: {route: [next]}}
rules:
  - {name: buyers, route: buyers}
""")
    )
    capped = await agents("agent1", answer_after=0.0)
    nxt = await agents("agent2", answer_after=0.0)

    await place_call(ani="2125550100", dnis="8005550001", hold=1)
    first = await cdr(status="completed", ani_e164="+12125550100")
    await place_call(ani="3125550199", dnis="8005550001", hold=1)
    second = await cdr(status="completed", ani_e164="+13125550199")

    assert first["final_target"] == "capped" and second["final_target"] == "next"
    assert len(capped.invites) == 1 and len(nxt.invites) == 1
    assert "daily cap 1/1" in second["route_reason"]


async def test_concurrency_of_one_sends_the_second_call_elsewhere(
    start_daemon, agents, place_call, cdr
):
    await start_daemon(
        rules("""
targets:
  single: {endpoint: agent1, priority: 0, concurrency: 1}
  overflow: {endpoint: agent2, priority: 1}
groups: {desk: {targets: [single, overflow]}}
campaigns: {main: {route: [overflow]}}
rules:
  - {name: desk, route: desk}
""")
    )
    single = await agents("agent1", answer_after=0.0)
    overflow = await agents("agent2", answer_after=0.0)

    first = asyncio.create_task(place_call(ani="2125550100", dnis="8005550001", hold=4))
    await single.wait_for_invites(1)
    second = asyncio.create_task(place_call(ani="3125550199", dnis="8005550001", hold=1))
    results = await asyncio.gather(first, second)
    a = await cdr(status="completed", ani_e164="+12125550100")
    b = await cdr(status="completed", ani_e164="+13125550199")

    assert all(r.answered for r in results)
    assert len(single.invites) == 1 and len(overflow.invites) == 1
    assert (a["final_target"], b["final_target"]) == ("single", "overflow")
    assert "concurrency 1/1" in b["route_reason"]


async def test_repeat_caller_reaches_the_agent_who_answered_before(
    start_daemon, agents, place_call, cdr
):
    await start_daemon(
        rules("""
targets: {a: {endpoint: agent1}, b: {endpoint: agent2}}
groups: {team: {targets: [a, b], strategy: round_robin, sticky: {days: 30}}}
campaigns: {main: {route: [a]}}
rules:
  - {name: team, route: team}
""")
    )
    await agents("agent1", answer_after=0.0)
    await agents("agent2", answer_after=0.0)

    await place_call(ani="3125550100", dnis="8005550001", hold=1)  # round robin: one of them
    first = await cdr(status="completed", ani_e164="+13125550100")
    await place_call(ani="4155550100", dnis="8005550001", hold=1)  # …then the other
    other = await cdr(status="completed", ani_e164="+14155550100")
    await place_call(ani="3125550100", dnis="8005550001", hold=1)  # the first caller again
    again = await cdr(status="completed", ani_e164="+13125550100", count=2)

    assert again["uniqueid"] != first["uniqueid"]
    assert first["final_target"] != other["final_target"]
    assert again["final_target"] == first["final_target"]
    assert "sticky" in again["route_reason"]


#: agent1 ("slow") and agent2 ("fast") rung together by one Dial.
BOTH_AT_ONCE = rules("""
targets: {slow: {endpoint: agent1}, fast: {endpoint: agent2}}
groups: {both: {targets: [slow, fast], strategy: simultaneous}}
campaigns: {main: {route: [slow]}}
rules:
  - {name: both, route: both}
""")


async def test_simultaneous_ringing_connects_the_first_to_answer(
    start_daemon, agents, place_call, cdr
):
    await start_daemon(BOTH_AT_ONCE)
    slow = await agents("agent1", answer_after=3.0)
    fast = await agents("agent2", answer_after=0.5)

    result = await place_call(ani="2125550100", dnis="8005550001", hold=2)
    call = await cdr(status="completed")

    assert result.answered
    assert len(slow.invites) == 1 and len(fast.invites) == 1  # both rang
    assert call["final_target"] == "fast"
    results = {a["target"]: a["result"] for a in call["attempts"]}
    assert results == {"fast": "ANSWER", "slow": "ELSEWHERE"}
    assert call["ring_seconds"] == pytest.approx(0.5, abs=0.4)


async def test_each_dial_names_its_campaign_and_targets_on_the_callers_channel(
    sandbox, start_daemon, agents, place_call, cdr
):
    await start_daemon(BOTH_AT_ONCE)
    slow = await agents("agent1", answer_after=3.0)
    await agents("agent2", answer_after=0.5)
    call = asyncio.create_task(place_call(ani="2125550100", dnis="8005550001", hold=3))
    await slow.wait_for_invites(1)
    channel = str((await cdr(status="in_progress"))["channel"])
    ami = Ami(AmiUrl.parse(sandbox.ami_url()))
    await ami.start()
    try:
        seen = {
            name: (
                await ami.action({"Action": "Getvar", "Channel": channel, "Variable": name})
            ).get("Value")
            for name in ("CALLFLOW_CAMPAIGN", "CALLFLOW_TARGET")
        }
    finally:
        await ami.stop()
    result = await call

    # Set by [callflow-dialing], which the Dial runs first (no AGI command of its own).
    assert result.answered
    assert seen["CALLFLOW_CAMPAIGN"] == "main"
    assert sorted(str(seen["CALLFLOW_TARGET"]).split("&")) == ["fast", "slow"]


async def test_a_dialplan_without_callflow_dialing_still_connects_calls(
    sandbox, daemon, agents, place_call, cdr
):
    """A daemon upgraded before the dialplan was reloaded: the Dial goes on without the Gosub."""
    await agents("agent1", answer_after=0.2)
    ami = Ami(AmiUrl.parse(sandbox.ami_url()))
    await ami.start()
    try:
        await ami.action({"Action": "Command",
                          "Command": "dialplan remove extension s@callflow-dialing"})  # fmt: skip
        result = await place_call(ani="2125550100", dnis="8005550001", hold=1)
    finally:
        await ami.action({"Action": "Command", "Command": "dialplan reload"})
        await ami.stop()
    call = await cdr(status="completed")

    assert "non-existent destination 'callflow-dialing,s,1'" in sandbox.log_tail(400)
    assert result.answered
    assert call["disposition"] == "answered" and call["final_target"] == "a1"


async def test_broken_rules_on_sighup_drop_no_live_call(
    daemon_process, rules_file, agents, place_call, cdr, db_path
):
    agent = await agents("agent1", answer_after=0.0)
    await daemon_process.start()
    calls = [
        asyncio.create_task(place_call(ani=f"21255501{n:02d}", dnis="8005550001", hold=4))
        for n in range(3)
    ]
    await agent.wait_for_invites(3)
    good = rules_file.read_text()
    rules_file.write_text(good.replace("a1: {endpoint: agent1", "a1: {endpoint: agent 1;"))
    daemon_process.proc.send_signal(signal.SIGHUP)
    results = await asyncio.gather(*calls)

    assert all(r.answered and r.hung_up_by == "carrier" for r in results)
    assert all(r.duration == pytest.approx(4, abs=0.7) for r in results)
    # the old rules stay live: a new call is routed as before
    after = await place_call(ani="2125550199", dnis="8005550001", hold=1)
    assert after.answered and len(agent.invites) == 4
    await daemon_process.stop()

    from callflow.store import CdrReader

    reader = await CdrReader.open(db_path)
    try:
        rows = [c async for c in reader.iter_calls()]
    finally:
        await reader.close()
    assert len(rows) == 4 and all(r["disposition"] == "answered" for r in rows)


async def test_rules_file_change_is_picked_up_without_a_signal(
    start_daemon, agents, place_call, cdr
):
    body = """
targets: {a: {endpoint: agent1}, b: {endpoint: agent2}}
campaigns: {main: {route: [a]}}
"""
    daemon = await start_daemon(rules(body))
    first = await agents("agent1", answer_after=0.0)
    second = await agents("agent2", answer_after=0.0)
    await place_call(ani="2125550100", dnis="8005550001", hold=1)

    daemon.options.config.write_text(rules(body.replace("route: [a]", "route: [b]")))
    for _ in range(50):  # the watcher checks every 0.2 s here
        if daemon.routing.config.campaigns["main"].route == ("b",):
            break
        await asyncio.sleep(0.1)
    await place_call(ani="3125550199", dnis="8005550001", hold=1)

    assert len(first.invites) == 1 and len(second.invites) == 1
