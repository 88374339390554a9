"""The rules engine: rules, first match wins, then the group's strategy over eligible targets."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC

from callflow.config import (
    CAMPAIGN_GROUP_PREFIX,
    FAILOVER_CAUSES,
    ActionSpec,
    Config,
    Group,
    Rule,
)
from callflow.rules.actions import (
    Action,
    CollectZip,
    Decision,
    Hangup,
    Play,
    Reject,
    Route,
    RunIvr,
    Voicemail,
    describe,
)
from callflow.rules.callers import CallerList
from callflow.rules.conditions import Check, Context, compile_conditions, fact_value
from callflow.rules.counters import Counters
from callflow.rules.facts import ZIP_KEY, CallFacts
from callflow.rules.strategies import STRATEGY_ORDER, Member, Situation
from callflow.rules.trace import TraceBuilder

__all__ = ["Engine", "explain"]

_MAX_DEPTH = 8  # nested fallbacks and IVR branches followed in one decision
_FAILOVER_DEFAULT = frozenset(FAILOVER_CAUSES)
_STEP_LABELS = tuple(f"step {i}" for i in range(64))  # the trace's "step N", built once


@dataclass(frozen=True, slots=True)
class _Rule:
    """A compiled rule."""

    position: int
    name: str
    spec: Rule
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    """A compiled group."""

    name: str
    strategy: str
    sticky_days: int | None
    members: tuple[Member, ...]
    heading: str  # the trace's note naming the group and its strategy


def _compile_group(group: Group, config: Config) -> _Group:
    """Resolve a group's members to targets with their effective priority and weight."""
    members = []
    for i, member in enumerate(group.targets):
        target = config.targets[member.target]
        priority = member.priority if member.priority is not None else target.priority
        weight = member.weight if member.weight is not None else target.weight
        members.append(Member(target, priority, weight, i))
    sticky = group.sticky.days if group.sticky is not None else None
    heading = f"group {group.name}: {group.strategy}" + (f", sticky {sticky} d" if sticky else "")
    return _Group(group.name, group.strategy, sticky, tuple(members), heading)


