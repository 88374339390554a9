"""The real-PBX bench step's bookkeeping: the rate calls went in at, and when a step saturated."""

from __future__ import annotations

import time
from pathlib import Path

from callflow.bench.cdr import records
from callflow.bench.pbx import _count, saturated
from callflow.bench.procstat import busy_seconds, steal_seconds
from callflow.store import CdrStore


def step(rate: int, placed: int, answered: int, achieved: float | None) -> dict[str, object]:
    """A step result as _step returns it (the fields saturated() reads)."""
    return {"rate": rate, "placed": placed, "answered": answered,
            "failed": placed - answered, "achieved_rate": achieved}  # fmt: skip


def test_a_step_saturates_when_calls_fail_or_go_in_too_slowly() -> None:
    assert not saturated(step(100, 600, 600, 99.0))
    assert not saturated(step(100, 600, 600, None))  # too few calls to tell a rate
    assert saturated(step(300, 1800, 1800, 205.0))  # every call answered, but late
    assert saturated(step(300, 1800, 1600, 299.0))  # on time, but calls failed


async def test_count_reads_outcomes_and_the_rate_calls_started_at(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"
    async with await CdrStore.open(db) as store:
        for i in range(11):  # one call every 50 ms: 20 calls/s
            start, attempt, end = records(i, 1000.0 + i * 0.05)
            store.start_call(start)
            store.add_attempt(attempt)
            if i < 10:
                await store.finish_call(end)
        await store.flush()

    outcome, rate = _count(db, since=1000.0)

    assert outcome == {"answered": 10, "in_progress": 1}
    assert rate is not None and abs(rate - 20.0) < 1e-6
    assert _count(db, since=2000.0) == ({}, None)


def test_busy_seconds_counts_this_machines_own_work() -> None:
    before, steal = busy_seconds(), steal_seconds()
    deadline = time.thread_time() + 0.2
    while time.thread_time() < deadline:  # 0.2 s of this process's CPU
        pass
    assert busy_seconds() - before >= 0.15
    assert steal_seconds() >= steal
