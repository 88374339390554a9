"""The current shape of the CDR tables: column lists, DML statements, pragmas, row decoding.

The DDL itself lives in :mod:`callflow.store.migrations` (frozen history); this module mirrors
the latest version and is checked against it by the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, Final, TypeAlias

from callflow.store.records import CallEnd, CallStart, DialAttempt

__all__ = [
    "APPLICATION_ID",
    "ATTEMPTS_SINCE",
    "ATTEMPT_COLUMNS",
    "BOOL_COLUMNS",
    "BUSY_TIMEOUT_MS",
    "CALL_COLUMNS",
    "END_COLUMNS",
    "FINISH_CALL",
    "INSERT_ATTEMPT",
    "INSERT_CALL",
    "IN_PROGRESS",
    "LAST_ANSWERED",
    "LAST_SEEN",
    "LATEST_START",
    "LINK_COLUMNS",
    "LINK_NEXT_CALL",
    "LOAD_STATE",
    "MARK_UNKNOWN",
    "PRAGMAS",
    "RELINK_ANSWERED",
    "RELINK_FINISHED",
    "SAVE_STATE",
    "SET_RECORDING_BYTES",
    "START_COLUMNS",
    "TIME_COLUMNS",
    "WAL_AUTOCHECKPOINT_PAGES",
    "WARM_ANI",
    "Row",
    "attempt_params",
    "attempt_row",
    "call_row",
    "end_params",
    "quoted",
    "start_params",
]

Row: TypeAlias = dict[str, Any]

#: ``PRAGMA application_id`` marking a callflow CDR database ("CFLW").
APPLICATION_ID: Final = 0x43464C57
#: How long a connection waits for another one's lock before failing.
BUSY_TIMEOUT_MS: Final = 5000

START_COLUMNS: Final = tuple(f.name for f in fields(CallStart))
END_COLUMNS: Final = tuple(f.name for f in fields(CallEnd) if f.name != "uniqueid")
CALL_COLUMNS: Final = (*START_COLUMNS, *END_COLUMNS, "recording_bytes", "status", "updated_at")
ATTEMPT_COLUMNS: Final = tuple(f.name for f in fields(DialAttempt))
#: Columns stored as 0/1 and handed back as bool. A field's type is the text "bool" from source,
#: the class itself when records.py runs compiled (mypyc keeps annotations evaluated).
BOOL_COLUMNS: Final = frozenset(
    f.name
    for f in (*fields(CallStart), *fields(CallEnd), *fields(DialAttempt))
    if f.type in ("bool", bool)
)
#: Columns holding UTC epoch seconds (rendered as ISO-8601 by exports).
TIME_COLUMNS: Final = frozenset({"started_at", "answered_at", "ended_at", "updated_at"})


def quoted(columns: tuple[str, ...]) -> str:
    """A column list for SQL, each name quoted (attempts has a column named "group")."""
    return ", ".join(f'"{c}"' for c in columns)


_start_values = attrgetter(*START_COLUMNS)
_end_values = attrgetter(*END_COLUMNS)
_attempt_values = attrgetter(*ATTEMPT_COLUMNS)

#: Columns the writer derives (see migration 7): the caller's previous call, next answered call.
LINK_COLUMNS: Final = ("prev_started_at", "next_answered_at")
_ANI: Final = f"?{START_COLUMNS.index('ani_e164') + 1}"
_AT: Final = f"?{START_COLUMNS.index('started_at') + 1}"
INSERT_CALL: Final = (
    f"INSERT INTO calls ({', '.join(START_COLUMNS)}, status, updated_at, "
    f"{', '.join(LINK_COLUMNS)}) "
    f"VALUES ({', '.join(f'?{i + 1}' for i in range(len(START_COLUMNS)))}, 'in_progress', "
    f"?{len(START_COLUMNS) + 1}, "
    f"(SELECT max(started_at) FROM calls WHERE ani_e164 = {_ANI} AND started_at <= {_AT}), "
    f"(SELECT min(started_at) FROM calls WHERE ani_e164 = {_ANI} AND disposition = 'answered' "
    f"AND started_at > {_AT}))"
)
#: The latest call start already written: a start at or after it precedes no call.
LATEST_START: Final = "SELECT max(started_at) FROM calls"
#: After INSERT_CALL (number, started_at): a call written out of order precedes the next one.
LINK_NEXT_CALL: Final = (
    "UPDATE calls SET prev_started_at = ?2 WHERE ani_e164 = ?1 AND started_at = ("
    "SELECT min(n.started_at) FROM calls AS n WHERE n.ani_e164 = ?1 AND n.started_at > ?2) "
    "AND (prev_started_at IS NULL OR prev_started_at < ?2)"
)
#: After a call is finished answered (uniqueid): the caller's calls since its previous
#: answered call get their next answered call again (this one, or a later one). No answered
#: call lies between any of them and this one, so they share it: the first answered call at
#: or after this one's start, looked up once (linear in the caller's calls, with no index of
#: answered calls: migration 10). A call that ends any other way changes no link, so the writer
#: skips this for it.
RELINK_FINISHED: Final = (
    "UPDATE calls SET next_answered_at = n.next FROM ("
    "SELECT x.ani_e164 AS ani, x.started_at AS at, (SELECT min(a.started_at) FROM calls AS a "
    "WHERE a.ani_e164 = x.ani_e164 AND a.disposition = 'answered' "
    "AND a.started_at >= x.started_at) AS next, coalesce((SELECT max(p.started_at) "
    "FROM calls AS p WHERE p.ani_e164 = x.ani_e164 AND p.disposition = 'answered' "
    "AND p.started_at < x.started_at), -1e308) AS since "
    "FROM calls AS x WHERE x.uniqueid = ?1) AS n "
    "WHERE calls.ani_e164 = n.ani AND calls.started_at < n.at AND calls.started_at >= n.since "
    "AND calls.next_answered_at IS NOT n.next"
)
#: RELINK_FINISHED for a call finished answered whose (number, started_at) the writer knows:
#: every call since the previous answered one has it as its next; no join, no temporary table.
RELINK_ANSWERED: Final = (
    "UPDATE calls SET next_answered_at = ?2 WHERE ani_e164 = ?1 AND started_at < ?2 "
    "AND started_at >= coalesce((SELECT max(p.started_at) FROM calls AS p "
    "WHERE p.ani_e164 = ?1 AND p.disposition = 'answered' AND p.started_at < ?2), -1e308) "
    "AND next_answered_at IS NOT ?2"
)
INSERT_ATTEMPT: Final = (
    f"INSERT INTO attempts ({quoted(ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"
)
_SET_END: Final = ", ".join(f"{c} = ?" for c in END_COLUMNS)
#: Only a row still in progress: a repeated uniqueid never overwrites a finished call.
FINISH_CALL: Final = (
    f"UPDATE calls SET {_SET_END}, status = 'completed', updated_at = ? "
    "WHERE uniqueid = ? AND status = 'in_progress'"
)
SET_RECORDING_BYTES: Final = (
    "UPDATE calls SET recording_bytes = ?, updated_at = ? WHERE uniqueid = ?"
)
MARK_UNKNOWN: Final = (
    "UPDATE calls SET status = 'unknown', disposition = 'unknown', ended_at = NULL, "
    "updated_at = ? WHERE status = 'in_progress' "
    "AND uniqueid NOT IN (SELECT value FROM json_each(?))"
)
IN_PROGRESS: Final = "SELECT uniqueid FROM calls WHERE status = 'in_progress' ORDER BY started_at"
LAST_SEEN: Final = "SELECT max(started_at) AS last_seen FROM calls WHERE ani_e164 = ?"
LAST_ANSWERED: Final = (
    "SELECT final_target, answered_at FROM calls WHERE ani_e164 = ? AND disposition = 'answered' "
    "AND final_target IS NOT NULL ORDER BY started_at DESC LIMIT 1"
)
ATTEMPTS_SINCE: Final = (
    'SELECT target, "group", started_at, answered_at IS NOT NULL, talk_seconds, ended_at '
    "FROM attempts WHERE started_at >= ?"
)
LOAD_STATE: Final = "SELECT value FROM state WHERE key = ?"
SAVE_STATE: Final = (
    "INSERT INTO state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
#: Numbers seen since a time, most recent first, at most N.
WARM_ANI: Final = (
    "SELECT ani_e164, max(started_at) AS last FROM calls "
    "WHERE started_at >= ? AND ani_e164 IS NOT NULL GROUP BY ani_e164 ORDER BY last DESC LIMIT ?"
)


def start_params(call: CallStart, now: float) -> tuple[Any, ...]:
    """Bind values for INSERT_CALL."""
    return (*_start_values(call), now)


def end_params(end: CallEnd, now: float) -> tuple[Any, ...]:
    """Bind values for FINISH_CALL."""
    return (*_end_values(end), now, end.uniqueid)


def attempt_params(attempt: DialAttempt) -> tuple[Any, ...]:
    """Bind values for INSERT_ATTEMPT."""
    return tuple(_attempt_values(attempt))


def _decoder(columns: tuple[str, ...]) -> Callable[[Sequence[Any]], Row]:
    """Build a fast tuple -> dict decoder for a fixed column list (flags back to bool)."""
    flags = [i for i, name in enumerate(columns) if name in BOOL_COLUMNS]

    def decode(values: Sequence[Any]) -> Row:
        row = dict(zip(columns, values, strict=True))
        for i in flags:
            if values[i] is not None:
                row[columns[i]] = bool(values[i])
        return row

    return decode


#: Decode a ``SELECT <CALL_COLUMNS> FROM calls`` tuple.
call_row: Final = _decoder(CALL_COLUMNS)
#: Decode a ``SELECT <ATTEMPT_COLUMNS> FROM attempts`` tuple.
attempt_row: Final = _decoder(ATTEMPT_COLUMNS)


#: WAL pages the writer lets accumulate before it copies them into the database (SQLite's
#: default is 1,000). A call rewrites the same index and table pages as the calls before it, and
#: a checkpoint copies each page once however often it changed, then syncs: at 10,000 pages a
#: call costs the writer's thread about 10 µs less flat out (BENCHMARKS.md, twenty-first
#: session). The WAL file grows to about 40 MB; the writer also checkpoints on a timer.
WAL_AUTOCHECKPOINT_PAGES: Final = 10_000

PRAGMAS: Final = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}",
)
