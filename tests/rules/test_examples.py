"""Every rules file shipped under rules/ is valid, and the examples route as documented."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rules_helpers import at, facts

from callflow.config import load_config
from callflow.rules import CollectZip, Counters, Engine, Play, Reject, Route, RunIvr, Voicemail

RULES = Path(__file__).resolve().parents[2] / "rules"
FILES = sorted(RULES.glob("*.yaml")) + sorted((RULES / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_rules_file_is_valid(path: Path) -> None:
    config = load_config(path)
    Engine(config)
    Counters(config)


def test_office_hours() -> None:
    config = load_config(RULES / "examples" / "office-hours.yaml")
    engine, counters = Engine(config), Counters(config)
    call = facts(dnis="3125550100", tracking_number="+13125550100", campaign="main")
    lunch = engine.decide(
        replace(call, now=at("2026-03-04T12:30", "America/Chicago")),
        counters,
    )
    assert isinstance(lunch.action, Route)
    assert [s[0].name for s in lunch.action.plan] == ["back-office"]
    friday_night = at("2026-03-07T02:00", "America/Chicago")  # Saturday 02:00: Friday's night
    night = engine.decide(replace(call, now=friday_night), counters)
    assert isinstance(night.action, Route) and night.action.plan[0][0].name == "night-desk"
    sunday = engine.decide(replace(call, now=at("2026-03-08T15:00")), counters)
    assert isinstance(sunday.action, Route) and sunday.action.plan == ()
    assert sunday.action.fallback == Voicemail("night", "100@office")


def test_geo_and_ivr() -> None:
    config = load_config(RULES / "examples" / "geo-and-ivr.yaml")
    engine, counters = Engine(config), Counters(config)
    call = facts(dnis="8005550100", tracking_number="+18005550100", campaign="radio")
    assert isinstance(engine.decide(call, counters).action, RunIvr)
    sales = call.with_ivr("main", "1")
    assert engine.decide(sales, counters).action.rule == "new-york"  # type: ignore[union-attr]
    sf = replace(sales, state="CA", area_code="415")
    assert engine.decide(sf, counters).action.rule == "california"  # type: ignore[union-attr]
    unknown = replace(sales, state=None, area_code=None, ani_e164=None)
    assert isinstance(engine.decide(unknown, counters).action, CollectZip)
    west = unknown.with_zip("97201", city="Portland", state="OR")
    assert engine.decide(west, counters).action.rule == "west-by-zip"  # type: ignore[union-attr]
    timeout = engine.decide(call.with_ivr("main", ""), counters).action
    assert isinstance(timeout, Route) and timeout.group == "support"


def test_pay_per_call() -> None:
    config = load_config(RULES / "examples" / "pay-per-call.yaml")
    engine, counters = Engine(config), Counters(config)
    call = facts(dnis="8885550100", tracking_number="+18885550100", campaign="solar")
    assert engine.decide(replace(call, ani_e164="+19005551234"), counters).action == (
        Reject("spam", "busy")
    )
    anonymous = replace(call, ani_e164=None, anonymous=True)
    assert engine.decide(anonymous, counters).action == Play("anonymous", "custom/no-anonymous")
    sell = engine.decide(call, counters).action
    assert isinstance(sell, Route) and sell.rule == "sell"
    assert {s[0].name for s in sell.plan[:2]} == {"buyer-a", "buyer-b"}
    assert sell.plan[2][0].name == "buyer-c"
