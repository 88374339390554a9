"""Live usage of targets and groups (calls in progress, counts per period), exact and in memory.

The daemon is single-threaded asyncio: ``try_acquire`` checks and reserves with no ``await``
between, so two calls can never both take the last slot. Answered and converted caps count the
calls still in progress as taken until they end (a reservation), which keeps them exact too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Protocol

from callflow.config import CAP_METRICS, CAP_PERIODS, Config, Target
from callflow.rules.limits import Limits, PeriodKey, period_keys

__all__ = ["AttemptLike", "Counters", "Usage"]


class AttemptLike(Protocol):
    """One past dial attempt, as the CDR store can give it back at startup."""

    @property
    def target(self) -> str: ...
    @property
    def group(self) -> str | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def answered(self) -> bool: ...
    @property
    def talk_seconds(self) -> float: ...
    @property
    def ended_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Usage:
    """A snapshot of one target's or group's usage."""

    live: int
    last_start: float | None
    last_end: float | None
    today: Mapping[str, int]  # metric -> count today in the owner's time zone

    @property
    def last_call(self) -> float | None:
        """When the last call started or ended, whichever is later."""
        stamps = [s for s in (self.last_start, self.last_end) if s is not None]
        return max(stamps) if stamps else None


class _Count:
    """The count of one metric in the latest period seen (changed in place as calls come)."""

    __slots__ = ("key", "n")

    def __init__(self, key: PeriodKey, n: int) -> None:
        """Start a period's count."""
        self.key = key
        self.n = n


#: Each metric's (period, slot name) pairs, made once: counting a call allocates no key.
_SLOTS: Final = {m: tuple((p, (m, p)) for p in CAP_PERIODS) for m in CAP_METRICS}


@dataclass(slots=True)
class _Tally:
    """Mutable usage of one target or group."""

    live: int = 0
    last_start: float | None = None
    last_end: float | None = None
    # (metric, period) -> the count in the latest period seen
    counts: dict[tuple[str, str], _Count] = field(default_factory=dict)

    def count(self, metric: str, period: str, key: PeriodKey) -> int:
        """Return the count of a metric in the period ``key`` (0 if none recorded)."""
        slot = self.counts.get((metric, period))
        return slot.n if slot is not None and slot.key == key else 0

    def add(self, metric: str, keys: Mapping[str, PeriodKey]) -> None:
        """Count one event in each period (an event of an older period than the latest is lost)."""
        counts = self.counts
        for period, name in _SLOTS[metric]:
            key = keys[period]
            slot = counts.get(name)
            if slot is None:
                counts[name] = _Count(key, 1)
            elif slot.key is key or slot.key == key:  # the usual case: the same period again
                slot.n += 1
            elif slot.key < key:
                slot.key, slot.n = key, 1


#: The usage of a target or group with none recorded yet: read by ``_refusal``, never written.
_UNUSED = _Tally()


def _refusal(limits: Limits, tally: _Tally, now: float, check_hours: bool) -> str | None:
    """Return why a target or group cannot take a call now, or None."""
    if check_hours and limits.schedule is not None:
        closed = limits.schedule.closed_reason(datetime.fromtimestamp(now, UTC))
        if closed is not None:
            return closed
    if limits.concurrency is not None and tally.live >= limits.concurrency:
        return f"concurrency {tally.live}/{limits.concurrency}"
    if limits.min_gap:
        stamps = [s for s in (tally.last_start, tally.last_end) if s is not None]
        if stamps and now - max(stamps) < limits.min_gap:
            ago = max(0, int(now - max(stamps)))
            return f"min_gap {limits.min_gap} s: last call {ago} s ago"
    if limits.caps:
        keys = period_keys(limits.tz, now)
        for period, metric, most in limits.caps:
            done = tally.count(metric, period, keys[period])
            pending = tally.live if metric != "dialed" else 0
            if done + pending >= most:
                detail = f"{metric}: {done} + {pending} in progress" if pending else metric
                return f"{period} cap {done + pending}/{most} ({detail})"
    return None


