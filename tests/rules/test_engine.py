"""The engine: each condition, first match wins, IVR and ZIP rounds, actions, trace, explain."""

# ruff: noqa: E501  (tables of conditions and YAML rules read best one per line)

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import at, config_of, facts

from callflow.rules import (
    CallFacts,
    CollectZip,
    Counters,
    Engine,
    Hangup,
    Play,
    Reject,
    Route,
    RunIvr,
    Trace,
    Voicemail,
    explain,
)

GROUPS = """\
groups:
  g: {targets: [t0, t1]}
  h: {targets: [t2]}
lists:
  blocked: ["+12125550100", {number: "+1900*", expires: 2026-06-30}]
  vip: ["+1415*"]
menus:
  main: {prompt: menu, choices: ["1", "2"]}
"""


def decide_with(when: str, call: CallFacts) -> tuple[bool, str]:
    """Return (matched, reason) of a single rule with these conditions for a call."""
    config = config_of(
        GROUPS + f"rules:\n  - {{ivr: main}}\n  - {{name: r, when: {when}, route: h}}\n"
    )
    decision = Engine(config).decide(call, Counters(config), full_trace=True)
    entry = next(e for e in decision.trace.entries if getattr(e, "rule", None) == "r")
    return entry.matched, entry.reason  # type: ignore[union-attr]


MENU = {"main": "1"}


@pytest.mark.parametrize(
    ("when", "match", "miss", "reason"),
    [
        ("{tracking_number: 800-555-0001}", {}, {"tracking_number": None}, "tracking number (unknown) not in [+18005550001]"),
        ("{campaign: other}", {"campaign": "other"}, {}, "campaign c not in [other]"),
        ("{source: [google, bing]}", {"source": "bing"}, {"source": "radio"}, "source radio not in [google, bing]"),
        ("{medium: cpc}", {"medium": "cpc"}, {}, "medium (unknown) not in [cpc]"),
        ("{keyword: plumber}", {"keyword": "plumber"}, {"keyword": "x"}, "keyword x not in [plumber]"),
        ("{dnis: '+18005550001'}", {"dnis": "1-800-555-0001"}, {"dnis": "8005550009"}, "dnis +18005550009 not in [+18005550001]"),
        ("{ani_prefix: ['+1212', '+1646']}", {}, {"ani_e164": "+14155550100"}, "caller +14155550100 does not start with +1212 or +1646"),
        ("{ani_prefix: '+1212'}", {}, {"ani_e164": None}, "no caller number"),
        ("{area_code: [212, 646]}", {}, {"area_code": "415"}, "area code 415 not in [212, 646]"),
        ("{state: ca}", {"state": "CA"}, {}, "state NY not in [CA]"),
        ("{country: [ca, mx]}", {"country": "CA"}, {}, "country US not in [CA, MX]"),
        ("{zip: '10001'}", {"zip": "10001"}, {"zip": "94105"}, "ZIP 94105 not in [10001]"),
        ("{ivr: {main: '2'}}", {"ivr": {"main": "2"}}, {}, "menu main: '1' not in [2]"),
        ("{repeat_caller: true}", {"repeat_caller": True}, {}, "not a repeat caller"),
        ("{repeat_caller: false}", {}, {"repeat_caller": True}, "a repeat caller"),
        ("{anonymous: true}", {"anonymous": True, "ani_e164": None}, {}, "not anonymous"),
        ("{in_list: vip}", {"ani_e164": "+14155550100"}, {}, "caller +12125550100 not in list vip"),
        ("{not_in_list: blocked}", {"ani_e164": "+13125550100"}, {}, "caller +12125550100 is in list blocked (+12125550100)"),
        ("{not_in_list: blocked}", {"ani_e164": "+13125550100"}, {"ani_e164": "+19005550100"}, "caller +19005550100 is in list blocked (+1900*)"),
    ],
)  # fmt: skip
def test_each_condition(
    when: str, match: dict[str, object], miss: dict[str, object], reason: str
) -> None:
    assert decide_with(when, facts(**{"ivr": MENU, **match})) == (True, "")
    assert decide_with(when, facts(**{"ivr": MENU, **miss})) == (False, reason)


