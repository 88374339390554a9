"""`callflow billing`: statements per buyer or publisher, and adjustments (reversing entries)."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from callflow.billing.ledger import (
    LedgerError,
    Statement,
    adjust,
    entries_of,
    open_ledger,
    statement,
)
from callflow.billing.money import format_money, parse_money

__all__ = ["billing_app"]

billing_app = typer.Typer(
    help="Pay per call: statements and adjustments (the ledger).", no_args_is_help=True
)
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

DbOpt = Annotated[Path, typer.Option("--db", envvar="CALLFLOW_DB", help="CDR database (SQLite).")]
DEFAULT_DB = Path("var/callflow.sqlite3")


def _when(text: str | None, option: str) -> float | None:
    """Read an ISO date or date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date/time: {text!r}", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@billing_app.command("statement")
def statement_cmd(
    buyer: Annotated[str | None, typer.Option(help="The buyer's statement.")] = None,
    publisher: Annotated[str | None, typer.Option(help="The publisher's statement.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time (UTC unless given).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date/time, exclusive.")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="A line per call.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    currency: Annotated[str | None, typer.Option(help="Only entries in this currency.")] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Calls, conversions, duplicates and money of a buyer or publisher; totals = the ledger."""
    if (buyer is None) == (publisher is None):
        raise typer.BadParameter("give --buyer or --publisher (one)")
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format is table, csv or json")
    kind: Literal["buyer", "publisher"] = "buyer" if buyer is not None else "publisher"
    account = buyer or publisher or ""
    lo, hi = _when(since, "--since"), _when(until, "--until")

    async def run() -> Statement:
        conn = await open_ledger(db)
        try:
            return await statement(conn, kind, account, lo, hi,
                                   currency=currency.upper() if currency else None)  # fmt: skip
        finally:
            await conn.close()

    try:
        result = asyncio.run(run())
    except LedgerError as exc:
        err.print(str(exc), highlight=False)
        raise typer.Exit(1) from None
    if fmt == "json":
        out.print_json(json.dumps(result.as_dict(lines=lines)))
    elif fmt == "csv":
        _csv(result, lines)
    else:
        _table(result, lines)


def _money(minor: int, result: Statement) -> str:
    return format_money(minor, result.currency or "USD")


def _csv(result: Statement, lines: bool) -> None:
    """Write the statement as CSV: a line per call (with --lines), then the totals."""
    writer = csv.writer(sys.stdout)
    cur = result.currency or "USD"
    writer.writerow(["row", "uniqueid", "at", "ani", "campaign", "talk_seconds", "converted",
                     "duplicate_of", "billed_minor", "adjustments_minor", "total_minor",
                     "currency", "reasons"])  # fmt: skip
    for line in result.lines if lines else ():
        writer.writerow(["call", line.uniqueid, _iso(line.at), line.ani_e164 or "",
                         line.campaign or "", _blank(line.talk_seconds),
                         int(line.converted), line.duplicate_of or "", line.billed_minor,
                         line.adjustments_minor, line.total_minor, cur,
                         " | ".join(line.reasons)])  # fmt: skip
    writer.writerow(["total", f"{result.kind}:{result.account}", "", "", "", "",
                     result.conversions, result.duplicates, result.billed_minor,
                     result.adjustments_minor, result.total_minor, cur,
                     f"{result.calls} calls"])  # fmt: skip


def _blank(value: float | None) -> object:
    return "" if value is None else value


def _table(result: Statement, lines: bool) -> None:
    """Print the statement as rich tables."""
    period = f"{_iso(result.since) or 'start'} .. {_iso(result.until) or 'now'}"
    summary = Table(show_header=False, title=f"{result.kind} {result.account}: {period}")
    rows: list[tuple[str, Any]] = [
        ("calls", result.calls),
        ("conversions", result.conversions),
        ("duplicates", result.duplicates),
        ("revenue" if result.kind == "buyer" else "payout", _money(result.billed_minor, result)),
        ("adjustments", _money(result.adjustments_minor, result)),
        ("total", _money(result.total_minor, result)),
        ("ledger entries", result.entries),
    ]
    for key, value in rows:
        summary.add_row(key, str(value))
    out.print(summary)
    if not lines:
        return
    table = Table("at (UTC)", "call", "caller", "campaign", "talk s", "conv", "duplicate of",
                  "billed", "adj.", "total", "why")  # fmt: skip
    for line in result.lines:
        table.add_row(
            _iso(line.at), line.uniqueid, line.ani_e164 or "", line.campaign or "",
            "" if line.talk_seconds is None else f"{line.talk_seconds:.1f}",
            "yes" if line.converted else "", line.duplicate_of or "",
            _money(line.billed_minor, result), _money(line.adjustments_minor, result),
            _money(line.total_minor, result), "\n".join(line.reasons),
        )  # fmt: skip
    out.print(table)


@billing_app.command("adjust")
def adjust_cmd(
    callid: Annotated[str, typer.Argument(help="The call's uniqueid.")],
    amount: Annotated[
        str, typer.Option(help="Signed amount in the account's currency, e.g. -12.50.")
    ],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")],
    account: Annotated[
        str | None,
        typer.Option(
            help="Buyer or publisher (NAME, buyer:NAME or publisher:NAME); "
            "default: the call's buyer."
        ),
    ] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Add a correcting entry to a call (a reversal when it cancels the amount); never an edit."""

    async def run() -> str:
        conn = await open_ledger(db)
        try:
            found = await entries_of(conn, callid)
            originals = [e for e in found if e.kind in ("revenue", "payout")]
            if not originals:
                raise LedgerError(f"call {callid} has no ledger entries (never billed)")
            # The currency of the account adjusted (buyer by default) reads the amount.
            currency = originals[0].currency
            if account is not None:
                name = account.partition(":")[2] or account
                currency = next((e.currency for e in originals if e.account == name), currency)
            try:
                minor = parse_money(amount, currency)
            except ValueError as exc:
                raise LedgerError(str(exc)) from None
            entry = await adjust(conn, callid, minor, reason, account)
            return (
                f"entry {entry.id}: {entry.kind} {format_money(entry.amount_minor, entry.currency)}"
                f" for {entry.account_kind} {entry.account} on call {callid} "
                f"(corrects entry {entry.reverses_id})"
            )
        finally:
            await conn.close()

    try:
        out.print(asyncio.run(run()), highlight=False)
    except LedgerError as exc:
        err.print(str(exc), highlight=False)
        raise typer.Exit(1) from None
