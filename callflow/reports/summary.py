"""``report summary``: calls, answered, missed, abandoned, unique callers per local bucket."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import Bucket, bucket_bounds, bucket_label, iso

__all__ = ["COUNTS_SQL", "Counts", "SummaryRow", "summary", "summary_report", "unique_callers"]

_MISSED_IN: Final = ", ".join(f"'{d}'" for d in MISSED)
#: The per-call aggregates every count-based report shares (order matches ``Counts``).
COUNTS_SQL: Final = (
    "count(*), total(disposition = 'answered'), total(disposition IN (" + _MISSED_IN + ")), "
    "total(disposition = 'abandoned'), total(ring_seconds), "
    "total(CASE WHEN disposition = 'answered' THEN talk_seconds END)"
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


def unique_callers(db: ReportDb, filters: Filters, large: bool | None = None) -> int:
    """Distinct caller numbers in the filtered window (anonymous calls not counted)."""
    where, params = filters.where()
    if large is None:
        large = db.large(filters)
    if large and filters.labels_only:  # walk the caller index in order: no big distinct b-tree
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
    """Counts per local ``by`` bucket (DST-exact bounds) over the window, and the totals."""
    span = db.span(filters)
    if span is None:
        return [], Counts()
    lo, hi = span
    labels, params = filters.where(time=False)
    sql = (
        f"SELECT {COUNTS_SQL}, count(DISTINCT ani_e164) FROM calls "
        f"{db.index('calls_report_time')} WHERE started_at >= ? AND started_at < ? "
        f"AND {labels}"
    )
    bounds = bucket_bounds(lo, hi, by, tz)
    rows = []
    for start, end in itertools.pairwise(bounds):
        row = db.one(sql, [max(start, lo), min(end, hi), *params])
        rows.append(SummaryRow(start, bucket_label(start, by, tz), Counts.of(row, int(row[6]))))
    total = Counts(
        calls=sum(r.counts.calls for r in rows),
        answered=sum(r.counts.answered for r in rows),
        missed=sum(r.counts.missed for r in rows),
        abandoned=sum(r.counts.abandoned for r in rows),
        ring_seconds=sum(r.counts.ring_seconds for r in rows),
        talk_seconds=sum(r.counts.talk_seconds for r in rows),
        unique_callers=unique_callers(db, filters.window(lo, hi)),
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
