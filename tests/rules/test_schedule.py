"""Opening hours: weekday ranges, overnight ranges, closed dates, time zones and DST edges."""

from __future__ import annotations

import pytest
from rules_helpers import at

from callflow.config import parse_days
from callflow.rules.schedule import Schedule

NY = "America/New_York"


def sched(
    hours: dict[str, list[str]] | None, closed: tuple[str, ...] = (), tz: str = NY
) -> Schedule:
    """Compile a schedule."""
    return Schedule.build(hours, closed, tz)


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("mon", (0,)),
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("fri-mon", (0, 4, 5, 6)),
        ("sat,sun", (5, 6)),
        ("Mon, wed-thu", (0, 2, 3)),
        ("daily", tuple(range(7))),
    ],
)
def test_day_specs(spec: str, days: tuple[int, ...]) -> None:
    assert parse_days(spec) == days


OFFICE = sched({"mon-fri": ["09:00-12:00", "13:00-17:30"]})


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        ("2026-03-04T08:59:59", False),  # Wednesday
        ("2026-03-04T09:00:00", True),
        ("2026-03-04T11:59:59", True),
        ("2026-03-04T12:30:00", False),  # lunch
        ("2026-03-04T13:00:00", True),
        ("2026-03-04T17:29:59", True),
        ("2026-03-04T17:30:00", False),
        ("2026-03-07T10:00:00", False),  # Saturday
    ],
)
def test_several_ranges_a_day(local: str, open_: bool) -> None:
    assert (OFFICE.closed_reason(at(local, NY)) is None) == open_


def test_closed_reason_says_when_and_where() -> None:
    hours = sched({"mon-fri": ["09:00-17:00"]})
    assert hours.closed_reason(at("2026-03-06T18:05", NY)) == (
        "closed at 18:05 Fri in America/New_York (hours mon-fri 09:00-17:00)"
    )


def test_the_time_zone_is_the_targets() -> None:
    la = sched({"mon-fri": ["09:00-17:00"]}, tz="America/Los_Angeles")
    assert la.closed_reason(at("2026-03-04T18:00:00")) is None  # 10:00 in Los Angeles
    assert la.closed_reason(at("2026-03-04T16:59:00")) is not None  # 08:59 there


OVERNIGHT = sched({"sat": ["22:00-02:00"]})


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        ("2026-03-14T21:59", False),  # Saturday
        ("2026-03-14T22:00", True),
        ("2026-03-14T23:59", True),
        ("2026-03-15T00:00", True),  # Sunday: still Saturday's night
        ("2026-03-15T01:59", True),
        ("2026-03-15T02:00", False),
        ("2026-03-15T22:30", False),  # Sunday evening has no range
        ("2026-03-13T23:00", False),  # Friday
    ],
)
def test_overnight_range_crosses_midnight(local: str, open_: bool) -> None:
    assert (OVERNIGHT.closed_reason(at(local, NY)) is None) == open_


def test_fall_back_night_0130_happens_twice_and_is_open_both_times() -> None:
    # 2025-11-02: New York falls back from 02:00 EDT to 01:00 EST.
    early = sched({"sun": ["00:00-01:45"]})
    first = at("2025-11-02T05:30:00")  # 01:30 EDT
    second = at("2025-11-02T06:30:00")  # 01:30 EST, an hour later
    assert early.closed_reason(first) is None
    assert early.closed_reason(second) is None
    assert early.closed_reason(at("2025-11-02T06:50:00")) is not None  # 01:50 EST
    assert early.closed_reason(at("2025-11-02T07:00:00")) is not None  # 02:00 EST


def test_overnight_range_across_fall_back() -> None:
    night = sched({"sat": ["22:00-02:00"]})  # Saturday 2025-11-01 into the fall-back Sunday
    assert night.closed_reason(at("2025-11-02T03:00:00")) is None  # 23:00 EDT Sat
    assert night.closed_reason(at("2025-11-02T05:30:00")) is None  # 01:30 EDT
    assert night.closed_reason(at("2025-11-02T06:30:00")) is None  # 01:30 EST
    assert night.closed_reason(at("2025-11-02T07:00:00")) is not None  # 02:00 EST


def test_overnight_range_across_spring_forward() -> None:
    night = sched({"sat": ["22:00-02:30"]})  # 2026-03-08 02:00 EST jumps to 03:00 EDT
    assert night.closed_reason(at("2026-03-08T06:59:00")) is None  # 01:59 EST
    assert night.closed_reason(at("2026-03-08T07:00:00")) is not None  # 03:00 EDT


def test_range_in_the_skipped_hour_never_opens() -> None:
    gap = sched({"sun": ["02:00-02:59"]})
    assert gap.closed_reason(at("2026-03-08T06:59:00")) is not None  # 01:59 EST
    assert gap.closed_reason(at("2026-03-08T07:00:00")) is not None  # 03:00 EDT


def test_closed_dates() -> None:
    hours = sched({"daily": ["00:00-24:00"]}, ("2026-12-24", "01-01"))
    assert hours.closed_reason(at("2026-12-24T12:00", NY)) == (
        "closed on 2026-12-24 (closed_dates) in America/New_York"
    )
    assert hours.closed_reason(at("2026-12-25T12:00", NY)) is None
    assert hours.closed_reason(at("2027-01-01T00:30", NY)) is not None  # every year
    assert hours.closed_reason(at("2028-01-01T23:59", NY)) is not None


def test_closed_date_closes_the_night_that_starts_on_it() -> None:
    night = sched({"daily": ["22:00-02:00"]}, ("2026-12-24",))
    assert night.closed_reason(at("2026-12-24T23:00", NY)) is not None
    assert night.closed_reason(at("2026-12-25T01:00", NY)) is not None  # the 24th's night
    assert night.closed_reason(at("2026-12-25T23:00", NY)) is None


def test_closed_dates_alone_mean_open_every_other_day() -> None:
    hours = sched(None, ("2026-07-04",))
    assert hours.closed_reason(at("2026-07-03T03:00", NY)) is None
    assert hours.closed_reason(at("2026-07-04T03:00", NY)) is not None


def test_midnight_to_24() -> None:
    hours = sched({"mon": ["00:00-24:00"]})
    assert hours.closed_reason(at("2026-03-02T00:00", NY)) is None
    assert hours.closed_reason(at("2026-03-02T23:59:59", NY)) is None
    assert hours.closed_reason(at("2026-03-03T00:00", NY)) is not None
