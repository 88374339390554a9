"""One-pass reports against brute force on random data: every filter, packed or not."""

from __future__ import annotations

import importlib
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_data import create_db, insert_call

from callflow.reports import Filters, ReportDb, callers, missed, summary
from callflow.reports.db import MISSED
from callflow.reports.timeutil import bucket_bounds, zone

NY = zone("America/New_York")
T0 = 1_730_520_000.0  # 2024-11-02T04:00Z: the window spans the fall-back night
DISPOSITIONS = ("answered", "answered", "busy", "no-answer", "abandoned", "failed", None)
Call = dict[str, Any]


def _calls(seed: int) -> list[Call]:
    """Random calls from a few numbers over three days (repeat callers, ties, anonymous)."""
    rng = random.Random(seed)
    return [
        {
            "uniqueid": f"r{i}",
            "started_at": T0 + rng.randint(0, 3 * 24 * 4) * 900.0,
            "ani_e164": rng.choice(["+12125550001", "+12125550002", "+13125550003", None]),
            "campaign": rng.choice(["google", "facebook"]),
            "source": rng.choice(["g", "f"]),
            "state": rng.choice(["NY", "IL"]),
            "final_target": rng.choice(["sales", "support"]),
            "disposition": rng.choice(DISPOSITIONS),
            "ring_seconds": 1.0,
            "talk_seconds": 10.0,
        }
        for i in range(150)
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Call]]:
    """The random data set in a database (written in shuffled order)."""
    path = tmp_path_factory.mktemp("exact") / "cdr.sqlite3"
    calls = _calls(7)
    conn = create_db(path)
    for call in calls:
        insert_call(conn, **call)
    conn.close()
    return path, calls


FILTERS = [
    Filters(),
    Filters(T0 + 3600, T0 + 2 * 86400),
    Filters(campaign=("google",)),
    Filters(T0 + 7200, None, state=("NY",), target=("sales",)),
    Filters(source=("f",), campaign=("google", "facebook")),
]


def _keep(f: Filters, c: Call) -> bool:
    """Whether a call passes the filters."""
    return (
        (f.since is None or c["started_at"] >= f.since)
        and (f.until is None or c["started_at"] < f.until)
        and all(
            not values or c[column] in values
            for column, values in (
                ("campaign", f.campaign),
                ("source", f.source),
                ("final_target", f.target),
                ("state", f.state),
            )
        )
    )


@pytest.fixture(params=[True, False], ids=["packed", "unpacked"])
def packed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Run once with packed tallies and once as if every group were too big for them."""
    if not request.param:
        for name in ("db", "callers"):  # ReportDb.tallied, and callers' own check
            module = importlib.import_module(f"callflow.reports.{name}")
            monkeypatch.setattr(module, "fits", lambda *_: False)
    yield request.param


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("by", ["hour", "day"])
def test_summary_matches_brute_force(
    data: tuple[Path, list[Call]], filters: Filters, by: Any, packed: bool
) -> None:
    path, calls = data
    kept = [c for c in calls if _keep(filters, c)]
    with ReportDb.open(path) as db:
        rows, total = summary(db, filters, by, NY)
    lo = filters.since if filters.since is not None else min(c["started_at"] for c in calls)
    hi = filters.until if filters.until is not None else max(c["started_at"] for c in calls) + 1e-3
    bounds = bucket_bounds(lo, hi, by, NY)
    assert [r.start for r in rows] == bounds[:-1]
    for row, (a, b) in zip(rows, itertools.pairwise([lo, *bounds[1:-1], hi]), strict=True):
        inside = [c for c in kept if a <= c["started_at"] < b]
        got = row.counts
        assert got.calls == len(inside)
        assert got.answered == sum(c["disposition"] == "answered" for c in inside)
        assert got.missed == sum(c["disposition"] in MISSED for c in inside)
        assert got.abandoned == sum(c["disposition"] == "abandoned" for c in inside)
        assert got.unique_callers == len({c["ani_e164"] for c in inside} - {None})
    assert total.unique_callers == len({c["ani_e164"] for c in kept} - {None})
    assert total.calls == len(kept)


@pytest.mark.parametrize("filters", FILTERS)
def test_callers_and_missed_match_brute_force(
    data: tuple[Path, list[Call]], filters: Filters, packed: bool
) -> None:
    path, calls = data
    kept = [c for c in calls if _keep(filters, c)]
    with ReportDb.open(path) as db:
        stats, tops = callers(db, filters)
        _, totals = missed(db, filters, within=86400)
    numbers = {c["ani_e164"] for c in kept} - {None}
    first = {n: min(c["started_at"] for c in kept if c["ani_e164"] == n) for n in numbers}
    # first-time: the number never called (under any label) before its first call here
    returning = {c["ani_e164"] for c in calls if c["ani_e164"] in first and
                 c["started_at"] < first[c["ani_e164"]]}  # fmt: skip
    per = {n: sum(c["ani_e164"] == n for c in kept) for n in numbers}
    assert stats.calls == len(kept)
    assert stats.anonymous_calls == sum(c["ani_e164"] is None for c in kept)
    assert stats.unique == len(numbers)
    assert stats.first_time == len(numbers - returning)
    assert stats.repeat == sum(n >= 2 for n in per.values())
    assert stats.repeat_calls == sum(n for n in per.values() if n >= 2)
    assert sorted((t.caller, t.calls) for t in tops) == sorted(
        (a, n) for a, n in per.items() if n >= 2
    )
    for disposition, (n, reached) in totals.by_disposition.items():
        mine = [c for c in kept if c["disposition"] == disposition]
        assert n == len(mine)
        assert reached == sum(
            any(
                o["ani_e164"] == c["ani_e164"]
                and o["disposition"] == "answered"
                and c["started_at"] < o["started_at"] <= c["started_at"] + 86400
                for o in calls
            )
            for c in mine
            if c["ani_e164"]
        )
