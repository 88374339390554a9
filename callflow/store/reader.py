"""Report reads on a separate read-only connection (in WAL mode it never blocks the writer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Final, Self, cast

import aiosqlite

from callflow.store.connection import StrPath, open_reader
from callflow.store.errors import AmbiguousUniqueid
from callflow.store.schema import (
    ATTEMPT_COLUMNS,
    CALL_COLUMNS,
    Row,
    attempt_row,
    call_row,
    quoted,
)

__all__ = ["CdrReader"]

_CALLS: Final = f"SELECT {', '.join(CALL_COLUMNS)} FROM calls"
_ATTEMPTS: Final = f"SELECT {quoted(ATTEMPT_COLUMNS)} FROM attempts"
#: Sorts after every string that starts with a given prefix (BINARY collation, UTF-8).
_PREFIX_END: Final = "\U0010ffff"
#: A chunk's uniqueids are bound as parameters; stay well under SQLite's limit (32766).
_MAX_CHUNK: Final = 10_000


def _where(since: float | None, until: float | None, campaign: str | None) -> tuple[str, list[Any]]:
    """SQL WHERE clause and parameters for the report filters (since inclusive, until exclusive)."""
    terms: list[str] = []
    params: list[Any] = []
    if since is not None:
        terms.append("started_at >= ?")
        params.append(since)
    if until is not None:
        terms.append("started_at < ?")
        params.append(until)
    if campaign is not None:
        terms.append("campaign = ?")
        params.append(campaign)
    return (" WHERE " + " AND ".join(terms) if terms else ""), params


class CdrReader:
    """Read calls and their attempts; open with ``await CdrReader.open(path)``."""

    def __init__(self, conn: aiosqlite.Connection, *, chunk_size: int) -> None:
        """Wrap an opened read-only connection (use ``open``)."""
        self._conn = conn
        #: Rows fetched per round trip while streaming (memory stays bounded by this).
        self.chunk_size = chunk_size

    @classmethod
    async def open(cls, path: StrPath, *, chunk_size: int = 500) -> Self:
        """Open an existing CDR database read-only."""
        if not 1 <= chunk_size <= _MAX_CHUNK:
            raise ValueError(f"chunk_size must be within 1..{_MAX_CHUNK}")
        return cls(await open_reader(path), chunk_size=chunk_size)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._conn.close()

    async def __aenter__(self) -> Self:
        """Use the reader as an async context manager (closed on exit)."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the reader."""
        await self.close()

    async def get_call(self, uniqueid_or_prefix: str) -> Row | None:
        """One call with ``attempts`` (by seq), by exact uniqueid or an unambiguous prefix."""
        if not uniqueid_or_prefix:
            raise ValueError("empty uniqueid")
        # One statement, so one snapshot: the exact match first, else up to two prefix matches.
        rows = await self._fetchall(
            _CALLS + " WHERE uniqueid >= ? AND uniqueid < ? "
            "ORDER BY uniqueid = ? DESC, uniqueid LIMIT 2",
            (uniqueid_or_prefix, uniqueid_or_prefix + _PREFIX_END, uniqueid_or_prefix),
        )
        if len(rows) > 1 and rows[0][0] != uniqueid_or_prefix:
            raise AmbiguousUniqueid(
                f"{uniqueid_or_prefix!r} matches several calls ({rows[0][0]}, {rows[1][0]}, ...)"
            )
        if not rows:
            return None
        call = call_row(rows[0])
        call["attempts"] = (await self._attempts([call["uniqueid"]]))[call["uniqueid"]]
        return call

    async def iter_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        campaign: str | None = None,
        with_attempts: bool = True,
    ) -> AsyncIterator[Row]:
        """Stream calls ordered by started_at, ``chunk_size`` rows per fetch (constant memory)."""
        where, params = _where(since, until, campaign)
        async with self._conn.execute(_CALLS + where + " ORDER BY started_at", params) as cur:
            while True:
                rows = [call_row(values) for values in await cur.fetchmany(self.chunk_size)]
                if not rows:
                    return
                if with_attempts:
                    attempts = await self._attempts([row["uniqueid"] for row in rows])
                    for row in rows:
                        row["attempts"] = attempts[row["uniqueid"]]
                for row in rows:
                    yield row

    async def count_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        campaign: str | None = None,
    ) -> int:
        """How many calls match the filters of ``iter_calls``."""
        where, params = _where(since, until, campaign)
        rows = await self._fetchall("SELECT count(*) FROM calls" + where, params)
        return int(rows[0][0])

    async def _attempts(self, uniqueids: Sequence[str]) -> dict[str, list[Row]]:
        """Attempts of a bounded set of calls (at most one chunk), grouped and ordered by seq."""
        out: dict[str, list[Row]] = {uid: [] for uid in uniqueids}
        marks = ", ".join("?" * len(uniqueids))
        sql = f"{_ATTEMPTS} WHERE uniqueid IN ({marks}) ORDER BY uniqueid, seq"
        for values in await self._fetchall(sql, uniqueids):
            row = attempt_row(values)
            out[row["uniqueid"]].append(row)
        return out

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a query whose result is small and bounded."""
        return cast(list[tuple[Any, ...]], await self._conn.execute_fetchall(sql, params))
