"""The daemon's own Python per call: the real Daemon fed calls through in-memory transports.

No sockets and no kernel: each call's header goes straight into the daemon's protocol object,
and every command is answered at once as Asterisk answers it for a call its first target
answers (``EXEC Dial`` → ``200 result=-1``, the outcome's ``GET FULL VARIABLE`` → ANSWER). What
is left is the CPU of our code, the interpreter and SQLite: steadier than the runs over
loopback, whose kernel time varies with the host. ``--agi-only`` serves the same calls with the
FastAGI server alone and a handler sending the floor's two commands: the protocol layer's cost.
Run it pinned to one core: ``python -m callflow.bench.inproc --calls 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callflow import logs
from callflow.agi.server import AgiServer
from callflow.agi.session import AgiConnection, AgiSession
from callflow.bench.configs import write_config
from callflow.bench.loadgen import LoadGen

__all__ = ["FLOOR_CALL", "bench_inprocess", "reply_to", "two_commands"]


def reply_to(command: bytes, now: float) -> bytes:
    """Asterisk's reply to a command of a call answered by its first target (talk 0.3 s)."""
    if command.startswith(b"EXEC"):
        return b"200 result=-1\n"  # the agent hung up first: Dial returns -1, the AGI goes on
    if command.startswith(b"GET FULL VARIABLE"):
        return b"200 result=1 (ANSWER|16|%.3f|agent1|)\n" % (now - 0.3)
    return b"200 result=1\n"


class _Transport:
    """An in-memory transport: replies are delivered on the loop's next turn, as data."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, conn: AgiConnection, done: Callable[[], None]
    ) -> None:
        """Serve ``conn``; ``done`` is called once, when the daemon closes the connection."""
        self._loop, self._done = loop, done
        self._conn: AgiConnection | None = conn
        self._closing = False

    def write(self, data: bytes) -> None:
        """Answer the command at once."""
        assert self._conn is not None
        self._loop.call_soon(self._conn.data_received, reply_to(data, time.time()))

    def write_eof(self) -> None:
        """The daemon half-closed: Asterisk's final HANGUP line, then its EOF."""
        self._loop.call_soon(self._goodbye)

    def _goodbye(self) -> None:
        if not self._closing and self._conn is not None:
            self._conn.data_received(b"HANGUP\n")
            if not self._conn.eof_received():  # as real transports do: close at a false reply
                self.close()

    def can_write_eof(self) -> bool:
        """Half-closing is supported."""
        return True

    def is_closing(self) -> bool:
        """True once closed."""
        return self._closing

    def close(self) -> None:
        """Close (once): the call is over."""
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._lost)
            self._done()

    def _lost(self) -> None:
        """Tell the protocol, then let go of it, as uvloop's and asyncio's transports do."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.connection_lost(None)

    abort = close

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """A peer address for logs."""
        return ("127.0.0.1", 0) if name == "peername" else default


#: The floor's commands (``callflow.bench.floor.COMMANDS``) as our session sends them.
FLOOR_CALL: tuple[tuple[str, ...], ...] = (
    ("EXEC", "Dial",
     "PJSIP/agent1,15,U(callflow-answered)B(callflow-dialing^s^1(spring-promo^alice))"),
    ("GET FULL VARIABLE", "${DIALSTATUS}|${HANGUPCAUSE}|${SHARED(CALLFLOW_AGENT_ANSWERED_AT)}"
     "|${DIALEDPEERNUMBER}|${SHARED(CALLFLOW_ACCEPTED_AT)}"),
)  # fmt: skip


async def two_commands(session: AgiSession) -> None:
    """The floor's call through our FastAGI stack: its two commands, then goodbye."""
    for command in FLOOR_CALL:
        await session.command(*command)
    session.release()
    await session.close()


def _headers(count: int) -> list[bytes]:
    """The headers the load generator sends for ``count`` calls to 10 tracking numbers."""
    generator = LoadGen(port=4573, numbers=10)
    return [generator.header() for _ in range(count)]


