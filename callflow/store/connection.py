"""Opening the writer (read-write, migrated, WAL) and reader (read-only) SQLite connections."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from callflow.store.errors import SchemaError
from callflow.store.migrations import (
    SCHEMA_VERSION,
    check_current,
    check_version,
    migrate,
    read_version,
    rewrite_status_check,
)
from callflow.store.schema import BUSY_TIMEOUT_MS, PRAGMAS

__all__ = ["in_thread", "open_reader", "open_writer"]

StrPath = str | os.PathLike[str]
T = TypeVar("T")


def _null(value: None) -> None:
    """Bind None as NULL (what sqlite3 does anyway, once its search for an adapter fails)."""
    return value


# sqlite3 searches for an adapter for every parameter that is not exactly an int, float or str;
# for None and bool the search fails by raising and clearing an AttributeError (with its message
# formatted), about half a microsecond each. A call's CDR rows bind about 15 of them. Registered
# adapters are found at once, and store the same values: NULL, and 1 or 0.
sqlite3.register_adapter(type(None), _null)
sqlite3.register_adapter(bool, int)


async def open_writer(path: StrPath) -> aiosqlite.Connection:
    """Open (creating if needed) a CDR database read-write: pragmas, WAL, migrations applied.

    A connection that changed the schema is replaced by a fresh one: a connection keeps the
    schema it parsed (the status CHECK is rewritten in place, see ``rewrite_status_check``).
    """
    conn = await _connect_writer(path)
    try:
        version, _ = await read_version(conn)
        await migrate(conn)
        rewritten = await rewrite_status_check(conn)
    except BaseException:
        await conn.close()
        raise
    if version == SCHEMA_VERSION and not rewritten:
        return conn
    await conn.close()
    return await _connect_writer(path)


async def _connect_writer(path: StrPath) -> aiosqlite.Connection:
    """Connect read-write with the writer's pragmas in WAL mode, refusing an unknown schema."""
    conn = await aiosqlite.connect(os.fspath(path), isolation_level=None)
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        check_version(*await read_version(conn))  # refuse before changing anything
        async with conn.execute("PRAGMA journal_mode = WAL") as cur:
            mode = await cur.fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise SchemaError(f"{path}: could not switch to WAL mode (got {mode!r})")
    except BaseException:
        await conn.close()
        raise
    return conn


async def in_thread(conn: aiosqlite.Connection, work: Callable[..., T], /, *args: Any) -> T:
    """Run ``work(sqlite3_connection, *args)`` on the connection's own thread, in one trip.

    Each aiosqlite statement is a trip to the connection's thread and back: a thread wake-up
    and a loop wake-up, and on the daemon's one core two context switches. The CDR writer's
    batches are several statements, so they go as one function. aiosqlite has no public way
    to do this; ``_execute`` and ``_conn`` are the ones its own methods use (pinned: <0.23).
    """
    return await conn._execute(work, conn._conn, *args)  # type: ignore[no-untyped-call,no-any-return]


def _read_only_uri(path: StrPath) -> str:
    """The ``file:`` URI opening an existing database read-only."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no CDR database at {file}")
    return file.resolve().as_uri() + "?mode=ro"


async def open_reader(path: StrPath) -> aiosqlite.Connection:
    """Open an existing, current CDR database read-only."""
    file = Path(path)
    uri = _read_only_uri(path)
    conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA query_only = ON")
        try:
            check_current(*await read_version(conn))
        except SchemaError as exc:
            raise type(exc)(f"{file}: {exc}") from None
    except BaseException:
        await conn.close()
        raise
    return conn
