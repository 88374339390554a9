"""Per-process CPU time and resident memory from /proc (no psutil)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CpuReading",
    "busy_seconds",
    "cpu_reading",
    "cpu_seconds",
    "raise_nofile",
    "rss_bytes",
    "steal_seconds",
    "threads_cpu_seconds",
]

_TICK = float(os.sysconf("SC_CLK_TCK"))


def cpu_seconds(pid: int) -> float:
    """Return utime + stime of a process (all its threads) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command name: state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass(frozen=True, slots=True)
class CpuReading:
    """A process's CPU time so far, two ways: clock ticks, and its live threads' nanoseconds."""

    ticks: float  # utime + stime of every thread, ended ones too, in 10 ms ticks
    run: float  # the live threads' time on a CPU (schedstat), to the nanosecond
    threads: frozenset[int]

    def since(self, earlier: CpuReading) -> float:
        """CPU seconds between two readings: exact when the same threads lived at both."""
        if self.threads == earlier.threads:
            return self.run - earlier.run
        return self.ticks - earlier.ticks  # a thread started or ended: only ticks count it all


def cpu_reading(pid: int) -> CpuReading:
    """Read a process's CPU time; a light server's run costs a few clock ticks, +-1 at each end."""
    ticks = cpu_seconds(pid)
    run_ns, threads = 0, []
    for entry in os.scandir(f"/proc/{pid}/task"):
        try:
            run_ns += int(Path(entry.path, "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        threads.append(int(entry.name))
    return CpuReading(ticks, run_ns / 1e9, frozenset(threads))


def threads_cpu_seconds(pids: list[int]) -> float:
    """Return the summed utime + stime of several processes, skipping those that are gone."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _cpu_line() -> list[int]:
    """The machine-wide ``cpu`` line of /proc/stat: user nice system idle iowait irq softirq
    steal, in ticks."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busy_seconds() -> float:
    """Return the CPU seconds this machine's own work took, all cores (user, system, irq)."""
    user, nice, system, _idle, _iowait, irq, softirq, _steal = _cpu_line()
    return (user + nice + system + irq + softirq) / _TICK


def steal_seconds() -> float:
    """Return the CPU seconds the hypervisor gave to others while this VM wanted to run."""
    return _cpu_line()[7] / _TICK


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
