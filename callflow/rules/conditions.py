"""A rule's conditions, compiled into checks that say why a call does not match."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from callflow.config import Conditions, to_e164
from callflow.rules.callers import CallerList
from callflow.rules.facts import CallFacts
from callflow.rules.schedule import Schedule

__all__ = ["INDEXED", "Check", "Context", "compile_conditions", "fact_value"]


class Context:
    """Per-decision values computed at most once (the DNIS in E.164, the time)."""

    def __init__(self, facts: CallFacts, country: str) -> None:
        """Remember the facts; derived values are computed on first use."""
        self.facts = facts
        self.now = facts.now.timestamp()
        self._country = country
        self._dnis: str | None = None
        self._dnis_done = False

    @property
    def dnis_e164(self) -> str | None:
        """Return the DNIS in E.164, or None if it is not a number."""
        if not self._dnis_done:
            self._dnis = to_e164(self.facts.dnis, self._country) if self.facts.dnis else None
            self._dnis_done = True
        return self._dnis


#: A compiled condition: None when the call matches, else the reason it does not.
Check = Callable[[Context], str | None]

_GETTERS: dict[str, Callable[[Context], str | None]] = {
    "tracking_number": lambda c: c.facts.tracking_number,
    "dnis": lambda c: c.dnis_e164,
    "campaign": lambda c: c.facts.campaign,
    "zip": lambda c: c.facts.zip,
    "area_code": lambda c: c.facts.area_code,
    "state": lambda c: c.facts.state.upper() if c.facts.state else None,
    "country": lambda c: c.facts.country.upper() if c.facts.country else None,
    "source": lambda c: c.facts.source,
    "medium": lambda c: c.facts.medium,
    "keyword": lambda c: c.facts.keyword,
}
#: Conditions that can index rules, most selective first.
INDEXED = tuple(_GETTERS)
_LABELS = {"tracking_number": "tracking number", "zip": "ZIP", "area_code": "area code"}


def fact_value(kind: str, ctx: Context) -> str | None:
    """Return the value of an indexable fact."""
    return _GETTERS[kind](ctx)


def _one_of(kind: str, values: Sequence[str]) -> Check:
    """Check that a fact is one of the values."""
    allowed = frozenset(values)
    get = _GETTERS[kind]
    label = _LABELS.get(kind, kind)
    listed = ", ".join(values)

    def check(ctx: Context) -> str | None:
        value = get(ctx)
        if value in allowed:
            return None
        return f"{label} {value if value is not None else '(unknown)'} not in [{listed}]"

    return check


def _ani_prefix(prefixes: Sequence[str]) -> Check:
    """Check that the caller's number starts with one of the prefixes."""
    wanted = tuple(prefixes)

    def check(ctx: Context) -> str | None:
        ani = ctx.facts.ani_e164
        if ani is None:
            return "no caller number"
        if ani.startswith(wanted):
            return None
        return f"caller {ani} does not start with {' or '.join(wanted)}"

    return check


def _ivr(menu: str, choices: Sequence[str]) -> Check:
    """Check the digits entered at a menu."""
    allowed = frozenset(choices)
    listed = ", ".join(choices)

    def check(ctx: Context) -> str | None:
        digits = ctx.facts.ivr.get(menu)
        if digits is None:
            return f"menu {menu} not run yet"
        return None if digits in allowed else f"menu {menu}: {digits!r} not in [{listed}]"

    return check


def _hours(schedule: Schedule) -> Check:
    """Check that the call is within the hours."""

    def check(ctx: Context) -> str | None:
        closed = schedule.closed_reason(ctx.facts.now)
        return None if closed is None else f"outside the rule's hours: {closed}"

    return check


def _flag(name: str, want: bool, get: Callable[[CallFacts], bool]) -> Check:
    """Check a yes/no fact."""
    reason = f"{'not ' if want else ''}{name}"

    def check(ctx: Context) -> str | None:
        return None if get(ctx.facts) == want else reason

    return check


def _in_lists(lists: Sequence[CallerList]) -> Check:
    """Check that the caller is in one of the lists."""
    names = ", ".join(lst.name for lst in lists)

    def check(ctx: Context) -> str | None:
        ani = ctx.facts.ani_e164
        if ani is None:
            return f"no caller number (lists {names})"
        if any(lst.find(ani, ctx.now) for lst in lists):
            return None
        return f"caller {ani} not in list {names}"

    return check


def _not_in_lists(lists: Sequence[CallerList]) -> Check:
    """Check that the caller is in none of the lists."""

    def check(ctx: Context) -> str | None:
        for lst in lists:
            entry = lst.find(ctx.facts.ani_e164, ctx.now)
            if entry is not None:
                return f"caller {ctx.facts.ani_e164} is in list {lst.name} ({entry})"
        return None

    return check


@dataclass(frozen=True, slots=True)
class Compiled:
    """A rule's checks in evaluation order, and the key it can be indexed by."""

    checks: tuple[Check, ...]
    index: tuple[str, frozenset[str]] | None


def compile_conditions(
    when: Conditions, lists: Mapping[str, CallerList], default_tz: str
) -> Compiled:
    """Compile validated conditions (cheap set lookups first, hours and lists last)."""
    checks: list[Check] = []
    index: tuple[str, frozenset[str]] | None = None
    for kind in INDEXED:
        values = getattr(when, kind)
        if values is not None:
            checks.append(_one_of(kind, values))
            if index is None:
                index = (kind, frozenset(values))
    if when.ani_prefix is not None:
        checks.append(_ani_prefix(when.ani_prefix))
    for menu, choices in (when.ivr or {}).items():
        checks.append(_ivr(menu, choices))
    if when.repeat_caller is not None:
        checks.append(_flag("a repeat caller", when.repeat_caller, lambda f: f.repeat_caller))
    if when.anonymous is not None:
        checks.append(_flag("anonymous", when.anonymous, lambda f: f.anonymous))
    if when.hours is not None or when.closed_dates:
        tz = when.timezone or default_tz
        checks.append(_hours(Schedule.build(when.hours, when.closed_dates, tz)))
    if when.in_list is not None:
        checks.append(_in_lists([lists[name] for name in when.in_list]))
    if when.not_in_list is not None:
        checks.append(_not_in_lists([lists[name] for name in when.not_in_list]))
    return Compiled(tuple(checks), index)
