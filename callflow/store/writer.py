"""The single CDR writer: one SQLite connection, a queue, and batched (group) commits.

The call flow never waits for SQL on its hot path: ``start_call`` and ``add_attempt`` only queue
a row. A writer task drains the queue every ``batch_interval`` seconds (at once when
``max_batch`` rows are waiting, on ``flush`` and on ``close``; a batch short of ``batch_rows``
waits up to three intervals for them, at low call rates) and commits each batch in one
``BEGIN IMMEDIATE`` transaction, in one trip to the connection's thread. ``finish_call`` queues
its UPDATE and returns once the batch holding it has been committed, so many calls ending
together share one commit. They resume a few per loop turn, so new calls' I/O is never held
behind a whole batch of endings. The queue and the caller caches, which the call flow touches
on every call, are ``CdrQueue`` (``callflow.store.queue``, compiled); ``CdrStore`` adds the
writer task.

Durability (WAL journal, ``synchronous=NORMAL``):

* A commit is appended to the WAL file before ``finish_call`` (or ``flush``) returns, so
  **every call whose ``finish_call`` returned survives kill -9 of the daemon** (and a crash of
  Python) with all its attempts queued before it.
* A call's in-progress row (and its attempts) reaches the WAL within about ``batch_interval``
  of ``start_call`` / ``add_attempt`` (three intervals at most, when few calls come in); a
  kill -9 inside that window loses only those rows.
  After a restart, ``resolve_in_progress`` marks calls that never finished.
* ``synchronous=NORMAL`` does not fsync the WAL at each commit: a power cut or kernel crash may
  roll back the most recent commits (those since the last checkpoint), but never corrupts the
  database and never leaves a half-written batch. A checkpoint (which syncs) comes after
  ``WAL_AUTOCHECKPOINT_PAGES`` WAL pages, and at most ``checkpoint_every`` seconds (30) after
  the writer's last one: with a commit then, or as soon as the writer is idle.

Errors: a statement SQLite refuses (a duplicate uniqueid, an attempt of an unknown call, a
finish of a call not in progress) fails only its own row: the batch is retried row by row in
one transaction, the bad row is logged with its parameters and, for ``finish_call``, its
caller gets ``RowRejected`` / ``UnknownCall``. A transaction that cannot be written at all
(locked, disk full, I/O error) is retried with backoff for up to ten minutes, later writes
waiting in memory behind it, then failed and logged: ``cdr_row_lost`` carries each row's kind
and parameters, for ``callflow cdr replay``. Once the store is closing, the retries last
ten seconds at most. If the writer task itself ever stops, it logs ``cdr_writer_died`` (and
``cdr_row_lost`` for what it held) and every later call raises ``StoreClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiosqlite
import structlog

from callflow.store.connection import StrPath, in_thread, open_reader, open_writer
from callflow.store.errors import RowRejected, StoreClosed, StoreError, UnknownCall
from callflow.store.queue import FINISH, START, CdrQueue, Op
from callflow.store.records import ANSWERED, AttemptHistory, CallEnd
from callflow.store.schema import (
    ATTEMPTS_SINCE,
    END_COLUMNS,
    FINISH_CALL,
    IN_PROGRESS,
    INSERT_ATTEMPT,
    INSERT_CALL,
    LATEST_START,
    LINK_NEXT_CALL,
    LOAD_STATE,
    MARK_UNKNOWN,
    RELINK_ANSWERED,
    RELINK_FINISHED,
    SAVE_STATE,
    SET_RECORDING_BYTES,
    START_COLUMNS,
    WARM_ANI,
    end_params,
)

__all__ = ["BATCH_INTERVAL", "TOP_UP_INTERVALS", "CdrStore", "replay_steps"]

T = TypeVar("T")

log = structlog.get_logger(__name__)

_SQL: Final = (INSERT_CALL, INSERT_ATTEMPT, FINISH_CALL, SET_RECORDING_BYTES, SAVE_STATE)
_KIND: Final = ("start_call", "add_attempt", "finish_call", "set_recording_bytes", "save_state")
_ANI_AT: Final = (START_COLUMNS.index("ani_e164"), START_COLUMNS.index("started_at"))
_DISPOSITION: Final = END_COLUMNS.index("disposition")  # in FINISH_CALL's parameters
#: A batch whose transaction fails as a whole (locked by another writer, disk full) is retried,
#: its backoff doubling from _TX_BACKOFF to _TX_BACKOFF_MAX, for _TX_RETRY_FOR seconds after its
#: first failure (an admin's VACUUM or a disk being cleared loses nothing); once the store is
#: closing, for _TX_CLOSE_GRACE seconds at most (then what is still queued is logged and failed).
_TX_RETRY_FOR: Final = 600.0
_TX_CLOSE_GRACE: Final = 10.0
_TX_BACKOFF: Final = 0.05
_TX_BACKOFF_MAX: Final = 5.0
#: Seconds a batch gathers rows by default (CdrStore.open's docstring says why 0.1).
BATCH_INTERVAL: Final = 0.1
#: A batch short of ``batch_rows`` waits for them up to this many batch intervals after its
#: oldest row: at low call rates a commit's fixed cost (its thread's wake-up, the shared index
#: pages it rewrites) is then shared by more calls (BENCHMARKS.md, nineteenth session).
TOP_UP_INTERVALS: Final = 3.0
#: Callers resumed per loop turn after a commit. Resuming a whole batch's calls at once held
#: new calls' routing decisions behind the burst (p99 at 500 calls/s: see BENCHMARKS.md).
_RESUME_SLICE: Final = 4
#: Rows the writer's thread writes between yields of its core (about half a millisecond),
#: while it keeps up: a writer with more queued than one batch does not yield (BENCHMARKS.md).
_YIELD_EVERY: Final = 16


class _Retry:
    """The backoff of one failing transaction: doubling waits, within _TX_RETRY_FOR."""

    __slots__ = ("_loop", "_since", "attempts")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start before the first failure."""
        self._loop = loop
        self._since: float | None = None
        self.attempts = 0

    def next_delay(self) -> float | None:
        """The wait before the next attempt, or None once the retry budget is spent."""
        now = self._loop.time()
        since = self._since = now if self._since is None else self._since
        delay = min(_TX_BACKOFF * 2.0**self.attempts, _TX_BACKOFF_MAX)
        if now + delay > since + _TX_RETRY_FOR:
            return None
        self.attempts += 1
        return delay


