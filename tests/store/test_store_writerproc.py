"""The CDR writer process: it commits the batches, survives signals, and is replaced if it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import structlog
from cdr_samples import OpenStore, make_attempt, make_end, make_start

from callflow.store import StoreError
from callflow.store import writer as writer_module
from callflow.store.writerproc import WriterGone, WriterProcess


def _count(path: Path, sql: str) -> int:
    """One number from the committed database, through a fresh connection."""
    with sqlite3.connect(path) as db:
        return int(db.execute(sql).fetchone()[0])


def _alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_batches_are_committed_by_a_child_process(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    pid = store._child.pid
    assert pid is not None and pid != os.getpid() and _alive(pid)
    call = make_start(1)
    store.start_call(call)
    store.add_attempt(make_attempt(call))
    await store.finish_call(make_end(call))
    assert _count(db_path, "SELECT count(*) FROM calls WHERE status = 'completed'") == 1
    assert _count(db_path, "SELECT count(*) FROM attempts") == 1
    await store.close()
    assert not _alive(pid)  # close reaps the child


async def test_the_child_ignores_sigterm_and_sigint(open_store: OpenStore, db_path: Path) -> None:
    """A service manager signalling the whole group must not kill the writer before the drain."""
    store = await open_store()
    pid = store._child.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.2)
    call = make_start(1)
    store.start_call(call)
    await store.finish_call(make_end(call))
    assert store._child.spawns == 1 and store._child.pid == pid
    assert _count(db_path, "SELECT count(*) FROM calls") == 1


async def test_a_killed_child_is_replaced_and_its_batch_retried(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_TX_BACKOFF", 0.001)
    store = await open_store()
    first = store._child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.1)
    calls = [make_start(i) for i in range(1, 21)]
    with structlog.testing.capture_logs() as logs:
        for call in calls:
            store.start_call(call)
        await asyncio.gather(*(store.finish_call(make_end(c)) for c in calls))
    assert store._child.spawns == 2 and store._child.pid not in (None, first)
    retried = [e for e in logs if e["event"] == "cdr_batch_retry_later"]
    assert retried and "writer process exited" in retried[0]["error"]
    assert _count(db_path, "SELECT count(*) FROM calls WHERE status = 'completed'") == 20


async def test_a_child_that_cannot_start_fails_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await WriterProcess.start(tmp_path / "no-such-dir" / "cdr.sqlite3")


async def test_a_child_that_keeps_dying_loses_the_batch_loudly(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_TX_BACKOFF", 0.001)
    store = await open_store()

    async def gone(writes: object) -> object:
        raise WriterGone("the CDR writer process exited (status -9)")

    monkeypatch.setattr(store._child, "write", gone)
    call = make_start(1)
    with structlog.testing.capture_logs() as logs:
        store.start_call(call)
        with pytest.raises(StoreError, match="writer process exited"):
            await store.finish_call(make_end(call))
    assert [e["event"] for e in logs].count("cdr_batch_lost") == 1
