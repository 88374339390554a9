"""What leaves the daemon about each call: MQTT events, webhooks/postbacks, Prometheus metrics.

Names are imported lazily, so ``callflow.events.config`` (read with the rules file) does not pull
in aiohttp, aiomqtt or prometheus-client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callflow.events.config import (
        EventsConfig,
        MetricsConfig,
        MqttConfig,
        WebhookConfig,
        WebhookDeliveryConfig,
    )
    from callflow.events.deliverylog import delivery_log
    from callflow.events.hub import EventHub, delivery_log_path
    from callflow.events.metrics import Metrics
    from callflow.events.model import (
        SCHEMA,
        CallEvent,
        EventKind,
        answered,
        dialed,
        ended,
        routed,
        started,
    )

_WHERE = {
    "EventsConfig": "config",
    "MetricsConfig": "config",
    "MqttConfig": "config",
    "WebhookConfig": "config",
    "WebhookDeliveryConfig": "config",
    "delivery_log": "deliverylog",
    "EventHub": "hub",
    "delivery_log_path": "hub",
    "Metrics": "metrics",
    "SCHEMA": "model",
    "CallEvent": "model",
    "EventKind": "model",
    "answered": "model",
    "dialed": "model",
    "ended": "model",
    "routed": "model",
    "started": "model",
}

__all__ = [
    "SCHEMA",
    "CallEvent",
    "EventHub",
    "EventKind",
    "EventsConfig",
    "Metrics",
    "MetricsConfig",
    "MqttConfig",
    "WebhookConfig",
    "WebhookDeliveryConfig",
    "answered",
    "delivery_log",
    "delivery_log_path",
    "dialed",
    "ended",
    "routed",
    "started",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'callflow.events' has no attribute {name!r}")
    return getattr(importlib.import_module(f"callflow.events.{module}"), name)
