"""The batched single writer: round trips, durability, batching, bad rows, restart, repeats."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import structlog
from cdr_samples import T0, OpenStore, make_attempt, make_end, make_start

from callflow.store import (
    AmbiguousUniqueid,
    CallEnd,
    CallStart,
    CdrReader,
    CdrStore,
    DialAttempt,
    RowRejected,
    StoreClosed,
    StoreError,
    UnknownCall,
    schema,
)
from callflow.store import writer as writer_module
from callflow.store.replay import replay


def _rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Query the file through a fresh plain sqlite3 connection (what is committed on disk)."""
    with sqlite3.connect(path) as db:
        return db.execute(sql, params).fetchall()


def _fields(row: dict[str, Any], record: type[Any]) -> dict[str, Any]:
    """The subset of a row that a record type holds."""
    return {f.name: row[f.name] for f in dataclasses.fields(record)}


async def test_round_trip_keeps_every_field_exactly(
    store: CdrStore, reader: CdrReader, db_path: Path
) -> None:
    call = make_start(7, caller_name='DOE, "JOHN" ☎', started_at=T0 + 0.123456789)
    attempts = [
        make_attempt(call, 1),
        make_attempt(
            call,
            2,
            answered_at=T0 + 9.5,
            result="ANSWER",
            ring_seconds=2.0,
            talk_seconds=60.25,
            hangup_cause=None,
        ),
    ]
    end = make_end(call)
    store.start_call(call)
    for attempt in reversed(attempts):
        store.add_attempt(attempt)
    await store.finish_call(end)

    row = await reader.get_call(call.uniqueid)
    assert row is not None
    assert CallStart(**_fields(row, CallStart)) == call
    assert CallEnd(**_fields(row, CallEnd)) == end
    assert [DialAttempt(**a) for a in row["attempts"]] == attempts  # ordered by seq
    assert row["status"] == "completed"
    assert isinstance(row["ani_valid"], bool) and isinstance(row["number_known"], bool)
    assert set(row) == {*dataclasses.asdict(call), *dataclasses.asdict(end), "status"} | {
        "updated_at",
        "attempts",
        "recording_bytes",
    }


async def test_in_progress_row_has_no_end_yet(store: CdrStore, reader: CdrReader) -> None:
    call = make_start(1)
    store.start_call(call)
    await store.flush()
    row = await reader.get_call(call.uniqueid)
    assert row is not None
    assert row["status"] == "in_progress"
    assert row["ended_at"] is None and row["disposition"] is None
    assert row["attempts"] == []


async def test_get_call_by_prefix(store: CdrStore, reader: CdrReader) -> None:
    for uid in ("1716900000.17", "1716900000.170", "1716900001.5"):
        store.start_call(make_start(1, uniqueid=uid, linkedid=uid))
    await store.flush()
    assert (await reader.get_call("1716900001"))["uniqueid"] == "1716900001.5"  # type: ignore[index]
    assert (await reader.get_call("1716900000.17"))["uniqueid"] == "1716900000.17"  # type: ignore[index]
    with pytest.raises(AmbiguousUniqueid):
        await reader.get_call("1716900000")
    assert await reader.get_call("999") is None
    with pytest.raises(ValueError):
        await reader.get_call("")


async def test_finish_call_is_on_disk_when_it_returns(open_store: OpenStore, db_path: Path) -> None:
    store = await open_store(batch_interval=0.05)
    call = make_start(1)
    store.start_call(call)
    store.add_attempt(make_attempt(call))
    await store.finish_call(make_end(call))
    # No flush, no close: another connection already sees the committed row and attempt.
    assert _rows(db_path, "SELECT status, disposition FROM calls") == [("completed", "answered")]
    assert _rows(db_path, "SELECT count(*) FROM attempts") == [(1,)]


