"""Streaming CDR export: CSV, a JSON array, or JSON lines, written row by row as read."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from callflow.store.reader import CdrReader
from callflow.store.schema import ATTEMPT_COLUMNS, BOOL_COLUMNS, CALL_COLUMNS, TIME_COLUMNS, Row

__all__ = ["CSV_COLUMNS", "ExportFormat", "attempts_summary", "export_calls", "iso_utc", "json_row"]

ExportFormat = Literal["csv", "json", "jsonl"]
#: CSV header: every column of ``calls``, then the compact ``attempts`` summary.
CSV_COLUMNS: Final = (*CALL_COLUMNS, "attempts")
_NESTED_ATTEMPT_COLUMNS: Final = tuple(c for c in ATTEMPT_COLUMNS if c != "uniqueid")


def iso_utc(epoch: float) -> str:
    """Render UTC epoch seconds as ISO-8601 with milliseconds and a 'Z' (truncated to the ms)."""
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def attempts_summary(attempts: Iterable[Row]) -> str:
    """Compact attempts column: ``target:RESULT:<ring seconds>s`` joined by ';'."""
    return ";".join(f"{a['target']}:{a['result']}:{a['ring_seconds']:.1f}s" for a in attempts)


def _json_value(name: str, value: Any) -> Any:
    """A column value as exported in JSON (times ISO-8601, route_reason decoded if valid JSON)."""
    if value is None:
        return None
    if name in TIME_COLUMNS:
        return iso_utc(value)
    if name == "route_reason":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def json_row(row: Row) -> dict[str, Any]:
    """A call row (with ``attempts``) as the JSON object exported for it."""
    out = {name: _json_value(name, row[name]) for name in CALL_COLUMNS}
    out["attempts"] = [
        {name: _json_value(name, a[name]) for name in _NESTED_ATTEMPT_COLUMNS}
        for a in row.get("attempts", ())
    ]
    return out


def _csv_value(name: str, value: Any) -> Any:
    """A column value as written to CSV (empty for NULL, true/false, ISO-8601 times)."""
    if value is None:
        return ""
    if name in BOOL_COLUMNS:
        return "true" if value else "false"
    if name in TIME_COLUMNS:
        return iso_utc(value)
    return value


async def export_calls(
    reader: CdrReader,
    out: TextIO,
    fmt: ExportFormat,
    *,
    since: float | None = None,
    until: float | None = None,
    campaign: str | None = None,
) -> int:
    """Write the matching calls to ``out`` as they stream from ``reader``; return the row count."""
    if fmt not in ("csv", "json", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}")
    rows = reader.iter_calls(since=since, until=until, campaign=campaign)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        async for row in rows:
            values = [_csv_value(name, row[name]) for name in CALL_COLUMNS]
            values.append(attempts_summary(row["attempts"]))
            writer.writerow(values)
            count += 1
    elif fmt == "jsonl":
        async for row in rows:
            out.write(json.dumps(json_row(row), ensure_ascii=False) + "\n")
            count += 1
    else:
        out.write("[")
        async for row in rows:
            out.write(",\n" if count else "\n")
            out.write(json.dumps(json_row(row), ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
    return count
