"""Versioned schema migrations, tracked by ``PRAGMA user_version`` and applied on open.

Each step is frozen history: never edit a released step, append a new one instead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

import aiosqlite
import structlog

from callflow.store.errors import SchemaError, SchemaTooNew
from callflow.store.schema import APPLICATION_ID

__all__ = [
    "CALLER_LINKS_BACKFILL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "check_current",
    "check_version",
    "migrate",
    "read_version",
    "rewrite_status_check",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the SQL that takes the database from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = Migration(
    1,
    "calls and attempts",
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """
        CREATE TABLE calls (
            uniqueid          TEXT PRIMARY KEY NOT NULL,
            linkedid          TEXT NOT NULL,
            channel           TEXT NOT NULL,
            started_at        REAL NOT NULL,
            ani_raw           TEXT NOT NULL,
            ani_e164          TEXT,
            caller_name       TEXT,
            ani_valid         INTEGER NOT NULL,
            ani_anonymous     INTEGER NOT NULL,
            country           TEXT,
            area_code         TEXT,
            state             TEXT,
            region            TEXT,
            city              TEXT,
            timezone          TEXT,
            dnis              TEXT NOT NULL,
            tracking_number   TEXT,
            number_known      INTEGER NOT NULL,
            campaign          TEXT,
            source            TEXT,
            medium            TEXT,
            keyword           TEXT,
            ad                TEXT,
            repeat_caller     INTEGER NOT NULL,
            node              TEXT NOT NULL,
            answered_at       REAL,
            ended_at          REAL,
            disposition       TEXT,
            final_target      TEXT,
            final_destination TEXT,
            ring_seconds      REAL,
            talk_seconds      REAL,
            hangup_by         TEXT,
            ivr_digits        TEXT,
            route_reason      TEXT,
            dialstatus        TEXT,
            status            TEXT NOT NULL
                              CHECK (status IN ('in_progress', 'completed', 'unknown')),
            updated_at        REAL NOT NULL
        )
        """,
        "CREATE INDEX calls_started_at ON calls (started_at)",
        "CREATE INDEX calls_ani_started_at ON calls (ani_e164, started_at)",
        "CREATE INDEX calls_campaign_started_at ON calls (campaign, started_at)",
        "CREATE INDEX calls_in_progress ON calls (status) WHERE status = 'in_progress'",
        # The primary key (uniqueid, seq) clusters a call's attempts together and serves
        # lookups by uniqueid, so no separate attempts(uniqueid) index is needed.
        """
        CREATE TABLE attempts (
            uniqueid     TEXT NOT NULL REFERENCES calls (uniqueid) ON DELETE CASCADE,
            seq          INTEGER NOT NULL CHECK (seq >= 1),
            target       TEXT NOT NULL,
            destination  TEXT NOT NULL,
            started_at   REAL NOT NULL,
            answered_at  REAL,
            ended_at     REAL NOT NULL,
            result       TEXT NOT NULL,
            ring_seconds REAL NOT NULL,
            talk_seconds REAL NOT NULL,
            hangup_cause INTEGER,
            PRIMARY KEY (uniqueid, seq)
        ) WITHOUT ROWID
        """,
    ),
)

_V2 = Migration(
    2,
    "recordings and the caller directory",
    (
        "ALTER TABLE calls ADD COLUMN contact_name TEXT",
        "ALTER TABLE calls ADD COLUMN company TEXT",
        "ALTER TABLE calls ADD COLUMN account_id TEXT",
        "ALTER TABLE calls ADD COLUMN contact_tags TEXT",
        "ALTER TABLE calls ADD COLUMN recording_path TEXT",
        "ALTER TABLE calls ADD COLUMN recording_bytes INTEGER",
        """
        CREATE TABLE directory (
            e164       TEXT PRIMARY KEY NOT NULL,
            name       TEXT,
            company    TEXT,
            address    TEXT,
            account_id TEXT,
            tags       TEXT,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
)

