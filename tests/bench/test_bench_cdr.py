"""The CDR write benchmarks: flat out into a fresh database, and paced into an existing one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from callflow.bench.cdr import ROW_WRITES_PER_CALL, bench_cdr, bench_paced
from callflow.store import CdrStore


async def test_flat_out_writes_every_row_in_few_commits(tmp_path: Path) -> None:
    result = await bench_cdr(tmp_path / "cdr.sqlite3", calls=300, concurrency=50)
    assert result["row_writes"] == 300 * ROW_WRITES_PER_CALL
    assert 0 < result["commits"] < 300
    with sqlite3.connect(tmp_path / "cdr.sqlite3") as db:
        written = db.execute("SELECT count(*), min(status) FROM calls").fetchone()
    assert written == (300, "completed")


async def test_paced_writes_into_an_existing_database_and_times_each_finish(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cdr.sqlite3"
    await (await CdrStore.open(path)).close()  # an existing, migrated database
    result = await bench_paced(path, rate=200, duration=0.5)
    assert result["calls"] == result["finished"] == 100
    assert result["failed"] == result["rejected_rows"] == 0
    assert 0 < result["finish_p50_ms"] <= result["finish_p99_ms"] <= result["finish_max_ms"]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT count(*) FROM calls WHERE status = 'completed'").fetchone()
    assert rows == (100,)
