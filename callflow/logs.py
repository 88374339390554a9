"""structlog set-up: console or JSON lines, every line of a call bound to its uniqueid."""

from __future__ import annotations

import sys
from typing import Literal

import structlog

from callflow import logline

LogFormat = Literal["console", "json"]


def configure(fmt: LogFormat = "console", level: str = "info", *, cache: bool = False) -> None:
    """Configure structlog once for the process.

    ``cache`` builds each module's logger once, on its first line (structlog's advice for a
    long-running process: ``callflow serve``); tests leave it off so they can capture logs.
    """
    renderer: structlog.types.Processor = (
        logline.render_json
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    logline.set_min_level(level)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, logline.Stamp(), renderer],
        wrapper_class=logline.BoundLogger,
        # One write per line (print() makes two: stderr is write-through, so two system calls).
        logger_factory=structlog.WriteLoggerFactory(logline.Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )
