"""start_eagerly: the coroutine runs up to its first wait at once, then as an ordinary task."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from callflow.agi.eager import start_eagerly

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")


async def test_runs_up_to_its_first_wait_before_the_loop_turns() -> None:
    loop = asyncio.get_running_loop()
    steps: list[str] = []
    gate = loop.create_future()

    async def work() -> str:
        steps.append("before")
        await gate
        steps.append("after")
        return "done"

    task = start_eagerly(loop, work())
    assert steps == ["before"]  # no await happened in between
    assert task is not None and not task.done()
    assert "work" in repr(task)  # the task names the coroutine it carries on
    gate.set_result(None)
    assert await task == "done"
    assert steps == ["before", "after"]


async def test_a_coroutine_that_never_waits_needs_no_task() -> None:
    ran: list[bool] = []

    async def work() -> None:
        ran.append(True)

    assert start_eagerly(asyncio.get_running_loop(), work()) is None
    assert ran == [True]


async def test_its_context_is_its_own_copy_kept_by_the_task() -> None:
    loop = asyncio.get_running_loop()
    gate = loop.create_future()

    async def work() -> str:
        var.set("inner")
        await gate
        return var.get()

    task = start_eagerly(loop, work())
    assert var.get() == "outer"  # the caller's context is untouched
    gate.set_result(None)
    assert task is not None and await task == "inner"


async def test_an_error_before_the_first_wait_is_raised_by_the_task() -> None:
    async def work() -> None:
        raise ValueError("early")

    task = start_eagerly(asyncio.get_running_loop(), work())
    assert task is not None
    with pytest.raises(ValueError, match="early"):
        await task


async def test_values_and_errors_of_awaited_futures_reach_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()

    async def work() -> tuple[int, str]:
        got = await first
        try:
            await second
        except KeyError as exc:
            return got, str(exc)
        return got, "no error"

    task = start_eagerly(loop, work())
    assert task is not None
    first.set_result(7)
    await asyncio.sleep(0)
    second.set_exception(KeyError("k"))
    assert await task == (7, "'k'")


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def work() -> None:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    task = start_eagerly(loop, work())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "cleaned up"]


async def test_a_coroutine_may_catch_the_cancellation_and_finish() -> None:
    loop = asyncio.get_running_loop()

    async def work() -> str:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # still waits normally after catching it
            return "stopped cleanly"
        return "not cancelled"

    task = start_eagerly(loop, work())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "stopped cleanly"


async def test_a_task_cancelled_before_its_first_step_cancels_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    waited = loop.create_future()

    async def work() -> None:
        try:
            await waited
        finally:
            seen.append("cleaned up")

    task = start_eagerly(loop, work())
    assert task is not None
    task.cancel()  # before the loop ran the task at all
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cleaned up"]
    assert waited.cancelled()  # as a task cancels the future it waits on


async def test_a_bare_yield_in_the_eager_part_just_resumes_later() -> None:
    loop = asyncio.get_running_loop()

    async def work() -> str:
        await asyncio.sleep(0)
        return "resumed"

    task = start_eagerly(loop, work())
    assert task is not None
    assert await task == "resumed"


async def test_the_eager_part_runs_outside_any_task() -> None:
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[object] | None] = []

    async def work() -> None:
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0)
        tasks.append(asyncio.current_task())

    def callback() -> None:  # as from a protocol's data_received
        started.append(start_eagerly(loop, work()))

    started: list[asyncio.Task[None] | None] = []
    loop.call_soon(callback)
    await asyncio.sleep(0)
    task = started[0]
    assert task is not None
    await task
    assert tasks == [None, task]