def test_list_entries_expire() -> None:
    when = "{in_list: blocked}"
    caller = "+19005550100"
    before = facts(ivr=MENU, ani_e164=caller, now=at("2026-06-29T23:59", "America/New_York"))
    after = facts(ivr=MENU, ani_e164=caller, now=at("2026-06-30T00:00", "America/New_York"))
    assert decide_with(when, before)[0]
    assert decide_with(when, after) == (False, "caller +19005550100 not in list blocked")


def test_hours_condition_in_its_time_zone() -> None:
    when = "{hours: {mon-fri: ['09:00-17:00']}, timezone: America/Los_Angeles}"
    assert decide_with(when, facts(ivr=MENU, now=at("2026-03-04T09:30", "America/Los_Angeles")))[0]
    matched, reason = decide_with(
        when, facts(ivr=MENU, now=at("2026-03-04T09:30", "America/New_York"))
    )
    assert not matched
    assert reason == (
        "outside the rule's hours: closed at 06:30 Wed in America/Los_Angeles "
        "(hours mon-fri 09:00-17:00)"
    )


def test_closed_dates_condition_uses_the_settings_zone() -> None:
    when = "{closed_dates: [12-25]}"  # the settings' zone: America/New_York
    assert decide_with(when, facts(ivr=MENU, now=at("2026-12-25T03:00")))[0]  # 24th, 22:00
    assert not decide_with(when, facts(ivr=MENU, now=at("2026-12-26T04:30")))[0]  # 25th, 23:30
    assert decide_with(when, facts(ivr=MENU, now=at("2026-12-26T05:30")))[0]  # 26th, 00:30


FLOW = (
    GROUPS
    + """\
  lang: {prompt: lang, max_digits: 2, choices: ["1", "22"], invalid: {play: bad-choice}, timeout: {hangup: true}}
rules:
  - {name: blocked, when: {in_list: blocked}, reject: busy}
  - {name: menu, when: {campaign: c}, ivr: main}
  - {name: sales, when: {ivr: {main: "1"}}, route: g, max_attempts: 1, failover_on: [busy], fallback: {voicemail: "100@sales"}}
  - {name: zip, when: {ivr: {main: "2"}}, collect_zip: {prompt: enter-zip, retries: 1}}
  - {name: west, when: {state: [CA, OR]}, route: h}
  - {name: lang, when: {ivr: {main: "2"}}, ivr: lang}
  - {name: late, when: {ivr: {lang: "22"}}, play: goodbye}
  - {name: rest, when: {campaign: c}, voicemail: "200"}
"""
)


@pytest.fixture(scope="module")
def flow() -> tuple[Engine, Counters]:
    """An engine and counters over the FLOW rules."""
    config = config_of(FLOW)
    return Engine(config), Counters(config)


def test_ivr_then_matching_goes_on_with_the_digits(flow: tuple[Engine, Counters]) -> None:
    engine, counters = flow
    call = facts(ani_e164="+13125550100")
    action = engine.decide(call, counters).action
    assert isinstance(action, RunIvr) and action.rule == "menu"
    menu = action.menu
    assert (menu.name, menu.prompt, menu.choices) == ("main", "menu", ("1", "2"))
    decision = engine.decide(call.with_ivr("main", "1"), counters)
    route = decision.action
    assert isinstance(route, Route)
    assert (route.rule, route.group, route.max_attempts) == ("sales", "g", 1)
    assert route.failover_on == frozenset({"busy"})
    assert route.fallback == Voicemail("sales", "100@sales")
    assert sorted([t.name for t in s] for s in route.plan) == [["t0"], ["t1"]]  # equal: random
    assert "rule menu: no: menu main answered '1'; matching goes on" in decision.trace.render()