class _CountMismatch(Exception):
    """An UPDATE batch touched fewer rows than it had (some call was not in progress)."""


class _Split(Exception):
    """A batch's transaction failed on some row and was rolled back: write it row by row."""


def _links(
    kind: int, ops: list[Op], callers: dict[str, tuple[str, float]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements keeping the caller links exact after these writes (migration 7).

    ``callers`` holds the number and start of calls whose row this store wrote; a finished
    call found there is relinked by them (and forgotten), any other through its row.
    """
    if kind == START:
        ani, at = _ANI_AT
        rows = [(op.params[ani], op.params[at]) for op in ops if op.params[ani]]
        return [(LINK_NEXT_CALL, rows)] if rows else []
    if kind == FINISH:
        # Only an answered call is some earlier call's next answered call: a call that ends
        # any other way leaves every link as it was (its own was set when it started).
        known: list[tuple[Any, ...]] = []
        unknown: list[tuple[Any, ...]] = []
        for op in ops:
            caller = callers.pop(op.uniqueid, None)
            if op.params[_DISPOSITION] == ANSWERED:
                if caller is not None:
                    known.append(caller)
                else:
                    unknown.append((op.uniqueid,))
        steps = [(RELINK_ANSWERED, known)] if known else []
        return [*steps, (RELINK_FINISHED, unknown)] if unknown else steps
    return []


def replay_steps(kind: str, params: list[Any], uniqueid: str) -> list[tuple[str, list[Any]]]:
    """The statements writing one logged row (``cdr_row_lost``) with its caller links.

    ``kind`` is the line's ``op``; a ValueError if it is not a kind of row the writer logs.
    """
    index = _KIND.index(kind)
    op = Op(index, tuple(params), uniqueid, None)
    try:
        links = _links(index, [op], {})
    except IndexError:
        raise ValueError(f"{len(params)} parameters do not fit {kind}") from None
    return [(_SQL[index], [op.params]), *links]


def _out_of_order(rows: list[tuple[Any, ...]], latest: float | None) -> list[tuple[Any, ...]]:
    """The (number, started_at) rows of a batch's starts that some written call may follow.

    Read before the batch's inserts, ``latest`` is the latest start already written. A start at
    or after it, and at or after every start inserted before it in the batch, has no later call
    of its number but those inserted after it, which found it as their previous call: its
    LINK_NEXT_CALL would change nothing, so it is left out (each costs about as much as the
    insert of a call's attempt). Starts come in time order, so this is nearly every row.
    """
    high = -math.inf if latest is None else latest
    needed = []
    for row in rows:
        if row[1] < high:
            needed.append(row)
        else:
            high = row[1]
    return needed


#: One statement of a batch: SQL, its rows, and how many rows it must change (None: unchecked).
_Step = tuple[str, list[tuple[Any, ...]], int | None]


def _commit(
    db: sqlite3.Connection, steps: list[_Step], yield_every: int | None, checkpoint: bool
) -> None:
    """Run a batch's statements in one transaction (on the writer connection's thread).

    A failure to begin (a lock held elsewhere, I/O) is raised as it is: the batch is retried.
    A failure inside the transaction is rolled back and raised as ``_Split``. Every
    ``yield_every`` rows the thread yields its core: where the loop shares it, new calls' I/O
    goes first, as it did when each statement was a trip of its own (without it, p99 at 500
    calls/s was up to twice as long: BENCHMARKS.md). ``None``: no yields, for a writer behind.
    ``checkpoint``: then copy the WAL into the database (passive: readers are not waited for; a
    checkpoint that fails is left to the next one, the batch is committed either way).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        latest = None
        if any(sql == LINK_NEXT_CALL for sql, _, _ in steps):
            latest = db.execute(LATEST_START).fetchone()[0]
        for sql, rows, changes in steps:
            if sql == LINK_NEXT_CALL:
                rows = _out_of_order(rows, latest)
            changed = 0
            every = yield_every or max(1, len(rows))
            for at in range(0, len(rows), every):
                if yield_every:
                    os.sched_yield()
                changed += db.executemany(sql, rows[at : at + every]).rowcount
            if changes is not None and changed != changes:
                raise _CountMismatch(f"{changed} of {changes} calls finished")
        db.execute("COMMIT")
    except (sqlite3.Error, _CountMismatch) as exc:
        _abort(db)
        raise _Split(exc) from exc
    except BaseException:
        _abort(db)
        raise
    if checkpoint:
        _checkpoint(db)


def _checkpoint(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database, passively; one that fails is left to the next."""
    with contextlib.suppress(sqlite3.Error):
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _abort(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _resolve(future: asyncio.Future[None] | None) -> None:
    """Complete a caller's future unless it was cancelled meanwhile."""
    if future is not None and not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None] | None, exc: BaseException) -> None:
    """Fail a caller's future unless it was cancelled meanwhile."""
    if future is not None and not future.done():
        future.set_exception(exc)


def _log_rows(event: str, ops: Collection[Op]) -> None:
    """Log each row's kind and parameters: ``callflow cdr replay`` writes them back."""
    for op in ops:
        log.error(event, op=_KIND[op.kind], uniqueid=op.uniqueid, params=list(op.params))


class CdrStore(CdrQueue):
    """The daemon's only CDR writer; create it with ``await CdrStore.open(path)``."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        rconn: aiosqlite.Connection,
        *,
        batch_interval: float,
        batch_rows: int,
        max_batch: int,
        ani_cache_size: int,
        clock: Callable[[], float],
        checkpoint_every: float = 30.0,
    ) -> None:
        """Wire up an opened store (use ``open``, which also starts the writer task)."""
        super().__init__(rconn, max_batch=max_batch, ani_cache_size=ani_cache_size, clock=clock)
        self._conn = conn
        self._batch_interval = batch_interval
        self._batch_rows = batch_rows
        self._inflight: list[Op] = []
        self._tx_lock = asyncio.Lock()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closing_at: float | None = None
        self._gave_up_closing = False
        self._closer: asyncio.Task[None] | None = None
        self._checkpoint_every = checkpoint_every
        self._checkpointed_at = self._loop.time()
        self._unsynced = False  # commits since the writer's last checkpoint
        self._task = self._loop.create_task(self._run(), name="cdr-writer")
        self._task.add_done_callback(self._writer_done)
        #: Transactions committed so far (batches, row-by-row retries, resolutions).
        self.commits = 0
        #: Rows SQLite refused (logged and failed individually).
        self.rejected_rows = 0

    @classmethod
    async def open(
        cls,
        path: StrPath,
        *,
        batch_interval: float = BATCH_INTERVAL,
        batch_rows: int = 150,
        max_batch: int = 500,
        ani_cache_size: int = 65536,
        clock: Callable[[], float] = time.time,
        checkpoint_every: float = 30.0,
    ) -> Self:
        """Open (creating and migrating if needed) the database and start the writer task.

        ``clock`` stamps ``updated_at``; ``ani_cache_size`` bounds the repeat-caller cache;
        ``checkpoint_every`` bounds the seconds between checkpoints (module docstring).
        ``batch_interval`` is 0.1 s: at 100-500 calls/s that costs 5-10% less CPU per call than
        0.05 s (fewer, larger commits); 0.2 s for every batch saves no more at 500 calls/s and
        lengthens the decision tail, since each commit holds the core longer. So only a batch
        short of ``batch_rows`` (about 50 calls, what 0.1 s brings at 500 calls/s) waits longer
        for them, up to three intervals, at the rate its rows came so far.
        """
        if (
            batch_interval < 0 or batch_rows < 1 or max_batch < 1 or ani_cache_size < 1
            or checkpoint_every <= 0
        ):  # fmt: skip
            raise ValueError(
                "batch_interval >= 0, batch_rows >= 1, max_batch >= 1, ani_cache_size >= 1, "
                "checkpoint_every > 0"
            )
        conn = await open_writer(path)
        try:
            rconn = await open_reader(path)
        except BaseException:
            await conn.close()
            raise
        return cls(
            conn,
            rconn,
            batch_interval=batch_interval,
            batch_rows=batch_rows,
            max_batch=max_batch,
            ani_cache_size=ani_cache_size,
            clock=clock,
            checkpoint_every=checkpoint_every,
        )

    async def __aenter__(self) -> Self:
        """Use the store as an async context manager (closed on exit)."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Flush and close the store."""
        await self.close()

    # -- waiting for the writer ---------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until everything queued so far has been written (or failed and logged)."""
        target = self._enqueued
        if self._done >= target:
            return
        if self._dead is not None:
            raise StoreClosed("the CDR writer died") from self._dead
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((target, future))
        self._kick.set()
        await future

    async def warm_repeat_cache(self, since: float) -> int:
        """Load every number seen since ``since`` so repeat checks for that window need no SQL."""
        await self.flush()
        rows = list(await self._rconn.execute_fetchall(WARM_ANI, (since, self._ani_cache_size + 1)))
        if len(rows) > self._ani_cache_size:
            return 0  # more callers than the cache holds: keep asking SQL on a miss
        for ani, last in reversed(rows):
            self._remember(str(ani), float(last))
        self._known_since = min(self._known_since, since)
        return len(rows)

    async def attempts_since(self, since: float) -> list[AttemptHistory]:
        """Dial attempts started since a time, for rebuilding the routing counters."""
        rows = await self._rconn.execute_fetchall(ATTEMPTS_SINCE, (since,))
        return [AttemptHistory(str(r[0]), r[1], float(r[2]), bool(r[3]), float(r[4]), r[5])
                for r in rows]  # fmt: skip

    async def load_state(self, key: str) -> str | None:
        """A value the daemon keeps across restarts (e.g. round-robin cursors)."""
        await self.flush()
        rows = list(await self._rconn.execute_fetchall(LOAD_STATE, (key,)))
        return str(rows[0][0]) if rows else None

    async def transact(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` (its own transaction) on the writer connection, between batches.

        The billing ledger posts through it, so the daemon has one writer connection and its
        transactions never wait on each other's locks. A locked or full database is retried
        like a batch (``work`` must be idempotent); then, or once closing, the error is raised.
        """
        retry = _Retry(self._loop)
        while True:
            self._check_alive()
            try:
                async with self._tx_lock:
                    result = await work(self._conn)
                self._unsynced = True
                return result
            except sqlite3.OperationalError as exc:
                delay = retry.next_delay()
                if delay is None or self._closing:
                    raise
                log.warning("cdr_transact_retry_later", attempt=retry.attempts, error=repr(exc))
                await asyncio.sleep(delay)

    # -- restart ------------------------------------------------------------------------------

    async def resolve_in_progress(
        self,
        resolutions: Mapping[str, CallEnd] | None = None,
        *,
        older_than: float | None = None,
        keep: Collection[str] = (),
    ) -> int:
        """Close rows left 'in_progress' (e.g. by a crash) and return how many were touched.

        A row with an entry in ``resolutions`` (facts learnt from Asterisk) gets that end and
        status 'completed'; the others become status and disposition 'unknown' with ended_at
        NULL, keeping everything else. ``older_than`` limits both to calls started before it;
        rows named in ``keep`` (calls Asterisk still has) stay in progress.
        """
        for key, end in (resolutions or {}).items():
            if key != end.uniqueid:
                raise ValueError(f"resolution key {key!r} != its uniqueid {end.uniqueid!r}")
        await self.flush()
        self._check_alive()
        now = self._clock()
        extra_sql, extra = (
            ("", ()) if older_than is None else (" AND started_at < ?", (older_than,))
        )
        conn = self._conn
        async with self._tx_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                resolved = 0
                if resolutions:
                    params = [(*end_params(end, now), *extra) for end in resolutions.values()]
                    cur = await conn.executemany(FINISH_CALL + extra_sql, params)
                    resolved = max(cur.rowcount, 0)
                    await conn.executemany(RELINK_FINISHED, [(uid,) for uid in resolutions])
                kept = json.dumps(sorted(keep))
                cur = await conn.execute(MARK_UNKNOWN + extra_sql, (now, kept, *extra))
                unknown = max(cur.rowcount, 0)
                await conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
            self.commits += 1
            self._unsynced = True
        log.info("cdr_in_progress_resolved", resolved=resolved, unknown=unknown)
        return resolved + unknown

    async def in_progress(self) -> list[str]:
        """The uniqueids of rows still 'in_progress' (after everything queued is written)."""
        await self.flush()
        self._check_alive()
        async with self._rconn.execute(IN_PROGRESS) as cur:
            return [row[0] for row in await cur.fetchall()]

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Write everything still queued, stop the writer and close the connections (idempotent)."""
        if self._closer is None:
            self._closer = self._loop.create_task(self._close())
        await asyncio.shield(self._closer)

    async def _close(self) -> None:
        """Drain, then close both connections."""
        self._closing = True
        self._closing_at = self._loop.time()
        self._wake.set()
        self._kick.set()
        try:
            await asyncio.wait([self._task])
        finally:
            await self._rconn.close()
            await self._conn.close()

    # -- internals ----------------------------------------------------------------------------

    async def _run(self) -> None:
        """The writer task: wait for work, gather a batch, write it, release flush waiters."""
        while True:
            if not self._ops:
                if self._closing:
                    return
                self._wake.clear()
                await self._idle()
                continue
            if not self._hurried():
                await self._kicked_within(self._oldest + self._batch_interval - self._loop.time())
                if not self._hurried():
                    await self._kicked_within(self._top_up())
            batch = self._inflight = self._take()
            await self._write(batch)
            await self._resume(batch)
            self._inflight = []
            self._done += len(batch)
            self._release_waiters()

    async def _idle(self) -> None:
        """Wait for work; checkpoint meanwhile once ``checkpoint_every`` is up after a commit."""
        if not self._unsynced:
            await self._wake.wait()
            return
        due = self._checkpointed_at + self._checkpoint_every - self._loop.time()
        if due > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due):
                    await self._wake.wait()
            if self._wake.is_set():
                return
        async with self._tx_lock:
            await in_thread(self._conn, _checkpoint)
        self._checkpointed_at = self._loop.time()
        self._unsynced = False

    def _hurried(self) -> bool:
        """Whether the queued writes are to go now: closing, a flush, or a full batch."""
        return self._closing or bool(self._waiters) or self._kick.is_set()

    async def _kicked_within(self, delay: float) -> None:
        """Wait up to ``delay`` seconds for a full batch, a flush or close."""
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._kick.wait()

    def _top_up(self) -> float:
        """How much longer a batch short of batch_rows waits, at the rate its rows came so far."""
        queued = len(self._ops)
        now = self._loop.time()
        age = now - self._oldest
        if not queued or queued >= self._batch_rows or age <= 0:
            return 0.0
        latest = self._oldest + TOP_UP_INTERVALS * self._batch_interval
        return min((self._batch_rows - queued) * age / queued, latest - now)

    def _take(self) -> list[Op]:
        """Pop up to max_batch queued writes."""
        ops = self._ops
        batch = [ops.popleft() for _ in range(min(len(ops), self._max_batch))]
        if ops:
            self._oldest = self._loop.time()
        if len(ops) < self._max_batch:
            self._kick.clear()
        return batch

    async def _resume(self, batch: list[Op]) -> None:
        """Resume the batch's waiting callers, a few per loop turn (failed ones are done)."""
        resumed = 0
        for op in batch:
            future = op.future
            if future is None or future.done():
                continue
            if resumed and resumed % _RESUME_SLICE == 0:
                await asyncio.sleep(0)  # let I/O and new calls in between
                if future.done():
                    continue
            future.set_result(None)
            resumed += 1

    def _release_waiters(self) -> None:
        """Complete the flush() calls whose writes are all done."""
        if not self._waiters:
            return
        keep = []
        for target, future in self._waiters:
            if target <= self._done:
                _resolve(future)
            else:
                keep.append((target, future))
        self._waiters = keep

    async def _write(self, batch: list[Op]) -> None:
        """Write one batch, retrying a failed transaction with backoff before giving up."""
        if self._gave_up_closing:  # the database stayed unwritable: fail the rest at once
            self._lose(batch, StoreClosed("the CDR database stayed unwritable while closing"))
            return
        retry = _Retry(self._loop)
        while True:
            try:
                async with self._tx_lock:
                    await self._write_batch(batch)
                return
            except Exception as exc:
                delay = retry.next_delay()
                if delay is None or self._past_close_grace(delay):
                    self._gave_up_closing = self._closing
                    self._lose(batch, exc)
                    return
                log.warning(
                    "cdr_batch_retry_later", rows=len(batch), attempt=retry.attempts,
                    error=repr(exc),
                )  # fmt: skip
                await asyncio.sleep(delay)

    def _past_close_grace(self, delay: float) -> bool:
        """Whether the store is closing and its grace for unwritable batches ends within delay."""
        closing_at = self._closing_at
        return closing_at is not None and self._loop.time() + delay > closing_at + _TX_CLOSE_GRACE

    async def _write_batch(self, batch: list[Op]) -> None:
        """Commit a batch with one executemany per kind; on a bad row, go row by row."""
        groups: tuple[list[Op], ...] = tuple([] for _ in _SQL)
        for op in batch:
            groups[op.kind].append(op)
        steps: list[_Step] = []
        for kind, ops in enumerate(groups):
            if ops:
                finished = len(ops) if kind == FINISH else None
                steps.append((_SQL[kind], [op.params for op in ops], finished))
                steps.extend((sql, rows, None) for sql, rows in _links(kind, ops, self._callers))
        try:
            # Writes queued past this batch: the writer is behind, and yielding its core to
            # the loop's new calls would only put it further behind (memory grows).
            yield_every = None if self._ops else _YIELD_EVERY
            now = self._loop.time()
            checkpoint = now - self._checkpointed_at >= self._checkpoint_every
            await in_thread(self._conn, _commit, steps, yield_every, checkpoint)
            self._unsynced = not checkpoint
            if checkpoint:
                self._checkpointed_at = now
        except _Split as exc:
            log.warning("cdr_batch_split", rows=len(batch), error=repr(exc.__cause__))
            await self._write_rows([op for ops in groups for op in ops])
            return
        self.commits += 1

    async def _write_rows(self, ops: list[Op]) -> None:
        """Commit a batch statement by statement in one transaction, skipping refused rows."""
        conn = self._conn
        outcomes: list[StoreError | None] = []
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                try:
                    cur = await conn.execute(_SQL[op.kind], op.params)
                except sqlite3.Error as exc:
                    if not conn.in_transaction:  # SQLite aborted the whole transaction
                        raise
                    outcomes.append(self._reject(op, exc))
                    continue
                outcomes.append(
                    self._reject(op, None) if op.kind == FINISH and cur.rowcount == 0 else None
                )
                if outcomes[-1] is None:
                    for links in _links(op.kind, [op], self._callers):
                        await conn.executemany(*links)
            await conn.execute("COMMIT")
        except BaseException:
            await self._rollback()
            raise
        self.commits += 1
        self._unsynced = True
        for op, outcome in zip(ops, outcomes, strict=True):
            if outcome is not None:
                self.rejected_rows += 1
                _fail(op.future, outcome)

    def _reject(self, op: Op, exc: sqlite3.Error | None) -> StoreError:
        """Log a refused row and build the error its caller will get."""
        if op.kind == START:  # its number and start are not the row's (a uniqueid started twice)
            self._callers.pop(op.uniqueid, None)
        log.error("cdr_row_rejected", op=_KIND[op.kind], uniqueid=op.uniqueid, error=repr(exc),
                  params=list(op.params))  # fmt: skip
        if exc is None:
            return UnknownCall(f"finish_call: no call {op.uniqueid!r} in progress")
        err = RowRejected(f"{_KIND[op.kind]} {op.uniqueid!r} refused by SQLite: {exc}")
        err.__cause__ = exc
        return err

    def _lose(self, batch: list[Op], exc: Exception) -> None:
        """Give up on a batch that could not be written: log it and fail its callers."""
        self.rejected_rows += len(batch)
        log.error(
            "cdr_batch_lost",
            rows=len(batch),
            uniqueids=sorted({op.uniqueid for op in batch}),
            error=repr(exc),
            exc_info=exc,
        )
        _log_rows("cdr_row_lost", batch)
        for op in batch:
            err = StoreError(f"CDR write of {op.uniqueid!r} failed: {exc}")
            err.__cause__ = exc
            _fail(op.future, err)

    async def _rollback(self) -> None:
        """Roll back the open transaction, if any."""
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        """Make a writer that stopped unexpectedly loud: log it and fail everyone waiting."""
        exc = None if task.cancelled() else task.exception()
        if exc is None and not task.cancelled() and self._closing:
            return
        self._closing = True
        self._dead = exc if exc is not None else asyncio.CancelledError()
        log.critical(
            "cdr_writer_died",
            pending=self.pending,
            error=repr(self._dead),
            exc_info=exc if exc is not None else False,
        )
        _log_rows("cdr_row_lost", (*self._inflight, *self._ops))
        for op in (*self._inflight, *self._ops):
            err = StoreClosed("the CDR writer died")
            err.__cause__ = self._dead
            _fail(op.future, err)
        for _, future in self._waiters:
            err = StoreClosed("the CDR writer died")
            err.__cause__ = self._dead
            _fail(future, err)
        self._waiters = []
