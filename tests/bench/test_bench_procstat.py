"""CPU readings of a process from /proc: nanoseconds while the same threads live, else ticks."""

from __future__ import annotations

import os
import threading
import time

import pytest

from callflow.bench.procstat import CpuReading, cpu_reading


def _burn(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_since_is_the_nanosecond_clock_while_the_same_threads_live() -> None:
    earlier = CpuReading(ticks=1.00, run=1.0004, threads=frozenset({1, 2}))
    later = CpuReading(ticks=1.02, run=1.0371, threads=frozenset({1, 2}))
    assert later.since(earlier) == pytest.approx(0.0367)


def test_since_falls_back_to_ticks_when_a_thread_started_or_ended() -> None:
    # An ended thread's time is gone from the live threads' sum, but not from the ticks.
    earlier = CpuReading(ticks=1.00, run=1.5, threads=frozenset({1, 2}))
    later = CpuReading(ticks=1.03, run=1.2, threads=frozenset({1}))
    assert later.since(earlier) == pytest.approx(0.03)


def test_a_reading_of_this_process_counts_what_it_burns_to_well_under_a_tick() -> None:
    before = cpu_reading(os.getpid())
    _burn(0.025)
    after = cpu_reading(os.getpid())
    assert after.threads == before.threads and os.getpid() in after.threads
    assert after.since(before) == pytest.approx(0.025, abs=0.004)  # ticks are 10 ms


def test_a_thread_that_starts_between_readings_is_seen() -> None:
    before = cpu_reading(os.getpid())
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        after = cpu_reading(os.getpid())
        assert len(after.threads) == len(before.threads) + 1
        assert after.since(before) == after.ticks - before.ticks
    finally:
        stop.set()
        worker.join()
