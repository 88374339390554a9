"""Caller links (schema 7): each call's previous call and next answered call, always exact."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import structlog
from cdr_samples import T0, OpenStore, make_end, make_start

from callflow.store import CallEnd, CallStart, UnknownCall
from callflow.store.migrations import CALLER_LINKS_BACKFILL, MIGRATIONS, migrate
from callflow.store.schema import RELINK_FINISHED
from callflow.store.writer import _out_of_order

Row = tuple[str, float, str | None, str | None]  # uniqueid, started_at, number, disposition


def _calls(path: Path) -> list[tuple[Any, ...]]:
    """Every call's (rowid, uniqueid, started_at, number, disposition, prev, next answered)."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT rowid, uniqueid, started_at, ani_e164, disposition, prev_started_at, "
            "next_answered_at FROM calls"
        ).fetchall()


def assert_exact(path: Path) -> int:
    """Check the links against their definition, row by row; return how many rows."""
    rows = _calls(path)
    for rowid, uid, at, ani, _, prev, nxt in rows:
        if ani is None:
            assert (prev, nxt) == (None, None), uid
            continue
        mine = [r for r in rows if r[3] == ani]
        # previous call in (started_at, rowid) order: ties with a lower rowid come first
        before = [r[2] for r in mine if (r[2], r[0]) < (at, rowid)]
        answered = [r[2] for r in mine if r[2] > at and r[4] == "answered"]
        assert prev == (max(before) if before else None), uid
        assert nxt == (min(answered) if answered else None), uid
    return len(rows)


def _at_schema(path: Path, version: int = len(MIGRATIONS)) -> sqlite3.Connection:
    """A database migrated up to ``version``, open for direct SQL (autocommit)."""

    async def make() -> None:
        async with aiosqlite.connect(path) as conn:
            await migrate(conn, MIGRATIONS[:version])

    asyncio.run(make())
    return sqlite3.connect(path, isolation_level=None)


def _raw_insert(db: sqlite3.Connection, uid: str, at: float, ani: str | None, disp: str) -> None:
    """A calls row as an older callflow wrote it."""
    db.execute(
        "INSERT INTO calls (uniqueid, linkedid, channel, started_at, ani_raw, ani_e164, "
        "ani_valid, ani_anonymous, dnis, number_known, repeat_caller, node, status, updated_at, "
        "disposition) VALUES (?, ?, 'c', ?, 'x', ?, 1, 0, 'd', 1, 0, 'n', 'completed', 0, ?)",
        (uid, uid, at, ani, disp),
    )


def _history(seed: int, n: int = 120) -> list[Row]:
    """Calls from a few numbers (repeat callers, ties, anonymous), in shuffled order."""
    rng = random.Random(seed)
    numbers = ["+12125550001", "+12125550002", "+13125550003", None]
    rows = [
        (
            f"u{i}",
            T0 + rng.randint(0, 40) * 60.0,  # coarse times: many ties
            rng.choice(numbers),
            rng.choice(["answered", "answered", "busy", "no-answer", "abandoned"]),
        )
        for i in range(n)
    ]
    rng.shuffle(rows)
    return rows


def test_migration_backfills_exact_links(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = _at_schema(path, 6)  # before the links
    for row in _history(1):
        _raw_insert(db, *row)
    db.close()

    async def upgrade() -> None:
        async with aiosqlite.connect(path) as conn:
            assert await migrate(conn) == len(MIGRATIONS)

    asyncio.run(upgrade())
    assert assert_exact(path) == 120
    with sqlite3.connect(path) as check:  # repeat callers and ties really are in the data
        ties = "SELECT count(*) FROM calls WHERE prev_started_at = started_at"
        assert check.execute(ties).fetchone()[0] > 0
        assert check.execute("SELECT count(prev_started_at) FROM calls").fetchone()[0] > 50


async def test_writer_keeps_links_exact_in_any_order(open_store: OpenStore, db_path: Path) -> None:
    store = await open_store()
    history = _history(2)
    for k, (uid, at, ani, disp) in enumerate(history):
        start = make_start(k, uniqueid=uid, linkedid=uid, started_at=at, ani_e164=ani)
        store.start_call(start)
        if k % 3:  # some calls finish at once, others only after later ones were written
            await store.finish_call(make_end(start, disposition=disp))
    await store.flush()
    for k, (uid, at, ani, disp) in enumerate(history):
        if not k % 3:
            start = make_start(k, uniqueid=uid, linkedid=uid, started_at=at, ani_e164=ani)
            await store.finish_call(make_end(start, disposition=disp))
    assert assert_exact(db_path) == 120
    # Finishing a finished call again (a repeated uniqueid) is refused: outcome and links kept.
    answered = [r for r in history if r[3] == "answered" and r[2]][:5]
    with structlog.testing.capture_logs():
        for uid, *_ in answered:
            with pytest.raises(UnknownCall):
                await store.finish_call(CallEnd(uniqueid=uid, ended_at=T0, disposition="busy"))
    assert assert_exact(db_path) == 120
    with sqlite3.connect(db_path) as db:
        kept = db.execute(
            f"SELECT DISTINCT disposition FROM calls WHERE uniqueid IN ({','.join('?' * 5)})",
            [uid for uid, *_ in answered],
        ).fetchall()
    assert kept == [("answered",)]


async def test_resolutions_and_deletes_keep_links_exact(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    history = _history(3, 60)
    for k, (uid, at, ani, _) in enumerate(history):
        store.start_call(make_start(k, uniqueid=uid, linkedid=uid, started_at=at, ani_e164=ani))
    ends = {
        uid: CallEnd(uniqueid=uid, ended_at=at + 1, disposition=disp)
        for uid, at, _, disp in history[::2]
    }
    await store.resolve_in_progress(ends)
    assert_exact(db_path)
    with sqlite3.connect(db_path) as db:  # deleting calls (e.g. retention) relinks the rest
        for uid, *_ in history[::5]:
            db.execute("DELETE FROM calls WHERE uniqueid = ?", (uid,))
    assert assert_exact(db_path) == 48


def test_only_starts_out_of_order_are_linked_after_the_batch() -> None:
    rows = [("a", 5.0), ("b", 12.0), ("a", 12.0), ("c", 11.0), ("a", 13.0), ("b", 9.0)]
    assert _out_of_order(rows, 10.0) == [("a", 5.0), ("c", 11.0), ("b", 9.0)]
    assert _out_of_order(rows, None) == [("c", 11.0), ("b", 9.0)]
    assert _out_of_order(rows[1:3], 12.0) == []


async def test_batches_in_and_out_of_time_order_keep_links_exact(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    batches = [
        [(10, "+15550001"), (20, "+15550001"), (20, "+15550002")],
        [(30, "+15550001"), (40, "+15550002")],  # in order, after everything written
        [(15, "+15550001"), (50, "+15550001"), (35, "+15550002"), (45, "+15550001")],
        [(40, "+15550002"), (40, "+15550002"), (5, "+15550001")],  # ties, then the earliest
    ]
    k = 0
    for batch in batches:  # each one batch: queued with no await between, then flushed
        finishes = []
        for at, ani in batch:
            k += 1
            uid = f"b{k}"
            start = make_start(k, uniqueid=uid, linkedid=uid, started_at=T0 + at, ani_e164=ani)
            store.start_call(start)
            if k % 2:  # answered in the same batch
                end = make_end(start, disposition="answered")
                finishes.append(asyncio.ensure_future(store.finish_call(end)))
        await asyncio.sleep(0)
        await store.flush()
        await asyncio.gather(*finishes)
    assert store.commits == len(batches)
    assert assert_exact(db_path) == k


def _starts(prefix: str, n: int, ani: str) -> list[CallStart]:
    """Calls of one caller, a second apart."""
    return [
        make_start(
            k, uniqueid=f"{prefix}{k}", linkedid=f"{prefix}{k}", started_at=T0 + k, ani_e164=ani
        )
        for k in range(n)
    ]


async def test_calls_started_by_an_earlier_store_are_relinked_when_answered(
    open_store: OpenStore, db_path: Path
) -> None:
    first = await open_store()
    starts = _starts("r", 4, "+15550009")
    for start in starts:
        first.start_call(start)
    await first.finish_call(make_end(starts[0], disposition="busy"))
    await first.finish_call(make_end(starts[1], disposition="no-answer"))
    await first.close()
    second = await open_store()  # knows none of these calls: finds them in the database
    await second.finish_call(make_end(starts[3], disposition="answered"))
    await second.finish_call(make_end(starts[2], disposition="answered"))
    assert assert_exact(db_path) == 4
    nexts = [row[6] for row in sorted(_calls(db_path), key=lambda r: r[2])]
    assert nexts == [T0 + 2, T0 + 2, T0 + 3, None]


@pytest.mark.parametrize("forgotten", [False, True])
async def test_a_uniqueid_started_twice_keeps_the_links_of_the_row_written(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch, forgotten: bool
) -> None:
    """SQLite refuses the second start, and the store forgets it: the call is relinked by
    its row, whether the store still knew the first start or had forgotten it past its bound."""
    store = await open_store()
    if forgotten:
        store._callers_max = 1
    missed = make_start(0, uniqueid="m", linkedid="m", started_at=T0, ani_e164="+15550008")
    store.start_call(missed)
    await store.finish_call(make_end(missed, disposition="busy"))
    dup = make_start(1, uniqueid="d", linkedid="d", started_at=T0 + 10, ani_e164="+15550008")
    store.start_call(dup)
    if forgotten:  # past the bound: the store forgets both
        store.start_call(make_start(2, uniqueid="o", linkedid="o", started_at=T0 + 11))
    again = make_start(3, uniqueid="d", linkedid="d", started_at=T0 + 5, ani_e164="+15550007")
    with structlog.testing.capture_logs():
        store.start_call(again)  # refused by SQLite: the first row stays in progress
        await store.flush()
    await store.finish_call(make_end(dup, disposition="answered"))
    assert assert_exact(db_path) == 2 + forgotten
    assert _calls(db_path)[0][6] == T0 + 10  # the missed call: this one answered next


async def test_the_calls_kept_for_their_finish_are_bounded(
    open_store: OpenStore, db_path: Path
) -> None:
    store = await open_store()
    store._callers_max = 2
    starts = _starts("k", 5, "+15550006")
    for start in starts:
        store.start_call(start)
    assert len(store._callers) <= 2  # past the bound, forgotten
    for start in reversed(starts):  # the forgotten ones are relinked from their rows
        await store.finish_call(make_end(start, disposition="answered"))
    assert assert_exact(db_path) == 5
    assert not store._callers


def _vm_steps(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    """SQLite virtual-machine steps (in units of 16) one statement takes: work, not time."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.set_progress_handler(count, 16)
    db.execute(sql, params)
    db.set_progress_handler(None, 16)
    return steps


def _caller_with_unanswered_calls(path: Path, n: int) -> sqlite3.Connection:
    """A current database: one caller's ``n`` busy calls, then two answered ones (x, y)."""

    db = _at_schema(path)
    for i in range(n):
        _raw_insert(db, f"u{i}", T0 + i, "+15550005", "busy")
    _raw_insert(db, "x", T0 + n, "+15550005", "answered")
    _raw_insert(db, "y", T0 + n + 1, "+15550005", "answered")
    for sql in CALLER_LINKS_BACKFILL:
        db.execute(sql)
    return db


@pytest.mark.parametrize("relink", ["answered", "deleted"])
def test_relinking_a_caller_is_linear_in_their_calls(tmp_path: Path, relink: str) -> None:
    """With no index of answered calls (migration 10), the calls since the previous answered
    one share their next answered call, looked up once: not once per call (quadratic)."""
    steps = []
    for n in (300, 600):
        path = tmp_path / f"{relink}{n}.sqlite3"
        db = _caller_with_unanswered_calls(path, n)
        if relink == "answered":  # x's answer not yet relinked, as after a restart
            db.execute("UPDATE calls SET next_answered_at = NULL WHERE started_at < ?", (T0 + n,))
            steps.append(_vm_steps(db, RELINK_FINISHED, ("x",)))
            expected = T0 + n
        else:  # the calls that pointed at x point at y
            steps.append(_vm_steps(db, "DELETE FROM calls WHERE uniqueid = 'x'", ()))
            expected = T0 + n + 1
        db.close()
        assert assert_exact(path) == n + 2 - (relink == "deleted")
        assert {row[6] for row in _calls(path) if row[4] == "busy"} == {expected}
    assert steps[1] < 2.5 * steps[0], steps  # 4x if each call looked up its own


def test_migration_10_drops_the_answered_index_and_keeps_deletes_exact(tmp_path: Path) -> None:
    path = tmp_path / "v9.sqlite3"
    with _at_schema(path, 9) as db:
        for row in _history(4):
            _raw_insert(db, *row)
        for sql in CALLER_LINKS_BACKFILL:
            db.execute(sql)
        assert db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'calls_answered_ani'"
        ).fetchone()
    assert_exact(path)
    with _at_schema(path, 10) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        assert "calls_answered_ani" not in names and "calls_links_delete" in names
        trigger = db.execute("SELECT sql FROM sqlite_master WHERE name = 'calls_links_delete'")
        assert "a.started_at >= OLD.started_at" in trigger.fetchone()[0]  # migration 10's
        answered = [
            r[0] for r in db.execute("SELECT uniqueid FROM calls WHERE disposition = 'answered'")
        ]
        for uid in answered[::3]:
            db.execute("DELETE FROM calls WHERE uniqueid = ?", (uid,))
    assert assert_exact(path) == 120 - len(answered[::3])
