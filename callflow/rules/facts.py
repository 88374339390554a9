"""What is known about a call when its route is decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

__all__ = ["ZIP_KEY", "CallFacts"]

#: The key of ``CallFacts.ivr`` under which the call flow records the ZIP the caller entered.
ZIP_KEY = "zip"

#: No IVR input yet: one shared, read-only empty mapping (each call copies it to add digits).
_NO_IVR: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True, init=False)
class CallFacts:
    """Everything known about a call when deciding (the call flow fills it in)."""

    now: datetime  # tz-aware (UTC)
    dnis: str
    tracking_number: str | None = None
    campaign: str
    source: str | None = None
    medium: str | None = None
    keyword: str | None = None
    ani_e164: str | None = None
    ani_raw: str | None = None
    anonymous: bool = False
    country: str | None = None
    area_code: str | None = None
    state: str | None = None
    city: str | None = None
    zip: str | None = None
    repeat_caller: bool = False
    last_answered_by: str | None = None  # the target that answered this caller last
    last_answered_at: float | None = None  # when (epoch seconds)
    ivr: Mapping[str, str] = field(default_factory=lambda: _NO_IVR)

    def __init__(
        self,
        *,
        now: datetime,
        dnis: str,
        tracking_number: str | None = None,
        campaign: str,
        source: str | None = None,
        medium: str | None = None,
        keyword: str | None = None,
        ani_e164: str | None = None,
        ani_raw: str | None = None,
        anonymous: bool = False,
        country: str | None = None,
        area_code: str | None = None,
        state: str | None = None,
        city: str | None = None,
        zip: str | None = None,
        repeat_caller: bool = False,
        last_answered_by: str | None = None,
        last_answered_at: float | None = None,
        ivr: Mapping[str, str] = _NO_IVR,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "now", now)
        object.__setattr__(self, "dnis", dnis)
        object.__setattr__(self, "tracking_number", tracking_number)
        object.__setattr__(self, "campaign", campaign)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "medium", medium)
        object.__setattr__(self, "keyword", keyword)
        object.__setattr__(self, "ani_e164", ani_e164)
        object.__setattr__(self, "ani_raw", ani_raw)
        object.__setattr__(self, "anonymous", anonymous)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "area_code", area_code)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "city", city)
        object.__setattr__(self, "zip", zip)
        object.__setattr__(self, "repeat_caller", repeat_caller)
        object.__setattr__(self, "last_answered_by", last_answered_by)
        object.__setattr__(self, "last_answered_at", last_answered_at)
        object.__setattr__(self, "ivr", ivr)

    def with_ivr(self, menu: str, digits: str) -> CallFacts:
        """Return these facts with the digits entered at a menu ("" for no input)."""
        return replace(self, ivr=MappingProxyType({**self.ivr, menu: digits}))

    def with_zip(self, digits: str, *, city: str | None, state: str | None) -> CallFacts:
        """Return these facts after the ZIP collector: a valid ZIP with its city and state."""
        return replace(
            self,
            zip=digits,
            city=city or self.city,
            state=state or self.state,
            ivr=MappingProxyType({**self.ivr, ZIP_KEY: digits}),
        )

    def without_zip(self, entered: str = "") -> CallFacts:
        """Return these facts after a ZIP collector that got no valid ZIP (not asked again)."""
        return replace(self, ivr=MappingProxyType({**self.ivr, ZIP_KEY: entered}))
