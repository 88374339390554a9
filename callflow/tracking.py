"""Tracking-number attribution: the dialled number (DNIS) of a call → its campaign and source."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from callflow.config import Campaign, Config, TrackingNumber, to_e164

__all__ = ["Attribution", "NumberIndex"]

_MAX_DIGITS = 20


@dataclass(frozen=True, slots=True, init=False)
class Attribution:
    """Where a call came from, as far as its tracking number tells."""

    dnis: str
    tracking_number: str | None
    known: bool
    campaign: str
    source: str | None = None
    medium: str | None = None
    keyword: str | None = None
    ad: str | None = None

    def __init__(
        self,
        dnis: str,
        tracking_number: str | None,
        known: bool,
        campaign: str,
        source: str | None = None,
        medium: str | None = None,
        keyword: str | None = None,
        ad: str | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "dnis", dnis)
        object.__setattr__(self, "tracking_number", tracking_number)
        object.__setattr__(self, "known", known)
        object.__setattr__(self, "campaign", campaign)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "medium", medium)
        object.__setattr__(self, "keyword", keyword)
        object.__setattr__(self, "ad", ad)


@dataclass(frozen=True, slots=True)
class _Labels:
    """The attribution of one tracking number (or of unknown numbers), without the DNIS."""

    tracking_number: str | None
    campaign: str
    source: str | None
    medium: str | None
    keyword: str | None
    ad: str | None

    def attribution(self, dnis: str) -> Attribution:
        """Return the attribution of a call to this number."""
        known = self.tracking_number is not None
        return Attribution(
            dnis, self.tracking_number, known, self.campaign,
            self.source, self.medium, self.keyword, self.ad,
        )  # fmt: skip


_MISSES = 16384  # unknown DNIS forms remembered


def _number_labels(number: TrackingNumber, campaign: Campaign) -> _Labels:
    """Merge a tracking number's own labels over its campaign's."""
    return _Labels(
        number.number,
        campaign.name,
        number.source if number.source is not None else campaign.source,
        number.medium if number.medium is not None else campaign.medium,
        number.keyword if number.keyword is not None else campaign.keyword,
        number.ad if number.ad is not None else campaign.ad,
    )


def _unknown_labels(campaign: Campaign) -> _Labels:
    """Return the labels of a call to a number the configuration does not list."""
    return _Labels(
        None, campaign.name, campaign.source, campaign.medium, campaign.keyword, campaign.ad
    )


def _key(dnis: str) -> str:
    """Reduce a DNIS to its digits, keeping a leading ``+``; empty if it cannot be a number."""
    if dnis.isascii() and dnis.isdigit():  # the usual form, as Asterisk hands it over
        digits = dnis
    else:
        digits = "".join(ch for ch in dnis if "0" <= ch <= "9")
    if not digits or len(digits) > _MAX_DIGITS:
        return ""
    return "+" + digits if dnis.lstrip().startswith("+") else digits


class NumberIndex:
    """Every tracking number of a configuration, by E.164 and by each digit form seen, for O(1)."""

    def __init__(self, config: Config) -> None:
        """Index the tracking numbers of a validated configuration."""
        self._country = config.settings.default_country
        self._by_e164 = {
            n.number: _number_labels(n, config.campaigns[n.campaign]) for n in config.numbers
        }
        # Digit forms already resolved (E.164, the plus-less form, the original); grows only with
        # forms that matched, so garbage DNIS cannot make it grow.
        self._by_key = dict(self._by_e164)
        for number in config.numbers:
            self._remember(_key(number.original), number.number)
            self._remember(number.number[1:], number.number)
        self._unknown = _unknown_labels(config.campaigns[config.unknown_number.campaign])
        # Digit forms known not to be tracking numbers (bounded), so they are parsed once.
        self._misses: OrderedDict[str, None] = OrderedDict()

    def _remember(self, key: str, e164: str) -> None:
        """Map a digit form to a tracking number if it normalises to that number."""
        if key and to_e164(key, self._country) == e164:
            self._by_key.setdefault(key, self._by_e164[e164])

    def lookup(self, dnis: str) -> Attribution:
        """Attribute a call to ``dnis``; an unknown or garbage DNIS gets the unknown campaign."""
        try:
            labels = self._labels(dnis)
        except Exception:  # never fail a call over its DNIS
            labels = self._unknown
        return labels.attribution(dnis)

    def _labels(self, dnis: str) -> _Labels:
        """Find the labels of a DNIS: exact digit form, then E.164 normalisation."""
        key = _key(dnis)
        if not key:
            return self._unknown
        found = self._by_key.get(key)
        if found is not None:
            return found
        if key in self._misses:
            return self._unknown
        for candidate in (key, "+" + key) if not key.startswith("+") else (key,):
            e164 = to_e164(candidate, self._country)
            if e164 is not None and e164 in self._by_e164:
                self._by_key[key] = self._by_e164[e164]
                return self._by_e164[e164]
        self._misses[key] = None
        if len(self._misses) > _MISSES:
            self._misses.popitem(last=False)
        return self._unknown

    def __len__(self) -> int:
        """Return how many tracking numbers are indexed."""
        return len(self._by_e164)

    def __contains__(self, dnis: object) -> bool:
        """Tell whether a DNIS is one of the tracking numbers."""
        return isinstance(dnis, str) and self.lookup(dnis).known
