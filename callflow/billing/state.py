"""Live billing totals per buyer and publisher, cap reservations, and duplicate memory.

Exact under concurrency the same way as the routing ``Counters``: the daemon is single-threaded
asyncio, and every method here is synchronous, so a check and the reservation it allows happen
with no ``await`` between them.

**Reservations.** Before a call rings a buyer's target, ``reserve`` checks the buyer's caps and
holds the most that call could bill (its per-call revenue, or its highest tier) and one
conversion. While held, a reservation counts against every period of every cap, whatever the
time, because the call may end and bill in the current period. A call is refused when the
settled total plus everything held plus this call's most would pass a revenue cap, or when the
settled plus held conversions reach a conversions cap. ``bill`` replaces the reservation with
what the call really billed (never more than what was held), ``release`` drops it (not dialled,
not answered). So a cap is never exceeded, and the last slot goes to one call only; the price is
that a cap may stop short by less than one call's most revenue.

Caps count what ``post`` writes as revenue / payout (the gross billed at the call's end);
later adjustments and reversals change statements, not caps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from callflow.billing.assess import (
    Assessment,
    BillableCall,
    PriorConversion,
    assess,
)
from callflow.billing.model import BillingConfig, BuyerPlan, CapRule, PublisherPlan
from callflow.config import Config
from callflow.rules.limits import PeriodKey, period_keys

__all__ = ["BillingState", "SettledEntry"]

Kind = Literal["buyer", "publisher"]


@dataclass(frozen=True, slots=True)
class SettledEntry:
    """A billed call as the ledger remembers it (to rebuild the state at start)."""

    account_kind: Kind
    account: str
    uniqueid: str
    at: float
    amount_minor: int
    converted: bool  # a billed (buyer) or paid (publisher) conversion
    duplicate_of: str | None
    ani_e164: str | None
    campaign: str | None


@dataclass(slots=True)
class _Period:
    """Totals of one account in one period."""

    key: PeriodKey
    conversions: int = 0
    amount: int = 0


@dataclass(frozen=True, slots=True)
class _Hold:
    """A reservation: a call that may bill a buyer up to ``most`` minor units."""

    uniqueid: str
    buyer: str
    most: int
    at: float


class BillingState:
    """Period totals, reservations and last conversions of every buyer and publisher."""

    def __init__(
        self, billing: Config | BillingConfig, clock: Callable[[], float] = time.time
    ) -> None:
        """Start empty (``load`` the ledger's entries to rebuild)."""
        self._clock = clock
        self.billing = BillingConfig.of(billing)
        # (kind, account, period) -> totals of the latest period seen
        self._totals: dict[tuple[Kind, str, str], _Period] = {}
        # (uniqueid, buyer) -> hold
        self._holds: dict[tuple[str, str], _Hold] = {}
        # ("buyer", name, ani) / ("campaign", name, ani) -> latest conversion
        self._last: dict[tuple[str, str, str], PriorConversion] = {}

    @property
    def idle(self) -> bool:
        """Whether there is nothing to bill: no buyers, no publishers, no holds."""
        return not (self.billing.buyers or self.billing.publishers or self._holds)

    def reconfigure(self, billing: Config | BillingConfig) -> None:
        """Take new buyers and publishers (hot reload); totals, holds and memory are kept."""
        self.billing = BillingConfig.of(billing)

    # --- reading totals ---

    def _period_total(self, kind: Kind, account: str, period: str, key: PeriodKey) -> _Period:
        slot = self._totals.get((kind, account, period))
        return slot if slot is not None and slot.key == key else _Period(key)

    def _held(self, buyer: str) -> tuple[int, int]:
        """Return (calls held, minor units held) for a buyer."""
        holds = [h for h in self._holds.values() if h.buyer == buyer]
        return len(holds), sum(h.most for h in holds)

    def usage(self, kind: Kind, account: str, now: float | None = None) -> dict[str, object]:
        """Return an account's totals per period now (and what is held), for display."""
        now = self._clock() if now is None else now
        plan = self._plan(kind, account)
        if plan is None:
            return {}
        keys = period_keys(plan.tz, now)
        usage: dict[str, object] = {}
        for period in ("hourly", "daily", "monthly"):
            total = self._period_total(kind, account, period, keys[period])
            usage[period] = {"conversions": total.conversions, "amount_minor": total.amount}
        if kind == "buyer":
            usage["held"] = dict(zip(("calls", "amount_minor"), self._held(account), strict=True))
        return usage

    def _plan(self, kind: Kind, account: str) -> BuyerPlan | PublisherPlan | None:
        if kind == "buyer":
            return self.billing.buyers.get(account)
        return self.billing.publishers.get(account)

    # --- before dialling ---

    def buyer_refusal(self, buyer: BuyerPlan, now: float, *, exclude: str = "") -> str | None:
        """Return why a buyer's caps refuse one more call now (holds counted), or None."""
        keys = period_keys(buyer.tz, now)
        holds = [h for h in self._holds.values() if h.buyer == buyer.name and h.uniqueid != exclude]
        held_calls, held_most = len(holds), sum(h.most for h in holds)
        for cap in buyer.caps:
            total = self._period_total("buyer", buyer.name, cap.period, keys[cap.period])
            if cap.metric == "conversions":
                taken = total.conversions + held_calls
                if taken >= cap.limit:
                    return _cap_text("buyer", buyer.name, cap, taken, held_calls, buyer.currency)
            else:
                taken = total.amount + held_most
                if taken + buyer.max_revenue_minor > cap.limit:
                    text = _cap_text("buyer", buyer.name, cap, taken, held_calls, buyer.currency)
                    if taken < cap.limit:
                        most = cap.show(buyer.max_revenue_minor, buyer.currency)
                        text += f"; the next call may bill up to {most}"
                    return text
        return None

    def refusal(
        self,
        target: str,
        now: float | None = None,
        *,
        ani_e164: str | None = None,
        campaign: str | None = None,
    ) -> str | None:
        """Return why billing refuses a call to ``target`` now (buyer cap, duplicate), or None.

        A duplicate refuses only when the buyer routes duplicates elsewhere.
        """
        now = self._clock() if now is None else now
        buyer = self.billing.buyer_of(target)
        if buyer is None:
            return None
        refusal = self.buyer_refusal(buyer, now)
        if refusal is not None:
            return refusal
        dup = buyer.duplicate
        if dup is not None and dup.route_elsewhere and ani_e164:
            found = self.is_duplicate(buyer.name, ani_e164, now, campaign=campaign)
            if found is not None:
                return f"{found}: routed elsewhere"
        return None

    def needs_accept(self, target: str) -> bool:
        """Whether the target's buyer counts from a press-1 acceptance (the agent is asked)."""
        buyer = self.billing.buyer_of(target)
        return buyer is not None and buyer.count_from == "accept"

    def reserve(
        self,
        target: str,
        uniqueid: str,
        now: float | None = None,
        *,
        ani_e164: str | None = None,
        campaign: str | None = None,
    ) -> str | None:
        """Check and hold a buyer's cap room for a call to ``target``: None if held, else why not.

        A target without a buyer always passes (nothing held). A call already holding room
        with the same buyer (simultaneous ringing) holds nothing more.
        """
        now = self._clock() if now is None else now
        buyer = self.billing.buyer_of(target)
        if buyer is None or (uniqueid, buyer.name) in self._holds:
            return None
        refusal = self.refusal(target, now, ani_e164=ani_e164, campaign=campaign)
        if refusal is not None:
            return refusal
        hold = _Hold(uniqueid, buyer.name, buyer.max_revenue_minor, now)
        self._holds[(uniqueid, buyer.name)] = hold
        return None

    def release(self, uniqueid: str, target: str | None = None) -> None:
        """Drop a call's holds (of one target's buyer, or all): it did not ring or answer there."""
        if target is not None:
            buyer = self.billing.buyer_of_target.get(target)
            if buyer is not None:
                self._holds.pop((uniqueid, buyer), None)
            return
        for key in [k for k in self._holds if k[0] == uniqueid]:
            del self._holds[key]

    def holds(self, uniqueid: str | None = None) -> int:
        """Return how many holds there are (of one call, or all)."""
        return sum(1 for k in self._holds if uniqueid is None or k[0] == uniqueid)

    # --- duplicates ---

    def prior_conversion(
        self,
        scope: Literal["buyer", "campaign"],
        key: str,
        ani_e164: str,
        since: float | None,
        exclude: str,
    ) -> PriorConversion | None:
        """Return the latest billed conversion of a caller for a buyer or campaign since then."""
        prior = self._last.get((scope, key, ani_e164))
        if prior is None or prior.uniqueid == exclude:
            return None
        if since is not None and prior.at < since:
            return None
        return prior

    def is_duplicate(
        self, buyer: str, ani_e164: str, now: float | None = None, *, campaign: str | None = None
    ) -> str | None:
        """Return why a caller is a duplicate for a buyer now (in words), or None."""
        now = self._clock() if now is None else now
        plan = self.billing.buyers.get(buyer)
        if plan is None or plan.duplicate is None or not ani_e164:
            return None
        dup = plan.duplicate
        since = None if dup.window is None else now - dup.window
        if dup.per == "campaign":
            if not campaign:
                return None
            prior = self.prior_conversion("campaign", campaign, ani_e164, since, "")
        else:
            prior = self.prior_conversion("buyer", buyer, ani_e164, since, "")
        if prior is None:
            return None
        within = "ever" if dup.window is None else dup.window_text
        scope = f"campaign {campaign}" if dup.per == "campaign" else f"buyer {buyer}"
        return f"duplicate of call {prior.uniqueid} for {scope} within {within}"

    # --- after the call ---

    def payout_refusal(self, publisher: str, at: float, payout_minor: int) -> str | None:
        """Return why a publisher's caps refuse paying this much more at ``at``, or None."""
        plan = self.billing.publishers.get(publisher)
        if plan is None:
            return None
        keys = period_keys(plan.tz, at)
        for cap in plan.caps:
            total = self._period_total("publisher", publisher, cap.period, keys[cap.period])
            if cap.metric == "conversions" and total.conversions + 1 > cap.limit:
                return _cap_text("publisher", publisher, cap, total.conversions, 0, plan.currency)
            if cap.metric == "payout" and total.amount + payout_minor > cap.limit:
                return _cap_text("publisher", publisher, cap, total.amount, 0, plan.currency)
        return None

    def bill(self, call: BillableCall) -> Assessment:
        """Assess a finished call against this state and count it (no await: exact).

        The call's holds are released. Hand the result to ``ledger.post``.
        """
        assessment = assess(call, self.billing, self, self)
        self.release(call.uniqueid)
        self.settle(assessment)
        return assessment

    def settle(self, a: Assessment) -> None:
        """Count an assessment in the totals and the duplicate memory (call it once per call)."""
        if a.buyer is not None:
            self._count(SettledEntry("buyer", a.buyer, a.uniqueid, a.at, a.revenue_minor,
                                     a.billed, a.duplicate_of, a.ani_e164, a.campaign))  # fmt: skip
        if a.publisher is not None:
            self._count(SettledEntry("publisher", a.publisher, a.uniqueid, a.at, a.payout_minor,
                                     a.paid, a.duplicate_of, a.ani_e164, a.campaign))  # fmt: skip

    def load(self, entries: Iterable[SettledEntry]) -> None:
        """Rebuild from the ledger's revenue and payout entries (any order)."""
        for entry in sorted(entries, key=lambda e: e.at):
            self._count(entry)

    def _count(self, e: SettledEntry) -> None:
        plan = self._plan(e.account_kind, e.account)
        if plan is not None:
            for period, key in period_keys(plan.tz, e.at).items():
                if period == "total":
                    continue
                slot = self._totals.get((e.account_kind, e.account, period))
                if slot is None or slot.key < key:
                    slot = self._totals[(e.account_kind, e.account, period)] = _Period(key)
                elif slot.key > key:
                    continue  # an older period than the latest: no cap reads it
                slot.amount += e.amount_minor
                slot.conversions += int(e.converted)
        if e.account_kind == "buyer" and e.converted and e.duplicate_of is None and e.ani_e164:
            # A billed conversion starts (or restarts) the duplicate window; a duplicate does not.
            prior = PriorConversion(e.uniqueid, e.at)
            memory = [("buyer", e.account, e.ani_e164)]
            if e.campaign:
                memory.append(("campaign", e.campaign, e.ani_e164))
            for slot_key in memory:
                last = self._last.get(slot_key)
                if last is None or last.at <= e.at:
                    self._last[slot_key] = prior


def _cap_text(kind: str, account: str, cap: CapRule, taken: int, held: int, currency: str) -> str:
    """``buyer acme daily revenue cap $500.00/$500.00 (2 calls in progress)``."""
    text = (
        f"{kind} {account} {cap.period} {cap.metric} cap "
        f"{cap.show(taken, currency)}/{cap.show(cap.limit, currency)}"
    )
    if held:
        text += f" ({held} call{'s' if held != 1 else ''} in progress)"
    return text
