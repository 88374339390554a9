"""The billing ledger in the CDR database: append-only entries, statements, money per call.

Every billed call gets one ``revenue`` entry for its buyer and one ``payout`` entry for its
publisher (amount 0 when it did not convert, was a duplicate or was capped, with the reason),
written once: ``post`` is idempotent per call and kind. Entries are never updated or deleted
(SQLite triggers refuse it); a correction is a new ``adjustment`` entry, or a ``reversal`` when
it cancels the call's amount exactly, pointing at the entry it corrects (``reverses_id``).

A statement covers the entries dated in ``[since, until)``: a correction is dated when it is
made, so it shows in the statement of its own period. Its totals are sums of those entries, so
they equal the ledger exactly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import aiosqlite

from callflow.billing.assess import Assessment
from callflow.billing.model import BillingConfig
from callflow.billing.money import format_money
from callflow.billing.state import BillingState, SettledEntry
from callflow.config import Config

__all__ = [
    "LedgerEntry",
    "LedgerError",
    "Statement",
    "StatementLine",
    "adjust",
    "call_money",
    "entries_of",
    "load_state",
    "open_ledger",
    "post",
    "statement",
]

Kind = Literal["buyer", "publisher"]
_COLUMNS = (
    "id", "at", "uniqueid", "account_kind", "account", "amount_minor", "currency", "kind", "rule",
    "reason", "reverses_id", "converted", "duplicate_of", "ani_e164", "campaign", "talk_seconds",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM ledger"
_INSERT = (
    f"INSERT OR IGNORE INTO ledger ({', '.join(_COLUMNS[1:])}) "
    f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})"
)
_ORIGINAL = ("revenue", "payout")
#: How far back the caps' periods reach (a month, in any zone).
_CAP_HISTORY = 32 * 86400


class LedgerError(Exception):
    """A ledger operation that cannot be done (unknown call, bad adjustment, mixed currencies)."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One row of the ledger."""

    id: int
    at: float
    uniqueid: str
    account_kind: Kind
    account: str
    amount_minor: int
    currency: str
    kind: Literal["revenue", "payout", "adjustment", "reversal"]
    rule: str
    reason: str
    reverses_id: int | None
    converted: bool
    duplicate_of: str | None
    ani_e164: str | None
    campaign: str | None
    talk_seconds: float | None

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> LedgerEntry:
        """Decode a ``_SELECT`` row."""
        values = dict(zip(_COLUMNS, row, strict=True))
        values["converted"] = bool(values["converted"])
        return cls(**values)


async def open_ledger(path: str | os.PathLike[str]) -> aiosqlite.Connection:
    """Open the CDR database read-write for the CLI's ledger writes (the daemon posts through
    its CDR writer: ``CdrStore.transact``)."""
    from callflow.store.connection import open_writer

    return await open_writer(path)


async def _begin(conn: aiosqlite.Connection) -> None:
    if conn.in_transaction:
        raise LedgerError("the connection is already in a transaction")
    await conn.execute("BEGIN IMMEDIATE")


async def _rollback(conn: aiosqlite.Connection) -> None:
    if conn.in_transaction:
        await conn.execute("ROLLBACK")


async def _insert(conn: aiosqlite.Connection, values: tuple[Any, ...]) -> int | None:
    """Insert one entry; return its id, or None if the call already has it (idempotent)."""
    cursor = await conn.execute(_INSERT, values)
    try:
        return cursor.lastrowid if cursor.rowcount == 1 else None
    finally:
        await cursor.close()


async def post(conn: aiosqlite.Connection, assessment: Assessment) -> list[LedgerEntry]:
    """Write a call's revenue and payout entries; return those written (none if already there)."""
    a = assessment
    rows: list[tuple[Any, ...]] = []
    if a.buyer is not None:
        rows.append((
            a.at, a.uniqueid, "buyer", a.buyer, a.revenue_minor, a.currency or "USD", "revenue",
            a.revenue_rule or f"buyers.{a.buyer}", "; ".join(a.buyer_reasons), None,
            int(a.billed), a.duplicate_of, a.ani_e164, a.campaign, a.talk_seconds,
        ))  # fmt: skip
    if a.publisher is not None:
        rows.append((
            a.at, a.uniqueid, "publisher", a.publisher, a.payout_minor,
            a.payout_currency or "USD", "payout", a.payout_rule or f"publishers.{a.publisher}",
            "; ".join(a.publisher_reasons), None, int(a.paid), a.duplicate_of, a.ani_e164,
            a.campaign, a.talk_seconds,
        ))  # fmt: skip
    if not rows:
        return []
    await _begin(conn)
    try:
        ids = [await _insert(conn, row) for row in rows]
        await conn.execute("COMMIT")
    except BaseException:
        await _rollback(conn)
        raise
    return [LedgerEntry(i, *row) for i, row in zip(ids, rows, strict=True) if i is not None]


async def entries_of(conn: aiosqlite.Connection, uniqueid: str) -> list[LedgerEntry]:
    """Return a call's ledger entries, oldest first."""
    rows = await conn.execute_fetchall(f"{_SELECT} WHERE uniqueid = ? ORDER BY id", (uniqueid,))
    return [LedgerEntry.of_row(r) for r in rows]


def _pick_account(found: list[LedgerEntry], uniqueid: str, account: str | None) -> LedgerEntry:
    """Return the original entry of the account an adjustment is for."""
    originals = [e for e in found if e.kind in _ORIGINAL]
    if not originals:
        raise LedgerError(f"call {uniqueid} has no ledger entries (never billed)")
    if account is None:  # the buyer's revenue, else the publisher's payout
        return next((e for e in originals if e.account_kind == "buyer"), originals[0])
    kind, sep, name = account.partition(":")
    if sep and kind in ("buyer", "publisher"):
        matches = [e for e in originals if (e.account_kind, e.account) == (kind, name)]
    else:
        matches = [e for e in originals if e.account == account]
    if len(matches) != 1:
        held = ", ".join(f"{e.account_kind}:{e.account}" for e in originals)
        why = "is both buyer and publisher: say buyer:NAME or publisher:NAME" if matches else (
            "is not billed for it")  # fmt: skip
        raise LedgerError(f"{account!r} {why} (call {uniqueid}: {held})")
    return matches[0]


