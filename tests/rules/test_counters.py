"""Counters: caps per period in the owner's zone, concurrency, minimum gap, reload, startup."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import config_of, ts

from callflow.config import Config
from callflow.rules import Counters
from callflow.rules.limits import period_keys

NY = "America/New_York"


def capped(caps: str, extra: str = "", group: str = "") -> Config:
    """A configuration whose target t0 has the given caps (and t1 none)."""
    return config_of(
        "groups:\n  g:\n    targets: [t0, t1]\n" + group,
        targets=f"targets:\n  t0: {{endpoint: agent1, caps: {caps}{extra}}}\n"
        "  t1: {endpoint: agent2}\n",
    )


def test_dialed_daily_cap_counts_acquisitions() -> None:
    config = capped("{daily: {max: 2, on: dialed}}")
    counters = Counters(config)
    t0 = config.targets["t0"]
    now = ts("2026-03-04T10:00", NY)
    assert counters.try_acquire(t0, "g", now) is None
    counters.release(t0, "g", answered=False, talk_seconds=0, now=now + 5)
    assert counters.try_acquire(t0, "g", now + 10) is None
    assert counters.try_acquire(t0, "g", now + 20) == "daily cap 2/2 (dialed)"
    counters.release(t0, "g", answered=True, talk_seconds=30, now=now + 60)
    assert counters.try_acquire(t0, "g", now + 61) == "daily cap 2/2 (dialed)"
    # Midnight in New York (05:00 UTC) resets it, not midnight UTC.
    assert counters.try_acquire(t0, "g", ts("2026-03-05T00:30")) == "daily cap 2/2 (dialed)"
    assert counters.try_acquire(t0, "g", ts("2026-03-05T00:00", NY)) is None


def test_answered_cap_reserves_calls_in_progress() -> None:
    config = capped("{daily: 2}")  # counted on answered
    counters = Counters(config)
    t0 = config.targets["t0"]
    now = ts("2026-03-04T10:00", NY)
    assert counters.try_acquire(t0, None, now) is None
    assert counters.try_acquire(t0, None, now + 1) is None
    # Both may still answer: a third would risk 3/2.
    assert counters.try_acquire(t0, None, now + 2) == (
        "daily cap 2/2 (answered: 0 + 2 in progress)"
    )
    counters.release(t0, None, answered=False, talk_seconds=0, now=now + 20)
    assert counters.try_acquire(t0, None, now + 21) is None
    counters.release(t0, None, answered=True, talk_seconds=10, now=now + 30)
    counters.release(t0, None, answered=True, talk_seconds=10, now=now + 31)
    assert counters.try_acquire(t0, None, now + 40) == "daily cap 2/2 (answered)"


def test_converted_cap_counts_long_calls_only() -> None:
    config = capped("{daily: {max: 1, on: converted}, convert_after: 60}")
    counters = Counters(config)
    t0 = config.targets["t0"]
    now = ts("2026-03-04T10:00", NY)
    for i in range(3):
        assert counters.try_acquire(t0, None, now + 100 * i) is None
        counters.release(t0, None, answered=True, talk_seconds=59, now=now + 100 * i + 70)
    assert counters.try_acquire(t0, None, now + 400) is None
    counters.release(t0, None, answered=True, talk_seconds=60, now=now + 470)
    assert counters.try_acquire(t0, None, now + 500) == "daily cap 1/1 (converted)"
    assert counters.snapshot_for(t0, now + 500).today == {
        "dialed": 4,
        "answered": 4,
        "converted": 1,
    }


def test_hourly_cap_resets_on_the_hour() -> None:
    config = capped("{hourly: {max: 1, on: dialed}}")
    counters = Counters(config)
    t0 = config.targets["t0"]
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:59:59")) is None
    counters.release(t0, None, answered=False, talk_seconds=0, now=ts("2026-03-04T10:59:59"))
    assert counters.try_acquire(t0, None, ts("2026-03-04T11:00:00")) is None


def test_hourly_cap_in_a_half_hour_zone() -> None:
    config = capped("{hourly: {max: 1, on: dialed}}", ", timezone: Asia/Kolkata")
    counters = Counters(config)
    t0 = config.targets["t0"]
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:20:00")) is None  # 15:50 IST
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:29:00")) is not None
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:30:00")) is None  # 16:00 IST


def test_the_two_fall_back_hours_are_two_hourly_periods() -> None:
    first = period_keys(__import__("zoneinfo").ZoneInfo(NY), ts("2025-11-02T05:30:00"))
    second = period_keys(__import__("zoneinfo").ZoneInfo(NY), ts("2025-11-02T06:30:00"))
    assert first["hourly"] < second["hourly"]
    assert first["daily"] == second["daily"]


ZONES = ("America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC", "Europe/London",
         "America/St_Johns", "Pacific/Chatham")  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.one_of(
        st.floats(min_value=-2e9, max_value=4e9, allow_nan=False),
        # around New York's 2025 fall-back and spring-forward instants
        st.floats(min_value=1762059600 - 7200, max_value=1762059600 + 7200),
        st.floats(min_value=1741503600 - 7200, max_value=1741503600 + 7200),
    ),
)
def test_cached_period_keys_equal_the_local_time(tz: str, when: float) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(when, ZoneInfo(tz))
    keys = period_keys(ZoneInfo(tz), when)
    assert keys["hourly"] == (local.year, local.month, local.day, local.hour, local.fold)
    assert keys["daily"] == (local.year, local.month, local.day)
    assert keys["monthly"] == (local.year, local.month) and keys["total"] == ()


def test_monthly_cap_resets_at_month_start_in_the_targets_zone() -> None:
    config = capped("{monthly: {max: 1, on: dialed}}", ", timezone: America/Los_Angeles")
    counters = Counters(config)
    t0 = config.targets["t0"]
    # 2026-03-01 07:30 UTC is still February 28 in Los Angeles.
    assert counters.try_acquire(t0, None, ts("2026-02-10T12:00")) is None
    assert counters.try_acquire(t0, None, ts("2026-03-01T07:30")) == "monthly cap 1/1 (dialed)"
    assert counters.try_acquire(t0, None, ts("2026-03-01T08:00")) is None  # March there


def test_total_cap() -> None:
    config = capped("{total: {max: 1, on: dialed}}")
    counters = Counters(config)
    t0 = config.targets["t0"]
    assert counters.try_acquire(t0, None, ts("2026-01-01T00:00")) is None
    assert counters.try_acquire(t0, None, ts("2027-06-01T00:00")) == "total cap 1/1 (dialed)"


def test_concurrency_and_min_gap() -> None:
    config = config_of(
        "", targets="targets:\n  t0: {endpoint: agent1, concurrency: 2, min_gap: 30}\n"
    )
    counters = Counters(config)
    t0 = config.targets["t0"]
    now = 1_000_000.0
    assert counters.try_acquire(t0, None, now) is None
    assert counters.try_acquire(t0, None, now + 12) == "min_gap 30 s: last call 12 s ago"
    assert counters.try_acquire(t0, None, now + 30) is None
    assert counters.try_acquire(t0, None, now + 90) == "concurrency 2/2"
    counters.release(t0, None, answered=True, talk_seconds=50, now=now + 100)
    assert counters.try_acquire(t0, None, now + 110) == "min_gap 30 s: last call 10 s ago"
    assert counters.try_acquire(t0, None, now + 130) is None


def test_group_caps_and_concurrency() -> None:
    config = capped("{}", group="    concurrency: 1\n    caps: {daily: {max: 2, on: dialed}}\n")
    counters = Counters(config)
    t0, t1 = config.targets["t0"], config.targets["t1"]
    now = ts("2026-03-04T10:00", NY)
    assert counters.try_acquire(t0, "g", now) is None
    assert counters.try_acquire(t1, "g", now + 1) == "group g: concurrency 1/1"
    assert counters.try_acquire(t1, None, now + 1) is None  # not through the group
    counters.release(t0, "g", answered=True, talk_seconds=5, now=now + 10)
    assert counters.try_acquire(t1, "g", now + 11) is None
    counters.release(t1, "g", answered=True, talk_seconds=5, now=now + 20)
    assert counters.try_acquire(t0, "g", now + 30) == "group g: daily cap 2/2 (dialed)"


def test_hours_are_rechecked_at_dial_time() -> None:
    config = config_of(
        "", targets="targets:\n  t0: {endpoint: agent1, hours: {mon-fri: ['09:00-17:00']}}\n"
    )
    counters = Counters(config)
    t0 = config.targets["t0"]
    assert counters.try_acquire(t0, None, ts("2026-03-04T16:59", NY)) is None
    assert counters.try_acquire(t0, None, ts("2026-03-04T17:00", NY)) == (
        "closed at 17:00 Wed in America/New_York (hours mon-fri 09:00-17:00)"
    )


@dataclass(frozen=True)
class Past:
    """An attempt as the CDR store gives it back."""

    target: str
    group: str | None
    started_at: float
    answered: bool
    talk_seconds: float
    ended_at: float | None


def test_load_rebuilds_counts_from_history() -> None:
    config = capped("{daily: 2, monthly: {max: 5, on: dialed}}", group="    concurrency: 3\n")
    counters = Counters(config)
    t0 = config.targets["t0"]
    day = ts("2026-03-04T10:00", NY)
    counters.load(
        [
            Past("t0", "g", day - 86400 * 2, True, 60, day - 86400 * 2 + 70),
            Past("t0", "g", day - 3600, True, 60, day - 3600 + 70),
            Past("t0", None, day - 1800, False, 0, None),
            Past("t0", "g", day - 600, True, 30, day - 600 + 40),
            Past("gone", "g", day - 600, True, 30, day - 600 + 40),
        ]
    )
    usage = counters.snapshot_for(t0, day)
    assert usage.live == 0
    assert dict(usage.today) == {"dialed": 3, "answered": 2, "converted": 0}
    assert usage.last_end == day - 600 + 40
    assert counters.try_acquire(t0, "g", day) == "daily cap 2/2 (answered)"
    assert counters.group_snapshot("g", day).today["dialed"] == 2


def test_reconfigure_keeps_counts_of_targets_that_remain() -> None:
    config = capped("{daily: {max: 1, on: dialed}}")
    counters = Counters(config)
    now = ts("2026-03-04T10:00", NY)
    counters.try_acquire(config.targets["t0"], "g", now)
    counters.try_acquire(config.targets["t1"], "g", now)
    smaller = config_of(
        "", targets="targets:\n  t0: {endpoint: agent1, caps: {daily: {max: 2, on: dialed}}}\n"
    )
    counters.reconfigure(smaller)
    t0 = smaller.targets["t0"]
    assert counters.snapshot_for(t0, now).live == 1
    assert counters.snapshot_for("t1", now).live == 0
    assert counters.try_acquire(t0, None, now + 1) is None  # the new cap: 2
    assert counters.try_acquire(t0, None, now + 2) == "daily cap 2/2 (dialed)"


def test_cursors_round_trip() -> None:
    config = config_of("groups:\n  rr: {strategy: round_robin, targets: [t0, t1, t2]}\n")
    counters = Counters(config)
    counters.try_acquire(config.targets["t1"], "rr", 0.0)
    assert counters.cursors() == {"rr": 2}
    other = Counters(config)
    other.restore_cursors({"rr": 5, "nope": 1})
    assert other.cursors() == {"rr": 2}


# --- property: caps and concurrency are never exceeded ----------------------------------------

PROPERTY = config_of(
    "groups:\n  g: {targets: [t0, t1], concurrency: 3, caps: {hourly: {max: 4, on: dialed}}}\n",
    targets="""\
    targets:
      t0:
        endpoint: agent1
        timezone: America/New_York
        concurrency: 2
        min_gap: 5
        caps: {hourly: {max: 3, on: dialed}, daily: {max: 4, on: answered}}
      t1:
        endpoint: agent2
        timezone: Asia/Kolkata
        concurrency: 1
        caps: {daily: {max: 3, on: converted}, convert_after: 30}
    """,
)

operation = st.tuples(
    st.sampled_from(["acquire", "release"]),
    st.integers(0, 1),  # target (or, for release, which live call)
    st.sampled_from([None, "g"]),
    st.floats(0, 5000),  # seconds since the previous operation
    st.booleans(),  # answered
    st.floats(0, 200),  # talk seconds (capped at the call's length)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=80), st.floats(ts("2026-03-07T20:00"), ts("2026-03-09T08:00")))
def test_caps_and_concurrency_are_never_exceeded(
    ops: list[tuple[str, int, str | None, float, bool, float]], start: float
) -> None:
    counters = Counters(PROPERTY)
    targets = [PROPERTY.targets["t0"], PROPERTY.targets["t1"]]
    live: list[tuple[int, str | None, float]] = []
    events: list[tuple[str, str, float]] = []  # (owner, metric, when)
    last_call: dict[str, float] = {}
    now = start
    for kind, which, group, gap, answered, talk in ops:
        now += gap
        if kind == "acquire":
            target = targets[which]
            if counters.try_acquire(target, group, now) is None:
                owners = [target.name] + ([group] if group else [])
                if target.name == "t0" and "t0" in last_call:
                    assert now - last_call["t0"] >= 5
                live.append((which, group, now))
                last_call[target.name] = now
                events.extend((owner, "dialed", now) for owner in owners)
        elif live:
            which_t, group_l, started = live.pop(which % len(live))
            target = targets[which_t]
            talk = min(talk, now - started)
            counters.release(target, group_l, answered=answered, talk_seconds=talk, now=now)
            last_call[target.name] = now
            owners = [target.name] + ([group_l] if group_l else [])
            if answered:
                events.extend((o, "answered", now - talk) for o in owners)
                if talk >= 30:
                    events.extend((o, "converted", now - talk + 30) for o in owners)
        # Invariants, from our own ledger (not the counters' bookkeeping):
        assert sum(1 for t, _, _ in live if t == 0) <= 2
        assert sum(1 for t, _, _ in live if t == 1) <= 1
        assert sum(1 for _, g, _ in live if g == "g") <= 3
    _assert_within_caps(events)


def _assert_within_caps(events: list[tuple[str, str, float]]) -> None:
    """Check every period's count of every capped (owner, metric) against its cap."""
    from zoneinfo import ZoneInfo

    caps = [
        ("t0", "dialed", "hourly", 3, "America/New_York"),
        ("t0", "answered", "daily", 4, "America/New_York"),
        ("t1", "converted", "daily", 3, "Asia/Kolkata"),
        ("g", "dialed", "hourly", 4, "America/New_York"),
    ]
    for owner, metric, period, most, tz in caps:
        per: dict[tuple[int, ...], int] = {}
        for o, m, when in events:
            if (o, m) == (owner, metric):
                key = period_keys(ZoneInfo(tz), when)[period]
                per[key] = per.get(key, 0) + 1
        assert all(n <= most for n in per.values()), (owner, metric, per)


def test_an_answer_in_an_hour_before_the_latest_counts_for_the_day_only() -> None:
    config = capped("{hourly: {max: 2, on: answered}, daily: {max: 9, on: answered}}")
    counters = Counters(config)
    t0 = config.targets["t0"]
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:50")) is None  # call A
    assert counters.try_acquire(t0, None, ts("2026-03-04T10:58")) is None  # call B
    # B answered at 11:05 ends first; A, answered at 10:59, ends after it.
    counters.release(t0, None, answered=True, talk_seconds=300, now=ts("2026-03-04T11:10"))
    counters.release(t0, None, answered=True, talk_seconds=720, now=ts("2026-03-04T11:11"))
    assert counters.snapshot_for(t0, ts("2026-03-04T11:12")).today["answered"] == 2
    # The 11:00 hour holds B's answer only: a second call may still be taken in it.
    assert counters.try_acquire(t0, None, ts("2026-03-04T11:12")) is None
    assert counters.try_acquire(t0, None, ts("2026-03-04T11:13")) == (
        "hourly cap 2/2 (answered: 1 + 1 in progress)"
    )
