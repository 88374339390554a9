"""Write back CDR rows the writer gave up on, from its ``cdr_row_lost`` log lines.

The writer logs each row it could not write (a database unwritable past its retries, a writer
that died) with its kind and parameters. ``replay`` applies them in log order with the
writer's own statements, and the caller links it keeps, one transaction per row: a log file
can only ever write CDR rows. A row SQLite refuses, or an end of a call not in progress (one
already written, say), is reported and skipped. A database of another schema is refused first,
with nothing written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from callflow.store.migrations import check_current
from callflow.store.writer import replay_steps

__all__ = ["LOST_EVENT", "Replayed", "replay"]

#: The event of the writer's log line for a row it gave up on.
LOST_EVENT = "cdr_row_lost"


@dataclass
class Replayed:
    """What a replay did: rows written, and the rows refused with why (by log line number)."""

    written: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # line, uniqueid, why


def replay(conn: sqlite3.Connection, lines: Iterable[str]) -> Replayed:
    """Write the rows of every ``cdr_row_lost`` JSON line, in order; skip other lines.

    Raises SchemaError, before reading a line, unless the database has this code's schema.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    check_current(int(version), int(application_id))
    done = Replayed()
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not a JSON log line
        if not isinstance(entry, dict) or entry.get("event") != LOST_EVENT:
            continue
        uniqueid, params = str(entry.get("uniqueid")), entry.get("params")
        try:
            if not isinstance(params, list):
                raise ValueError("no parameters")
            steps = replay_steps(str(entry.get("op")), params, uniqueid)
        except ValueError as exc:
            done.refused.append((number, uniqueid, f"not a CDR row: {exc}"))
            continue
        (sql, rows), *links = steps
        try:
            conn.execute("BEGIN IMMEDIATE")
            if conn.executemany(sql, rows).rowcount != 1:  # an end of a call not in progress
                raise sqlite3.IntegrityError("no such call in progress")
            for link, link_rows in links:
                conn.executemany(link, link_rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            done.refused.append((number, uniqueid, str(exc)))
            continue
        done.written += 1
    return done
