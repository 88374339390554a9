"""JSON log lines: one object per line, every value rendered (structlog's fallbacks kept)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from callflow import logline, logs


@pytest.fixture
def json_logs() -> Iterator[None]:
    """JSON logging as the daemon configures it, restored to the test default afterwards."""
    saved = structlog.get_config()
    logs.configure("json", "info")
    try:
        yield
    finally:
        structlog.configure(**saved)


class _Agent:
    def __structlog__(self) -> dict[str, str]:
        return {"name": "alice"}


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_json_lines_render_every_value(json_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = structlog.get_logger("test")
    structlog.contextvars.bind_contextvars(uniqueid="1700000000.1")
    try:
        log.info("call.end", ring=0.25, repeat=False, rule=None, city="Montréal",
                 agent=_Agent(), other=_Opaque(), legs=[("t0", "ANSWER")])  # fmt: skip
        log.debug("hidden")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # one line per event, debug filtered out
    line = json.loads(lines[0])
    assert line["event"] == "call.end" and line["level"] == "info"
    assert line["uniqueid"] == "1700000000.1"
    assert line["timestamp"].endswith("Z")
    assert (line["ring"], line["repeat"], line["rule"]) == (0.25, False, None)
    assert line["city"] == "Montréal" and "\\u00e9" in lines[0]  # ASCII-only output
    assert line["agent"] == {"name": "alice"}  # __structlog__, as structlog renders it
    assert line["other"] == "<opaque>"  # anything else: its repr
    assert line["legs"] == [["t0", "ANSWER"]]


def test_timestamps_are_iso_utc_to_the_microsecond(monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = logline.Stamp()
    now = [1_700_000_000_000_001_999]  # ns: 2023-11-14T22:13:20.000001 UTC
    monkeypatch.setattr(logline.time, "time_ns", lambda: now[0])
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:20.000001Z"
    now[0] += 998_998_001  # the same second
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:20.999000Z"
    now[0] += 1_000_000  # the next second: its date and time formatted again
    assert stamp(None, "info", {})["timestamp"] == "2023-11-14T22:13:21.000000Z"
    now[0] += 86_400 * 10**9 + 123_456_000
    assert stamp(None, "info", {})["timestamp"] == "2023-11-15T22:13:21.123456Z"


def test_levels_errors_and_stacks_as_structlog_renders_them(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("test")
    try:
        raise ValueError("bad row")
    except ValueError:
        log.exception("cdr.failed")
    log.warn("slow")
    log.info("here", stack_info=True)
    log.info("plain", exc_info=False, stack_info=False)
    failed, slow, here, plain = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert failed["level"] == "error" and "exc_info" not in failed
    assert (
        failed["exception"].startswith("Traceback") and "ValueError: bad row" in failed["exception"]
    )
    assert slow["level"] == "warning"
    assert here["stack"].startswith("Stack (most recent call last):") and "stack_info" not in here
    assert set(plain) == {"event", "level", "timestamp"}  # False flags dropped, as structlog does


def test_the_configured_logger_filters_binds_and_interpolates_as_structlogs_does(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("test")
    assert log.is_enabled_for(20) and not log.is_enabled_for(10)
    assert log.get_effective_level() == 20
    log.debug("hidden")
    log.info("%s calls in %s", 3, "queue")
    log.info("%(n)d left", {"n": 2})
    bound = log.bind(campaign="spring", node="pbx1")
    bound.info("bound")
    bound.unbind("node").info("unbound")
    bound.try_unbind("node", "absent").info("tried")
    with pytest.raises(KeyError):
        bound.unbind("absent")
    bound.new(fresh=1).info("new")
    log.msg("as info")
    log.log(30, "by number")
    log.log(10, "by number, filtered")
    log.fatal("as critical")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["event"], x["level"]) for x in lines] == [
        ("3 calls in queue", "info"),
        ("2 left", "info"),
        ("bound", "info"),
        ("unbound", "info"),
        ("tried", "info"),
        ("new", "info"),
        ("as info", "info"),
        ("by number", "warning"),
        ("as critical", "critical"),
    ]
    assert (lines[2]["campaign"], lines[2]["node"]) == ("spring", "pbx1")
    assert lines[3]["campaign"] == "spring" and "node" not in lines[3]
    assert "node" not in lines[4]
    assert lines[5]["fresh"] == 1 and "campaign" not in lines[5]


def test_warning_level_leaves_info_out_and_capture_logs_still_sees_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = structlog.get_config()
    logs.configure("json", "warning")
    try:
        log = structlog.get_logger("test")
        log.info("quiet")
        log.warning("loud")
        with structlog.testing.capture_logs() as captured:
            log.error("captured", row=7)
    finally:
        structlog.configure(**saved)
    assert [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()] == ["loud"]
    assert captured == [{"event": "captured", "row": 7, "log_level": "error"}]
