"""The lower bound: the floor's call plus the barest CDR writing and one log line per call.

What any Python FastAGI daemon that writes its CDRs to SQLite costs at least. Per call: the
floor's commands; one row inserted when the header arrives and updated when the call ends, both
batched every 100 ms by a thread (WAL, ``synchronous=NORMAL``) and indexed by caller and by
place as the daemon's reports need; one JSON log line. No attribution, no enrichment, no rules,
no caller links, no report indexes beyond those two. Beside the daemon at 500 calls/s it shows
how much of a per-call CPU budget is left for the product's own work (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

from callflow.bench.floor import COMMANDS, DONE, command

__all__ = ["BATCH_INTERVAL", "Bound", "header_value"]

#: Seconds between the writer thread's commits (the daemon's default batch interval).
BATCH_INTERVAL: Final = 0.1
_SCHEMA: Final = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "CREATE TABLE IF NOT EXISTS calls (uniqueid TEXT PRIMARY KEY, ani TEXT, place TEXT, "
    "dnis TEXT, channel TEXT, started_at REAL, disposition TEXT, ended_at REAL)",
    "CREATE INDEX IF NOT EXISTS calls_ani ON calls (ani, started_at)",
    "CREATE INDEX IF NOT EXISTS calls_place ON calls (place, disposition, started_at) "
    "WHERE disposition IS NOT NULL",
)
_START: Final = (
    "INSERT INTO calls (uniqueid, ani, place, dnis, channel, started_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_END: Final = "UPDATE calls SET disposition = ?, ended_at = ? WHERE uniqueid = ?"


def header_value(header: bytes, key: bytes) -> str:
    """The value of one ``agi_key: value`` line of a raw header ("" when absent)."""
    at = header.find(b"\n" + key + b": ")
    if at < 0:
        return ""
    start = at + len(key) + 3
    return header[start : header.index(b"\n", start)].decode("utf-8", "replace")


class Bound:
    """The lower-bound server: start(), then stop() commits what is queued and closes."""

    def __init__(self, database: Path) -> None:
        """Write CDRs to ``database``; nothing runs until start()."""
        self._database = database
        self._rows: collections.deque[tuple[bool, tuple[Any, ...]]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="bound-cdr", daemon=True)
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Create the table, start the writer thread and listen; return the port."""
        with sqlite3.connect(self._database) as db:
            for statement in _SCHEMA:
                db.execute(statement)
        self._thread.start()
        self._server = await asyncio.start_server(self._handle, host, port, backlog=4096)
        port_: int = self._server.sockets[0].getsockname()[1]
        return port_

    async def stop(self) -> None:
        """Stop listening, then let the writer commit the rest and exit."""
        if self._server is not None:
            self._server.close()
        self._stop.set()
        await asyncio.to_thread(self._thread.join)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one call as the floor does, with its CDR row and log line."""
        try:
            header = b"\n" + await reader.readuntil(b"\n\n")
            uniqueid = header_value(header, b"agi_uniqueid")
            ani = header_value(header, b"agi_callerid")
            dnis, channel = header_value(header, b"agi_dnid"), header_value(header, b"agi_channel")
            self._rows.append((True, (uniqueid, ani, ani[:6], dnis, channel, time.time())))
            reply = b""
            for line in COMMANDS:
                reply = await command(reader, writer, line)
            answered = b"(ANSWER|" in reply
            if not answered:
                await command(reader, writer, DONE)
            writer.write_eof()
            while await reader.read(65536):
                pass
            disposition = "answered" if answered else "no-answer"
            self._rows.append((False, (disposition, time.time(), uniqueid)))
            sys.stderr.write(json.dumps({"event": "call.end", "uniqueid": uniqueid, "ani": ani,
                                         "disposition": disposition, "level": "info",
                                         "timestamp": time.time()}) + "\n")  # fmt: skip
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _write(self) -> None:
        """The writer thread: every BATCH_INTERVAL, commit what is queued in one transaction."""
        db = sqlite3.connect(self._database, isolation_level=None)
        try:
            while not self._stop.wait(BATCH_INTERVAL):
                self._commit(db)
            self._commit(db)
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection) -> None:
        """Write the queued rows in one transaction: starts, then ends (each start is older)."""
        rows = self._rows
        if not rows:
            return
        batch = [rows.popleft() for _ in range(len(rows))]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_START, [params for start, params in batch if start])
        db.executemany(_END, [params for start, params in batch if not start])
        db.execute("COMMIT")
