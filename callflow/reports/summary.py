"""``report summary``: calls, answered, missed, abandoned, unique callers per local bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb, tally, untally
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import Bucket, bucket_bounds, bucket_label, iso

__all__ = [
    "COUNTS_SQL",
    "Counts",
    "SummaryRow",
    "counts_sql",
    "first_in",
    "summary",
    "summary_report",
    "tallied_counts_sql",
    "unique_callers",
]

_MISSED_WHEN: Final = " ".join(f"WHEN '{d}' THEN 1" for d in MISSED)


def counts_sql(alias: str = "") -> str:
    """The per-call aggregates every count-based report shares (order matches ``Counts``).

    ``count(CASE x WHEN …)`` rather than ``total(x = …)``: the simple CASE costs a third as much
    per row, which is most of a grouped pass over a million calls.
    """
    c = f"{alias}." if alias else ""
    return (
        f"count(*), count(CASE {c}disposition WHEN 'answered' THEN 1 END), "
        f"count(CASE {c}disposition {_MISSED_WHEN} END), "
        f"count(CASE {c}disposition WHEN 'abandoned' THEN 1 END), total({c}ring_seconds), "
        f"total(CASE {c}disposition WHEN 'answered' THEN {c}talk_seconds END)"
    )


#: ``counts_sql()`` over unaliased ``calls``.
COUNTS_SQL: Final = counts_sql()
#: Answered, missed and abandoned: the value groups of the counts' ``tally``.
OUTCOMES: Final = (("answered",), MISSED, ("abandoned",))


def tallied_counts_sql(alias: str = "", *, packed: bool = True) -> str:
    """Like ``counts_sql``, the three outcome counts as one ``tally`` (``untally(row, 1, 3)``)."""
    c = f"{alias}." if alias else ""
    return (
        f"count(*), {tally(c + 'disposition', OUTCOMES, packed=packed)}, total({c}ring_seconds), "
        f"total(CASE {c}disposition WHEN 'answered' THEN {c}talk_seconds END)"
    )


@dataclass(frozen=True)
class Counts:
    """Call counts and durations of a set of calls (unknown = neither answered nor missed)."""

    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    unique_callers: int = 0

    @classmethod
    def of(cls, row: tuple[Any, ...], unique: int = 0) -> Counts:
        """Counts from a ``COUNTS_SQL`` row."""
        return cls(
            int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]), float(row[5]), unique
        )

    @property
    def unknown(self) -> int:
        """Calls neither answered, missed nor abandoned (in progress, or outcome unknown)."""
        return self.calls - self.answered - self.missed - self.abandoned

    @property
    def answer_rate(self) -> float | None:
        """Answered / calls."""
        return self.answered / self.calls if self.calls else None

    @property
    def avg_ring(self) -> float | None:
        """Mean ring seconds per call."""
        return self.ring_seconds / self.calls if self.calls else None

    @property
    def avg_talk(self) -> float | None:
        """Mean talk seconds per answered call."""
        return self.talk_seconds / self.answered if self.answered else None

    def row(self) -> dict[str, Any]:
        """The counts as a report row."""
        return {
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "abandoned": self.abandoned,
            "unknown": self.unknown,
            "unique_callers": self.unique_callers,
            "answer_rate": self.answer_rate,
            "avg_ring": self.avg_ring,
            "avg_talk": self.avg_talk,
        }


@dataclass(frozen=True)
class SummaryRow:
    """One time bucket: its local start and its counts."""

    start: float
    label: str
    counts: Counts


def first_in(db: ReportDb, start: str, filters: Filters, alias: str = "c") -> tuple[str, list[Any]]:
    """A CASE that is 1 for a caller's first call from ``start`` on (to ``count()``; schema 7).

    A call is its caller's first since ``start`` when the caller's previous call is older (or
    there is none). Under label filters "previous" must pass them too: only calls whose
    previous call is at or after ``start`` look back for a filtered one, in (started_at, rowid)
    order as the links are kept.
    """
    c = f"{alias}."
    if filters.labels_only:
        return (
            f"CASE WHEN {c}prev_started_at >= {start} THEN NULL "
            f"WHEN {c}ani_e164 IS NOT NULL THEN 1 END"
        ), []
    labels, params = filters.where("p", time=False)
    return (
        f"CASE WHEN {c}ani_e164 IS NULL THEN NULL "
        f"WHEN {c}prev_started_at IS NULL OR {c}prev_started_at < {start} THEN 1 "
        f"WHEN NOT EXISTS (SELECT 1 FROM calls AS p {db.index('calls_ani_started_at')} "
        f"WHERE p.ani_e164 = {c}ani_e164 AND p.started_at >= {start} "
        f"AND p.started_at <= {c}started_at "
        f"AND (p.started_at < {c}started_at OR p.rowid < {c}rowid) AND {labels}) THEN 1 END"
    ), params


def unique_callers(db: ReportDb, filters: Filters, large: bool | None = None) -> int:
    """Distinct caller numbers in the filtered window (anonymous calls not counted)."""
    where, params = filters.where()
    if db.links and filters.labels_only:  # one pass: each caller's first call in the window
        since = -1e308 if filters.since is None else filters.since
        first, _ = first_in(db, "?", filters, "calls")
        sql = f"SELECT count({first}) FROM calls {db.index('calls_report_time')} WHERE {where}"
        return int(db.one(sql, [since, *params])[0])
    if large is None:
        large = db.large(filters)
    # Walk the caller index in order (no big distinct b-tree); since schema 7 it carries the
    # campaign, source and state, so those filters need no table lookups either.
    if large and not filters.target and (filters.labels_only or db.links):
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM calls {db.index('calls_ani_started_at')} "
            f"WHERE ani_e164 IS NOT NULL AND {where} GROUP BY ani_e164)"
        )
    else:
        sql = f"SELECT count(DISTINCT ani_e164) FROM calls WHERE {where}"
    return int(db.one(sql, params)[0])


def summary(
    db: ReportDb, filters: Filters, by: Bucket, tz: tzinfo
) -> tuple[list[SummaryRow], Counts]:
    """Counts per local ``by`` bucket (DST-exact bounds) over the window, and the totals.

    One grouped pass: the buckets' UTC bounds go into a temp table joined by range to the
    time index, so each bucket's rows are read once, in order.
    """
    span = db.span(filters)
    if span is None:
        return [], Counts()
    lo, hi = span
    bounds = bucket_bounds(lo, hi, by, tz)
    table = db.buckets([lo, *bounds[1:-1], hi])  # the first and last bucket end at the window
    labels, params = filters.where("c", time=False)
    whole: list[Any] = []
    if db.links:
        first, args = first_in(db, "b.s", filters)
        if filters.labels_only:  # first in the bucket (low 32 bits) and in the window (high)
            unique = (
                "sum(CASE WHEN c.ani_e164 IS NULL THEN 0 WHEN c.prev_started_at IS NULL "
                f"OR c.prev_started_at < ? THEN {(1 << 32) + 1} "
                "WHEN c.prev_started_at < b.s THEN 1 ELSE 0 END)"
            )
            whole = [lo]
        else:
            unique = f"count({first})"
    else:
        unique, args = "count(DISTINCT c.ani_e164)", []
    got, packed = db.tallied(
        lambda packed: (
            f"SELECT b.id, {tallied_counts_sql('c', packed=packed)}, {unique} FROM {table} AS b "
            f"JOIN calls AS c {db.index('calls_report_time')} "
            f"ON c.started_at >= b.s AND c.started_at < b.e WHERE {labels} GROUP BY b.id"
        ),
        [*args, *whole, *params],
        1,
    )
    found = {r[0]: untally(r, 2, 3, packed=packed)[1:] for r in got}
    rows = []
    for i, start in enumerate(bounds[:-1]):
        row = found.get(i)
        counts = Counts() if row is None else Counts.of(row, int(row[6]) & 0xFFFFFFFF)
        rows.append(SummaryRow(start, bucket_label(start, by, tz), counts))
    if whole:
        unique_total = sum(int(r[6]) >> 32 for r in found.values())
    else:
        unique_total = unique_callers(db, filters.window(lo, hi))
    total = Counts(
        calls=sum(r.counts.calls for r in rows),
        answered=sum(r.counts.answered for r in rows),
        missed=sum(r.counts.missed for r in rows),
        abandoned=sum(r.counts.abandoned for r in rows),
        ring_seconds=sum(r.counts.ring_seconds for r in rows),
        talk_seconds=sum(r.counts.talk_seconds for r in rows),
        unique_callers=unique_total,
    )
    return rows, total


COLUMNS: Final = (
    Column("calls", "calls"),
    Column("answered", "answered"),
    Column("missed", "missed"),
    Column("abandoned", "abandoned"),
    Column("unknown", "unknown"),
    Column("unique_callers", "unique callers"),
    Column("answer_rate", "answer rate", "pct"),
    Column("avg_ring", "avg ring s", "sec"),
    Column("avg_talk", "avg talk s", "sec"),
)


def summary_report(
    db: ReportDb, filters: Filters, by: Bucket, tz: tzinfo, params: dict[str, Any]
) -> tuple[Report, list[SummaryRow]]:
    """The summary as a renderable report (and its rows, for the chart)."""
    rows, total = summary(db, filters, by, tz)
    out = [{"bucket": r.label, "start": iso(r.start, tz), **r.counts.row()} for r in rows]
    if rows:
        out.append({"bucket": "total", "start": None, **total.row(), "_total": True})
    section = Section(
        "buckets",
        f"Calls by {by} ({getattr(tz, 'key', tz)})",
        (Column("bucket", by, "text"), Column("start", "start", "text", table=False), *COLUMNS),
        out,
    )
    notes = [
        "missed = busy, no answer, failed or rejected; abandoned = caller hung up first; "
        "avg talk is over answered calls"
    ]
    return Report("summary", params, [section], notes), rows
