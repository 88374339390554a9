"""The buyers and publishers sections: valid files load, every mistake names file:line:column."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from billing_helpers import ACCOUNTS, BASE, config_of

from callflow.config import ConfigError, load_config, parse_amount, parse_config, parse_window

ROOT = Path(__file__).resolve().parents[2]


def problems(accounts: str) -> tuple[str, list[str]]:
    text = BASE + textwrap.dedent(accounts)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml")
    return text, info.value.problems


def pos(text: str, needle: str, token: str | None = None) -> str:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f"{number}:{line.index(token or needle) + 1}"
    raise AssertionError(needle)


def test_a_full_file_loads() -> None:
    config = config_of()
    acme = config.buyers["acme"]
    assert acme.revenue.per_call == Decimal("25.00") and acme.currency == "USD"
    assert acme.timezone == "America/New_York"  # from settings
    assert acme.duplicate is not None and acme.duplicate.seconds == 48 * 3600
    assert config.buyers["bolt"].timezone == "America/Chicago"
    assert config.publishers["pubn"].numbers == ("+18005550001",)  # normalised to E.164
    assert config.publishers["pubc"].payout.percent == Decimal(40)
    assert config.campaigns["roof"].convert_after == 120
    assert config.campaigns["solar"].convert_after is None


def test_the_example_file_has_buyers_and_publishers() -> None:
    config = load_config(ROOT / "rules" / "examples" / "pay-per-call.yaml")
    assert config.buyers and config.publishers


def test_unknown_target() -> None:
    text, found = problems("""\
        buyers:
          acme: {targets: [a1, nope], revenue: {per_call: 1}}
        """)
    assert found == [
        f"test.yaml:{pos(text, 'nope')}: buyers.acme.targets[1]: unknown target 'nope'"
    ]


def test_target_owned_twice() -> None:
    text, found = problems("""\
        buyers:
          acme: {targets: [a1], revenue: {per_call: 1}}
          bolt: {targets: [b1, a1], revenue: {per_call: 1}}
        """)
    where = pos(text, "bolt:", "a1")
    assert found == [
        f"test.yaml:{where}: buyers.bolt.targets[1]: target 'a1' already belongs to buyer 'acme'"
    ]


@pytest.mark.parametrize(("written", "message"), [
    ('"12.5.0"', "'12.5.0' is not an amount of money"),
    ('"-5"', "'-5' is not an amount of money"),
    ("-5", "-5 is negative"),
    ("true", "True is not an amount of money"),
    ('"1e3"', "'1e3' is not an amount of money"),
    ("2000000000", "more than 1,000,000,000"),
    ('"1.23456"', "is not an amount of money"),
])  # fmt: skip
def test_bad_amount(written: str, message: str) -> None:
    text, found = problems(f"""\
        buyers:
          acme: {{targets: [a1], revenue: {{per_call: {written}}}}}
        """)
    assert len(found) == 1
    assert found[0].startswith(f"test.yaml:{pos(text, 'per_call')}: buyers.acme.revenue.per_call: ")
    assert message in found[0]


def test_amount_with_more_decimals_than_the_currency() -> None:
    text, found = problems("""\
        buyers:
          acme: {targets: [a1], currency: JPY, revenue: {per_call: "25.50"}}
        """)
    assert found == [
        f"test.yaml:{pos(text, 'per_call')}: buyers.acme.revenue.per_call: "
        "25.50 has more decimals than JPY has (0)"
    ]


def test_bad_currency() -> None:
    text, found = problems("""\
        buyers:
          acme: {targets: [a1], currency: DOLLARS, revenue: {per_call: 1}}
        """)
    assert found == [
        f"test.yaml:{pos(text, 'currency')}: buyers.acme.currency: "
        "'DOLLARS' is not an ISO 4217 currency code (e.g. USD, EUR)"
    ]


@pytest.mark.parametrize(("accounts", "needle", "message"), [
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1, tiers: [{min_seconds: 1, "
     "amount: 1}]}}\n",
     "revenue", "buyers.acme.revenue: give either 'per_call' or 'tiers'"),
    ("buyers:\n  acme:\n    targets: [a1]\n    revenue: {tiers: [{min_seconds: 90, amount: 1}, "
     "{min_seconds: 60, amount: 2}]}\n",
     "min_seconds: 60",
     "buyers.acme.revenue.tiers[1].min_seconds: tiers must be in increasing min_seconds"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, caps: {weekly: {conversions: 1}}}\n",
     "weekly", "buyers.acme.caps.weekly: unknown cap period 'weekly' (use hourly, daily, monthly)"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, "
     "caps: {daily: {conversions: 1, revenue: 5}}}\n",
     "revenue: 5", "buyers.acme.caps.daily.revenue: give one of conversions, revenue, not both"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, duplicate: {window: 3 days}}\n",
     "window", "buyers.acme.duplicate.window: '3 days' is not a window"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, count_from: press}\n",
     "count_from", "buyers.acme.count_from: must be 'answer' or 'accept'"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, convert_after: -1}\n",
     "convert_after: -1", "buyers.acme.convert_after: Input should be greater than or equal to 0"),
    ("publishers:\n  p: {numbers: [\"8005550009\"], payout: {per_call: 1}}\n",
     '"8005550009"', "publishers.p.numbers[0]: +18005550009 is not in 'numbers'"),
    ("publishers:\n  p: {numbers: [\"8005550001\"], payout: {per_call: 1}}\n"
     "  q: {numbers: [\"800-555-0001\"], payout: {per_call: 1}}\n",
     '"800-555-0001"', "publishers.q.numbers[0]: +18005550001 already belongs to publisher 'p'"),
    ("publishers:\n  p: {campaigns: [nope], payout: {per_call: 1}}\n",
     "nope", "publishers.p.campaigns[0]: unknown campaign 'nope'"),
    ("publishers:\n  p: {payout: {per_call: 1}}\n",
     "p:", "publishers.p: needs 'numbers' (tracking numbers) or 'campaigns'"),
    ("publishers:\n  p: {campaigns: [solar], payout: {percent: 101}}\n",
     "percent", "publishers.p.payout.percent: 101 is more than 100 (percent)"),
    ("publishers:\n  p: {campaigns: [solar], payout: {per_call: 1, percent: 5}}\n",
     "payout", "publishers.p.payout: give either 'per_call' or 'percent'"),
    ("buyers:\n  acme: {targets: [a1], currency: EUR, revenue: {per_call: 1}}\n"
     "publishers:\n  p: {campaigns: [solar], payout: {percent: 40}}\n",
     "percent", "publishers.p.payout.percent: a percentage of revenue needs one currency: "
     "buyer 'acme' pays in EUR, this publisher is paid in USD"),
    ("buyers:\n  acme: {targets: [a1], revenue: {per_call: 1}, rebate: 5}\n",
     "rebate", "buyers.acme.rebate: unknown key"),
])  # fmt: skip
def test_mistakes_are_located(accounts: str, needle: str, message: str) -> None:
    text, found = problems(accounts)
    assert len(found) == 1, found
    assert found[0].startswith(f"test.yaml:{pos(text, needle)}: "), (found[0], pos(text, needle))
    assert message in found[0]


def test_parsers() -> None:
    assert parse_amount("25.00") == Decimal("25.00")
    assert parse_amount(25.5) == Decimal("25.5")
    assert parse_amount(7) == Decimal(7)
    assert parse_window("48h") == 48 * 3600
    assert parse_window("7d") == 7 * 86400
    assert parse_window("90m") == 5400
    assert parse_window("forever") is None
    for bad in ("0h", "48", "1y", "", 5):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_existing_files_without_billing_still_load() -> None:
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        load_config(path)
    assert "buyers" in ACCOUNTS