def test_zip_collector_then_geo(flow: tuple[Engine, Counters]) -> None:
    engine, counters = flow
    call = facts(ani_e164="+13125550100").with_ivr("main", "2")
    assert engine.decide(call, counters).action == CollectZip("zip", "enter-zip", 1)
    west = engine.decide(call.with_zip("94105", city="San Francisco", state="CA"), counters)
    assert isinstance(west.action, Route) and west.action.rule == "west"
    assert "rule zip: no: ZIP already known" in west.trace.render()
    failed = engine.decide(call.without_zip("123"), counters)
    assert isinstance(failed.action, RunIvr) and failed.action.menu.name == "lang"


def test_ivr_branches(flow: tuple[Engine, Counters]) -> None:
    engine, counters = flow
    call = facts(ani_e164="+13125550100").with_ivr("main", "2").without_zip()
    assert engine.decide(call.with_ivr("lang", "22"), counters).action == Play("late", "goodbye")
    invalid = engine.decide(call.with_ivr("lang", "9"), counters)
    assert invalid.action == Play("lang", "bad-choice")
    assert "menu lang: invalid ('9'): the play branch" in invalid.trace.render()
    assert engine.decide(call.with_ivr("lang", ""), counters).action == Hangup("lang")
    # main repeats on invalid input: after the retries, matching goes on without a choice.
    repeat = engine.decide(facts(ani_e164="+13125550100").with_ivr("main", "7"), counters)
    assert repeat.action == Voicemail("rest", "200")
    assert "menu main: invalid after the retries; matching goes on" in repeat.trace.render()


def test_block_list_first(flow: tuple[Engine, Counters]) -> None:
    engine, counters = flow
    action = engine.decide(facts(ani_e164="+12125550100"), counters).action
    assert action == Reject("blocked", "busy")
    assert action.q850 == 17


def test_everything_closed_leaves_the_fallback() -> None:
    config = config_of(
        "groups:\n  g: {targets: [t0, t1]}\nrules:\n  - {route: g, fallback: {play: closed}}\n",
        targets="targets:\n"
        "  t0: {endpoint: a, hours: {mon-fri: ['09:00-17:00']}}\n"
        "  t1: {endpoint: b, caps: {daily: {max: 0, on: dialed}}}\n",
    )
    call = facts(now=at("2026-03-06T18:05", "America/New_York"))
    decision = Engine(config).decide(call, Counters(config))
    causes = frozenset({"busy", "noanswer", "unavailable"})
    assert decision.action == Route("rules[0]", "g", (), 2, causes, Play("rules[0]", "closed"))
    text = decision.trace.render()
    assert "- t0: closed at 18:05 Fri in America/New_York (hours mon-fri 09:00-17:00)" in text
    assert "- t1: daily cap 0/0 (dialed)" in text


def test_group_refusal_skips_every_target() -> None:
    config = config_of(
        "groups:\n  g: {targets: [t0, t1], concurrency: 1}\nrules:\n  - {route: g}\n"
    )
    counters = Counters(config)
    counters.try_acquire(config.targets["t0"], "g", facts().now.timestamp())
    decision = Engine(config).decide(facts(), counters)
    assert isinstance(decision.action, Route) and decision.action.plan == ()
    assert "- t1: group g: concurrency 1/1" in decision.trace.render()


def test_no_rule_matches_uses_the_campaign_route() -> None:
    config = config_of(GROUPS + "rules:\n  - {when: {state: CA}, route: h}\n")
    decision = Engine(config).decide(facts(), Counters(config))
    assert isinstance(decision.action, Route)
    assert (decision.action.rule, decision.action.group) == ("campaign:c", "campaign:c")
    assert [s[0].name for s in decision.action.plan] == ["t0"]


def test_unknown_campaign_hangs_up() -> None:
    config = config_of(GROUPS)
    action = Engine(config).decide(facts(campaign="gone"), Counters(config)).action
    assert action == Hangup("(no rule)")


