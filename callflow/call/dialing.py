"""Dialling a route's plan through Asterisk: caps checked at dial time, failover, attempts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callflow import contract
from callflow.agi import AgiSession
from callflow.billing import BillingState
from callflow.call.answers import LiveAnswers, answering_target, dialed_target
from callflow.config import Target
from callflow.rules import Counters, Route, Step
from callflow.store.records import DialAttempt

# DIALSTATUS → the failover condition it meets (Route.failover_on).
FAILOVER_KIND = {
    "BUSY": "busy",
    "NOANSWER": "noanswer",
    "CHANUNAVAIL": "unavailable",
    "CONGESTION": "unavailable",
}
ANSWERED_ELSEWHERE = "ELSEWHERE"  # a simultaneous leg that lost to the one that answered


@dataclass(init=False)
class DialLog:
    """What dialling a route did: attempts, and targets refused at dial time (and why)."""

    attempts: list[DialAttempt] = field(init=False)
    refused: list[str] = field(init=False)

    def __init__(self) -> None:
        """Start empty (written out for mypyc: scripts/compiled-modules)."""
        self.attempts = []
        self.refused = []

    @property
    def answered(self) -> DialAttempt | None:
        """The attempt that was answered, if any."""
        return next((a for a in self.attempts if a.result == "ANSWER"), None)


@dataclass(frozen=True, init=False)
class DialContext:
    """What dialling needs besides the AGI session."""

    uniqueid: str
    campaign: str
    counters: Counters
    clock: Callable[[], float]
    on_attempt: Callable[[DialAttempt], None]
    billing: BillingState | None = None  # buyers' money caps and duplicates
    ani_e164: str | None = None
    live: LiveAnswers | None = None  # answered legs seen over AMI, before the Dial ends
    on_answer: Callable[[Mapping[str, Any]], None] | None = None  # told such a leg's fields

    def __init__(
        self,
        uniqueid: str,
        campaign: str,
        counters: Counters,
        clock: Callable[[], float],
        on_attempt: Callable[[DialAttempt], None],
        billing: BillingState | None = None,
        ani_e164: str | None = None,
        live: LiveAnswers | None = None,
        on_answer: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "uniqueid", uniqueid)
        object.__setattr__(self, "campaign", campaign)
        object.__setattr__(self, "counters", counters)
        object.__setattr__(self, "clock", clock)
        object.__setattr__(self, "on_attempt", on_attempt)
        object.__setattr__(self, "billing", billing)
        object.__setattr__(self, "ani_e164", ani_e164)
        object.__setattr__(self, "live", live)
        object.__setattr__(self, "on_answer", on_answer)

    def acquire(self, target: Target, group: str, now: float) -> str | None:
        """Take a target for this call, or say why not (no await: exact under concurrency)."""
        billing = self.billing
        if billing is not None:
            why = billing.refusal(target.name, now, ani_e164=self.ani_e164,
                                  campaign=self.campaign)  # fmt: skip
            if why is not None:
                return why
        why = self.counters.try_acquire(target, group, now)
        if why is None and billing is not None:
            billing.reserve(target.name, self.uniqueid, now, ani_e164=self.ani_e164,
                            campaign=self.campaign)  # fmt: skip
        return why


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


async def dial_step(
    session: AgiSession, ctx: DialContext, targets: Step, group: str, first_seq: int
) -> list[DialAttempt]:
    """Ring one step's targets together (one Dial) and read back how each leg went."""
    if len(targets) == 1:  # the usual step: one target
        timeout = targets[0].ring_timeout or 20
        names, destinations = targets[0].name, targets[0].dial_string
    else:
        timeout = max([t.ring_timeout or 0 for t in targets]) or 20
        names = "&".join([t.name for t in targets])
        destinations = "&".join([t.dial_string for t in targets])
    billing = ctx.billing
    accept = billing is not None and any([billing.needs_accept(t.name) for t in targets])
    gosub = contract.ACCEPT_GOSUB if accept else contract.ANSWER_GOSUB
    # Campaign and target names are validated ([A-Za-z0-9_.-]): safe as Gosub arguments.
    dialing = f"{contract.DIALING_GOSUB}^s^1({ctx.campaign}^{names})"
    started = ctx.clock()
    live = ctx.live
    if live is not None and ctx.on_answer is not None:
        on_answer = ctx.on_answer

        def answered(channel: str, dialed: str | None, at: float) -> None:
            target = answering_target(targets, channel, dialed)
            if target is not None:
                seq = first_seq + targets.index(target)
                on_answer({"uniqueid": ctx.uniqueid, "seq": seq, "target": target.name,
                           "destination": target.dial_string, "group": group,
                           "started_at": started, "answered_at": at,
                           "ring_seconds": round(at - started, 3)})  # fmt: skip

        live.watch(ctx.uniqueid, answered)
    try:
        await session.exec("Dial", destinations, str(timeout), f"U({gosub})B({dialing})")
    finally:
        if live is not None:
            live.unwatch(ctx.uniqueid)
    ended = ctx.clock()
    outcome = await session.get_full_variable(contract.DIAL_OUTCOME) or ""
    parts = [*outcome.split(contract.DIAL_OUTCOME_SEP), "", "", "", "", ""]
    status, cause, stamp, peer, accepted = parts[:5]
    status = status or "UNKNOWN"
    answered_at = None
    if status == "ANSWER":
        answered_at = min(max(_float(stamp) or started, started), ended)
    winner = dialed_target(targets, peer) if status == "ANSWER" else None
    attempts = []
    for n, target in enumerate(targets):
        won = target is winner
        result = status if winner is None or won else ANSWERED_ELSEWHERE
        attempts.append(
            DialAttempt(
                uniqueid=ctx.uniqueid,
                seq=first_seq + n,
                target=target.name,
                destination=target.dial_string,
                started_at=started,
                answered_at=answered_at if won else None,
                ended_at=ended,
                result=result,
                ring_seconds=round((answered_at or ended) - started, 3),  # losers: until the answer
                talk_seconds=round(ended - answered_at, 3) if won and answered_at else 0.0,
                hangup_cause=int(cause) if cause.isdigit() else None,
                group=group,
                accepted_at=_float(accepted) if won and accept else None,
            )
        )
    return attempts


