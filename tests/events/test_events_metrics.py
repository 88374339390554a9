"""The Prometheus registry and its loopback /metrics endpoint, scraped and parsed."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callflow.events import EventHub, EventsConfig, Metrics


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a scrape keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_scrape_the_endpoint(tmp_path: Path) -> None:
    config = EventsConfig.model_validate({"metrics": {"listen": "127.0.0.1:0"}})
    hub = EventHub(config, node="pbx1", spool_dir=tmp_path)
    await hub.start()
    m = hub.metrics
    m.call_started("spring")
    m.call_started("spring")
    m.call_ended("spring", "answered", ring=3.0, talk=42.0)
    m.decision_latency(0.002)
    m.agi_error("timeout")
    m.rules_reload(True)
    m.rules_reload(False)
    m.set_cdr_queue_depth(lambda: 7)
    assert hub.metrics_server is not None
    url = f"http://127.0.0.1:{hub.metrics_server.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        samples = parse(await response.text())
    await hub.stop()

    assert samples["callflow_calls_in_progress", ()] == 1
    assert samples["callflow_calls_started_total", (("campaign", "spring"),)] == 2
    key = ("callflow_calls_total", (("campaign", "spring"), ("disposition", "answered")))
    assert samples[key] == 1
    assert samples["callflow_routing_decision_seconds_count", ()] == 1
    assert samples["callflow_routing_decision_seconds_bucket", (("le", "0.0025"),)] == 1
    assert samples["callflow_agi_errors_total", (("kind", "timeout"),)] == 1
    assert samples["callflow_rules_reloads_total", (("result", "ok"),)] == 1
    assert samples["callflow_rules_reloads_total", (("result", "error"),)] == 1
    assert samples["callflow_cdr_write_queue_depth", ()] == 7
    assert samples["callflow_call_talk_seconds_sum", ()] == 42
    for gauge in ("mqtt_backlog", "webhook_backlog", "mqtt_connected"):
        assert ("callflow_" + gauge, ()) in samples


async def test_mqtt_and_webhook_gauges_exist_when_configured(tmp_path: Path) -> None:
    config = EventsConfig.model_validate(
        {"mqtt": {"port": 1}, "webhooks": [{"name": "a", "url": "http://127.0.0.1:1/"}]}
    )
    hub = EventHub(config, node="pbx1", spool_dir=tmp_path)
    samples = parse(hub.metrics.render().decode())
    assert samples["callflow_mqtt_backlog", ()] == 0
    assert samples["callflow_webhook_backlog", ()] == 0


def test_helpers_never_raise_and_callbacks_never_break_a_scrape() -> None:
    m = Metrics()
    m.call_ended(None, "answered", ring=float("nan"), talk=-1)
    m.agi_error("")

    def broken() -> float:
        raise RuntimeError("store closed")

    m.set_cdr_queue_depth(broken)
    samples = parse(m.render().decode())
    value = samples["callflow_cdr_write_queue_depth", ()]
    assert value != value  # NaN
    assert samples["callflow_calls_total", (("campaign", "unknown"), ("disposition", "answered"))]


def test_disabled_metrics_count_nothing(tmp_path: Path) -> None:
    hub = EventHub(EventsConfig.model_validate({}), node="a", spool_dir=tmp_path)
    assert not hub.metrics.enabled  # no /metrics endpoint configured
    hub.metrics.call_started("x")
    hub.metrics.call_ended("x", "answered", talk=5)
    assert hub.metrics.registry.get_sample_value("callflow_calls_in_progress") == 0
    assert hub.metrics.registry.get_sample_value("callflow_call_talk_seconds_sum") == 0


def test_registries_are_separate() -> None:
    a, b = Metrics(), Metrics()
    a.call_started("x")
    assert b.registry.get_sample_value("callflow_calls_in_progress") == 0


async def test_a_taken_port_fails_start(tmp_path: Path) -> None:
    config = EventsConfig.model_validate({"metrics": {"listen": "127.0.0.1:0"}})
    first = EventHub(config, node="a", spool_dir=tmp_path)
    await first.start()
    assert first.metrics_server is not None
    taken = EventsConfig.model_validate(
        {"metrics": {"listen": f"127.0.0.1:{first.metrics_server.port}"}}
    )
    with pytest.raises(OSError):
        await EventHub(taken, node="b", spool_dir=tmp_path).start()
    await first.stop()
