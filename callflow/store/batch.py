"""One batch of CDR writes committed in one SQLite transaction: plain sqlite3, no asyncio.

The writer process (``callflow.store.writerproc``) runs this; the daemon only queues the
statements and learns, per statement, whether SQLite took it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from callflow.store.schema import (
    FINISH_CALL,
    INSERT_ATTEMPT,
    INSERT_CALL,
    LINK_NEXT_CALL,
    RELINK_FINISHED,
    SAVE_STATE,
    SET_RECORDING_BYTES,
    START_COLUMNS,
)

__all__ = [
    "ATTEMPT",
    "FINISH",
    "KIND",
    "RECORDING",
    "REJECTED",
    "SQL",
    "START",
    "STATE",
    "UNKNOWN",
    "Refusals",
    "Write",
    "write_batch",
]

START: Final = 0
ATTEMPT: Final = 1
FINISH: Final = 2
RECORDING: Final = 3
STATE: Final = 4
SQL: Final = (INSERT_CALL, INSERT_ATTEMPT, FINISH_CALL, SET_RECORDING_BYTES, SAVE_STATE)
KIND: Final = ("start_call", "add_attempt", "finish_call", "set_recording_bytes", "save_state")
#: A refusal: SQLite refused the statement (with its error) or a finish matched no call.
REJECTED: Final = "rejected"
UNKNOWN: Final = "unknown"
_ANI_AT: Final = (START_COLUMNS.index("ani_e164"), START_COLUMNS.index("started_at"))

#: One write: statement kind, bound values, the call's uniqueid.
Write = tuple[int, tuple[Any, ...], str]
#: Index in the batch → (REJECTED, error class name, message) or (UNKNOWN, "", "").
Refusals = dict[int, tuple[str, str, str]]


class _CountMismatch(Exception):
    """An UPDATE batch touched fewer rows than it had (some call was never started)."""


def _links(kind: int, writes: Sequence[Write]) -> tuple[str, list[tuple[Any, ...]]] | None:
    """The statement keeping the caller links exact after these writes (migration 7), if any."""
    if kind == START:
        ani, at = _ANI_AT
        rows = [(w[1][ani], w[1][at]) for w in writes if w[1][ani]]
        return (LINK_NEXT_CALL, rows) if rows else None
    if kind == FINISH:
        return RELINK_FINISHED, [(w[2],) for w in writes]
    return None


def write_batch(conn: sqlite3.Connection, writes: Sequence[Write]) -> Refusals:
    """Commit a batch (one executemany per kind); on a refused row, again row by row.

    Returns the refused writes by index. A transaction that fails as a whole (locked, disk
    full, I/O error) is rolled back and its exception raised.
    """
    groups: tuple[list[int], ...] = tuple([] for _ in SQL)
    for index, write in enumerate(writes):
        groups[write[0]].append(index)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, indexes in enumerate(groups):
            if indexes:
                chosen = [writes[i] for i in indexes]
                cur = conn.executemany(SQL[kind], [w[1] for w in chosen])
                if kind == FINISH and cur.rowcount != len(chosen):
                    raise _CountMismatch(f"{cur.rowcount} of {len(chosen)} calls finished")
                if links := _links(kind, chosen):
                    conn.executemany(*links)
        conn.execute("COMMIT")
    except (sqlite3.Error, _CountMismatch):
        _rollback(conn)
        return _write_rows(conn, writes, [i for indexes in groups for i in indexes])
    except BaseException:
        _rollback(conn)
        raise
    return {}


def _write_rows(conn: sqlite3.Connection, writes: Sequence[Write], order: list[int]) -> Refusals:
    """Commit a batch statement by statement in one transaction, skipping refused rows."""
    refused: Refusals = {}
    conn.execute("BEGIN IMMEDIATE")
    try:
        for index in order:
            kind, params, _ = write = writes[index]
            try:
                cur = conn.execute(SQL[kind], params)
            except sqlite3.Error as exc:
                if not conn.in_transaction:  # SQLite aborted the whole transaction
                    raise
                refused[index] = (REJECTED, type(exc).__name__, str(exc))
                continue
            if kind == FINISH and cur.rowcount == 0:
                refused[index] = (UNKNOWN, "", "")
            elif links := _links(kind, [write]):
                conn.executemany(*links)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return refused


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
