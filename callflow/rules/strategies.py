"""Group strategies: how a group orders its eligible targets into dialling steps."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter

from callflow.config import Target
from callflow.rules.counters import Counters, Usage
from callflow.rules.facts import CallFacts

__all__ = ["STRATEGY_ORDER", "Member", "Situation", "rendezvous_score", "weighted_shuffle"]


@dataclass(frozen=True, slots=True)
class Member:
    """A target in a group, with its effective priority and weight and its place in the list."""

    target: Target
    priority: int
    weight: int
    position: int


@dataclass(frozen=True, slots=True, init=False)
class Situation:
    """What a strategy may look at: the group, the call, the counters, the time, the RNG."""

    group: str
    size: int
    facts: CallFacts
    counters: Counters
    now: float
    rng: random.Random

    def __init__(
        self,
        group: str,
        size: int,
        facts: CallFacts,
        counters: Counters,
        now: float,
        rng: random.Random,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "counters", counters)
        object.__setattr__(self, "now", now)
        object.__setattr__(self, "rng", rng)

    def usage(self, member: Member) -> Usage:
        """Return a member's usage now."""
        return self.counters.snapshot_for(member.target, self.now)


def weighted_shuffle(members: list[Member], rng: random.Random) -> list[Member]:
    """Order members randomly, each next pick proportional to weight among those left."""
    keyed = [(rng.random() ** (1.0 / m.weight), m.position, m) for m in members]
    keyed.sort(key=lambda item: (-item[0], item[1]))
    return [m for _, _, m in keyed]


def rendezvous_score(caller: str, member: Member) -> float:
    """Return a stable weighted rendezvous-hash score of a caller for a target (higher first)."""
    digest = hashlib.blake2b(f"{caller}\x00{member.target.name}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 2)  # in (0, 1)
    return -member.weight / math.log(unit)


_rank = attrgetter("priority", "position")
_priority_of = attrgetter("priority")


def _priority(members: list[Member], s: Situation) -> list[list[Member]]:
    """Lowest priority first; equal priorities split by weight."""
    ordered: list[Member] = []
    rng = s.rng
    for _, same in groupby(sorted(members, key=_rank), key=_priority_of):
        tied = list(same)
        if len(tied) == 1:
            rng.random()  # the draw a shuffle of one makes: later ties see the same stream
            ordered.append(tied[0])
        else:
            ordered.extend(weighted_shuffle(tied, rng))
    return [[m] for m in ordered]


def _round_robin(members: list[Member], s: Situation) -> list[list[Member]]:
    """Start after the target that took the group's last call."""
    cursor = s.counters.cursor(s.group)
    return [[m] for m in sorted(members, key=lambda m: (m.position - cursor) % s.size)]


def _weighted(members: list[Member], s: Situation) -> list[list[Member]]:
    """Random by weight, renormalised over the eligible targets."""
    return [[m] for m in weighted_shuffle(members, s.rng)]


def _least_calls(members: list[Member], s: Situation) -> list[list[Member]]:
    """Fewest calls dialled today (each target's own time zone) first."""
    return [
        [m]
        for m in sorted(members, key=lambda m: (s.usage(m).today["dialed"], m.priority, m.position))
    ]


def _least_recent(members: list[Member], s: Situation) -> list[list[Member]]:
    """Longest idle (last call started or ended longest ago; never called first) first."""

    def idle_key(m: Member) -> tuple[float, int, int]:
        last = s.usage(m).last_call
        return (-math.inf if last is None else last, m.priority, m.position)

    return [[m] for m in sorted(members, key=idle_key)]


def _simultaneous(members: list[Member], s: Situation) -> list[list[Member]]:
    """Everyone at once (first to answer wins)."""
    return [sorted(members, key=lambda m: (m.priority, m.position))] if members else []


def _hash_caller(members: list[Member], s: Situation) -> list[list[Member]]:
    """The same caller to the same target: rendezvous hash of the caller's number."""
    caller = s.facts.ani_e164 or s.facts.ani_raw
    if not caller:
        return _priority(members, s)
    return [[m] for m in sorted(members, key=lambda m: -rendezvous_score(caller, m))]


STRATEGY_ORDER: dict[str, Callable[[list[Member], Situation], list[list[Member]]]] = {
    "priority": _priority,
    "round_robin": _round_robin,
    "weighted": _weighted,
    "least_calls": _least_calls,
    "least_recent": _least_recent,
    "simultaneous": _simultaneous,
    "hash_caller": _hash_caller,
}
