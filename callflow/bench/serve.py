"""Run a server under test in its own process: `python -m callflow.bench.serve KIND`.

KIND is ``daemon`` (the real Daemon), ``floor`` (callflow.bench.floor), ``agi`` (our FastAGI
server sending the floor's commands) or ``bound`` (callflow.bench.bound).

It prints ``READY <port>`` on stdout once listening and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from callflow.bench.floor import start_floor
from callflow.bench.procstat import raise_nofile

__all__ = ["main"]


async def _until_signal() -> None:
    """Wait for SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _floor(args: argparse.Namespace) -> None:
    """Serve the floor until signalled."""
    server = await start_floor(args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await _until_signal()
    server.close()


async def _agi(args: argparse.Namespace) -> None:
    """Serve the floor's two commands through our FastAGI server until signalled."""
    from callflow import logs
    from callflow.agi.server import AgiServer
    from callflow.bench.inproc import two_commands

    logs.configure(args.log_format, args.log_level, cache=True)
    server = AgiServer({"/inbound": two_commands}, host=args.host, port=args.port)
    await server.start()
    print(f"READY {server.port}", flush=True)
    try:
        await _until_signal()
    finally:
        await server.stop(0)


async def _bound(args: argparse.Namespace) -> None:
    """Serve the lower bound (the floor, bare CDRs, a log line) until signalled."""
    from callflow.bench.bound import Bound

    bound = Bound(Path(args.db))
    port = await bound.start(args.host, args.port)
    print(f"READY {port}", flush=True)
    try:
        await _until_signal()
    finally:
        await bound.stop()


async def _daemon(args: argparse.Namespace) -> None:
    """Serve the real Daemon until signalled."""
    from callflow import logs
    from callflow.daemon import Daemon, DaemonOptions

    logs.configure(args.log_format, args.log_level, cache=True)
    options = DaemonOptions(
        config=Path(args.config), database=Path(args.db), host=args.host, port=args.port,
        node="bench", grace=2.0,
    )  # fmt: skip
    if args.batch_interval is not None:
        options = dataclasses.replace(options, cdr_batch_interval=args.batch_interval)
    daemon = Daemon(options)
    await daemon.start()
    print(f"READY {daemon.port}", flush=True)
    try:
        await _until_signal()
    finally:
        await daemon.stop()


#: The servers this module runs, by name.
_KINDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "daemon": _daemon,
    "floor": _floor,
    "agi": _agi,
    "bound": _bound,
}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen server."""
    p = argparse.ArgumentParser(prog="python -m callflow.bench.serve", description=__doc__)
    p.add_argument("kind", choices=list(_KINDS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--config", default="rules/callflow.yaml")
    p.add_argument("--db", default="/tmp/callflow-bench.sqlite")
    p.add_argument("--log-format", default="json", choices=["json", "console"])
    p.add_argument("--log-level", default="info")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--profile", default="", help="write a pyinstrument HTML profile here")
    p.add_argument("--batch-interval", type=float, help="seconds the daemon's CDR batches gather")
    p.add_argument("--switch-interval", type=float, default=0.0, help="experiment: GIL interval")
    args = p.parse_args(argv)
    raise_nofile()
    if args.switch_interval > 0:
        sys.setswitchinterval(args.switch_interval)
    body = _KINDS[args.kind]
    runner: Callable[..., None] = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            runner(body(args))
        finally:
            profiler.stop()
            Path(args.profile).write_text(profiler.output_html())
            Path(args.profile).with_suffix(".txt").write_text(
                profiler.output_text(unicode=False, color=False, show_all=False)
            )
        return 0
    runner(body(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
