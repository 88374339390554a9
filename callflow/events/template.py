"""Webhook field templates: ``{placeholder}`` text checked at load time, rendered per event."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Mapping
from typing import Any, Final

from callflow.store.records import CallEnd, CallStart, DialAttempt

__all__ = ["PLACEHOLDERS", "check_template", "context", "render", "render_value"]

_EXTRA: Final = frozenset(
    {"event", "id", "node", "seq", "at", "ani", "duration", "gclid", "campaign", "uniqueid"}
)
#: Every name a template may use: the fields of CallStart, DialAttempt and CallEnd, plus
#: ``event id node seq at`` (the envelope), ``ani`` (E.164, else as received), ``duration``
#: (whole seconds from start to end) and ``gclid`` (empty unless the call carries one).
PLACEHOLDERS: Final = frozenset(
    {f.name for rec in (CallStart, DialAttempt, CallEnd) for f in dataclasses.fields(rec)} | _EXTRA
)
_FORMATTER = string.Formatter()


def _fields(template: str) -> list[tuple[str, str | None]]:
    """Split a template into (literal text, placeholder name or None) pairs."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (spec or conversion):
            raise ValueError(f"placeholder {{{name}}}: no format specs or conversions")
        if name is not None and name not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})"
            )
        parts.append((literal, name))
    return parts


def check_template(template: str) -> str:
    """Raise ValueError if a template uses an unknown placeholder or a format spec."""
    _fields(template)
    return template


def _text(value: Any) -> str:
    """A value as template text (None is empty, booleans are true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(template: str, values: Mapping[str, Any], quote: Callable[[str], str] = str) -> str:
    """Fill a template; missing values are empty; ``quote`` escapes each value (e.g. for URLs)."""
    out: list[str] = []
    for literal, name in _fields(template):
        out.append(literal)
        if name is not None:
            out.append(quote(_text(values.get(name))))
    return "".join(out)


def render_value(template: str, values: Mapping[str, Any]) -> Any:
    """Like render, but a template that is one placeholder keeps the value's JSON type."""
    parts = _fields(template)
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None:
        value = values.get(parts[0][1])
        return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
    return render(template, values)


def context(payload: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    """The values a template sees: the call's start fields, the event's data, the envelope."""
    values: dict[str, Any] = {"gclid": None}
    values.update(call)
    data = payload.get("data")
    if isinstance(data, Mapping):
        values.update(data)
    for key in ("event", "id", "node", "seq", "at", "uniqueid", "campaign"):
        values[key] = payload.get(key)
    values["ani"] = values.get("ani_e164") or values.get("ani_raw")
    start, end = values.get("started_at"), values.get("ended_at")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        values["duration"] = max(0, round(end - start))
    else:
        values["duration"] = None
    return values
