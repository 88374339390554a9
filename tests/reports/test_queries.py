"""Exact numbers of every report query on the hand-built data set (see report_data)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from report_data import A, B, C, create_db, fill, utc

from callflow.reports import (
    Filters,
    ReportDb,
    caller_calls,
    callers,
    compare,
    geo,
    heatmap,
    missed,
    sources,
    summary,
    targets,
)
from callflow.reports.caller import normalise
from callflow.reports.geo import NoZipColumn, geo_report
from callflow.reports.timeutil import parse_range, parse_when, zone

NY = zone("America/New_York")
UTC = zone("UTC")
ALL = Filters()


def counts(row: object) -> tuple[int, ...]:
    """calls, answered, missed, abandoned, unknown, unique callers of a Counts."""
    c = row.counts if hasattr(row, "counts") else row  # type: ignore[attr-defined]
    return (c.calls, c.answered, c.missed, c.abandoned, c.unknown, c.unique_callers)


def test_summary_by_day_in_new_york_across_fall_back(db: ReportDb) -> None:
    rows, total = summary(db, ALL, "day", NY)
    assert [r.label for r in rows] == ["2024-11-02", "2024-11-03", "2024-11-04"]
    assert [counts(r) for r in rows] == [(1, 1, 0, 0, 0, 1), (5, 2, 2, 1, 0, 3), (1, 1, 0, 0, 0, 1)]
    nov3 = rows[1].counts
    assert nov3.answer_rate == 0.4
    assert nov3.avg_ring == pytest.approx(51 / 5)
    assert nov3.avg_talk == 115
    assert counts(total) == (7, 4, 2, 1, 0, 3)


def test_summary_by_day_in_utc_buckets_differently(db: ReportDb) -> None:
    rows, _ = summary(db, ALL, "day", UTC)
    assert [(r.label, r.counts.calls) for r in rows] == [
        ("2024-11-02", 1),
        ("2024-11-03", 4),
        ("2024-11-04", 2),
    ]


def test_summary_by_hour_keeps_both_1am_hours(db: ReportDb) -> None:
    day = Filters(parse_when("2024-11-03", NY), parse_when("2024-11-03", NY, end=True))
    rows, total = summary(db, day, "hour", NY)
    assert len(rows) == 25
    busy = {r.label: r.counts.calls for r in rows if r.counts.calls}
    assert busy == {"2024-11-03T00:00-04:00": 1, "2024-11-03T01:00-04:00": 1,
                    "2024-11-03T01:00-05:00": 1, "2024-11-03T12:00-05:00": 1,
                    "2024-11-03T23:00-05:00": 1}  # fmt: skip
    assert counts(total) == (5, 2, 2, 1, 0, 3)


def test_summary_by_week_and_month_and_spring_forward(db: ReportDb) -> None:
    weeks, _ = summary(db, ALL, "week", NY)
    assert [(r.label, r.counts.calls) for r in weeks] == [("2024-10-28 (wk 44)", 6),
                                                         ("2024-11-04 (wk 45)", 1)]  # fmt: skip
    months, _ = summary(db, ALL, "month", NY)
    assert [(r.label, r.counts.calls) for r in months] == [("2024-11", 7)]


def test_summary_filters(db: ReportDb) -> None:
    _, total = summary(db, Filters(campaign=("facebook",)), "day", NY)
    assert counts(total) == (2, 1, 1, 0, 0, 1)
    _, total = summary(db, Filters(state=("IL", "NY")), "day", NY)
    assert counts(total) == (4, 3, 1, 0, 0, 2)
    _, total = summary(db, Filters(target=("support",), source=("google",)), "day", NY)
    assert counts(total) == (1, 1, 0, 0, 0, 1)
    _, total = summary(db, Filters(campaign=("nope",)), "day", NY)
    assert counts(total) == (0, 0, 0, 0, 0, 0)


def test_spring_forward_buckets(tmp_path: Path) -> None:
    conn = create_db(tmp_path / "spring.sqlite3")
    from report_data import insert_call

    for i, when in enumerate(["2024-03-10T06:59:00", "2024-03-10T07:00:00", "2024-03-11T03:59:00",
                              "2024-03-11T04:00:00"]):  # fmt: skip
        insert_call(conn, uniqueid=f"s{i}", started_at=utc(when), ani_e164=f"+1212555000{i}",
                    disposition="answered", talk_seconds=10.0, ring_seconds=1.0)  # fmt: skip
    conn.close()
    with ReportDb.open(tmp_path / "spring.sqlite3") as db:
        days, _ = summary(db, ALL, "day", NY)
        assert [(r.label, r.counts.calls) for r in days] == [("2024-03-10", 3), ("2024-03-11", 1)]
        hours, _ = summary(
            db,
            Filters(parse_when("2024-03-10", NY), parse_when("2024-03-10", NY, end=True)),
            "hour",
            NY,
        )
        assert len(hours) == 23
        assert [(r.label, r.counts.calls) for r in hours if r.counts.calls] == [
            ("2024-03-10T01:00-05:00", 1), ("2024-03-10T03:00-04:00", 1),
            ("2024-03-10T23:00-04:00", 1)]  # fmt: skip
        cells = {(c.weekday, c.hour): c.calls for c in heatmap(db, ALL, NY) if c.calls}
        assert cells == {(6, 1): 1, (6, 3): 1, (6, 23): 1, (0, 0): 1}


def test_missed_with_reached_later(db: ReportDb) -> None:
    calls, totals = missed(db, ALL)
    assert [(c.uniqueid, c.disposition, c.caller) for c in calls] == [
        ("c6", "busy", C), ("c5", "abandoned", "anonymous"), ("c2", "no-answer", B)]  # fmt: skip
    reached = {c.uniqueid: c.reached_at for c in calls}
    assert reached == {"c6": utc("2024-11-04T05:00:00"), "c5": None,
                       "c2": utc("2024-11-03T06:30:00")}  # fmt: skip
    assert totals.by_disposition == {"busy": (1, 1), "no-answer": (1, 1), "failed": (0, 0),
                                     "rejected": (0, 0), "abandoned": (1, 0)}  # fmt: skip
    assert (totals.calls, totals.reached) == (3, 2)
    _, short = missed(db, ALL, within=3600)  # B got through 2 h later, C after 1 min
    assert short.reached == 1
    few, _ = missed(db, ALL, limit=1)
    assert [c.uniqueid for c in few] == ["c6"]


def test_callers_all_time_and_window(db: ReportDb) -> None:
    stats, tops = callers(db, ALL)
    assert (stats.calls, stats.anonymous_calls, stats.unique, stats.first_time, stats.returning,
            stats.repeat, stats.repeat_calls) == (7, 1, 3, 3, 0, 3, 6)  # fmt: skip
    assert [(t.caller, t.calls, t.answered) for t in tops] == [(C, 2, 1), (B, 2, 1), (A, 2, 2)]
    window = Filters(since=parse_when("2024-11-03", NY))
    stats, tops = callers(db, window)
    assert (stats.calls, stats.unique, stats.first_time, stats.returning, stats.repeat,
            stats.repeat_calls) == (6, 3, 2, 1, 2, 4)  # fmt: skip
    assert [t.caller for t in tops] == [C, B]
    assert (tops[1].city, tops[1].state, tops[1].campaigns) == ("Miami", "FL", "facebook")


def test_callers_large_window_path_gives_the_same(db: ReportDb, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:  # fmt: skip
    monkeypatch.setattr(ReportDb, "large", lambda self, filters: True)
    window = Filters(since=parse_when("2024-11-03", NY))
    stats, tops = callers(db, window)
    assert (stats.unique, stats.first_time, stats.returning, stats.repeat) == (3, 2, 1, 2)
    assert [t.caller for t in tops] == [C, B]
    _, total = summary(db, ALL, "day", NY)
    assert total.unique_callers == 3
    assert sum(g.calls for g in sources(db, ALL)[0]) == 7
    assert sum(g.calls for g in geo(db, ALL)) == 7


def test_sources_by_campaign_with_costs(db: ReportDb) -> None:
    rows, total = sources(db, ALL, costs={"google": 100.0, "facebook": 50.0})
    got = {r.key: r.row() for r in rows}
    google, facebook = got[("google",)], got[("facebook",)]
    assert (google["calls"], google["answered"], google["missed"], google["abandoned"],
            google["conversions"], google["talk_minutes"]) == (5, 3, 1, 1, 2, 3.5)  # fmt: skip
    assert (google["cost_per_call"], google["cost_per_conversion"]) == (20.0, 50.0)
    assert (facebook["calls"], facebook["conversions"], facebook["cost_per_call"],
            facebook["cost_per_conversion"]) == (2, 1, 25.0, 50.0)  # fmt: skip
    assert total.row()["calls"] == 7 and total.cost == 150.0
    strict, _ = sources(db, ALL, convert_after=61)
    assert {r.key: r.conversions for r in strict} == {("google",): 1, ("facebook",): 1}


def test_sources_by_keyword_and_number(db: ReportDb) -> None:
    rows, _ = sources(db, ALL, ("source", "keyword"))
    assert [(r.key, r.calls) for r in rows] == [(("google", "plumber"), 5), (("facebook", None), 2)]
    rows, _ = sources(db, ALL, ("tracking_number",))
    assert [(r.key, r.calls) for r in rows] == [(("+18005550101",), 5), (("+18005550121",), 2)]
    with pytest.raises(ValueError):
        sources(db, ALL, ("ad",))


def test_geo_levels(db: ReportDb) -> None:
    assert [(g.place, g.calls, g.answered, g.missed) for g in geo(db, ALL, "state")] == [
        ("FL", 2, 1, 1), ("IL", 2, 1, 1), ("NY", 2, 2, 0), ("(unknown)", 1, 0, 1)]  # fmt: skip
    assert [g.place for g in geo(db, ALL, "city")][:3] == ["Chicago, IL", "Miami, FL",
                                                          "New York, NY"]  # fmt: skip
    assert [(g.place, g.calls) for g in geo(db, ALL, "country")] == [("US", 6), ("(unknown)", 1)]
    assert [g.place for g in geo(db, ALL, "area_code")][:3] == ["212", "305", "312"]
    assert [(g.place, g.calls) for g in geo(db, ALL, "zip")] == [("(unknown)", 7)]


def test_geo_by_zip_without_the_column(db: ReportDb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReportDb, "columns", lambda self, table: frozenset({"uniqueid"}))
    with pytest.raises(NoZipColumn):
        geo(db, ALL, "zip")
    report, rows = geo_report(db, ALL, {}, "zip")
    assert rows == [] and "no ZIP column" in report.notes[0]


def test_geo_by_zip_once_the_column_exists(tmp_path: Path) -> None:
    path = tmp_path / "zip.sqlite3"
    conn = create_db(path)
    fill(conn)
    conn.execute("UPDATE calls SET zip = '10001' WHERE ani_e164 = ?", (A,))
    conn.close()
    with ReportDb.open(path) as db:
        assert [(g.place, g.calls) for g in geo(db, ALL, "zip")] == [("(unknown)", 5), ("10001", 2)]


def test_targets_final_and_attempts_with_cap_hits(db: ReportDb) -> None:
    rows = {(r.level, r.target): r.row() for r in targets(db, ALL)}
    sales = rows[("final", "sales")]
    assert (
        sales["offered"],
        sales["answered"],
        sales["missed"],
        sales["busy"],
        sales["no_answer"],
        sales["abandoned"],
        sales["talk_minutes"],
    ) == (5, 2, 3, 1, 1, 1, 3.0)
    support = rows[("final", "support")]
    assert (support["offered"], support["answered"], support["talk_minutes"]) == (2, 2, 230 / 60)
    dialled = rows[("attempt", "sales")]
    assert (
        dialled["offered"],
        dialled["answered"],
        dialled["busy"],
        dialled["no_answer"],
        dialled["abandoned"],
        dialled["cap_hits"],
        dialled["skipped"],
    ) == (6, 2, 2, 1, 1, 1, 0)
    support = rows[("attempt", "support")]
    assert (support["offered"], support["cap_hits"], support["skipped"]) == (2, 1, 1)
    only = targets(db, Filters(campaign=("facebook",)))
    assert [(r.level, r.target, r.offered, r.cap_hits) for r in only] == [
        ("final", "sales", 1, 0), ("final", "support", 1, 0),
        ("attempt", "sales", 1, 1), ("attempt", "support", 1, 0)]  # fmt: skip


def test_heatmap_in_new_york(db: ReportDb) -> None:
    cells = {(c.weekday, c.hour): (c.calls, c.missed) for c in heatmap(db, ALL, NY) if c.calls}
    # 2024-11-02 was a Saturday (5), the 3rd a Sunday (6), the 4th a Monday (0).
    assert cells == {(5, 10): (1, 0), (6, 0): (1, 1), (6, 1): (2, 0), (6, 12): (1, 1),
                     (6, 23): (1, 1), (0, 0): (1, 0)}  # fmt: skip
    assert len(heatmap(db, ALL, NY)) == 168


def _binom_p(k: int, n: int, p: float) -> float:
    """Reference two-sided exact binomial p-value."""
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return sum(x for x in pmf if x <= pmf[k] * (1 + 1e-9))


def test_compare_per_day_with_noise_test(db: ReportDb) -> None:
    before = parse_range("2024-11-02..2024-11-02", NY)
    after = parse_range("2024-11-03..2024-11-04", NY)
    a, b, changes = compare(db, ALL, before, after, NY)
    assert (a.days, b.days, a.counts.calls, b.counts.calls) == (1.0, 2.0, 1, 6)
    m = {c.metric: c for c in changes}
    assert (m["calls / day"].before, m["calls / day"].after) == (1.0, 3.0)
    assert (m["calls / day"].change, m["calls / day"].relative) == (2.0, 2.0)
    assert m["calls / day"].p_value == pytest.approx(_binom_p(1, 7, 1 / 3))
    assert (m["answered / day"].before, m["answered / day"].after) == (1.0, 1.5)
    assert (m["conversions / day"].before, m["conversions / day"].after) == (1.0, 1.0)
    assert m["answer rate"].before == 1.0 and m["answer rate"].after == 0.5
    assert m["answer rate"].p_value is None  # too few calls for chi-square
    assert (m["unique callers / day"].before, m["unique callers / day"].after) == (1.0, 1.5)


def test_caller_history(db: ReportDb) -> None:
    assert normalise("(212) 555-0001") == A
    calls = caller_calls(db, normalise("212.555.0001"), ALL)
    assert [(c.uniqueid, c.disposition, c.attempts) for c in calls] == [
        ("c1", "answered", "sales:ANSWER"),
        ("c3", "answered", "sales:BUSY → support:ANSWER"),
    ]
    assert caller_calls(db, "+19999999999", ALL) == []


def test_report_db_is_read_only_and_checks_the_file(db: ReportDb, tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        db.conn.execute("DELETE FROM calls")
    with pytest.raises(FileNotFoundError):
        ReportDb.open(tmp_path / "missing.sqlite3")


def test_sources_by_directory_company(tmp_path: Path) -> None:
    path = tmp_path / "cdr.sqlite3"
    conn = create_db(path)
    fill(conn)
    conn.execute(
        "UPDATE calls SET company = 'Acme' WHERE rowid IN (SELECT rowid FROM calls LIMIT 3)"
    )
    conn.commit()
    conn.close()
    with ReportDb.open(path) as db:
        rows, total = sources(db, ALL, ("company",))
    assert [(r.key, r.calls) for r in rows] == [((None,), total.calls - 3), (("Acme",), 3)]


def test_sources_and_targets_show_revenue_payout_margin(tmp_path: Path) -> None:
    from callflow.reports.sources import sources_report
    from callflow.reports.targets import targets_report

    path = tmp_path / "cdr.sqlite3"
    conn = create_db(path)
    fill(conn)
    calls = conn.execute(
        "SELECT uniqueid, campaign, final_target FROM calls "
        "WHERE disposition = 'answered' ORDER BY started_at LIMIT 2"
    ).fetchall()
    for n, (uid, _campaign, _target) in enumerate(calls):
        for kind, who, amount in (("revenue", "buyer", 2500 + n), ("payout", "publisher", 1000)):
            conn.execute(
                "INSERT INTO ledger (at, uniqueid, account_kind, account, amount_minor, currency,"
                " kind, rule, reason) VALUES (0, ?, ?, 'x', ?, 'USD', ?, 'r', 'why')",
                (uid, who, amount, kind),
            )
    conn.close()
    with ReportDb.open(path) as db:
        report, _ = sources_report(db, ALL, {}, ("campaign",))
        targets, _ = targets_report(db, ALL, {})
    (section,) = report.sections
    total = next(r for r in section.rows if r.get("_total"))
    assert (total["revenue"], total["payout"]) == (50.01, 20.00)
    assert total["margin"] == pytest.approx(30.01)
    finals = [r for r in targets.sections[0].rows if r["level"] == "final" and r["revenue"]]
    assert sum(r["revenue"] for r in finals) == pytest.approx(50.01)
