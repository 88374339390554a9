"""The inbound call, start to end: attribute, enrich, record, dial with failover, finish the CDR."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import structlog

from callflow import contract
from callflow.agi import AgiError, AgiSession
from callflow.call.reconcile import Reconciler
from callflow.config import Config, Target
from callflow.directory import Contact, contact_fields
from callflow.enrich import CallerInfo, enrich
from callflow.store import CdrStore
from callflow.store.records import (
    ABANDONED,
    ANSWERED,
    BUSY,
    FAILED,
    NO_ANSWER,
    UNKNOWN,
    CallEnd,
    CallStart,
    DialAttempt,
)
from callflow.tracking import Attribution, NumberIndex

log = structlog.get_logger("callflow.call")

# DIALSTATUS values after which the next target is tried.
FAILOVER = frozenset({"BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL"})
_DISPOSITION = {"BUSY": BUSY, "NOANSWER": NO_ANSWER, "CANCEL": ABANDONED, "ANSWER": ANSWERED}


@dataclass(frozen=True)
class Routing:
    """What a call is routed with: the configuration and its tracking-number index."""

    config: Config
    numbers: NumberIndex

    @classmethod
    def build(cls, config: Config) -> Routing:
        """Index a configuration for routing."""
        return cls(config, NumberIndex(config))


@dataclass
class CallContext:
    """What the inbound handler needs from the daemon."""

    routing: Callable[[], Routing]  # the live routing snapshot (swapped on reload)
    store: CdrStore
    node: str = "callflow"
    clock: Callable[[], float] = time.time
    reconciler: Reconciler | None = None  # finishes calls whose AGI session is lost
    directory: Callable[[], Mapping[str, Contact]] = dict  # known callers by E.164


def dnis_of(session: AgiSession) -> str:
    """The dialled tracking number: the dialplan's ?dnis=, else Asterisk's dnid or extension."""
    header = session.header
    return header.query.get(contract.QUERY_DNIS) or header.dnid or header.extension or ""


def call_start(
    session: AgiSession,
    ctx: CallContext,
    attribution: Attribution,
    caller: CallerInfo,
    started_at: float,
    repeat: bool,
) -> CallStart:
    """The CDR row written when routing starts."""
    header = session.header
    uniqueid = header.uniqueid or f"{ctx.node}-{started_at:.6f}"
    contact = ctx.directory().get(caller.e164) if caller.e164 else None
    return CallStart(
        **contact_fields(contact),
        uniqueid=uniqueid,
        linkedid=header.query.get(contract.QUERY_LINKEDID) or uniqueid,
        channel=header.channel or "",
        started_at=started_at,
        ani_raw=caller.ani_raw or "",
        ani_e164=caller.e164,
        caller_name=caller.caller_name,
        ani_valid=caller.valid,
        ani_anonymous=caller.anonymous,
        country=caller.country,
        area_code=caller.area_code,
        state=caller.state,
        region=caller.region,
        city=caller.city,
        timezone=caller.timezone,
        dnis=attribution.dnis,
        tracking_number=attribution.tracking_number,
        number_known=attribution.known,
        campaign=attribution.campaign,
        source=attribution.source,
        medium=attribution.medium,
        keyword=attribution.keyword,
        ad=attribution.ad,
        repeat_caller=repeat,
        node=ctx.node,
    )


async def dial(
    session: AgiSession,
    uniqueid: str,
    seq: int,
    target: Target,
    ring_timeout: int,
    clock: Callable[[], float],
    campaign: str,
) -> DialAttempt:
    """Dial one target through Asterisk and read back how it went (three AGI commands)."""
    # Names are validated ([A-Za-z0-9_.-]), so they are safe inside MSet's comma list.
    await session.exec("MSet", f"{contract.VAR_CAMPAIGN}={campaign}",
                       f"{contract.VAR_TARGET}={target.name}")  # fmt: skip
    started = clock()
    await session.exec("Dial", target.dial_string, str(ring_timeout), f"U({contract.ANSWER_GOSUB})")
    ended = clock()
    outcome = await session.get_full_variable(contract.DIAL_OUTCOME) or ""
    status, cause, stamp = [*outcome.split(contract.DIAL_OUTCOME_SEP), "", "", ""][:3]
    status = status or "UNKNOWN"
    answered_at = None
    if status == "ANSWER":
        answered_at = _float(stamp) or started
        answered_at = min(max(answered_at, started), ended)
    return DialAttempt(
        uniqueid=uniqueid,
        seq=seq,
        target=target.name,
        destination=target.dial_string,
        started_at=started,
        answered_at=answered_at,
        ended_at=ended,
        result=status,
        ring_seconds=round((answered_at or ended) - started, 3),
        talk_seconds=round(ended - answered_at, 3) if answered_at else 0.0,
        hangup_cause=int(cause) if cause and cause.isdigit() else None,
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def call_end(
    uniqueid: str,
    attempts: list[DialAttempt],
    caller_hung_up: bool,
    ended_at: float,
    reason: dict[str, object],
) -> CallEnd:
    """The CDR's final fields, from the dial attempts."""
    answered = next((a for a in attempts if a.result == "ANSWER"), None)
    last = attempts[-1] if attempts else None
    if answered is not None:
        disposition, hangup_by = ANSWERED, "caller" if caller_hung_up else "agent"
    elif last is None:
        disposition, hangup_by = (ABANDONED if caller_hung_up else FAILED), None
    else:
        disposition = _DISPOSITION.get(last.result, FAILED)
        if caller_hung_up and disposition != ABANDONED:
            disposition = ABANDONED
        hangup_by = "caller" if disposition == ABANDONED else "system"
    final = answered or last
    reason = {**reason, "attempts": [f"{a.target}:{a.result}" for a in attempts]}
    return CallEnd(
        uniqueid=uniqueid,
        answered_at=answered.answered_at if answered else None,
        ended_at=ended_at,
        disposition=disposition,
        final_target=final.target if final else None,
        final_destination=final.destination if final else None,
        ring_seconds=round(sum(a.ring_seconds for a in attempts), 3),
        talk_seconds=answered.talk_seconds if answered else 0.0,
        hangup_by=hangup_by,
        ivr_digits=None,
        route_reason=json.dumps(reason, separators=(",", ":")),
        dialstatus=last.result if last else None,
    )


