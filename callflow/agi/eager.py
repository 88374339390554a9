"""Start a coroutine at once, inside the current callback, and let a task carry on from there.

Python 3.12's eager tasks, for 3.11 too: a call's handler runs up to its first real wait (for
an inbound call: up to sending the Dial) as soon as its header is in, instead of one event-loop
turn later behind whatever else became ready meanwhile.

Until that first wait the coroutine runs as plain code in the caller's callback, not yet in a
task: ``asyncio.current_task()`` is None there, so ``asyncio.timeout()`` only works after it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar, cast

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> asyncio.Task[T] | None:
    """Run ``coro`` in a copy of the current context until it first waits; a task does the rest.

    Returns None when it finished without waiting (its result is dropped); an exception it
    raised before waiting is raised by the returned task, never here.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    except BaseException as exc:  # handed to the task, as a task would hold it
        return loop.create_task(_raise(exc), context=context)
    resumed = cast(Coroutine[Any, Any, T], _Resumed(coro, yielded))  # registered as one below
    return loop.create_task(resumed, context=context)


async def _raise(exc: BaseException) -> Any:
    """Raise what the eager part raised, from inside the task."""
    raise exc


_NOTHING: Any = object()


class _Resumed:
    """An already started coroutine, as a task drives it: first what it waits on, then itself.

    A task cancelled before its first step throws into the coroutine where it waits, as it
    would into any coroutine. Compiled, it cannot subclass ``Coroutine``: it is registered as
    one, which is all a task checks.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], waits_on: Any) -> None:
        """Wrap ``coro``, suspended on ``waits_on`` (what its first wait yielded)."""
        self._coro = coro
        self._waits_on = waits_on

    def send(self, value: Any) -> Any:
        """The task's step: hand it what the coroutine waits on, or resume the coroutine."""
        waits_on = self._waits_on
        if waits_on is not _NOTHING:
            self._waits_on = _NOTHING
            return waits_on
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        """Throw into the coroutine where it waits (a cancellation, a failed future)."""
        waits_on, self._waits_on = self._waits_on, _NOTHING
        if isinstance(waits_on, asyncio.Future):  # cancelled before the task saw it, as tasks do
            waits_on.cancel()
        return self._coro.throw(*args)

    def close(self) -> None:
        """Close the coroutine."""
        self._coro.close()

    def __repr__(self) -> str:
        """The coroutine's own repr."""
        return repr(self._coro)

    def __getattr__(self, name: str) -> Any:
        """The coroutine's own ``__qualname__``, ``cr_frame``...: task reprs name the handler."""
        return getattr(self._coro, name)

    def __await__(self) -> Generator[Any, None, Any]:
        """Not awaitable: only a task drives it."""
        raise TypeError("drive it with a task")


Coroutine.register(_Resumed)
