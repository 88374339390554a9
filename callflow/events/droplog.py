"""Rate-limited logging of dropped events (a full queue must not flood the log)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["DropLog"]


class DropLog:
    """Logs drops at most once per ``interval`` seconds per reason, with the count since."""

    def __init__(
        self,
        logger: Any,
        event: str,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Log through ``logger`` under the name ``event``."""
        self.logger = logger
        self.event = event
        self.interval = interval
        self.clock = clock
        self._pending: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def dropped(self, count: int, reason: str, **fields: Any) -> None:
        """Note ``count`` events dropped for ``reason``; log now unless logged recently."""
        self._pending[reason] = self._pending.get(reason, 0) + count
        now = self.clock()
        if now - self._last.get(reason, -float("inf")) >= self.interval:
            self._last[reason] = now
            self.logger.warning(
                self.event, events=self._pending.pop(reason), reason=reason, **fields
            )

    def flush(self, **fields: Any) -> None:
        """Log the drops not reported yet."""
        for reason, count in self._pending.items():
            self.logger.warning(self.event, events=count, reason=reason, **fields)
        self._pending.clear()
