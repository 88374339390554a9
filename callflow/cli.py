"""The `callflow` command line: thin typer commands over the library."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callflow import __version__
from callflow.billing.cli import billing_app
from callflow.config import ConfigError, load_config
from callflow.reports.cli import report_app

app = typer.Typer(
    help="On-premises call tracking and call routing for Asterisk.", no_args_is_help=True
)
config_app = typer.Typer(help="Check the rules file.", no_args_is_help=True)
numbers_app = typer.Typer(help="Tracking numbers.", no_args_is_help=True)
cdr_app = typer.Typer(help="Call detail records.", no_args_is_help=True)
directory_app = typer.Typer(help="The caller directory (known numbers).", no_args_is_help=True)
rules_app = typer.Typer(help="Check the rules and explain decisions.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook / postback deliveries.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(numbers_app, name="numbers")
app.add_typer(cdr_app, name="cdr")
app.add_typer(directory_app, name="directory")
app.add_typer(rules_app, name="rules")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(report_app, name="report")
app.add_typer(billing_app, name="billing")

# Wide tables when writing to a file or pipe (rich would otherwise assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", envvar="CALLFLOW_CONFIG", help="Rules file (YAML).")
]
DbOpt = Annotated[Path, typer.Option("--db", envvar="CALLFLOW_DB", help="CDR database (SQLite).")]
AmiOpt = Annotated[
    str | None,
    typer.Option("--ami", envvar="CALLFLOW_AMI", help="AMI login, tcp://user:secret@host:port."),
]
DEFAULT_CONFIG = Path("rules/callflow.yaml")
DEFAULT_DB = Path("var/callflow.sqlite3")


def _load(path: Path):  # type: ignore[no-untyped-def]
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]invalid rules file[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from None


@app.callback()
def _quiet_logs() -> None:
    """Library log lines stay quiet in one-shot commands (serve configures its own)."""
    from callflow import logs

    logs.configure("console", "warning")


def _ami_url(url: str | None):  # type: ignore[no-untyped-def]
    from callflow.ami import AmiUrl

    if not url:
        return None
    try:
        return AmiUrl.parse(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def version() -> None:
    """Print callflow's version."""
    out.print(__version__)


@app.command()
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = DEFAULT_DB,
    listen: Annotated[str, typer.Option(help="FastAGI address, HOST:PORT.")] = "127.0.0.1:4573",
    node: Annotated[str, typer.Option(help="This daemon's name in CDRs and events.")] = "callflow",
    log_format: Annotated[
        str, typer.Option(help="console or json (default: console on a terminal, else json).")
    ] = "auto",
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    uvloop: Annotated[bool, typer.Option(help="Use uvloop when installed.")] = True,
    ami: AmiOpt = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds calls in progress get to finish on SIGTERM (default 30)."),
    ] = None,
) -> None:
    """Run the FastAGI routing daemon (SIGHUP reloads the rules, SIGTERM stops gracefully)."""
    from callflow import logs
    from callflow.daemon import Daemon, DaemonOptions

    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    if log_format not in ("console", "json"):
        raise typer.BadParameter("--log-format is console or json")
    logs.configure(log_format, log_level, cache=True)  # type: ignore[arg-type]
    host, _, port = listen.rpartition(":")
    _load(config)  # fail early, with file:line, before binding anything
    options = DaemonOptions(config=config, database=db, host=host or "127.0.0.1",
                            port=int(port), node=node, ami=_ami_url(ami))  # fmt: skip
    daemon = Daemon(options if grace is None else dataclasses.replace(options, grace=grace))
    runner = asyncio.run
    if uvloop:
        try:
            import uvloop as _uvloop

            runner = _uvloop.run
        except ImportError:
            pass
    runner(daemon.serve_forever())


