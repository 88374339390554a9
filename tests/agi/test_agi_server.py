"""AgiServer tests over real loopback sockets with a fake Asterisk client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from callflow.agi import AgiServer, AgiSession, AgiTimeout, Handler
from callflow.agi.fake import FakeAsterisk, build_header


@pytest.fixture
async def servers() -> AsyncIterator[list[AgiServer]]:
    """Servers started by a test, stopped afterwards."""
    started: list[AgiServer] = []
    yield started
    for server in started:
        await server.stop(grace=0.5)


async def serve(started: list[AgiServer], routes: dict[str, Handler], **kwargs: Any) -> AgiServer:
    """Start a server on an ephemeral port."""
    server = AgiServer(routes, port=0, **kwargs)
    await server.start()
    started.append(server)
    return server


async def until(condition: Callable[[], bool], wait: float = 2.0) -> None:
    """Poll until condition() is true."""
    async with asyncio.timeout(wait):
        while not condition():
            await asyncio.sleep(0.01)


async def test_routes_by_path_and_parses_query(servers: list[AgiServer]) -> None:
    seen: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = []

    async def inbound(session: AgiSession) -> None:
        header = session.header
        seen.append(("inbound", header.script, dict(header.query), header.args))
        await session.set_variable("ROUTE", "agent1")

    async def other(session: AgiSession) -> None:
        seen.append(("other", session.header.script, dict(session.header.query), ()))

    server = await serve(servers, {"/inbound": inbound, "other/": other})
    assert server.port != 0

    fake = await FakeAsterisk.connect(server.port)
    await fake.expect('SET VARIABLE "ROUTE" "agent1"', "200 result=1")
    assert await fake.read_to_eof() == b""
    fake.close()

    fake = await FakeAsterisk.connect(server.port, build_header("other?x=%20y"))
    assert await fake.read_to_eof() == b""
    fake.close()

    assert seen == [
        (
            "inbound",
            "/inbound",
            {"dnis": "8005550001", "x": "1"},
            ("first", "second, with (parens)"),
        ),
        ("other", "/other", {"x": " y"}, ()),
    ]


async def test_unknown_script_uses_default_or_closes(servers: list[AgiServer]) -> None:
    hits: list[str] = []

    async def fallback(session: AgiSession) -> None:
        hits.append(session.header.script)

    plain = await serve(servers, {})
    fake = await FakeAsterisk.connect(plain.port, build_header("nowhere"))
    assert await fake.read_to_eof() == b""
    fake.close()

    with_default = await serve(servers, {}, default=fallback)
    fake = await FakeAsterisk.connect(with_default.port, build_header("nowhere"))
    assert await fake.read_to_eof() == b""
    fake.close()
    assert hits == ["/nowhere"]


async def test_garbled_peers_do_not_affect_a_good_call(servers: list[AgiServer]) -> None:
    done = asyncio.Event()

    async def inbound(session: AgiSession) -> None:
        assert await session.get_variable("CHANNEL(state)") == "Up"
        done.set()

    server = await serve(servers, {"/inbound": inbound}, header_timeout=0.3)
    good = await FakeAsterisk.connect(server.port, header=None)
    garbage = await FakeAsterisk.connect(server.port, os.urandom(2000) + b"\n\n")
    early_eof = await FakeAsterisk.connect(server.port, b"agi_network: yes\nagi_chan")
    early_eof.close()
    slow = await FakeAsterisk.connect(server.port, b"agi_network: yes\n")  # never finishes
    empty = await FakeAsterisk.connect(server.port, None)
    empty.close()
    http = await FakeAsterisk.connect(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    await good.send(build_header())
    await good.expect('GET VARIABLE "CHANNEL(state)"', "200 result=1 (Up)")
    async with asyncio.timeout(2):
        await done.wait()
    assert await good.read_to_eof() == b""

    assert await garbage.read_to_eof() == b""
    assert await http.read_to_eof() == b""
    assert await slow.read_to_eof() == b""  # dropped by the header timeout
    for fake in (good, garbage, slow, http):
        fake.close()
    await until(lambda: server.active == 0)


async def test_handler_exception_is_logged_with_uniqueid(servers: list[AgiServer]) -> None:
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("boom")

    server = await serve(servers, {"/inbound": broken})
    with capture_logs(processors=[merge_contextvars]) as logs:
        fake = await FakeAsterisk.connect(server.port)
        assert await fake.read_to_eof() == b""
        fake.close()
        await until(lambda: server.active == 0)
    errors = [entry for entry in logs if entry["event"] == "agi.handler.error"]
    assert len(errors) == 1
    assert errors[0]["uniqueid"] == "1732280000.1"
    assert errors[0]["log_level"] == "error"

    fake = await FakeAsterisk.connect(server.port)  # still serving
    assert await fake.read_to_eof() == b""
    fake.close()


async def test_each_call_logs_with_its_own_uniqueid_and_nothing_leaks(
    servers: list[AgiServer],
) -> None:
    release = asyncio.Event()

    async def inbound(session: AgiSession) -> None:
        structlog.get_logger("test").info("call.mine")
        await release.wait()
        structlog.get_logger("test").info("call.mine")

    server = await serve(servers, {"/inbound": inbound})
    with capture_logs(processors=[merge_contextvars]) as logs:
        fakes = [
            await FakeAsterisk.connect(server.port, build_header(uniqueid=f"17322800{n}.1"))
            for n in range(3)
        ]
        await until(lambda: len(logs) == 3)
        release.set()
        for fake in fakes:
            assert await fake.read_to_eof() == b""
            fake.close()
        await until(lambda: server.active == 0)
        structlog.get_logger("test").info("after")
    mine = sorted(e["uniqueid"] for e in logs if e["event"] == "call.mine")
    assert mine == sorted(2 * [f"17322800{n}.1" for n in range(3)])
    assert "uniqueid" not in next(e for e in logs if e["event"] == "after")


async def test_graceful_stop_waits_for_call_in_progress(servers: list[AgiServer]) -> None:
    statuses: list[str | None] = []

    async def inbound(session: AgiSession) -> None:
        statuses.append(await session.get_variable("DIALSTATUS"))

    server = await serve(servers, {"/inbound": inbound})
    port = server.port
    fake = await FakeAsterisk.connect(port)
    assert await fake.read_command() == 'GET VARIABLE "DIALSTATUS"'
    assert server.active == 1

    stopping = asyncio.create_task(server.stop(grace=5))
    await asyncio.sleep(0.05)
    assert not stopping.done()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting

    await fake.reply("200 result=1 (ANSWER)")
    assert await fake.read_to_eof() == b""
    fake.close()
    async with asyncio.timeout(2):
        await stopping
    assert statuses == ["ANSWER"]
    assert server.active == 0


async def test_header_arriving_during_stop_is_served(servers: list[AgiServer]) -> None:
    served: list[str | None] = []

    async def inbound(session: AgiSession) -> None:
        served.append(session.header.uniqueid)

    server = await serve(servers, {"/inbound": inbound})
    header = build_header()
    fake = await FakeAsterisk.connect(server.port, header[:50])
    await until(lambda: server.active == 1)
    stopping = asyncio.create_task(server.stop(grace=5))
    await asyncio.sleep(0.1)
    await fake.send(header[50:])  # Asterisk was mid-header when the daemon began stopping
    assert await fake.read_to_eof() == b""
    async with asyncio.timeout(2):
        await stopping
    assert served == ["1732280000.1"]
    fake.close()


async def test_half_sent_header_is_dropped_at_the_end_of_grace(servers: list[AgiServer]) -> None:
    server = await serve(servers, {"/inbound": lambda session: asyncio.sleep(0)})
    fake = await FakeAsterisk.connect(server.port, b"agi_network: yes\n")
    await until(lambda: server.active == 1)
    async with asyncio.timeout(2):
        await server.stop(grace=0.1)
    assert await fake.read_to_eof() == b"" and server.active == 0
    fake.close()


async def test_stop_cancels_calls_after_grace(servers: list[AgiServer]) -> None:
    cancelled = asyncio.Event()

    async def stuck(session: AgiSession) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await serve(servers, {"/inbound": stuck})
    fake = await FakeAsterisk.connect(server.port)
    await until(lambda: server.active == 1)
    async with asyncio.timeout(2):
        await server.stop(grace=0.1)
    assert cancelled.is_set()
    assert server.active == 0
    assert await fake.read_to_eof() == b""
    fake.close()


async def test_command_timeout(servers: list[AgiServer]) -> None:
    outcome: list[BaseException] = []

    async def inbound(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiTimeout as exc:
            outcome.append(exc)
            raise

    server = await serve(servers, {"/inbound": inbound}, command_timeout=0.1)
    fake = await FakeAsterisk.connect(server.port)
    assert await fake.read_command() == "ANSWER"
    assert await fake.read_to_eof() == b""  # Asterisk never answered: dropped
    fake.close()
    assert len(outcome) == 1


async def test_hangup_inline_before_dial_reply(servers: list[AgiServer]) -> None:
    result: dict[str, object] = {}

    async def inbound(session: AgiSession) -> None:
        reply = await session.exec("Dial", "PJSIP/agent1", "30")
        result["dial"] = reply.int_result
        result["hung_up"] = session.hung_up
        result["status"] = await session.get_variable("DIALSTATUS")

    server = await serve(servers, {"/inbound": inbound}, command_timeout=0.1)
    fake = await FakeAsterisk.connect(server.port)
    assert await fake.read_command() == 'EXEC "Dial" "PJSIP/agent1,30"'
    await asyncio.sleep(0.2)  # EXEC has no command timeout by default: Dial holds the call
    await fake.reply("HANGUP", "200 result=-1")
    await fake.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (CANCEL)")
    assert await fake.read_to_eof() == b""
    await fake.reply("HANGUP")  # Asterisk's final unconditional HANGUP
    fake.close()
    assert result == {"dial": -1, "hung_up": True, "status": "CANCEL"}


async def test_async_with_lifecycle() -> None:
    async def inbound(session: AgiSession) -> None:
        await session.verbose("hi")

    async with AgiServer({"/inbound": inbound}, port=0) as server:
        assert server.serving
        fake = await FakeAsterisk.connect(server.port)
        await fake.expect('VERBOSE "hi" "1"', "200 result=1")
        assert await fake.read_to_eof() == b""
        fake.close()
    assert not server.serving
    assert server.active == 0


async def test_a_call_starts_in_the_callback_that_read_its_header(
    servers: list[AgiServer],
) -> None:
    tasks: list[asyncio.Task[Any] | None] = []

    async def inbound(session: AgiSession) -> None:
        tasks.append(asyncio.current_task())  # None: run at once, not a loop turn later
        await session.set_variable("ROUTE", "agent1")
        tasks.append(asyncio.current_task())  # a task carries on after the first wait

    server = await serve(servers, {"/inbound": inbound})
    fake = await FakeAsterisk.connect(server.port)
    await fake.expect('SET VARIABLE "ROUTE" "agent1"', "200 result=1")
    assert await fake.read_to_eof() == b""
    fake.close()
    assert tasks[0] is None
    assert tasks[1] is not None


async def test_a_finished_call_closes_at_asterisks_eof_and_stop_closes_one_still_waiting(
    servers: list[AgiServer],
) -> None:
    sessions: list[AgiSession] = []

    async def inbound(session: AgiSession) -> None:
        sessions.append(session)  # the handler ends at once: the server closes the session

    server = await serve(servers, {"/inbound": inbound})
    prompt = await FakeAsterisk.connect(server.port)
    silent = await FakeAsterisk.connect(server.port)
    for fake in (prompt, silent):
        assert await fake.read_to_eof() == b""  # half-closed by the server
    await until(lambda: len(sessions) == 2 and server.active == 0)  # no task waits for an EOF

    def closed() -> int:
        return sum(session._transport.is_closing() for session in sessions)

    assert closed() == 0  # both connections wait for Asterisk's EOF
    prompt.close()
    await until(lambda: closed() == 1, wait=0.5)  # at the EOF
    await server.stop(grace=0.5)
    assert closed() == 2  # the silent one: closed by stop(), not after its close_timeout
    silent.close()
