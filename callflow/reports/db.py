"""A read-only, synchronous SQLite connection for reports, and the report filters."""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from callflow.store.migrations import check_version
from callflow.store.schema import BUSY_TIMEOUT_MS

__all__ = ["MISSED", "TALLY_LIMIT", "Filters", "ReportDb", "fits", "tally", "untally"]

#: Dispositions counted as missed (the caller was not served); abandoned is counted apart.
MISSED: Final = ("busy", "no-answer", "failed", "rejected")
#: Above this many calls in the window, grouped reports walk a dimension-ordered index.
_LARGE_WINDOW: Final = 50_000
#: ``tally`` packs up to three counts into one 64-bit ``sum()``, 21 bits each: exact while a
#: group holds fewer rows than this (``fits``), else the report reruns with ``packed=False``.
TALLY_LIMIT: Final = 1 << 21


def tally(column: str, groups: Sequence[Sequence[str]], *, packed: bool = True) -> str:
    """SQL counting rows whose ``column`` is in each value group (``untally`` reads it back).

    Packed, one ``sum(CASE column WHEN …)`` counts up to three groups: a simple CASE and one
    aggregate cost a fraction of one ``total(column = …)`` per group over a million rows.
    """
    if not packed:
        counts = (" ".join(f"WHEN '{v}' THEN 1" for v in g) for g in groups)
        return ", ".join(f"count(CASE {column} {whens} END)" for whens in counts)
    if len(groups) > 3:
        raise ValueError("at most three groups share one packed sum")
    whens = " ".join(f"WHEN '{v}' THEN {TALLY_LIMIT**i}" for i, g in enumerate(groups) for v in g)
    return f"sum(CASE {column} {whens} ELSE 0 END)"


def untally(row: Sequence[Any], at: int, groups: int, *, packed: bool = True) -> tuple[Any, ...]:
    """``row`` with the ``tally`` at index ``at`` as ``groups`` separate counts."""
    if not packed:
        return tuple(row)
    value = int(row[at])
    counts = tuple((value >> (21 * i)) & (TALLY_LIMIT - 1) for i in range(groups))
    return (*row[:at], *counts, *row[at + 1 :])


def fits(rows: Sequence[Sequence[Any]], count_at: int) -> bool:
    """Whether every group's row count (at ``count_at``) is small enough for packed tallies."""
    return all(int(r[count_at]) < TALLY_LIMIT for r in rows)


