"""The inbound call, start to end: attribute, enrich, decide by the rules, act, record the CDR."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from callflow import contract
from callflow.agi import AgiError, AgiSession
from callflow.billing import BillableCall, BillingState, post
from callflow.call.answers import LiveAnswers
from callflow.call.dialing import DialContext, DialLog, dial_route
from callflow.call.ivr import answer_once, collect_zip, run_menu, with_zip
from callflow.call.outcome import call_end
from callflow.call.reconcile import Reconciler
from callflow.call.recording import measure_later, start_recording
from callflow.config import Config
from callflow.directory import Contact, contact_fields
from callflow.enrich import CallerInfo, enrich
from callflow.events import model as events
from callflow.rules import (
    Action,
    CallFacts,
    CollectZip,
    Counters,
    Engine,
    Hangup,
    Play,
    Reject,
    Route,
    RunIvr,
    Trace,
    Voicemail,
    describe,
)
from callflow.rules.facts import ZIP_KEY
from callflow.store import CdrStore
from callflow.store.records import (
    ANSWERED,
    FAILED,
    MESSAGE,
    REJECTED,
    UNKNOWN,
    VOICEMAIL,
    CallEnd,
    CallStart,
    DialAttempt,
)
from callflow.tracking import Attribution, NumberIndex

if TYPE_CHECKING:
    from callflow.events.hub import EventHub

log = structlog.get_logger("callflow.call")

MAX_ROUNDS = 10  # decide → IVR → decide … at most this many times per call
NO_RULE = "(no rule)"


@dataclass(frozen=True)
class Routing:
    """What a call is routed with: the configuration, its number index and its rules engine."""

    config: Config
    numbers: NumberIndex
    engine: Engine
    sticky_days: int  # the longest sticky window of any group (0: no sticky routing)

    @classmethod
    def build(cls, config: Config) -> Routing:
        """Index and compile a configuration for routing."""
        sticky = max((g.sticky.days for g in config.groups.values() if g.sticky), default=0)
        return cls(config, NumberIndex(config), Engine(config), sticky)


@dataclass
class CallContext:
    """What the inbound handler needs from the daemon."""

    routing: Routing  # the live routing snapshot (the daemon swaps it whole on reload)
    store: CdrStore
    counters: Counters
    node: str = "callflow"
    clock: Callable[[], float] = time.time
    reconciler: Reconciler | None = None  # finishes calls whose AGI session is lost
    directory: Mapping[str, Contact] = field(default_factory=dict)  # known callers by E.164
    events: EventHub | None = None
    billing: Billing | None = None
    live: LiveAnswers | None = None  # answered legs seen over AMI (``answered`` events at once)
    background: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass
class Billing:
    """Pay per call: the live caps/duplicates state; entries post through the CDR writer."""

    state: BillingState
    store: CdrStore


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
    contact = ctx.directory.get(caller.e164) if caller.e164 else None
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


def call_facts(start: CallStart, last: tuple[str, float] | None) -> CallFacts:
    """What the rules engine is told about a call when it starts."""
    return CallFacts(
        now=datetime.fromtimestamp(start.started_at, UTC),
        dnis=start.dnis,
        tracking_number=start.tracking_number,
        campaign=start.campaign or "",
        source=start.source,
        medium=start.medium,
        keyword=start.keyword,
        ani_e164=start.ani_e164,
        ani_raw=start.ani_raw or None,
        anonymous=start.ani_anonymous,
        country=start.country,
        area_code=start.area_code,
        state=start.state,
        city=start.city,
        repeat_caller=start.repeat_caller,
        last_answered_by=last[0] if last else None,
        last_answered_at=last[1] if last else None,
    )


class InboundCall:
    """One call being routed: decide (with IVR rounds), act, and remember what happened."""

    def __init__(
        self, session: AgiSession, ctx: CallContext, routing: Routing, start: CallStart
    ) -> None:
        """Hold the per-call state."""
        self.session = session
        self.ctx = ctx
        self.routing = routing
        self.start = start
        self.rounds: list[Trace] = []
        self.entered: list[str] = []  # IVR entries, "menu=digits"
        self.zip: str | None = None
        self.dials = DialLog()
        self.answered = [False]
        self.no_attempt = FAILED  # the disposition when nothing was dialled
        self.ended_in: str | None = None  # the disposition of a final action, whatever was dialled
        self.recording: str | None = None
        self.final_action: Action | None = None
        self.decided_at: float | None = None

    async def run(self, facts: CallFacts) -> None:
        """Ask the engine what to do until it is something other than collecting digits."""
        for _ in range(MAX_ROUNDS):
            decision = self.routing.engine.decide(facts, self.ctx.counters)
            self.rounds.append(decision.trace)
            action = decision.action
            if isinstance(action, RunIvr):
                digits = await run_menu(self.session, action.menu, self.answered)
                self.entered.append(f"{action.menu.name}={digits}")
                facts = facts.with_ivr(action.menu.name, digits)
            elif isinstance(action, CollectZip):
                entered = await collect_zip(
                    self.session, action.prompt, action.retries, self.answered
                )
                self.entered.append(f"{ZIP_KEY}={entered.digits}")
                self.zip = entered.digits if entered.valid else None
                facts = with_zip(facts, entered)
            else:
                self.final_action = action
                self.decided_at = self.ctx.clock()
                self._routed()
                await self.act(action)
                return
        log.warning("call.too_many_rounds", rounds=MAX_ROUNDS)

    async def act(self, action: Action, depth: int = 0) -> None:
        """Carry out one action (a route's fallback is carried out after the route fails)."""
        session = self.session
        if isinstance(action, Route):
            await self._route(action)
            if (
                self.dials.answered is None
                and not session.hung_up
                and action.fallback is not None
                and depth < 2
            ):
                await self.act(action.fallback, depth + 1)
        elif isinstance(action, Play):
            await answer_once(session, self.answered)
            await session.stream_file(action.sound)
            self.no_attempt = MESSAGE
            await session.hangup()
        elif isinstance(action, Voicemail):
            # The box name is validated by the rules file ([A-Za-z0-9_.@-]).
            await session.exec("VoiceMail", f"{action.box},u")
            status = await session.get_variable(contract.VAR_VMSTATUS)
            self.ended_in = VOICEMAIL if status in contract.VOICEMAIL_REACHED else FAILED
        elif isinstance(action, Reject):
            self.no_attempt = REJECTED
            await session.exec("Hangup", str(action.q850))
        elif isinstance(action, Hangup):
            self.no_attempt = FAILED if action.rule == NO_RULE else REJECTED
            await session.hangup()

    async def _route(self, route: Route) -> None:
        """Dial the route's plan (recording first when the campaign says so)."""
        ctx, campaign = self.ctx, self.start.campaign or ""
        config = self.routing.config
        record = campaign in config.campaigns and config.campaigns[campaign].record
        if record and self.recording is None and route.plan:
            if config.recordings.notice:
                await answer_once(self.session, self.answered)
                await self.session.stream_file(config.recordings.notice)
            self.recording = await start_recording(self.session, config.recordings,
                                                   self.start.uniqueid)  # fmt: skip
        hub = ctx.events
        watch = ctx.live is not None and hub is not None and hub.active
        # Attempts whose answer was told live; made only when answers are watched.
        announced: set[int] | None = set() if watch else None

        def on_attempt(attempt: DialAttempt) -> None:
            ctx.store.add_attempt(attempt)
            if hub is not None and hub.active:
                told = announced is not None and attempt.seq in announced
                _emit_attempt(hub, attempt, campaign, told=told)

        on_answer: Callable[[Mapping[str, Any]], None] | None = None
        if watch:

            def answered_live(leg: Mapping[str, Any]) -> None:
                if hub is not None and announced is not None:
                    announced.add(int(leg["seq"]))
                    hub.emit(events.answered_live(self.start.uniqueid, campaign,
                                                  float(leg["answered_at"]), leg))  # fmt: skip

            on_answer = answered_live

        dial = DialContext(
            self.start.uniqueid, campaign, ctx.counters, ctx.clock, on_attempt,
            billing=ctx.billing.state if ctx.billing else None, ani_e164=self.start.ani_e164,
            live=ctx.live if watch else None, on_answer=on_answer,
        )  # fmt: skip
        await dial_route(self.session, dial, route, self.dials)

    def _routed(self) -> None:
        """Tell subscribers the call's destination is decided (before it rings)."""
        hub = self.ctx.events
        if hub is None or self.decided_at is None:
            return
        if hub.metrics.enabled:  # per-call metrics only when scraped
            hub.metrics.decision_latency(self.decided_at - self.start.started_at)
        if hub.active:
            hub.emit(events.routed(self.start.uniqueid, self.start.campaign or "",
                                   self.decided_at, self.reason()))  # fmt: skip

    def reason(self) -> dict[str, object]:
        """Why the call went where it went: every decision's trace, and dial-time refusals.

        ``refused_at_dial`` is there only when some target was refused: the reports' partial
        index of calls with cap hits (``calls_refused``) keys on the word.
        """
        last = self.rounds[-1] if self.rounds else None
        reason: dict[str, object] = {
            "campaign": self.start.campaign,
            "tracking_number": self.start.tracking_number,
            "known_number": self.start.number_known,
            "rule": last.matched_rule if last else None,
            "action": describe(self.final_action),
            "ivr": self.entered,
            "rounds": [t.as_data() for t in self.rounds],
        }
        if self.dials.refused:
            reason["refused_at_dial"] = self.dials.refused
        return reason


def _emit_attempt(hub: EventHub, attempt: DialAttempt, campaign: str, *, told: bool) -> None:
    """Tell subscribers about one dial attempt (and its answer, unless ``told`` live already)."""
    if attempt.result == "ANSWER" and not told:
        hub.emit(events.answered(attempt, campaign))
    hub.emit(events.dialed(attempt, campaign))


class _Finished:
    """What recording a finished call needs: its rows, answered attempt and log line's facts."""

    def __init__(
        self,
        start: CallStart,
        end: CallEnd,
        answered: DialAttempt | None,
        ani: str | None,
        rule: object,
        attempts: int,
    ) -> None:
        """Keep what ``_record`` reads (a plain class: compiled, its __init__ is too)."""
        self.start = start
        self.end = end
        self.answered = answered
        self.ani = ani
        self.rule = rule
        self.attempts = attempts


async def handle_inbound(session: AgiSession, ctx: CallContext) -> None:
    """Route one inbound call: every outcome ends in a completed CDR row.

    The call's routing state (its decisions and their traces, its attempts, the reason) is let
    go before its row's commit is waited for: calls waiting for a commit are many at high rates,
    and each young object they hold is walked again by every garbage collection meanwhile.
    """
    finished = await _route_call(session, ctx)
    if finished is not None:
        await _record(ctx, finished)


async def _route_call(session: AgiSession, ctx: CallContext) -> _Finished | None:
    """Attribute, enrich, decide and act; None when the reconciler will finish the call."""
    routing = ctx.routing  # calls keep the rules they started with, whatever reloads
    config = routing.config
    started = ctx.clock()
    attribution = routing.numbers.lookup(dnis_of(session))
    header = session.header
    caller = enrich(header.callerid, header.calleridname, config.settings.default_country)
    window = config.settings.repeat_window_days * 86400
    e164 = caller.e164 or ""
    repeat = bool(e164) and await ctx.store.is_repeat_caller(e164, started - window)
    last = None
    if routing.sticky_days and e164:
        last = await ctx.store.last_answered(e164, started - routing.sticky_days * 86400)
    start = call_start(session, ctx, attribution, caller, started, repeat)
    ctx.store.start_call(start)
    hub = ctx.events
    if hub is not None:
        if hub.active:
            hub.emit(events.started(start))
        if hub.metrics.enabled:
            hub.metrics.call_started(start.campaign or "")
    call = InboundCall(session, ctx, routing, start)
    lost = False
    try:
        await call.run(call_facts(start, last))
        if call.dials.answered is None:  # after an answered Dial, DIALSTATUS=ANSWER says it
            await session.set_variable(contract.VAR_STATUS, contract.STATUS_DONE)
    except AgiError as exc:
        lost = not session.hung_up
        log.warning("call.agi_error", error=str(exc))
        if hub is not None:
            hub.metrics.agi_error(type(exc).__name__)
    hung_up, ended = session.hung_up, ctx.clock()  # before Asterisk's final HANGUP line
    session.release()  # Asterisk gets its channel back while the CDR end is built
    reason = call.reason()
    end = call_end(
        start.uniqueid, call.dials.attempts, hung_up, ended, reason,
        no_attempt=call.no_attempt, ended_in=call.ended_in,
        ivr_digits=";".join(call.entered) or None, recording_path=call.recording, zip=call.zip,
    )  # fmt: skip
    if lost and ctx.billing is not None:
        ctx.billing.state.release(start.uniqueid)
    if lost and ctx.reconciler is not None:
        ctx.reconciler.adopt(start.uniqueid)  # Asterisk's CDR will tell how it ended
        log.warning("call.adopted_by_reconciler")
        if hub is not None:
            hub.metrics.call_ended(start.campaign or "", UNKNOWN, 0.0, 0.0)
        return None
    if lost and end.disposition != ANSWERED:
        end = replace(end, disposition=UNKNOWN, hangup_by=None)
    await session.close()
    return _Finished(start, end, call.dials.answered, caller.e164 or caller.ani_raw,
                     reason["rule"], len(call.dials.attempts))  # fmt: skip


async def _record(ctx: CallContext, finished: _Finished) -> None:
    """Finish the call's row, bill it once committed, tell subscribers, log its line."""
    start, end = finished.start, finished.end
    await ctx.store.finish_call(end)
    if ctx.billing is not None and not ctx.billing.state.idle:
        await _bill(ctx.billing, start, end, finished.answered)
    _after(ctx, start, end)
    log.info(
        "call.end", dnis=start.dnis, campaign=start.campaign, ani=finished.ani, city=start.city,
        state=start.state, repeat=start.repeat_caller, rule=finished.rule,
        disposition=end.disposition, target=end.final_target, attempts=finished.attempts,
        ring=end.ring_seconds, talk=end.talk_seconds, hangup_by=end.hangup_by,
    )  # fmt: skip


async def _bill(
    billing: Billing, start: CallStart, end: CallEnd, attempt: DialAttempt | None
) -> None:
    """Assess the finished call for buyers and publishers and post it to the ledger."""
    answered = end.disposition == ANSWERED
    accepted = attempt.accepted_at if attempt is not None else None
    assessment = billing.state.bill(
        BillableCall(
            uniqueid=start.uniqueid, campaign=start.campaign,
            tracking_number=start.tracking_number, ani_e164=start.ani_e164,
            final_target=end.final_target if answered else None,
            talk_seconds=end.talk_seconds, answered=answered, started_at=start.started_at,
            ended_at=end.ended_at,
            accept_seconds=attempt.ended_at - accepted if attempt and accepted else None,
        )
    )  # fmt: skip
    if assessment.buyer is None and assessment.publisher is None:
        return
    try:
        await billing.store.transact(lambda conn: post(conn, assessment))
    except Exception:  # the CDR is safe; a ledger failure must not kill the call's task
        log.exception("billing.post_failed")


def _after(ctx: CallContext, start: CallStart, end: CallEnd) -> None:
    """What follows a finished call: sticky memory, recording size, events."""
    if end.disposition == ANSWERED and start.ani_e164 and end.final_target:
        ctx.store.note_answered(start.ani_e164, (end.final_target, end.answered_at or 0.0))
    if end.recording_path:
        task = asyncio.get_running_loop().create_task(
            measure_later(ctx.store, start.uniqueid, end.recording_path)
        )
        ctx.background.add(task)
        task.add_done_callback(ctx.background.discard)
    hub = ctx.events
    if hub is not None:
        if hub.active:
            hub.emit(events.ended(end, start.campaign or ""))
        if hub.metrics.enabled:
            hub.metrics.call_ended(start.campaign or "", end.disposition, end.ring_seconds,
                                   end.talk_seconds)  # fmt: skip
