"""The lower bound (callflow.bench.bound) and the servers the bench's parts step starts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callflow.bench.bound import Bound, header_value
from callflow.bench.loadgen import LoadGen, build_header
from callflow.bench.runner import measure, start_server


def test_header_value_reads_one_line_of_a_raw_header() -> None:
    header = b"\n" + build_header(7, dnis="8005550001", ani="2125550100", port=4573, epoch=1.0)
    assert header_value(header, b"agi_callerid") == "2125550100"
    assert header_value(header, b"agi_dnid") == "8005550001"
    assert header_value(header, b"agi_uniqueid") != ""
    assert header_value(header, b"agi_no_such_key") == ""


async def test_every_call_gets_its_row_its_outcome_and_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bound = Bound(tmp_path / "bound.sqlite")
    port = await bound.start()
    try:
        gen = LoadGen(port, ring=0.01, talk=0.01, busy_fraction=0.3, call_timeout=5.0)
        result = await gen.open_loop(rate=200, duration=0.5)
    finally:
        await bound.stop()  # commits what is still queued
    assert result.completed == result.placed == 100 and not result.errors
    with sqlite3.connect(tmp_path / "bound.sqlite") as db:
        rows = dict(db.execute("SELECT disposition, count(*) FROM calls GROUP BY 1").fetchall())
        assert db.execute("SELECT count(DISTINCT uniqueid) FROM calls").fetchone() == (100,)
        assert db.execute("SELECT count(*) FROM calls WHERE ani = ''").fetchone() == (0,)
    assert rows.keys() == {"answered", "no-answer"} and sum(rows.values()) == 100
    assert 10 <= rows["no-answer"] <= 50  # busy_fraction 0.3 of 100 calls
    assert capsys.readouterr().err.count('"event": "call.end"') == 100


@pytest.mark.parametrize("kind", ["agi", "bound"])
def test_the_parts_steps_servers_serve_the_load_generator(tmp_path: Path, kind: str) -> None:
    server = start_server(kind, tmp_path, core=None)
    try:
        result = measure(server, rate=100, duration=0.5, numbers=10, ring=0.01, talk=0.01)
    finally:
        server.stop()
    assert result["completed"] == 50 and not result["errors"]
    assert result["cpu_ms_per_call"] > 0