@dataclass(frozen=True)
class Filters:
    """Which calls a report covers: start-time window (UTC epoch, until exclusive) and labels."""

    since: float | None = None
    until: float | None = None
    campaign: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def where(self, alias: str = "", *, time: bool = True) -> tuple[str, list[Any]]:
        """SQL condition (never empty) and parameters selecting the filtered calls."""
        col = f"{alias}." if alias else ""
        terms: list[str] = []
        params: list[Any] = []
        if time and self.since is not None:
            terms.append(f"{col}started_at >= ?")
            params.append(self.since)
        if time and self.until is not None:
            terms.append(f"{col}started_at < ?")
            params.append(self.until)
        for column, values in (
            ("campaign", self.campaign),
            ("source", self.source),
            ("final_target", self.target),
            ("state", self.state),
        ):
            if values:
                terms.append(f"{col}{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        return (" AND ".join(terms) or "1"), params

    @property
    def labels_only(self) -> bool:
        """Whether no label filter is set (only the time window)."""
        return not (self.campaign or self.source or self.target or self.state)

    def window(self, since: float | None, until: float | None) -> Filters:
        """The same label filters over another time window."""
        return Filters(since, until, self.campaign, self.source, self.target, self.state)


class ReportDb:
    """A read-only connection to a CDR database (never blocks the daemon's writer in WAL mode)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an opened connection (use ``open``)."""
        self.conn = conn
        self.path = path
        self.version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        self._indexes: frozenset[str] | None = None
        self._columns: dict[str, frozenset[str]] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open an existing CDR database read-only (schema version 1 or later)."""
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no CDR database at {file}")
        conn = sqlite3.connect(
            file.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        try:
            for pragma in (
                f"busy_timeout = {BUSY_TIMEOUT_MS}",
                "query_only = ON",
                "cache_size = -65536",
                "mmap_size = 1073741824",
                "temp_store = MEMORY",
            ):
                conn.execute(f"PRAGMA {pragma}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            app = int(conn.execute("PRAGMA application_id").fetchone()[0])
            check_version(version, app)
            if version < 1:
                raise FileNotFoundError(f"{file} holds no CDR tables yet")
        except BaseException:
            conn.close()
            raise
        return cls(conn, file)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Self:
        """Use as a context manager (closed on exit)."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return self.conn.execute(sql, params).fetchall()

    def tallied(
        self, sql: Callable[[bool], str], params: Sequence[Any], count_at: int
    ) -> tuple[list[tuple[Any, ...]], bool]:
        """Run a grouped query with packed tallies; again unpacked if a group is too big for them.

        ``sql(packed)`` builds the query; returns the rows and whether they are packed.
        """
        rows = self.all(sql(True), params)
        if fits(rows, count_at):
            return rows, True
        return self.all(sql(False), params), False

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The single row of an aggregate query."""
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None
        return tuple(row)

    def columns(self, table: str) -> frozenset[str]:
        """The column names of a table."""
        if table not in self._columns:
            rows = self.conn.execute(f"PRAGMA table_info({table})")
            self._columns[table] = frozenset(r[1] for r in rows)
        return self._columns[table]

    @property
    def links(self) -> bool:
        """Whether calls carry the caller links of schema 7 (prev_started_at, next_answered_at)."""
        return "prev_started_at" in self.columns("calls")

    def buckets(self, bounds: Sequence[float]) -> str:
        """Load consecutive spans [bounds[i], bounds[i+1]) into ``temp.report_buckets(id, s, e)``.

        Joined by range to a time index, one grouped pass fills every bucket in bucket order
        (no sort). Only the connection's own temp schema is written: the file stays read-only.
        """
        conn = self.conn
        conn.execute("PRAGMA query_only = OFF")
        try:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS report_buckets "
                "(id INTEGER PRIMARY KEY, s REAL NOT NULL, e REAL NOT NULL)"
            )
            conn.execute("DELETE FROM temp.report_buckets")
            conn.executemany(
                "INSERT INTO temp.report_buckets VALUES (?, ?, ?)",
                [(i, s, e) for i, (s, e) in enumerate(itertools.pairwise(bounds))],
            )
            conn.commit()
        finally:
            conn.execute("PRAGMA query_only = ON")
        return "temp.report_buckets"

    def index(self, name: str) -> str:
        """``INDEXED BY name`` when that index exists, else an empty string."""
        if self._indexes is None:
            rows = self.all("SELECT name FROM sqlite_master WHERE type = 'index'")
            self._indexes = frozenset(r[0] for r in rows)
        return f"INDEXED BY {name}" if name in self._indexes else ""

    def span(self, filters: Filters) -> tuple[float, float] | None:
        """The window actually covered: the filters' bounds, else the first/last call's time."""
        lo, hi = filters.since, filters.until
        if lo is None or hi is None:
            first, last = self.one(  # two lookups at the index's ends, not one scan
                "SELECT (SELECT min(started_at) FROM calls), (SELECT max(started_at) FROM calls)"
            )
            if first is None:
                return None
            lo = first if lo is None else lo
            hi = last + 1e-3 if hi is None else hi
        return (lo, hi) if hi > lo else None

    def walks(self, filters: Filters, grouped: str) -> list[tuple[str, str]]:
        """(``INDEXED BY`` clause, condition) pairs that together read every call of the window.

        A large window walks ``grouped``, which holds finished calls only (migration 9), then
        the calls in progress, by their own small index; a small one walks the time index.
        """
        if not self.large(filters):
            return [(self.index("calls_report_time"), "1")]
        return [
            (self.index(grouped), "disposition IS NOT NULL"),
            (self.index("calls_in_progress"), "status = 'in_progress'"),
        ]

    def large(self, filters: Filters) -> bool:
        """Whether the time window holds many calls (walk a grouped index, not the time one)."""
        where, params = Filters(filters.since, filters.until).where()
        (count,) = self.one(f"SELECT count(*) FROM calls WHERE {where}", params)
        return int(count) > _LARGE_WINDOW
