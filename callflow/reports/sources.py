"""``report sources``: calls, answers, conversions by campaign/source/medium/keyword/number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from callflow.reports.db import MISSED, Filters, ReportDb, tally, untally
from callflow.reports.money import MONEY_COLUMNS, money_by, money_row
from callflow.reports.render import Column, Report, Section
from callflow.reports.summary import OUTCOMES

__all__ = ["DIMENSIONS", "SourceRow", "sources", "sources_report"]

#: What the sources report can group by (calls columns); the attribution ones are indexed.
ATTRIBUTION: Final = ("campaign", "source", "medium", "keyword", "tracking_number")
#: The caller directory's columns (company, account) may be grouped by too.
DIMENSIONS: Final = (*ATTRIBUTION, "company", "account_id")


@dataclass
class SourceRow:
    """One group: counts, conversions (answered and talked ≥ N s), talk time, and spend."""

    key: tuple[str | None, ...]
    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    conversions: int = 0
    talk_seconds: float = 0.0
    cost: float | None = field(default=None)

    def add(self, other: SourceRow) -> None:
        """Add another group's counts into this one."""
        self.calls += other.calls
        self.answered += other.answered
        self.missed += other.missed
        self.abandoned += other.abandoned
        self.conversions += other.conversions
        self.talk_seconds += other.talk_seconds

    def row(self) -> dict[str, Any]:
        """The group as report columns (rates and cost per call/conversion derived)."""
        calls, conv = self.calls, self.conversions
        return {
            "calls": calls,
            "answered": self.answered,
            "missed": self.missed,
            "abandoned": self.abandoned,
            "answer_rate": self.answered / calls if calls else None,
            "conversions": conv,
            "conversion_rate": conv / calls if calls else None,
            "talk_minutes": self.talk_seconds / 60,
            "avg_talk": self.talk_seconds / self.answered if self.answered else None,
            "cost": self.cost,
            "cost_per_call": self.cost / calls if self.cost is not None and calls else None,
            "cost_per_conversion": self.cost / conv if self.cost is not None and conv else None,
        }


def sources(
    db: ReportDb,
    filters: Filters,
    by: Sequence[str] = ("campaign",),
    *,
    convert_after: float = 60.0,
    costs: Mapping[str, float] | None = None,
) -> tuple[list[SourceRow], SourceRow]:
    """Groups by ``by`` (most calls first) and the total; ``costs`` keys are ``by[0]`` values."""
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown or not by:
        raise ValueError(f"--by must be among {', '.join(DIMENSIONS)}")
    where, params = filters.where()
    dims = ATTRIBUTION if set(by) <= set(ATTRIBUTION) else DIMENSIONS
    # The directory's columns are not in the covering indexes.
    walks = db.walks(filters, "calls_report_source") if dims is ATTRIBUTION else [("", "1")]
    # Group by the whole attribution tuple (in the index's order: no sort), roll up in Python.
    n = len(dims)
    picks = [dims.index(d) for d in by]
    groups: dict[tuple[str | None, ...], SourceRow] = {}
    total = SourceRow(("total",))
    if db.links:  # schema 7: the source index has the disposition next, so group by it too
        found = [
            r
            for walk, only in walks
            for r in db.all(
                f"SELECT {', '.join(dims)}, disposition, count(*), total(talk_seconds >= ?), "
                f"total(talk_seconds) FROM calls {walk} WHERE {only} AND {where} "
                f"GROUP BY {', '.join(dims)}, disposition",
                [convert_after, *params],
            )
        ]
        for r in found:
            disposition, calls, conv, talk = r[n:]
            answered = disposition == "answered"
            part = SourceRow(
                tuple(r[i] for i in picks),
                calls,
                calls if answered else 0,
                calls if disposition in MISSED else 0,
                calls if disposition == "abandoned" else 0,
                int(conv) if answered else 0,
                float(talk) if answered else 0.0,
            )
            groups.setdefault(part.key, SourceRow(part.key)).add(part)
            total.add(part)
        return _finish(groups, total, costs)
    index = walks[0][0]  # before schema 7, a grouped index holds every call
    found, packed = db.tallied(
        lambda packed: (
            f"SELECT {', '.join(dims)}, count(*), "
            f"{tally('disposition', OUTCOMES, packed=packed)}, "
            "total(CASE disposition WHEN 'answered' THEN talk_seconds >= ? END), "
            "total(CASE disposition WHEN 'answered' THEN talk_seconds END) "
            f"FROM calls {index} WHERE {where} GROUP BY {', '.join(dims)}"
        ),
        [convert_after, *params],
        n,
    )
    for r in found:
        r = untally(r, n + 1, 3, packed=packed)
        part = SourceRow(
            tuple(r[i] for i in picks),
            int(r[n]),
            int(r[n + 1]),
            int(r[n + 2]),
            int(r[n + 3]),
            int(r[n + 4]),
            float(r[n + 5]),
        )
        groups.setdefault(part.key, SourceRow(part.key)).add(part)
        total.add(part)
    return _finish(groups, total, costs)