@app.command()
def callback(
    number: Annotated[str, typer.Option(help="The caller to call back (any usual form).")],
    campaign: Annotated[str, typer.Option(help="The campaign the call is attributed to.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    ami: AmiOpt = None,
    trunk: Annotated[str | None, typer.Option(help="Trunk to call out on.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds the caller's phone rings.")] = 30.0,
) -> None:
    """Call a number back; when it answers, the call is routed like an inbound call to CAMPAIGN."""
    from callflow.call.callback import CallbackError, request_callback

    cfg = _load(config)
    url = _ami_url(ami)
    if url is None:
        raise typer.BadParameter("--ami (or CALLFLOW_AMI) is required")
    try:
        placed = asyncio.run(request_callback(cfg, url, number=number, campaign=campaign,
                                              trunk=trunk, timeout=timeout))  # fmt: skip
    except CallbackError as exc:
        err.print(f"callback: {exc}")
        raise typer.Exit(1) from None
    out.print(f"calling {placed.number} via {placed.trunk}; answered calls go to "
              f"{placed.campaign} (tracking number {placed.tracking_number})")  # fmt: skip


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="The rules file to check.")] = DEFAULT_CONFIG,
) -> None:
    """Validate a rules file; every problem is listed as file:line:column (exit status 2)."""
    config_check(file)


