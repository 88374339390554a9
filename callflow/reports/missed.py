"""``report missed``: missed and abandoned calls, and whether each caller was reached later.

"Reached later" means the same caller number called again and was answered within the
follow-up window (callflow records no outbound call-backs yet, so a call-back is not seen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import iso

__all__ = ["NOT_SERVED", "MissedCall", "MissedTotals", "missed", "missed_report"]

#: Dispositions listed by the missed report, in display order.
NOT_SERVED: Final = (*MISSED, "abandoned")
_IN: Final = ", ".join(f"'{d}'" for d in NOT_SERVED)
#: The ``calls_missed`` index's condition from schema 8 (schema 7 states it as ``IN (_IN)``).
#: SQLite uses a partial index only for a query that repeats its condition term for term.
_OR: Final = "(" + " OR ".join(f"m.disposition = '{d}'" for d in NOT_SERVED) + ")"


def _as_indexed(db: ReportDb) -> str:
    """The missed-call condition on ``m`` exactly as this database's ``calls_missed`` has it."""
    return _OR if db.version >= 8 else f"m.disposition IN ({_IN})"


@dataclass(frozen=True)
class MissedCall:
    """One missed or abandoned call; ``reached_at`` is when the caller was next answered."""

    uniqueid: str
    started_at: float
    caller: str | None
    city: str | None
    state: str | None
    campaign: str | None
    source: str | None
    tracking_number: str | None
    disposition: str
    ring_seconds: float | None
    target: str | None
    reached_at: float | None


@dataclass(frozen=True)
class MissedTotals:
    """Missed calls per disposition, and how many of each were reached later."""

    by_disposition: dict[str, tuple[int, int]]

    @property
    def calls(self) -> int:
        """All missed and abandoned calls."""
        return sum(n for n, _ in self.by_disposition.values())

    @property
    def reached(self) -> int:
        """Those whose caller got through later."""
        return sum(r for _, r in self.by_disposition.values())


def _reached_sql(db: ReportDb, alias: str) -> str:
    """Correlated subquery: the caller's next answered call within ``?`` seconds (or NULL)."""
    return (
        f"(SELECT min(a.started_at) FROM calls AS a {db.index('calls_answered_ani')} "
        f"WHERE a.ani_e164 = {alias}.ani_e164 AND a.disposition = 'answered' "
        f"AND a.started_at > {alias}.started_at "
        f"AND a.started_at <= {alias}.started_at + ?)"
    )


def missed(
    db: ReportDb, filters: Filters, *, within: float = 7 * 86400, limit: int | None = 100
) -> tuple[list[MissedCall], MissedTotals]:
    """The most recent missed/abandoned calls (all when ``limit`` is None) and the totals."""
    where, params = filters.where("m")
    if db.links:  # each call knows its caller's next answered call (schema 7)
        reached = "(CASE WHEN m.next_answered_at <= m.started_at + ? THEN m.next_answered_at END)"
        rows = db.all(
            f"SELECT m.disposition, count(*), count({reached}) "
            f"FROM calls AS m {db.index('calls_missed')} "
            f"WHERE {_as_indexed(db)} AND {where} GROUP BY m.disposition",
            [within, *params],
        )
        found = {d: (int(n), int(r)) for d, n, r in rows}
        totals = MissedTotals({d: found.get(d, (0, 0)) for d in NOT_SERVED})
    else:
        reached = _reached_sql(db, "m")
        sums = ", ".join(
            f"total(m.disposition = '{d}'), total(m.disposition = '{d}' AND r)" for d in NOT_SERVED
        )
        row = db.one(
            f"SELECT {sums} FROM (SELECT m.disposition, {reached} IS NOT NULL AS r "
            f"FROM calls AS m {db.index('calls_report_time')} "
            f"WHERE {where} AND m.disposition IN ({_IN})) AS m",
            [within, *params],
        )
        totals = MissedTotals(
            {d: (int(row[2 * i]), int(row[2 * i + 1])) for i, d in enumerate(NOT_SERVED)}
        )
    sql = (
        f"SELECT m.uniqueid, m.started_at, coalesce(m.ani_e164, m.ani_raw), m.city, m.state, "
        f"m.campaign, m.source, m.tracking_number, m.disposition, m.ring_seconds, "
        f"m.final_target, {reached} FROM calls AS m WHERE {where} "
        f"AND m.disposition IN ({_IN}) ORDER BY m.started_at DESC, m.uniqueid DESC"
    )
    args: list[Any] = [within, *params]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    calls = [MissedCall(*r) for r in db.all(sql, args)]
    return calls, totals


def _ago(seconds: float) -> str:
    """A duration in words: 40 min, 3.5 h, 2.0 d."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def missed_report(
    db: ReportDb,
    filters: Filters,
    tz: tzinfo,
    params: dict[str, Any],
    *,
    within_days: float = 7,
    limit: int | None = 100,
) -> tuple[Report, MissedTotals]:
    """The missed calls as a report: the calls, then totals per disposition."""
    calls, totals = missed(db, filters, within=within_days * 86400, limit=limit)
    rows = [
        {
            "time": iso(c.started_at, tz),
            "caller": c.caller,
            "city": c.city,
            "state": c.state,
            "campaign": c.campaign,
            "source": c.source,
            "tracking_number": c.tracking_number,
            "disposition": c.disposition,
            "ring_seconds": c.ring_seconds,
            "target": c.target,
            "reached_later": c.reached_at is not None,
            "reached_after": _ago(c.reached_at - c.started_at) if c.reached_at else None,
            "uniqueid": c.uniqueid,
        }
        for c in calls
    ]
    columns = (
        Column("time", "time", "text"),
        Column("caller", "caller", "text"),
        Column("city", "city", "text"),
        Column("state", "st", "text"),
        Column("campaign", "campaign", "text"),
        Column("source", "source", "text"),
        Column("tracking_number", "tracking number", "text", table=False),
        Column("disposition", "result", "text"),
        Column("ring_seconds", "ring s", "sec"),
        Column("target", "target", "text"),
        Column("reached_later", "reached later", "text"),
        Column("reached_after", "after", "text"),
        Column("uniqueid", "uniqueid", "text", False),
    )
    tot_rows = [
        {"disposition": d, "calls": n, "reached_later": r, "reached_rate": r / n if n else None}
        for d, (n, r) in totals.by_disposition.items()
    ]
    tot_rows.append(
        {
            "disposition": "total",
            "calls": totals.calls,
            "reached_later": totals.reached,
            "_total": True,
            "reached_rate": totals.reached / totals.calls if totals.calls else None,
        }
    )
    shown = f"the {len(calls)} most recent" if limit is not None and totals.calls > limit else "all"
    sections = [
        Section("calls", f"Missed and abandoned calls ({shown})", columns, rows),
        Section(
            "totals",
            "Missed calls by result",
            (
                Column("disposition", "result", "text"),
                Column("calls", "calls"),
                Column("reached_later", "reached later"),
                Column("reached_rate", "reached rate", "pct"),
            ),
            tot_rows,
        ),
    ]
    notes = [
        f"reached later = the same number called again and was answered within "
        f"{within_days:g} days (outbound call-backs are not recorded yet)"
    ]
    return Report("missed", params, sections, notes), totals
