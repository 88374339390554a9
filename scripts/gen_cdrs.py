#!/usr/bin/env python3
"""Write realistic synthetic CDRs (calls + dial attempts) straight into a callflow store database.

Campaign mix with tracking numbers, a diurnal and weekly pattern in the caller's time zone,
repeat callers (a skewed pool) next to one-time callers, NANP area codes with their state, city
and zone, ordered failover attempts (busy / no answer / unavailable, cap skips) and the
dispositions the daemon records. Deterministic for a given ``--seed``; 1M calls take ~20 s.

    .venv/bin/python scripts/gen_cdrs.py var/bench.sqlite3 --rows 1000000 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import multiprocessing
import random
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from callflow.store.connection import open_writer
from callflow.store.migrations import CALLER_LINKS_BACKFILL
from callflow.store.schema import CALL_COLUMNS

#: (area code, state, region, city, country, zone, standard UTC offset in hours, weight)
AREAS: tuple[tuple[str, str, str, str, str, str, int, float], ...] = (
    ("212", "NY", "New York", "New York", "US", "America/New_York", -5, 9),
    ("718", "NY", "New York", "Brooklyn", "US", "America/New_York", -5, 7),
    ("516", "NY", "New York", "Hempstead", "US", "America/New_York", -5, 3),
    ("201", "NJ", "New Jersey", "Jersey City", "US", "America/New_York", -5, 4),
    ("973", "NJ", "New Jersey", "Newark", "US", "America/New_York", -5, 3),
    ("215", "PA", "Pennsylvania", "Philadelphia", "US", "America/New_York", -5, 5),
    ("412", "PA", "Pennsylvania", "Pittsburgh", "US", "America/New_York", -5, 2),
    ("617", "MA", "Massachusetts", "Boston", "US", "America/New_York", -5, 4),
    ("202", "DC", "District of Columbia", "Washington", "US", "America/New_York", -5, 3),
    ("305", "FL", "Florida", "Miami", "US", "America/New_York", -5, 5),
    ("407", "FL", "Florida", "Orlando", "US", "America/New_York", -5, 3),
    ("813", "FL", "Florida", "Tampa", "US", "America/New_York", -5, 3),
    ("404", "GA", "Georgia", "Atlanta", "US", "America/New_York", -5, 4),
    ("704", "NC", "North Carolina", "Charlotte", "US", "America/New_York", -5, 3),
    ("614", "OH", "Ohio", "Columbus", "US", "America/New_York", -5, 2),
    ("216", "OH", "Ohio", "Cleveland", "US", "America/New_York", -5, 2),
    ("313", "MI", "Michigan", "Detroit", "US", "America/Detroit", -5, 3),
    ("312", "IL", "Illinois", "Chicago", "US", "America/Chicago", -6, 6),
    ("773", "IL", "Illinois", "Chicago", "US", "America/Chicago", -6, 4),
    ("612", "MN", "Minnesota", "Minneapolis", "US", "America/Chicago", -6, 2),
    ("314", "MO", "Missouri", "St. Louis", "US", "America/Chicago", -6, 2),
    ("615", "TN", "Tennessee", "Nashville", "US", "America/Chicago", -6, 2),
    ("504", "LA", "Louisiana", "New Orleans", "US", "America/Chicago", -6, 2),
    ("214", "TX", "Texas", "Dallas", "US", "America/Chicago", -6, 5),
    ("713", "TX", "Texas", "Houston", "US", "America/Chicago", -6, 5),
    ("512", "TX", "Texas", "Austin", "US", "America/Chicago", -6, 3),
    ("210", "TX", "Texas", "San Antonio", "US", "America/Chicago", -6, 3),
    ("303", "CO", "Colorado", "Denver", "US", "America/Denver", -7, 3),
    ("801", "UT", "Utah", "Salt Lake City", "US", "America/Denver", -7, 2),
    ("602", "AZ", "Arizona", "Phoenix", "US", "America/Phoenix", -7, 4),
    ("702", "NV", "Nevada", "Las Vegas", "US", "America/Los_Angeles", -8, 3),
    ("213", "CA", "California", "Los Angeles", "US", "America/Los_Angeles", -8, 7),
    ("415", "CA", "California", "San Francisco", "US", "America/Los_Angeles", -8, 4),
    ("619", "CA", "California", "San Diego", "US", "America/Los_Angeles", -8, 3),
    ("408", "CA", "California", "San Jose", "US", "America/Los_Angeles", -8, 3),
    ("206", "WA", "Washington", "Seattle", "US", "America/Los_Angeles", -8, 4),
    ("503", "OR", "Oregon", "Portland", "US", "America/Los_Angeles", -8, 2),
    ("416", "ON", "Ontario", "Toronto", "CA", "America/Toronto", -5, 2),
    ("604", "BC", "British Columbia", "Vancouver", "CA", "America/Vancouver", -8, 1),
)


@dataclass(frozen=True)
class Campaign:
    """A synthetic campaign: attribution, tracking numbers, route of targets, share of calls."""

    name: str
    source: str | None
    medium: str | None
    keywords: tuple[str | None, ...]
    numbers: tuple[str, ...]
    route: tuple[str, ...]
    weight: float

    @property
    def known(self) -> bool:
        """Whether the tracking numbers are configured (the default campaign takes the rest)."""
        return self.name != "default"


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "google-search",
        "google",
        "cpc",
        ("plumber", "emergency plumber", "drain cleaning", "water heater"),
        ("+18005550101", "+18005550102", "+12125550103"),
        ("sales-ny", "sales-nj", "overflow"),
        34,
    ),
    Campaign(
        "bing-search",
        "bing",
        "cpc",
        ("plumber", "drain cleaning"),
        ("+18005550111",),
        ("sales-ny", "overflow"),
        8,
    ),
    Campaign(
        "facebook",
        "facebook",
        "social",
        (None,),
        ("+18005550121", "+18005550122"),
        ("sales-nj", "sales-ny"),
        14,
    ),
    Campaign(
        "radio-spring",
        "wxyz-fm",
        "radio",
        (None,),
        ("+18005550131",),
        ("sales-ny", "sales-nj", "answering-service"),
        10,
    ),
    Campaign("yelp", "yelp", "referral", (None,), ("+18005550141",), ("sales-tx", "overflow"), 9),
    Campaign(
        "direct-mail",
        "postcard",
        "print",
        ("spring-offer",),
        ("+18005550151",),
        ("sales-tx", "sales-ny"),
        6,
    ),
    Campaign(
        "website",
        "website",
        "organic",
        (None,),
        ("+18005550161",),
        ("sales-ny", "sales-tx", "overflow"),
        15,
    ),
    Campaign("default", None, None, (None,), ("+18005550199",), ("reception",), 4),
)
DESTINATIONS = {
    "sales-ny": "PJSIP/agent1",
    "sales-nj": "PJSIP/agent2",
    "sales-tx": "PJSIP/+15125550100@pstn-trunk",
    "overflow": "PJSIP/+18885550100@pstn-trunk",
    "answering-service": "PJSIP/+18885550111@pstn-trunk",
    "reception": "PJSIP/reception",
}
#: Relative call volume by local hour of day (0..23) and by weekday (Monday first).
HOUR_WEIGHTS = (
    1,
    0.6,
    0.4,
    0.3,
    0.3,
    0.5,
    1.5,
    4,
    9,
    12,
    13,
    12.5,
    11,
    11.5,
    12,
    11.5,
    10,
    8,
    6,
    5,
    4,
    3,
    2,
    1.5,
)
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.0, 0.95, 0.9, 0.55, 0.35)
#: Missed-call dispositions (and their share) when a call is not answered.
MISSED = (
    ("abandoned", 0.36),
    ("no-answer", 0.3),
    ("busy", 0.16),
    ("failed", 0.1),
    ("rejected", 0.04),
    ("unknown", 0.04),
)
FAILOVER_RESULTS = ("BUSY", "NOANSWER", "NOANSWER", "CHANUNAVAIL", "CONGESTION")
DEFAULT_END = datetime(2025, 1, 1, tzinfo=UTC)
#: The attempt result the rules engine records for a target skipped because of a cap.
SKIP_CAP = "SKIP:daily cap 40/40 (answered)"


def _cum(weights: Sequence[float]) -> list[float]:
    """Cumulative weights for ``random.choices``."""
    return list(itertools.accumulate(weights))


class _Gen:
    """Builds compact call and attempt rows in time order from one seeded random generator."""

    def __init__(self, rows: int, seed: int, days: int, end: float) -> None:
        """Prepare the callers pool and the cumulative weights."""
        self.rng = random.Random(seed)
        self.rows = rows
        self.days = days
        self.end = end
        self.area_cum = _cum([a[7] for a in AREAS])
        self.camp_cum = _cum([c.weight for c in CAMPAIGNS])
        # Repeat callers: a pool a tenth the size of the calls, picked with a skew (few call a lot).
        pool = max(10, rows // 10)
        self.pool = [self._new_caller() for _ in range(pool)]
        self.pool_cum = _cum([1.0 / (rank + 10) ** 0.9 for rank in range(pool)])

    def _new_caller(self) -> tuple[int, str]:
        """A caller: (area index, E.164 number)."""
        rng = self.rng
        area = bisect.bisect_left(self.area_cum, rng.random() * self.area_cum[-1])
        return (
            area,
            f"+1{AREAS[area][0]}{200 + int(rng.random() * 800)}{int(rng.random() * 1e4):04d}",
        )

    def _callers(self, n: int) -> list[tuple[int, str] | None]:
        """Who calls: 2% anonymous, 48% one-time callers, half from the repeat pool."""
        rng = self.rng
        picks = rng.choices(self.pool, cum_weights=self.pool_cum, k=n)
        out: list[tuple[int, str] | None] = []
        for pick in picks:
            r = rng.random()
            out.append(None if r < 0.02 else self._new_caller() if r < 0.5 else pick)
        return out

    def _starts(self) -> list[tuple[float, tuple[int, str] | None]]:
        """Sorted (UTC start, caller) pairs following the diurnal and weekly pattern."""
        rng = self.rng
        n = self.rows
        first_day = int(self.end // 86400) - self.days
        day_w = [WEEKDAY_WEIGHTS[(first_day + d + 3) % 7] for d in range(self.days)]
        days = rng.choices(range(self.days), cum_weights=_cum(day_w), k=n)
        hours = rng.choices(range(24), cum_weights=_cum(HOUR_WEIGHTS), k=n)
        out = []
        for day, hour, caller in zip(days, hours, self._callers(n), strict=True):
            offset = AREAS[caller[0]][6] if caller else -5
            start = (first_day + day) * 86400 + (hour - offset) * 3600 + rng.random() * 3600
            out.append((round(start, 3), caller))
        out.sort(key=lambda item: item[0])
        return out

    def build(self, chunk: int) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """Yield chunks of (call rows for INSERT_CALL, attempt rows) in start-time order."""
        rng = self.rng
        rand = rng.random
        last_seen: dict[str, float] = {}
        window = 7 * 86400
        camp_cum, top = self.camp_cum, self.camp_cum[-1]
        calls: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        for i, (start, caller) in enumerate(self._starts()):
            ci = bisect.bisect_left(camp_cum, rand() * top)
            camp = CAMPAIGNS[ci]
            tracking = camp.numbers[int(rand() * len(camp.numbers))]
            keyword = camp.keywords[int(rand() * len(camp.keywords))]
            uid = f"{int(start)}.{i}"
            repeat = False
            area: int | None = None
            ani: str | None = None
            offset = -5
            if caller is not None:
                area, ani = caller
                offset = AREAS[area][6]
                prev = last_seen.get(ani)
                repeat = prev is not None and start - prev <= window
                last_seen[ani] = start
            hour = int(start // 3600 + offset) % 24
            answered = rand() < (0.45 if hour < 8 or hour >= 20 else 0.78)
            disposition = "answered" if answered else _pick(rand(), MISSED)
            atts, end = _attempts(rng, uid, start, camp.route, disposition)
            attempts.extend(atts)
            answer: tuple[Any, ...] | None = None
            final: tuple[Any, ...] | None = None
            ring = 0.0
            for a in atts:
                ring += a[8]
                if a[7] == "ANSWER":
                    answer = a
                if a[7] != SKIP_CAP:
                    final = a
            if answer is not None:
                hangup = "caller" if rand() < 0.6 else "agent"
            else:
                hangup = "caller" if disposition == "abandoned" else "system"
            reason = '{"campaign":"%s","attempts":[%s]}' % (  # noqa: UP031
                camp.name,
                ",".join(f'"{a[2]}:{a[7]}"' for a in atts),
            )
            calls.append(
                (
                    i,
                    uid,
                    start,
                    ani,
                    area,
                    tracking,
                    ci,
                    keyword,
                    repeat,
                    answer[5] if answer else None,
                    end,
                    disposition,
                    final[2] if final else None,
                    ring,
                    answer[9] if answer else 0.0,
                    hangup,
                    reason,
                    final[7] if final else None,
                )
            )
            if len(calls) >= chunk:
                yield calls, attempts
                calls, attempts = [], []
        if calls:
            yield calls, attempts


def _pick(r: float, table: Sequence[tuple[str, float]]) -> str:
    """Pick a label from (label, probability) pairs with the uniform draw ``r``."""
    for label, p in table:
        r -= p
        if r < 0:
            return label
    return table[-1][0]


_LAST_RESULT = {"busy": "BUSY", "no-answer": "NOANSWER", "failed": "CHANUNAVAIL"}
_CAUSE = {
    "ANSWER": 16,
    "CANCEL": 16,
    "BUSY": 17,
    "NOANSWER": 19,
    "CHANUNAVAIL": 20,
    "CONGESTION": 34,
}


def _attempts(
    rng: random.Random, uid: str, start: float, route: tuple[str, ...], disposition: str
) -> tuple[list[tuple[Any, ...]], float]:
    """The dial attempts of one call and its end time, consistent with its disposition."""
    rand = rng.random
    out: list[tuple[Any, ...]] = []
    t = start + 0.05 + 2 * rand()
    targets = route
    if rand() < 0.03:  # the rules engine skipped a capped target (callflow.reports.targets)
        out.append((uid, 1, route[0], DESTINATIONS[route[0]], t, None, t, SKIP_CAP, 0.0, 0.0, None))
        targets = route[1:] or route
    if disposition == "rejected":
        return out, t
    if disposition == "answered":
        fails = 0 if rand() < 0.75 else 1 if rand() < 0.7 else 2
    elif disposition == "abandoned":
        fails = int(rand() * len(targets))
    else:
        fails = len(targets) - 1
    fails = min(fails, len(targets) - 1)
    for k in range(fails + 1):
        target = targets[k]
        seq = len(out) + 1
        if k < fails:
            result = FAILOVER_RESULTS[int(rand() * len(FAILOVER_RESULTS))]
            ring = 30.0 if result == "NOANSWER" else 0.2 + 2.3 * rand()
        elif disposition == "answered":
            ring = 2 + 16 * rand()
            talk = round(min(3600.0, rng.lognormvariate(4.7, 1.1)), 3)
            answered = t + ring
            out.append(
                (
                    uid,
                    seq,
                    target,
                    DESTINATIONS[target],
                    t,
                    answered,
                    answered + talk,
                    "ANSWER",
                    ring,
                    talk,
                    16,
                )
            )
            return out, answered + talk + 0.2
        elif disposition == "abandoned":
            result, ring = "CANCEL", 1 + 24 * rand()
        else:
            result = _LAST_RESULT.get(disposition, "NOANSWER")
            ring = {"BUSY": 0.3 + 1.7 * rand(), "CHANUNAVAIL": 0.12}.get(result, 30.0)
        out.append(
            (
                uid,
                seq,
                target,
                DESTINATIONS[target],
                t,
                None,
                t + ring,
                result,
                ring,
                0.0,
                _CAUSE[result],
            )
        )
        t += ring + 0.05
    return out, t + 0.1


#: The compact call rows the generator makes, staged in a temporary table per chunk.
STAGED = (
    "i",
    "uid",
    "start",
    "ani",
    "area",
    "tracking",
    "camp",
    "keyword",
    "repeat",
    "answered_at",
    "ended",
    "disp",
    "target",
    "ring",
    "talk",
    "hangup",
    "reason",
    "dialstatus",
)
STAGE_CALL = f"INSERT INTO temp.gen_call VALUES ({', '.join('?' * len(STAGED))})"


QUOTED = [f'"{c}"' for c in CALL_COLUMNS]


def _insert_call_sql() -> str:
    """INSERT ... SELECT expanding the staged compact rows with the lookup tables (C speed)."""
    unknown = "v.disp = 'unknown'"
    expr = {
        "uniqueid": "v.uid",
        "linkedid": "v.uid",
        "channel": "printf('PJSIP/carrier-%08x', v.i)",
        "started_at": "v.start",
        "ani_raw": "coalesce(substr(v.ani, 3), 'anonymous')",
        "ani_e164": "v.ani",
        "caller_name": "NULL",
        "ani_valid": "v.ani IS NOT NULL",
        "ani_anonymous": "v.ani IS NULL",
        "country": "a.country",
        "area_code": "a.area_code",
        "state": "a.state",
        "region": "a.region",
        "city": "a.city",
        "timezone": "a.zone",
        "dnis": "substr(v.tracking, 3)",
        "tracking_number": "v.tracking",
        "number_known": "c.known",
        "campaign": "c.name",
        "source": "c.source",
        "medium": "c.medium",
        "keyword": "v.keyword",
        "ad": "NULL",
        "repeat_caller": "v.repeat",
        "node": "'pbx1'",
        "answered_at": "v.answered_at",
        "ended_at": f"iif({unknown}, NULL, v.ended)",
        "disposition": "v.disp",
        "final_target": "v.target",
        "final_destination": "t.destination",
        "ring_seconds": "v.ring",
        "talk_seconds": "v.talk",
        "hangup_by": f"iif({unknown}, NULL, v.hangup)",
        "ivr_digits": "NULL",
        "route_reason": "v.reason",
        "dialstatus": "v.dialstatus",
        "status": f"iif({unknown}, 'unknown', 'completed')",
        "updated_at": "v.ended",
    }
    return (
        f"INSERT INTO main.calls ({', '.join(QUOTED)}) "
        f"SELECT {', '.join(expr.get(c, 'NULL') for c in CALL_COLUMNS)} FROM temp.gen_call AS v "
        "JOIN temp.gen_campaign AS c ON c.i = v.camp "
        "LEFT JOIN temp.gen_area AS a ON a.i = v.area "
        "LEFT JOIN temp.gen_target AS t ON t.name = v.target ORDER BY v.i"
    )


INSERT_CALL = _insert_call_sql()
#: The attempt columns the generator fills (any later ones keep their default, NULL).
ATTEMPT_FIELDS = (
    "uniqueid",
    "seq",
    "target",
    "destination",
    "started_at",
    "answered_at",
    "ended_at",
    "result",
    "ring_seconds",
    "talk_seconds",
    "hangup_cause",
)
INSERT_ATTEMPT = (
    f"INSERT INTO main.attempts ({', '.join(ATTEMPT_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_FIELDS))})"
)


def _lookup_tables(conn: sqlite3.Connection) -> None:
    """Temporary tables: the staging table and what its compact rows refer to."""
    conn.execute(f"CREATE TEMP TABLE gen_call ({', '.join(STAGED)})")
    conn.execute(
        "CREATE TEMP TABLE gen_area (i INTEGER PRIMARY KEY, area_code, state, region, "
        "city, country, zone)"
    )
    conn.executemany(
        "INSERT INTO temp.gen_area VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, *a[:6]) for i, a in enumerate(AREAS)],
    )
    conn.execute(
        "CREATE TEMP TABLE gen_campaign (i INTEGER PRIMARY KEY, name, source, medium, known)"
    )
    conn.executemany(
        "INSERT INTO temp.gen_campaign VALUES (?, ?, ?, ?, ?)",
        [(i, c.name, c.source, c.medium, c.known) for i, c in enumerate(CAMPAIGNS)],
    )
    conn.execute("CREATE TEMP TABLE gen_target (name TEXT PRIMARY KEY, destination)")
    conn.executemany("INSERT INTO temp.gen_target VALUES (?, ?)", DESTINATIONS.items())


CHUNK = 20_000


def _produce(gen: _Gen, pipe: Connection) -> None:
    """Child process: build the rows and send them in chunks (None ends the stream)."""
    for chunk in gen.build(CHUNK):
        pipe.send(chunk)
    pipe.send(None)
    pipe.close()


def _chunks(gen: _Gen, parallel: bool) -> Iterator[tuple[list[Any], list[Any]]]:
    """The generated chunks, built in a second process when ``parallel`` (2 cores: 2x faster)."""
    if not parallel:
        yield from gen.build(CHUNK)
        return
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_produce, args=(gen, sender), daemon=True)
    worker.start()
    sender.close()
    try:
        while (chunk := receiver.recv()) is not None:
            yield chunk
    finally:
        receiver.close()
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()


async def _create(path: Path) -> None:
    """Create (or migrate) the database with the store's own migrations."""
    conn = await open_writer(path)
    await conn.close()


