"""/proc accounting used by the benchmark: a server's CPU and memory include its children."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from callflow.bench.procstat import cpu_seconds, tree_cpu_seconds, tree_pids, tree_rss_bytes

_BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"


def test_a_live_child_is_part_of_the_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BURN + "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(child.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in tree_pids(os.getpid())
        own = cpu_seconds(os.getpid())
        assert tree_cpu_seconds(os.getpid()) >= own + 0.39
        assert tree_rss_bytes(os.getpid()) > tree_rss_bytes(child.pid) > 0
    finally:
        child.kill()
        child.wait()


def test_a_reaped_child_still_counts() -> None:
    before = tree_cpu_seconds(os.getpid()) - cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", _BURN], check=True)
    after = tree_cpu_seconds(os.getpid()) - cpu_seconds(os.getpid())
    assert after - before >= 0.39  # its CPU moved into our cutime/cstime when it was reaped