def _finish(
    groups: dict[tuple[str | None, ...], SourceRow],
    total: SourceRow,
    costs: Mapping[str, float] | None,
) -> tuple[list[SourceRow], SourceRow]:
    """The groups most calls first, with their spend (and the total's) when costs are known."""
    rows = sorted(groups.values(), key=lambda g: (-g.calls, [k or "" for k in g.key]))
    if costs is not None:
        for g in rows:
            g.cost = costs.get(g.key[0] or "")
        spent = [g.cost for g in rows if g.cost is not None]
        total.cost = sum(spent) if spent else None
    return rows, total


COLUMNS: Final = (
    Column("calls", "calls"),
    Column("answered", "answered"),
    Column("missed", "missed"),
    Column("abandoned", "abandoned"),
    Column("answer_rate", "answer rate", "pct"),
    Column("conversions", "conversions"),
    Column("conversion_rate", "conv. rate", "pct"),
    Column("talk_minutes", "talk min", "num"),
    Column("avg_talk", "avg talk s", "sec"),
)
COST_COLUMNS: Final = (
    Column("cost", "cost", "money"),
    Column("cost_per_call", "per call", "money"),
    Column("cost_per_conversion", "per conversion", "money"),
)


def sources_report(
    db: ReportDb,
    filters: Filters,
    params: dict[str, Any],
    by: Sequence[str],
    *,
    convert_after: float = 60.0,
    costs: Mapping[str, float] | None = None,
) -> tuple[Report, list[SourceRow]]:
    """The sources as a report (cost columns only when a cost file was given)."""
    rows, total = sources(db, filters, by, convert_after=convert_after, costs=costs)
    money = money_by(db, filters, by)
    out = [
        {
            **{d: (k if k is not None else "(none)") for d, k in zip(by, g.key, strict=True)},
            **g.row(),
            **(money_row(money.get(g.key)) if money is not None else {}),
        }
        for g in rows
    ]
    if rows:
        all_money = None
        if money is not None:
            all_money = (sum(m[0] for m in money.values()), sum(m[1] for m in money.values()))
        out.append({by[0]: "total", **total.row(), **money_row(all_money), "_total": True})
    keys = tuple(Column(d, d.replace("_", " "), "text") for d in by)
    columns = (
        *keys, *COLUMNS, *(COST_COLUMNS if costs is not None else ()),
        *(MONEY_COLUMNS if money is not None else ()),
    )  # fmt: skip
    section = Section("groups", f"Calls by {' / '.join(by)}", columns, out)
    notes = [f"conversion = answered and talked at least {convert_after:g} s"]
    if costs is None:
        notes.append(
            "no cost configured: pass --cost-file (YAML or CSV, name → spend) "
            "for cost per call and per conversion"
        )
    else:
        missing = [g.key[0] for g in rows if g.cost is None]
        if missing:
            notes.append(f"no cost for: {', '.join(str(m) for m in missing)}")
    return Report("sources", params, [section], notes), rows
