"""Reads on the separate read-only connection: filters, streaming, reading beside the writer."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from cdr_samples import T0, make_attempt, make_end, make_start

from callflow.store import CdrReader, CdrStore
from callflow.store.schema import (
    INSERT_ATTEMPT,
    INSERT_CALL,
    START_COLUMNS,
    attempt_params,
    start_params,
)

BIG = 20_000
ANI = START_COLUMNS.index("ani_e164")


@pytest.fixture
async def big_db(db_path: Path) -> Path:
    """A database of 20k calls (one attempt each), bulk-loaded with the writer's statements."""
    await (await CdrStore.open(db_path)).close()
    call = make_start(0)
    start, attempt = list(start_params(call, T0)), list(attempt_params(make_attempt(call)))
    starts, attempts = [], []
    for i in range(BIG):
        uid = f"{T0:.0f}.{i}"
        start[0] = start[1] = attempt[0] = uid
        start[3] = T0 + (BIG - i)  # started_at: inserted in reverse order
        start[ANI] = f"+1212{i:07d}"  # one caller each (one caller's 20k calls load slowly)
        starts.append(tuple(start))
        attempts.append(tuple(attempt))
    with sqlite3.connect(db_path) as db:
        db.executemany(INSERT_CALL, starts)
        db.executemany(INSERT_ATTEMPT, attempts)
    return db_path


async def test_filters_and_order(store: CdrStore, reader: CdrReader) -> None:
    for i in (5, 1, 4, 2, 3):
        store.start_call(make_start(i, campaign="spring" if i % 2 else "fall"))
    await store.flush()
    uids = [r["uniqueid"] async for r in reader.iter_calls()]
    assert uids == [make_start(i).uniqueid for i in (1, 2, 3, 4, 5)]
    window: dict[str, Any] = {"since": T0 + 2, "until": T0 + 5}
    assert [r["started_at"] async for r in reader.iter_calls(**window)] == [T0 + 2, T0 + 3, T0 + 4]
    assert await reader.count_calls(**window) == 3
    spring = [r["started_at"] async for r in reader.iter_calls(campaign="spring", since=T0 + 2)]
    assert spring == [T0 + 3, T0 + 5]
    assert await reader.count_calls(campaign="spring") == 3
    assert await reader.count_calls() == 5
    row = await anext(reader.iter_calls(with_attempts=False))
    assert "attempts" not in row


async def test_iter_calls_streams_in_bounded_chunks(
    big_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunk = 256
    sizes: list[int | None] = []
    fetchmany = aiosqlite.Cursor.fetchmany

    async def spy(self: aiosqlite.Cursor, size: int | None = None) -> Any:
        sizes.append(size)
        return await fetchmany(self, size)

    async def forbidden(self: aiosqlite.Cursor) -> Any:
        raise AssertionError("iter_calls must not fetchall")

    monkeypatch.setattr(aiosqlite.Cursor, "fetchmany", spy)
    monkeypatch.setattr(aiosqlite.Cursor, "fetchall", forbidden)
    async with await CdrReader.open(big_db, chunk_size=chunk) as reader:
        count, last = 0, -math.inf
        tracemalloc.start()
        try:
            async for row in reader.iter_calls():
                # Lockstep: row k is handed out before chunk k // 256 + 2 is fetched.
                assert len(sizes) == count // chunk + 1
                assert row["started_at"] >= last and len(row["attempts"]) == 1
                last = row["started_at"]
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == BIG
    assert sizes == [chunk] * (BIG // chunk + 2)  # the last fetch comes back empty
    # Holding all 20k decoded rows takes ~60 MB; streaming stays around one chunk.
    assert peak < 4_000_000, peak


async def test_reader_never_blocks_the_writer(db_path: Path) -> None:
    store = await CdrStore.open(db_path, batch_interval=0.005)
    for i in range(1, 11):
        store.start_call(make_start(i))
    await store.flush()
    reader = await CdrReader.open(db_path, chunk_size=1)
    try:
        rows = reader.iter_calls()
        first = await anext(rows)  # a read statement (and its snapshot) is now open
        started = time.monotonic()
        late = make_start(11)
        store.start_call(late)
        await store.finish_call(make_end(late))
        assert time.monotonic() - started < 1.0
        rest = [r["uniqueid"] async for r in rows]
        assert [first["uniqueid"], *rest] == [make_start(i).uniqueid for i in range(1, 11)]
        assert await reader.count_calls() == 11  # the next read sees the new commit
    finally:
        await reader.close()
        await store.close()


async def test_concurrent_reads_and_writes(db_path: Path) -> None:
    store = await CdrStore.open(db_path, batch_interval=0.002, max_batch=50)
    reader = await CdrReader.open(db_path, chunk_size=100)
    done = asyncio.Event()

    async def write() -> None:
        for i in range(1, 3001):
            call = make_start(i)
            store.start_call(call)
            store.add_attempt(make_attempt(call))
            if i % 100 == 0:
                await store.finish_call(make_end(call))
        await store.flush()
        done.set()

    async def read() -> int:
        seen, rounds = 0, 0
        while not done.is_set() or rounds == 0:
            count = await reader.count_calls()
            assert count >= seen
            seen = count
            streamed = [r async for r in reader.iter_calls(since=T0 + max(seen - 300, 0))]
            assert all(len(r["attempts"]) == 1 for r in streamed)
            await reader.get_call(make_start(max(seen, 1)).uniqueid)
            rounds += 1
        return rounds

    try:
        _, rounds = await asyncio.gather(write(), read())
        assert rounds > 1
        assert await reader.count_calls() == 3000
    finally:
        await reader.close()
        await store.close()
