"""``report geo``: calls by country, state, city or area code (from the caller number), or ZIP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb, tally, untally
from callflow.reports.render import Column, Report, Section

__all__ = ["GEO_LEVELS", "ZIP_COLUMNS", "GeoRow", "NoZipColumn", "geo", "geo_report"]

GEO_LEVELS: Final = ("country", "state", "city", "area_code", "zip")
#: Names a ZIP code column may have once the IVR records it (the first present is used).
ZIP_COLUMNS: Final = ("zip", "zip_code", "caller_zip", "postal_code")
#: Answered, and missed including abandoned: the value groups of the ``tally``.
_OUTCOMES: Final = (("answered",), (*MISSED, "abandoned"))
_PLACE: Final = ("country", "state", "city", "area_code")


class NoZipColumn(LookupError):
    """The calls table records no ZIP code yet."""


@dataclass
class GeoRow:
    """One place: calls, answered, missed (incl. abandoned), conversions, talk time."""

    place: str
    country: str | None
    calls: int = 0
    answered: int = 0
    missed: int = 0
    conversions: int = 0
    talk_seconds: float = 0.0

    def add(self, calls: int, answered: int, missed: int, conv: int, talk: float) -> None:
        """Add counts of one source row."""
        self.calls += calls
        self.answered += answered
        self.missed += missed
        self.conversions += conv
        self.talk_seconds += talk


def _label(
    level: str, country: str | None, state: str | None, city: str | None, area: str | None
) -> str:
    """How a place is named at a level (cities carry their state: Portland, OR)."""
    if level == "country":
        return country or "(unknown)"
    if level == "state":
        return state or "(unknown)"
    if level == "city":
        return f"{city}, {state}" if city and state else city or "(unknown)"
    return area or "(unknown)"


def geo(
    db: ReportDb, filters: Filters, by: str = "state", *, convert_after: float = 60.0
) -> list[GeoRow]:
    """Places at level ``by``, most calls first (raises NoZipColumn for ZIP without data)."""
    if by not in GEO_LEVELS:
        raise ValueError(f"--by must be one of {', '.join(GEO_LEVELS)}")
    where, params = filters.where()
    groups: dict[str, GeoRow] = {}
    if by != "zip" and db.links:  # schema 7: the place index has the disposition next
        found = [
            r
            for walk, only in db.walks(filters, "calls_report_geo")
            for r in db.all(
                f"SELECT {', '.join(_PLACE)}, disposition, count(*), total(talk_seconds >= ?), "
                f"total(talk_seconds) FROM calls {walk} WHERE {only} AND {where} "
                f"GROUP BY {', '.join(_PLACE)}, disposition",
                [convert_after, *params],
            )
        ]
        for country, state, city, area, disp, n, conv, talk in found:
            key = _label(by, country, state, city, area)
            answered = disp == "answered"
            groups.setdefault(key, GeoRow(key, country)).add(
                n,
                n if answered else 0,
                n if disp in _OUTCOMES[1] else 0,
                int(conv) if answered else 0,
                float(talk) if answered else 0.0,
            )
        return sorted(groups.values(), key=lambda g: (-g.calls, g.place))
    grouping: str
    if by == "zip":
        column = next((c for c in ZIP_COLUMNS if c in db.columns("calls")), None)
        if column is None:
            raise NoZipColumn("ZIP codes are not recorded yet: the calls table has no ZIP column")
        keys, group, grouping, source = 2, f"{column}, country", column, "calls"
    else:
        keys, group = len(_PLACE), ", ".join(_PLACE)
        index = db.index("calls_report_geo" if db.large(filters) else "calls_report_time")
        grouping, source = group, f"calls {index}"

    def grouped(packed: bool) -> str:
        aggs = (
            f"count(*), {tally('disposition', _OUTCOMES, packed=packed)}, "
            "total(CASE disposition WHEN 'answered' THEN talk_seconds >= ? END), "
            "total(CASE disposition WHEN 'answered' THEN talk_seconds END)"
        )
        return f"SELECT {group}, {aggs} FROM {source} WHERE {where} GROUP BY {grouping}"

    found, packed = db.tallied(grouped, [convert_after, *params], keys)
    for r in found:
        row = untally(r, keys + 1, 2, packed=packed)
        if by == "zip":
            z, country, *vals = row
            key = z or "(unknown)"
        else:
            country, state, city, area, *vals = row
            key = _label(by, country, state, city, area)
        calls, answered, missed, conv, talk = vals
        groups.setdefault(key, GeoRow(key, country)).add(
            int(calls), int(answered), int(missed), int(conv), float(talk)
        )
    return sorted(groups.values(), key=lambda g: (-g.calls, g.place))


def geo_report(
    db: ReportDb,
    filters: Filters,
    params: dict[str, Any],
    by: str = "state",
    *,
    convert_after: float = 60.0,
    top: int | None = None,
) -> tuple[Report, list[GeoRow]]:
    """Places as a report; a missing ZIP column gives an empty report with a note."""
    notes = [
        f"from the caller's number (area code); missed includes abandoned; conversion = "
        f"answered and talked at least {convert_after:g} s"
    ]
    try:
        rows = geo(db, filters, by, convert_after=convert_after)
    except NoZipColumn as exc:
        rows = []
        notes = [
            f"{exc}. Once the IVR stores the caller's ZIP in calls.zip, this report groups by it."
        ]
    shown = rows[:top] if top else rows
    out: list[dict[str, Any]] = [
        {
            by: g.place,
            "country": g.country,
            "calls": g.calls,
            "answered": g.answered,
            "missed": g.missed,
            "answer_rate": g.answered / g.calls if g.calls else None,
            "conversions": g.conversions,
            "talk_minutes": g.talk_seconds / 60,
        }
        for g in shown
    ]
    if rows:
        total = GeoRow("total", None)
        for g in rows:
            total.add(g.calls, g.answered, g.missed, g.conversions, g.talk_seconds)
        out.append(
            {
                by: "total",
                "calls": total.calls,
                "answered": total.answered,
                "missed": total.missed,
                "answer_rate": total.answered / total.calls,
                "conversions": total.conversions,
                "talk_minutes": total.talk_seconds / 60,
                "_total": True,
            }
        )
    if top and len(rows) > top:
        notes.append(f"showing the top {top} of {len(rows)} (total covers all)")
    columns = (
        Column(by, by.replace("_", " "), "text"),
        Column("country", "country", "text"),
        Column("calls", "calls"),
        Column("answered", "answered"),
        Column("missed", "missed"),
        Column("answer_rate", "answer rate", "pct"),
        Column("conversions", "conversions"),
        Column("talk_minutes", "talk min", "num"),
    )
    return Report("geo", params, [Section("places", f"Calls by {by}", columns, out)], notes), shown
