"""Deadlines for many connections, kept by one loop timer armed for the earliest of them.

A call sets a deadline for its header, for each command with a timeout and for its close, and
nearly always clears it in time. A loop timer per deadline costs a timer handle made, armed
and cancelled each time (on uvloop, a libuv handle opened and closed); here it costs a dict
entry. The one timer is armed only while some deadline is pending, and moved only when a new
deadline falls before it, so an idle server wakes for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Deadlines"]

_SLACK = 0.001  # seconds


class Deadlines:
    """Callbacks run once their delay has passed unless cleared first, each keyed by its owner."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep deadlines for callbacks run in ``loop``."""
        self._loop = loop
        self._due: dict[Hashable, tuple[float, Callable[[Any], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0.0  # when the timer fires, if it is armed

    def __len__(self) -> int:
        """How many deadlines are pending."""
        return len(self._due)

    @property
    def armed(self) -> bool:
        """Whether the loop timer is armed (it may be, for deadlines cleared since)."""
        return self._timer is not None

    def set(self, key: Hashable, delay: float, callback: Callable[[Any], None]) -> None:
        """Run ``callback(key)`` after ``delay`` seconds unless ``clear(key)`` comes first.

        A key holds one deadline: setting it again replaces the one it had.
        """
        when = self._loop.time() + delay
        self._due[key] = (when, callback)
        self._arm_by(when)

    def clear(self, key: Hashable) -> None:
        """Forget ``key``'s deadline, if it has one (the timer is left to find it gone)."""
        self._due.pop(key, None)

    def expire_all(self) -> None:
        """Run every pending deadline's callback now, then stop the timer (at shutdown)."""
        due, self._due = self._due, {}
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for key, (_, callback) in due.items():
            callback(key)

    def _arm_by(self, when: float) -> None:
        """Make sure the timer fires by ``when`` (loop time): arm it, or move it earlier."""
        timer = self._timer
        if timer is None or when < self._armed_at:
            if timer is not None:
                timer.cancel()
            self._armed_at = when
            self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        """Run the callbacks whose time has come; arm again for the earliest left."""
        self._timer = None
        # Loop timers may fire up to a clock tick early (a millisecond on uvloop): count such
        # a deadline as come, rather than arm again for the rest of that tick.
        now = self._loop.time() + _SLACK
        due = self._due
        late = [key for key, (when, _) in due.items() if when <= now]
        for key in late:
            entry = due.pop(key, None)  # an earlier callback may have cleared or reset it
            if entry is not None and entry[0] <= now:
                entry[1](key)
            elif entry is not None:
                due[key] = entry
        if due:  # a callback may have armed the timer already, for a later deadline
            self._arm_by(min(when for when, _ in due.values()))