@rules_app.command("explain")
def rules_explain(
    dnis: Annotated[str, typer.Option(help="The tracking number dialled.")],
    ani: Annotated[str, typer.Option(help="The caller's number ('anonymous' for withheld).")],
    digits: Annotated[
        list[str] | None,
        typer.Option(help="What the caller enters at each IVR or ZIP prompt, in order."),
    ] = None,
    at: Annotated[str | None, typer.Option(help="ISO time of the call (default: now).")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Dry run: how a call would be routed now, against the live counters; no call is placed."""
    from callflow.call.explain import explain_call

    cfg = _load(config)
    when = _when(at)
    known = db if db.exists() else None  # no database yet: no calls counted
    text = asyncio.run(explain_call(cfg, known, dnis=dnis, ani=ani, digits=list(digits or []),
                                    at=when))  # fmt: skip
    out.print(text, highlight=False, markup=False)


@webhooks_app.command("log")
def webhooks_log(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = DEFAULT_DB,
    since: Annotated[str | None, typer.Option(help="ISO date/time (UTC unless given).")] = None,
    webhook: Annotated[str | None, typer.Option(help="Only this webhook.")] = None,
    spool: Annotated[Path | None, typer.Option(help="Spool folder (default: beside --db).")] = None,
) -> None:
    """Show webhook delivery attempts: status, error, attempt number."""
    from callflow.events import delivery_log, delivery_log_path

    cfg = _load(config)
    path = delivery_log_path(cfg.events, spool or db.parent / "spool")
    table = Table("at (UTC)", "webhook", "event", "attempt", "status", "error", "url")
    for row in delivery_log(path, since=_when(since), webhook=webhook):
        table.add_row(_iso(row.get("at"))[:19], str(row.get("webhook") or ""),
                      str(row.get("event") or ""), str(row.get("attempt") or ""),
                      str(row.get("status") or ""), str(row.get("error") or ""),
                      str(row.get("url") or ""))  # fmt: skip
    out.print(table)


@config_app.command("check")
def config_check(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Validate the rules file; errors are listed with file:line:column."""
    cfg = _load(config)
    out.print(
        f"{config}: OK — {len(cfg.numbers)} tracking numbers, {len(cfg.campaigns)} campaigns, "
        f"{len(cfg.targets)} targets"
    )


@numbers_app.command("list")
def numbers_list(
    config: ConfigOpt = DEFAULT_CONFIG,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List the tracking numbers with their campaign and attribution."""
    from callflow.tracking import NumberIndex

    cfg = _load(config)
    index = NumberIndex(cfg)
    rows = []
    for number in cfg.numbers:
        a = index.lookup(number.number)
        rows.append({"number": a.tracking_number, "campaign": a.campaign, "source": a.source,
                     "medium": a.medium, "keyword": a.keyword, "ad": a.ad})  # fmt: skip
    if fmt == "json":
        out.print_json(json.dumps(rows))
        return
    table = Table("number", "campaign", "source", "medium", "keyword", "ad")
    for r in rows:
        table.add_row(*(str(r[k] or "") for k in ("number", "campaign", "source", "medium",
                                                   "keyword", "ad")))  # fmt: skip
    out.print(table)


def _when(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date/time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@cdr_app.command("export")
def cdr_export(
    db: DbOpt = DEFAULT_DB,
    since: Annotated[str | None, typer.Option(help="ISO date/time (UTC unless given).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date/time, exclusive.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, json or jsonl.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Stream CDRs (with their dial attempts) as CSV, JSON or JSON lines, in constant memory."""
    from callflow.store import CdrReader
    from callflow.store.export import export_calls

    if fmt not in ("csv", "json", "jsonl"):
        raise typer.BadParameter("--format is csv, json or jsonl")
    fmt_ = fmt  # narrowed below for mypy
    lo, hi = _when(since), _when(until)

    async def run() -> int:
        reader = await CdrReader.open(db)
        try:
            stream = output.open("w", newline="") if output else sys.stdout
            try:
                return await export_calls(reader, stream, fmt_, since=lo, until=hi,  # type: ignore[arg-type]
                                          campaign=campaign)  # fmt: skip
            finally:
                if output:
                    stream.close()
        finally:
            await reader.close()

    count = asyncio.run(run())
    if output:
        err.print(f"{count} calls written to {output}")


@cdr_app.command("replay")
def cdr_replay(
    log_file: Annotated[Path, typer.Argument(help="The daemon's JSON log ('-' for stdin).")],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Write back the CDR rows the daemon logged as lost (``cdr_row_lost``), in log order."""
    import sqlite3

    from callflow.store import SchemaError
    from callflow.store.replay import replay
    from callflow.store.schema import PRAGMAS

    if not db.is_file():
        raise typer.BadParameter(f"no CDR database at {db}")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for pragma in PRAGMAS:  # the writer's own settings
            conn.execute(pragma)
        if str(log_file) == "-":
            done = replay(conn, sys.stdin)
        else:
            with log_file.open(encoding="utf-8", errors="replace") as lines:
                done = replay(conn, lines)
    except (SchemaError, sqlite3.DatabaseError) as exc:  # refused before any row is written
        err.print(f"[red]{db}: {exc}[/red]; nothing written", highlight=False)
        raise typer.Exit(2) from None
    finally:
        conn.close()
    for number, uniqueid, why in done.refused:
        err.print(f"line {number}: {uniqueid}: refused: {why}")
    out.print(f"{done.written} rows written, {len(done.refused)} refused")
    if done.refused:
        raise typer.Exit(1)


@cdr_app.command("list")
def cdr_list(
    db: DbOpt = DEFAULT_DB,
    limit: Annotated[int, typer.Option(help="The most recent N calls.")] = 20,
    since: Annotated[str | None, typer.Option(help="ISO date/time (UTC unless given).")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
) -> None:
    """Show the most recent calls as a table."""
    from collections import deque

    from callflow.store import CdrReader

    async def run() -> deque[dict[str, object]]:
        reader = await CdrReader.open(db)
        try:
            last: deque[dict[str, object]] = deque(maxlen=limit)
            async for row in reader.iter_calls(since=_when(since), campaign=campaign):
                last.append(row)
            return last
        finally:
            await reader.close()

    rows = asyncio.run(run())
    table = Table("start (UTC)", "caller", "city", "st", "dnis", "campaign", "result", "target",
                  "ring s", "talk s", "repeat", "uniqueid")  # fmt: skip
    for r in rows:
        table.add_row(
            _iso(r["started_at"])[:19], str(r["ani_e164"] or r["ani_raw"] or ""),
            str(r["city"] or ""), str(r["state"] or ""), str(r["dnis"] or ""),
            str(r["campaign"] or ""), str(r["disposition"] or r["status"]),
            str(r["final_target"] or ""), f"{r['ring_seconds'] or 0:.1f}",
            f"{r['talk_seconds'] or 0:.1f}", "yes" if r["repeat_caller"] else "",
            str(r["uniqueid"]),
        )  # fmt: skip
    out.print(table)


@cdr_app.command("show")
def cdr_show(
    callid: Annotated[str, typer.Argument(help="The call's uniqueid (or a unique prefix).")],
    db: DbOpt = DEFAULT_DB,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Show one call: attribution, caller, attempts, why it was routed so, and what it billed."""
    import aiosqlite

    from callflow.billing import call_money
    from callflow.store import CdrReader

    async def run() -> dict[str, object] | None:
        reader = await CdrReader.open(db)
        try:
            call = await reader.get_call(callid)
        finally:
            await reader.close()
        if call is not None:
            async with aiosqlite.connect(f"file:{db}?mode=ro", uri=True) as conn:
                call["money"] = await call_money(conn, str(call["uniqueid"]))
        return call

    call = asyncio.run(run())
    if call is None:
        err.print(f"no call {callid!r} in {db}")
        raise typer.Exit(1)
    if fmt == "json":
        out.print_json(json.dumps(call, default=str))
        return
    render_call(call)


def _iso(value: object) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return "" if value is None else str(value)


def render_call(call: dict[str, object]) -> None:
    """Print one call as rich tables."""
    table = Table(show_header=False, title=f"call {call['uniqueid']}")
    for key, value in call.items():
        if key in ("attempts", "route_reason", "money"):
            continue
        shown = _iso(value) if key.endswith("_at") else ("" if value is None else str(value))
        table.add_row(key, shown)
    out.print(table)
    attempts = call.get("attempts") or []
    at = Table(
        "#", "target", "destination", "result", "ring s", "talk s", "cause", title="attempts"
    )
    for a in attempts:  # type: ignore[attr-defined]
        at.add_row(str(a["seq"]), a["target"], a["destination"], a["result"],
                   f"{a['ring_seconds']:.1f}", f"{a['talk_seconds']:.1f}",
                   str(a.get("hangup_cause") or ""))  # fmt: skip
    out.print(at)
    reason = call.get("route_reason")
    if reason:
        out.print("[bold]why[/bold]")
        out.print(render_reason(str(reason)), highlight=False, markup=False)
    money = call.get("money")
    if isinstance(money, dict) and money:
        out.print("[bold]billing[/bold]")
        lines = [f"revenue {money['revenue']} (buyer {money['buyer']}), payout {money['payout']} "
                 f"(publisher {money['publisher']}), margin {money['margin']}"]  # fmt: skip
        lines += [f"  {reason}" for reason in money["reasons"]]
        out.print("\n".join(lines), highlight=False, markup=False)


def render_reason(text: str) -> str:
    """The routing explanation stored with a CDR, as readable text."""
    from callflow.rules import Trace

    try:
        reason = json.loads(text)
    except ValueError:
        return text
    if not isinstance(reason, dict) or "rounds" not in reason:
        return json.dumps(reason, indent=2)
    lines = []
    for n, round_ in enumerate(reason.get("rounds") or [], 1):
        lines.append(f"decision {n}:")
        rendered = Trace.from_data(round_).render()
        lines.extend("  " + line for line in rendered.splitlines())
    if reason.get("ivr"):
        lines.append("entered: " + ", ".join(reason["ivr"]))
    for refusal in reason.get("refused_at_dial") or []:
        lines.append(f"skipped at dial time: {refusal}")
    lines.append(f"=> {reason.get('action')}")
    if reason.get("attempts"):
        lines.append("dialled: " + ", ".join(reason["attempts"]))
    return "\n".join(lines)


@directory_app.command("import")
def directory_import(
    csv_file: Annotated[Path, typer.Argument(help="CSV: number,name,company,address,...")],
    db: DbOpt = DEFAULT_DB,
    config: ConfigOpt = DEFAULT_CONFIG,
    replace: Annotated[bool, typer.Option(help="Drop contacts not in this file.")] = False,
) -> None:
    """Import known callers; bad rows are listed by line and skipped (SIGHUP the daemon after)."""
    from callflow import directory
    from callflow.store import CdrStore

    cfg = _load(config)
    try:
        contacts, report = directory.parse_csv(
            csv_file.read_text(errors="replace"), cfg.settings.default_country
        )
    except (OSError, directory.DirectoryError) as exc:
        err.print(f"{csv_file}: {exc}")
        raise typer.Exit(2) from None

    async def migrate() -> None:
        db.parent.mkdir(parents=True, exist_ok=True)
        await (await CdrStore.open(db)).close()

    asyncio.run(migrate())
    directory.save(db, contacts, replace=replace)
    for line, reason in report.rejected:
        err.print(f"{csv_file}:{line}: skipped: {reason}", highlight=False, soft_wrap=True)
    out.print(f"{report.imported} contacts imported, {len(report.rejected)} rows skipped")


@directory_app.command("list")
def directory_list(db: DbOpt = DEFAULT_DB) -> None:
    """List the known callers."""
    from callflow import directory

    table = Table("number", "name", "company", "account", "tags")
    for c in sorted(directory.load(db).values(), key=lambda c: c.e164):
        table.add_row(c.e164, c.name or "", c.company or "", c.account_id or "", c.tags or "")
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
