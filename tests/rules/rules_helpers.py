"""Helpers for the rules-engine tests: configurations from YAML text, call facts, instants."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callflow.config import Config, parse_config
from callflow.rules import CallFacts

BASE = """\
version: 1
settings: {timezone: America/New_York}
trunks: {pstn: {}}
campaigns:
  c: {route: [t0]}
  other: {route: [t0]}
numbers:
  - {number: "8005550001", campaign: c}
  - {number: "8005550002", campaign: other}
unknown_number: {campaign: c}
"""


def text_of(extra: str, *, targets: str | None = None) -> str:
    """Return BASE plus extra sections (targets t0..t3 on agent1..4 unless given)."""
    if targets is None:
        targets = "targets:\n" + "".join(f"  t{i}: {{endpoint: agent{i + 1}}}\n" for i in range(4))
    return BASE + textwrap.dedent(targets) + textwrap.dedent(extra)


def config_of(extra: str, *, targets: str | None = None) -> Config:
    """Parse BASE plus extra sections (targets t0..t3 on agent1..4 unless given)."""
    return parse_config(text_of(extra, targets=targets), "test.yaml")


def pos(text: str, needle: str, token: str | None = None) -> str:
    """Return ``line:column`` of token (default: needle) on the first line holding needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f"{number}:{line.index(token or needle) + 1}"
    raise AssertionError(needle)


def at(text: str, tz: str = "UTC") -> datetime:
    """Return an aware datetime from an ISO text, read in a zone (UTC by default)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def ts(text: str, tz: str = "UTC") -> float:
    """Return epoch seconds of an ISO text read in a zone."""
    return at(text, tz).timestamp()


def facts(**overrides: Any) -> CallFacts:
    """Return call facts for a call to 8005550001 (campaign c) on a Wednesday at 15:00 UTC."""
    values: dict[str, Any] = {
        "now": at("2026-03-04T15:00:00"),
        "dnis": "8005550001",
        "tracking_number": "+18005550001",
        "campaign": "c",
        "ani_e164": "+12125550100",
        "ani_raw": "2125550100",
        "country": "US",
        "area_code": "212",
        "state": "NY",
        "city": "New York",
    }
    values.update(overrides)
    return CallFacts(**values)