async def dial_route(session: AgiSession, ctx: DialContext, route: Route, log: DialLog) -> None:
    """Dial the plan step by step until answered, hung up, out of attempts or not failover."""
    steps_dialled = 0
    for step in route.plan:
        if steps_dialled >= route.max_attempts or session.hung_up:
            return
        now = ctx.clock()
        acquired: list[Target] = []
        for target in step:
            refusal = ctx.acquire(target, route.group, now)
            if refusal is None:
                acquired.append(target)
            else:
                log.refused.append(f"{target.name}: {refusal}")
        if not acquired:
            continue
        steps_dialled += 1
        attempts: list[DialAttempt] = []
        try:
            attempts = await dial_step(
                session, ctx, tuple(acquired), route.group, len(log.attempts) + 1
            )
        finally:
            done = ctx.clock()
            for target in acquired:
                mine = next((a for a in attempts if a.target == target.name), None)
                answered = mine is not None and mine.result == "ANSWER"
                ctx.counters.release(
                    target, route.group, answered=answered,
                    talk_seconds=mine.talk_seconds if mine else 0.0, now=done,
                )  # fmt: skip
                if not answered and ctx.billing is not None:
                    ctx.billing.release(ctx.uniqueid, target.name)
        for attempt in attempts:
            log.attempts.append(attempt)
            ctx.on_attempt(attempt)
        status = attempts[0].result if len(attempts) == 1 else _step_status(attempts)
        if FAILOVER_KIND.get(status) not in route.failover_on:
            return


def _step_status(attempts: list[DialAttempt]) -> str:
    """The DIALSTATUS of a simultaneous step (ANSWER if any leg answered)."""
    if any(a.result == "ANSWER" for a in attempts):
        return "ANSWER"
    return attempts[0].result
