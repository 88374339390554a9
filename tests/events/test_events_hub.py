"""EventHub without a network: numbering, ``ended`` completion, emit never raising."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events_samples import attempt, call_end, call_events, call_start

from callflow.events import CallEvent, EventHub, EventsConfig, dialed, ended, started
from callflow.events.model import envelope, payload_json, topic


def offline_hub(tmp_path: Path, **mqtt: Any) -> EventHub:
    """A hub whose MQTT publisher is never started (events stay in its queue)."""
    config = EventsConfig.model_validate({"mqtt": {"port": 1, **mqtt}})
    return EventHub(config, node="pbx/1", spool_dir=tmp_path)


def queued(hub: EventHub) -> list[tuple[str, dict[str, Any]]]:
    """The (topic, payload) pairs waiting in the hub's MQTT queue."""
    assert hub.mqtt is not None
    return [(m.topic, json.loads(m.payload)) for m in hub.mqtt._queue]


def test_events_are_numbered_per_call_and_ended_is_completed(tmp_path: Path) -> None:
    hub = offline_hub(tmp_path)
    a, b = call_events(1), call_events(2, campaign="autumn")
    for x, y in zip(a, b, strict=True):
        hub.emit(x)
        hub.emit(y)
    messages = queued(hub)
    seqs = [(p["uniqueid"], p["seq"]) for _, p in messages]
    assert seqs == [(u, s) for s in range(1, 6) for u in ("1700000000.1", "1700000000.2")]
    topics = {t for t, _ in messages}
    assert "callflow/pbx_1/calls/autumn/ended" in topics  # "/" in a node name is made safe
    end = messages[-1][1]
    assert end["data"]["started_at"] == call_start(2).started_at
    assert end["data"]["disposition"] == "answered"
    assert hub._calls == {}  # forgotten after "ended"


def test_emit_never_raises(tmp_path: Path) -> None:
    hub = offline_hub(tmp_path)

    class Weird:
        def __repr__(self) -> str:
            return "weird"

    hub.emit(CallEvent("routed", "u", "c", 0.0, {"obj": Weird(), "set": {1}}))
    hub.emit(CallEvent("routed", "u", "c", 0.0, None))  # type: ignore[arg-type]
    assert hub.metrics.registry.get_sample_value("callflow_events_errors_total") == 1
    (payload,) = (p for _, p in queued(hub))
    assert payload["data"] == {"obj": "weird", "set": "{1}"}


def test_full_queue_counts_drops(tmp_path: Path) -> None:
    hub = offline_hub(tmp_path, queue_max=10)
    for n in range(12):
        hub.emit(started(call_start(n)))
    value = hub.metrics.registry.get_sample_value(
        "callflow_mqtt_dropped_total", {"reason": "queue_full"}
    )
    assert value == 2


def test_constructors_and_topic() -> None:
    end = ended(call_end(1), None)
    assert end.campaign == "unknown" and end.data["route_reason"]["campaign"] == "spring"
    dial = dialed(attempt(1, seq=2, result="BUSY"), "spring")
    assert (dial.kind, dial.data["seq"], dial.data["result"]) == ("dial", 2, "BUSY")
    assert topic("cf", "n+1", dial) == "cf/n_1/calls/spring/dial"
    assert started(call_start(1)).id != started(call_start(1)).id


def test_reload_webhooks_replaces_the_list(tmp_path: Path) -> None:
    old = EventsConfig.model_validate({"webhooks": [{"name": "a", "url": "http://h/"}]})
    new = EventsConfig.model_validate({"webhooks": [{"name": "b", "url": "http://i/"}]})
    hub = EventHub(old, node="n", spool_dir=tmp_path)
    hub.reload_webhooks(new)
    assert hub.webhooks is not None and list(hub.webhooks.hooks) == ["b"]


async def test_events_emitted_before_a_failed_start_are_spooled(tmp_path: Path) -> None:
    hub = offline_hub(tmp_path)
    for event in call_events(1):
        hub.emit(event)
    await hub.stop()
    assert spooled_lines(tmp_path) == 5


def spooled_lines(directory: Path) -> int:
    """Lines in the MQTT spool's segments."""
    return sum(len(p.read_bytes().splitlines()) for p in directory.glob("mqtt-*.jsonl"))


def test_payload_bytes_are_the_standard_librarys_compact_ascii_json() -> None:
    end = ended(call_end(1), "spring")
    for city in ("Chicago", "Montréal"):  # orjson writes the first, the standard library the other
        payload = envelope(end, "pbx1", 5, {**end.data, "city": city, "odd": {1}})
        body = payload_json(payload)
        assert body == json.dumps(payload, separators=(",", ":"), default=str).encode()
        assert body.isascii() and json.loads(body)["data"]["odd"] == "{1}"
