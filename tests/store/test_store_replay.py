"""Replaying the rows the CDR writer logged as lost: the database ends as if they were written."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from cdr_samples import make_end, make_start
from typer.testing import CliRunner

import callflow.store.writer as writer_module
from callflow.cli import app
from callflow.store import SCHEMA_VERSION, CdrStore, StoreError
from callflow.store.replay import replay


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def _lose_two_calls(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[str]]:
    """Two calls whose batch stays unwritable past its retries: their log lines, as JSON text."""
    store = await CdrStore.open(db_path, batch_interval=0.01)
    real = store._write_batch

    async def broken(batch: list[Any]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer_module, "_TX_BACKOFF", 0.001)
    monkeypatch.setattr(writer_module, "_TX_RETRY_FOR", 0.05)
    monkeypatch.setattr(store, "_write_batch", broken)
    calls = [make_start(1), make_start(2)]
    with structlog.testing.capture_logs() as logs:
        for call in calls:
            store.start_call(call)
        for call in calls:
            with pytest.raises(StoreError):
                await store.finish_call(make_end(call))
    monkeypatch.setattr(store, "_write_batch", real)
    await store.close()
    lines = ["not json", json.dumps({"event": "call.end", "uniqueid": calls[0].uniqueid})]
    lines += [json.dumps(e, default=repr) for e in logs]  # as the JSON renderer writes them
    return lines, [c.uniqueid for c in calls]


async def test_replaying_lost_rows_writes_the_calls(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, uniqueids = await _lose_two_calls(db_path, monkeypatch)
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(0,)]
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        done = replay(conn, lines)
        assert (done.written, done.refused) == (4, [])
        again = replay(conn, lines)  # already there: refused, nothing changed
    assert again.written == 0 and len(again.refused) == 4
    assert _rows(db_path, "SELECT uniqueid, status FROM calls ORDER BY 1") == [
        (u, "completed") for u in sorted(uniqueids)
    ]


async def test_replay_runs_only_the_writers_statements(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, _ = await _lose_two_calls(db_path, monkeypatch)
    forged = {"event": "cdr_row_lost", "op": "start_call", "uniqueid": "x",
              "sql": "DROP TABLE calls", "params": []}  # fmt: skip
    odd = {"event": "cdr_row_lost", "op": "drop_table", "uniqueid": "y", "params": []}
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        done = replay(conn, [json.dumps(forged), json.dumps(odd), *lines])
    assert done.written == 4
    assert [(n, u) for n, u, _ in done.refused] == [(1, "x"), (2, "y")]
    assert "not a CDR row" in done.refused[1][2]
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(2,)]


async def test_cdr_replay_command(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, _ = await _lose_two_calls(db_path, monkeypatch)
    log = tmp_path / "callflow.log"
    log.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["cdr", "replay", str(log), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "4 rows written, 0 refused" in result.output
    assert _rows(db_path, "SELECT count(*) FROM calls WHERE status = 'completed'") == [(2,)]
    result = runner.invoke(app, ["cdr", "replay", str(log), "--db", str(db_path)])
    assert result.exit_code == 1
    assert "0 rows written, 4 refused" in result.output


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda db: sqlite3.connect(db).close(), "open it once with the daemon"),
        (lambda db: _set_version(db, SCHEMA_VERSION + 1), "newer than this callflow knows"),
        (lambda db: db.write_bytes(b"not a database, but long enough " * 64), "not a database"),
    ],
    ids=["older-schema", "newer-schema", "not-sqlite"],
)
async def test_cdr_replay_refuses_a_database_of_another_schema_before_writing(
    make: Callable[[Path], None], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, _ = await _lose_two_calls(tmp_path / "lost.sqlite3", monkeypatch)
    log = tmp_path / "callflow.log"
    log.write_text("\n".join(lines) + "\n")
    other = tmp_path / "other.sqlite3"
    make(other)
    before = other.read_bytes()
    result = CliRunner().invoke(app, ["cdr", "replay", str(log), "--db", str(other)])
    assert result.exit_code == 2, result.output
    assert says in result.output and "nothing written" in result.output
    assert "refused" not in result.output  # no row was tried
    assert other.read_bytes() == before


def _set_version(db: Path, version: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