# Covering indexes for `callflow report` (callflow.reports): each report walks one index in
# the order it groups by (time; attribution; place; final target; attempt target) without
# reading the wide rows, so reports over a million calls stay around a second or less.
_V3 = Migration(
    3,
    "report indexes",
    (
        "CREATE INDEX calls_report_time ON calls (started_at, disposition, ring_seconds, "
        "talk_seconds, ani_e164, campaign, source, state, final_target)",
        "CREATE INDEX calls_report_source ON calls (campaign, source, medium, keyword, "
        "tracking_number, started_at, disposition, talk_seconds, state, final_target)",
        "CREATE INDEX calls_report_geo ON calls (country, state, city, area_code, started_at, "
        "disposition, talk_seconds, campaign, source, final_target)",
        "CREATE INDEX calls_report_target ON calls (final_target, started_at, disposition, "
        "ring_seconds, talk_seconds, campaign, source, state)",
        # "Reached later" in the missed-calls report: the caller's next answered call.
        "CREATE INDEX calls_answered_ani ON calls (ani_e164, started_at) "
        "WHERE disposition = 'answered'",
        "CREATE INDEX attempts_report ON attempts (target, result, started_at, ring_seconds, "
        "talk_seconds)",
    ),
)

_V4 = Migration(
    4,
    "routing groups on attempts, ZIP from the IVR, daemon state (round-robin cursors)",
    (
        'ALTER TABLE attempts ADD COLUMN "group" TEXT',
        "ALTER TABLE calls ADD COLUMN zip TEXT",
        "CREATE INDEX attempts_started_at ON attempts (started_at)",
        "CREATE TABLE state (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID",
    ),
)

# Pay per call (callflow.billing): an append-only ledger. Triggers refuse UPDATE and DELETE;
# corrections are new entries (adjustment / reversal) pointing at the entry they correct. One
# revenue and one payout entry per call at most (post is idempotent).
_V5 = Migration(
    5,
    "billing ledger (append-only)",
    (
        """
        CREATE TABLE ledger (
            id           INTEGER PRIMARY KEY,
            at           REAL NOT NULL,
            uniqueid     TEXT NOT NULL,
            account_kind TEXT NOT NULL CHECK (account_kind IN ('buyer', 'publisher')),
            account      TEXT NOT NULL,
            amount_minor INTEGER NOT NULL,
            currency     TEXT NOT NULL,
            kind         TEXT NOT NULL
                         CHECK (kind IN ('revenue', 'payout', 'adjustment', 'reversal')),
            rule         TEXT NOT NULL,
            reason       TEXT NOT NULL,
            reverses_id  INTEGER REFERENCES ledger (id),
            converted    INTEGER NOT NULL DEFAULT 0,
            duplicate_of TEXT,
            ani_e164     TEXT,
            campaign     TEXT,
            talk_seconds REAL,
            CHECK (kind NOT IN ('revenue', 'payout')
                   OR (kind = 'revenue') = (account_kind = 'buyer'))
        )
        """,
        "CREATE UNIQUE INDEX ledger_once ON ledger (uniqueid, kind) "
        "WHERE kind IN ('revenue', 'payout')",
        "CREATE INDEX ledger_account_at ON ledger (account_kind, account, at)",
        "CREATE INDEX ledger_uniqueid ON ledger (uniqueid)",
        "CREATE INDEX ledger_converted_ani ON ledger (account, ani_e164, at) "
        "WHERE kind = 'revenue' AND converted = 1 AND duplicate_of IS NULL",
        """
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: add an adjustment'); END
        """,
        """
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: add a reversal'); END
        """,
    ),
)

_V6 = Migration(
    6,
    "press-1 acceptance time on attempts",
    ("ALTER TABLE attempts ADD COLUMN accepted_at REAL",),
)

