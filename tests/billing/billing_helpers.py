"""Helpers of the billing tests: a pay-per-call configuration and calls."""

from __future__ import annotations

import textwrap
from typing import Any

from callflow.billing import BillableCall
from callflow.config import Config, parse_config

BASE = """\
version: 1
settings: {timezone: America/New_York}
targets:
  a1: {endpoint: agent1}
  a2: {endpoint: agent2}
  b1: {endpoint: agent3}
  house: {endpoint: agent4}
campaigns:
  solar: {route: [a1, b1]}
  roof: {route: [a2], convert_after: 120}
numbers:
  - {number: "8005550001", campaign: solar}
  - {number: "8005550002", campaign: solar}
  - {number: "8005550003", campaign: roof}
unknown_number: {campaign: solar}
"""

ACCOUNTS = """\
buyers:
  acme:
    targets: [a1, a2]
    revenue: {per_call: "25.00"}
    caps: {daily: {revenue: "100.00"}}
    duplicate: {window: 48h}
  bolt:
    targets: [b1]
    timezone: America/Chicago
    revenue: {tiers: [{min_seconds: 60, amount: "20.00"}, {min_seconds: 180, amount: "35.00"}]}
    convert_after: 60
    caps: {daily: {conversions: 2}}
publishers:
  pubn:
    numbers: ["8005550001"]
    payout: {per_call: "10.00"}
    convert_after: 60
    caps: {daily: {payout: "20.00"}}
  pubc:
    campaigns: [solar, roof]
    payout: {percent: 40}
"""

T0 = 1_780_000_000.0  # 2026-05-28 (a Thursday), 20:26:40 UTC


def config_of(accounts: str = ACCOUNTS, base: str = BASE) -> Config:
    """Parse BASE plus buyers and publishers."""
    return parse_config(base + textwrap.dedent(accounts), "test.yaml")


def call(uniqueid: str = "c1", **overrides: Any) -> BillableCall:
    """A call to a1 (buyer acme) from pubn's number, answered for 95 s."""
    values: dict[str, Any] = {
        "uniqueid": uniqueid,
        "campaign": "solar",
        "tracking_number": "+18005550001",
        "ani_e164": "+12125550100",
        "final_target": "a1",
        "talk_seconds": 95.0,
        "answered": True,
        "started_at": T0,
    }
    values.update(overrides)
    return BillableCall(**values)
