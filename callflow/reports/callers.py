"""``report callers``: unique, first-time, returning and repeat callers; the top repeat callers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from callflow.reports.db import TALLY_LIMIT, Filters, ReportDb, fits, untally
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import iso

__all__ = ["CallerStats", "TopCaller", "callers", "callers_report"]


@dataclass(frozen=True)
class CallerStats:
    """Callers in a window: first-time = never called before it; repeat = 2+ calls in it."""

    calls: int
    anonymous_calls: int
    unique: int
    first_time: int
    returning: int
    repeat: int
    repeat_calls: int

    @classmethod
    def of(
        cls, calls: Any, anonymous: Any, unique: Any, new: Any, repeat: Any, repeat_calls: Any
    ) -> CallerStats:
        """The stats from SQL counts (returning callers = unique - first-time)."""
        unique, new = int(unique), int(new)
        return cls(int(calls), int(anonymous), unique, new, unique - new, int(repeat),
                   int(repeat_calls))  # fmt: skip


@dataclass(frozen=True)
class TopCaller:
    """A repeat caller: calls (and answered) in the window, first and last call, places."""

    caller: str
    calls: int
    answered: int
    first: float
    last: float
    city: str | None
    state: str | None
    campaigns: str | None


def callers(
    db: ReportDb, filters: Filters, *, top: int = 20
) -> tuple[CallerStats, list[TopCaller]]:
    """Caller statistics for the filtered window and the ``top`` most frequent repeat callers."""
    where, params = filters.where()
    if db.links and filters.labels_only:
        rows, stats = _linked(db, filters, top)
    else:
        rows, stats = _grouped(db, filters, top)
    tops = []
    detail = (
        f"SELECT count(*), total(disposition = 'answered'), min(started_at), "
        f"max(started_at), max(city), max(state), group_concat(DISTINCT campaign) "
        f"FROM calls {db.index('calls_ani_started_at')} WHERE ani_e164 = ? AND {where}"
    )
    for ani, *_ in rows:
        n, answered, first, last, city, state, campaigns = db.one(detail, [ani, *params])
        tops.append(TopCaller(ani, int(n), int(answered), first, last, city, state, campaigns))
    return stats, tops


def _grouped(db: ReportDb, filters: Filters, top: int) -> tuple[list[tuple[Any, ...]], CallerStats]:
    """Per-caller groups (any filters, any schema): the stats and the top repeat callers' rows."""
    where, params = filters.where()
    if filters.labels_only and db.large(filters):
        # Walk the caller index over all history in order: the first entry is the first call ever.
        lo = -1e300 if filters.since is None else filters.since
        hi = 1e300 if filters.until is None else filters.until
        per_caller = (
            "SELECT ani_e164 AS ani, total(started_at >= ?1 AND started_at < ?2) AS n, "
            "min(started_at) AS first_ever, "
            "max(CASE WHEN started_at >= ?1 AND started_at < ?2 THEN started_at END) "
            f"AS last FROM calls {db.index('calls_ani_started_at')} WHERE ani_e164 IS NOT NULL "
            "GROUP BY ani_e164 HAVING n > 0"
        )
        args: list[Any] = [lo, hi]
        first_time = "first_ever >= ?1"
    else:
        per_caller = (
            "SELECT ani_e164 AS ani, count(*) AS n, min(started_at) AS first_in, "
            f"max(started_at) AS last FROM calls WHERE ani_e164 IS NOT NULL AND {where} "
            "GROUP BY ani_e164"
        )
        args = list(params)
        first_time = (
            f"NOT EXISTS (SELECT 1 FROM calls AS p {db.index('calls_ani_started_at')} "
            f"WHERE p.ani_e164 = g.ani AND p.started_at < g.first_in)"
        )
    n_args = len(args)
    sql = (
        f"WITH g AS MATERIALIZED ({per_caller}) "
        f"SELECT NULL, count(*), total(n), total({first_time}), total(n >= 2), "
        "total(CASE WHEN n >= 2 THEN n END) FROM g "
        "UNION ALL SELECT * FROM (SELECT ani, n, last, 0, 0, 0 FROM g WHERE n >= 2 "
        f"ORDER BY n DESC, last DESC, ani LIMIT ?{n_args + 1})"
    )
    if n_args and "?1" not in per_caller:  # positional parameters: number them explicitly
        sql = _number(sql, n_args)
    rows = db.all(sql, [*args, top])
    _, unique, _, new, repeat, repeat_calls = rows[0]
    anon_where, anon_params = filters.where()
    (calls, anonymous) = db.one(
        f"SELECT count(*), total(ani_e164 IS NULL) FROM calls "
        f"{db.index('calls_report_time')} WHERE {anon_where}",
        anon_params,
    )
    return rows[1:], CallerStats.of(calls, anonymous, unique, new, repeat, repeat_calls)


