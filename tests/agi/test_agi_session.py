"""AgiSession tests against a scripted peer over a socketpair."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callflow.agi import (
    AgiCommandError,
    AgiDisconnected,
    AgiHangup,
    AgiSession,
    AgiTimeout,
    IncompleteHeader,
    ProtocolError,
)
from callflow.agi.fake import HEADER, FakeAsterisk

Pair = tuple[AgiSession, FakeAsterisk]


async def test_header_is_available(agi_pair: Pair) -> None:
    session, _ = agi_pair
    assert session.header.script == "/inbound"
    assert session.header.query["dnis"] == "8005550001"
    assert not session.hung_up and not session.closed


async def test_get_variable_set_and_unset(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_variable("DIALSTATUS"))
    await fake.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (ANSWER)")
    assert await task == "ANSWER"
    task = asyncio.create_task(session.get_variable("NOPE"))
    await fake.expect('GET VARIABLE "NOPE"', "200 result=0")
    assert await task is None


async def test_get_full_variable_with_paren_in_value(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_full_variable("${CALLERID(name)}", "PJSIP/x-1"))
    await fake.expect(
        'GET FULL VARIABLE "${CALLERID(name)}" "PJSIP/x-1"', "200 result=1 (Acme (East))"
    )
    assert await task == "Acme (East)"


async def test_get_data(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_data("enter-ext", 3000, 4))
    await fake.expect('GET DATA "enter-ext" "3000" "4"', "200 result=123")
    assert await task == ("123", False)
    task = asyncio.create_task(session.get_data("enter-ext", 3000, 4))
    await fake.expect('GET DATA "enter-ext" "3000" "4"', "200 result=12 (timeout)")
    assert await task == ("12", True)


async def test_get_data_hangup_raises(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_data("enter-ext", 3000, 4))
    await fake.expect('GET DATA "enter-ext" "3000" "4"', "200 result=-1", "HANGUP")
    with pytest.raises(AgiHangup):
        await task
    assert session.hung_up


async def test_stream_file_converts_ascii_code(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.stream_file("welcome", "12#"))
    await fake.expect('STREAM FILE "welcome" "12#"', "200 result=49 endpos=8000")
    assert await task == "1"
    task = asyncio.create_task(session.stream_file("welcome"))
    await fake.expect('STREAM FILE "welcome" ""', "200 result=0 endpos=16000")
    assert await task is None
    task = asyncio.create_task(session.stream_file("missing"))
    await fake.expect('STREAM FILE "missing" ""', "200 result=-1 endpos=0")
    with pytest.raises(AgiCommandError) as info:
        await task
    assert info.value.reply.extras["endpos"] == "0"


async def test_exec_joins_app_args(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.exec("Dial", "PJSIP/agent1&PJSIP/agent2", "30", "g"))
    await fake.expect('EXEC "Dial" "PJSIP/agent1&PJSIP/agent2,30,g"', "200 result=0")
    assert (await task).int_result == 0
    task = asyncio.create_task(session.exec("Answer"))
    await fake.expect('EXEC "Answer"', "200 result=0")
    await task


async def test_simple_commands(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.answer())
    await fake.expect("ANSWER", "200 result=0")
    await task
    task = asyncio.create_task(session.set_variable("__ROUTE", 'a "b"'))
    await fake.expect('SET VARIABLE "__ROUTE" "a \\"b\\""', "200 result=1")
    await task
    task = asyncio.create_task(session.verbose("hello", 3))
    await fake.expect('VERBOSE "hello" "3"', "200 result=1")
    await task
    task = asyncio.create_task(session.hangup())
    await fake.expect("HANGUP", "200 result=1")
    await task
    assert session.hung_up


async def test_trying_and_hangup_are_skipped(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.command("GOSUB", "sub", "s", "1"))
    await fake.expect(
        'GOSUB "sub" "s" "1"', "100 result=0 Trying...", "HANGUP", "200 result=0 Gosub complete"
    )
    reply = await task
    assert (reply.code, reply.result) == (200, "0")
    assert session.hung_up


async def test_dead_channel_511(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.answer())
    await fake.expect("ANSWER", "511 Command Not Permitted on a dead channel or intercept routine")
    with pytest.raises(AgiHangup):
        await task
    assert session.hung_up
    hangup = asyncio.create_task(session.hangup())  # already gone: not an error
    await fake.expect("HANGUP", "511 Command Not Permitted on a dead channel or intercept routine")
    await hangup


async def test_usage_520_is_returned_whole(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.command("GET DATA"))
    await fake.expect(
        "GET DATA",
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]",
        "520 End of proper usage.",
    )
    reply = await task
    assert reply.code == 520 and len(reply.text.splitlines()) == 3
    verbose = asyncio.create_task(session.verbose("still in sync"))
    await fake.expect('VERBOSE "still in sync" "1"', "510 Invalid or unknown command")
    with pytest.raises(AgiCommandError):
        await verbose


async def test_one_command_in_flight(agi_pair: Pair) -> None:
    session, fake = agi_pair
    first = asyncio.create_task(session.get_variable("A"))
    second = asyncio.create_task(session.get_variable("B"))
    assert await fake.read_command() == 'GET VARIABLE "A"'
    with pytest.raises(TimeoutError):
        await fake.read_command(wait=0.1)  # B must not be written before A's reply
    await fake.reply("200 result=1 (a)")
    await fake.expect('GET VARIABLE "B"', "200 result=1 (b)")
    assert (await first, await second) == ("a", "b")


async def test_command_timeout_drops_connection(agi_pair: Pair) -> None:
    session, fake = agi_pair
    with pytest.raises(AgiTimeout):
        await session.command("ANSWER", timeout=0.05)
    assert session.closed
    assert await fake.read_to_eof() == b"ANSWER\n"
    with pytest.raises(AgiDisconnected):
        await session.command("NOOP")


async def test_eof_raises_disconnected(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_variable("X"))
    assert await fake.read_command() == 'GET VARIABLE "X"'
    fake.close()
    with pytest.raises(AgiDisconnected):
        await task


async def test_garbled_reply_is_protocol_error(agi_pair: Pair) -> None:
    session, fake = agi_pair
    task = asyncio.create_task(session.get_variable("X"))
    await fake.expect('GET VARIABLE "X"', "<html>oops</html>")
    with pytest.raises(ProtocolError):
        await task
    assert session.closed


async def test_hangup_between_commands_is_noted(agi_pair: Pair) -> None:
    session, fake = agi_pair
    await fake.reply("HANGUP")
    task = asyncio.create_task(session.get_variable("DIALSTATUS"))
    await fake.expect('GET VARIABLE "DIALSTATUS"', "200 result=1 (CANCEL)")
    assert await task == "CANCEL"
    assert session.hung_up


async def _closes_within(session: AgiSession, seconds: float) -> float:
    """Wait until the session's transport is closed; return how long that took."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with asyncio.timeout(seconds):
        while not session._transport.is_closing():
            await asyncio.sleep(0.005)
    return loop.time() - t0