def test_trace_json_round_trip_and_text(flow: tuple[Engine, Counters]) -> None:
    engine, counters = flow
    trace = engine.decide(facts(ani_e164="+13125550100").with_ivr("main", "1"), counters).trace
    assert Trace.from_json(trace.as_json()) == trace
    assert trace.matched_rule == "sales"
    assert trace.as_json().startswith('{"v":1,"trace":[')
    assert '["r","blocked",0,"caller +13125550100 not in list blocked"]' in trace.as_json()


def test_explain_reserves_nothing(flow: tuple[Engine, Counters]) -> None:
    engine, _ = flow
    counters = Counters(engine.config)
    call = facts(ani_e164="+13125550100").with_ivr("main", "1")
    before = (counters.snapshot_for("t0"), counters.cursors())
    text = explain(engine, call, counters)
    assert (counters.snapshot_for("t0"), counters.cursors()) == before
    assert text.splitlines()[0] == (
        "call to 8005550001 (campaign c) from +13125550100 (New York, NY, US) "
        "at 2026-03-04 15:00:00 UTC"
    )
    assert "rule blocked: no: caller +13125550100 not in list blocked" in text
    assert re.match(
        r"=> route to group g: 1 t[01]; 2 t[01] \(at most 1 attempts", text.splitlines()[-1]
    )


def test_naive_now_is_utc() -> None:
    config = config_of(
        GROUPS + "rules:\n  - {when: {hours: {daily: ['15:00-16:00']}, timezone: UTC}, play: x}\n"
    )
    call = facts(now=at("2026-03-04T15:30").replace(tzinfo=None))
    assert Engine(config).decide(call, Counters(config)).action == Play("rules[0]", "x")


# --- the index never changes a decision ---------------------------------------------------------

_CONDITIONS = [
    "tracking_number: '8005550002'",
    "campaign: other, state: [NY, CA]",
    "state: CA",
    "area_code: [212, 415], zip: ['10001']",
    "ani_prefix: '+1415'",
    "country: CA",
    "source: radio",
    "dnis: '+18005550001', repeat_caller: true",
    "medium: [cpc]",
    "zip: ['94105', '10001']",
]
INDEXED = config_of(
    "groups:\n  g: {targets: [t0]}\nrules:\n"
    + "".join(f"  - {{when: {{{c}}}, play: s{i}}}\n" for i, c in enumerate(_CONDITIONS))
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["c", "other"]),
    st.sampled_from([None, "+18005550001", "+18005550002"]),
    st.sampled_from([None, "NY", "CA", "ny"]),
    st.sampled_from([None, "212", "415", "312"]),
    st.sampled_from([None, "10001", "94105"]),
    st.sampled_from([None, "+14155550100", "+12125550100"]),
    st.sampled_from([None, "US", "CA"]),
    st.sampled_from([None, "radio", "web"]),
    st.sampled_from([None, "cpc"]),
    st.sampled_from(["8005550001", "+1 800 555 0002", "garbage"]),
    st.booleans(),
)
def test_index_gives_the_same_decision_as_testing_every_rule(
    campaign: str, tracking: str | None, state: str | None, area: str | None, zip_: str | None,
    ani: str | None, country: str | None, source: str | None, medium: str | None, dnis: str,
    repeat: bool,
) -> None:  # fmt: skip
    call = facts(
        campaign=campaign, tracking_number=tracking, state=state, area_code=area, zip=zip_,
        ani_e164=ani, country=country, source=source, medium=medium, dnis=dnis,
        repeat_caller=repeat,
    )  # fmt: skip
    engine, counters = Engine(INDEXED, rng=random.Random(0)), Counters(INDEXED)
    fast = engine.decide(call, counters)
    full = engine.decide(call, counters, full_trace=True)
    assert fast.action == full.action
    fast_rules = [e for e in fast.trace.entries if hasattr(e, "matched")]
    full_rules = [e for e in full.trace.entries if hasattr(e, "matched")]
    assert all(e in full_rules for e in fast_rules)
