"""Schema, migrations, pragmas and query plans of the CDR database."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import aiosqlite
import pytest
import structlog
from cdr_samples import OpenStore, make_start

from callflow.reports.db import Filters, ReportDb
from callflow.reports.missed import missed
from callflow.store import (
    SCHEMA_VERSION,
    CdrReader,
    CdrStore,
    SchemaError,
    SchemaTooNew,
)
from callflow.store.migrations import MIGRATIONS, Migration, migrate, rewrite_status_check
from callflow.store.schema import (
    APPLICATION_ID,
    ATTEMPT_COLUMNS,
    CALL_COLUMNS,
    FINISH_CALL,
    INSERT_ATTEMPT,
    INSERT_CALL,
    LAST_ANSWERED,
    LAST_SEEN,
    LINK_COLUMNS,
    RELINK_ANSWERED,
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
        # With no index of answered calls (migration 10), a caller's own calls.
        (LAST_ANSWERED, ("+12125550100",), "calls_ani_started_at"),
        (RELINK_ANSWERED, ("+12125550100", 0), "calls_ani_started_at"),
    ],
)
async def test_hot_queries_use_their_index(
    store: CdrStore, db_path: Path, sql: str, params: tuple[object, ...], index: str
) -> None:
    with _plain(db_path) as db:
        plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert index in plan
    assert "TEMP B-TREE" not in plan


async def _ephemeral(conn: aiosqlite.Connection, sql: str) -> int:
    """How many temporary b-trees one execution of ``sql`` builds (OpenEphemeral opcodes)."""
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    count = max(numbered) if numbered else sql.count("?")
    rows = await conn.execute_fetchall("EXPLAIN " + sql, [None] * count)
    return sum(row[1] == "OpenEphemeral" for row in rows)


async def test_call_writes_build_no_temporary_btrees(open_store: OpenStore) -> None:
    # An IN list of constants in a CHECK or a partial index's condition makes SQLite build a
    # b-tree of the constants for every row written (schema 7 had two such lists).
    store = await open_store()  # the writer's connection, as migrated (and then reopened)
    for sql in (INSERT_CALL, INSERT_ATTEMPT, FINISH_CALL):
        assert await _ephemeral(store._conn, sql) == 0, sql


async def _v7_with_calls(path: Path) -> None:
    """A schema-7 database holding calls of every disposition (as callflow 7 wrote them)."""
    async with aiosqlite.connect(path) as conn:
        await migrate(conn, MIGRATIONS[:7])
    with sqlite3.connect(path) as db:
        for i, disposition in enumerate(
            ["answered", "busy", "no-answer", "failed", "rejected", "abandoned", "voicemail"] * 3
        ):
            db.execute(
                "INSERT INTO calls (uniqueid, linkedid, channel, started_at, ani_raw, ani_e164, "
                "ani_valid, ani_anonymous, dnis, number_known, repeat_caller, node, status, "
                "updated_at, disposition) "
                "VALUES (?, ?, 'c', ?, 'x', ?, 1, 0, 'd', 1, 0, 'n', 'completed', 0, ?)",
                (f"u{i}", f"u{i}", 1_700_000_000.0 + i, f"+1212555000{i % 4}", disposition),
            )


async def test_migration_8_keeps_calls_checks_and_the_missed_report(tmp_path: Path) -> None:
    old, new = tmp_path / "v7.sqlite3", tmp_path / "v8.sqlite3"
    await _v7_with_calls(old)
    shutil.copy(old, new)
    store = await CdrStore.open(new)
    await store.close()
    with _plain(new) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == 21
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            db.execute("UPDATE calls SET status = 'bogus' WHERE uniqueid = 'u0'")
        indexed = db.execute(
            "SELECT count(*) FROM calls INDEXED BY calls_missed WHERE disposition = 'busy'"
        ).fetchone()[0]
        assert indexed == 3  # the partial index holds the missed calls
    everything = Filters(None, None)
    with ReportDb.open(old) as before, ReportDb.open(new) as after:
        assert (before.version, after.version) == (7, SCHEMA_VERSION)
        assert missed(before, everything) == missed(after, everything)
        listed, totals = missed(after, everything)
    assert len(listed) == 15 and sum(n for n, _ in totals.by_disposition.values()) == 15


def _calls_sql(path: Path) -> str:
    """The calls table's CREATE statement as stored."""
    with _plain(path) as db:
        return str(db.execute("SELECT sql FROM sqlite_master WHERE name = 'calls'").fetchone()[0])


async def test_status_check_rewrite_is_skipped_when_sqlite_refuses(tmp_path: Path) -> None:
    path = tmp_path / "v7.sqlite3"
    await _v7_with_calls(path)
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn)
        await conn.execute("PRAGMA query_only = ON")  # any refusal to write the schema
        with structlog.testing.capture_logs() as logs:
            assert await rewrite_status_check(conn) is False
        assert not conn.in_transaction
    assert [e["event"] for e in logs] == ["cdr_status_check_kept"]
    assert "status IN (" in _calls_sql(path)  # kept, and the database is used as it is
    store = await CdrStore.open(path)  # a writer that may rewrite it does so, once
    try:
        assert "status IN (" not in _calls_sql(path)
        assert await _ephemeral(store._conn, FINISH_CALL) == 0
        store.start_call(make_start(1))
        await store.flush()
    finally:
        await store.close()
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await rewrite_status_check(conn) is False  # nothing left to rewrite
