"""``report compare``: the same metrics for two periods, per day, with change and a noise check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from callflow.reports.db import Filters, ReportDb
from callflow.reports.render import Column, Report, Section
from callflow.reports.stats import chi_square_2x2, noise_note, poisson_rate_test
from callflow.reports.summary import COUNTS_SQL, Counts, unique_callers
from callflow.reports.timeutil import day_count

__all__ = ["MetricChange", "Period", "compare", "compare_report", "period"]


@dataclass(frozen=True)
class Period:
    """One period's totals: counts, conversions, its length in days."""

    since: float
    until: float
    days: float
    counts: Counts
    conversions: int


@dataclass(frozen=True)
class MetricChange:
    """One metric in both periods (per day for counts), the change and its noise p-value."""

    metric: str
    before: float | None
    after: float | None
    p_value: float | None
    rate: bool  # a proportion (compared by chi-square) rather than a count per day

    @property
    def change(self) -> float | None:
        """after - before."""
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def relative(self) -> float | None:
        """Change relative to before (None when before is 0)."""
        change = self.change
        return change / self.before if change is not None and self.before else None


def period(
    db: ReportDb, filters: Filters, since: float, until: float, tz: tzinfo, convert_after: float
) -> Period:
    """Totals of one period under the same label filters."""
    window = filters.window(since, until)
    where, params = window.where()
    row = db.one(
        f"SELECT {COUNTS_SQL}, total(disposition = 'answered' AND talk_seconds >= ?) "
        f"FROM calls {db.index('calls_report_time')} WHERE {where}",
        [convert_after, *params],
    )
    counts = Counts.of(row, unique_callers(db, window))
    return Period(since, until, day_count(since, until, tz), counts, int(row[6]))


def compare(
    db: ReportDb,
    filters: Filters,
    before: tuple[float, float],
    after: tuple[float, float],
    tz: tzinfo,
    *,
    convert_after: float = 60.0,
) -> tuple[Period, Period, list[MetricChange]]:
    """Both periods and the metric changes (counts per day: Poisson; rates: chi-square)."""
    a = period(db, filters, *before, tz, convert_after)
    b = period(db, filters, *after, tz, convert_after)
    out = []
    for name, key in (
        ("calls", "calls"),
        ("answered", "answered"),
        ("missed", "missed"),
        ("abandoned", "abandoned"),
        ("unique callers", "unique_callers"),
    ):
        x, y = getattr(a.counts, key), getattr(b.counts, key)
        p = None if key == "unique_callers" else poisson_rate_test(x, a.days, y, b.days)
        out.append(MetricChange(f"{name} / day", x / a.days, y / b.days, p, False))
    out.append(
        MetricChange(
            "conversions / day",
            a.conversions / a.days,
            b.conversions / b.days,
            poisson_rate_test(a.conversions, a.days, b.conversions, b.days),
            False,
        )
    )
    ca, cb = a.counts, b.counts
    out.append(
        MetricChange(
            "answer rate",
            ca.answer_rate,
            cb.answer_rate,
            chi_square_2x2(ca.answered, ca.calls, cb.answered, cb.calls),
            True,
        )
    )
    out.append(
        MetricChange(
            "conversion rate",
            a.conversions / ca.calls if ca.calls else None,
            b.conversions / cb.calls if cb.calls else None,
            chi_square_2x2(a.conversions, ca.calls, b.conversions, cb.calls),
            True,
        )
    )
    out.append(MetricChange("avg talk s", ca.avg_talk, cb.avg_talk, None, False))
    return a, b, out


def compare_report(
    db: ReportDb,
    filters: Filters,
    before: tuple[float, float],
    after: tuple[float, float],
    tz: tzinfo,
    params: dict[str, Any],
    *,
    convert_after: float = 60.0,
    labels: tuple[str, str] = ("before", "after"),
) -> tuple[Report, list[MetricChange]]:
    """The comparison as a report with a plain-words verdict per metric."""
    a, b, changes = compare(db, filters, before, after, tz, convert_after=convert_after)
    rows = []
    for m in changes:
        tested = m.p_value is not None or m.metric in ("answer rate", "conversion rate")
        rows.append(
            {
                "metric": m.metric,
                "before": m.before,
                "after": m.after,
                "change": m.change,
                "change_pct": m.relative,
                "p_value": m.p_value,
                "note": noise_note(m.p_value) if tested else "",
            }
        )
    columns = (
        Column("metric", "metric", "text"),
        Column("before", labels[0], "num"),
        Column("after", labels[1], "num"),
        Column("change", "change", "num"),
        Column("change_pct", "change %", "change"),
        Column("p_value", "p", "num", table=False),
        Column("note", "noise check", "text"),
    )
    for r in rows:
        if r["metric"] in ("answer rate", "conversion rate"):
            r["_pct"] = True
    periods = [
        {
            "period": labels[0],
            "days": a.days,
            "calls": a.counts.calls,
            "answered": a.counts.answered,
            "conversions": a.conversions,
        },
        {
            "period": labels[1],
            "days": b.days,
            "calls": b.counts.calls,
            "answered": b.counts.answered,
            "conversions": b.conversions,
        },
    ]
    sections = [
        Section("metrics", "Before vs after (counts per day)", columns, rows),
        Section(
            "periods",
            "Periods",
            (
                Column("period", "period", "text"),
                Column("days", "days", "num"),
                Column("calls", "calls"),
                Column("answered", "answered"),
                Column("conversions", "conversions"),
            ),
            periods,
        ),
    ]
    notes = [
        f"counts are per day ({a.days:g} vs {b.days:g} days); a count change is tested "
        "with an exact Poisson rate test, a rate change with a chi-square test; "
        f"conversion = answered and talked at least {convert_after:g} s"
    ]
    return Report("compare", params, sections, notes), changes