async def handle_inbound(session: AgiSession, ctx: CallContext) -> None:
    """Route one inbound call: every outcome ends in a completed CDR row."""
    routing = ctx.routing()
    config = routing.config
    started = ctx.clock()
    attribution = routing.numbers.lookup(dnis_of(session))
    caller = enrich(
        session.header.callerid, session.header.calleridname, config.settings.default_country
    )
    window = config.settings.repeat_window_days * 86400
    repeat = bool(caller.e164) and await ctx.store.is_repeat_caller(
        caller.e164 or "", started - window
    )
    start = call_start(session, ctx, attribution, caller, started, repeat)
    ctx.store.start_call(start)
    campaign = config.campaigns[attribution.campaign]
    reason: dict[str, object] = {
        "campaign": campaign.name,
        "tracking_number": attribution.tracking_number,
        "known_number": attribution.known,
        "route": list(campaign.route),
        "strategy": "ordered list; next target on BUSY/NOANSWER/CONGESTION/CHANUNAVAIL",
    }
    attempts: list[DialAttempt] = []
    lost = False
    try:
        for seq, name in enumerate(campaign.route, 1):
            target = config.targets[name]
            timeout = target.ring_timeout or config.settings.ring_timeout
            attempt = await dial(
                session, start.uniqueid, seq, target, timeout, ctx.clock, campaign.name
            )
            attempts.append(attempt)
            ctx.store.add_attempt(attempt)
            log.debug("call.attempt", seq=seq, target=name, result=attempt.result,
                      ring=attempt.ring_seconds, talk=attempt.talk_seconds)  # fmt: skip
            if attempt.result not in FAILOVER or session.hung_up:
                break
        await session.set_variable(contract.VAR_STATUS, contract.STATUS_DONE)
    except AgiError as exc:
        lost = not session.hung_up
        log.warning("call.agi_error", error=str(exc))
    end = call_end(start.uniqueid, attempts, session.hung_up, ctx.clock(), reason)
    if lost and ctx.reconciler is not None:
        ctx.reconciler.adopt(start.uniqueid)  # Asterisk's CDR will tell how it ended
        log.warning("call.adopted_by_reconciler")
        return
    if lost and end.disposition != ANSWERED:
        end = _unknown(end)
    await ctx.store.finish_call(end)
    log.info(
        "call.end", dnis=attribution.dnis, campaign=campaign.name,
        ani=caller.e164 or caller.ani_raw, city=caller.city, state=caller.state, repeat=repeat,
        disposition=end.disposition, target=end.final_target, attempts=len(attempts),
        ring=end.ring_seconds, talk=end.talk_seconds, hangup_by=end.hangup_by,
    )  # fmt: skip


def _unknown(end: CallEnd) -> CallEnd:
    """The AGI session was lost mid-call: what happened next is not known here."""
    return replace(end, disposition=UNKNOWN, hangup_by=None)