async def _drive(
    server: AgiServer, headers: list[bytes], concurrency: int, gap: float = 0.0
) -> None:
    """Place every call, ``concurrency`` at a time (``gap`` seconds apart), until each is closed."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    finished = loop.create_future()
    left = len(headers)

    def done() -> None:
        nonlocal left
        slots.release()
        left -= 1
        if left == 0:
            finished.set_result(None)

    for header in headers:
        await slots.acquire()
        conn = server._new_connection()  # what the loop does for an accepted socket
        conn.connection_made(_Transport(loop, conn, done))  # type: ignore[arg-type]
        conn.data_received(header)
        if gap > 0:
            await asyncio.sleep(gap)  # the loop idles, as between calls at a modest rate
    await finished


async def _idle(server: AgiServer) -> None:
    """Wait until every call's handler has ended (after its CDR commit it logs the call)."""
    while server.active:  # noqa: ASYNC110 (the server has no idle event; polling is fine here)
        await asyncio.sleep(0.001)


async def bench_inprocess(
    workdir: Path,
    *,
    calls: int,
    concurrency: int = 32,
    warmup: int = 2000,
    agi_only: bool = False,
    gap: float = 0.0,
) -> dict[str, Any]:
    """Serve ``calls`` calls after ``warmup`` ones; return the CPU µs per call, by thread.

    ``gap``: place the measured calls that many seconds apart, the loop idle in between (a
    core that idles between calls pays more per call: its caches, and a virtual CPU's halt).
    """
    from callflow.daemon import Daemon, DaemonOptions

    headers = _headers(warmup + calls)
    daemon: Daemon | None = None
    if agi_only:
        server = AgiServer({"/inbound": two_commands}, port=0)
        await server.start()
    else:
        config = write_config(workdir / "inproc.yaml", numbers=10, targets=10)
        db = workdir / "inproc.sqlite3"
        daemon = Daemon(DaemonOptions(config=config, database=db, port=0, node="bench",
                                      grace=2.0, watch_interval=0))  # fmt: skip
        await daemon.start()
        assert daemon._server is not None
        server = daemon._server
    try:
        await _drive(server, headers[:warmup], concurrency)
        await _idle(server)
        cpu0, main0 = time.process_time(), time.thread_time()
        await _drive(server, headers[warmup:], concurrency, gap)
        await _idle(server)
        cpu, main = time.process_time() - cpu0, time.thread_time() - main0
    finally:
        if daemon is not None:
            await daemon.stop()
        else:
            await server.stop(0)
    result: dict[str, Any] = {
        "calls": calls,
        "agi_only": agi_only,
        "gap": gap,
        "cpu_us_per_call": cpu / calls * 1e6,
        "main_us_per_call": main / calls * 1e6,
        "other_threads_us_per_call": (cpu - main) / calls * 1e6,
    }
    if daemon is not None:
        with sqlite3.connect(daemon.options.database) as conn:
            result["completed_rows"] = conn.execute(
                "SELECT count(*) FROM calls WHERE status = 'completed' AND disposition = 'answered'"
            ).fetchone()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the in-process benchmark and print its JSON result (logs go to stderr)."""
    p = argparse.ArgumentParser(prog="python -m callflow.bench.inproc", description=__doc__)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--agi-only", action="store_true")
    p.add_argument("--gap", type=float, default=0.0, help="seconds between measured calls")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    logs.configure("json", "info", cache=True)  # as the daemon logs in production
    runner: Callable[..., Any] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    with tempfile.TemporaryDirectory(prefix="callflow-inproc-") as tmp:
        bench = bench_inprocess(
            Path(tmp), calls=args.calls, concurrency=args.concurrency, agi_only=args.agi_only,
            gap=args.gap,
        )  # fmt: skip
        result = runner(bench)
    result["uvloop"] = runner is not asyncio.run
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
