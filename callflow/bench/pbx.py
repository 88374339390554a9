"""Real PBX step: SIPp carrier → sandbox Asterisk → callflow daemon → SIPp agent, rising rates.

Runs an isolated sandbox (name ``bench``, its own ports) so it never collides with other tests,
places calls with one SIPp UAC per rate step (``-r N``, no media), and samples the CPU of
Asterisk, the daemon, SIPp and the whole machine from /proc. Bounded: a few steps of a few
seconds each, stopping at the first step the machine cannot keep up with (calls fail, or they go
in markedly slower than offered: SIPp, Asterisk and the daemon share the cores).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from callflow.bench.procstat import busy_seconds, threads_cpu_seconds
from callflow.bench.runner import Server, start_server

__all__ = ["BENCH_SANDBOX_ENV", "KEPT_UP", "run_pbx", "saturated"]

#: A step is saturated when calls went in slower than this share of the offered rate.
KEPT_UP = 0.9

#: The isolated sandbox the benchmark uses (see callflow.testing.sandbox.SandboxConfig).
BENCH_SANDBOX_ENV = {
    "CALLFLOW_SANDBOX_NAME": "bench",
    "CALLFLOW_SANDBOX_SIP_PORT": "5360",
    "CALLFLOW_SANDBOX_AMI_PORT": "5348",
    "CALLFLOW_SANDBOX_HTTP_PORT": "8398",
    "CALLFLOW_SANDBOX_AGI_PORT": "4683",
    "CALLFLOW_SANDBOX_PEER_PORT": "5370",
    "CALLFLOW_SANDBOX_RTP_START": "50000",
}


@contextlib.contextmanager
def _bench_env() -> Iterator[None]:
    """Point the sandbox helpers at the isolated bench sandbox for a with-block."""
    saved = {key: os.environ.get(key) for key in BENCH_SANDBOX_ENV}
    os.environ.update(BENCH_SANDBOX_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _sipp_uac(xml: Path, target: str, ip: str, rate: int, calls: int, workdir: Path) -> list[str]:
    """The SIPp command line placing ``calls`` calls at ``rate`` calls/s."""
    return [
        "sipp", target, "-sf", str(xml), "-i", ip, "-p", "5999", "-mi", ip, "-mp", "36000",
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(100, rate * 4)),
        "-nostdin", "-timeout", "40s", "-timeout_error", "-max_socket", "60000",
        "-trace_err", "-error_file", str(workdir / f"uac-{rate}-err.log"),
    ]  # fmt: skip


def _count(db: Path, since: float) -> tuple[dict[str, int], float | None]:
    """Count the daemon's CDR rows by disposition since a time, and the rate they started at."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT coalesce(disposition, status), count(*) FROM calls WHERE started_at >= ? "
            "GROUP BY 1",
            (since,),
        ).fetchall()
        n, first, last = conn.execute(
            "SELECT count(*), min(started_at), max(started_at) FROM calls WHERE started_at >= ?",
            (since,),
        ).fetchone()
    rate = (n - 1) / (last - first) if n > 1 and last > first else None
    return {str(k): int(v) for k, v in rows}, rate


def saturated(step: dict[str, Any]) -> bool:
    """Whether the machine could not keep up with a step: calls failed or went in too slowly."""
    achieved = step.get("achieved_rate")
    slow = achieved is not None and achieved < KEPT_UP * step["rate"]
    return step["failed"] > 0.05 * step["placed"] or slow


