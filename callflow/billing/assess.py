"""Whether a finished call converts, and what it bills and pays: pure, exact, explained.

``assess(call, billing, history)`` reads only its arguments. A call converts for an account
when it was answered and the agent leg's talk time (or, with ``count_from: accept``, the time
from the press-1 acceptance) is **at least** the threshold: 90.0 s converts at 90, 89.999 s does
not (times are compared as measured, never rounded). A threshold of 0 converts on answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from callflow.billing.model import BillingConfig, BuyerPlan, PublisherPlan
from callflow.billing.money import format_money, percent_of
from callflow.config import Config

__all__ = [
    "Assessment",
    "BillableCall",
    "DuplicateHistory",
    "NoHistory",
    "PayoutCaps",
    "PriorConversion",
    "assess",
    "seconds_text",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BillableCall:
    """A finished call as billing sees it (times are UTC epoch seconds)."""

    uniqueid: str
    campaign: str | None
    tracking_number: str | None
    ani_e164: str | None
    final_target: str | None  # the target that answered (None: nobody did)
    talk_seconds: float  # measured on the agent leg: the CDR's talk_seconds
    answered: bool
    started_at: float
    ended_at: float | None = None  # when it is billed; default started_at + talk_seconds
    accept_seconds: float | None = None  # from a press-1 acceptance to the end (count_from)

    @property
    def billed_at(self) -> float:
        """When the call is billed: its end."""
        if self.ended_at is not None:
            return self.ended_at
        return self.started_at + max(0.0, self.talk_seconds)


@dataclass(frozen=True, slots=True)
class PriorConversion:
    """An earlier converted call of the same caller."""

    uniqueid: str
    at: float


class DuplicateHistory(Protocol):
    """Earlier conversions, to tell duplicates (``BillingState`` is one)."""

    def prior_conversion(
        self,
        scope: Literal["buyer", "campaign"],
        key: str,
        ani_e164: str,
        since: float | None,
        exclude: str,
    ) -> PriorConversion | None:
        """Return the latest conversion of a caller for a buyer or campaign at or after since."""
        ...


class PayoutCaps(Protocol):
    """Publisher caps at settlement time (``BillingState`` is one)."""

    def payout_refusal(self, publisher: str, at: float, payout_minor: int) -> str | None:
        """Return why a publisher cannot be paid this much more at ``at``, or None."""
        ...


class NoHistory:
    """No earlier calls: nothing is a duplicate."""

    def prior_conversion(
        self,
        scope: Literal["buyer", "campaign"],
        key: str,
        ani_e164: str,
        since: float | None,
        exclude: str,
    ) -> PriorConversion | None:
        """Return None."""
        return None


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a call bills the buyer and pays the publisher, and why (in words)."""

    uniqueid: str
    at: float  # when it is billed (the call's end)
    campaign: str | None
    ani_e164: str | None
    talk_seconds: float
    buyer: str | None
    publisher: str | None
    buyer_converted: bool
    publisher_converted: bool
    revenue_minor: int
    payout_minor: int
    currency: str | None  # the buyer's
    payout_currency: str | None  # the publisher's
    duplicate_of: str | None  # the earlier call this one duplicates (for the buyer)
    revenue_rule: str
    payout_rule: str
    buyer_reasons: tuple[str, ...] = field(default=())
    publisher_reasons: tuple[str, ...] = field(default=())
    billed: bool = False  # counts as a billed conversion for the buyer (caps, duplicates)
    paid: bool = False  # counts as a paid conversion for the publisher (caps)

    @property
    def duplicate(self) -> bool:
        """Tell whether the call duplicates an earlier conversion for its buyer."""
        return self.duplicate_of is not None

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason, the buyer's first."""
        return self.buyer_reasons + self.publisher_reasons

    @property
    def margin_minor(self) -> int | None:
        """Revenue minus payout, when both are in one currency (or one side is absent)."""
        if self.currency and self.payout_currency and self.currency != self.payout_currency:
            return None
        return self.revenue_minor - self.payout_minor


