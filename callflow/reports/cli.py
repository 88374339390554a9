"""``callflow report …``: thin typer commands over the report library."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from callflow.reports.db import Filters, ReportDb
from callflow.reports.render import FORMATS, Format, Report, render
from callflow.reports.timeutil import BUCKETS, Bucket, iso, parse_range, parse_when, zone
from callflow.store.errors import SchemaError

__all__ = ["report_app"]

report_app = typer.Typer(
    help="Call-tracking reports over the CDR database (read-only; safe while the daemon runs).",
    no_args_is_help=True,
)
T = TypeVar("T")
Command = Callable[..., None]

DbOpt = Annotated[Path, typer.Option("--db", envvar="CALLFLOW_DB", help="CDR database (SQLite).")]
SinceOpt = Annotated[
    str | None, typer.Option(help="From this ISO date/time (in --tz unless it has an offset).")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(help="Until this ISO date/time, exclusive; a bare date includes that day."),
]
CampaignOpt = Annotated[
    list[str] | None, typer.Option("--campaign", help="Only this campaign (repeat for several).")
]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", help="Only this source.")]
TargetOpt = Annotated[
    list[str] | None, typer.Option("--target", help="Only calls that ended on this target.")
]
StateOpt = Annotated[
    list[str] | None, typer.Option("--state", help="Only callers from this state (e.g. NY).")
]
TzOpt = Annotated[
    str, typer.Option("--tz", envvar="CALLFLOW_TZ", help="IANA time zone for dates and buckets.")
]
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json.")]
ChartOpt = Annotated[
    Path | None, typer.Option("--chart", help="Also draw the chart: FILE.png, .svg or .html.")
]
ConvertOpt = Annotated[
    float,
    typer.Option(
        "--convert-after", help="A conversion is an answered call of at least this many seconds."
    ),
]
DEFAULT_DB = Path("var/callflow.sqlite3")

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


@dataclass
class Common:
    """What every report command takes, parsed."""

    db: Path
    tz: ZoneInfo
    filters: Filters
    fmt: Format
    chart: Path | None
    params: dict[str, Any]


def _common(
    db: Path,
    since: str | None,
    until: str | None,
    campaign: list[str] | None,
    source: list[str] | None,
    target: list[str] | None,
    state: list[str] | None,
    tz: str,
    fmt: str,
    chart: Path | None,
) -> Common:
    """Validate and parse the shared options."""
    try:
        zi = zone(tz)
        lo = parse_when(since, zi) if since else None
        hi = parse_when(until, zi, end=True) if until else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if fmt not in FORMATS:
        raise typer.BadParameter("--format is table, csv or json")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg", ".html"):
        raise typer.BadParameter("--chart must end in .png, .svg or .html")
    filters = Filters(
        lo, hi, tuple(campaign or ()), tuple(source or ()), tuple(target or ()), tuple(state or ())
    )
    params: dict[str, Any] = {
        "since": iso(lo, zi) if lo is not None else None,
        "until": iso(hi, zi) if hi is not None else None,
        "tz": tz,
        "campaign": list(filters.campaign),
        "source": list(filters.source),
        "target": list(filters.target),
        "state": list(filters.state),
    }
    return Common(db, zi, filters, fmt, chart, params)


def _shared_options(
    db: DbOpt = DEFAULT_DB,
    since: SinceOpt = None,
    until: UntilOpt = None,
    campaign: CampaignOpt = None,
    source: SourceOpt = None,
    target: TargetOpt = None,
    state: StateOpt = None,
    tz: TzOpt = "UTC",
    fmt: FormatOpt = "table",
    chart: ChartOpt = None,
) -> None:
    """The options every report takes, after its own (a template: typer reads it, never calls)."""


def _report(name: str, *, window: bool = True) -> Callable[[Command], Command]:
    """Register ``fn(common, **its_options)`` as ``callflow report NAME`` with the shared options.

    ``window=False`` leaves out --since/--until (the report takes its periods otherwise).
    """
    shared = [
        p for p in inspect.signature(_shared_options, eval_str=True).parameters.values()
        if window or p.name not in ("since", "until")
    ]  # fmt: skip

    def register(fn: Command) -> Command:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]  # after Common

        def command(**values: Any) -> None:
            options = {p.name: values.pop(p.name) for p in shared}
            fn(_common(**{"since": None, "until": None, **options}), **values)

        functools.update_wrapper(command, fn)
        kw = inspect.Parameter.KEYWORD_ONLY
        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=kw) for p in (*own, *shared)]
        )
        command.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
        report_app.command(name)(command)
        return fn

    return register


def _run(
    common: Common,
    build: Callable[[ReportDb], tuple[Report, T]],
    chart_kind: str,
    chart_data: Callable[[T], Any] = lambda d: d,
    **chart_extra: Any,
) -> None:
    """Open the database, build the report, print it, and draw its chart if asked."""
    try:
        with ReportDb.open(common.db) as db:
            report, data = build(db)
    except (FileNotFoundError, SchemaError) as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    if common.fmt == "table":
        render(report, "table", out)
    else:
        sys.stdout.write(render(report, common.fmt))
    if common.chart is not None:
        from callflow.reports.charts import chart

        title = f"callflow {report.name}" + (
            f" — {common.params['since'] or '…'} to {common.params['until'] or '…'}"
        )
        chart(chart_kind, chart_data(data), common.chart, title, **chart_extra)
        err.print(f"chart written to {common.chart}")


@_report("summary")
def summary_cmd(
    c: Common,
    by: Annotated[str, typer.Option(help="hour, day, week or month (in --tz).")] = "day",
) -> None:
    """Calls, answered, missed, abandoned, unique callers, answer rate, ring and talk per bucket."""
    from callflow.reports.summary import summary_report

    if by not in BUCKETS:
        raise typer.BadParameter("--by is hour, day, week or month")
    bucket: Bucket = by
    _run(c, lambda d: summary_report(d, c.filters, bucket, c.tz, {**c.params, "by": by}), "summary")


@_report("missed")
def missed_cmd(
    c: Common,
    within_days: Annotated[
        float,
        typer.Option(
            help="Reached later = the same number called "
            "again and was answered within this many days "
            "(outbound call-backs are not recorded yet)."
        ),
    ] = 7,
    limit: Annotated[int, typer.Option(help="List the N most recent (0 = all).")] = 100,
) -> None:
    """Missed and abandoned calls: caller, place, campaign, time, and whether reached later.

    "Reached later" means the same caller number called again and was answered within
    --within-days; a call-back we placed is not recorded yet, so it does not count.
    """
    from callflow.reports.missed import missed_report

    _run(
        c,
        lambda d: missed_report(
            d,
            c.filters,
            c.tz,
            {**c.params, "within_days": within_days},
            within_days=within_days,
            limit=limit or None,
        ),
        "missed",
    )


@_report("callers")
def callers_cmd(
    c: Common,
    top: Annotated[int, typer.Option(help="How many top repeat callers to list.")] = 20,
) -> None:
    """Unique, first-time, returning and repeat callers; the top repeat callers."""
    from callflow.reports.callers import callers_report

    def build(d: ReportDb) -> tuple[Report, Any]:
        report, _, tops = callers_report(d, c.filters, c.tz, c.params, top=top)
        return report, tops

    _run(c, build, "callers")


@_report("sources")
def sources_cmd(
    c: Common,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="campaign, source, medium, keyword, tracking_number, company or account_id "
            "(repeat to nest).",
        ),
    ] = None,
    convert_after: ConvertOpt = 60.0,
    cost_file: Annotated[
        Path | None,
        typer.Option(help="YAML or CSV: name (of the first --by) → spend over the window."),
    ] = None,
) -> None:
    """Calls, answered, conversions, answer rate, talk time (and cost) per campaign or source."""
    from callflow.reports.costs import CostError, load_costs
    from callflow.reports.sources import DIMENSIONS, sources_report

    dims = tuple(by or ("campaign",))
    if any(d not in DIMENSIONS for d in dims):
        raise typer.BadParameter(f"--by is one of {', '.join(DIMENSIONS)}")
    try:
        costs = load_costs(cost_file) if cost_file else None
    except CostError as exc:
        raise typer.BadParameter(str(exc)) from None
    params = {**c.params, "by": list(dims), "convert_after": convert_after}
    _run(
        c,
        lambda d: sources_report(
            d, c.filters, params, dims, convert_after=convert_after, costs=costs
        ),
        "sources",
    )


@_report("geo")
def geo_cmd(
    c: Common,
    by: Annotated[str, typer.Option(help="country, state, city, area_code or zip.")] = "state",
    top: Annotated[int, typer.Option(help="Show the top N places (0 = all).")] = 0,
    convert_after: ConvertOpt = 60.0,
) -> None:
    """Calls by the caller's country, state, city, area code (or ZIP once the IVR records it)."""
    from callflow.reports.geo import GEO_LEVELS, geo_report

    if by not in GEO_LEVELS:
        raise typer.BadParameter(f"--by is one of {', '.join(GEO_LEVELS)}")
    _run(
        c,
        lambda d: geo_report(
            d, c.filters, {**c.params, "by": by}, by, convert_after=convert_after, top=top or None
        ),
        "geo",
    )


