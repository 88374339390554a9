"""What a call fetches from memory when each wake-up starts cold (`make footprint`).

At a fixed rate the core idles between a call's events, and each event runs with caches that
other work has emptied: the daemon's CPU per call at 500 calls/s is about twice its figure back
to back, the floor's much less (BENCHMARKS.md). CPU time over loopback varies by 10-20% from
turn to turn, so it cannot show a change of a few per cent in that cost. This counts it instead.

Each server (a ``callflow.bench.serve`` kind) runs under callgrind's cache simulation with
``scripts/coldshim.c`` preloaded: whenever the event loop's epoll wait returns events, the shim
reads 4 MB, so that wake-up starts with cold caches; its own reads are not counted. After a
warm-up, the load generator places ``calls`` calls at ``rate`` calls/s, and the counters of
that window are read: per call, the instructions (Ir) and the 64-byte lines of code (ILmr) and
of data read and written (DLmr, DLmw) fetched from memory. With ``PYTHONHASHSEED=0`` they
repeat to within about 1%. The daemon's CDR batches are stretched to carry about 50 calls, as
they do at 500 calls/s. Needs valgrind and a C compiler (``make footprint`` installs both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from callflow.bench.configs import write_config
from callflow.bench.runner import run_load, start_server

__all__ = ["CACHES", "build_shim", "measure", "per_call", "read_summary"]

SHIM_SOURCE = Path(__file__).resolve().parents[2] / "scripts" / "coldshim.c"
#: The simulated caches: 32 KB L1 for code and for data, 1 MB last level (this host's L2).
CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64")
#: Calls a CDR batch of the daemon carries here, as at 500 calls/s with its 0.1 s batches.
BATCH_CALLS = 50
DIAL = {"ring": 0.2, "talk": 0.3}


def build_shim(out: Path, source: Path = SHIM_SOURCE) -> Path:
    """Compile the shim to ``out`` unless it is newer than its source; return ``out``."""
    if not out.exists() or out.stat().st_mtime < source.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(source), "-ldl"],
                       check=True)  # fmt: skip
    return out


def read_summary(path: Path) -> dict[str, int]:
    """The event counts of a callgrind output file, by event name."""
    names: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(names, (int(x) for x in line.split()[1:]), strict=True))
    raise ValueError(f"{path}: no callgrind summary")


def per_call(summary: dict[str, int], calls: int) -> dict[str, float]:
    """Instructions and memory fetches per call (lines of code, data read, data written)."""
    return {name: summary.get(name, 0) / calls for name in ("Ir", "ILmr", "DLmr", "DLmw")}


def _control(option: str, pid: int) -> None:
    """Zero (-z) or dump (-d) the counters of the callgrind run ``pid``."""
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def measure(
    kind: str, workdir: Path, *, calls: int = 200, rate: float = 10.0, warmup: int = 100
) -> dict[str, Any]:
    """Run ``kind`` under callgrind with every wake-up cold; return its counts per call."""
    shim = build_shim(workdir / "coldshim.so")
    out = workdir / f"callgrind.{kind}.out"
    valgrind = ("valgrind", "--tool=callgrind", "--cache-sim=yes", *CACHES,
                "--toggle-collect=coldshim_flush", "--collect-atstart=yes",
                f"--callgrind-out-file={out}")  # fmt: skip
    config: Path | None = None
    extra: tuple[str, ...] = ()
    if kind == "daemon":
        config = write_config(workdir / "footprint.yaml", numbers=10, targets=10)
        extra = ("--batch-interval", str(BATCH_CALLS / rate))
    env = {**os.environ, "LD_PRELOAD": str(shim), "PYTHONHASHSEED": "0"}
    server = start_server(kind, workdir, core=None, config=config, extra=extra,
                          start_timeout=600.0, wrapper=valgrind, env=env)  # fmt: skip
    try:
        timeout = 600.0 + (warmup + calls) / rate
        run_load(server.port, core=None, rate=rate, duration=warmup / rate, numbers=10,
                 timeout=timeout, **DIAL)  # fmt: skip
        time.sleep(2.0)  # the warm-up's last CDR batch
        _control("-z", server.pid)
        result = run_load(server.port, core=None, rate=rate, duration=calls / rate, numbers=10,
                          timeout=timeout, **DIAL)  # fmt: skip
        if kind == "daemon":
            time.sleep(BATCH_CALLS / rate * 3 + 2.0)  # the last CDR batch, which waits to fill
        _control("-d", server.pid)
    finally:
        server.stop(timeout=300.0)
    dumps = sorted(workdir.glob(f"{out.name}.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {kind}")
    completed = int(result["completed"])
    return {"kind": kind, "calls": completed, "errors": result["errors"], "rate": rate,
            **per_call(read_summary(dumps[0]), max(1, completed))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Measure each kind in turn; print a table, then one JSON line per kind."""
    p = argparse.ArgumentParser(prog="python -m callflow.bench.footprint", description=__doc__)
    p.add_argument("kinds", nargs="*", default=["floor", "agi", "daemon"])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--warmup", type=int, default=100)
    args = p.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            p.error(f"{tool} not found (make footprint installs valgrind)")
    results = []
    with tempfile.TemporaryDirectory(prefix="callflow-footprint-") as tmp:
        for kind in args.kinds:
            print(f"[footprint] {kind}: {args.warmup} + {args.calls} calls at {args.rate}/s "
                  "under callgrind", file=sys.stderr, flush=True)  # fmt: skip
            workdir = Path(tmp, kind)
            workdir.mkdir()
            results.append(measure(kind, workdir, calls=args.calls, rate=args.rate,
                                   warmup=args.warmup))  # fmt: skip
    print("| server | instructions | lines of code | data lines read | data lines written |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['kind']} | {r['Ir'] / 1000:.0f}k | {r['ILmr']:.0f} | {r['DLmr']:.0f} | "
              f"{r['DLmw']:.0f} |")  # fmt: skip
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