def test_finished_calls_survive_kill_9(db_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from cdr_samples import make_end, make_start
        from callflow.store import CdrStore

        async def main():
            store = await CdrStore.open({str(db_path)!r}, batch_interval=0.05)
            calls = [make_start(i) for i in range(1, 51)]
            for call in calls:
                store.start_call(call)
            await asyncio.gather(*(store.finish_call(make_end(c)) for c in calls[:40]))
            store.start_call(make_start(99))  # queued, not yet committed
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert os.path.exists(f"{db_path}-wal")  # the commits live in the WAL, never checkpointed
    rows = _rows(db_path, "SELECT status, count(*) FROM calls GROUP BY status ORDER BY status")
    assert rows == [("completed", 40), ("in_progress", 10)]


def _checkpointed_calls(db_path: Path, tmp_path: Path) -> int:
    """Calls in the database file itself, without its WAL: what checkpoints have copied there."""
    main_only = tmp_path / "main-only.sqlite3"
    main_only.write_bytes(db_path.read_bytes())
    try:
        return int(_rows(main_only, "SELECT count(*) FROM calls")[0][0])
    except sqlite3.OperationalError:  # not even the schema has been checkpointed
        return 0


async def test_the_writer_lets_the_wal_grow_to_its_autocheckpoint_size(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    async with store._conn.execute("PRAGMA wal_autocheckpoint") as cur:
        assert await cur.fetchone() == (schema.WAL_AUTOCHECKPOINT_PAGES,)
    assert schema.WAL_AUTOCHECKPOINT_PAGES == 10_000


@pytest.mark.parametrize(("every", "checkpointed"), [(0.05, 2), (30.0, 0)])
async def test_a_commit_after_checkpoint_every_seconds_checkpoints_the_wal(
    open_store: OpenStore, db_path: Path, tmp_path: Path, every: float, checkpointed: int
) -> None:
    store = await open_store(checkpoint_every=every)
    store.start_call(make_start(1))
    await store.flush()
    # The idle writer checkpoints the first commit about 0.05 s in: the second commit must come
    # well over 0.05 s after that one (0.1 s after the first commit left it to the host's timing).
    await asyncio.sleep(0.25)
    store.start_call(make_start(2))
    await store.flush()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(2,)]
    assert _checkpointed_calls(db_path, tmp_path) == checkpointed


async def test_an_idle_writer_checkpoints_its_last_commits_after_checkpoint_every(
    open_store: OpenStore, db_path: Path, tmp_path: Path
) -> None:
    store = await open_store(checkpoint_every=0.5)
    store.start_call(make_start(1))
    await store.flush()  # committed, then nothing more comes
    assert _checkpointed_calls(db_path, tmp_path) == 0
    for _ in range(150):
        await asyncio.sleep(0.02)
        if _checkpointed_calls(db_path, tmp_path):
            break
    assert _checkpointed_calls(db_path, tmp_path) == 1
    store.start_call(make_start(2))  # the writer still takes work after its checkpoint
    await store.flush()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(2,)]


async def test_checkpoint_every_must_be_positive(db_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint_every > 0"):
        await CdrStore.open(db_path, checkpoint_every=0)


async def test_starts_are_batched_into_few_commits(open_store: OpenStore, db_path: Path) -> None:
    store = await open_store(batch_interval=0.05, max_batch=500)
    for i in range(1, 1201):
        store.start_call(make_start(i))
    assert store.pending == 1200
    await store.flush()
    assert store.pending == 0
    assert store.commits == 3  # max_batch rows per commit
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(1200,)]


async def test_rows_arriving_within_the_interval_share_one_commit(open_store: OpenStore) -> None:
    store = await open_store(batch_interval=0.2, batch_rows=1)
    for i in range(1, 101):
        store.start_call(make_start(i))
        await asyncio.sleep(0)  # the writer task gets to run between rows
    assert store.commits == 0  # nothing written before the interval is over
    await asyncio.sleep(0.35)
    assert store.commits == 1 and store.pending == 0