class Counters:
    """Calls in progress and counts per period of every target and group; round-robin cursors."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        """Start with no usage for the targets and groups of a configuration."""
        self._clock = clock
        self._targets: dict[str, _Tally] = {}
        self._groups: dict[str, _Tally] = {}
        self._cursors: dict[str, int] = {}
        self._target_limits: dict[str, Limits] = {}
        self._group_limits: dict[str, Limits] = {}
        self._members: dict[str, tuple[str, ...]] = {}
        self._round_robin: set[str] = set()
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Take new limits (hot reload), keeping the usage of targets and groups that remain."""
        self._target_limits = {n: Limits.of_target(t) for n, t in config.targets.items()}
        groups = {name: config.group(name) for name in config.group_names()}
        self._group_limits = {n: Limits.of_group(g) for n, g in groups.items()}
        self._members = {n: tuple(m.target for m in g.targets) for n, g in groups.items()}
        self._round_robin = {n for n, g in groups.items() if g.strategy == "round_robin"}
        self._targets = {n: t for n, t in self._targets.items() if n in self._target_limits}
        self._groups = {n: t for n, t in self._groups.items() if n in self._group_limits}
        self._cursors = {
            n: c % len(self._members[n]) for n, c in self._cursors.items() if self._members.get(n)
        }

    # --- limits ---

    def _limits_of(self, target: Target) -> Limits:
        """Return a target's compiled limits (its own if this configuration no longer has it)."""
        limits = self._target_limits.get(target.name)
        return limits if limits is not None else Limits.of_target(target)

    def _tally(self, table: dict[str, _Tally], name: str) -> _Tally:
        """Return (creating) the tally of a name."""
        tally = table.get(name)
        if tally is None:
            tally = table[name] = _Tally()
        return tally

    def target_refusal(self, target: Target, now: float, *, check_hours: bool = True) -> str | None:
        """Return why a target cannot take a call now (closed, capped, busy, too soon), or None."""
        return _refusal(
            self._limits_of(target), self._targets.get(target.name) or _UNUSED, now, check_hours
        )

    def group_refusal(self, group: str, now: float) -> str | None:
        """Return why a group cannot take a call now (its caps or concurrency), or None."""
        limits = self._group_limits.get(group)
        if limits is None:
            return None
        refusal = _refusal(limits, self._groups.get(group) or _UNUSED, now, False)
        return None if refusal is None else f"group {group}: {refusal}"

    # --- the call's lifecycle ---

    def try_acquire(
        self, target: Target, group: str | None, now: float | None = None
    ) -> str | None:
        """Take a slot for a call to ``target`` (through ``group``): None if taken, else why not."""
        now = self._clock() if now is None else now
        refusal = self.target_refusal(target, now)
        if refusal is None and group is not None:
            refusal = self.group_refusal(group, now)
        if refusal is not None:
            return refusal
        self._start(self._tally(self._targets, target.name), self._limits_of(target), now)
        group_limits = self._group_limits.get(group) if group is not None else None
        if group is not None and group_limits is not None:
            self._start(self._tally(self._groups, group), group_limits, now)
            if group in self._round_robin and target.name in self._members[group]:
                members = self._members[group]
                self._cursors[group] = (members.index(target.name) + 1) % len(members)
        return None

    def release(
        self,
        target: Target,
        group: str | None,
        *,
        answered: bool,
        talk_seconds: float,
        now: float | None = None,
    ) -> None:
        """End a call taken by ``try_acquire``; count it answered and converted as it was."""
        now = self._clock() if now is None else now
        self._end(self._tally(self._targets, target.name), self._limits_of(target), now,
                  answered, talk_seconds)  # fmt: skip
        group_limits = self._group_limits.get(group) if group is not None else None
        if group is not None and group_limits is not None:
            self._end(self._tally(self._groups, group), group_limits, now, answered, talk_seconds)

    @classmethod
    def _end(
        cls, tally: _Tally, limits: Limits, now: float, answered: bool, talk_seconds: float
    ) -> None:
        """Count a call's end: one live call less, and its answer and conversion."""
        tally.live = tally.live - 1 if tally.live > 0 else 0
        if tally.last_end is None or now > tally.last_end:
            tally.last_end = now
        if answered:
            cls._count_answer(tally, limits, now - max(0.0, talk_seconds), talk_seconds)

    @staticmethod
    def _start(tally: _Tally, limits: Limits, now: float) -> None:
        """Count a dialled call and a live call."""
        tally.live += 1
        tally.last_start = now if tally.last_start is None else max(tally.last_start, now)
        tally.add("dialed", period_keys(limits.tz, now))

    @staticmethod
    def _count_answer(tally: _Tally, limits: Limits, answered_at: float, talk: float) -> None:
        """Count an answer (at its answer time) and a conversion (when it converted)."""
        tally.add("answered", period_keys(limits.tz, answered_at))
        if talk >= limits.convert_after:
            tally.add("converted", period_keys(limits.tz, answered_at + limits.convert_after))

    # --- what decide() reads ---

    def snapshot_for(self, target: Target | str, now: float | None = None) -> Usage:
        """Return a target's usage: calls in progress, last call, today's counts in its zone."""
        name = target if isinstance(target, str) else target.name
        limits = self._target_limits.get(name)
        if limits is None and not isinstance(target, str):
            limits = Limits.of_target(target)
        return self._snapshot(self._targets.get(name), limits, now)

    def group_snapshot(self, group: str, now: float | None = None) -> Usage:
        """Return a group's usage."""
        return self._snapshot(self._groups.get(group), self._group_limits.get(group), now)

    def _snapshot(self, tally: _Tally | None, limits: Limits | None, now: float | None) -> Usage:
        """Return a usage snapshot of a tally."""
        if tally is None or limits is None:
            return Usage(0, None, None, MappingProxyType(dict.fromkeys(CAP_METRICS, 0)))
        key = period_keys(limits.tz, self._clock() if now is None else now)["daily"]
        today = {metric: tally.count(metric, "daily", key) for metric in CAP_METRICS}
        return Usage(tally.live, tally.last_start, tally.last_end, MappingProxyType(today))

    # --- round-robin cursors (the daemon persists them) ---

    def cursor(self, group: str) -> int:
        """Return where a round-robin group starts next (an index into its targets)."""
        return self._cursors.get(group, 0)

    def cursors(self) -> dict[str, int]:
        """Return every round-robin cursor, to persist."""
        return dict(self._cursors)

    def restore_cursors(self, cursors: Mapping[str, int]) -> None:
        """Restore persisted cursors (unknown groups are ignored)."""
        for group, cursor in cursors.items():
            members = self._members.get(group)
            if members and isinstance(cursor, int):
                self._cursors[group] = cursor % len(members)

    # --- startup ---

    def load(self, history: Iterable[AttemptLike]) -> None:
        """Rebuild counts from past attempts (e.g. this month's, from the CDR store), none live."""
        for attempt in history:
            limits = self._target_limits.get(attempt.target)
            if limits is None:
                continue
            owners = [(self._tally(self._targets, attempt.target), limits)]
            if attempt.group is not None and attempt.group in self._group_limits:
                group = attempt.group
                owners.append((self._tally(self._groups, group), self._group_limits[group]))
            started = attempt.started_at
            ended = attempt.ended_at if attempt.ended_at is not None else started
            for tally, lim in owners:
                tally.add("dialed", period_keys(lim.tz, started))
                tally.last_start = max(tally.last_start or started, started)
                tally.last_end = max(tally.last_end or ended, ended)
                if attempt.answered:
                    talk = max(0.0, attempt.talk_seconds)
                    self._count_answer(tally, lim, ended - talk, talk)