async def adjust(
    conn: aiosqlite.Connection,
    uniqueid: str,
    amount_minor: int,
    reason: str,
    account: str | None = None,
    *,
    at: float | None = None,
) -> LedgerEntry:
    """Add a correction to a call's revenue (its buyer, by default) or payout; never an update.

    ``amount_minor`` is signed, in the account's currency: -1250 takes $12.50 off. A correction
    cancelling the call's whole amount for that account is a ``reversal``, any other an
    ``adjustment``; both point at the call's original entry. The account's total for the call
    can never go below zero. ``account`` is a name, or ``buyer:NAME`` / ``publisher:NAME``.
    """
    if not reason.strip():
        raise LedgerError("an adjustment needs a reason")
    if amount_minor == 0:
        raise LedgerError("an adjustment of 0 changes nothing")
    await _begin(conn)
    try:
        found = await entries_of(conn, uniqueid)
        original = _pick_account(found, uniqueid, account)
        mine = [e for e in found if (e.account_kind, e.account) == (original.account_kind,
                                                                     original.account)]  # fmt: skip
        net = sum(e.amount_minor for e in mine)
        if net + amount_minor < 0:
            cur = original.currency
            raise LedgerError(
                f"would leave call {uniqueid} at {format_money(net + amount_minor, cur)} for "
                f"{original.account_kind} {original.account} (now {format_money(net, cur)})"
            )
        kind = "reversal" if amount_minor == -net else "adjustment"
        when = time.time() if at is None else at
        values = (
            when, uniqueid, original.account_kind, original.account, amount_minor,
            original.currency, kind, "adjust", reason.strip(), original.id, 0, None,
            original.ani_e164, original.campaign, None,
        )  # fmt: skip
        new_id = await _insert(conn, values)
        await conn.execute("COMMIT")
    except BaseException:
        await _rollback(conn)
        raise
    assert new_id is not None
    return LedgerEntry(new_id, *values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One call's entries in a statement."""

    uniqueid: str
    at: float  # its first entry in the period
    ani_e164: str | None
    campaign: str | None
    talk_seconds: float | None
    converted: bool
    duplicate_of: str | None
    billed_minor: int  # its revenue / payout entry (if dated in the period)
    adjustments_minor: int  # its adjustments and reversals dated in the period
    total_minor: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    """An account's calls and money over a period; totals are sums of ledger entries."""

    kind: Kind
    account: str
    since: float | None
    until: float | None
    currency: str | None
    calls: int  # revenue / payout entries in the period
    conversions: int  # billed (buyer) or paid (publisher) conversions
    duplicates: int
    billed_minor: int
    adjustments_minor: int
    total_minor: int
    entries: int
    lines: tuple[StatementLine, ...] = field(default=())

    def as_dict(self, *, lines: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (amounts in minor units and formatted)."""
        data = asdict(self)
        cur = self.currency or "USD"
        for key in ("billed", "adjustments", "total"):
            data[key] = format_money(data[f"{key}_minor"], cur)
        if not lines:
            data.pop("lines")
        return data


async def statement(
    conn: aiosqlite.Connection,
    kind: Kind,
    account: str,
    since: float | None = None,
    until: float | None = None,
    *,
    currency: str | None = None,
) -> Statement:
    """Return an account's statement for entries dated in ``[since, until)``."""
    sql = f"{_SELECT} WHERE account_kind = ? AND account = ?"
    params: list[Any] = [kind, account]
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND at < ?"
        params.append(until)
    if currency is not None:
        sql += " AND currency = ?"
        params.append(currency)
    rows = [LedgerEntry.of_row(r) for r in await conn.execute_fetchall(sql + " ORDER BY at, id",
                                                                         params)]  # fmt: skip
    currencies = sorted({e.currency for e in rows})
    if len(currencies) > 1:
        raise LedgerError(
            f"{kind} {account} has entries in {', '.join(currencies)} in this period: "
            "ask for one currency"
        )
    by_call: dict[str, list[LedgerEntry]] = {}
    for entry in rows:
        by_call.setdefault(entry.uniqueid, []).append(entry)
    lines = []
    for uniqueid, mine in by_call.items():
        original = next((e for e in mine if e.kind in _ORIGINAL), None)
        billed = sum(e.amount_minor for e in mine if e.kind in _ORIGINAL)
        adjusted = sum(e.amount_minor for e in mine if e.kind not in _ORIGINAL)
        lines.append(StatementLine(
            uniqueid, mine[0].at, mine[0].ani_e164, mine[0].campaign,
            original.talk_seconds if original else None,
            bool(original and original.converted), original.duplicate_of if original else None,
            billed, adjusted, billed + adjusted,
            tuple(f"{e.kind}: {e.reason}" if e.reason else e.kind for e in mine),
        ))  # fmt: skip
    originals = [e for e in rows if e.kind in _ORIGINAL]
    billed_total = sum(e.amount_minor for e in originals)
    adjust_total = sum(e.amount_minor for e in rows if e.kind not in _ORIGINAL)
    return Statement(
        kind, account, since, until, currencies[0] if currencies else currency,
        len(originals), sum(1 for e in originals if e.converted),
        sum(1 for e in originals if e.duplicate_of is not None), billed_total, adjust_total,
        billed_total + adjust_total, len(rows), tuple(lines),
    )  # fmt: skip


async def call_money(conn: aiosqlite.Connection, uniqueid: str) -> dict[str, Any]:
    """Return a call's revenue, payout and margin from the ledger ({} if never billed).

    Keys: buyer, publisher, currency, payout_currency, revenue_minor, payout_minor,
    margin_minor (None when the currencies differ), revenue, payout, margin (formatted),
    buyer_converted, publisher_converted, duplicate_of, reasons (list of text), entries.
    """
    found = await entries_of(conn, uniqueid)
    if not found:
        return {}
    buyer = next((e for e in found if e.kind == "revenue"), None)
    publisher = next((e for e in found if e.kind == "payout"), None)
    revenue = sum(e.amount_minor for e in found if e.account_kind == "buyer")
    payout = sum(e.amount_minor for e in found if e.account_kind == "publisher")
    cur = buyer.currency if buyer else None
    pcur = publisher.currency if publisher else None
    margin = None if cur and pcur and cur != pcur else revenue - payout
    shown = cur or pcur or "USD"
    first = buyer or publisher
    return {
        "uniqueid": uniqueid,
        "buyer": buyer.account if buyer else None,
        "publisher": publisher.account if publisher else None,
        "currency": cur,
        "payout_currency": pcur,
        "revenue_minor": revenue,
        "payout_minor": payout,
        "margin_minor": margin,
        "revenue": format_money(revenue, cur or shown),
        "payout": format_money(payout, pcur or shown),
        "margin": None if margin is None else format_money(margin, shown),
        "buyer_converted": bool(buyer and buyer.converted),
        "publisher_converted": bool(publisher and publisher.converted),
        "duplicate_of": first.duplicate_of if first is not None else None,
        "reasons": [
            f"{e.kind} {e.account_kind} {e.account} {format_money(e.amount_minor, e.currency)}"
            f" ({e.rule}): {e.reason}"
            for e in found
        ],
        "entries": [asdict(e) for e in found],
    }


async def load_state(
    conn: aiosqlite.Connection,
    billing: Config | BillingConfig,
    now: float | None = None,
    *,
    state: BillingState | None = None,
) -> BillingState:
    """Rebuild the live billing state from the ledger (caps' periods, duplicate memory)."""
    plans = BillingConfig.of(billing)
    now = time.time() if now is None else now
    windows = [b.duplicate.window for b in plans.buyers.values() if b.duplicate is not None]
    if any(w is None for w in windows):
        dup_since = float("-inf")
    else:
        dup_since = now - max((w for w in windows if w is not None), default=0)
    sql = (
        f"{_SELECT} WHERE kind IN ('revenue', 'payout') AND (at >= ? OR (kind = 'revenue' "
        "AND converted = 1 AND duplicate_of IS NULL AND ani_e164 IS NOT NULL AND at >= ?))"
    )
    rows = await conn.execute_fetchall(sql, (now - _CAP_HISTORY, dup_since))
    state = state or BillingState(plans)
    entries = []
    for row in rows:
        e = LedgerEntry.of_row(row)
        entries.append(
            SettledEntry(e.account_kind, e.account, e.uniqueid, e.at, e.amount_minor, e.converted,
                         e.duplicate_of, e.ani_e164, e.campaign)
        )  # fmt: skip
    state.load(entries)
    return state
