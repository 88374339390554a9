"""Every log line's road, compiled: the bound logger, level and time, an error or stack, JSON.

structlog calls each processor in turn, and each interpreted one costs a Python call on every
line; the daemon writes one line per call. These are compiled (``make compiled``) and
``callflow.logs`` puts them in structlog's chain, with this module's bound logger as its
wrapper class: structlog's own runs five interpreted calls per line before the first processor
(BENCHMARKS.md, twenty-first session).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import structlog
from mypy_extensions import mypyc_attr
from structlog.typing import EventDict

from callflow import jsontext

__all__ = ["BoundLogger", "Stamp", "Stderr", "render_json", "set_min_level"]

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


#: The levels of the methods (``logging``'s numbers, which structlog uses too).
_DEBUG: Final = logging.DEBUG
_INFO: Final = logging.INFO
_WARNING: Final = logging.WARNING
_ERROR: Final = logging.ERROR
_CRITICAL: Final = logging.CRITICAL


class _Threshold:
    """The lowest level written, set by ``callflow.logs.configure`` (structlog's is per class)."""

    def __init__(self) -> None:
        """Write every level until configured."""
        self.level = 0


_threshold: Final = _Threshold()


def set_min_level(level: str) -> None:
    """Write only lines at ``level`` (debug, info, warning, error, critical) and above."""
    _threshold.level = logging.getLevelNamesMapping()[level.upper()]


def _interpolated(event: Any, args: tuple[Any, ...]) -> Any:
    """The event, ``%``-formatted with the positional arguments as structlog does it."""
    if not args:
        return event
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        return event % args[0]
    return event % args


class BoundLogger:
    """structlog's filtering bound logger (its ``wrapper_class``), compiled.

    The same methods, level filter, binding and processor chain as the class structlog's
    ``make_filtering_bound_logger`` builds, whose methods run interpreted on every line; the
    async variants (``ainfo``...) are not here. The level is the one ``set_min_level`` set.
    """

    def __init__(self, logger: Any, processors: Iterable[Any], context: Any) -> None:
        """Wrap ``logger`` with the processors and the bound context, as structlog builds it."""
        self._logger = logger
        self._processors = processors
        self._context = context

    def __repr__(self) -> str:
        """Its context, as structlog's bound loggers show it."""
        return f"<BoundLogger(context={self._context!r}, processors={self._processors!r})>"

    def bind(self, **new_values: Any) -> BoundLogger:
        """A logger with ``new_values`` added to the context."""
        context = self._context.__class__(self._context)
        context.update(new_values)
        return BoundLogger(self._logger, self._processors, context)

    def unbind(self, *keys: str) -> BoundLogger:
        """A logger without ``keys`` (KeyError for a key not bound)."""
        context = self._context.__class__(self._context)
        for key in keys:
            del context[key]
        return BoundLogger(self._logger, self._processors, context)

    def try_unbind(self, *keys: str) -> BoundLogger:
        """A logger without whichever of ``keys`` are bound."""
        context = self._context.__class__(self._context)
        for key in keys:
            context.pop(key, None)
        return BoundLogger(self._logger, self._processors, context)

    def new(self, **new_values: Any) -> BoundLogger:
        """Clear the context, then bind ``new_values``."""
        self._context.clear()
        return self.bind(**new_values)

    def is_enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` is written."""
        return level >= _threshold.level

    def get_effective_level(self) -> int:
        """The lowest level written."""
        return _threshold.level

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at debug."""
        return self._at(_DEBUG, "debug", event, args, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at info."""
        return self._at(_INFO, "info", event, args, kw)

    def msg(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at info."""
        return self.info(event, *args, **kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at warning."""
        return self._at(_WARNING, "warning", event, args, kw)

    def warn(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at warning."""
        return self.warning(event, *args, **kw)

    def error(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error."""
        return self._at(_ERROR, "error", event, args, kw)

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at error, with the exception being handled."""
        kw.setdefault("exc_info", True)
        return self.error(event, *args, **kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at critical."""
        return self._at(_CRITICAL, "critical", event, args, kw)

    def fatal(self, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at critical."""
        return self.critical(event, *args, **kw)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> Any:
        """Log at a numeric level."""
        return self._at(level, logging.getLevelName(level).lower(), event, args, kw)

    def _at(
        self, level: int, method_name: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> Any:
        """Write the line unless ``level`` is below the threshold."""
        if level < _threshold.level:
            return None
        return self._proxy(method_name, _interpolated(event, args), kw)

    def _proxy(self, method_name: str, event: Any, kw: dict[str, Any]) -> Any:
        """Run the processors, then hand the result to the wrapped logger's method."""
        event_dict: Any = self._context.copy()
        event_dict.update(kw)
        if event is not None:
            event_dict["event"] = event
        logger = self._logger
        try:
            for proc in self._processors:
                event_dict = proc(logger, method_name, event_dict)
            write = getattr(logger, method_name)
            if isinstance(event_dict, (str, bytes, bytearray)):
                return write(event_dict)
            if isinstance(event_dict, tuple):
                return write(*event_dict[0], **event_dict[1])
            if isinstance(event_dict, dict):
                return write(**event_dict)
        except structlog.DropEvent:
            return None
        raise ValueError(
            "Last processor didn't return an appropriate value.  Valid return values are a "
            "dict, a tuple of (args, kwargs), bytes, or a str."
        )