class Engine:
    """Decides what to do with a call, from a validated configuration compiled once."""

    def __init__(self, config: Config, *, rng: random.Random | None = None) -> None:
        """Compile the rules, lists and groups, and index the rules by their cheapest keys."""
        self.config = config
        self._rng = rng if rng is not None else random.Random()
        self._country = config.settings.default_country
        tz = config.settings.timezone
        self._lists = {n: CallerList(n, e, tz) for n, e in config.lists.items()}
        self._rules: list[_Rule] = []
        self._index: dict[str, dict[str, list[int]]] = {}
        self._unindexed: list[int] = []
        for i, rule in enumerate(config.rules):
            compiled = compile_conditions(rule.when, self._lists, tz)
            self._rules.append(_Rule(i, config.rule_name(i), rule, compiled.checks))
            if compiled.index is None:
                self._unindexed.append(i)
                continue
            kind, values = compiled.index
            table = self._index.setdefault(kind, {})
            for value in values:
                table.setdefault(value, []).append(i)
        self._groups = {n: _compile_group(config.group(n), config) for n in config.group_names()}

    # --- rules ---

    def _candidates(self, ctx: Context, full: bool) -> list[int]:
        """Return, in order, the rules that may match (the index rules out the others)."""
        if full or not self._index:
            return list(range(len(self._rules)))
        found = list(self._unindexed)
        for kind, table in self._index.items():
            value = fact_value(kind, ctx)
            if value is not None:
                found.extend(table.get(value, ()))
        found.sort()
        return found

    def decide(self, facts: CallFacts, counters: Counters, *, full_trace: bool = False) -> Decision:
        """Return the action for a call and its trace; reads the counters, never reserves."""
        if facts.now.tzinfo is None:
            facts = replace(facts, now=facts.now.replace(tzinfo=UTC))
        ctx = Context(facts, self._country)
        trace = TraceBuilder()
        candidates = self._candidates(ctx, full_trace)
        skipped = len(self._rules) - len(candidates)
        if skipped:
            trace.note(f"{skipped} of {len(self._rules)} rules ruled out by their index key")
        for position in candidates:
            rule = self._rules[position]
            reason = next((r for r in (check(ctx) for check in rule.checks) if r), None)
            if reason is not None:
                trace.rule(rule.name, False, reason)
                continue
            spec: ActionSpec = rule.spec
            if rule.spec.ivr is not None and rule.spec.ivr in facts.ivr:
                branch, why = self._ivr_branch(rule.spec.ivr, facts.ivr[rule.spec.ivr])
                trace.rule(rule.name, branch is not None, why)
                if branch is None:
                    continue
                spec = branch
            elif rule.spec.collect_zip is not None and (facts.zip or ZIP_KEY in facts.ivr):
                trace.rule(rule.name, False, f"ZIP already {'known' if facts.zip else 'asked'}")
                continue
            else:
                trace.rule(rule.name, True)
            return Decision(self._act(rule.name, spec, ctx, counters, trace, 0), trace.build())
        return Decision(self._default(ctx, counters, trace), trace.build())

    def _ivr_branch(self, menu_name: str, digits: str) -> tuple[ActionSpec | None, str]:
        """Return the branch action of a menu already run (None: matching goes on), and why."""
        menu = self.config.menus[menu_name]
        if menu.accepts(digits):
            return None, f"menu {menu_name} answered {digits!r}; matching goes on"
        what, branch = ("no input", menu.timeout) if not digits else ("invalid", menu.invalid)
        if branch is None:
            return None, f"menu {menu_name}: {what} after the retries; matching goes on"
        return branch, f"menu {menu_name}: {what} ({digits!r}): the {branch.kind} branch"

    def _default(self, ctx: Context, counters: Counters, trace: TraceBuilder) -> Action:
        """Route to the campaign's ``route`` list when no rule matched (else hang up)."""
        campaign = self.config.campaigns.get(ctx.facts.campaign)
        if campaign is None or not campaign.route:
            trace.note(f"no rule matched; campaign {ctx.facts.campaign} has no route: hang up")
            return Hangup("(no rule)")
        group = CAMPAIGN_GROUP_PREFIX + campaign.name
        trace.note(f"no rule matched: the route of campaign {campaign.name}")
        return self._route(group, group, None, None, None, ctx, counters, trace, 0)

    # --- actions ---

    def _act(
        self,
        rule: str,
        spec: ActionSpec,
        ctx: Context,
        counters: Counters,
        trace: TraceBuilder,
        depth: int,
    ) -> Action:
        """Turn an action of the file into the engine's action (routes get their plan)."""
        if depth > _MAX_DEPTH:
            trace.note("fallbacks nested too deep: hang up")
            return Hangup(rule)
        if spec.route is not None:
            return self._route(
                rule, spec.route, spec.max_attempts, spec.failover_on, spec.fallback, ctx,
                counters, trace, depth,
            )  # fmt: skip
        if spec.ivr is not None:
            return RunIvr(rule, self.config.menus[spec.ivr])
        if spec.collect_zip is not None:
            return CollectZip(rule, spec.collect_zip.prompt, spec.collect_zip.retries)
        if spec.play is not None:
            return Play(rule, spec.play)
        if spec.voicemail is not None:
            return Voicemail(rule, spec.voicemail)
        if spec.reject is not None:
            return Reject(rule, spec.reject)
        return Hangup(rule)

    def _route(
        self,
        rule: str,
        group_name: str,
        max_attempts: int | None,
        failover_on: tuple[str, ...] | None,
        fallback: ActionSpec | None,
        ctx: Context,
        counters: Counters,
        trace: TraceBuilder,
        depth: int,
    ) -> Route:
        """Plan a route: eligible targets in the strategy's order; the rest skipped with why."""
        group = self._groups[group_name]
        trace.note(group.heading)
        eligible: list[Member] = []
        skipped: list[tuple[Member, str]] = []
        refused = counters.group_refusal(group.name, ctx.now)
        for member in group.members:
            reason = refused or counters.target_refusal(member.target, ctx.now)
            if reason is None:
                eligible.append(member)
            else:
                skipped.append((member, reason))
        situation = Situation(
            group.name, len(group.members), ctx.facts, counters, ctx.now, self._rng
        )
        steps = STRATEGY_ORDER[group.strategy](eligible, situation) if eligible else []
        steps, first = self._sticky(group, steps, ctx, trace)
        for i, step in enumerate(steps, 1):
            label = _STEP_LABELS[i] if i < len(_STEP_LABELS) else f"step {i}"
            for member in step:
                reason = label + " (sticky)" if member is first else label
                trace.target(group.name, member.target.name, True, reason)
        for member, reason in skipped:
            trace.target(group.name, member.target.name, False, reason)
        fallback_action = None
        if fallback is not None:
            trace.note(f"fallback if no step answers: {fallback.kind}")
            fallback_action = self._act(rule, fallback, ctx, counters, trace, depth + 1)
        return Route(
            rule=rule,
            group=group.name,
            plan=tuple([tuple([m.target for m in step]) for step in steps]),
            max_attempts=max_attempts or len(group.members),
            failover_on=frozenset(failover_on) if failover_on else _FAILOVER_DEFAULT,
            fallback=fallback_action,
        )

    @staticmethod
    def _sticky(
        group: _Group, steps: list[list[Member]], ctx: Context, trace: TraceBuilder
    ) -> tuple[list[list[Member]], Member | None]:
        """Put the target that answered a repeat caller last first, alone, if still eligible."""
        facts = ctx.facts
        if group.sticky_days is None or not facts.last_answered_by:
            return steps, None
        name = facts.last_answered_by
        age = ctx.now - facts.last_answered_at if facts.last_answered_at is not None else None
        if age is None or age > group.sticky_days * 86400:
            when = "at an unknown time" if age is None else f"{age / 86400:.1f} d ago"
            trace.note(
                f"sticky: {name} answered this caller {when}, not within {group.sticky_days} d"
            )
            return steps, None
        found = next((m for step in steps for m in step if m.target.name == name), None)
        if found is None:
            trace.note(f"sticky: {name} answered this caller last but is not eligible here")
            return steps, None
        trace.note(f"sticky: {name} answered this caller {age / 86400:.1f} d ago: first")
        rest = [[m for m in step if m is not found] for step in steps]
        return [[found], *(step for step in rest if step)], found


def explain(engine: Engine, facts: CallFacts, counters: Counters) -> str:
    """Dry run for ``callflow rules explain``: the full trace and the decision; reserves nothing."""
    decision = engine.decide(facts, counters, full_trace=True)
    caller = facts.ani_e164 or facts.ani_raw or "anonymous"
    where = ", ".join(x for x in (facts.city, facts.state, facts.country) if x)
    header = (
        f"call to {facts.dnis} (campaign {facts.campaign}) from {caller}"
        f"{f' ({where})' if where else ''} at {facts.now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    lines = [header, decision.trace.render(), f"=> {describe(decision.action)}"]
    return "\n".join(line for line in lines if line)
