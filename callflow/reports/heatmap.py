"""``report heatmap``: calls and missed calls by local weekday x hour of day (DST-exact)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import bucket_bounds

__all__ = ["WEEKDAYS", "HeatCell", "heatmap", "heatmap_report"]

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NOT_SERVED: Final = " ".join(f"WHEN '{d}' THEN 1" for d in (*MISSED, "abandoned"))


@dataclass(frozen=True)
class HeatCell:
    """Calls in one weekday (0 = Monday) and hour; missed includes abandoned calls."""

    weekday: int
    hour: int
    calls: int
    missed: int


def heatmap(db: ReportDb, filters: Filters, tz: tzinfo) -> list[HeatCell]:
    """The 7 x 24 cells, Monday 00h first (local hours of ``tz``, exact across DST).

    One grouped pass over the window's local hours (DST-exact bounds in a temp table joined by
    range to the time index), each hour then added to its weekday x hour cell.
    """
    grid = [[0, 0] for _ in range(168)]
    span = db.span(filters)
    if span is not None:
        lo, hi = span
        bounds = bucket_bounds(lo, hi, "hour", tz)
        table = db.buckets([lo, *bounds[1:-1], hi])
        labels, params = filters.where("c", time=False)
        sql = (
            f"SELECT b.id, count(*), count(CASE c.disposition {_NOT_SERVED} END) "
            f"FROM {table} AS b JOIN calls AS c {db.index('calls_report_time')} "
            f"ON c.started_at >= b.s AND c.started_at < b.e WHERE {labels} GROUP BY b.id"
        )
        for i, calls, missed in db.all(sql, params):
            local = datetime.fromtimestamp(bounds[i], tz)
            cell = grid[local.weekday() * 24 + local.hour]
            cell[0] += calls
            cell[1] += missed
    return [HeatCell(i // 24, i % 24, c, m) for i, (c, m) in enumerate(grid)]


def heatmap_report(
    db: ReportDb, filters: Filters, tz: tzinfo, params: dict[str, Any]
) -> tuple[Report, list[HeatCell]]:
    """The heat map as a report: a long table for CSV/JSON, two grids for the terminal."""
    cells = heatmap(db, filters, tz)
    rows = [
        {"weekday": WEEKDAYS[c.weekday], "hour": c.hour, "calls": c.calls, "missed": c.missed}
        for c in cells
    ]
    columns = (
        Column("weekday", "weekday", "text"),
        Column("hour", "hour"),
        Column("calls", "calls"),
        Column("missed", "missed"),
    )
    zone = getattr(tz, "key", str(tz))
    sections = [
        Section("cells", "Calls by weekday and hour", columns, rows, show="data"),
        Section(
            "calls",
            f"Calls by weekday x hour ({zone})",
            columns,
            rows,
            grid=("weekday", "hour", "calls"),
            show="table",
        ),
        Section(
            "missed",
            f"Missed + abandoned by weekday x hour ({zone})",
            columns,
            rows,
            grid=("weekday", "hour", "missed"),
            show="table",
        ),
    ]
    total = sum(c.calls for c in cells)
    missed = sum(c.missed for c in cells)
    notes = [f"{total:,} calls, {missed:,} missed or abandoned"]
    return Report("heatmap", params, sections, notes), cells
