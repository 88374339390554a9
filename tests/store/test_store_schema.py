"""Schema, migrations, pragmas and query plans of the CDR database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest
from cdr_samples import OpenStore, make_start

from callflow.store import (
    SCHEMA_VERSION,
    CdrReader,
    CdrStore,
    SchemaError,
    SchemaTooNew,
)
from callflow.store.migrations import MIGRATIONS, Migration, migrate
from callflow.store.schema import (
    APPLICATION_ID,
    ATTEMPT_COLUMNS,
    CALL_COLUMNS,
    LAST_SEEN,
    LINK_COLUMNS,
)


def _plain(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, as an outside tool would open the file."""
    return sqlite3.connect(path)


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


async def test_migrates_an_empty_file(open_store: OpenStore, db_path: Path) -> None:
    await open_store()
    with _plain(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
            if not r[0].startswith("sqlite_autoindex")
        }
        calls = [r[1] for r in db.execute("PRAGMA table_info(calls)")]
        attempts = [r[1] for r in db.execute("PRAGMA table_info(attempts)")]
        fks = db.execute("PRAGMA foreign_key_list(attempts)").fetchall()
    assert tables == {"calls", "attempts", "directory", "state", "ledger"}
    assert {
        "calls_started_at",
        "calls_ani_started_at",
        "calls_campaign_started_at",
        "calls_in_progress",
        "attempts_started_at",
    } <= indexes
    # The records, the DML and the DDL agree column for column.
    # later steps append their columns; the caller links are derived, not part of a record
    assert sorted(calls) == sorted((*CALL_COLUMNS, *LINK_COLUMNS))
    assert tuple(attempts) == ATTEMPT_COLUMNS
    assert [(f[2], f[3], f[4]) for f in fks] == [("calls", "uniqueid", "uniqueid")]


async def test_writer_connection_pragmas(open_store: OpenStore) -> None:
    store = await open_store()
    for pragma, expected in (("foreign_keys", 1), ("synchronous", 1), ("busy_timeout", 5000)):
        rows = list(await store._conn.execute_fetchall(f"PRAGMA {pragma}"))
        assert rows[0][0] == expected, pragma


async def test_reopen_keeps_data_and_does_not_migrate_again(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    store.start_call(make_start(1))
    await store.close()
    store = await open_store()
    store.start_call(make_start(2))
    await store.close()
    with _plain(db_path) as db:
        assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == 2
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_newer_schema_is_refused_untouched(db_path: Path) -> None:
    with _plain(db_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="newer than this callflow knows"):
        await CdrStore.open(db_path)
    with pytest.raises(SchemaTooNew):
        await CdrReader.open(db_path)
    with _plain(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


async def test_foreign_database_is_refused(db_path: Path) -> None:
    with _plain(db_path) as db:
        db.execute("PRAGMA application_id = 1234")
    with pytest.raises(SchemaError, match="not a callflow CDR database"):
        await CdrStore.open(db_path)


async def test_failed_migration_rolls_back_entirely(db_path: Path) -> None:
    bad = (
        *MIGRATIONS,
        Migration(SCHEMA_VERSION + 1, "broken", ("CREATE TABLE extra (x)", "NOT SQL")),
    )
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(conn, bad)
        assert not conn.in_transaction
    with _plain(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


async def test_reader_needs_an_existing_current_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await CdrReader.open(tmp_path / "missing.sqlite3")
    sqlite3.connect(tmp_path / "empty.sqlite3").close()
    with pytest.raises(SchemaError, match="open it once with the daemon"):
        await CdrReader.open(tmp_path / "empty.sqlite3")


async def test_reader_is_read_only(store: CdrStore, reader: CdrReader) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await reader._conn.execute("DELETE FROM calls")


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (LAST_SEEN, ("+12125550100",), "calls_ani_started_at"),
        ("SELECT * FROM calls WHERE started_at >= ? ORDER BY started_at", (0,), "calls_started_at"),
        (
            "SELECT * FROM calls WHERE campaign = ? AND started_at >= ? ORDER BY started_at",
            ("x", 0),
            "calls_campaign_started_at",
        ),
        ("SELECT * FROM calls WHERE status = 'in_progress'", (), "calls_in_progress"),
    ],
)
async def test_hot_queries_use_their_index(
    store: CdrStore, db_path: Path, sql: str, params: tuple[object, ...], index: str
) -> None:
    with _plain(db_path) as db:
        plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert index in plan
    assert "TEMP B-TREE" not in plan
