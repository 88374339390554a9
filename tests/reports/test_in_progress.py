"""Calls in progress in the grouped reports, whose wide indexes hold finished calls only."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_data import A, create_db, fill, insert_call, utc

from callflow.reports import Filters, ReportDb, geo, sources, targets

ALL = Filters()


@pytest.fixture
def live_db(tmp_path: Path) -> ReportDb:
    """The data set plus a google call from New York still in progress."""
    path = tmp_path / "cdr.sqlite3"
    conn = create_db(path)
    fill(conn)
    insert_call(
        conn, uniqueid="live", started_at=utc("2024-11-04T06:00:00"), ani_e164=A,
        ani_raw=A[2:], ani_valid=1, country="US", area_code="212", state="NY",
        city="New York", tracking_number="+18005550101", campaign="google", source="google",
        medium="cpc", keyword="plumber", status="in_progress",
    )  # fmt: skip
    conn.close()
    return ReportDb.open(path)


def _reports(db: ReportDb) -> tuple[object, ...]:
    """Sources by campaign and keyword, geo by state and city, and the targets report."""
    by_campaign, total = sources(db, ALL)
    by_keyword, _ = sources(db, ALL, ("source", "keyword"))
    return (
        [(g.key, g.row()) for g in by_campaign],
        total.row(),
        [(g.key, g.calls) for g in by_keyword],
        [(g.place, g.calls, g.answered) for g in geo(db, ALL)],
        [(g.place, g.calls) for g in geo(db, ALL, "city")],
        [(t.level, t.target, t.offered, t.answered) for t in targets(db, ALL)],
    )


def test_the_grouped_indexes_count_calls_in_progress_as_the_time_index_does(
    live_db: ReportDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_db:
        small = _reports(live_db)
        monkeypatch.setattr(ReportDb, "large", lambda self, filters: True)
        assert _reports(live_db) == small
    by_campaign, total, by_keyword, states, _, finals = small
    assert dict(by_campaign)[("google",)]["calls"] == 6  # five finished, one in progress
    assert total["calls"] == 8 and total["answered"] == 4
    assert (("google", "plumber"), 6) in by_keyword
    assert ("NY", 3, 2) in states
    assert sum(t[2] for t in finals if t[0] == "final") == 7  # no target yet: not counted


def test_the_wide_grouped_indexes_leave_out_calls_in_progress(live_db: ReportDb) -> None:
    with live_db:
        for index in ("calls_report_source", "calls_report_geo", "calls_report_target"):
            (sql,) = live_db.one("SELECT sql FROM sqlite_master WHERE name = ?", [index])
            assert sql.endswith("IS NOT NULL"), index
        held = live_db.one(
            "SELECT count(*) FROM calls INDEXED BY calls_report_source "
            "WHERE disposition IS NOT NULL AND campaign = 'google'"
        )
    assert held == (5,)
