"""Group strategies: order, fairness, weights, stickiness, hashing."""

from __future__ import annotations

import random
from collections import Counter as Tally

import pytest
from rules_helpers import at, config_of, facts

from callflow.config import Config
from callflow.rules import Counters, Engine, Route


def group_config(strategy: str, members: str = "[t0, t1, t2, t3]", extra: str = "") -> Config:
    """A configuration whose single rule routes every call to group g."""
    group = f"groups:\n  g: {{strategy: {strategy}, targets: {members}{extra}}}\n"
    return config_of(group + "rules:\n  - {route: g}\n")


def plan_names(route: object) -> list[list[str]]:
    """Return the plan of a Route as names."""
    assert isinstance(route, Route)
    return [[t.name for t in step] for step in route.plan]


def first(engine: Engine, counters: Counters, **overrides: object) -> str:
    """Return the first target the engine would dial."""
    return plan_names(engine.decide(facts(**overrides), counters).action)[0][0]


def test_priority_lowest_first_and_weight_splits_equal_priorities() -> None:
    config = group_config(
        "priority",
        "[{target: t0, priority: 2}, {target: t1, priority: 1, weight: 3}, "
        "{target: t2, priority: 1, weight: 1}, {target: t3, priority: 3}]",
    )
    engine, counters = Engine(config, rng=random.Random(7)), Counters(config)
    seen = Tally(first(engine, counters) for _ in range(4000))
    assert set(seen) == {"t1", "t2"}
    assert seen["t1"] / 4000 == pytest.approx(0.75, abs=0.03)
    plan = plan_names(engine.decide(facts(), counters).action)
    assert plan[2:] == [["t0"], ["t3"]]


def test_target_priority_and_weight_are_the_defaults() -> None:
    config = config_of(
        "groups:\n  g: {targets: [t0, t1]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a, priority: 5}\n  t1: {endpoint: b, priority: 1}\n",
    )
    assert first(Engine(config), Counters(config)) == "t1"


def test_weighted_split_converges_to_the_weights() -> None:
    config = group_config(
        "weighted", "[{target: t0, weight: 1}, {target: t1, weight: 2}, {target: t2, weight: 7}]"
    )
    engine, counters = Engine(config, rng=random.Random(42)), Counters(config)
    n = 20000
    seen = Tally(first(engine, counters) for _ in range(n))
    expected = {"t0": 0.1, "t1": 0.2, "t2": 0.7}
    chi2 = sum((seen[k] - n * p) ** 2 / (n * p) for k, p in expected.items())
    assert chi2 < 13.8  # 2 degrees of freedom, p = 0.001


def test_weighted_renormalises_over_eligible_targets() -> None:
    config = config_of(
        "groups:\n  g: {strategy: weighted, targets: [{target: t0, weight: 1}, "
        "{target: t1, weight: 2}, {target: t2, weight: 1}]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a}\n  t1: {endpoint: b}\n"
        "  t2: {endpoint: c, concurrency: 1}\n",
    )
    engine, counters = Engine(config, rng=random.Random(1)), Counters(config)
    counters.try_acquire(config.targets["t2"], None, facts().now.timestamp())
    seen = Tally(first(engine, counters) for _ in range(9000))
    assert set(seen) == {"t0", "t1"}
    assert seen["t1"] / 9000 == pytest.approx(2 / 3, abs=0.03)  # 1/2/1 -> 33/67/0


def test_round_robin_is_fair_and_skips_ineligible() -> None:
    config = config_of(
        "groups:\n  g: {strategy: round_robin, targets: [t0, t1, t2]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a}\n  t1: {endpoint: b}\n  t2: {endpoint: c}\n",
    )
    engine, counters = Engine(config), Counters(config)
    now = facts().now.timestamp()
    order = []
    for _ in range(9):
        route = engine.decide(facts(), counters).action
        assert isinstance(route, Route)
        target = route.plan[0][0]
        assert counters.try_acquire(target, "g", now) is None
        counters.release(target, "g", answered=True, talk_seconds=1, now=now)
        order.append(target.name)
    assert order == ["t0", "t1", "t2"] * 3
    counters.try_acquire(config.targets["t0"], None, now)  # fine: no limits; cursor stays
    assert plan_names(engine.decide(facts(), counters).action) == [["t0"], ["t1"], ["t2"]]


def test_round_robin_cursor_survives_a_restart() -> None:
    config = group_config("round_robin", "[t0, t1, t2]")
    counters = Counters(config)
    counters.try_acquire(config.targets["t1"], "g", 0.0)
    restarted = Counters(config)
    restarted.restore_cursors(counters.cursors())
    assert first(Engine(config), restarted) == "t2"