async def test_close_returns_at_once_and_the_connection_closes_at_asterisks_eof(
    agi_pair: Pair,
) -> None:
    session, fake = agi_pair
    session.close_timeout = 5.0
    await session.close()  # no wait for the peer: the call's task is done with it
    assert session.closed and not session._transport.is_closing()
    assert await fake.read_to_eof() == b""  # our write side was shut down
    await fake.reply("HANGUP")  # absorbed by the connection, unread
    fake.close()
    assert await _closes_within(session, 1.0) < 1.0  # at the EOF, not after close_timeout
    await session.close()  # idempotent


async def test_release_half_closes_at_once_and_close_finishes(agi_pair: Pair) -> None:
    session, fake = agi_pair
    session.release()
    assert await fake.read_to_eof() == b""  # the peer sees EOF before close() is awaited
    assert not session.closed and not session.hung_up
    with pytest.raises(AgiDisconnected):
        await session.get_variable("X")  # no command after the goodbye
    await fake.reply("HANGUP")
    fake.close()
    await session.close()
    assert session.closed
    await _closes_within(session, 1.0)
    session.release()  # harmless once closed


async def test_close_does_not_wait_forever_for_peer(agi_pair: Pair) -> None:
    session, _ = agi_pair
    session.close_timeout = 0.05
    await session.close()
    assert session.closed
    assert 0.04 <= await _closes_within(session, 1.0) < 0.5  # no EOF: closed by the deadline
    await session.close()  # idempotent


