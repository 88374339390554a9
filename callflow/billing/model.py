"""Buyers and publishers of the rules file, compiled for billing: amounts in minor units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from callflow.billing.money import format_money, to_minor
from callflow.config import DEFAULT_CONVERT_AFTER, Buyer, Config, Publisher, zone

__all__ = ["BillingConfig", "BuyerPlan", "CapRule", "DuplicatePlan", "PublisherPlan", "Tier"]


@dataclass(frozen=True, slots=True)
class Tier:
    """Revenue of a converted call lasting at least ``min_seconds``."""

    index: int
    min_seconds: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CapRule:
    """One cap: at most ``limit`` conversions, or minor units of revenue/payout, per period."""

    period: Literal["hourly", "daily", "monthly"]
    metric: Literal["conversions", "revenue", "payout"]
    limit: int

    def show(self, value: int, currency: str) -> str:
        """Render a value of this cap's metric (``3`` or ``$25.00``)."""
        return str(value) if self.metric == "conversions" else format_money(value, currency)


@dataclass(frozen=True, slots=True)
class DuplicatePlan:
    """When a caller is a duplicate for a buyer, and what follows."""

    window: int | None  # seconds; None = for ever
    window_text: str  # as written: 48h, 7d, forever
    per: Literal["buyer", "campaign"]
    bill: bool
    pay: bool
    route_elsewhere: bool


@dataclass(frozen=True, slots=True)
class BuyerPlan:
    """A buyer, compiled."""

    name: str
    currency: str
    tz_name: str
    tz: ZoneInfo
    targets: tuple[str, ...]
    per_call_minor: int | None
    tiers: tuple[Tier, ...]
    convert_after: int | None  # its own override, else the campaign's
    count_from: Literal["answer", "accept"]
    caps: tuple[CapRule, ...]
    duplicate: DuplicatePlan | None

    @property
    def max_revenue_minor(self) -> int:
        """The most one call can bill (what a cap reservation holds)."""
        if self.per_call_minor is not None:
            return self.per_call_minor
        return max((t.amount_minor for t in self.tiers), default=0)

    @classmethod
    def of(cls, buyer: Buyer) -> BuyerPlan:
        """Compile a buyer of the rules file."""
        cur = buyer.currency
        revenue = buyer.revenue
        per_call = None if revenue.per_call is None else to_minor(revenue.per_call, cur)
        tiers = tuple(
            Tier(i, tier.min_seconds, to_minor(tier.amount, cur))
            for i, tier in enumerate(revenue.tiers or ())
        )
        caps = tuple(
            CapRule(period, "conversions", limit.conversions)  # type: ignore[arg-type]
            if limit.conversions is not None
            else CapRule(period, "revenue", to_minor(limit.revenue or Decimal(0), cur))  # type: ignore[arg-type]
            for period, limit in (buyer.caps.limits() if buyer.caps else ())
        )
        dup = buyer.duplicate
        duplicate = None
        if dup is not None:
            duplicate = DuplicatePlan(
                dup.seconds, dup.window, dup.per, dup.bill, dup.pay, dup.route_elsewhere
            )
        return cls(
            buyer.name, cur, buyer.timezone, zone(buyer.timezone), buyer.targets, per_call, tiers,
            buyer.convert_after, buyer.count_from, caps, duplicate,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PublisherPlan:
    """A publisher, compiled."""

    name: str
    currency: str
    tz_name: str
    tz: ZoneInfo
    per_call_minor: int | None
    percent: Decimal | None
    convert_after: int | None
    caps: tuple[CapRule, ...]

    @classmethod
    def of(cls, publisher: Publisher) -> PublisherPlan:
        """Compile a publisher of the rules file."""
        cur = publisher.currency
        payout = publisher.payout
        per_call = None if payout.per_call is None else to_minor(payout.per_call, cur)
        caps = tuple(
            CapRule(period, "conversions", limit.conversions)  # type: ignore[arg-type]
            if limit.conversions is not None
            else CapRule(period, "payout", to_minor(limit.payout or Decimal(0), cur))  # type: ignore[arg-type]
            for period, limit in (publisher.caps.limits() if publisher.caps else ())
        )
        return cls(
            publisher.name, cur, publisher.timezone, zone(publisher.timezone), per_call,
            payout.percent, publisher.convert_after, caps,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BillingConfig:
    """Every buyer and publisher, and who owns which target, tracking number and campaign."""

    buyers: Mapping[str, BuyerPlan]
    publishers: Mapping[str, PublisherPlan]
    buyer_of_target: Mapping[str, str]
    publisher_of_number: Mapping[str, str]
    publisher_of_campaign: Mapping[str, str]
    campaign_convert_after: Mapping[str, int]

    @classmethod
    def of(cls, config: Config | BillingConfig) -> BillingConfig:
        """Compile the billing part of a configuration (a BillingConfig is returned as is)."""
        if isinstance(config, BillingConfig):
            return config
        buyers = {n: BuyerPlan.of(b) for n, b in config.buyers.items()}
        publishers = {n: PublisherPlan.of(p) for n, p in config.publishers.items()}
        by_target = {t: n for n, b in config.buyers.items() for t in b.targets}
        by_number = {num: n for n, p in config.publishers.items() for num in p.numbers}
        by_campaign = {c: n for n, p in config.publishers.items() for c in p.campaigns}
        thresholds = {
            n: c.convert_after for n, c in config.campaigns.items() if c.convert_after is not None
        }
        return cls(
            MappingProxyType(buyers), MappingProxyType(publishers), MappingProxyType(by_target),
            MappingProxyType(by_number), MappingProxyType(by_campaign),
            MappingProxyType(thresholds),
        )  # fmt: skip

    @property
    def enabled(self) -> bool:
        """Tell whether the file has any buyer or publisher."""
        return bool(self.buyers or self.publishers)

    def buyer_of(self, target: str | None) -> BuyerPlan | None:
        """Return the buyer owning a target, if any."""
        name = self.buyer_of_target.get(target or "")
        return None if name is None else self.buyers[name]

    def publisher_of(
        self, tracking_number: str | None, campaign: str | None
    ) -> PublisherPlan | None:
        """Return the publisher of a call: by its tracking number, else by its campaign."""
        name = self.publisher_of_number.get(tracking_number or "")
        if name is None:
            name = self.publisher_of_campaign.get(campaign or "")
        return None if name is None else self.publishers[name]

    def threshold(
        self,
        kind: Literal["buyer", "publisher"],
        plan: BuyerPlan | PublisherPlan,
        campaign: str | None,
    ) -> tuple[int, str]:
        """Return seconds to convert for an account and where that number comes from."""
        section = "buyers" if kind == "buyer" else "publishers"
        if plan.convert_after is not None:
            return plan.convert_after, f"{section}.{plan.name}.convert_after"
        if campaign is not None and campaign in self.campaign_convert_after:
            return self.campaign_convert_after[campaign], f"campaigns.{campaign}.convert_after"
        return DEFAULT_CONVERT_AFTER, "default"
