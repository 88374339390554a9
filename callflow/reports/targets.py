"""``report targets``: per final target (calls) and per dialled target (attempts).

Cap hits: targets refused at dial time are read from the CDR's ``route_reason``
(``"refused_at_dial": ["<target>: <reason>", …]``, reasons worded by ``callflow.rules``:
"daily cap 10/10 (answered)", "concurrency 2/2", "min_gap …", closed hours …), and from attempts
whose ``result`` is ``SKIP:<reason>`` should skips ever be stored as attempts. Skips are not
offered calls: ``cap_hits`` counts refusals for a cap or concurrency limit, ``skipped`` the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from callflow.reports.db import Filters, ReportDb, tally, untally
from callflow.reports.money import MONEY_COLUMNS, money_by, money_row
from callflow.reports.render import Column, Report, Section

__all__ = ["SKIP_PREFIX", "TargetRow", "targets", "targets_report"]

SKIP_PREFIX: Final = "SKIP:"
#: Words of a refusal reason that make a skip a cap hit.
CAP_WORDS: Final = ("cap", "concurrency")


@dataclass
class TargetRow:
    """One target at one level ("final" = the call ended there, "attempt" = it was dialled)."""

    level: str
    target: str
    offered: int = 0
    answered: int = 0
    busy: int = 0
    no_answer: int = 0
    failed: int = 0
    abandoned: int = 0
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    cap_hits: int = 0
    skipped: int = 0

    @property
    def missed(self) -> int:
        """Offered but not answered."""
        return self.offered - self.answered

    def row(self) -> dict[str, Any]:
        """The target as report columns."""
        return {
            "level": self.level,
            "target": self.target,
            "offered": self.offered,
            "answered": self.answered,
            "missed": self.missed,
            "busy": self.busy,
            "no_answer": self.no_answer,
            "failed": self.failed,
            "abandoned": self.abandoned,
            "answer_rate": self.answered / self.offered if self.offered else None,
            "talk_minutes": self.talk_seconds / 60,
            "avg_ring": self.ring_seconds / self.offered if self.offered else None,
            "cap_hits": self.cap_hits,
            "skipped": self.skipped,
        }


def _final(db: ReportDb, filters: Filters) -> list[TargetRow]:
    """Calls by the target they ended on."""
    where, params = filters.where()
    index = db.index("calls_report_target" if db.large(filters) else "calls_report_time")
    if db.links:  # schema 7: the target index has the disposition second, so group by it too
        sql = (
            "SELECT final_target, disposition, count(*), total(ring_seconds), "
            f"total(talk_seconds) FROM calls {index} WHERE {where} AND final_target IS NOT NULL "
            "GROUP BY final_target, disposition"
        )
        by_target: dict[str, TargetRow] = {}
        for target, disposition, n, ring, talk in db.all(sql, params):
            row = by_target.setdefault(target, TargetRow("final", target))
            row.offered += n
            row.ring_seconds += ring
            field = _DISPOSITION_FIELD.get(disposition)
            if field is not None:
                setattr(row, field, getattr(row, field) + n)
            if disposition == "answered":
                row.talk_seconds += talk
        return list(by_target.values())
    first = (("answered",), ("busy",), ("no-answer",))
    second = (("failed", "rejected"), ("abandoned",))
    found, packed = db.tallied(
        lambda packed: (
            f"SELECT final_target, count(*), {tally('disposition', first, packed=packed)}, "
            f"{tally('disposition', second, packed=packed)}, total(ring_seconds), "
            "total(CASE disposition WHEN 'answered' THEN talk_seconds END) "
            f"FROM calls {index} WHERE {where} AND final_target IS NOT NULL "
            "GROUP BY final_target"
        ),
        params,
        1,
    )
    rows = []
    for r in found:
        if packed:
            r = untally(untally(r, 3, 2), 2, 3)
        t, n, a, b, na, f, ab, ring, talk = r
        rows.append(TargetRow("final", t, n, a, b, na, f, ab, ring, talk))
    return rows


#: The TargetRow count of each call disposition (others count as offered only).
_DISPOSITION_FIELD: Final = {
    "answered": "answered",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "rejected": "failed",
    "abandoned": "abandoned",
}
_RESULT_FIELD: Final = {
    "ANSWER": "answered",
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CANCEL": "abandoned",
}


def _attempts(db: ReportDb, filters: Filters) -> list[TargetRow]:
    """Dial attempts by target and result (time = the attempt's own start)."""
    terms: list[str] = []
    params: list[Any] = []
    if filters.since is not None:
        terms.append("started_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        terms.append("started_at < ?")
        params.append(filters.until)
    if filters.target:
        terms.append(f"target IN ({', '.join('?' * len(filters.target))})")
        params.extend(filters.target)
    labels = Filters(campaign=filters.campaign, source=filters.source, state=filters.state)
    if not labels.labels_only:
        where, more = labels.where()
        terms.append(f"uniqueid IN (SELECT uniqueid FROM calls WHERE {where})")
        params.extend(more)
    sql = (
        "SELECT target, result, count(*), total(ring_seconds), total(talk_seconds) "
        f"FROM attempts {db.index('attempts_report')} WHERE {' AND '.join(terms) or '1'} "
        "GROUP BY target, result"
    )
    rows: dict[str, TargetRow] = {}
    for target, reason, n in _refusals(db, filters):
        row = rows.setdefault(target, TargetRow("attempt", target))
        if any(word in reason for word in CAP_WORDS):
            row.cap_hits += n
        else:
            row.skipped += n
    for target, result, n, ring, talk in db.all(sql, params):
        row = rows.setdefault(target, TargetRow("attempt", target))
        if result.startswith(SKIP_PREFIX):
            if any(word in result for word in CAP_WORDS):
                row.cap_hits += n
            else:
                row.skipped += n
            continue
        row.offered += n
        row.ring_seconds += ring
        row.talk_seconds += talk
        name = _RESULT_FIELD.get(result, "failed")
        setattr(row, name, getattr(row, name) + n)
    return list(rows.values())


def _refusals(db: ReportDb, filters: Filters) -> list[tuple[str, str, int]]:
    """(target, reason, count) of dial-time refusals recorded in the calls' route_reason."""
    where, params = filters.window(filters.since, filters.until).where("c")
    value = "r.value"
    cut = f"instr({value}, ': ')"
    sql = (
        f"SELECT substr({value}, 1, {cut} - 1) AS target, substr({value}, {cut} + 2) AS reason, "
        f"count(*) FROM calls AS c {db.index('calls_refused')}, "
        "json_each(c.route_reason, '$.refused_at_dial') AS r "
        f"WHERE {where} AND instr(c.route_reason, 'refused_at_dial') > 0 "
        f"AND json_valid(c.route_reason) AND {cut} > 0 GROUP BY target, reason"
    )
    return [
        (t, r, int(n))
        for t, r, n in db.all(sql, params)
        if not filters.target or t in filters.target
    ]


def targets(db: ReportDb, filters: Filters) -> list[TargetRow]:
    """Final-target rows then attempt rows, each most offered first."""
    order = lambda r: (-r.offered, r.target)  # noqa: E731
    return sorted(_final(db, filters), key=order) + sorted(_attempts(db, filters), key=order)


def targets_report(
    db: ReportDb, filters: Filters, params: dict[str, Any]
) -> tuple[Report, list[TargetRow]]:
    """Targets as a report: one table, ``level`` telling final from attempt rows."""
    rows = targets(db, filters)
    money = money_by(db, filters, ("final_target",))
    table = [
        {**r.row(), **(money_row(money.get((r.target,))) if r.level == "final" else {})}
        if money is not None
        else r.row()
        for r in rows
    ]
    columns = (
        Column("level", "level", "text"),
        Column("target", "target", "text"),
        Column("offered", "offered"),
        Column("answered", "answered"),
        Column("missed", "missed"),
        Column("busy", "busy"),
        Column("no_answer", "no answer"),
        Column("failed", "failed"),
        Column("abandoned", "abandoned"),
        Column("answer_rate", "answer rate", "pct"),
        Column("talk_minutes", "talk min", "num"),
        Column("avg_ring", "avg ring s", "sec"),
        Column("cap_hits", "cap hits"),
        Column("skipped", "skipped"),
        *(MONEY_COLUMNS if money is not None else ()),
    )
    notes = [
        "final: calls by the target they ended on (offered = calls); attempt: every dial, "
        "by its own start time (a call that fails over counts for each target it rang)",
        "cap hits / skipped: attempts the rules engine recorded as SKIP:cap / SKIP:<reason>",
    ]
    return Report("targets", params, [Section("targets", "Targets", columns, table)], notes), rows