async def test_a_closed_session_ignores_what_asterisk_still_sends(agi_pair: Pair) -> None:
    session, fake = agi_pair
    session.close_timeout = 5.0
    await session.close()
    await fake.reply("garbage that is not AGI\x00")
    await fake.reply("200 result=1")
    fake.close()
    await _closes_within(session, 1.0)
    assert session._conn.error is None and not session._events


async def test_accept_with_reply_bytes_in_header_packet() -> None:
    left, right = socket.socketpair()
    _, f_writer = await asyncio.open_connection(sock=right)
    f_writer.write(HEADER + b"HANGUP\n")
    session = await AgiSession.accept(left)
    f_writer.write(b"200 result=0\n")
    assert await session.get_variable("X") is None
    assert session.hung_up
    session.abort()
    f_writer.close()


@pytest.mark.parametrize("data", [b"", b"agi_network: yes\n"])
async def test_accept_early_eof(data: bytes) -> None:
    left, right = socket.socketpair()
    _, f_writer = await asyncio.open_connection(sock=right)
    f_writer.write(data)
    f_writer.close()
    with pytest.raises(IncompleteHeader):
        await AgiSession.accept(left)


async def test_accept_header_timeout() -> None:
    left, right = socket.socketpair()
    _, f_writer = await asyncio.open_connection(sock=right)
    f_writer.write(b"agi_network: yes\n")
    with pytest.raises(AgiTimeout):
        await AgiSession.accept(left, header_timeout=0.05)
    f_writer.close()


async def test_commands_from_two_tasks_take_turns_in_order(agi_pair: Pair) -> None:
    session, fake = agi_pair
    first = asyncio.create_task(session.get_variable("A"))
    second = asyncio.create_task(session.get_variable("B"))
    third = asyncio.create_task(session.get_variable("C"))
    assert await fake.read_command() == 'GET VARIABLE "A"'
    with pytest.raises(TimeoutError):  # B waits for A's reply: one command in flight
        await fake.read_command(wait=0.1)
    await fake.reply("200 result=1 (a)")
    await fake.expect('GET VARIABLE "B"', "200 result=1 (b)")
    await fake.expect('GET VARIABLE "C"', "200 result=1 (c)")
    assert [await first, await second, await third] == ["a", "b", "c"]


@pytest.mark.parametrize("when", ["while waiting", "once handed the turn"])
async def test_a_cancelled_command_leaves_the_others_their_turns(agi_pair: Pair, when: str) -> None:
    session, fake = agi_pair
    cancelled: asyncio.Task[str | None]

    async def first() -> str | None:
        value = await session.get_variable("A")
        if when == "once handed the turn":
            cancelled.cancel()  # in the step A's turn ended: B was handed it, not yet resumed
        return value

    a = asyncio.create_task(first())
    cancelled = asyncio.create_task(session.get_variable("B"))
    last = asyncio.create_task(session.get_variable("C"))
    assert await fake.read_command() == 'GET VARIABLE "A"'
    if when == "while waiting":
        cancelled.cancel()
    await fake.reply("200 result=1 (a)")
    await fake.expect('GET VARIABLE "C"', "200 result=1 (c)")
    assert await a == "a" and await last == "c"
    assert cancelled.cancelled() and not session.closed


async def test_a_waiting_command_cancelled_as_the_turn_ends_is_skipped(agi_pair: Pair) -> None:
    session, fake = agi_pair
    session._busy = True  # a command in flight (deterministic: the race is within one step)
    waiting = asyncio.create_task(session.get_variable("B"))
    await asyncio.sleep(0)  # B waits for its turn
    waiting.cancel()  # its waiter is cancelled; B has not run since
    session._pass_turn()  # the turn ends in the same step: B's cancelled waiter is skipped
    assert not session._busy
    with pytest.raises(asyncio.CancelledError):
        await waiting
    task = asyncio.create_task(session.get_variable("C"))
    await fake.expect('GET VARIABLE "C"', "200 result=1 (c)")
    assert await task == "c" and not session.closed
