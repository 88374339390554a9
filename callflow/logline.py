"""The end of every log line, compiled: level and time, an error or stack, JSON text, stderr.

structlog calls each processor in turn, and each interpreted one costs a Python call on every
line; the daemon writes one line per call. These are compiled (``make compiled``) and
``callflow.logs`` puts them in structlog's chain.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Final

import structlog
from mypy_extensions import mypyc_attr
from structlog.typing import EventDict

from callflow import jsontext

__all__ = ["Stamp", "Stderr", "render_json"]

#: The level a method logs at, where its name is not the level (as structlog's add_log_level).
_LEVEL_OF: Final = {"warn": "warning", "exception": "error"}
_add_stack = structlog.processors.StackInfoRenderer()
_add_exception = structlog.processors.format_exc_info


@mypyc_attr(native_class=False)  # structlog keeps a weak reference to it: a Python class
class Stderr:
    """Whatever sys.stderr is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        """Write to the current stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush the current stderr."""
        sys.stderr.flush()


class Stamp:
    """Add ``level`` and ``timestamp``, and format the stack or error a line asks for.

    The timestamp is structlog's ``TimeStamper(fmt="iso", utc=True)`` to the microsecond, but
    for a zero microsecond, which this writes (``.000000``) and structlog leaves out; the date
    is formatted once a second. Stack and error are structlog's ``StackInfoRenderer`` and
    ``format_exc_info``, called only for a line that has ``stack_info`` or ``exc_info``.
    """

    def __init__(self) -> None:
        """Start with no second formatted."""
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        """Add the line's level and time; render its stack or error."""
        event_dict["level"] = _LEVEL_OF.get(method_name, method_name)
        second, micro = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{micro:06d}Z"
        if "stack_info" in event_dict:
            event_dict = _add_stack(logger, method_name, event_dict)
        if "exc_info" in event_dict:
            event_dict = _add_exception(logger, method_name, event_dict)
        return event_dict


def _fallback(obj: Any) -> Any:
    """A value JSON cannot hold, as structlog's renderer shows it: ``__structlog__()`` or repr."""
    method = getattr(obj, "__structlog__", None)
    return method() if callable(method) else repr(obj)


#: One encoder for every line: compact, ASCII only (callflow.jsontext).
_encode_line = jsontext.encoder(default=_fallback)


def render_json(logger: Any, method_name: str, event_dict: EventDict) -> str:
    """The line as one compact ASCII JSON object (structlog's JSONRenderer, on our encoder)."""
    return _encode_line(event_dict)