async def test_a_small_batch_waits_for_more_rows_up_to_three_intervals(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store(batch_interval=0.05, batch_rows=150)
    for i in range(1, 4):
        store.start_call(make_start(i))
    await asyncio.sleep(0.1)  # two intervals: 3 rows of 150 keep waiting
    assert store.commits == 0 and store.pending == 3
    for _ in range(200):  # the third interval ends it, however slow this machine is
        if store.commits:
            break
        await asyncio.sleep(0.01)
    assert store.commits == 1 and _rows(db_path, "SELECT count(*) FROM calls") == [(3,)]


async def test_a_short_batch_waits_as_long_as_its_rows_rate_needs(open_store: OpenStore) -> None:
    store = await open_store(batch_interval=0.1, batch_rows=150)
    for i in range(1, 101):
        store.start_call(make_start(i))
    now = asyncio.get_running_loop().time()
    store._oldest = now - 0.1  # 100 rows in 0.1 s: 50 more take 0.05 s
    assert store._top_up() == pytest.approx(0.05, abs=0.01)
    store._oldest = now - 0.25  # 100 rows in 0.25 s would need 0.125 s more: 0.05 s is left
    assert store._top_up() == pytest.approx(0.05, abs=0.01)
    for i in range(101, 151):
        store.start_call(make_start(i))
    assert store._top_up() == 0.0  # batch_rows reached: no wait


async def test_concurrent_finishes_share_commits(open_store: OpenStore) -> None:
    store = await open_store(batch_interval=0.05)
    calls = [make_start(i) for i in range(1, 201)]
    for call in calls:
        store.start_call(call)
    await store.flush()
    before = store.commits
    await asyncio.gather(*(store.finish_call(make_end(c)) for c in calls))
    assert store.commits - before <= 2


async def test_a_batch_is_one_trip_to_the_writer_thread(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each trip wakes the writer's thread and then the loop: two context switches on one core.
    store = await open_store(batch_interval=0.05)
    trips: list[object] = []
    real = store._conn._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(store._conn, "_execute", counted)
    # More rows than the writer writes between yields of its core: several slices per statement.
    calls = [make_start(i) for i in range(1, 2 * writer_module._YIELD_EVERY + 2)]
    for call in calls:
        store.start_call(call)
        store.add_attempt(make_attempt(call))
    await store.flush()
    assert len(trips) == 1
    with structlog.testing.capture_logs() as logs:
        await asyncio.gather(*(store.finish_call(make_end(c)) for c in calls))
    assert len(trips) == 2 and store.commits == 2
    assert not logs  # every slice's finished calls counted: no split, nothing refused
    assert _rows(db_path, "SELECT status, count(*) FROM calls GROUP BY 1") == [
        ("completed", len(calls))
    ]
    assert _rows(db_path, "SELECT count(*) FROM attempts") == [(len(calls),)]


async def test_a_writer_behind_does_not_yield_its_core(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Yielding to new calls while writes pile up lets them pile up further: under overload the
    # daemon's memory grew by hundreds of MB (BENCHMARKS.md). Caught up, it yields again.
    yields: list[None] = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(None))
    store = await open_store(batch_interval=0.05, max_batch=100)
    for i in range(1, 151):  # a batch and a half
        store.start_call(make_start(i))
    await store.flush()
    assert store.commits == 2
    assert len(yields) == math.ceil(50 / writer_module._YIELD_EVERY)  # the second batch's only


async def test_a_batch_resumes_its_callers_a_few_per_loop_turn(open_store: OpenStore) -> None:
    # All of a batch's callers resumed in one turn would hold every new call's I/O behind them.
    store = await open_store(batch_interval=0.05)
    calls = [make_start(i) for i in range(1, 13)]
    for call in calls:
        store.start_call(call)
    resumed: list[int] = []
    other_work_at: list[int] = []

    async def finish(n: int, call: CallStart) -> None:
        await store.finish_call(make_end(call))
        if not resumed:  # the first caller resumed: work that arrives now must not wait for all
            asyncio.get_running_loop().call_soon(lambda: other_work_at.append(len(resumed)))
        resumed.append(n)

    await asyncio.gather(*(finish(n, c) for n, c in enumerate(calls)))
    assert store.commits <= 2 and len(resumed) == len(calls)
    assert other_work_at and other_work_at[0] < len(calls) / 2


async def test_transact_runs_on_the_writer_connection_between_batches(
    store: CdrStore, db_path: Path
) -> None:
    call = make_start(1)
    proceed = asyncio.Event()

    async def work(conn: aiosqlite.Connection) -> str:
        await conn.execute("BEGIN IMMEDIATE")
        await conn.execute("INSERT INTO state (key, value) VALUES ('lent', 'yes')")
        await proceed.wait()  # a batch falls due meanwhile: it waits for the connection
        await conn.execute("COMMIT")
        return "done"

    working = asyncio.ensure_future(store.transact(work))
    await asyncio.sleep(0.01)
    store.start_call(call)
    flushing = asyncio.ensure_future(store.flush())
    await asyncio.sleep(0.05)
    assert not flushing.done() and _rows(db_path, "SELECT count(*) FROM calls") == [(0,)]
    proceed.set()
    assert await working == "done"
    await flushing
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(1,)]
    assert _rows(db_path, "SELECT value FROM state WHERE key = 'lent'") == [("yes",)]


async def test_transact_waits_out_a_lock_held_by_another_writer(
    store: CdrStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store._conn.execute("PRAGMA busy_timeout = 50")
    monkeypatch.setattr(writer_module, "_TX_BACKOFF_MAX", 0.2)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    async def work(conn: aiosqlite.Connection) -> None:
        try:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT OR IGNORE INTO state (key, value) VALUES ('k', 'v')")
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise

    with structlog.testing.capture_logs() as logs:
        working = asyncio.ensure_future(store.transact(work))
        await asyncio.sleep(1.0)
        assert not working.done()
        holder.execute("COMMIT")
        await working
    holder.close()
    assert [e["event"] for e in logs].count("cdr_transact_retry_later") >= 2
    assert _rows(db_path, "SELECT value FROM state WHERE key = 'k'") == [("v",)]


async def test_bad_rows_do_not_lose_the_batch(open_store: OpenStore, db_path: Path) -> None:
    store = await open_store(batch_interval=0.05)
    a, b = make_start(1), make_start(2)
    with structlog.testing.capture_logs() as logs:
        store.start_call(a)
        store.start_call(b)
        store.start_call(dataclasses.replace(a, channel="duplicate"))  # PRIMARY KEY
        store.add_attempt(make_attempt(make_start(3)))  # FOREIGN KEY: call 3 never started
        store.add_attempt(make_attempt(b))
        results = await asyncio.gather(
            store.finish_call(make_end(a)),
            store.finish_call(make_end(make_start(4))),  # never started
            store.finish_call(make_end(b, disposition="busy")),
            return_exceptions=True,
        )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], UnknownCall)
    assert store.rejected_rows == 3
    assert _rows(db_path, "SELECT uniqueid, channel, disposition FROM calls ORDER BY 1") == [
        (a.uniqueid, a.channel, "answered"),
        (b.uniqueid, b.channel, "busy"),
    ]
    assert _rows(db_path, "SELECT uniqueid FROM attempts") == [(b.uniqueid,)]
    rejected = [e for e in logs if e["event"] == "cdr_row_rejected"]
    assert [(e["op"], e["uniqueid"], e["log_level"]) for e in rejected] == [
        ("start_call", a.uniqueid, "error"),
        ("add_attempt", make_start(3).uniqueid, "error"),
        ("finish_call", make_start(4).uniqueid, "error"),
    ]
    assert "UNIQUE constraint failed" in rejected[0]["error"]
    assert "FOREIGN KEY constraint failed" in rejected[1]["error"]
    assert [e["params"][0] for e in rejected[:2]] == [a.uniqueid, make_start(3).uniqueid]


