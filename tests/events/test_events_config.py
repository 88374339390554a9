"""The ``events:`` configuration section: defaults, validation, template placeholders."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from callflow.events import EventsConfig
from callflow.events.config import parse_listen

HOOK = {"name": "x", "url": "http://h/"}


def load(data: dict[str, Any]) -> EventsConfig:
    """Validate an ``events:`` mapping."""
    return EventsConfig.model_validate(data)


def error_of(data: dict[str, Any]) -> str:
    """The validation error text for an invalid mapping."""
    with pytest.raises(ValidationError) as info:
        load(data)
    return str(info.value)


def test_defaults() -> None:
    config = load({"mqtt": {}, "webhooks": [{"name": "crm", "url": "https://crm.example/hook"}]})
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.topic_prefix) == (
        "127.0.0.1",
        1883,
        "callflow",
    )
    assert (config.mqtt.qos, config.mqtt.retain, config.mqtt.spool_max_events) == (1, False, 10_000)
    hook = config.webhooks[0]
    assert (hook.method, hook.format, hook.events, hook.campaigns) == (
        "POST",
        "json",
        ("ended",),
        "all",
    )
    assert (hook.timeout, hook.retries, hook.backoff, hook.hmac_secret) == (10.0, 3, 1.0, None)
    assert config.metrics.listen is None
    assert load({}).mqtt is None and load({}).webhooks == ()


def test_unknown_placeholders_are_config_errors() -> None:
    hook = {"name": "x", "url": "http://h/", "template": {"a": "{ani} {nope}"}}
    assert "unknown placeholder {nope}" in error_of({"webhooks": [hook]})
    url = {"name": "x", "url": "http://h/?c={campagin}"}
    assert "unknown placeholder {campagin}" in error_of({"webhooks": [url]})
    spec = {"name": "x", "url": "http://h/", "template": {"a": "{duration:.2f}"}}
    assert "no format specs" in error_of({"webhooks": [spec]})
    attr = {"name": "x", "url": "http://h/", "template": {"a": "{ani.__class__}"}}
    assert "unknown placeholder" in error_of({"webhooks": [attr]})
    unbalanced = {"name": "x", "url": "http://h/", "template": {"a": "{ani"}}
    assert "bad template" in error_of({"webhooks": [unbalanced]})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mqtt": {"hots": "x"}}, "Extra inputs are not permitted"),
        ({"mqtt": {"qos": 3}}, "Input should be 0, 1 or 2"),
        ({"mqtt": {"topic_prefix": "a/#"}}, "topic prefix"),
        ({"mqtt": {"topic_prefix": "/a"}}, "topic prefix"),
        ({"webhooks": [{"name": "x", "url": "ftp://h/"}]}, "http"),
        ({"webhooks": [{"name": "x", "url": "http://h/", "method": "PUT"}]}, "POST"),
        ({"webhooks": [{"name": "x", "url": "http://h/", "events": ["hangup"]}]}, "started"),
        ({"webhooks": [{"name": "x", "url": "http://h/", "events": []}]}, "at least 1"),
        ({"webhooks": [{"name": "x", "url": "http://h/", "campaigns": "some"}]}, "all"),
        ({"webhooks": [HOOK | {"headers": {"X-Callflow-Signature": "f"}}]}, "set by callflow"),
        ({"webhooks": [HOOK | {"headers": {"A": "b\nc"}}]}, "bad header"),
        ({"webhooks": [HOOK, HOOK | {"url": "http://i/"}]}, "duplicate webhook names: x"),
        ({"metrics": {"listen": "localhost:99999"}}, "listen"),
        ({"metrics": {"listen": "example.com:9464"}}, "IP address"),
    ],
)  # fmt: skip
def test_invalid(data: dict[str, Any], message: str) -> None:
    assert message in error_of(data)


def test_listen_forms() -> None:
    assert parse_listen("9464") == ("127.0.0.1", 9464)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen("localhost:9464") == ("localhost", 9464)


def test_frozen() -> None:
    config = load({"mqtt": {}})
    with pytest.raises(ValidationError):
        config.mqtt.port = 2  # type: ignore[union-attr]


def test_unquoted_yaml_placeholder_is_read_as_text() -> None:
    import yaml

    text = "webhooks:\n- name: x\n  url: http://h/\n  template: {ani: {ani}, c: '{campaign}'}\n"
    config = load(yaml.safe_load(text))
    assert config.webhooks[0].template == {"ani": "{ani}", "c": "{campaign}"}
