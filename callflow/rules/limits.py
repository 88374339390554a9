"""The limits of a target or group, compiled: hours, caps, concurrency, minimum gap."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from callflow.config import Caps, Group, Target, zone
from callflow.rules.schedule import Schedule

__all__ = ["Limits", "PeriodKey", "period_keys"]

#: Identifies one hour, day or month in a time zone; later periods compare greater.
PeriodKey = tuple[int, ...]


def period_keys(tz: ZoneInfo, ts: float) -> Mapping[str, PeriodKey]:
    """Return the hourly, daily, monthly and total period keys of an instant in a zone."""
    slot = math.floor(ts / _SLOT)
    into = ts - slot * _SLOT
    if 1e-5 < into < _SLOT - 1e-5:  # datetime rounds to microseconds: edges are exact below
        try:
            return _slot_keys(tz, slot)
        except _SlotSplit:
            pass
    return _keys(datetime.fromtimestamp(ts, tz))


#: UTC offsets (and DST changes) fall on quarter hours, so a quarter hour has one set of keys.
_SLOT = 900


class _SlotSplit(Exception):
    """The zone's offset changes inside the slot (or is not whole quarter hours)."""


@functools.lru_cache(maxsize=8192)
def _slot_keys(tz: ZoneInfo, slot: int) -> Mapping[str, PeriodKey]:
    """The period keys shared by every instant of a quarter-hour slot (raises _SlotSplit)."""
    start = datetime.fromtimestamp(slot * _SLOT, tz)
    last = datetime.fromtimestamp(slot * _SLOT + _SLOT - 1, tz)
    offset = start.utcoffset()
    if offset != last.utcoffset() or offset is None or offset.total_seconds() % _SLOT:
        raise _SlotSplit
    return MappingProxyType(_keys(start))


def _keys(local: datetime) -> dict[str, PeriodKey]:
    """The period keys of a local time."""
    return {
        # fold tells the two 01:00 hours of a fall-back night apart.
        "hourly": (local.year, local.month, local.day, local.hour, local.fold),
        "daily": (local.year, local.month, local.day),
        "monthly": (local.year, local.month),
        "total": (),
    }


@dataclass(frozen=True, slots=True)
class Limits:
    """What may refuse a call to a target or group, ready to check."""

    name: str
    tz_name: str
    tz: ZoneInfo
    schedule: Schedule | None  # targets only; None = always open
    caps: tuple[tuple[str, str, int], ...]  # (period, metric, max)
    convert_after: int
    concurrency: int | None
    min_gap: int

    @classmethod
    def of_target(cls, target: Target) -> Limits:
        """Compile a target's limits."""
        schedule = None
        if target.hours is not None or target.closed_dates:
            schedule = Schedule.build(target.hours, target.closed_dates, target.timezone)
        caps, convert_after = _caps(target.caps)
        return cls(
            target.name, target.timezone, zone(target.timezone), schedule, caps, convert_after,
            target.concurrency, target.min_gap,
        )  # fmt: skip

    @classmethod
    def of_group(cls, group: Group) -> Limits:
        """Compile a group's limits."""
        caps, convert_after = _caps(group.caps)
        return cls(
            group.name, group.timezone, zone(group.timezone), None, caps, convert_after,
            group.concurrency, 0,
        )  # fmt: skip

    @property
    def unlimited(self) -> bool:
        """Tell whether nothing can ever refuse a call."""
        return (
            self.schedule is None
            and not self.caps
            and self.concurrency is None
            and self.min_gap == 0
        )


def _caps(caps: Caps | None) -> tuple[tuple[tuple[str, str, int], ...], int]:
    """Return the (period, metric, max) caps and the conversion threshold."""
    if caps is None:
        return (), Caps().convert_after
    return tuple((p, c.on, c.max) for p, c in caps.limits()), caps.convert_after
