"""The single CDR writer: one SQLite connection, a queue, and batched (group) commits.

The call flow never waits for SQL on its hot path: ``start_call`` and ``add_attempt`` only queue
a row. A writer task drains the queue every ``batch_interval`` seconds (at once when
``max_batch`` rows are waiting, on ``flush`` and on ``close``) and commits each batch in one
``BEGIN IMMEDIATE`` transaction, in one trip to the connection's thread. ``finish_call`` queues
its UPDATE and returns once the batch holding it has been committed, so many calls ending
together share one commit. They resume a few per loop turn, so new calls' I/O is never held
behind a whole batch of endings.

Durability (WAL journal, ``synchronous=NORMAL``):

* A commit is appended to the WAL file before ``finish_call`` (or ``flush``) returns, so
  **every call whose ``finish_call`` returned survives kill -9 of the daemon** (and a crash of
  Python) with all its attempts queued before it.
* A call's in-progress row (and its attempts) reaches the WAL within about ``batch_interval``
  of ``start_call`` / ``add_attempt``; a kill -9 inside that window loses only those rows.
  After a restart, ``resolve_in_progress`` marks calls that never finished.
* ``synchronous=NORMAL`` does not fsync the WAL at each commit: a power cut or kernel crash may
  roll back the most recent commits (those since the last checkpoint), but never corrupts the
  database and never leaves a half-written batch.

Errors: a statement SQLite refuses (a duplicate uniqueid, an attempt of an unknown call, a
finish of a call not in progress) fails only its own row: the batch is retried row by row in
one transaction, the bad row is logged and, for ``finish_call``, its caller gets
``RowRejected`` / ``UnknownCall``. A transaction that cannot be written at all (locked, disk
full, I/O error) is retried with backoff for up to ten minutes, later writes waiting in memory
behind it, then logged and failed; once the store is closing, for ten seconds at most. If the
writer task itself ever stops, it logs ``cdr_writer_died`` and every later call raises
``StoreClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiosqlite
import structlog

from callflow.store.connection import StrPath, in_thread, open_reader, open_writer
from callflow.store.errors import RowRejected, StoreClosed, StoreError, UnknownCall
from callflow.store.records import ANSWERED, AttemptHistory, CallEnd, CallStart, DialAttempt
from callflow.store.schema import (
    ATTEMPTS_SINCE,
    END_COLUMNS,
    FINISH_CALL,
    IN_PROGRESS,
    INSERT_ATTEMPT,
    INSERT_CALL,
    LAST_ANSWERED,
    LAST_SEEN,
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
    attempt_params,
    end_params,
    start_params,
)

__all__ = ["CdrStore"]

T = TypeVar("T")

log = structlog.get_logger(__name__)

_START: Final = 0
_ATTEMPT: Final = 1
_FINISH: Final = 2
_RECORDING: Final = 3
_STATE: Final = 4
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
#: Callers resumed per loop turn after a commit. Resuming a whole batch's calls at once held
#: new calls' routing decisions behind the burst (p99 at 500 calls/s: see BENCHMARKS.md).
_RESUME_SLICE: Final = 4
#: Calls in progress whose number and start the store keeps for their finish (past it, all
#: are forgotten at once, in O(1): their finishes find them in the database instead).
_CALLERS_MAX: Final = 100_000
#: Rows the writer's thread writes between yields of its core (about half a millisecond).
_YIELD_EVERY: Final = 16


class _Op:
    """One queued write: statement kind, bound values, and the future of an awaiting caller."""

    __slots__ = ("future", "kind", "params", "uniqueid")

    def __init__(
        self, kind: int, params: tuple[Any, ...], uniqueid: str, future: asyncio.Future[None] | None
    ) -> None:
        """Build a queued write."""
        self.kind = kind
        self.params = params
        self.uniqueid = uniqueid
        self.future = future


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
    kind: int, ops: list[_Op], callers: dict[str, tuple[str, float]]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements keeping the caller links exact after these writes (migration 7).

    ``callers`` holds the number and start of calls whose row this store wrote; a finished
    call found there is relinked by them (and forgotten), any other through its row.
    """
    if kind == _START:
        ani, at = _ANI_AT
        rows = [(op.params[ani], op.params[at]) for op in ops if op.params[ani]]
        return [(LINK_NEXT_CALL, rows)] if rows else []
    if kind == _FINISH:
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


