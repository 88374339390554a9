#!/usr/bin/env python3
"""Time every ``callflow report`` on a large synthetic CDR database; print a markdown table.

    .venv/bin/python scripts/bench_reports.py --rows 1000000 [--db var/bench-1000000.sqlite3]

The database is generated with scripts/gen_cdrs.py when missing (reused otherwise). Each report
runs through the library as the CLI does (open a read-only connection, query, render the table
to a buffer); the best of ``--repeat`` runs is shown, wall and CPU time, for the whole year of
traffic and for its last 30 days.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_cdrs import DEFAULT_END, generate

from callflow.reports import (
    Filters,
    ReportDb,
    caller_report,
    callers_report,
    compare_report,
    geo_report,
    heatmap_report,
    missed_report,
    render,
    sources_report,
    summary_report,
    targets_report,
)
from callflow.reports.timeutil import parse_range, zone
from callflow.store.connection import open_writer

TZ = zone("America/New_York")
Build = Callable[[ReportDb, Filters], Any]


def reports(caller: str) -> dict[str, Build]:
    """The reports to time, as the CLI builds them with default options."""
    before = parse_range("2024-10-01..2024-10-31", TZ)
    after = parse_range("2024-11-01..2024-11-30", TZ)
    return {
        "summary --by day": lambda d, f: summary_report(d, f, "day", TZ, {}),
        "summary --by hour": lambda d, f: summary_report(d, f, "hour", TZ, {}),
        "summary --by month": lambda d, f: summary_report(d, f, "month", TZ, {}),
        "missed": lambda d, f: missed_report(d, f, TZ, {}),
        "callers": lambda d, f: callers_report(d, f, TZ, {}),
        "sources --by campaign": lambda d, f: sources_report(d, f, {}, ("campaign",)),
        "sources --by keyword": lambda d, f: sources_report(d, f, {}, ("source", "keyword")),
        "geo --by state": lambda d, f: geo_report(d, f, {}, "state"),
        "geo --by city": lambda d, f: geo_report(d, f, {}, "city"),
        "targets": lambda d, f: targets_report(d, f, {}),
        "heatmap": lambda d, f: heatmap_report(d, f, TZ, {}),
        "compare (Oct vs Nov)": lambda d, f: compare_report(d, f, before, after, TZ, {}),
        "caller NUMBER": lambda d, f: caller_report(d, caller, f, TZ, {}),
        "summary --campaign google-search": lambda d, f: summary_report(
            d, Filters(f.since, f.until, campaign=("google-search",)), "day", TZ, {}
        ),
    }


def _time(db_path: Path, build: Build, filters: Filters, repeat: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds of open + query + render over ``repeat`` runs."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        with ReportDb.open(db_path) as db:
            report = build(db, filters)[0]
            render(report, "table", Console(file=io.StringIO(), width=200))
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


async def _migrate(path: Path) -> None:
    """Bring a reused database up to the current schema, with statistics as generate() leaves.

    A migration that rebuilds an index drops its statistics; without them SQLite walks a
    grouped index whole where it skip-scanned it by time. So a migrated copy is analyzed again.
    """
    with sqlite3.connect(path) as db:
        (before,) = db.execute("PRAGMA user_version").fetchone()
    conn = await open_writer(path)
    try:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        if row is not None and row[0] != before:
            await conn.execute("ANALYZE main")
    finally:
        await conn.close()


def _loop(path: Path, seconds: float) -> int:
    """Run every report over the whole year, back to back, for ``seconds``; print a JSON line."""
    builds = list(reports("+12125550100").values())
    deadline, ran = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        _time(path, builds[ran % len(builds)], Filters(), 1)
        ran += 1
    print(json.dumps({"reports_run": ran, "seconds": seconds}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="default var/bench-<rows>.sqlite3")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", action="append", default=[], help="time only reports whose name contains this"
    )
    parser.add_argument(
        "--loop", type=float, default=0.0, help="run the reports back to back for this many "
        "seconds on an existing --db and print how many ran (for the writer-latency bench)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from callflow import logs

    logs.configure("console", "warning")  # the table only, not the store's log lines
    path = args.db or Path(f"var/bench-{args.rows}.sqlite3")
    if args.loop:
        return _loop(path, args.loop)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(path, args.rows, seed=args.seed)
        print(f"generated {args.rows:,} calls in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    else:
        asyncio.run(_migrate(path))
    with ReportDb.open(path) as db:
        count = db.one("SELECT count(*) FROM calls")[0]
        caller = db.one(
            "SELECT ani_e164 FROM calls WHERE ani_e164 IS NOT NULL GROUP BY ani_e164 "
            "ORDER BY count(*) DESC LIMIT 1"
        )[0]
    end = DEFAULT_END.timestamp()
    windows = {"all (1 year)": Filters(), "last 30 days": Filters(end - 30 * 86400, end)}
    print(f"{count:,} calls in {path} (America/New_York buckets; best of {args.repeat})\n")
    print("| report | " + " | ".join(f"{w} wall s | CPU s" for w in windows) + " |")
    print("|---|" + "---:|---:|" * len(windows))
    for name, build in reports(caller).items():
        if args.only and not any(part in name for part in args.only):
            continue
        cells = []
        for filters in windows.values():
            wall, cpu = _time(path, build, filters, args.repeat)
            cells.append(f"{wall:.3f} | {cpu:.3f}")
        print(f"| `{name}` | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