def generate(
    path: Path,
    rows: int,
    *,
    seed: int = 1,
    days: int = 365,
    end: float | None = None,
    parallel: bool | None = None,
) -> int:
    """Write ``rows`` synthetic calls (with attempts) into a new or existing store database."""
    asyncio.run(_create(path))
    gen = _Gen(rows, seed, days, DEFAULT_END.timestamp() if end is None else end)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA journal_mode = DELETE")  # one write of each page, not WAL + checkpoint
        _lookup_tables(conn)
        indexes = conn.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        conn.execute("BEGIN")
        for name, _ in indexes:  # rebuilt after the load: much faster than keeping them live
            conn.execute(f'DROP INDEX main."{name}"')
        for calls, attempts in _chunks(gen, rows >= 50_000 if parallel is None else parallel):
            conn.executemany(STAGE_CALL, calls)
            conn.execute(INSERT_CALL)
            conn.execute("DELETE FROM temp.gen_call")
            conn.executemany(INSERT_ATTEMPT, attempts)
        for sql in CALLER_LINKS_BACKFILL:  # what the daemon's writer keeps as it writes
            conn.execute(sql)
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("ANALYZE main")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="store database to fill (created if missing)")
    parser.add_argument("--rows", type=int, default=100_000, help="calls to write")
    parser.add_argument("--seed", type=int, default=1, help="random seed (deterministic)")
    parser.add_argument("--days", type=int, default=365, help="days of traffic")
    parser.add_argument("--end", default="2025-01-01", help="UTC date the traffic ends before")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    if args.db.exists():
        if not args.force:
            parser.error(f"{args.db} exists (use --force to replace it)")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC).timestamp()
    t0 = time.perf_counter()
    generate(args.db, args.rows, seed=args.seed, days=args.days, end=end)
    print(
        f"{args.rows} calls written to {args.db} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
