"""Report output: a report is sections of typed columns, rendered as rich tables, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from rich.console import Console
from rich.table import Table

__all__ = ["FORMATS", "Column", "Format", "Report", "Section", "render", "render_table"]

Format: TypeAlias = Literal["table", "csv", "json"]
FORMATS: Final[tuple[Format, ...]] = ("table", "csv", "json")
#: Sections longer than this are printed as plain aligned text instead of a rich table.
PLAIN_ABOVE: Final = 300
#: Column kinds: how a value is shown in a table (CSV and JSON keep the raw value).
Kind: TypeAlias = Literal["text", "int", "pct", "sec", "num", "money", "change"]


@dataclass(frozen=True)
class Column:
    """One column: key in the row dicts, header, and how to show it."""

    key: str
    header: str
    kind: Kind = "int"
    table: bool = True  # shown in tables (CSV and JSON have every column)


@dataclass
class Section:
    """One table of a report; ``grid`` = (row key, column key, value key) shows it pivoted."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    grid: tuple[str, str, str] | None = None
    show: Literal["all", "table", "data"] = "all"  # where the section appears


@dataclass
class Report:
    """A finished report: its name, the parameters it ran with, its sections and notes."""

    name: str
    params: dict[str, Any]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


def _int(value: Any) -> str:
    """An ``int`` cell: thousands separators for integers."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _num(value: Any) -> str:
    """A ``num`` cell: two decimals for floats, separators for integers."""
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


#: How each column kind shows a value that is neither None nor a bool.
_SHOW: Final[dict[str, Callable[[Any], str]]] = {
    "pct": lambda v: f"{v * 100:.1f}%",
    "sec": lambda v: f"{v:.1f}",
    "num": _num,
    "money": lambda v: f"{v:,.2f}",
    "change": lambda v: f"{v:+.1%}",
    "int": _int,
    "text": str,
}


def _cell(value: Any, kind: Kind) -> str:
    """A value as shown in a table."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _SHOW[kind](value)


def _plain(value: Any) -> Any:
    """A value for CSV/JSON: floats rounded to 4 decimals."""
    return round(value, 4) if isinstance(value, float) else value


def render_table(report: Report, console: Console) -> None:
    """Print a report as rich tables with its notes."""
    for section in report.sections:
        if section.show == "data":
            continue
        if section.grid:
            _grid(section, console)
            continue
        columns = [c for c in section.columns if c.table]
        if len(section.rows) > PLAIN_ABOVE:
            _plain_table(section, columns, console)
            continue
        table = Table(title=section.title, title_justify="left")
        for col in columns:
            table.add_column(col.header, justify="left" if col.kind == "text" else "right")
        for row in section.rows:
            style = "bold" if row.get("_total") else None
            kinds = [("pct" if row.get("_pct") and c.kind == "num" else c.kind) for c in columns]
            table.add_row(
                *(_cell(row.get(c.key), k) for c, k in zip(columns, kinds, strict=True)),
                style=style,
            )
        if not section.rows:
            table.caption = "no calls"
        console.print(table)
    for note in report.notes:
        console.print(f"• {note}", highlight=False)


def _plain_table(section: Section, columns: list[Column], console: Console) -> None:
    """Print a long section as aligned plain text (rich tables take ~ms per row)."""
    cells = [[c.header for c in columns]]
    plain = [(c.key, c.kind) for c in columns]
    pct = [(c.key, "pct" if c.kind == "num" else c.kind) for c in columns]
    for row in section.rows:
        get = row.get
        cells.append([_cell(get(key), kind) for key, kind in (pct if get("_pct") else plain)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [section.title]
    for r in cells:
        parts = [
            v.ljust(w) if c.kind == "text" else v.rjust(w)
            for v, w, c in zip(r, widths, columns, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(2, "  ".join("-" * w for w in widths))
    if console.is_terminal:
        console.out("\n".join(lines), highlight=False)
    else:  # a pipe or file: plain text as is (rich would re-measure a million characters)
        console.file.write("\n".join(lines) + "\n")


def _grid(section: Section, console: Console) -> None:
    """Print a section pivoted: one row per ``grid[0]`` value, one column per ``grid[1]``."""
    row_key, col_key, value_key = section.grid or ("", "", "")
    rows: dict[Any, dict[Any, Any]] = {}
    cols: list[Any] = []
    for r in section.rows:
        rows.setdefault(r[row_key], {})[r[col_key]] = r[value_key]
        if r[col_key] not in cols:
            cols.append(r[col_key])
    header = next((c.header for c in section.columns if c.key == value_key), value_key)
    table = Table(title=f"{section.title}: {header}", title_justify="left", padding=(0, 0))
    table.add_column("")
    for c in cols:
        table.add_column(str(c), justify="right", min_width=4)
    peak = max((v for vals in rows.values() for v in vals.values()), default=0) or 1
    for label, vals in rows.items():
        cells = []
        for c in cols:
            v = vals.get(c, 0)
            shade = int(4 * v / peak)
            style = ("dim", "", "yellow", "bold yellow", "bold red")[shade]
            cells.append(f"[{style}]{v}[/]" if style else str(v))
        table.add_row(str(label), *cells)
    console.print(table)


def render(report: Report, fmt: Format, console: Console | None = None) -> str:
    """The report as text: ``table`` (rich, printed when a console is given), CSV or JSON."""
    if fmt == "json":
        doc: dict[str, Any] = {"report": report.name, "params": report.params}
        for section in report.sections:
            if section.show != "table":
                doc[section.name] = [_json_row(section, row) for row in section.rows]
        doc["notes"] = report.notes
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        sections = [s for s in report.sections if s.show != "table"]
        for i, section in enumerate(sections):
            if len(sections) > 1:
                if i:
                    buf.write("\n")
                buf.write(f"# {section.name}\n")
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow([c.key for c in section.columns])
            for row in section.rows:
                writer.writerow(
                    [
                        "" if row.get(c.key) is None else _plain(row.get(c.key))
                        for c in section.columns
                    ]
                )
        return buf.getvalue()
    console = console or Console(width=200, record=True, force_terminal=False)
    render_table(report, console)
    return console.export_text() if console.record else ""


def _json_row(section: Section, row: Mapping[str, Any]) -> dict[str, Any]:
    """One row for JSON: the section's columns, floats rounded."""
    return {c.key: _plain(row.get(c.key)) for c in section.columns}


def rows_of(report: Report, name: str) -> Sequence[dict[str, Any]]:
    """The rows of a named section (convenience for tests and charts)."""
    return next(s.rows for s in report.sections if s.name == name)