async def test_a_repeated_uniqueid_never_overwrites_a_finished_call(
    store: CdrStore, db_path: Path
) -> None:
    first = make_start(1)
    store.start_call(first)
    await store.finish_call(make_end(first, disposition="answered"))
    again = dataclasses.replace(first, channel="PJSIP/other-00000009")  # same uniqueid
    with structlog.testing.capture_logs() as logs:
        store.start_call(again)
        with pytest.raises(UnknownCall, match="in progress"):
            await store.finish_call(make_end(again, disposition="busy"))
    assert [e["op"] for e in logs if e["event"] == "cdr_row_rejected"] == [
        "start_call",
        "finish_call",
    ]
    assert _rows(db_path, "SELECT channel, disposition, status FROM calls") == [
        (first.channel, "answered", "completed")
    ]


async def test_refused_finish_raises_row_rejected(
    store: CdrStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = make_start(1)
    store.start_call(call)
    # Make the writer's UPDATE violate the status CHECK: a row SQLite refuses.
    start_sql, attempt_sql, finish_sql, *rest = writer_module._SQL
    bogus = finish_sql.replace("status = 'completed'", "status = 'bogus'")
    monkeypatch.setattr(writer_module, "_SQL", (start_sql, attempt_sql, bogus, *rest))
    with structlog.testing.capture_logs(), pytest.raises(RowRejected) as info:
        await store.finish_call(make_end(call))
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert "CHECK constraint failed" in str(info.value)


async def test_failed_transactions_are_retried_then_reported(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store()
    monkeypatch.setattr(writer_module, "_TX_BACKOFF", 0.001)
    real = store._write_batch
    failures = iter([True, True])

    async def flaky(batch: list[Any]) -> None:
        if next(failures, False):
            raise sqlite3.OperationalError("disk I/O error")
        await real(batch)

    monkeypatch.setattr(store, "_write_batch", flaky)
    with structlog.testing.capture_logs() as logs:
        call = make_start(1)
        store.start_call(call)
        await store.finish_call(make_end(call))
    assert [e["event"] for e in logs].count("cdr_batch_retry_later") == 2

    async def broken(batch: list[Any]) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(writer_module, "_TX_RETRY_FOR", 0.05)
    monkeypatch.setattr(store, "_write_batch", broken)
    with structlog.testing.capture_logs() as logs:
        call = make_start(2)
        store.start_call(call)
        with pytest.raises(StoreError, match="database is locked"):
            await store.finish_call(make_end(call))
    lost = [e for e in logs if e["event"] == "cdr_batch_lost"]
    assert lost and lost[0]["uniqueids"] == [call.uniqueid]
    rows = [e for e in logs if e["event"] == "cdr_row_lost"]
    assert [(e["op"], e["uniqueid"]) for e in rows] == [
        ("start_call", call.uniqueid),
        ("finish_call", call.uniqueid),
    ]
    monkeypatch.setattr(store, "_write_batch", real)
    store.start_call(make_start(3))  # the writer carries on
    await store.flush()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(2,)]
    # Nothing is lost: the logged rows write the call as it would have been.
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        assert replay(conn, [json.dumps(e, default=repr) for e in rows]).written == 2
    assert _rows(
        db_path, f"SELECT status, channel FROM calls WHERE uniqueid = '{call.uniqueid}'"
    ) == [("completed", call.channel)]


async def test_a_long_lock_by_another_writer_loses_nothing(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Longer than the old budget (5 retries from 50 ms: 1.6 s of backoff): an admin's VACUUM.
    store = await open_store()
    await store._conn.execute("PRAGMA busy_timeout = 50")
    monkeypatch.setattr(writer_module, "_TX_BACKOFF_MAX", 0.5, raising=False)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    call = make_start(1)
    with structlog.testing.capture_logs() as logs:
        store.start_call(call)
        finishing = asyncio.ensure_future(store.finish_call(make_end(call)))
        await asyncio.sleep(2.5)
        assert not finishing.done()
        holder.execute("COMMIT")
        await finishing
    holder.close()
    events = [e["event"] for e in logs]
    assert events.count("cdr_batch_retry_later") >= 3 and "cdr_batch_lost" not in events
    assert "cdr_batch_split" not in events  # a lock is no bad row: the batch is retried whole
    assert _rows(db_path, "SELECT status FROM calls") == [("completed",)]


async def test_closing_gives_up_on_an_unwritable_database_after_its_grace(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store()

    async def broken(batch: list[Any]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer_module, "_TX_CLOSE_GRACE", 0.3)
    monkeypatch.setattr(writer_module, "_TX_BACKOFF_MAX", 0.1)
    monkeypatch.setattr(store, "_write_batch", broken)
    calls = [make_start(i) for i in range(1, 4)]
    with structlog.testing.capture_logs() as logs:
        for call in calls:
            store.start_call(call)
        started = asyncio.get_running_loop().time()
        await store.close()
    assert asyncio.get_running_loop().time() - started < 5  # not ten minutes
    lost = [e for e in logs if e["event"] == "cdr_batch_lost"]
    assert sorted(u for e in lost for u in e["uniqueids"]) == sorted(c.uniqueid for c in calls)


async def test_closing_writes_a_long_backlog_to_a_writable_database(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store(max_batch=10)
    monkeypatch.setattr(writer_module, "_TX_CLOSE_GRACE", 0.0)  # the grace is for failures only
    for i in range(1, 101):
        store.start_call(make_start(i))
    await store.close()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(100,)]


async def test_a_dead_writer_is_loud(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store()

    def boom() -> list[Any]:
        raise RuntimeError("bug in the writer")

    monkeypatch.setattr(store, "_take", boom)
    with structlog.testing.capture_logs() as logs:
        call = make_start(1)
        store.start_call(call)
        with pytest.raises(StoreClosed) as info:
            await store.finish_call(make_end(call))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert [e["log_level"] for e in logs if e["event"] == "cdr_writer_died"] == ["critical"]
    # What it held is in the log, to replay: the call's row and its end, keyed by its uniqueid.
    held = [e for e in logs if e["event"] == "cdr_row_lost"]
    assert [(e["op"], e["uniqueid"]) for e in held] == [
        ("start_call", call.uniqueid),
        ("finish_call", call.uniqueid),
    ]
    assert held[0]["params"][0] == held[1]["params"][-1] == call.uniqueid
    with pytest.raises(StoreClosed) as later:  # raised by the compiled queue: cause kept
        store.start_call(make_start(2))
    assert isinstance(later.value.__cause__, RuntimeError)
    await store.close()


async def test_close_flushes_is_idempotent_and_final(open_store: OpenStore, db_path: Path) -> None:
    store = await open_store(batch_interval=10.0)
    for i in range(1, 11):
        store.start_call(make_start(i))
    await asyncio.gather(store.close(), store.close())
    await store.close()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(10,)]
    with pytest.raises(StoreClosed):
        store.start_call(make_start(11))
    await store.flush()  # nothing pending: returns


async def test_async_with_closes(db_path: Path) -> None:
    async with await CdrStore.open(db_path, batch_interval=10.0) as store:
        store.start_call(make_start(1))
    assert store._task.done()
    assert _rows(db_path, "SELECT count(*) FROM calls") == [(1,)]


async def test_resolve_in_progress_marks_unknown(store: CdrStore, reader: CdrReader) -> None:
    old, done = make_start(1), make_start(2)
    for call in (old, done):
        store.start_call(call)
        store.add_attempt(make_attempt(call))
    await store.finish_call(make_end(done))
    assert await store.resolve_in_progress() == 1
    row = await reader.get_call(old.uniqueid)
    assert row is not None
    assert (row["status"], row["disposition"], row["ended_at"]) == ("unknown", "unknown", None)
    assert CallStart(**_fields(row, CallStart)) == old  # what was known is kept
    assert len(row["attempts"]) == 1
    done_row = await reader.get_call(done.uniqueid)
    assert done_row is not None and done_row["status"] == "completed"
    assert await store.resolve_in_progress() == 0


async def test_resolve_in_progress_applies_resolutions(store: CdrStore, reader: CdrReader) -> None:
    calls = [make_start(i) for i in (1, 2, 3)]
    for call in calls:
        store.start_call(call)
    late = make_start(1000)  # started after the cutoff: left alone
    store.start_call(late)
    end = make_end(calls[0], disposition="no-answer", answered_at=None, dialstatus="NOANSWER")
    resolutions = {
        end.uniqueid: end,
        late.uniqueid: make_end(late),
        "nope": make_end(make_start(9), uniqueid="nope"),
    }
    assert await store.resolve_in_progress(resolutions, older_than=T0 + 500) == 3
    rows = {c.uniqueid: await reader.get_call(c.uniqueid) for c in (*calls, late)}
    first = rows[calls[0].uniqueid]
    assert first is not None
    assert first["status"] == "completed" and CallEnd(**_fields(first, CallEnd)) == end
    assert [rows[c.uniqueid]["status"] for c in calls[1:]] == ["unknown", "unknown"]  # type: ignore[index]
    assert rows[late.uniqueid]["status"] == "in_progress"  # type: ignore[index]
    with pytest.raises(ValueError, match="resolution key"):
        await store.resolve_in_progress({"x": end})


async def test_repeat_caller_window_from_the_cache(store: CdrStore) -> None:
    call = make_start(1)  # started at T0 + 1
    assert await store.is_repeat_caller(call.ani_e164 or "", T0) is False  # before start_call
    lookups = store.ani_lookups
    store.start_call(call)
    assert await store.is_repeat_caller(call.ani_e164 or "", T0) is True
    assert await store.is_repeat_caller(call.ani_e164 or "", T0 + 1) is True
    assert await store.is_repeat_caller(call.ani_e164 or "", T0 + 2) is False
    assert await store.is_repeat_caller("+19995550000", T0) is False
    assert await store.is_repeat_caller("+19995550000", T0) is False
    assert await store.is_repeat_caller("", T0) is False
    assert store.ani_lookups == lookups + 1  # only the never-seen number asked SQLite, once


async def test_repeat_caller_after_reopen_asks_sqlite(open_store: OpenStore) -> None:
    store = await open_store()
    store.start_call(make_start(1))
    store.start_call(make_start(1, uniqueid="x", started_at=T0 + 50))
    await store.close()
    store = await open_store()
    ani = make_start(1).ani_e164 or ""
    assert await store.is_repeat_caller(ani, T0 + 50) is True  # the latest start counts
    assert await store.is_repeat_caller(ani, T0 + 51) is False
    assert store.ani_lookups == 1


async def test_repeat_caller_cache_is_bounded(open_store: OpenStore) -> None:
    store = await open_store(ani_cache_size=2)
    calls = [make_start(i) for i in (1, 2, 3)]
    for call in calls:
        store.start_call(call)
    await store.flush()
    assert len(store._ani_seen) == 2
    assert await store.is_repeat_caller(calls[0].ani_e164 or "", T0) is True  # evicted: SQL
    assert store.ani_lookups == 1


def test_records_validate() -> None:
    with pytest.raises(ValueError, match="disposition"):
        CallEnd(uniqueid="1", ended_at=1.0, disposition="ANSWERED")
    with pytest.raises(ValueError, match="hangup_by"):
        CallEnd(uniqueid="1", ended_at=1.0, disposition="answered", hangup_by="me")
    with pytest.raises(ValueError, match="seq"):
        make_attempt(make_start(1), 0)


async def test_recording_size_is_recorded(store: CdrStore, db_path: Path) -> None:
    call = make_start(1)
    store.start_call(call)
    await store.finish_call(make_end(call, recording_path="/rec/1.wav"))
    store.set_recording_bytes(call.uniqueid, 64044)
    await store.flush()
    reader = await CdrReader.open(db_path)
    try:
        row = await reader.get_call(call.uniqueid)
    finally:
        await reader.close()
    assert row is not None
    assert (row["recording_path"], row["recording_bytes"]) == ("/rec/1.wav", 64044)


async def test_warm_cache_answers_misses_without_sql(db_path: Path) -> None:
    async with await CdrStore.open(db_path, batch_interval=0.01, ani_cache_size=3) as store:
        for i in (1, 2):
            store.start_call(make_start(i))  # started at T0+1, T0+2
        await store.flush()
    async with await CdrStore.open(db_path, batch_interval=0.01, ani_cache_size=3) as store:
        assert await store.warm_repeat_cache(T0) == 2
        assert await store.is_repeat_caller(make_start(1).ani_e164 or "", T0)
        assert not await store.is_repeat_caller("+13125550000", T0)  # a miss: no SQL
        assert store.ani_lookups == 0
        assert not await store.is_repeat_caller("+13125550000", T0 - 100)  # older: SQL
        assert store.ani_lookups == 1
        for i in range(10, 14):  # evicts the oldest numbers
            store.start_call(make_start(i, started_at=T0 + 50 + i))
        assert not await store.is_repeat_caller("+14155550000", T0 + 5)  # evicted since: SQL
        assert store.ani_lookups == 2


async def test_last_answered_of_unseen_callers_needs_no_sql(db_path: Path) -> None:
    async with await CdrStore.open(db_path, batch_interval=0.01) as store:
        call = make_start(1)  # started at T0+1
        store.start_call(call)
        await store.finish_call(make_end(call))  # answered by its target
        await store.flush()
    async with await CdrStore.open(db_path, batch_interval=0.01) as store:
        ani = call.ani_e164 or ""
        assert await store.warm_repeat_cache(T0) == 1
        assert await store.last_answered("+13125550000", T0) is None  # never called: no SQL
        assert await store.last_answered(ani, T0 + 2) is None  # not since then: no SQL
        assert store.ani_lookups == 0
        found = await store.last_answered(ani, T0)
        assert store.ani_lookups == 1
        assert found == ("agent2", call.started_at + 6.5)
        assert await store.last_answered("+13125550000", T0 - 100) is None  # before the cache
        assert store.ani_lookups == 2
