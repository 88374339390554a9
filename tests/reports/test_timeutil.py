"""Local buckets, offsets and date parsing across New York's DST changes."""

from __future__ import annotations

import itertools
import random
from datetime import datetime

import pytest
from report_data import utc

from callflow.reports import timeutil
from callflow.reports.timeutil import (
    bucket_bounds,
    bucket_label,
    day_count,
    parse_range,
    parse_when,
    segments,
    zone,
)

NY = zone("America/New_York")


def test_spring_forward_day_has_23_hours() -> None:
    bounds = bucket_bounds(utc("2024-03-10T05:00:00"), utc("2024-03-11T04:00:00"), "day", NY)
    assert bounds == [utc("2024-03-10T05:00:00"), utc("2024-03-11T04:00:00")]
    hours = bucket_bounds(bounds[0], bounds[1], "hour", NY)
    assert len(hours) - 1 == 23
    labels = [bucket_label(h, "hour", NY) for h in hours[:4]]
    assert labels == ["2024-03-10T00:00-05:00", "2024-03-10T01:00-05:00",
                      "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"]  # fmt: skip


def test_fall_back_day_has_25_hours_and_two_1am_buckets() -> None:
    bounds = bucket_bounds(utc("2024-11-03T04:00:00"), utc("2024-11-04T04:59:59"), "day", NY)
    assert bounds == [utc("2024-11-03T04:00:00"), utc("2024-11-04T05:00:00")]
    hours = bucket_bounds(bounds[0], bounds[1], "hour", NY)
    assert len(hours) - 1 == 25
    assert all(b - a == 3600 for a, b in itertools.pairwise(hours))
    assert [bucket_label(h, "hour", NY) for h in hours[1:3]] == [
        "2024-11-03T01:00-04:00",
        "2024-11-03T01:00-05:00",
    ]


def test_weeks_start_monday_and_months_on_the_first() -> None:
    weeks = bucket_bounds(utc("2024-11-03T12:00:00"), utc("2024-11-05T12:00:00"), "week", NY)
    assert [bucket_label(w, "week", NY) for w in weeks[:-1]] == [
        "2024-10-28 (wk 44)",
        "2024-11-04 (wk 45)",
    ]
    months = bucket_bounds(utc("2024-02-15T00:00:00"), utc("2024-03-20T00:00:00"), "month", NY)
    assert months == [utc("2024-02-01T05:00:00"), utc("2024-03-01T05:00:00"),
                      utc("2024-04-01T04:00:00")]  # fmt: skip


def test_offset_segments_follow_both_changes() -> None:
    seg = segments(utc("2024-01-01T00:00:00"), utc("2024-12-31T00:00:00"), NY)
    assert seg.changes == [utc("2024-03-10T07:00:00"), utc("2024-11-03T06:00:00")]
    assert seg.offsets == [-18000, -14400, -18000]
    assert seg.offset_at(utc("2024-11-03T05:59:59")) == -14400
    assert "CASE WHEN started_at <" in seg.sql()
    assert segments(0, 1000, zone("UTC")).sql() == "(started_at + 0)"


def test_parse_dates_in_the_zone() -> None:
    assert parse_when("2024-11-03", NY) == utc("2024-11-03T04:00:00")
    assert parse_when("2024-11-03", NY, end=True) == utc("2024-11-04T05:00:00")
    assert parse_when("2024-11-03T12:00:00+00:00", NY) == utc("2024-11-03T12:00:00")
    assert parse_range("2024-11-03..2024-11-04", NY) == (
        utc("2024-11-03T04:00:00"),
        utc("2024-11-05T05:00:00"),
    )
    assert day_count(*parse_range("2024-11-03..2024-11-04", NY), NY) == 2.0
    with pytest.raises(ValueError, match="ISO"):
        parse_when("yesterday", NY)
    with pytest.raises(ValueError, match="range"):
        parse_range("2024-11-03", NY)
    with pytest.raises(ValueError, match="time zone"):
        zone("Mars/Olympus")


@pytest.mark.parametrize(
    "name",
    ["America/New_York", "UTC", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe",
     "America/St_Johns", "Asia/Kathmandu", "Africa/Casablanca", "Pacific/Chatham"],
)  # fmt: skip
def test_hour_bounds_match_stepping_local_hours(name: str) -> None:
    """Whole-hour zones take a UTC-hour shortcut; every zone must match hour-by-hour steps."""
    tz = zone(name)
    rng = random.Random(name)
    for _ in range(20):
        lo = rng.uniform(1.5e9, 1.75e9)
        hi = lo + rng.choice([1.0, 3600, 7200.5, 86400, 40 * 86400, 365 * 86400])
        if rng.random() < 0.3:
            lo = float(int(lo // 3600) * 3600)
        stepped = [timeutil._floor(lo, "hour", tz).timestamp()]
        while stepped[-1] < hi:
            start = datetime.fromtimestamp(stepped[-1], tz)
            stepped.append(timeutil._next(start, "hour", tz))
        assert bucket_bounds(lo, hi, "hour", tz) == stepped