def run_pbx(
    workdir: Path,
    rates: tuple[int, ...] = (25, 50, 100, 200, 300, 400, 500, 600, 800),
    step: float = 6.0,
) -> dict[str, Any]:
    """Run the rising-rate SIPp steps and return per-step CPU shares and call outcomes.

    The steps stop at the first one the machine could not keep up with; the default rates go
    well past where this host saturates, so a quiet run still finds it (BENCHMARKS.md).
    """
    with _bench_env():
        from callflow.testing import scenarios
        from callflow.testing.sandbox import Sandbox, SandboxConfig

        config = SandboxConfig()
        sandbox = Sandbox(config)
        sandbox.start()
        version = sandbox.rx("core show version").strip().split(" built")[0]
        steps: list[dict[str, Any]] = []
        daemon: Server | None = None
        agent: subprocess.Popen[bytes] | None = None
        try:
            daemon = _daemon_on(workdir, config.agi_port)
            agent_xml = workdir / "agent.xml"
            agent_xml.write_text(
                scenarios.agent_scenario(answer_after_ms=0, reject=None, talk_ms=None)
            )
            ip = config.agent_ip(1)
            agent = subprocess.Popen(
                ["sipp", "-sf", str(agent_xml), "-i", ip, "-p", str(config.peer_port), "-mi", ip,
                 "-mp", str(config.peer_port + 10000), "-nostdin", "-l", "20000",
                 "-max_socket", "60000"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            uac_xml = workdir / "carrier.xml"
            uac_xml.write_text(
                scenarios.carrier_scenario(
                    ani="2125550100",
                    dnis="8005550001",
                    caller_name="Bench",
                    hold_ms=1000,
                    dtmf_pcap=None,
                    dtmf_delay_ms=0,
                    extra_headers={},
                ),
                encoding="latin-1",
            )
            time.sleep(0.5)
            ast_pid = sandbox._pid()
            for rate in rates:
                steps.append(
                    _step(rate, step, uac_xml, config, ast_pid, daemon, agent.pid, workdir)
                )
                if saturated(steps[-1]):
                    break
                time.sleep(2.0)
        finally:
            if agent is not None:
                agent.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    agent.wait(5)
            if daemon is not None:
                daemon.stop()
            sandbox.stop()
    return {"steps": steps, "version": version}


def _daemon_on(workdir: Path, port: int) -> Server:
    """Start the daemon on the sandbox's AGI port with the shipped example rules."""
    rules = Path(__file__).resolve().parents[2] / "rules" / "callflow.yaml"
    return start_server("daemon", workdir, core=None, config=rules, extra=("--port", str(port)))


def _step(
    rate: int,
    seconds: float,
    xml: Path,
    config: Any,
    ast_pid: int | None,
    daemon: Server,
    agent_pid: int,
    workdir: Path,
) -> dict[str, Any]:
    """Place ``rate * seconds`` calls at ``rate``/s and measure who used how much CPU."""
    calls = int(rate * seconds)
    since = time.time()
    pids = [ast_pid] if ast_pid else []
    a0, d0, s0 = threads_cpu_seconds(pids), daemon.cpu(), threads_cpu_seconds([agent_pid])
    m0, u0 = busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    target = f"{config.host}:{config.sip_port}"
    uac = subprocess.Popen(
        _sipp_uac(xml, target, config.carrier_ip, rate, calls, workdir),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        uac.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        uac.kill()
        uac.wait()
    wall = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the carrier SIPp, now waited for
    time.sleep(1.0)
    a1, d1, s1 = threads_cpu_seconds(pids), daemon.cpu(), threads_cpu_seconds([agent_pid])
    machine, span = busy_seconds() - m0, time.perf_counter() - t0
    outcome, achieved = _count(daemon.log.parent / _db_name(daemon), since)
    answered = outcome.get("answered", 0)
    asterisk, dmn = a1 - a0, d1.since(d0)
    carrier = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
    return {
        "rate": rate,
        "placed": calls,
        "answered": answered,
        "failed": calls - answered,
        "sipp_exit": uac.returncode,
        "wall_s": wall,
        "asterisk_cpu_ms_per_call": asterisk / max(1, answered) * 1000,
        "daemon_cpu_ms_per_call": dmn / max(1, answered) * 1000,
        "asterisk_util": asterisk / wall,
        "daemon_util": dmn / wall,
        "sipp_agent_util": (s1 - s0) / wall,
        "sipp_util": (s1 - s0 + carrier) / wall,
        "machine_util": machine / span,
        "achieved_rate": achieved,
        "daemon_share": dmn / max(1e-9, asterisk + dmn),
        "outcomes": outcome,
    }


def _db_name(server: Server) -> str:
    """The daemon's database file name (next to its log)."""
    return server.log.name.removesuffix(".log") + ".sqlite"


if __name__ == "__main__":
    import json

    print(json.dumps(run_pbx(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/callflow-pbx"))))
