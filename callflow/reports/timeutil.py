"""Time zones for reports: parsing --since/--until, DST-exact buckets and UTC offset segments."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BUCKETS",
    "Bucket",
    "Segments",
    "bucket_bounds",
    "bucket_label",
    "day_count",
    "iso",
    "parse_range",
    "parse_when",
    "segments",
    "zone",
]

Bucket: TypeAlias = Literal["hour", "day", "week", "month"]
BUCKETS: Final[tuple[Bucket, ...]] = ("hour", "day", "week", "month")


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name (ValueError if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like America/New_York)"
        ) from None


def _local_midnight(day: date, tz: tzinfo) -> float:
    """The UTC epoch of a local date's first instant."""
    return datetime.combine(day, time(0), tzinfo=tz).timestamp()


def parse_when(text: str, tz: tzinfo, *, end: bool = False) -> float:
    """Epoch of an ISO date or date-time (local to ``tz`` unless it has an offset).

    A bare date given as an ``end`` means the end of that day (so ``--until 2024-03-31``
    includes March 31).
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _local_midnight(day + timedelta(days=1) if end else day, tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_range(text: str, tz: tzinfo) -> tuple[float, float]:
    """``A..B`` as epochs; a bare-date B is inclusive (ends at the end of that day)."""
    first, sep, last = text.partition("..")
    if not sep or not first or not last:
        raise ValueError(f"expected a range like 2024-03-01..2024-03-31, got {text!r}")
    lo, hi = parse_when(first, tz), parse_when(last, tz, end=True)
    if hi <= lo:
        raise ValueError(f"empty range {text!r}")
    return lo, hi


def day_count(lo: float, hi: float, tz: tzinfo) -> float:
    """Length of a window in days: whole local days when it runs midnight to midnight."""
    a, b = datetime.fromtimestamp(lo, tz), datetime.fromtimestamp(hi, tz)
    if a.time() == time(0) and b.time() == time(0):
        return float((b.date() - a.date()).days)
    return (hi - lo) / 86400


def iso(epoch: float, tz: tzinfo) -> str:
    """A local ISO-8601 time with its offset, to the second."""
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")


def _floor(epoch: float, by: Bucket, tz: tzinfo) -> datetime:
    """The local start of the bucket holding ``epoch``."""
    local = datetime.fromtimestamp(epoch, tz)
    if by == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if by == "week":
        day -= timedelta(days=day.weekday())
    elif by == "month":
        day = day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def _next(start: datetime, by: Bucket, tz: tzinfo) -> float:
    """The epoch where the bucket starting at local ``start`` ends."""
    if by == "hour":  # wall-clock hours: step in UTC, then re-align (DST shifts of 30 min too)
        t = start.timestamp() + 3600
        aligned = _floor(t, "hour", tz).timestamp()
        return aligned if aligned > start.timestamp() else t
    day = start.date()
    if by == "day":
        nxt = day + timedelta(days=1)
    elif by == "week":
        nxt = day + timedelta(days=7)
    else:
        nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return _local_midnight(nxt, tz)


def bucket_bounds(lo: float, hi: float, by: Bucket, tz: tzinfo) -> list[float]:
    """Epochs of consecutive local bucket starts covering [lo, hi), plus the final end."""
    if by == "hour":
        seg = segments(lo, hi, tz)
        if all(o % 3600 == 0 for o in seg.offsets) and all(c % 3600 == 0 for c in seg.changes):
            # Whole-hour offsets changing on the hour: local hours are UTC hours (8,760 a year
            # computed at once rather than through datetimes).
            first, last = math.floor(lo / 3600), math.ceil(hi / 3600)
            return [float(h * 3600) for h in range(first, last + 1)]
    start = _floor(lo, by, tz)
    bounds = [start.timestamp()]
    while bounds[-1] < hi:
        bounds.append(_next(datetime.fromtimestamp(bounds[-1], tz), by, tz))
    return bounds


def bucket_label(epoch: float, by: Bucket, tz: tzinfo) -> str:
    """How a bucket starting at ``epoch`` is shown (hours keep the offset: DST repeats 1 AM)."""
    local = datetime.fromtimestamp(epoch, tz)
    if by == "hour":
        return local.isoformat(timespec="minutes")
    if by == "month":
        return local.strftime("%Y-%m")
    if by == "week":
        return f"{local:%Y-%m-%d} (wk {local.isocalendar().week})"
    return local.strftime("%Y-%m-%d")


class Segments:
    """UTC-offset segments of a zone over a window, as SQL adding the local offset to a time."""

    def __init__(self, changes: list[float], offsets: list[int]) -> None:
        """``offsets[i]`` holds before ``changes[i]``; the last offset after the last change."""
        self.changes = changes
        self.offsets = offsets

    def offset_at(self, epoch: float) -> int:
        """The offset (seconds east of UTC) in force at ``epoch``."""
        return self.offsets[bisect.bisect_right(self.changes, epoch)]

    def sql(self, column: str = "started_at") -> str:
        """An SQL expression for the local-time epoch of ``column`` (exact across DST)."""
        if not self.changes:
            return f"({column} + {self.offsets[0]})"
        whens = " ".join(
            f"WHEN {column} < {c!r} THEN {o}"
            for c, o in zip(self.changes, self.offsets, strict=False)
        )
        return f"({column} + CASE {whens} ELSE {self.offsets[-1]} END)"


def _offset(epoch: float, tz: tzinfo) -> int:
    """Seconds east of UTC at an instant."""
    delta = datetime.fromtimestamp(epoch, UTC).astimezone(tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _changes(lo: float, hi: float, tz: tzinfo) -> Iterator[float]:
    """Instants in [lo, hi] where the zone's UTC offset changes (to the second)."""
    step = 6 * 3600  # zones change at most twice a year, never twice within six hours
    t = lo
    before = _offset(t, tz)
    while t < hi:
        u = min(t + step, hi)
        after = _offset(u, tz)
        if after != before:
            a, b = t, u
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(mid, tz) == before:
                    a = mid
                else:
                    b = mid
            yield float(b)
        t, before = u, after


def segments(lo: float, hi: float, tz: tzinfo) -> Segments:
    """The offset segments of ``tz`` between two epochs."""
    lo, hi = float(int(lo)), float(int(hi) + 1)
    changes = list(_changes(lo, hi, tz))
    offsets = [_offset(lo, tz)] + [_offset(c, tz) for c in changes]
    return Segments(changes, offsets)
