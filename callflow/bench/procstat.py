"""Per-process CPU time and resident memory from /proc (no psutil)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

__all__ = ["busy_seconds", "cpu_seconds", "raise_nofile", "rss_bytes", "threads_cpu_seconds"]

_TICK = float(os.sysconf("SC_CLK_TCK"))


def cpu_seconds(pid: int) -> float:
    """Return utime + stime of a process (all its threads) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command name: state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _TICK


def threads_cpu_seconds(pids: list[int]) -> float:
    """Return the summed utime + stime of several processes, skipping those that are gone."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def busy_seconds() -> float:
    """Return the CPU seconds the whole machine has spent busy (all cores, not idle or iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK


def rss_bytes(pid: int) -> int:
    """Return the resident set size of a process in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_nofile(want: int = 65536) -> int:
    """Raise this process's open-file limit towards ``want`` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
