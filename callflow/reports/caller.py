"""``report caller NUMBER``: every call from one number, with attribution and what happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from callflow.enrich import enrich
from callflow.reports.db import Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import iso

__all__ = ["CallerCall", "caller_calls", "caller_report", "normalise"]


@dataclass(frozen=True)
class CallerCall:
    """One call of the caller, with its attribution and dial attempts (``target:result``)."""

    uniqueid: str
    started_at: float
    campaign: str | None
    source: str | None
    medium: str | None
    keyword: str | None
    tracking_number: str | None
    disposition: str | None
    final_target: str | None
    ring_seconds: float | None
    talk_seconds: float | None
    city: str | None
    state: str | None
    attempts: str | None


def normalise(number: str, default_country: str = "US") -> str:
    """The number in E.164 as the daemon stores it (the digits as given when unparseable)."""
    info = enrich(number, None, default_country)
    return info.e164 or number.strip()


def caller_calls(db: ReportDb, number: str, filters: Filters) -> list[CallerCall]:
    """The caller's calls in time order (``number`` already normalised)."""
    where, params = filters.where("c")
    sql = (
        "SELECT c.uniqueid, c.started_at, c.campaign, c.source, c.medium, c.keyword, "
        "c.tracking_number, c.disposition, c.final_target, c.ring_seconds, c.talk_seconds, "
        "c.city, c.state, (SELECT group_concat(target || ':' || result, ' → ') FROM "
        "(SELECT target, result FROM attempts AS a WHERE a.uniqueid = c.uniqueid "
        "ORDER BY seq)) FROM calls AS c "
        f"{db.index('calls_ani_started_at')} WHERE c.ani_e164 = ? AND {where} "
        "ORDER BY c.started_at"
    )
    return [CallerCall(*r) for r in db.all(sql, [number, *params])]


def caller_report(
    db: ReportDb,
    number: str,
    filters: Filters,
    tz: tzinfo,
    params: dict[str, Any],
    *,
    default_country: str = "US",
) -> tuple[Report, list[CallerCall]]:
    """The caller's history as a report."""
    e164 = normalise(number, default_country)
    calls = caller_calls(db, e164, filters)
    rows = [
        {
            "time": iso(c.started_at, tz),
            "campaign": c.campaign,
            "source": c.source,
            "medium": c.medium,
            "keyword": c.keyword,
            "tracking_number": c.tracking_number,
            "result": c.disposition,
            "target": c.final_target,
            "ring_seconds": c.ring_seconds,
            "talk_seconds": c.talk_seconds,
            "city": c.city,
            "state": c.state,
            "attempts": c.attempts,
            "uniqueid": c.uniqueid,
        }
        for c in calls
    ]
    columns = (
        Column("time", "time", "text"),
        Column("campaign", "campaign", "text"),
        Column("source", "source", "text"),
        Column("medium", "medium", "text"),
        Column("keyword", "keyword", "text"),
        Column("tracking_number", "tracking number", "text"),
        Column("result", "result", "text"),
        Column("target", "target", "text"),
        Column("ring_seconds", "ring s", "sec"),
        Column("talk_seconds", "talk s", "sec"),
        Column("city", "city", "text", False),
        Column("state", "state", "text", False),
        Column("attempts", "attempts", "text"),
        Column("uniqueid", "uniqueid", "text", False),
    )
    answered = sum(1 for c in calls if c.disposition == "answered")
    notes = [f"{e164}: {len(calls)} calls, {answered} answered"]
    if calls:
        notes.append(f"first {iso(calls[0].started_at, tz)}, last {iso(calls[-1].started_at, tz)}")
    params = {**params, "number": e164}
    return Report(
        "caller", params, [Section("calls", f"Calls from {e164}", columns, rows)], notes
    ), calls
