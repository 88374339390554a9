"""structlog set-up: console or JSON lines, every line of a call bound to its uniqueid."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

from callflow import jsontext

LogFormat = Literal["console", "json"]


class _Stderr:
    """Whatever sys.stderr is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        """Write to the current stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush the current stderr."""
        sys.stderr.flush()


def _fallback(obj: Any) -> Any:
    """A value JSON cannot hold, as structlog's renderer shows it: ``__structlog__()`` or repr."""
    method = getattr(obj, "__structlog__", None)
    return method() if callable(method) else repr(obj)


class _UtcTimestamp:
    """Stamp ``timestamp`` as ISO 8601 UTC to the microsecond, formatting the date once a second.

    The text is structlog's ``TimeStamper(fmt="iso", utc=True)``, but for a zero microsecond,
    which this writes (``.000000``) and structlog leaves out. It runs about 11k instructions
    fewer per line, nearly 1% of the daemon's per call (BENCHMARKS.md).
    """

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        """Start with no second formatted."""
        self._second = -1
        self._prefix = ""

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        """Add the timestamp to a line's fields."""
        second, micro = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{micro:06d}Z"
        return event_dict


#: One encoder for every line: compact, ASCII only (callflow.jsontext).
_encode_line = jsontext.encoder(default=_fallback)


def _dumps(obj: Any, **_: Any) -> str:
    """structlog's serializer: the shared encoder (the renderer's own options are its own)."""
    return _encode_line(obj)


def configure(fmt: LogFormat = "console", level: str = "info", *, cache: bool = False) -> None:
    """Configure structlog once for the process.

    ``cache`` builds each module's logger once, on its first line (structlog's advice for a
    long-running process: ``callflow serve``); tests leave it off so they can capture logs.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _UtcTimestamp(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write per line (print() makes two: stderr is write-through, so two system calls).
        logger_factory=structlog.WriteLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )
