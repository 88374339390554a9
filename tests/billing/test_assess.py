"""Conversion, revenue, payout and duplicates of one call: every rule at its boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest
from billing_helpers import T0, call, config_of

from callflow.billing import (
    BillingConfig,
    NoHistory,
    PriorConversion,
    assess,
    format_money,
    parse_money,
    percent_of,
    to_minor,
)

CONFIG = config_of()


class History:
    """A fixed earlier conversion per (scope, key, ani)."""

    def __init__(self, **priors: tuple[str, float]) -> None:
        self.priors = {key: PriorConversion(*value) for key, value in priors.items()}

    def prior_conversion(
        self, scope: str, key: str, ani_e164: str, since: float | None, exclude: str
    ) -> PriorConversion | None:
        prior = self.priors.get(f"{scope}_{key}")
        if prior is None or prior.uniqueid == exclude:
            return None
        return prior if since is None or prior.at >= since else None


@pytest.mark.parametrize(("talk", "converted"), [(89, False), (89.999, False), (90, True),
                                                 (90.0, True), (91, True)])  # fmt: skip
def test_buyer_threshold_at_the_boundary_second(talk: float, converted: bool) -> None:
    a = assess(call(talk_seconds=talk), CONFIG)
    assert a.buyer == "acme"
    assert a.buyer_converted is converted
    assert a.revenue_minor == (2500 if converted else 0)
    sign = "≥" if converted else "<"
    verdict = "converted" if converted else "not converted"
    shown = f"{talk:.3f}".rstrip("0").rstrip(".")
    assert f"talk {shown} s {sign} 90 s: {verdict} for buyer acme" in a.reasons


def test_reason_words() -> None:
    a = assess(call(), CONFIG)
    assert a.buyer_reasons == (
        "talk 95 s ≥ 90 s: converted for buyer acme",
        "revenue $25.00 per call",
    )
    assert a.revenue_rule == "buyers.acme.revenue.per_call"
    assert a.margin_minor == 1500


def test_split_thresholds_buyer_90_publisher_60() -> None:
    a = assess(call(talk_seconds=75), CONFIG)  # pubn: per call, converts at 60
    assert (a.buyer_converted, a.publisher_converted) == (False, True)
    assert (a.revenue_minor, a.payout_minor) == (0, 1000)
    assert a.margin_minor == -1000
    a59 = assess(call(talk_seconds=59.9), CONFIG)
    assert not a59.publisher_converted and a59.payout_minor == 0
    a60 = assess(call(talk_seconds=60), CONFIG)
    assert a60.publisher_converted and a60.payout_minor == 1000


def test_percent_payout_of_nothing_when_the_buyer_did_not_convert() -> None:
    other_number = call(tracking_number="+18005550002", talk_seconds=75)  # pubc: 40 %, campaign
    a = assess(other_number, CONFIG)
    assert a.publisher == "pubc"
    assert a.publisher_converted is False  # pubc has no own threshold: the default 90
    a = assess(call(tracking_number="+18005550002", talk_seconds=95), CONFIG)
    assert (a.revenue_minor, a.payout_minor) == (2500, 1000)
    assert "payout 40% of revenue $25.00 = $10.00 (rounded half up to the minor unit)" in a.reasons


def test_unanswered_and_no_buyer() -> None:
    a = assess(call(answered=False, talk_seconds=0, final_target=None), CONFIG)
    assert a.buyer is None and a.revenue_minor == 0 and a.payout_minor == 0
    assert "not answered: not converted for publisher pubn" in a.reasons
    house = assess(call(final_target="house"), CONFIG)
    assert house.buyer is None
    assert "target house has no buyer: nothing billed" in house.reasons
    assert house.payout_minor == 1000  # the publisher's traffic converted all the same


def test_campaign_threshold_and_overrides() -> None:
    roof = call(campaign="roof", tracking_number="+18005550003", final_target="a2")
    a = assess(roof.__class__(**{**_fields(roof), "talk_seconds": 119.5}), CONFIG)
    assert not a.buyer_converted
    assert "talk 119.5 s < 120 s (campaigns.roof.convert_after): not converted for buyer acme" in (
        a.reasons
    )
    a = assess(roof.__class__(**{**_fields(roof), "talk_seconds": 120}), CONFIG)
    assert a.buyer_converted and a.publisher_converted  # pubc takes the campaign's 120 too
    # bolt's own convert_after (60) wins over any campaign's
    b = assess(call(final_target="b1", campaign="roof", talk_seconds=60), CONFIG)
    assert b.buyer_converted
    assert "talk 60 s ≥ 60 s (buyers.bolt.convert_after): converted for buyer bolt" in b.reasons


def _fields(c: object) -> dict[str, object]:
    return {name: getattr(c, name) for name in c.__slots__}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("talk", "revenue", "rule"), [
    (59, 0, ""), (60, 2000, "tiers[0]"), (179.9, 2000, "tiers[0]"), (180, 3500, "tiers[1]"),
    (3600, 3500, "tiers[1]"),
])  # fmt: skip
def test_tiers(talk: float, revenue: int, rule: str) -> None:
    a = assess(call(final_target="b1", talk_seconds=talk), CONFIG)
    assert a.buyer == "bolt" and a.revenue_minor == revenue
    if rule:
        assert a.revenue_rule == f"buyers.bolt.revenue.{rule}"


def test_converted_under_the_first_tier_bills_nothing() -> None:
    config = config_of("""\
        buyers:
          acme:
            targets: [a1]
            convert_after: 30
            revenue: {tiers: [{min_seconds: 60, amount: "20"}]}
        """)
    a = assess(call(talk_seconds=45), config)
    assert a.buyer_converted and a.revenue_minor == 0
    assert "45 s is under the first tier (60 s): no revenue" in a.reasons


def test_pay_on_answer() -> None:
    config = config_of("""\
        buyers:
          acme: {targets: [a1], revenue: {per_call: 5}, convert_after: 0}
        """)
    a = assess(call(talk_seconds=0.2), config)
    assert a.buyer_converted and a.revenue_minor == 500
    assert not assess(call(answered=False, final_target="a1", talk_seconds=0), config).billed


def test_count_from_accept() -> None:
    config = config_of("""\
        buyers:
          acme: {targets: [a1], revenue: {per_call: 5}, count_from: accept}
        """)
    no_press = assess(call(talk_seconds=300), config)
    assert not no_press.buyer_converted
    assert "no press-1 acceptance: not converted for buyer acme (count_from: accept)" in (
        no_press.reasons
    )
    a = assess(call(talk_seconds=300, accept_seconds=89), config)
    assert not a.buyer_converted and "accepted 89 s < 90 s" in a.reasons[0]
    assert assess(call(talk_seconds=300, accept_seconds=90), config).buyer_converted


@pytest.mark.parametrize(("revenue", "percent", "payout"), [
    (2500, "40", 1000), (2501, "40", 1000),   # 1000.4 -> 1000
    (2499, "40", 1000),                       # 999.6 -> 1000
    (20, "12.5", 3),                          # 2.5 -> 3 (half up; banker's would give 2)
    (12, "12.5", 2),                          # 1.5 -> 2
    (4, "12.5", 1),                           # 0.5 -> 1
    (3, "12.5", 0),                           # 0.375 -> 0
    (1, "50", 1),                             # 0.5 -> 1
    (0, "40", 0), (9999, "100", 9999), (9999, "0", 0), (333, "33.33", 111),  # 110.9889 -> 111
])  # fmt: skip
def test_percent_rounding_half_up(revenue: int, percent: str, payout: int) -> None:
    assert percent_of(revenue, Decimal(percent)) == payout


def test_percent_payout_in_assessment_rounds_half_up() -> None:
    config = config_of("""\
        buyers:
          acme: {targets: [a1], revenue: {per_call: "0.20"}}
        publishers:
          pubc: {campaigns: [solar], payout: {percent: 12.5}}
        """)
    a = assess(call(), config)
    assert (a.revenue_minor, a.payout_minor) == (20, 3)


def test_money_helpers() -> None:
    assert to_minor(Decimal("25.00"), "USD") == 2500
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    with pytest.raises(ValueError, match="more decimals"):
        to_minor(Decimal("1.005"), "USD")
    assert parse_money("-12.50", "USD") == -1250
    assert parse_money("-$12.50", "USD") == -1250
    assert format_money(-1250, "USD") == "-$12.50"
    assert format_money(123456789, "USD") == "$1,234,567.89"
    assert format_money(1500, "JPY") == "1,500 JPY"
    assert format_money(5, "EUR") == "0.05 EUR"
    with pytest.raises(ValueError):
        parse_money("abc", "USD")


# --- duplicates ---


def test_duplicate_inside_the_window_is_not_billed() -> None:
    history = History(buyer_acme=("c0", T0 - 47 * 3600))
    a = assess(call(), CONFIG, history)
    assert a.duplicate and a.duplicate_of == "c0"
    assert a.buyer_converted and not a.billed and a.revenue_minor == 0
    assert "duplicate of call c0 for buyer acme within 48h: not billed" in a.reasons
    # pay: false by default: the publisher is not paid either
    assert a.payout_minor == 0 and not a.paid
    assert "duplicate of call c0 for buyer acme: publisher pubn not paid" in a.reasons


def test_duplicate_window_edges() -> None:
    exactly = History(buyer_acme=("c0", T0 - 48 * 3600))  # window reaches back 48 h inclusive
    assert assess(call(), CONFIG, exactly).duplicate_of == "c0"
    outside = History(buyer_acme=("c0", T0 - 48 * 3600 - 1))
    a = assess(call(), CONFIG, outside)
    assert not a.duplicate and a.revenue_minor == 2500


def test_duplicate_forever_bill_and_pay_and_per_campaign() -> None:
    config = config_of("""\
        buyers:
          acme:
            targets: [a1]
            revenue: {per_call: 25}
            duplicate: {window: forever, bill: true, pay: true}
          bolt:
            targets: [b1]
            revenue: {per_call: 30}
            duplicate: {window: 7d, per: campaign}
        publishers:
          pubn: {numbers: ["8005550001"], payout: {per_call: 10}}
        """)
    ages_ago = History(buyer_acme=("c0", T0 - 3000 * 86400))
    a = assess(call(), config, ages_ago)
    assert (
        a.duplicate_of == "c0" and a.billed and a.revenue_minor == 2500 and a.payout_minor == 1000
    )
    assert "duplicate of call c0 for buyer acme within ever: billed anyway (duplicate.bill)" in (
        a.reasons
    )
    per_campaign = History(campaign_solar=("c0", T0 - 86400))
    b = assess(call(final_target="b1"), config, per_campaign)
    assert b.duplicate_of == "c0" and b.revenue_minor == 0
    assert not assess(call(final_target="b1", campaign="roof"), config, per_campaign).duplicate


def test_no_duplicates_without_a_caller_number() -> None:
    history = History(buyer_acme=("c0", T0 - 3600))
    a = assess(call(ani_e164=None), CONFIG, history)
    assert not a.duplicate and a.revenue_minor == 2500
    assert "no caller number: cannot be a duplicate" in a.reasons


def test_a_call_is_not_its_own_duplicate() -> None:
    assert not assess(call("c0"), CONFIG, History(buyer_acme=("c0", T0))).duplicate


def test_billing_config_is_compiled_once_and_reused() -> None:
    plans = BillingConfig.of(CONFIG)
    assert BillingConfig.of(plans) is plans
    assert plans.buyers["bolt"].max_revenue_minor == 3500
    assert plans.publisher_of("+18005550001", "solar").name == "pubn"  # type: ignore[union-attr]
    assert plans.publisher_of("+18005550002", "solar").name == "pubc"  # type: ignore[union-attr]
    assert assess(call(), plans, NoHistory()) == assess(call(), CONFIG)
