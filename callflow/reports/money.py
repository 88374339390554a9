"""Revenue, payout and margin from the billing ledger, grouped like a report's calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from callflow.reports.db import Filters, ReportDb
from callflow.reports.render import Column

__all__ = ["MONEY_COLUMNS", "money_by", "money_row"]

MONEY_COLUMNS: Final = (
    Column("revenue", "revenue", "money"),
    Column("payout", "payout", "money"),
    Column("margin", "margin", "money"),
)
_PER_CALL: Final = (
    "SELECT uniqueid, "
    "total(CASE WHEN account_kind = 'buyer' THEN amount_minor END) AS rev, "
    "total(CASE WHEN account_kind = 'publisher' THEN amount_minor END) AS pay "
    "FROM ledger GROUP BY uniqueid"
)


def money_by(
    db: ReportDb, filters: Filters, dims: Sequence[str]
) -> dict[tuple[Any, ...], tuple[float, float]] | None:
    """(revenue, payout) in major units per group of ``dims``; None when nothing was billed."""
    (has,) = db.one("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger'")
    if not has or not db.one("SELECT EXISTS (SELECT 1 FROM ledger)")[0]:
        return None
    where, params = filters.where()
    cols = ", ".join(dims)
    rows = db.all(
        f"SELECT {cols}, total(l.rev), total(l.pay) "
        f"FROM (SELECT uniqueid, {cols} FROM calls WHERE {where}) AS c "
        f"JOIN ({_PER_CALL}) AS l USING (uniqueid) GROUP BY {cols}",
        params,
    )
    n = len(dims)
    return {tuple(r[:n]): (float(r[n]) / 100, float(r[n + 1]) / 100) for r in rows}


def money_row(money: tuple[float, float] | None) -> dict[str, float | None]:
    """The report columns of one group's money (blank when nothing was billed)."""
    if money is None:
        return {"revenue": None, "payout": None, "margin": None}
    revenue, payout = money
    return {"revenue": revenue, "payout": payout, "margin": revenue - payout}
