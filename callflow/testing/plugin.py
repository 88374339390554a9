"""pytest plugin: a running sandbox Asterisk, a SIPp carrier and SIPp agents as fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from callflow.agi import AgiServer, Handler
from callflow.testing.sandbox import Sandbox, SandboxConfig
from callflow.testing.sipp import Agent, CallResult, Carrier

_running: list[Sandbox] = []


@pytest.fixture(scope="session")
def sandbox_config() -> SandboxConfig:
    """The sandbox's addresses and ports (override to run a second sandbox)."""
    return SandboxConfig()


@pytest.fixture(scope="session")
def sandbox(sandbox_config: SandboxConfig) -> Iterator[Sandbox]:
    """A real Asterisk 22 running for the whole test session."""
    box = Sandbox(sandbox_config)
    box.start()
    _running.append(box)
    try:
        yield box
    finally:
        _running.remove(box)
        box.stop()


@pytest.fixture
def carrier(sandbox: Sandbox, tmp_path: Any) -> Carrier:
    """The carrier trunk, placing inbound calls into the production context."""
    return Carrier(sandbox.config, tmp_path / "carrier")


PlaceCall = Callable[..., Awaitable[CallResult]]


@pytest.fixture
def place_call(carrier: Carrier) -> PlaceCall:
    """`await place_call(ani=, dnis=, digits=, hold=)` places one call and returns what it saw."""
    return carrier.place_call


AgentFactory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def agents(sandbox: Sandbox, tmp_path: Any) -> AsyncIterator[AgentFactory]:
    """`await agents("agent1", answer_after=2, reject=None, talk=None)` starts an agent UAS."""
    started: list[Agent] = []

    async def start(name: str, **behaviour: Any) -> Agent:
        workdir = tmp_path / f"agent-{name}-{len(started)}"
        workdir.mkdir(parents=True)
        ip = sandbox.config.peers()[name]
        agent = Agent(name, ip, sandbox.config.peer_port, workdir=workdir, **behaviour)
        await agent.start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        await agent.stop()


AgiServerFactory = Callable[..., Awaitable[AgiServer]]


@pytest.fixture
async def agi_server(sandbox: Sandbox) -> AsyncIterator[AgiServerFactory]:
    """`await agi_server({"/inbound": handler})` serves FastAGI where the sandbox dialplan calls."""
    servers: list[AgiServer] = []

    async def start(routes: dict[str, Handler], **options: Any) -> AgiServer:
        server = AgiServer(routes, host="127.0.0.1", port=sandbox.config.agi_port, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop(grace=5)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failing test that used the sandbox, attach the Asterisk log tail to the report."""
    report = yield
    if report.failed and _running and "sandbox" in getattr(item, "fixturenames", ()):
        report.sections.append(("Asterisk log (tail)", _running[-1].log_tail(80)))
    return report
