"""``report heatmap``: calls and missed calls by local weekday x hour of day (DST-exact)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.timeutil import segments

__all__ = ["WEEKDAYS", "HeatCell", "heatmap", "heatmap_report"]

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NOT_SERVED: Final = ", ".join(f"'{d}'" for d in (*MISSED, "abandoned"))


@dataclass(frozen=True)
class HeatCell:
    """Calls in one weekday (0 = Monday) and hour; missed includes abandoned calls."""

    weekday: int
    hour: int
    calls: int
    missed: int


def heatmap(db: ReportDb, filters: Filters, tz: tzinfo) -> list[HeatCell]:
    """The 7 x 24 cells, Monday 00h first (local hours of ``tz``, exact across DST)."""
    grid = [[0, 0] for _ in range(168)]
    span = db.span(filters)
    if span is not None:
        local = segments(*span, tz).sql()
        where, params = filters.where()
        sql = (
            f"SELECT CAST({local} / 3600 AS INTEGER) AS h, count(*), "
            f"total(disposition IN ({_NOT_SERVED})) FROM calls "
            f"{db.index('calls_report_time')} WHERE {where} GROUP BY h"
        )
        for hour, calls, missed in db.all(sql, params):
            cell = grid[((hour // 24 + 3) % 7) * 24 + hour % 24]  # 1970-01-01 was a Thursday
            cell[0] += calls
            cell[1] += int(missed)
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