def _commit(db: sqlite3.Connection, steps: list[_Step]) -> None:
    """Run a batch's statements in one transaction (on the writer connection's thread).

    A failure to begin (a lock held elsewhere, I/O) is raised as it is: the batch is retried.
    A failure inside the transaction is rolled back and raised as ``_Split``. Every
    ``_YIELD_EVERY`` rows the thread yields its core: where the loop shares it, new calls' I/O
    goes first, as it did when each statement was a trip of its own (without it, p99 at 500
    calls/s was up to twice as long: BENCHMARKS.md).
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
            for at in range(0, len(rows), _YIELD_EVERY):
                os.sched_yield()
                changed += db.executemany(sql, rows[at : at + _YIELD_EVERY]).rowcount
            if changes is not None and changed != changes:
                raise _CountMismatch(f"{changed} of {changes} calls finished")
        db.execute("COMMIT")
    except (sqlite3.Error, _CountMismatch) as exc:
        _abort(db)
        raise _Split(exc) from exc
    except BaseException:
        _abort(db)
        raise


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


class CdrStore:
    """The daemon's only CDR writer; create it with ``await CdrStore.open(path)``."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        rconn: aiosqlite.Connection,
        *,
        batch_interval: float,
        max_batch: int,
        ani_cache_size: int,
        clock: Callable[[], float],
    ) -> None:
        """Wire up an opened store (use ``open``, which also starts the writer task)."""
        self._clock = clock
        self._conn = conn
        self._rconn = rconn
        self._batch_interval = batch_interval
        self._max_batch = max_batch
        self._ani_cache_size = ani_cache_size
        self._loop = asyncio.get_running_loop()
        self._ops: deque[_Op] = deque()
        self._inflight: list[_Op] = []
        self._oldest = 0.0
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._tx_lock = asyncio.Lock()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._enqueued = 0
        self._done = 0
        self._closing = False
        self._closing_at: float | None = None
        self._gave_up_closing = False
        self._dead: BaseException | None = None
        self._closer: asyncio.Task[None] | None = None
        self._ani_seen: OrderedDict[str, float] = OrderedDict()
        # uniqueid -> (number, started_at) of the calls started here and not finished yet.
        self._callers: dict[str, tuple[str, float]] = {}
        # Every number that started a call at or after _known_since is in _ani_seen, except
        # those evicted (all last seen at or before _evicted_upto): a miss past both is a "no".
        self._answered_by: OrderedDict[str, tuple[str, float] | None] = OrderedDict()
        self._known_since = math.inf
        self._evicted_upto = -math.inf
        self._task = self._loop.create_task(self._run(), name="cdr-writer")
        self._task.add_done_callback(self._writer_done)
        #: Transactions committed so far (batches, row-by-row retries, resolutions).
        self.commits = 0
        #: Rows SQLite refused (logged and failed individually).
        self.rejected_rows = 0
        #: Repeat-caller and sticky-routing lookups that had to ask SQLite (cache misses).
        self.ani_lookups = 0

    @classmethod
    async def open(
        cls,
        path: StrPath,
        *,
        batch_interval: float = 0.1,
        max_batch: int = 500,
        ani_cache_size: int = 65536,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """Open (creating and migrating if needed) the database and start the writer task.

        ``clock`` stamps ``updated_at``; ``ani_cache_size`` bounds the repeat-caller cache.
        ``batch_interval`` is 0.1 s: at 100-500 calls/s that costs 5-10% less CPU per call than
        0.05 s (fewer, larger commits); 0.2 s saves no more and lengthens the decision tail, since
        each commit holds the core longer.
        """
        if batch_interval < 0 or max_batch < 1 or ani_cache_size < 1:
            raise ValueError("batch_interval >= 0, max_batch >= 1, ani_cache_size >= 1")
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
            max_batch=max_batch,
            ani_cache_size=ani_cache_size,
            clock=clock,
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

    @property
    def pending(self) -> int:
        """Writes queued or being committed, not yet done."""
        return self._enqueued - self._done

    # -- the hot path -------------------------------------------------------------------------

    def start_call(self, call: CallStart) -> None:
        """Queue the call's in-progress row and return at once (no await, no SQL)."""
        self._enqueue(_Op(_START, start_params(call, self._clock()), call.uniqueid, None))
        if call.ani_e164:
            self._remember(call.ani_e164, call.started_at)
            callers = self._callers
            callers[call.uniqueid] = (call.ani_e164, call.started_at)
            if len(callers) > _CALLERS_MAX:  # calls never finished (a leak): forget them all
                callers.clear()

    def add_attempt(self, attempt: DialAttempt) -> None:
        """Queue one dial attempt of a started call and return at once."""
        self._enqueue(_Op(_ATTEMPT, attempt_params(attempt), attempt.uniqueid, None))

    def set_recording_bytes(self, uniqueid: str, size: int) -> None:
        """Queue the size of a call's recording, known once Asterisk has closed the file."""
        self._enqueue(_Op(_RECORDING, (size, self._clock(), uniqueid), uniqueid, None))

    async def finish_call(self, end: CallEnd) -> None:
        """Queue the call's final state and return once it is committed (group commit)."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._enqueue(_Op(_FINISH, end_params(end, self._clock()), end.uniqueid, future))
        await future

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

    async def is_repeat_caller(self, ani_e164: str, since: float) -> bool:
        """Whether this E.164 number started a call at or after ``since`` (ask before start_call).

        The last start time per number is cached (updated by ``start_call``), so the common case
        runs no SQL; a miss asks the read connection once via the (ani_e164, started_at) index.
        """
        if not ani_e164:
            return False
        last = self._ani_seen.get(ani_e164)
        if last is None and self._complete_since(since):
            return False  # the cache holds every caller since then: no SQL needed
        if last is None:
            self.ani_lookups += 1
            rows = list(await self._rconn.execute_fetchall(LAST_SEEN, (ani_e164,)))
            found = rows[0][0] if rows else None
            last = self._remember(ani_e164, -math.inf if found is None else float(found))
        else:
            self._ani_seen.move_to_end(ani_e164)
        return last >= since

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

    def _complete_since(self, since: float) -> bool:
        """Whether every number that called at or after ``since`` is in the repeat cache."""
        return since >= self._known_since and since > self._evicted_upto

    async def last_answered(
        self, ani_e164: str, since: float = -math.inf
    ) -> tuple[str, float] | None:
        """The target that last answered this caller and when (cached; for sticky routing).

        Ask before ``start_call``: a number the repeat cache has not seen since ``since`` was
        not answered since then either, so that is None without SQL (older answers are ignored).
        """
        if not ani_e164:
            return None
        if ani_e164 in self._answered_by:
            return self._answered_by[ani_e164]
        seen = self._ani_seen.get(ani_e164)
        if (seen is None and self._complete_since(since)) or (seen is not None and seen < since):
            return None
        self.ani_lookups += 1
        rows = list(await self._rconn.execute_fetchall(LAST_ANSWERED, (ani_e164,)))
        found = (str(rows[0][0]), float(rows[0][1])) if rows else None
        self.note_answered(ani_e164, found)
        return found

    def note_answered(self, ani_e164: str, answer: tuple[str, float] | None) -> None:
        """Remember who answered a caller (the call flow calls this when a call is answered)."""
        cache = self._answered_by
        cache[ani_e164] = answer
        cache.move_to_end(ani_e164)
        if len(cache) > self._ani_cache_size:
            cache.popitem(last=False)

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

    def save_state(self, key: str, value: str) -> None:
        """Queue a value to keep across restarts."""
        self._enqueue(_Op(_STATE, (key, value), key, None))

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
                    return await work(self._conn)
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

    def _check_alive(self) -> None:
        """Raise StoreClosed if the store no longer accepts writes."""
        if self._closing:
            raise StoreClosed("the CDR store is closed") from self._dead

    def _enqueue(self, op: _Op) -> None:
        """Append a write and wake the writer when needed."""
        self._check_alive()
        ops = self._ops
        ops.append(op)
        self._enqueued += 1
        n = len(ops)
        if n == 1:
            self._oldest = self._loop.time()
            self._wake.set()
        if n >= self._max_batch:
            self._kick.set()

    def _remember(self, ani: str, started_at: float) -> float:
        """Record a start time for a number in the LRU cache; return the latest known."""
        cache = self._ani_seen
        last = cache.get(ani)
        if last is None or started_at > last:
            last = started_at
        cache[ani] = last
        cache.move_to_end(ani)
        if len(cache) > self._ani_cache_size:
            _, evicted = cache.popitem(last=False)
            self._evicted_upto = max(self._evicted_upto, evicted)
        return last

    async def _run(self) -> None:
        """The writer task: wait for work, gather a batch, write it, release flush waiters."""
        while True:
            if not self._ops:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not (self._closing or self._waiters or self._kick.is_set()):
                delay = self._oldest + self._batch_interval - self._loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._kick.wait()
            batch = self._inflight = self._take()
            await self._write(batch)
            await self._resume(batch)
            self._inflight = []
            self._done += len(batch)
            self._release_waiters()

    def _take(self) -> list[_Op]:
        """Pop up to max_batch queued writes."""
        ops = self._ops
        batch = [ops.popleft() for _ in range(min(len(ops), self._max_batch))]
        if ops:
            self._oldest = self._loop.time()
        if len(ops) < self._max_batch:
            self._kick.clear()
        return batch

    async def _resume(self, batch: list[_Op]) -> None:
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

    async def _write(self, batch: list[_Op]) -> None:
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

    async def _write_batch(self, batch: list[_Op]) -> None:
        """Commit a batch with one executemany per kind; on a bad row, go row by row."""
        groups: tuple[list[_Op], ...] = tuple([] for _ in _SQL)
        for op in batch:
            groups[op.kind].append(op)
        steps: list[_Step] = []
        for kind, ops in enumerate(groups):
            if ops:
                finished = len(ops) if kind == _FINISH else None
                steps.append((_SQL[kind], [op.params for op in ops], finished))
                steps.extend((sql, rows, None) for sql, rows in _links(kind, ops, self._callers))
        try:
            await in_thread(self._conn, _commit, steps)
        except _Split as exc:
            log.warning("cdr_batch_split", rows=len(batch), error=repr(exc.__cause__))
            await self._write_rows([op for ops in groups for op in ops])
            return
        self.commits += 1

    async def _write_rows(self, ops: list[_Op]) -> None:
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
                    self._reject(op, None) if op.kind == _FINISH and cur.rowcount == 0 else None
                )
                if outcomes[-1] is None:
                    for links in _links(op.kind, [op], self._callers):
                        await conn.executemany(*links)
            await conn.execute("COMMIT")
        except BaseException:
            await self._rollback()
            raise
        self.commits += 1
        for op, outcome in zip(ops, outcomes, strict=True):
            if outcome is not None:
                self.rejected_rows += 1
                _fail(op.future, outcome)

    def _reject(self, op: _Op, exc: sqlite3.Error | None) -> StoreError:
        """Log a refused row and build the error its caller will get."""
        if op.kind == _START:  # its number and start are not the row's (a uniqueid started twice)
            self._callers.pop(op.uniqueid, None)
        log.error("cdr_row_rejected", op=_KIND[op.kind], uniqueid=op.uniqueid, error=repr(exc))
        if exc is None:
            return UnknownCall(f"finish_call: no call {op.uniqueid!r} in progress")
        err = RowRejected(f"{_KIND[op.kind]} {op.uniqueid!r} refused by SQLite: {exc}")
        err.__cause__ = exc
        return err

    def _lose(self, batch: list[_Op], exc: Exception) -> None:
        """Give up on a batch that could not be written: log it and fail its callers."""
        self.rejected_rows += len(batch)
        log.error(
            "cdr_batch_lost",
            rows=len(batch),
            uniqueids=sorted({op.uniqueid for op in batch}),
            error=repr(exc),
            exc_info=exc,
        )
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
        for op in (*self._inflight, *self._ops):
            err = StoreClosed("the CDR writer died")
            err.__cause__ = self._dead
            _fail(op.future, err)
        for _, future in self._waiters:
            err = StoreClosed("the CDR writer died")
            err.__cause__ = self._dead
            _fail(future, err)
        self._waiters = []