def test_least_calls_counts_today_in_each_targets_zone() -> None:
    config = config_of(
        "groups:\n  g: {strategy: least_calls, targets: [t0, t1]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a, timezone: Asia/Tokyo}\n  t1: {endpoint: b}\n",
    )
    engine, counters = Engine(config), Counters(config)
    now = at("2026-03-04T16:00:00")  # 01:00 on the 5th in Tokyo, 11:00 on the 4th in New York
    for hour in (10, 11):  # yesterday in Tokyo, today in New York
        stamp = at(f"2026-03-04T{hour:02d}:00:00").timestamp()
        counters.try_acquire(config.targets["t0"], "g", stamp)
        counters.release(config.targets["t0"], "g", answered=True, talk_seconds=5, now=stamp + 9)
    counters.try_acquire(config.targets["t1"], "g", at("2026-03-04T15:00:00").timestamp())
    assert first(engine, counters, now=now) == "t0"  # 0 today in Tokyo vs 1 in New York


def test_least_recent_longest_idle_first() -> None:
    config = group_config("least_recent", "[t0, t1, t2]")
    engine, counters = Engine(config), Counters(config)
    now = facts().now.timestamp()
    for name, ago in (("t0", 100), ("t1", 900)):
        counters.try_acquire(config.targets[name], "g", now - ago - 10)
        counters.release(config.targets[name], "g", answered=True, talk_seconds=5, now=now - ago)
    assert plan_names(engine.decide(facts(), counters).action) == [["t2"], ["t1"], ["t0"]]


def test_simultaneous_rings_every_eligible_target_in_one_step() -> None:
    config = config_of(
        "groups:\n  g: {strategy: simultaneous, targets: [t0, t1, t2]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a}\n  t1: {endpoint: b, concurrency: 1}\n"
        "  t2: {endpoint: c}\n",
    )
    engine, counters = Engine(config), Counters(config)
    counters.try_acquire(config.targets["t1"], None, facts().now.timestamp())
    decision = engine.decide(facts(), counters)
    assert plan_names(decision.action) == [["t0", "t2"]]
    assert "- t1: concurrency 1/1" in decision.trace.render()


def test_hash_caller_is_stable_and_spreads() -> None:
    config = group_config("hash_caller")
    callers = [f"+1212555{i:04d}" for i in range(400)]
    a = [first(Engine(config), Counters(config), ani_e164=c) for c in callers]
    b = [first(Engine(config, rng=random.Random(3)), Counters(config), ani_e164=c) for c in callers]
    assert a == b
    spread = Tally(a)
    assert all(70 <= spread[t] <= 130 for t in ("t0", "t1", "t2", "t3")), spread


def test_hash_caller_moves_only_the_callers_of_an_ineligible_target() -> None:
    config = config_of(
        "groups:\n  g: {strategy: hash_caller, targets: [t0, t1, t2]}\nrules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a}\n  t1: {endpoint: b}\n"
        "  t2: {endpoint: c, concurrency: 1}\n",
    )
    engine, counters = Engine(config), Counters(config)
    callers = [f"+1415555{i:04d}" for i in range(200)]
    before = {c: first(engine, counters, ani_e164=c) for c in callers}
    counters.try_acquire(config.targets["t2"], None, facts().now.timestamp())
    after = {c: first(engine, counters, ani_e164=c) for c in callers}
    assert all(after[c] == before[c] for c in callers if before[c] != "t2")
    assert all(after[c] != "t2" for c in callers)


def test_sticky_sends_a_repeat_caller_to_the_last_answerer() -> None:
    config = group_config("round_robin", "[t0, t1, t2]", ", sticky: {days: 7}")
    engine, counters = Engine(config), Counters(config)
    now = facts().now.timestamp()
    recent = facts(repeat_caller=True, last_answered_by="t2", last_answered_at=now - 86400 * 3)
    decision = engine.decide(recent, counters)
    assert plan_names(decision.action) == [["t2"], ["t0"], ["t1"]]
    assert "+ t2: step 1 (sticky)" in decision.trace.render()
    old = facts(repeat_caller=True, last_answered_by="t2", last_answered_at=now - 86400 * 8)
    decision = engine.decide(old, counters)
    assert plan_names(decision.action)[0] == ["t0"]
    assert "not within 7 d" in decision.trace.render()


def test_sticky_target_not_eligible_falls_back_to_the_strategy() -> None:
    config = config_of(
        "groups:\n  g: {strategy: priority, targets: [t0, t1], sticky: {days: 30}}\n"
        "rules:\n  - {route: g}\n",
        targets="targets:\n  t0: {endpoint: a}\n  t1: {endpoint: b, concurrency: 1}\n",
    )
    engine, counters = Engine(config), Counters(config)
    now = facts().now.timestamp()
    counters.try_acquire(config.targets["t1"], None, now)
    decision = engine.decide(
        facts(last_answered_by="t1", last_answered_at=now - 60, repeat_caller=True), counters
    )
    assert plan_names(decision.action) == [["t0"]]
    assert "sticky: t1 answered this caller last but is not eligible here" in (
        decision.trace.render()
    )


def test_sticky_with_simultaneous_rings_the_last_answerer_alone_first() -> None:
    config = group_config("simultaneous", "[t0, t1, t2]", ", sticky: {days: 7}")
    now = facts().now.timestamp()
    decision = Engine(config).decide(
        facts(last_answered_by="t1", last_answered_at=now - 60), Counters(config)
    )
    assert plan_names(decision.action) == [["t1"], ["t0", "t2"]]
