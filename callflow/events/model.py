"""Call events as the call flow emits them, and their wire form (schema 1)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, Literal, get_args

import orjson

from callflow import jsontext
from callflow.store.records import CallEnd, CallStart, DialAttempt

__all__ = [
    "EVENT_KINDS",
    "SCHEMA",
    "CallEvent",
    "EventKind",
    "answered",
    "dialed",
    "ended",
    "envelope",
    "payload_json",
    "record_fields",
    "routed",
    "started",
    "topic",
    "topic_level",
]

EventKind = Literal["started", "routed", "dial", "answered", "ended"]
#: Every event kind, in the order a call emits them.
EVENT_KINDS: Final[tuple[str, ...]] = get_args(EventKind)
#: The version of the JSON payload layout; bumped on an incompatible change.
SCHEMA: Final = 1
UNKNOWN_CAMPAIGN: Final = "unknown"
_TOPIC_UNSAFE = re.compile(r"[/+#\x00]")


_ID_PREFIX = uuid.uuid4().hex[:16]  # random per process: ids stay unique across restarts
_ID_COUNTER = itertools.count(1)


def _new_id() -> str:
    """A fresh event id (32 hex digits): a per-process random prefix and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


@dataclass(frozen=True)
class CallEvent:
    """Something that happened to a call; ``data`` holds the record's fields (JSON-able)."""

    kind: EventKind
    uniqueid: str
    campaign: str
    at: float
    data: Mapping[str, Any]
    id: str = field(default_factory=_new_id)


#: Each record class's field names, and a getter of their values in that order.
_RECORD_FIELDS: Final = {
    cls: (names, attrgetter(*names))
    for cls in (CallStart, DialAttempt, CallEnd)
    for names in [tuple(f.name for f in dataclasses.fields(cls))]
}


def record_fields(record: CallStart | DialAttempt | CallEnd) -> dict[str, Any]:
    """A store record as a plain dict (``route_reason`` decoded from its JSON text)."""
    names, values = _RECORD_FIELDS[type(record)]
    data = dict(zip(names, values(record), strict=True))
    reason = data.get("route_reason")
    if isinstance(reason, str):
        with contextlib.suppress(ValueError):  # orjson's JSONDecodeError is one
            data["route_reason"] = orjson.loads(reason)
    return data


def _campaign(campaign: str | None) -> str:
    """The campaign label used in topics and metrics."""
    return campaign or UNKNOWN_CAMPAIGN


def started(start: CallStart) -> CallEvent:
    """The ``started`` event: tracking, campaign and caller geo are known."""
    campaign = _campaign(start.campaign)
    return CallEvent("started", start.uniqueid, campaign, start.started_at, record_fields(start))


def routed(uniqueid: str, campaign: str | None, at: float, trace: Mapping[str, Any]) -> CallEvent:
    """The ``routed`` event: the targets chosen, with the decision trace."""
    return CallEvent("routed", uniqueid, _campaign(campaign), at, dict(trace))


def dialed(attempt: DialAttempt, campaign: str | None) -> CallEvent:
    """The ``dial`` event: one finished dial attempt and its result."""
    data = record_fields(attempt)
    return CallEvent("dial", attempt.uniqueid, _campaign(campaign), attempt.ended_at, data)


def answered(attempt: DialAttempt, campaign: str | None, at: float | None = None) -> CallEvent:
    """The ``answered`` event: a target picked up (``at`` defaults to the attempt's answer)."""
    when = at if at is not None else (attempt.answered_at or attempt.started_at)
    return CallEvent(
        "answered", attempt.uniqueid, _campaign(campaign), when, record_fields(attempt)
    )


def answered_live(
    uniqueid: str, campaign: str | None, at: float, leg: Mapping[str, Any]
) -> CallEvent:
    """The ``answered`` event sent as the agent picks up (``--ami``): the leg's fields then."""
    return CallEvent("answered", uniqueid, _campaign(campaign), at, dict(leg))


def ended(end: CallEnd, campaign: str | None) -> CallEvent:
    """The ``ended`` event: the final CDR fields (the hub adds the call's start fields)."""
    return CallEvent("ended", end.uniqueid, _campaign(campaign), end.ended_at, record_fields(end))


def topic_level(text: str) -> str:
    """One MQTT topic level: ``/ + #`` and NUL become ``_`` (an empty level too)."""
    return _TOPIC_UNSAFE.sub("_", text) or "_"


def topic(prefix: str, node: str, event: CallEvent) -> str:
    """``<prefix>/<node>/calls/<campaign>/<event>``, each level made safe for MQTT."""
    return f"{prefix}/{topic_level(node)}/calls/{topic_level(event.campaign)}/{event.kind}"


def envelope(event: CallEvent, node: str, seq: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """The schema-1 payload of an event (``seq`` counts the call's events from 1)."""
    return {
        "schema": SCHEMA,
        "id": event.id,
        "event": event.kind,
        "node": node,
        "uniqueid": event.uniqueid,
        "campaign": event.campaign,
        "seq": seq,
        "at": event.at,
        "data": dict(data),
    }


_payload_text = jsontext.encoder(default=str)


def payload_json(payload: Mapping[str, Any]) -> bytes:
    """A payload as it goes out (MQTT, webhooks): compact ASCII JSON, other values as ``str``."""
    return _payload_text(payload).encode()
