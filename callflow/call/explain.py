"""`callflow rules explain`: the decision a call would get now, without placing it."""

from __future__ import annotations

import time
from pathlib import Path

from callflow.call.inbound import Routing, call_facts
from callflow.call.ivr import lookup_zip, with_zip
from callflow.config import Config
from callflow.enrich import enrich
from callflow.rules import CollectZip, Counters, RunIvr, explain
from callflow.store import CdrStore
from callflow.store.records import CallStart

HISTORY_DAYS = 32


async def live_counters(config: Config, db: Path | None) -> Counters:
    """Counters as the daemon has them: rebuilt from the CDR database's recent attempts."""
    counters = Counters(config)
    if db is not None:
        store = await CdrStore.open(db)
        try:
            counters.load(await store.attempts_since(time.time() - HISTORY_DAYS * 86400))
        finally:
            await store.close()
    return counters


async def explain_call(
    config: Config, db: Path | None, *, dnis: str, ani: str, digits: list[str], at: float | None
) -> str:
    """Explain each decision round of a would-be call; DIGITS answer its prompts in order."""
    routing = Routing.build(config)
    counters = await live_counters(config, db)
    when = at if at is not None else time.time()
    attribution = routing.numbers.lookup(dnis)
    caller = enrich(ani, None, config.settings.default_country)
    start = CallStart(
        uniqueid="explain", linkedid="explain", channel="", started_at=when,
        ani_raw=caller.ani_raw or "", ani_e164=caller.e164, ani_valid=caller.valid,
        ani_anonymous=caller.anonymous, country=caller.country, area_code=caller.area_code,
        state=caller.state, region=caller.region, city=caller.city, timezone=caller.timezone,
        dnis=attribution.dnis, tracking_number=attribution.tracking_number,
        number_known=attribution.known, campaign=attribution.campaign,
        source=attribution.source, medium=attribution.medium, keyword=attribution.keyword,
        ad=attribution.ad, node="explain",
    )  # fmt: skip
    facts = call_facts(start, None)
    answers = list(digits)
    parts = []
    for _ in range(10):
        parts.append(explain(routing.engine, facts, counters))
        decision = routing.engine.decide(facts, counters)
        action = decision.action
        if isinstance(action, RunIvr) and answers:
            entered = answers.pop(0)
            parts.append(f"-- caller enters {entered!r} at menu {action.menu.name}")
            facts = facts.with_ivr(action.menu.name, entered)
        elif isinstance(action, CollectZip) and answers:
            entered = answers.pop(0)
            parts.append(f"-- caller enters ZIP {entered!r}")
            facts = with_zip(facts, lookup_zip(entered))
        else:
            break
    return "\n\n".join(parts)
