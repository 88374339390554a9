"""The limits of a target or group, compiled: hours, caps, concurrency, minimum gap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from callflow.config import Caps, Group, Target, zone
from callflow.rules.schedule import Schedule

__all__ = ["Limits", "PeriodKey", "period_keys"]

#: Identifies one hour, day or month in a time zone; later periods compare greater.
PeriodKey = tuple[int, ...]


def period_keys(tz: ZoneInfo, ts: float) -> dict[str, PeriodKey]:
    """Return the hourly, daily, monthly and total period keys of an instant in a zone."""
    local = datetime.fromtimestamp(ts, tz)
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
