"""The load generator: Asterisk-exact replies, and whole runs against the floor and the Daemon."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog

from callflow.agi.protocol import HangupNotice, HeaderParser, Reply, ReplyParser, format_command
from callflow.bench.configs import generate_config, tracking_number, write_config
from callflow.bench.floor import start_floor
from callflow.bench.loadgen import CallPlan, ChannelModel, LoadGen, build_header, parse_args
from callflow.config import load_config
from callflow.daemon import Daemon, DaemonOptions


def replies(model: ChannelModel, *words: str) -> tuple[list[Reply | HangupNotice], float]:
    """Send one command (encoded as the daemon encodes it) and parse the model's reply."""
    response = model.handle(format_command(*words).decode().removesuffix("\n"))
    data = "".join(line + "\n" for line in response.lines).encode()
    return list(ReplyParser().feed(data)), response.delay


def only(events: list[Reply | HangupNotice]) -> Reply:
    """The single reply of a command."""
    assert len(events) == 1 and isinstance(events[0], Reply)
    return events[0]


def test_parse_args_undoes_the_daemons_quoting() -> None:
    for value in ["plain", 'with "quotes"', "back\\slash", "a b  c", "", "(x)"]:
        assert parse_args(format_command("SET VARIABLE", "V", value).decode()[:-1]) == [
            "SET", "VARIABLE", "V", value,
        ]  # fmt: skip


def test_answered_call_replies_like_asterisk() -> None:
    model = ChannelModel(CallPlan(ring=2.0, talk=5.0), clock=lambda: 1000.0)
    assert only(replies(model, "SET VARIABLE", "CALLFLOW_CAMPAIGN", "c1")[0]).text == "200 result=1"
    assert only(replies(model, "GET VARIABLE", "HANGUPCAUSE")[0]).result == "0"
    events, delay = replies(model, "EXEC", "Dial", "PJSIP/agent1,20,U(callflow-answered)")
    assert delay == 7.0 and only(events).result == "-1"  # the agent hung up: no HANGUP line
    assert only(replies(model, "GET VARIABLE", "DIALSTATUS")[0]).data == "ANSWER"
    assert only(replies(model, "GET VARIABLE", "HANGUPCAUSE")[0]).data == "16"
    stamp = replies(model, "GET FULL VARIABLE", "${SHARED(CALLFLOW_AGENT_ANSWERED_AT)}")[0]
    assert only(stamp).result == "1" and only(stamp).data == "1002.000"
    assert only(replies(model, "GET FULL VARIABLE", "${NOPE}")[0]).text == "200 result=1 ()"
    assert only(replies(model, "SET VARIABLE", "CALLFLOW_STATUS", "done")[0]).code == 200
    assert model.variables["CALLFLOW_STATUS"] == "done" and not model.dead


def test_busy_then_caller_hangs_up_while_ringing() -> None:
    model = ChannelModel(CallPlan(ring=1.0, busy_first=True, caller_hangup="ringing"))
    events, delay = replies(model, "EXEC", "Dial", "PJSIP/agent1,20")
    assert delay == 1.0 and only(events).result == "0"
    assert only(replies(model, "GET VARIABLE", "DIALSTATUS")[0]).data == "BUSY"
    events, _ = replies(model, "EXEC", "Dial", "PJSIP/agent2,20")
    assert isinstance(events[0], Reply) and events[0].result == "-1"
    assert isinstance(events[1], HangupNotice) and model.dead
    assert only(replies(model, "GET VARIABLE", "DIALSTATUS")[0]).data == "CANCEL"  # dead-capable
    assert only(replies(model, "ANSWER")[0]).code == 511  # not dead-capable
    assert only(replies(model, "BOGUS")[0]).code == 510


def test_caller_hangs_up_while_talking() -> None:
    model = ChannelModel(CallPlan(ring=0.5, talk=1.0, caller_hangup="talking"))
    events, delay = replies(model, "EXEC", "Dial", "PJSIP/agent1,20")
    assert delay == 1.5 and [type(e) for e in events] == [Reply, HangupNotice]
    assert only(replies(model, "GET VARIABLE", "DIALSTATUS")[0]).data == "ANSWER"


