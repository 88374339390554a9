"""Deadlines kept by one loop timer: on time, cleared, moved earlier, idle when none pending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from callflow.agi.deadlines import Deadlines

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Run a test body in a fresh loop of each kind (uvloop's timers tick in milliseconds)."""

    def runner(body: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as r:
            r.run(body)

    return runner


class Fired:
    """Records which keys' callbacks ran, and when (loop time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.at: dict[str, float] = {}

    def __call__(self, key: str) -> None:
        self.at[key] = self.loop.time()


def test_a_deadline_fires_once_after_its_delay_with_its_key(run: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadlines, fired = Deadlines(loop), Fired(loop)
        t0 = loop.time()
        deadlines.set("a", 0.05, fired)
        assert len(deadlines) == 1
        await asyncio.sleep(0.15)
        assert list(fired.at) == ["a"]
        assert 0.045 <= fired.at["a"] - t0 < 0.12
        assert len(deadlines) == 0 and not deadlines.armed  # nothing pending: no timer

    run(body())


def test_a_cleared_deadline_never_fires_and_the_timer_then_stops(run: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadlines, fired = Deadlines(loop), Fired(loop)
        deadlines.set("a", 0.05, fired)
        deadlines.clear("a")
        deadlines.clear("never set")
        assert deadlines.armed  # left to find the deadline gone
        await asyncio.sleep(0.1)
        assert fired.at == {}
        assert not deadlines.armed

    run(body())


def test_an_earlier_deadline_moves_the_timer_and_the_later_one_still_fires(run: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadlines, fired = Deadlines(loop), Fired(loop)
        t0 = loop.time()
        deadlines.set("late", 0.3, fired)
        deadlines.set("soon", 0.05, fired)
        await asyncio.sleep(0.15)
        assert list(fired.at) == ["soon"]
        assert fired.at["soon"] - t0 < 0.12
        assert deadlines.armed  # for "late"
        await asyncio.sleep(0.25)
        assert list(fired.at) == ["soon", "late"]
        assert 0.295 <= fired.at["late"] - t0 < 0.4

    run(body())


def test_setting_a_key_again_replaces_its_deadline(run: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadlines, fired = Deadlines(loop), Fired(loop)
        t0 = loop.time()
        deadlines.set("a", 0.05, fired)
        deadlines.set("a", 0.2, fired)
        await asyncio.sleep(0.12)
        assert fired.at == {}
        await asyncio.sleep(0.15)
        assert 0.195 <= fired.at["a"] - t0 < 0.3

    run(body())


def test_a_callback_may_set_and_clear_deadlines_without_delaying_earlier_ones(run: Any) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadlines, fired = Deadlines(loop), Fired(loop)

        def first(key: str) -> None:
            fired(key)
            deadlines.clear("cleared")  # due at the same moment: must not run
            deadlines.set("far", 5.0, fired)  # arms the timer from inside the callback

        t0 = loop.time()
        deadlines.set("first", 0.05, first)
        deadlines.set("cleared", 0.05, fired)
        deadlines.set("next", 0.15, fired)
        await asyncio.sleep(0.3)
        assert "cleared" not in fired.at
        assert list(fired.at) == ["first", "next"]
        assert fired.at["next"] - t0 < 0.25  # not held back to "far"'s 5 s
        assert len(deadlines) == 1 and deadlines.armed
        deadlines.expire_all()
        assert "far" in fired.at  # run at once, not 5 s later
        assert len(deadlines) == 0 and not deadlines.armed

    run(body())