def seconds_text(value: float) -> str:
    """Show seconds as measured, without trailing zeros: ``95``, ``89.5``, ``89.999``."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _window_text(window: str) -> str:
    return "ever" if window == "forever" else window


def assess(
    call: BillableCall,
    billing: BillingConfig | Config,
    history: DuplicateHistory | None = None,
    caps: PayoutCaps | None = None,
) -> Assessment:
    """Decide whether a call converts for its buyer and publisher, and the money of each."""
    plans = BillingConfig.of(billing)
    history = history or NoHistory()
    buyer = plans.buyer_of(call.final_target) if call.answered else None
    publisher = plans.publisher_of(call.tracking_number, call.campaign)
    b_reasons: list[str] = []
    p_reasons: list[str] = []
    duplicate_of: str | None = None
    dup_window = ""
    b_conv = billed = False
    revenue, revenue_rule = 0, ""
    if buyer is not None:
        duplicate_of, dup_window = _duplicate(call, buyer, history, b_reasons)
        b_conv, seconds = _converts(call, plans, buyer, "buyer", b_reasons)
        if b_conv:
            revenue, revenue_rule = _revenue(buyer, seconds, b_reasons)
            billed = True
            if duplicate_of is not None and buyer.duplicate is not None:
                if buyer.duplicate.bill:
                    b_reasons.append(
                        f"duplicate of call {duplicate_of} for buyer {buyer.name} within "
                        f"{_window_text(dup_window)}: billed anyway (duplicate.bill)"
                    )
                else:
                    b_reasons.append(
                        f"duplicate of call {duplicate_of} for buyer {buyer.name} within "
                        f"{_window_text(dup_window)}: not billed"
                    )
                    revenue, billed = 0, False
                    revenue_rule = f"buyers.{buyer.name}.duplicate"
    elif call.answered and call.final_target:
        b_reasons.append(f"target {call.final_target} has no buyer: nothing billed")
    elif not call.answered:
        b_reasons.append("not answered: nothing billed")
    p_conv = paid = False
    payout, payout_rule = 0, ""
    if publisher is not None:
        p_conv, _ = _converts(call, plans, publisher, "publisher", p_reasons)
        if p_conv:
            payout, payout_rule = _payout(publisher, revenue, buyer, p_reasons)
            paid = True
            dup = buyer.duplicate if buyer is not None else None
            if duplicate_of is not None and dup is not None and not dup.pay:
                p_reasons.append(
                    f"duplicate of call {duplicate_of} for buyer {buyer.name if buyer else ''}: "
                    f"publisher {publisher.name} not paid"
                )
                payout, paid = 0, False
                payout_rule = f"buyers.{buyer.name if buyer else ''}.duplicate.pay"
            if paid and caps is not None:
                refusal = caps.payout_refusal(publisher.name, call.billed_at, payout)
                if refusal is not None:
                    p_reasons.append(f"{refusal}: not paid")
                    payout, paid = 0, False
                    payout_rule = f"publishers.{publisher.name}.caps"
    return Assessment(
        uniqueid=call.uniqueid, at=call.billed_at, campaign=call.campaign,
        ani_e164=call.ani_e164, talk_seconds=call.talk_seconds,
        buyer=buyer.name if buyer else None, publisher=publisher.name if publisher else None,
        buyer_converted=b_conv, publisher_converted=p_conv, revenue_minor=revenue,
        payout_minor=payout, currency=buyer.currency if buyer else None,
        payout_currency=publisher.currency if publisher else None, duplicate_of=duplicate_of,
        revenue_rule=revenue_rule, payout_rule=payout_rule, buyer_reasons=tuple(b_reasons),
        publisher_reasons=tuple(p_reasons), billed=billed, paid=paid,
    )  # fmt: skip


def _duplicate(
    call: BillableCall, buyer: BuyerPlan, history: DuplicateHistory, reasons: list[str]
) -> tuple[str | None, str]:
    """Return (the earlier call this one duplicates, the window as written), or (None, '')."""
    dup = buyer.duplicate
    if dup is None:
        return None, ""
    if not call.ani_e164:
        reasons.append("no caller number: cannot be a duplicate")
        return None, ""
    since = None if dup.window is None else call.started_at - dup.window
    if dup.per == "campaign":
        if not call.campaign:
            return None, ""
        prior = history.prior_conversion("campaign", call.campaign, call.ani_e164, since,
                                         call.uniqueid)  # fmt: skip
    else:
        prior = history.prior_conversion("buyer", buyer.name, call.ani_e164, since, call.uniqueid)
    return (prior.uniqueid, dup.window_text) if prior is not None else (None, "")


def _converts(
    call: BillableCall,
    plans: BillingConfig,
    plan: BuyerPlan | PublisherPlan,
    kind: Literal["buyer", "publisher"],
    reasons: list[str],
) -> tuple[bool, float]:
    """Return whether the call converts for an account, and the seconds that counted."""
    who = f"{kind} {plan.name}"
    if not call.answered:
        reasons.append(f"not answered: not converted for {who}")
        return False, 0.0
    threshold, source = plans.threshold(kind, plan, call.campaign)
    where = "" if source == "default" else f" ({source})"
    measure, seconds = "talk", max(0.0, call.talk_seconds)
    if isinstance(plan, BuyerPlan) and plan.count_from == "accept":
        if call.accept_seconds is None:
            reasons.append(f"no press-1 acceptance: not converted for {who} (count_from: accept)")
            return False, 0.0
        measure, seconds = "accepted", max(0.0, call.accept_seconds)
    if threshold == 0:
        reasons.append(f"answered, threshold 0 s{where}: converted for {who} on answer")
        return True, seconds
    if seconds >= threshold:
        reasons.append(
            f"{measure} {seconds_text(seconds)} s ≥ {threshold} s{where}: converted for {who}"
        )
        return True, seconds
    reasons.append(
        f"{measure} {seconds_text(seconds)} s < {threshold} s{where}: not converted for {who}"
    )
    return False, seconds


def _revenue(buyer: BuyerPlan, seconds: float, reasons: list[str]) -> tuple[int, str]:
    """Return the revenue of a converted call and the rule that set it."""
    money = format_money
    if buyer.per_call_minor is not None:
        amount = buyer.per_call_minor
        reasons.append(f"revenue {money(amount, buyer.currency)} per call")
        return amount, f"buyers.{buyer.name}.revenue.per_call"
    tier = None
    for candidate in buyer.tiers:
        if seconds >= candidate.min_seconds:
            tier = candidate
    if tier is None:
        first = buyer.tiers[0].min_seconds if buyer.tiers else 0
        reasons.append(f"{seconds_text(seconds)} s is under the first tier ({first} s): no revenue")
        return 0, f"buyers.{buyer.name}.revenue.tiers"
    reasons.append(
        f"revenue {money(tier.amount_minor, buyer.currency)}: tier ≥ {tier.min_seconds} s "
        f"({seconds_text(seconds)} s)"
    )
    return tier.amount_minor, f"buyers.{buyer.name}.revenue.tiers[{tier.index}]"


def _payout(
    publisher: PublisherPlan, revenue: int, buyer: BuyerPlan | None, reasons: list[str]
) -> tuple[int, str]:
    """Return the payout of a converted call and the rule that set it."""
    cur = publisher.currency
    if publisher.per_call_minor is not None:
        reasons.append(f"payout {format_money(publisher.per_call_minor, cur)} per call")
        return publisher.per_call_minor, f"publishers.{publisher.name}.payout.per_call"
    percent = publisher.percent
    assert percent is not None
    rule = f"publishers.{publisher.name}.payout.percent"
    if buyer is None:
        reasons.append(f"payout {percent}% of revenue: no buyer, nothing to share")
        return 0, rule
    amount = percent_of(revenue, percent)
    reasons.append(
        f"payout {percent}% of revenue {format_money(revenue, cur)} = "
        f"{format_money(amount, cur)} (rounded half up to the minor unit)"
    )
    return amount, rule
