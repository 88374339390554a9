"""The ``events:`` section of the rules file: MQTT, webhooks and metrics (validated, frozen)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from callflow.events.model import EventKind
from callflow.events.template import check_template

__all__ = [
    "EventsConfig",
    "MetricsConfig",
    "MqttConfig",
    "WebhookConfig",
    "WebhookDeliveryConfig",
    "parse_listen",
]

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_TOPIC_RE = re.compile(r"[^+#\x00]{1,200}\Z")
_HEADER_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class _Model(BaseModel):
    """Frozen, and unknown keys are errors (as in the rest of the rules file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    """Accept a short name of letters, digits, ``_ . -``."""
    if not _NAME_RE.match(value):
        raise ValueError("use 1-64 letters, digits, '_', '.' or '-'")
    return value


def _check_prefix(value: str) -> str:
    """Accept an MQTT topic prefix without wildcards or empty levels."""
    if not _TOPIC_RE.match(value) or "" in value.split("/"):
        raise ValueError("a topic prefix has no '+', '#', empty levels or leading/trailing '/'")
    return value


def _check_url(value: str) -> str:
    """Accept an absolute http(s) URL (placeholders allowed in path and query)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or _CONTROL_RE.search(value):
        raise ValueError("needs an absolute http:// or https:// URL")
    check_template(value)
    return value


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    """Accept header names that are HTTP tokens and values without control characters."""
    for name, text in value.items():
        if not _HEADER_RE.match(name) or _CONTROL_RE.search(text):
            raise ValueError(f"bad header {name!r}")
        if name.lower().startswith("x-callflow-"):
            raise ValueError(f"header {name!r}: X-Callflow-* headers are set by callflow")
    return value


def _check_fields(value: dict[str, str]) -> dict[str, str]:
    """Check each templated field against the known placeholders."""
    for name, text in value.items():
        if not name or _CONTROL_RE.search(name):
            raise ValueError(f"bad field name {name!r}")
        try:
            check_template(text)
        except ValueError as exc:
            raise ValueError(f"field {name!r}: {exc}") from None
    return value


def _unflow(value: object) -> object:
    """Read YAML's ``{ani}`` (an unquoted template, parsed as a mapping) as the text ``{ani}``."""
    if isinstance(value, dict):
        return {
            k: f"{{{next(iter(v))}}}" if isinstance(v, dict) and list(v.values()) == [None] else v
            for k, v in value.items()
        }
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Template = Annotated[dict[str, str], BeforeValidator(_unflow), AfterValidator(_check_fields)]


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or a bare ``port`` (meaning 127.0.0.1) into parts."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.removeprefix("[").removesuffix("]")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("listen is 'host:port' or a port (0-65535)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError("listen host must be an IP address or 'localhost'") from None
    return host, int(port)


def _check_listen(value: str | None) -> str | None:
    """Accept ``host:port`` or a port."""
    if value is not None:
        parse_listen(value)
    return value


class MqttConfig(_Model):
    """Where and how call events are published."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    topic_prefix: Annotated[str, AfterValidator(_check_prefix)] = "callflow"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    keepalive: int = Field(default=30, ge=5, le=3600)
    tls: bool = False
    ca_file: str | None = None
    queue_max: int = Field(default=10_000, ge=10, le=1_000_000)
    spool_max_events: int = Field(default=10_000, ge=0, le=10_000_000)
    publish_timeout: float = Field(default=10.0, gt=0, le=300)
    backoff_initial: float = Field(default=0.5, gt=0, le=60)
    backoff_max: float = Field(default=30.0, gt=0, le=3600)


class WebhookConfig(_Model):
    """One webhook/postback: which events of which campaigns go where, and how."""

    name: Name
    url: Annotated[str, AfterValidator(_check_url)]
    method: Literal["POST", "GET"] = "POST"
    format: Literal["json", "form"] = "json"
    events: tuple[EventKind, ...] = Field(default=("ended",), min_length=1)
    campaigns: Literal["all"] | tuple[Name, ...] = "all"
    template: Template | None = None
    headers: Annotated[dict[str, str], AfterValidator(_check_headers)] = {}
    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=3, ge=0, le=20)
    backoff: float = Field(default=1.0, ge=0, le=3600)
    backoff_max: float = Field(default=300.0, ge=0, le=86400)
    hmac_secret: str | None = Field(default=None, min_length=1)

    def wants(self, kind: str, campaign: str) -> bool:
        """Whether this webhook is sent for an event of this kind and campaign."""
        return kind in self.events and (self.campaigns == "all" or campaign in self.campaigns)


class WebhookDeliveryConfig(_Model):
    """How webhooks are delivered: queue, concurrency and the delivery log."""

    queue_max: int = Field(default=1000, ge=1, le=1_000_000)
    concurrency: int = Field(default=4, ge=1, le=256)
    log: str | None = None
    log_retention_days: int = Field(default=30, ge=0, le=3650)


class MetricsConfig(_Model):
    """The Prometheus endpoint (``listen: null`` serves none; the registry still counts)."""

    listen: Annotated[str | None, AfterValidator(_check_listen)] = None


class EventsConfig(_Model):
    """What leaves the daemon about each call."""

    mqtt: MqttConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    webhook_delivery: WebhookDeliveryConfig = WebhookDeliveryConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> EventsConfig:
        """Require distinct webhook names (the delivery log is keyed by them)."""
        names = [hook.name for hook in self.webhooks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate webhook names: {', '.join(duplicates)}")
        return self
