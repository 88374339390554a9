"""The cold-footprint count: the shim empties the caches at each wake-up, callgrind counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callflow.bench.footprint import build_shim, measure, per_call, read_summary

_POLLS = """
import os, select
ep = select.epoll()
r, w = os.pipe()
ep.register(r, select.EPOLLIN)
assert ep.poll(0) == []          # nothing ready: no flush
os.write(w, b"x")
assert ep.poll(0) == [(r, select.EPOLLIN)]  # a wake-up with events: one flush
"""


def test_the_shim_empties_the_caches_once_per_wakeup_with_events(tmp_path: Path) -> None:
    shim = build_shim(tmp_path / "coldshim.so")
    env = {**os.environ, "LD_PRELOAD": str(shim), "COLDSHIM_REPORT": "1"}
    done = subprocess.run([sys.executable, "-c", _POLLS], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "coldshim: 1 flushes"


def test_the_summary_is_read_by_event_name(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out.1"
    out.write_text("version: 1\nevents: Ir Dr ILmr DLmr DLmw\nsummary: 900 50 30 12 6\n"
                   "totals: 999 50 30 12 6\n")  # fmt: skip
    summary = read_summary(out)
    assert summary == {"Ir": 900, "Dr": 50, "ILmr": 30, "DLmr": 12, "DLmw": 6}
    assert per_call(summary, 3) == {"Ir": 300.0, "ILmr": 10.0, "DLmr": 4.0, "DLmw": 2.0}
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no callgrind summary"):
        read_summary(out)


def test_the_floor_under_callgrind_is_counted_without_the_shims_reads(tmp_path: Path) -> None:
    result = measure("floor", tmp_path, calls=20, rate=20.0, warmup=10)
    assert result["calls"] == 20 and not result["errors"]
    assert result["Ir"] > 10_000 and result["ILmr"] > 100
    # Each wake-up's flush reads 65,536 lines; a call has several wake-ups. Counted, they would
    # dwarf the call's own reads: the shim's function is left out of the counts.
    assert result["DLmr"] < 65_536


async def test_the_daemons_cdr_batches_gather_for_the_interval_given(tmp_path: Path) -> None:
    from callflow.bench.configs import write_config
    from callflow.daemon import Daemon, DaemonOptions

    config = write_config(tmp_path / "rules.yaml", numbers=1, targets=1)
    options = DaemonOptions(config=config, database=tmp_path / "cdr.sqlite", port=0,
                            cdr_batch_interval=0.7)  # fmt: skip
    daemon = Daemon(options)
    await daemon.start()
    try:
        assert daemon._store is not None and daemon._store._batch_interval == 0.7
    finally:
        await daemon.stop()