# Exact unique callers and "reached later" in one pass (callflow.reports): each call keeps the
# start of its caller's previous call (ties: the row written first comes first) and the start
# of the caller's next answered call. Distinct callers in [a, b) = calls in [a, b) with a number
# whose prev_started_at is NULL or < a. The CDR writer keeps both exact as it writes (rows in
# any order, answered later); a trigger keeps them exact when rows are deleted; bulk loaders
# run CALLER_LINKS_BACKFILL afterwards. Not insert/update triggers: measured on this wide,
# many-indexed table, their mere presence (even WHEN false) added 15-45 us to each row write.
_ANSWERED_AFTER: Final = (
    "SELECT min(a.started_at) FROM calls AS a WHERE a.ani_e164 = {ani} "
    "AND a.disposition = 'answered' AND a.started_at > {at}"
)
#: Recompute both links of every call (idempotent; rewrites only rows that change).
CALLER_LINKS_BACKFILL: Final = (
    """
    UPDATE calls SET prev_started_at = p.prev FROM (
        SELECT rowid AS id, lag(started_at) OVER (
            PARTITION BY ani_e164 ORDER BY started_at, rowid) AS prev
        FROM calls WHERE ani_e164 IS NOT NULL) AS p
    WHERE calls.rowid = p.id AND calls.prev_started_at IS NOT p.prev
    """,
    """
    UPDATE calls SET next_answered_at = n.next FROM (
        SELECT rowid AS id, min(CASE WHEN disposition = 'answered' THEN started_at END) OVER (
            PARTITION BY ani_e164 ORDER BY started_at DESC
            GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS next
        FROM calls WHERE ani_e164 IS NOT NULL) AS n
    WHERE calls.rowid = n.id AND calls.next_answered_at IS NOT n.next
    """,
)
_LINKS_ON_DELETE: Final = f"""
    CREATE TRIGGER calls_links_delete AFTER DELETE ON calls WHEN OLD.ani_e164 IS NOT NULL
    BEGIN
        UPDATE calls SET prev_started_at = OLD.prev_started_at
        WHERE rowid = (SELECT min(t.rowid) FROM calls AS t
                       WHERE t.ani_e164 = OLD.ani_e164 AND t.started_at = OLD.started_at)
          AND (OLD.prev_started_at IS NULL OR OLD.prev_started_at < OLD.started_at);
        UPDATE calls SET prev_started_at = OLD.prev_started_at
        WHERE ani_e164 = OLD.ani_e164 AND prev_started_at = OLD.started_at
          AND started_at > OLD.started_at
          AND NOT EXISTS (SELECT 1 FROM calls AS t
                          WHERE t.ani_e164 = OLD.ani_e164 AND t.started_at = OLD.started_at);
        UPDATE calls SET next_answered_at = (
            {_ANSWERED_AFTER.format(ani="calls.ani_e164", at="calls.started_at")})
        WHERE ani_e164 = OLD.ani_e164 AND next_answered_at = OLD.started_at;
    END
    """

_V7 = Migration(
    7,
    "caller links (previous call, next answered call) for exact one-pass reports",
    (
        "ALTER TABLE calls ADD COLUMN prev_started_at REAL",
        "ALTER TABLE calls ADD COLUMN next_answered_at REAL",
        *CALLER_LINKS_BACKFILL,
        _LINKS_ON_DELETE,
        "DROP INDEX calls_report_time",
        "CREATE INDEX calls_report_time ON calls (started_at, disposition, ring_seconds, "
        "talk_seconds, ani_e164, prev_started_at, campaign, source, state, final_target)",
        "DROP INDEX calls_ani_started_at",
        # Per caller, in time order: unique callers under campaign/source/state filters
        # (columns set when the call starts, so finishing a call never rewrites this entry).
        "CREATE INDEX calls_ani_started_at ON calls (ani_e164, started_at, prev_started_at, "
        "campaign, source, state)",
        # The missed-calls report: each missed call, whether its caller was answered later.
        "CREATE INDEX calls_missed ON calls (disposition, started_at, next_answered_at, "
        "campaign, source, state, final_target) "
        "WHERE disposition IN ('busy', 'no-answer', 'failed', 'rejected', 'abandoned')",
        # Grouped reports: the disposition right after the grouped columns, so one ordered
        # walk groups by (…, disposition) with no sort and no per-outcome sums.
        "DROP INDEX calls_report_source",
        "CREATE INDEX calls_report_source ON calls (campaign, source, medium, keyword, "
        "tracking_number, disposition, started_at, talk_seconds, state, final_target)",
        "DROP INDEX calls_report_geo",
        "CREATE INDEX calls_report_geo ON calls (country, state, city, area_code, disposition, "
        "started_at, talk_seconds, campaign, source, final_target)",
        "DROP INDEX calls_report_target",
        "CREATE INDEX calls_report_target ON calls (final_target, disposition, started_at, "
        "ring_seconds, talk_seconds, campaign, source, state)",
        # The targets report's dial-time refusals (few calls have any).
        "CREATE INDEX calls_refused ON calls (started_at) "
        "WHERE instr(route_reason, 'refused_at_dial') > 0",
    ),
)

_V8 = Migration(
    8,
    "the missed-calls index without an IN list (cheaper CDR writes)",
    (
        # SQLite evaluates `x IN (three or more constants)` by building a temporary b-tree of the
        # constants, again for every row a statement writes: this condition was evaluated once
        # per INSERT and twice per UPDATE of a call. The same condition as `=` terms joined by
        # OR costs a few comparisons. The missed report's totals query repeats it term for term.
        "DROP INDEX calls_missed",
        "CREATE INDEX calls_missed ON calls (disposition, started_at, next_answered_at, "
        "campaign, source, state, final_target) "
        "WHERE disposition = 'busy' OR disposition = 'no-answer' OR disposition = 'failed' "
        "OR disposition = 'rejected' OR disposition = 'abandoned'",
    ),
)

_V9 = Migration(
    9,
    "the wide grouped-report indexes hold finished calls only (cheaper CDR writes)",
    (
        # A call's row is written twice: when it starts, and when it finishes and gets its
        # outcome. Each of these indexes holds outcome columns, so it was written both times;
        # now only at the finish. Reports read the calls in progress by calls_in_progress.
        "DROP INDEX calls_report_source",
        "CREATE INDEX calls_report_source ON calls (campaign, source, medium, keyword, "
        "tracking_number, disposition, started_at, talk_seconds, state, final_target) "
        "WHERE disposition IS NOT NULL",
        "DROP INDEX calls_report_geo",
        "CREATE INDEX calls_report_geo ON calls (country, state, city, area_code, disposition, "
        "started_at, talk_seconds, campaign, source, final_target) WHERE disposition IS NOT NULL",
        # The targets report reads only calls that ended on a target.
        "DROP INDEX calls_report_target",
        "CREATE INDEX calls_report_target ON calls (final_target, disposition, started_at, "
        "ring_seconds, talk_seconds, campaign, source, state) WHERE final_target IS NOT NULL",
    ),
)

# Schema 3's calls_answered_ani cost every answered call an entry in a b-tree ordered by
# caller number: on a database of any size, a page of its own per call, read, rewritten and
# appended to the WAL (BENCHMARKS.md, eighteenth session: 10-15 µs of the writer's thread per
# call over loopback, about 25 µs in process). What read it (the writer's caller links, sticky
# routing's last answer) now walks the caller's own calls in calls_ani_started_at. Where a
# statement looked up the next answered call once per relinked call, it now looks it up once:
# the relinked calls have no answered call between them and the one they point past, so they
# share it. A caller with thousands of unanswered calls stays linear (schema.RELINK_FINISHED,
# and this trigger).
_LINKS_ON_DELETE_V10: Final = _LINKS_ON_DELETE.replace(
    f"""UPDATE calls SET next_answered_at = (
            {_ANSWERED_AFTER.format(ani="calls.ani_e164", at="calls.started_at")})
        WHERE ani_e164 = OLD.ani_e164 AND next_answered_at = OLD.started_at;""",
    """UPDATE calls SET next_answered_at = (
            SELECT min(a.started_at) FROM calls AS a WHERE a.ani_e164 = OLD.ani_e164
            AND a.disposition = 'answered' AND a.started_at >= OLD.started_at)
        WHERE ani_e164 = OLD.ani_e164 AND started_at < OLD.started_at
          AND next_answered_at = OLD.started_at;""",
)