def _linked(db: ReportDb, filters: Filters, top: int) -> tuple[list[tuple[Any, ...]], CallerStats]:
    """The same from the caller links (schema 7, no label filters) in two index passes.

    A call in the window is its caller's first there when its previous call is older, and the
    first ever when there is none; the other calls in the window are repeat calls, grouped by
    caller for the repeat callers and the top list.
    """
    lo = -1e308 if filters.since is None else filters.since
    hi = 1e308 if filters.until is None else filters.until
    where, params = filters.where()
    limit = TALLY_LIMIT
    for packed in (True, False):  # anonymous calls, each caller's first in the window / ever
        if packed:
            counts = (
                "sum(CASE WHEN ani_e164 IS NULL THEN 1 "
                f"WHEN prev_started_at IS NULL THEN {limit + limit * limit} "
                f"WHEN prev_started_at < ? THEN {limit} ELSE 0 END)"
            )
        else:
            counts = (
                "count(CASE WHEN ani_e164 IS NULL THEN 1 END), "
                "count(CASE WHEN ani_e164 IS NOT NULL AND (prev_started_at IS NULL "
                "OR prev_started_at < ?) THEN 1 END), "
                "count(CASE WHEN ani_e164 IS NOT NULL AND prev_started_at IS NULL THEN 1 END)"
            )
        row = db.one(
            f"SELECT count(*), {counts} FROM calls {db.index('calls_report_time')} WHERE {where}",
            [lo, *params],
        )
        if not packed or fits([row], 0):
            break
    calls, anonymous, unique, new = untally(row, 1, 3, packed=packed)
    index = "calls_ani_started_at" if db.large(filters) else "calls_report_time"
    rows = db.all(
        f"WITH g AS MATERIALIZED (SELECT ani_e164 AS ani, count(*) + 1 AS n, "
        f"max(started_at) AS last FROM calls {db.index(index)} "
        "WHERE prev_started_at >= ?1 AND started_at >= ?1 AND started_at < ?2 "
        "GROUP BY ani_e164) "
        "SELECT NULL, count(*), total(n), 0, 0, 0 FROM g "
        "UNION ALL SELECT * FROM (SELECT ani, n, last, 0, 0, 0 FROM g "
        "ORDER BY n DESC, last DESC, ani LIMIT ?3)",
        [lo, hi, top],
    )
    _, repeat, repeat_calls, *_ = rows[0]
    return rows[1:], CallerStats.of(calls, anonymous, unique, new, repeat, repeat_calls)


def _number(sql: str, count: int) -> str:
    """Replace the first ``count`` bare ``?`` marks with ``?1``..``?count``."""
    out = []
    n = 0
    for ch in sql:
        if ch == "?" and n < count:
            n += 1
            out.append(f"?{n}")
        else:
            out.append(ch)
    return "".join(out)


def callers_report(
    db: ReportDb, filters: Filters, tz: tzinfo, params: dict[str, Any], *, top: int = 20
) -> tuple[Report, CallerStats, list[TopCaller]]:
    """Caller statistics and the top repeat callers as a report."""
    stats, tops = callers(db, filters, top=top)

    def pct(n: int) -> float | None:
        """Share of the unique callers."""
        return n / stats.unique if stats.unique else None

    stat_rows = [
        {"metric": "calls", "value": stats.calls, "share": None},
        {"metric": "calls from withheld numbers", "value": stats.anonymous_calls, "share": None},
        {"metric": "unique callers", "value": stats.unique, "share": 1.0 if stats.unique else None},
        {"metric": "first-time callers", "value": stats.first_time, "share": pct(stats.first_time)},
        {"metric": "returning callers", "value": stats.returning, "share": pct(stats.returning)},
        {"metric": "repeat callers (2+ calls)", "value": stats.repeat, "share": pct(stats.repeat)},
        {
            "metric": "calls from repeat callers",
            "value": stats.repeat_calls,
            "share": stats.repeat_calls / stats.calls if stats.calls else None,
        },
    ]
    top_rows = [
        {
            "caller": t.caller,
            "calls": t.calls,
            "answered": t.answered,
            "first": iso(t.first, tz),
            "last": iso(t.last, tz),
            "city": t.city,
            "state": t.state,
            "campaigns": t.campaigns,
        }
        for t in tops
    ]
    sections = [
        Section(
            "stats",
            "Callers",
            (
                Column("metric", "", "text"),
                Column("value", "count"),
                Column("share", "share", "pct"),
            ),
            stat_rows,
        ),
        Section(
            "top",
            f"Top repeat callers (up to {top})",
            (
                Column("caller", "caller", "text"),
                Column("calls", "calls"),
                Column("answered", "answered"),
                Column("first", "first call", "text"),
                Column("last", "last call", "text"),
                Column("city", "city", "text"),
                Column("state", "st", "text"),
                Column("campaigns", "campaigns", "text"),
            ),
            top_rows,
        ),
    ]
    notes = [
        "first-time = the number never called before this window; returning = it had; "
        "repeat = 2 or more calls within the window"
    ]
    return Report("callers", params, sections, notes), stats, tops