def test_header_is_what_asterisk_sends() -> None:
    parser = HeaderParser()
    header = parser.feed(build_header(7, dnis="+18005550001", ani="2125550100", port=4573))
    assert header is not None and header.script == "/inbound"
    assert header.query["dnis"] == "+18005550001" and header.uniqueid == "1732280000.7"
    assert header.callerid == "2125550100" and header.get("rdnis") is None  # "unknown"
    assert header.extension == "+18005550001" and header.context == "callflow-inbound"


def test_generated_config_is_valid(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c.yaml", numbers=50, targets=20))
    assert len(config.numbers) == 50 and len(config.targets) == 20
    assert config.numbers[3].original == tracking_number(3)
    assert "rules" in generate_config(rules=2) and "rules" not in generate_config()


async def test_against_the_floor_open_and_closed_loop() -> None:
    server = await start_floor()
    port = server.sockets[0].getsockname()[1]
    try:
        gen = LoadGen(port, ring=0.01, talk=0.01, busy_fraction=0.3, call_timeout=5.0)
        result = await gen.open_loop(rate=200, duration=0.5)
        assert result.placed == 100 and result.completed == 100 and not result.errors
        assert len(result.decision) == 100 and max(result.decision) < 1.0
        closed = await LoadGen(port, call_timeout=5.0).closed_loop(concurrency=4, duration=0.3)
        assert closed.completed == closed.placed > 0 and not closed.errors
        held: list[int] = []
        hold = await LoadGen(port, call_timeout=5.0).hold(20, 500.0, 0.1, held.append)
        assert held == [20] and hold.completed == 20
    finally:
        server.close()
        await server.wait_closed()


async def test_daemon_tunes_the_collector_while_serving_and_restores_it(tmp_path: Path) -> None:
    import gc

    from callflow.daemon import GC_THRESHOLDS

    before = gc.get_threshold()
    config = write_config(tmp_path / "rules.yaml", numbers=1, targets=1)
    daemon = Daemon(DaemonOptions(config=config, database=tmp_path / "cdr.sqlite", port=0))
    await daemon.start()
    try:
        assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 0
    finally:
        await daemon.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.parametrize("hangups", [False, True])
async def test_against_the_daemon_every_call_gets_a_cdr(tmp_path: Path, hangups: bool) -> None:
    config = write_config(tmp_path / "rules.yaml", numbers=10, targets=10)
    db = tmp_path / "cdr.sqlite"
    daemon = Daemon(DaemonOptions(config=config, database=db, port=0, grace=5.0))
    await daemon.start()
    try:
        gen = LoadGen(
            daemon.port, ring=0.01, talk=0.01, numbers=10, unknown_fraction=0.1,
            busy_fraction=0.3 if hangups else 0.0,
            hangup_ringing_fraction=0.1 if hangups else 0.0,
            hangup_talking_fraction=0.2 if hangups else 0.0, call_timeout=5.0,
        )  # fmt: skip
        with structlog.testing.capture_logs() as logs:
            result = await gen.open_loop(rate=100, duration=1.0)
            # a second run against the same daemon, as the bench makes: its own uniqueids
            again = await LoadGen(daemon.port, ring=0.01, talk=0.01, numbers=10).open_loop(
                rate=100, duration=0.5
            )
    finally:
        await daemon.stop()
    assert result.placed == 100 and result.completed == 100, result.errors
    assert again.placed == 50 and again.completed == 50, again.errors
    assert len(result.decision) == 100
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT status, count(*) FROM calls GROUP BY status").fetchall())
        dispositions = {d for (d,) in conn.execute("SELECT DISTINCT disposition FROM calls")}
    assert rows == {"completed": 150}
    assert "answered" in dispositions
    if hangups:
        assert "abandoned" in dispositions
