"""A small hand-built CDR data set around the America/New_York fall-back day (2024-11-03)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from callflow.store.connection import open_writer
from callflow.store.migrations import CALLER_LINKS_BACKFILL

A, B, C = "+12125550001", "+13055550002", "+13125550003"
PLACES = {
    A: ("US", "212", "NY", "New York", "New York"),
    B: ("US", "305", "FL", "Florida", "Miami"),
    C: ("US", "312", "IL", "Illinois", "Chicago"),
}
CAMPAIGNS = {
    "google": ("google", "cpc", "plumber", "+18005550101"),
    "facebook": ("facebook", "social", None, "+18005550121"),
}


def utc(text: str) -> float:
    """Epoch of an ISO UTC time."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


# uniqueid, UTC start, caller, campaign, disposition, ring, talk, attempts (target, result, ring)
CALLS: list[tuple[str, str, str | None, str, str, float, float, list[tuple[str, str, float]]]] = [
    ("c1", "2024-11-02T14:00:00", A, "google", "answered", 5, 120, [("sales", "ANSWER", 5)]),
    ("c2", "2024-11-03T04:30:00", B, "facebook", "no-answer", 30, 0,
     [("sales", "NOANSWER", 30)]),
    ("c3", "2024-11-03T05:30:00", A, "google", "answered", 4, 30,
     [("sales", "BUSY", 1), ("support", "ANSWER", 3)]),
    ("c4", "2024-11-03T06:30:00", B, "facebook", "answered", 6, 200,
     [("sales", "SKIP:daily cap 5/5 (answered)", 0), ("support", "ANSWER", 6)]),
    ("c5", "2024-11-03T17:00:00", None, "google", "abandoned", 10, 0, [("sales", "CANCEL", 10)]),
    ("c6", "2024-11-04T04:59:00", C, "google", "busy", 1, 0, [("sales", "BUSY", 1)]),
    ("c7", "2024-11-04T05:00:00", C, "google", "answered", 2, 60, [("sales", "ANSWER", 2)]),
]  # fmt: skip


def create_db(path: Path) -> sqlite3.Connection:
    """A migrated, empty CDR database (the store's own migrations), open for direct SQL."""

    async def make() -> None:
        conn = await open_writer(path)
        await conn.close()

    asyncio.run(make())
    return sqlite3.connect(path, isolation_level=None)


def insert_call(conn: sqlite3.Connection, **values: Any) -> None:
    """Insert one calls row; unspecified NOT NULL columns get plain defaults."""
    uid = values["uniqueid"]
    row = {"linkedid": uid, "channel": f"PJSIP/carrier-{uid}", "ani_raw": "anonymous",
           "ani_valid": 0, "ani_anonymous": 0, "dnis": "8005550101", "number_known": 1,
           "repeat_caller": 0, "node": "pbx1", "status": "completed",
           "updated_at": values["started_at"], **values}  # fmt: skip
    cols = ", ".join(row)
    conn.execute(
        f"INSERT INTO calls ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    for sql in CALLER_LINKS_BACKFILL:  # the caller links, as the daemon's writer keeps them
        conn.execute(sql)


#: Dial-time refusals (route_reason) of some calls: one cap hit and one closed-hours skip.
REFUSED = {"c6": ["support: concurrency 1/1"], "c7": ["support: closed (outside hours)"]}


def fill(conn: sqlite3.Connection) -> None:
    """Insert the CALLS data set with attempts."""
    for uid, when, ani, campaign, disposition, ring, talk, attempts in CALLS:
        start = utc(when)
        source, medium, keyword, number = CAMPAIGNS[campaign]
        place = PLACES.get(ani or "", (None,) * 5)
        refused = {"refused_at_dial": REFUSED[uid]} if uid in REFUSED else {}  # as the daemon
        reason = json.dumps({"campaign": campaign, **refused}, separators=(",", ":"))
        final = next((t for t, r, _ in attempts if r == "ANSWER"), None) or next(
            t for t, r, _ in reversed(attempts) if not r.startswith("SKIP")
        )
        insert_call(
            conn, uniqueid=uid, started_at=start, ani_e164=ani,
            ani_raw=ani[2:] if ani else "anonymous",
            ani_valid=ani is not None, ani_anonymous=ani is None, country=place[0],
            area_code=place[1], state=place[2], region=place[3], city=place[4],
            tracking_number=number, campaign=campaign, source=source, medium=medium,
            keyword=keyword, disposition=disposition, ring_seconds=ring, talk_seconds=talk,
            final_target=final, answered_at=start + ring if talk else None,
            ended_at=start + ring + talk,
            route_reason=reason,
        )  # fmt: skip
        t = start
        for seq, (target, result, a_ring) in enumerate(attempts, 1):
            a_talk = talk if result == "ANSWER" else 0.0
            conn.execute(
                "INSERT INTO attempts (uniqueid, seq, target, destination, started_at, "
                "answered_at, ended_at, result, ring_seconds, talk_seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uid, seq, target, f"PJSIP/{target}", t, t + a_ring if a_talk else None,
                 t + a_ring + a_talk, result, a_ring, a_talk),
            )  # fmt: skip
            t += a_ring