_V10 = Migration(
    10,
    "no index of answered calls by caller (cheaper CDR writes); relinks look up once",
    (
        "DROP INDEX calls_answered_ani",
        "DROP TRIGGER calls_links_delete",
        _LINKS_ON_DELETE_V10,
    ),
)

#: Every step, in order; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10,
)  # fmt: skip
#: The schema version this code reads and writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


async def read_version(conn: aiosqlite.Connection) -> tuple[int, int]:
    """Return the database's ``(user_version, application_id)``."""
    async with conn.execute("PRAGMA user_version") as cur:
        version = await cur.fetchone()
    async with conn.execute("PRAGMA application_id") as cur:
        app = await cur.fetchone()
    assert version is not None and app is not None
    return int(version[0]), int(app[0])


def check_version(version: int, application_id: int, *, known: int = SCHEMA_VERSION) -> None:
    """Raise if a database with this header cannot be used by this code."""
    if application_id not in (0, APPLICATION_ID):
        raise SchemaError(
            f"not a callflow CDR database (application_id {application_id:#x}, "
            f"expected {APPLICATION_ID:#x})"
        )
    if version > known:
        raise SchemaTooNew(
            f"CDR database schema version {version} is newer than this callflow knows "
            f"({known}); upgrade callflow or use a copy of an older database"
        )


def check_current(version: int, application_id: int) -> None:
    """Raise unless a database with this header has this code's schema, no older, no newer."""
    check_version(version, application_id)
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"CDR schema version {version}, expected {SCHEMA_VERSION}; "
            "open it once with the daemon (CdrStore) to migrate it"
        )


async def migrate(
    conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> int:
    """Bring the database up to date in one IMMEDIATE transaction; return the final version."""
    target = len(migrations)
    version, app = await read_version(conn)
    check_version(version, app, known=target)
    if version == target:
        return target
    await conn.execute("BEGIN IMMEDIATE")
    try:
        version, app = await read_version(conn)  # re-read under the write lock
        check_version(version, app, known=target)
        for step in migrations[version:]:
            for sql in step.statements:
                await conn.execute(sql)
            await conn.execute(f"PRAGMA user_version = {int(step.version)}")
            log.info("cdr_schema_migrated", version=step.version, description=step.description)
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return target


#: The calls table's CHECK on ``status`` as schema 1 wrote it, and the same check without the IN
#: list (a temporary b-tree of the constants for every INSERT and UPDATE of a call).
_STATUS_CHECK_IN: Final = "CHECK (status IN ('in_progress', 'completed', 'unknown'))"
_STATUS_CHECK_OR: Final = (
    "CHECK (status = 'in_progress' OR status = 'completed' OR status = 'unknown')"
)


async def rewrite_status_check(conn: aiosqlite.Connection) -> bool:
    """Give the status CHECK its OR form in place; False if it has it or SQLite refuses.

    Both forms accept the same values, so no stored row changes: this is SQLite's documented
    procedure for such a change (``writable_schema``, then a new schema cookie, in one
    transaction). An SQLite that refuses it (a "defensive" build) keeps the IN list, which
    costs only speed: the refusal is logged and the database is used as it is.
    """
    rows = list(await conn.execute_fetchall(_CALLS_SQL))
    if not rows or _STATUS_CHECK_IN not in str(rows[0][0]):
        return False
    try:
        await conn.execute("BEGIN IMMEDIATE")
        cookie = next(iter(await conn.execute_fetchall("PRAGMA schema_version")))[0]
        await conn.execute("PRAGMA writable_schema = ON")
        await conn.execute(_REWRITE_CHECK, (_STATUS_CHECK_IN, _STATUS_CHECK_OR))
        await conn.execute(f"PRAGMA schema_version = {int(cookie) + 1}")
        await conn.execute("PRAGMA writable_schema = OFF")
        await conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        await conn.execute("PRAGMA writable_schema = OFF")
        log.warning("cdr_status_check_kept", error=str(exc))
        return False
    return True


_CALLS_SQL: Final = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'calls'"
_REWRITE_CHECK: Final = (
    "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'calls'"
)
