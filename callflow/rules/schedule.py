"""Opening hours in a time zone: weekday ranges (overnight allowed) and closed dates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from callflow.config import WEEKDAYS, parse_closed_date, parse_days, parse_time_range, zone

__all__ = ["Schedule", "local_time"]

_ALL_DAY = ((0, 24 * 60),)


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """Return ``18:05 Fri`` for a moment in a zone."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M} {WEEKDAYS[local.weekday()].title()}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When something is open: ranges per weekday (0 = Monday) in ``tz``, less closed dates."""

    tz_name: str
    tz: ZoneInfo
    days: tuple[tuple[tuple[int, int], ...], ...]  # 7 weekdays of (start, end) minutes
    closed: frozenset[date]
    closed_yearly: frozenset[tuple[int, int]]
    text: str  # as written, e.g. "mon-fri 09:00-17:00"

    @classmethod
    def build(
        cls,
        hours: Mapping[str, Iterable[str]] | None,
        closed_dates: Iterable[str],
        tz_name: str,
    ) -> Schedule:
        """Compile validated ``hours`` and ``closed_dates`` (None hours = open all day, daily)."""
        days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        if hours is None:
            days = [list(_ALL_DAY) for _ in range(7)]
            text = "always open"
        else:
            parts = []
            for spec, ranges in hours.items():
                ranges = tuple(ranges)
                for day in parse_days(spec):
                    days[day].extend(parse_time_range(r) for r in ranges)
                parts.append(f"{spec} {','.join(ranges) or 'closed'}")
            text = "; ".join(parts)
        closed: set[date] = set()
        yearly: set[tuple[int, int]] = set()
        for text_date in closed_dates:
            parsed = parse_closed_date(text_date)
            if isinstance(parsed, date):
                closed.add(parsed)
            else:
                yearly.add(parsed)
        return cls(
            tz_name, zone(tz_name), tuple(tuple(sorted(d)) for d in days), frozenset(closed),
            frozenset(yearly), text,
        )  # fmt: skip

    def _is_closed_date(self, day: date) -> bool:
        """Tell whether a local date is a closed date."""
        return day in self.closed or (day.month, day.day) in self.closed_yearly

    def _in_ranges(self, local: datetime, honour_closed: bool) -> bool:
        """Tell whether a local wall-clock time falls in a range (its own day's or last night's)."""
        minute = local.hour * 60 + local.minute
        today = local.date()
        if not (honour_closed and self._is_closed_date(today)):
            for start, end in self.days[local.weekday()]:
                if (start <= minute < end) if start < end else minute >= start:
                    return True
        yesterday = today - timedelta(days=1)
        if not (honour_closed and self._is_closed_date(yesterday)):
            for start, end in self.days[yesterday.weekday()]:
                if end <= start and minute < end:
                    return True
        return False

    def closed_reason(self, moment: datetime) -> str | None:
        """Return None if open at ``moment``, else why not, in words."""
        local = moment.astimezone(self.tz)
        if self._in_ranges(local, honour_closed=True):
            return None
        if self._in_ranges(local, honour_closed=False):
            return f"closed on {local:%Y-%m-%d} (closed_dates) in {self.tz_name}"
        return f"closed at {local_time(moment, self.tz)} in {self.tz_name} (hours {self.text})"
