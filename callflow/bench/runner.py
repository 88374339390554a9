"""Orchestration: server and load generator in pinned processes; CPU and RSS from /proc."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from callflow.bench.procstat import CpuReading, cpu_reading, rss_bytes

__all__ = [
    "Server", "hold", "measure", "pinned", "run_json", "run_load", "settle", "start_server",
]  # fmt: skip

PY = sys.executable


def pinned(core: int | None, argv: list[str]) -> list[str]:
    """Prefix a command with ``taskset -c core`` when pinning is possible."""
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return argv
    return ["taskset", "-c", str(core), *argv]


def _readline(stream: IO[bytes], timeout: float) -> str:
    """Read one line from a child's pipe, waiting at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no line within {timeout}s (got {buf!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                raise EOFError(f"child closed its output (got {buf!r})")
            buf += chunk
    return buf.decode().strip()


@dataclass
class Server:
    """A server under test running in its own process."""

    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The server's process id (taskset execs into it)."""
        return self.proc.pid

    def cpu(self) -> CpuReading:
        """The server's CPU time so far (``later.since(earlier)`` is the seconds between)."""
        return cpu_reading(self.pid)

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        return rss_bytes(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(
    kind: str,
    workdir: Path,
    *,
    core: int | None = 0,
    uvloop: bool = True,
    config: Path | None = None,
    log_level: str = "info",
    profile: Path | None = None,
    extra: tuple[str, ...] = (),
    start_timeout: float = 300.0,
    wrapper: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Server:
    """Start ``kind`` (a callflow.bench.serve server) pinned to ``core`` and wait for READY.

    ``wrapper`` goes before the interpreter (a tool the server runs under, such as valgrind);
    ``env`` replaces the environment.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{kind}-{time.monotonic_ns()}"
    argv = [*wrapper, PY, "-m", "callflow.bench.serve", kind, "--port", "0", "--log-level",
            log_level]  # fmt: skip
    if not uvloop:
        argv.append("--no-uvloop")
    argv += ["--db", str(workdir / f"{tag}.sqlite")]  # the daemon's and the bound's CDRs
    if config is not None:
        argv += ["--config", str(config)]
    if profile is not None:
        argv += ["--profile", str(profile)]
    argv += extra
    log = workdir / f"{tag}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(pinned(core, argv), stdout=subprocess.PIPE, stderr=err, env=env)
    assert proc.stdout is not None
    try:
        line = _readline(proc.stdout, start_timeout)
    except (TimeoutError, EOFError) as exc:
        proc.kill()
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{kind} server did not start: {exc}\n{tail}") from None
    port = int(line.split()[1])
    return Server(kind, proc, port, log, {"uvloop": uvloop, "config": str(config or "")})


def _load_argv(port: int, options: dict[str, Any]) -> list[str]:
    """Build the loadgen command line from keyword options (underscores become dashes)."""
    argv = [PY, "-m", "callflow.bench.loadgen", "--port", str(port)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv


def run_json(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a command and parse the JSON object on the last line of its stdout."""
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[:6]} failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def run_load(
    port: int, *, core: int | None = 1, timeout: float = 300.0, **options: Any
) -> dict[str, Any]:
    """Run the load generator (pinned to ``core``) and return its JSON result."""
    return run_json(pinned(core, _load_argv(port, options)), timeout)


def settle(
    server: Server, *, quiet: float = 0.01, window: float = 0.2, limit: float = 120.0
) -> float:
    """Wait until the server is idle (under ``quiet`` of a core); return the seconds waited.

    Work a load leaves behind (CDR rows still queued for the writer) belongs to that load's
    calls: CPU per call is read only once it is done, and the wait counts against the rate.
    """
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = server.cpu()
        time.sleep(window)
        if server.cpu().since(before) < quiet * window:
            break
    return max(0.0, time.monotonic() - start - window)


def measure(server: Server, **options: Any) -> dict[str, Any]:
    """Run a load against a server and add the server's CPU use to the generator's result."""
    settle(server)  # nothing left over from before
    cpu0 = server.cpu()
    result = run_load(server.port, **options)
    drain = settle(server)
    cpu = server.cpu().since(cpu0)
    completed = max(1, int(result["completed"]))
    result["server"] = server.kind
    result["server_cpu_s"] = cpu
    result["drain_s"] = drain
    result["rss_mb"] = server.rss() / 2**20
    result["sustained_rate"] = completed / (result["elapsed"] + drain)
    result["cpu_ms_per_call"] = cpu / completed * 1000.0
    result["server_util"] = cpu / (result["elapsed"] + drain) if result["elapsed"] else 0.0
    result["generator_util"] = (
        result["generator_cpu"] / result["elapsed"] if result["elapsed"] else 0.0
    )
    return result


def hold(server: Server, calls: int, *, rate: float, hold_for: float = 3.0) -> dict[str, Any]:
    """Hold ``calls`` calls in a long Dial and return the server's RSS growth per call."""
    warm = run_load(server.port, rate=200, duration=1.0)  # imports, caches, first allocations
    time.sleep(0.5)
    before = server.rss()
    argv = pinned(1, _load_argv(server.port, {"hold": calls, "hold_rate": rate,
                                              "hold_for": hold_for}))  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = _readline(proc.stdout, calls / rate + 90.0)
        held = int(line.split()[1])
        time.sleep(min(1.0, hold_for / 2))
        during = server.rss()
        out, _ = proc.communicate(timeout=calls / rate + 120.0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result.update(
        server=server.kind,
        warmup_completed=warm["completed"],
        held=held,
        rss_before=before,
        rss_held=during,
        rss_per_call_kb=(during - before) / max(1, held) / 1024,
        rss_total_mb=during / 2**20,
    )
    return result
