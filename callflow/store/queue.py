"""The call flow's side of the CDR writer: rows queued without waiting, and the caller caches.

``CdrQueue`` holds what the event loop touches on every call (the queue of rows, the cache of
each number's last start and last answer) and nothing that waits on SQL but a cache miss. The
writer task that drains the queue is ``CdrStore`` (``callflow.store.writer``), its subclass.
This module is compiled (``make compiled``); ``CdrStore`` is not (it awaits in ``except:``
blocks, which compiled coroutines get wrong).
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final

import aiosqlite
from mypy_extensions import mypyc_attr

from callflow.store.errors import StoreClosed
from callflow.store.records import CallEnd, CallStart, DialAttempt
from callflow.store.schema import LAST_ANSWERED, LAST_SEEN, attempt_params, end_params, start_params

__all__ = ["ATTEMPT", "FINISH", "RECORDING", "START", "STATE", "CdrQueue", "Op"]

#: Kinds of queued write (an index into the writer's statements).
START: Final = 0
ATTEMPT: Final = 1
FINISH: Final = 2
RECORDING: Final = 3
STATE: Final = 4
#: Calls in progress whose number and start the store keeps for their finish (past it, all
#: are forgotten at once, in O(1): their finishes find them in the database instead).
CALLERS_MAX: Final = 100_000


class Op:
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


@mypyc_attr(allow_interpreted_subclasses=True)
class CdrQueue:
    """Queue CDR rows and answer repeat-caller questions; ``CdrStore`` writes what it queues."""

    def __init__(
        self,
        rconn: aiosqlite.Connection,
        *,
        max_batch: int,
        ani_cache_size: int,
        clock: Callable[[], float],
    ) -> None:
        """An empty queue on the running loop; ``rconn`` answers cache misses."""
        self._clock = clock
        self._rconn = rconn
        self._max_batch = max_batch
        self._ani_cache_size = ani_cache_size
        self._loop = asyncio.get_running_loop()
        self._ops: deque[Op] = deque()
        self._oldest = 0.0
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._enqueued = 0
        self._done = 0
        self._closing = False
        self._dead: BaseException | None = None
        self._ani_seen: OrderedDict[str, float] = OrderedDict()
        # uniqueid -> (number, started_at) of the calls started here and not finished yet.
        self._callers: dict[str, tuple[str, float]] = {}
        self._callers_max = CALLERS_MAX
        # Every number that started a call at or after _known_since is in _ani_seen, except
        # those evicted (all last seen at or before _evicted_upto): a miss past both is a "no".
        self._answered_by: OrderedDict[str, tuple[str, float] | None] = OrderedDict()
        self._known_since = math.inf
        self._evicted_upto = -math.inf
        #: Repeat-caller and sticky-routing lookups that had to ask SQLite (cache misses).
        self.ani_lookups = 0

    @property
    def pending(self) -> int:
        """Writes queued or being committed, not yet done."""
        return self._enqueued - self._done

    def start_call(self, call: CallStart) -> None:
        """Queue the call's in-progress row and return at once (no await, no SQL)."""
        self._enqueue(Op(START, start_params(call, self._clock()), call.uniqueid, None))
        if call.ani_e164:
            self._remember(call.ani_e164, call.started_at)
            callers = self._callers
            callers[call.uniqueid] = (call.ani_e164, call.started_at)
            if len(callers) > self._callers_max:  # calls never finished (a leak): forget all
                callers.clear()

    def add_attempt(self, attempt: DialAttempt) -> None:
        """Queue one dial attempt of a started call and return at once."""
        self._enqueue(Op(ATTEMPT, attempt_params(attempt), attempt.uniqueid, None))

    def set_recording_bytes(self, uniqueid: str, size: int) -> None:
        """Queue the size of a call's recording, known once Asterisk has closed the file."""
        self._enqueue(Op(RECORDING, (size, self._clock(), uniqueid), uniqueid, None))

    async def finish_call(self, end: CallEnd) -> None:
        """Queue the call's final state and return once it is committed (group commit)."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._enqueue(Op(FINISH, end_params(end, self._clock()), end.uniqueid, future))
        await future

    def save_state(self, key: str, value: str) -> None:
        """Queue a value to keep across restarts."""
        self._enqueue(Op(STATE, (key, value), key, None))

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

    def _complete_since(self, since: float) -> bool:
        """Whether every number that called at or after ``since`` is in the repeat cache."""
        return since >= self._known_since and since > self._evicted_upto

    def _check_alive(self) -> None:
        """Raise StoreClosed if the store no longer accepts writes."""
        if self._closing:
            err = StoreClosed("the CDR store is closed")
            err.__cause__ = self._dead  # not `raise ... from`: compiled, that drops the cause
            raise err

    def _enqueue(self, op: Op) -> None:
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
