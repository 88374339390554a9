"""CDR write throughput: `python -m callflow.bench.cdr --calls N` prints one JSON line.

Each call writes what the daemon writes for a call answered by its first target: the
in-progress ``calls`` row, one ``attempts`` row, and the final UPDATE (three row writes), through
the real ``CdrStore`` (batched group commit), from many concurrent calls as the daemon does.

With ``--db PATH --rate R --duration S`` it writes into an existing database at a fixed rate
instead and reports how long each ``finish_call`` waited for its commit (the writer's latency,
e.g. while reports read the same file on their own connections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from callflow.store import CallEnd, CallStart, CdrStore, DialAttempt

__all__ = ["ROW_WRITES_PER_CALL", "bench_cdr", "bench_paced", "records"]

#: Row writes per call: INSERT calls, INSERT attempts, UPDATE calls.
ROW_WRITES_PER_CALL = 3


def records(i: int, now: float) -> tuple[CallStart, DialAttempt, CallEnd]:
    """Build the three records of synthetic call ``i`` (realistic field contents)."""
    uid = f"{int(now)}.{i}"
    start = CallStart(
        uniqueid=uid, linkedid=uid, channel=f"PJSIP/carrier-{i:08x}", started_at=now,
        ani_raw=f"212{2_000_000 + i % 7_000_000:07d}", ani_e164=f"+1212{2_000_000 + i:07d}",
        caller_name="JANE ROE", ani_valid=True, country="US", area_code="212", state="NY",
        region="New York", city="New York", timezone="America/New_York", dnis="8005550001",
        tracking_number="+18005550001", number_known=True, campaign="spring-promo",
        source="google", medium="cpc", keyword="emergency plumber", ad="ad-17", node="bench",
    )  # fmt: skip
    attempt = DialAttempt(
        uniqueid=uid, seq=1, target="alice", destination="PJSIP/agent1", started_at=now + 0.01,
        answered_at=now + 2.0, ended_at=now + 62.0, result="ANSWER", ring_seconds=1.99,
        talk_seconds=60.0, hangup_cause=16,
    )  # fmt: skip
    end = CallEnd(
        uniqueid=uid, answered_at=now + 2.0, ended_at=now + 62.0, disposition="answered",
        final_target="alice", final_destination="PJSIP/agent1", ring_seconds=1.99,
        talk_seconds=60.0, hangup_by="agent", dialstatus="ANSWER",
        route_reason='{"campaign":"spring-promo","attempts":["alice:ANSWER"]}',
    )  # fmt: skip
    return start, attempt, end


def _cpu() -> float:
    """Return this process's CPU seconds, all threads (the SQLite thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bench_cdr(path: Path, calls: int, concurrency: int = 200) -> dict[str, Any]:
    """Write ``calls`` calls through a fresh CdrStore and return rows/s and CPU per row."""
    store = await CdrStore.open(path)
    now = time.time()
    prepared = [records(i, now) for i in range(calls)]

    async def worker(first: int) -> None:
        for j in range(first, calls, concurrency):
            start, attempt, end = prepared[j]
            store.start_call(start)
            store.add_attempt(attempt)
            await store.finish_call(end)

    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(min(concurrency, calls))))
    await store.flush()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    commits = store.commits
    await store.close()
    rows = calls * ROW_WRITES_PER_CALL
    return {
        "calls": calls,
        "row_writes": rows,
        "wall_s": wall,
        "cpu_s": cpu,
        "calls_per_s": calls / wall,
        "rows_per_s": rows / wall,
        "cpu_us_per_row": cpu / rows * 1e6,
        "cpu_us_per_call": cpu / calls * 1e6,
        "commits": commits,
    }


async def bench_paced(path: Path, rate: float, duration: float) -> dict[str, Any]:
    """Write calls into ``path`` at ``rate`` calls/s; return the finish_call latencies."""
    store = await CdrStore.open(path)
    loop = asyncio.get_running_loop()
    now = time.time()
    waits: list[float] = []
    failed = 0

    async def call(i: int) -> None:
        nonlocal failed
        start, attempt, end = records(i, now)
        store.start_call(start)
        store.add_attempt(attempt)
        t = time.perf_counter()
        try:
            await store.finish_call(end)
        except Exception:
            failed += 1
            return
        waits.append(time.perf_counter() - t)

    tasks = []
    t0 = loop.time()
    for i in range(max(1, int(rate * duration))):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(call(i)))
    await asyncio.gather(*tasks)
    commits, rejected = store.commits, store.rejected_rows
    await store.close()
    waits.sort()
    n = len(waits)
    return {
        "rate": rate,
        "calls": len(tasks),
        "finished": n,
        "failed": failed,
        "rejected_rows": rejected,
        "commits": commits,
        "finish_p50_ms": waits[n // 2] * 1e3 if n else None,
        "finish_p99_ms": waits[min(n - 1, int(n * 0.99))] * 1e3 if n else None,
        "finish_max_ms": waits[-1] * 1e3 if n else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the CDR write benchmark on a temporary database and print one JSON line."""
    p = argparse.ArgumentParser(prog="python -m callflow.bench.cdr", description=__doc__)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--db", type=Path, help="write into this existing database, paced")
    p.add_argument("--rate", type=float, default=500.0, help="calls/s with --db")
    p.add_argument("--duration", type=float, default=10.0, help="seconds with --db")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="callflow-cdr-bench-") as tmp:
        coro = (
            bench_paced(args.db, args.rate, args.duration)
            if args.db is not None
            else bench_cdr(Path(tmp) / "cdr.sqlite", args.calls, args.concurrency)
        )
        if args.no_uvloop:
            result = asyncio.run(coro)
        else:
            import uvloop

            result = uvloop.run(coro)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