@_report("targets")
def targets_cmd(
    c: Common,
) -> None:
    """Per target (final and per dial attempt): offered, answered, missed, talk time, cap hits."""
    from callflow.reports.targets import targets_report

    _run(c, lambda d: targets_report(d, c.filters, c.params), "targets")


@_report("heatmap")
def heatmap_cmd(
    c: Common,
) -> None:
    """Calls and missed calls by weekday x hour of day (in --tz)."""
    from callflow.reports.heatmap import heatmap_report

    _run(c, lambda d: heatmap_report(d, c.filters, c.tz, c.params), "heatmap")


@_report("compare", window=False)
def compare_cmd(
    c: Common,
    before: Annotated[str, typer.Option(help="First period, A..B (dates inclusive).")],
    after: Annotated[str, typer.Option(help="Second period, C..D.")],
    convert_after: ConvertOpt = 60.0,
) -> None:
    """Two periods side by side per day, with change and whether it is within noise."""
    from callflow.reports.compare import compare_report

    try:
        a, b = parse_range(before, c.tz), parse_range(after, c.tz)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    params = {**c.params, "before": before, "after": after, "convert_after": convert_after}
    labels = (f"before {before}", f"after {after}")
    _run(
        c,
        lambda d: compare_report(
            d, c.filters, a, b, c.tz, params, convert_after=convert_after, labels=labels
        ),
        "compare",
        labels=labels,
    )


@_report("caller")
def caller_cmd(
    c: Common,
    number: Annotated[str, typer.Argument(help="The caller's number, in any usual format.")],
    country: Annotated[str, typer.Option(help="Country for numbers without +code.")] = "US",
) -> None:
    """Every call from one number, with its attribution and dial attempts."""
    from callflow.reports.caller import caller_report

    _run(
        c,
        lambda d: caller_report(d, number, c.filters, c.tz, c.params, default_country=country),
        "caller",
    )
