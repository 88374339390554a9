"""The in-process benchmark: the real daemon's calls through in-memory transports."""

from __future__ import annotations

import time
from pathlib import Path

from callflow.agi.protocol import format_command
from callflow.bench.floor import COMMANDS
from callflow.bench.inproc import FLOOR_CALL, bench_inprocess, reply_to
from callflow.bench.loadgen import CallPlan, ChannelModel


def test_the_agi_only_handler_sends_the_floors_commands() -> None:
    assert tuple(format_command(*command) for command in FLOOR_CALL) == COMMANDS


def test_replies_are_asterisks_for_a_call_its_first_target_answers() -> None:
    model = ChannelModel(CallPlan(ring=0.0, talk=0.3), clock=lambda: 1000.0)
    dial = COMMANDS[0].decode().rstrip("\n")
    assert (
        reply_to(COMMANDS[0], 1000.3)
        == "".join(f"{x}\n" for x in model.handle(dial).lines).encode()
    )
    outcome = reply_to(COMMANDS[1], 1000.3).decode()
    assert outcome.startswith("200 result=1 (ANSWER|16|1000.000|")


async def test_every_call_is_routed_answered_and_recorded(tmp_path: Path) -> None:
    result = await bench_inprocess(tmp_path, calls=300, warmup=50, concurrency=8)
    assert result["completed_rows"] == 350
    assert 0 < result["main_us_per_call"] <= result["cpu_us_per_call"]
    assert result["other_threads_us_per_call"] > 0  # the CDR writer's thread did the writing


async def test_the_agi_layer_alone_serves_every_call(tmp_path: Path) -> None:
    result = await bench_inprocess(tmp_path, calls=200, warmup=20, agi_only=True)
    assert result["calls"] == 200 and "completed_rows" not in result
    assert result["cpu_us_per_call"] > 0


async def test_spaced_calls_are_placed_gap_apart_and_all_recorded(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await bench_inprocess(tmp_path, calls=50, warmup=10, concurrency=8, gap=0.01)
    assert time.monotonic() - started >= 50 * 0.01  # the loop waited between the calls
    assert result["gap"] == 0.01 and result["completed_rows"] == 60
