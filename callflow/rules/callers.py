"""Caller lists (block and allow lists): numbers and ``+prefix*`` entries, each with an expiry."""

from __future__ import annotations

from collections.abc import Iterable

from callflow.config import ListEntry, parse_expiry

__all__ = ["CallerList"]


class CallerList:
    """A named list of numbers and prefixes; lookups cost one probe per prefix length."""

    def __init__(self, name: str, entries: Iterable[ListEntry], timezone: str) -> None:
        """Index validated list entries (expiry dates are midnight in ``timezone``)."""
        self.name = name
        self._exact: dict[str, float | None] = {}
        self._prefixes: dict[str, float | None] = {}
        for entry in entries:
            expires = parse_expiry(entry.expires, timezone) if entry.expires else None
            if entry.number.endswith("*"):
                _keep_latest(self._prefixes, entry.number[:-1], expires)
            else:
                _keep_latest(self._exact, entry.number, expires)
        self._lengths = sorted({len(p) for p in self._prefixes})

    def find(self, number: str | None, now: float) -> str | None:
        """Return the entry (``+1212...`` or ``+1900*``) that holds ``number`` now, or None."""
        if not number:
            return None
        if number in self._exact and _live(self._exact[number], now):
            return number
        for length in self._lengths:
            if length > len(number):
                break
            prefix = number[:length]
            if prefix in self._prefixes and _live(self._prefixes[prefix], now):
                return prefix + "*"
        return None

    def __len__(self) -> int:
        """Return how many entries the list has."""
        return len(self._exact) + len(self._prefixes)


def _live(expires: float | None, now: float) -> bool:
    """Tell whether an entry has not expired."""
    return expires is None or now < expires


def _keep_latest(table: dict[str, float | None], key: str, expires: float | None) -> None:
    """Keep the entry that lasts longest when a number is listed twice."""
    if key in table:
        old = table[key]
        expires = None if old is None or expires is None else max(old, expires)
    table[key] = expires
