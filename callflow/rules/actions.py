"""What the engine decides for a call: one action, and the trace that explains it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from callflow.config import REJECT_CAUSES, IvrMenu, Target
from callflow.rules.trace import Trace

__all__ = [
    "Action",
    "CollectZip",
    "Decision",
    "Hangup",
    "Play",
    "Reject",
    "Route",
    "RunIvr",
    "Step",
    "Voicemail",
    "describe",
]

#: Targets dialled together: one, or every target of a ``simultaneous`` group.
Step = tuple[Target, ...]


@dataclass(frozen=True, slots=True, init=False)
class Route:
    """Dial the plan's steps in order (eligible targets only); then the fallback, if any."""

    rule: str
    group: str
    plan: tuple[Step, ...]
    max_attempts: int
    failover_on: frozenset[str]  # of "busy", "noanswer", "unavailable"
    fallback: Action | None

    def __init__(
        self,
        rule: str,
        group: str,
        plan: tuple[Step, ...],
        max_attempts: int,
        failover_on: frozenset[str],
        fallback: Action | None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "failover_on", failover_on)
        object.__setattr__(self, "fallback", fallback)


@dataclass(frozen=True, slots=True)
class RunIvr:
    """Play a menu and collect digits; then decide again with ``facts.with_ivr(menu, digits)``."""

    rule: str
    menu: IvrMenu


@dataclass(frozen=True, slots=True)
class CollectZip:
    """Ask for a 5-digit ZIP; then decide again with ``facts.with_zip`` or ``without_zip``."""

    rule: str
    prompt: str
    retries: int


@dataclass(frozen=True, slots=True)
class Play:
    """Play a sound, then hang up."""

    rule: str
    sound: str


@dataclass(frozen=True, slots=True)
class Voicemail:
    """Send the caller to a voicemail box."""

    rule: str
    box: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Reject the call with a cause: busy, congestion, unavailable or rejected."""

    rule: str
    cause: str

    @property
    def q850(self) -> int:
        """The Q.850 hangup cause code of this rejection."""
        return REJECT_CAUSES[self.cause]


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang up."""

    rule: str


Action = Route | RunIvr | CollectZip | Play | Voicemail | Reject | Hangup


@dataclass(frozen=True, slots=True, init=False)
class Decision:
    """The action for a call and the trace that explains it."""

    action: Action
    trace: Trace

    def __init__(self, action: Action, trace: Trace) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "trace", trace)


@functools.lru_cache(maxsize=64)  # a handful of sets, one per route setting
def _failover_text(failover_on: frozenset[str]) -> str:
    """The conditions a route fails over on, as ``describe`` words them."""
    return "/".join(sorted(failover_on)) or "never"


def describe(action: Action | None) -> str:
    """Return one line saying what an action does."""
    if action is None:
        return "nothing"
    if isinstance(action, Route):
        steps = "; ".join(
            [f"{i} {' + '.join([t.name for t in step])}" for i, step in enumerate(action.plan, 1)]
        )
        failover = _failover_text(action.failover_on)
        text = (
            f"route to group {action.group}: {steps or 'no eligible target'} "
            f"(at most {action.max_attempts} attempts, next on {failover})"
        )
        if action.fallback is not None:
            text += f"; fallback: {describe(action.fallback)}"
        return text
    if isinstance(action, RunIvr):
        return f"run menu {action.menu.name} (prompt {action.menu.prompt})"
    if isinstance(action, CollectZip):
        return f"collect a ZIP code (prompt {action.prompt}, {action.retries} retries)"
    if isinstance(action, Play):
        return f"play {action.sound} and hang up"
    if isinstance(action, Voicemail):
        return f"voicemail {action.box}"
    if isinstance(action, Reject):
        return f"reject: {action.cause} (cause {action.q850})"
    return "hang up"
