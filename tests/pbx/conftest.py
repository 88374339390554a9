"""Fixtures for real-PBX tests of the daemon: a rules file for the sandbox and a running daemon."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from callflow.daemon import Daemon, DaemonOptions
from callflow.store import CdrReader
from callflow.testing.sandbox import Sandbox

RULES = """\
version: 1
settings:
  default_country: US
  repeat_window_days: 7
  ring_timeout: 10
trunks:
  pstn-trunk: {}
targets:
  a1: {endpoint: agent1, ring_timeout: 5}
  a2: {endpoint: agent2, ring_timeout: 5}
  a3: {endpoint: agent3, ring_timeout: 5}
  a5: {endpoint: agent5, ring_timeout: 5}
  nyc: {number: "+15551234567", trunk: pstn-trunk, ring_timeout: 5}
campaigns:
  spring-promo: {source: google, medium: cpc, keyword: emergency plumber, route: [a1, a2]}
  general: {source: direct, route: [a3]}
  pstn-only: {route: [nyc]}
numbers:
  - {number: "8005550001", campaign: spring-promo, ad: ad-17}
  - {number: "+18005550003", campaign: pstn-only}
unknown_number:
  campaign: general
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """The sandbox rules file."""
    path = tmp_path / "callflow.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh CDR database path."""
    return tmp_path / "cdr.sqlite3"


@pytest.fixture
async def daemon(sandbox: Sandbox, rules_file: Path, db_path: Path) -> AsyncIterator[Daemon]:
    """The routing daemon, in this process, listening where the sandbox dialplan calls."""
    d = Daemon(
        DaemonOptions(config=rules_file, database=db_path, port=sandbox.config.agi_port, grace=5)
    )
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


DaemonFactory = Callable[[str], Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(
    sandbox: Sandbox, tmp_path: Path, db_path: Path
) -> AsyncIterator[DaemonFactory]:
    """`await start_daemon(yaml_text)`: the daemon with these rules, stopped after the test."""
    started: list[Daemon] = []

    async def start(text: str) -> Daemon:
        path = tmp_path / "rules.yaml"
        path.write_text(text)
        d = Daemon(DaemonOptions(config=path, database=db_path, port=sandbox.config.agi_port,
                                 grace=5, watch_interval=0.2))  # fmt: skip
        await d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        await d.stop()


CallRow = dict[str, object]


@pytest.fixture
def cdr(db_path: Path) -> Callable[..., Awaitable[CallRow]]:
    """`await cdr(status="completed")` waits for the call matching and returns it.

    With ``count=N`` it waits until N calls match and returns the latest of them.
    """

    async def wait(timeout: float = 15.0, count: int = 1, **match: object) -> CallRow:
        deadline = time.monotonic() + timeout
        reader = await CdrReader.open(db_path)
        try:
            while True:
                rows = [r async for r in reader.iter_calls()]
                hits = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
                if len(hits) >= count:
                    call = await reader.get_call(str(hits[-1]["uniqueid"]))
                    assert call is not None
                    return call
                if time.monotonic() > deadline:
                    raise AssertionError(f"no CDR matching {match}; have {rows}")
                await asyncio.sleep(0.1)
        finally:
            await reader.close()

    return wait


class DaemonProcess:
    """`callflow serve` as a child process, for crash tests."""

    def __init__(self, rules: Path, db: Path, port: int) -> None:
        self.args = [
            sys.executable, "-m", "callflow.cli", "serve", "--config", str(rules), "--db", str(db),
            "--listen", f"127.0.0.1:{port}", "--log-format", "json",
        ]  # fmt: skip
        self.extra: list[str] = []
        self.port = port
        self.log: Path | None = None  # its JSON log lines go here when set (appended)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start and wait until it accepts connections."""
        with contextlib.ExitStack() as files:
            stderr = files.enter_context(self.log.open("ab")) if self.log else None
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, *self.extra, stdin=asyncio.subprocess.DEVNULL, stderr=stderr,
                env=dict(os.environ),
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            w.close()
            return
        raise AssertionError("callflow serve did not start listening")

    async def kill(self) -> None:
        """SIGKILL: no cleanup at all; returns once the process (and its listener) is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (graceful)."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 40)


@pytest.fixture
async def daemon_process(
    sandbox: Sandbox, rules_file: Path, db_path: Path
) -> AsyncIterator[DaemonProcess]:
    """A factory-free handle on `callflow serve` as a subprocess (started by the test)."""
    dp = DaemonProcess(rules_file, db_path, sandbox.config.agi_port)
    try:
        yield dp
    finally:
        if dp.proc and dp.proc.returncode is None:
            dp.proc.kill()
            await dp.proc.wait()


HookHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def hook_server() -> AsyncIterator[Callable[[HookHandler], Awaitable[int]]]:
    """`port = await hook_server(handler)`: an HTTP server on loopback taking POST /hook."""
    runners: list[web.AppRunner] = []

    async def start(handler: HookHandler) -> int:
        site = web.Application()
        site.router.add_post("/hook", handler)
        runner = web.AppRunner(site)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()
