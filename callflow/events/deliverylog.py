"""The webhook delivery log: one SQLite row per attempt, in its own small database file."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["DELIVERY_LOG_NAME", "DeliveryLog", "delivery_log"]

#: The log's file name inside the spool directory (unless ``webhook_delivery.log`` is set).
DELIVERY_LOG_NAME = "webhooks.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id       INTEGER PRIMARY KEY,
    delivery TEXT NOT NULL,      -- the event id: the same on every attempt of one delivery
    webhook  TEXT NOT NULL,
    event    TEXT NOT NULL,
    uniqueid TEXT NOT NULL,
    campaign TEXT NOT NULL,
    method   TEXT NOT NULL,
    url      TEXT NOT NULL,
    attempt  INTEGER NOT NULL,   -- 1 for the first try
    status   INTEGER,            -- HTTP status, NULL when no response
    error    TEXT,               -- why the attempt failed, NULL on 2xx
    final    INTEGER NOT NULL,   -- 1 on the attempt that ended the delivery (sent or given up)
    at       REAL NOT NULL       -- UTC epoch seconds
);
CREATE INDEX IF NOT EXISTS deliveries_at ON deliveries (at);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook, at);
"""
_COLUMNS = (
    "id", "delivery", "webhook", "event", "uniqueid", "campaign", "method", "url", "attempt",
    "status", "error", "final", "at",
)  # fmt: skip
_INSERT = f"INSERT INTO deliveries ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * 12)})"


def _connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the log database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


class DeliveryLog:
    """Appends attempts (from one worker thread at a time; calls are serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        """Open the log database, creating it if needed."""
        self.path = path
        self._db = _connect(path)
        self._lock = threading.Lock()

    def record(self, row: dict[str, Any]) -> None:
        """Append one attempt (keys: the columns but ``id``)."""
        with self._lock:
            self._db.execute(_INSERT, [row.get(name) for name in _COLUMNS[1:]])

    def prune(self, before: float) -> int:
        """Delete attempts older than ``before``; return how many."""
        with self._lock:
            return self._db.execute("DELETE FROM deliveries WHERE at < ?", (before,)).rowcount

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def delivery_log(
    path: str | Path, since: float | datetime | None = None, webhook: str | None = None
) -> list[dict[str, Any]]:
    """The attempts logged at ``path``, oldest first, optionally since a time / for one webhook."""
    path = Path(path)
    if not path.exists():
        return []
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("at >= ?")
        params.append(since.timestamp() if isinstance(since, datetime) else float(since))
    if webhook is not None:
        clauses.append("webhook = ?")
        params.append(webhook)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute(f"SELECT * FROM deliveries{where} ORDER BY at, id", params).fetchall()
    finally:
        db.close()
    return [dict(row) for row in rows]
