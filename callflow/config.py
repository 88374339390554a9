"""The callflow configuration: a YAML file parsed into validated, frozen pydantic models.

Every dial string is built from this file alone, after each endpoint, trunk and PSTN number has
passed a strict pattern, so nothing a caller sends can ever reach a dial string. Errors name the
file, line and column of every problem
(``rules/callflow.yaml:12:5: targets.alice.endpoint: ...``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from callflow.events.config import EventsConfig

__all__ = [
    "ACTION_KEYS",
    "BILLING_CAP_PERIODS",
    "CAP_METRICS",
    "CAP_PERIODS",
    "CURRENCY_DIGITS",
    "DEFAULT_CONVERT_AFTER",
    "DEFAULT_COUNTRY",
    "DEFAULT_RING_TIMEOUT",
    "FAILOVER_CAUSES",
    "REJECT_CAUSES",
    "STRATEGIES",
    "WEEKDAYS",
    "ActionSpec",
    "Buyer",
    "BuyerCapLimit",
    "BuyerCaps",
    "Campaign",
    "CapLimit",
    "Caps",
    "CollectZipSpec",
    "Conditions",
    "Config",
    "ConfigError",
    "Duplicate",
    "Group",
    "IvrMenu",
    "ListEntry",
    "Member",
    "Payout",
    "Publisher",
    "PublisherCapLimit",
    "PublisherCaps",
    "Revenue",
    "RevenueTier",
    "Rule",
    "Settings",
    "Sticky",
    "Target",
    "TrackingNumber",
    "Trunk",
    "UnknownNumber",
    "load_config",
    "parse_amount",
    "parse_closed_date",
    "parse_config",
    "parse_days",
    "parse_expiry",
    "parse_time_range",
    "parse_window",
    "to_e164",
    "zone",
]

DEFAULT_COUNTRY = "US"
DEFAULT_RING_TIMEOUT = 20
DEFAULT_TIMEZONE = "UTC"

#: Group strategies, in the order the README lists them.
STRATEGIES = (
    "priority", "round_robin", "weighted", "least_calls", "least_recent", "simultaneous",
    "hash_caller",
)  # fmt: skip
#: Cap periods and what a cap counts.
CAP_PERIODS = ("hourly", "daily", "monthly", "total")
CAP_METRICS = ("dialed", "answered", "converted")
#: Dial outcomes after which a route tries its next step.
FAILOVER_CAUSES = ("busy", "noanswer", "unavailable")
#: How a rule may reject a call, with the Q.850 cause the call flow should hang up with.
REJECT_CAUSES = {"busy": 17, "congestion": 34, "unavailable": 20, "rejected": 21}
#: The action keys of a rule (exactly one per rule).
ACTION_KEYS = ("route", "ivr", "collect_zip", "play", "voicemail", "reject", "hangup")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Seconds an answered call must last to convert (pay per call) unless the campaign, buyer or
#: publisher says otherwise.
DEFAULT_CONVERT_AFTER = 90
#: Periods of buyer and publisher caps (in the account's time zone).
BILLING_CAP_PERIODS = ("hourly", "daily", "monthly")


def _codes(text: str) -> list[str]:
    """Split a space-separated list of codes."""
    return text.split()


#: ISO 4217 currencies (active, not funds/metals/testing codes) and their minor-unit digits.
CURRENCY_DIGITS: Mapping[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
            "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
            "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
            "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
            "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
            "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
            "UAH USD USN UYU UZS VED VES WST XCD YER ZAR ZMW ZWG "
        ),
        2,
    ),
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}
_MAX_AMOUNT = Decimal(1_000_000_000)
_WINDOW_RE = re.compile(r"([0-9]{1,6})\s*([smhdw])\Z")
_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_E164_RE = re.compile(r"\+[1-9][0-9]{6,14}\Z")
_PREFIX_RE = re.compile(r"\+[1-9][0-9]{0,14}\Z")
# What a sysadmin may write as a phone number before normalisation: digits and punctuation only.
_WRITTEN_NUMBER_RE = re.compile(r"\+?[0-9(][0-9 ().-]{0,30}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SOUND_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/.-]{0,127}\Z")
_MAILBOX_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}(?:@[A-Za-z0-9_.-]{1,64})?\Z")
_DIGITS_RE = re.compile(r"[0-9*#]{1,20}\Z")
_TIME_RANGE_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})\Z")
_ANNUAL_DATE_RE = re.compile(r"([0-9]{2})-([0-9]{2})\Z")
_MAX_DIGITS = 20
_MAX_TEXT = 200

#: A location in the configuration, as pydantic gives it: keys and list indexes.
Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` holds one ``file:line:col: ...``."""

    def __init__(self, problems: list[str]) -> None:
        """Keep the list of problems and join them as the message."""
        self.problems = problems
        super().__init__("\n".join(problems))


# --- phone numbers ----------------------------------------------------------------------------


def to_e164(text: str, default_country: str = DEFAULT_COUNTRY) -> str | None:
    """Return the E.164 form of a phone number (non-digits ignored), or None if it is not one."""
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    plus = text.lstrip().startswith("+")
    try:
        number = phonenumbers.parse(("+" if plus else "") + digits, default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if _E164_RE.match(e164) else None


def _normalise_written(value: object, default_country: str) -> object:
    """Return a number as written in the file in E.164, or unchanged for the validator to reject."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _WRITTEN_NUMBER_RE.match(value):
        return value
    return to_e164(value, default_country) or value


# --- time zones, days, hours and dates --------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """Return the (cached) IANA time zone of a validated name."""
    return ZoneInfo(name)


def parse_days(spec: str) -> tuple[int, ...]:
    """Return the weekdays (0 = Monday) of ``mon``, ``mon-fri``, ``sat,sun`` or ``daily``."""
    days: set[int] = set()
    for item in spec.replace(" ", "").lower().split(","):
        if item == "daily":
            days.update(range(7))
            continue
        first, sep, last = item.partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise ValueError(
                f"{spec!r} is not a day or day range (mon..sun, e.g. 'mon-fri', 'sat,sun', 'daily')"
            )
        start = WEEKDAYS.index(first)
        end = WEEKDAYS.index(last) if sep else start
        days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    return tuple(sorted(days))


def parse_time_range(text: str) -> tuple[int, int]:
    """Return ``HH:MM-HH:MM`` as (start, end) minutes of the day; end <= start means overnight."""
    match = _TIME_RANGE_RE.match(text.replace(" ", ""))
    if match is None:
        raise ValueError(f"{text!r} is not a time range like '09:00-17:30'")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r} has a time that does not exist (00:00 to 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end or (start == 0 and end == 0):
        raise ValueError(f"{text!r} is empty (write '00:00-24:00' for the whole day)")
    return start, end


def parse_closed_date(text: str) -> date | tuple[int, int]:
    """Return a closed date: ``2026-12-25`` (that day) or ``12-25`` (every year: (month, day))."""
    annual = _ANNUAL_DATE_RE.match(text)
    if annual is not None:
        month, day = int(annual.group(1)), int(annual.group(2))
        try:
            date(2024, month, day)  # a leap year, so 02-29 is accepted
        except ValueError:
            raise ValueError(f"{text!r} is not a date (MM-DD)") from None
        return month, day
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, or MM-DD for every year)") from None


def parse_expiry(text: str, timezone: str = DEFAULT_TIMEZONE) -> float:
    """Return when a list entry expires: a date (its midnight in ``timezone``) or an ISO time."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(), zone(timezone)).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(timezone))
    return moment.timestamp()


# --- money and windows ------------------------------------------------------------------------


def parse_amount(value: object) -> Decimal:
    """Read an amount of money written in the file: ``"25.00"``, ``25`` or ``25.5``, exactly.

    A YAML decimal such as ``25.50`` arrives as a float; its shortest representation is the
    text that was written for every amount this accepts (at most 10 digits before the point and 4
    after), so it is read back from that text, never computed with. Negative amounts, NaN and
    amounts over 1,000,000,000 are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount of money")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}(?:\.[0-9]{1,4})?", value.strip()):
        amount = Decimal(value.strip())
    else:
        raise ValueError(f'{value!r} is not an amount of money (e.g. "25.00")')
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or not isinstance(exponent, int):
        raise ValueError(f'{value!r} is not an amount of money (e.g. "25.00")')
    if amount < 0:
        raise ValueError(f"{value!r} is negative: amounts are what is billed or paid")
    if amount > _MAX_AMOUNT:
        raise ValueError(f"{value!r} is more than 1,000,000,000")
    if exponent < -4:
        raise ValueError(f"{value!r} has more than 4 decimals")
    return amount


def parse_window(value: object) -> int | None:
    """Read a duplicate window: ``90m``, ``48h``, ``7d``, ``2w`` (seconds) or ``forever`` (None)."""
    if value == "forever":
        return None
    if isinstance(value, str):
        match = _WINDOW_RE.match(value.strip().lower())
        if match is not None and int(match.group(1)) > 0:
            seconds = int(match.group(1)) * _WINDOW_UNITS[match.group(2)]
            if seconds <= 3650 * 86400:
                return seconds
    raise ValueError(
        f"{value!r} is not a window: a number and a unit (90m, 48h, 7d, 2w; up to 10 years) "
        "or 'forever'"
    )


def _check_currency(value: str) -> str:
    """Accept an ISO 4217 currency code, in upper case."""
    code = value.upper() if isinstance(value, str) else value
    if code not in CURRENCY_DIGITS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR)")
    return code


def _check_percent(value: object) -> Decimal:
    """Accept a percentage 0-100 with up to 2 decimals (``40``, ``37.5``, ``"12.25"``)."""
    amount = parse_amount(value)
    if amount > 100:
        raise ValueError(f"{value!r} is more than 100 (percent)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{value!r} has more than 2 decimals")
    return amount


# --- field types ------------------------------------------------------------------------------


def _int_to_str(value: object) -> object:
    """Accept a YAML integer where a string is meant (``endpoint: 1001``, ``ad: 17``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _listify(value: object) -> object:
    """Accept one value where a list is meant (``state: NY`` is ``state: [NY]``)."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    return value


def _no_bool(value: object) -> object:
    """Refuse ``true``/``false`` where a number is meant (pydantic would read them as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return value


def _pattern_check(pattern: re.Pattern[str], what: str) -> Any:
    """Return a validator accepting strings that fully match a pattern."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _check_name(value: str) -> str:
    """Accept a target, campaign or trunk name that is safe anywhere (dial strings included)."""
    if not _NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; 1-64)")
    return value


def _check_text(value: str) -> str:
    """Accept free text (campaign labels) without control characters."""
    if _CONTROL_RE.search(value):
        raise ValueError(f"{value!r} contains control characters")
    return value


def _check_region(value: str) -> str:
    """Accept an ISO 3166 alpha-2 region that phonenumbers knows, in upper case."""
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a known country code (ISO 3166 alpha-2, e.g. US)")
    return region


def _check_timezone(value: str) -> str:
    """Accept an IANA time zone name that this machine's zone database knows."""
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{value!r} is not a known time zone (an IANA name, e.g. America/New_York)"
        ) from None
    return value


def _check_state(value: str) -> str:
    """Accept a state or province code (two letters), in upper case."""
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ValueError(f"{value!r} is not a state code (two letters, e.g. NY)")
    return value.upper()


def _check_sound(value: str) -> str:
    """Accept an Asterisk sound name (no extension) that is safe in an application argument."""
    if not _SOUND_RE.match(value) or ".." in value or "//" in value:
        raise ValueError(f"{value!r} is not a sound name (e.g. 'custom/closed' or 'vm-goodbye')")
    return value


def _checked(parse: Any) -> Any:
    """Return a validator that keeps a string after checking that ``parse`` accepts it."""

    def check(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(check)


def _check_list_number(value: str) -> str:
    """Accept a list entry: an E.164 number, or a prefix ending in ``*`` (``+1900*``)."""
    if value.endswith("*") and _PREFIX_RE.match(value[:-1]):
        return value
    if _E164_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not a phone number or a prefix like '+1900*'")


Name = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_check_name)]
Endpoint = Annotated[
    str, BeforeValidator(_int_to_str), _pattern_check(_NAME_RE, "a valid endpoint name")
]
E164 = Annotated[str, _pattern_check(_E164_RE, "a valid phone number")]
Text = Annotated[
    str, BeforeValidator(_int_to_str), Field(max_length=_MAX_TEXT), AfterValidator(_check_text)
]
RingTimeout = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=600)]
Count = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=1_000_000_000)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Region = Annotated[str, AfterValidator(_check_region)]
DaySpec = Annotated[str, _checked(parse_days)]
TimeRange = Annotated[str, _checked(parse_time_range)]
ClosedDate = Annotated[str, _checked(parse_closed_date)]
Expiry = Annotated[str, _checked(parse_expiry)]
Sound = Annotated[str, AfterValidator(_check_sound)]
Mailbox = Annotated[
    str, BeforeValidator(_int_to_str), _pattern_check(_MAILBOX_RE, "a mailbox like '1234@default'")
]
Digits = Annotated[
    str, BeforeValidator(_int_to_str), _pattern_check(_DIGITS_RE, "DTMF digits (0-9, * and #)")
]
AniPrefix = Annotated[
    str,
    BeforeValidator(_int_to_str),
    _pattern_check(_PREFIX_RE, "a number prefix with + and country code (e.g. +1212)"),
]
AreaCode = Annotated[
    str, BeforeValidator(_int_to_str), _pattern_check(re.compile(r"[0-9]{2,5}\Z"), "an area code")
]
Zip = Annotated[
    str, BeforeValidator(_int_to_str), _pattern_check(re.compile(r"[0-9]{5}\Z"), "a 5-digit ZIP")
]
State = Annotated[str, AfterValidator(_check_state)]
ListNumber = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_check_list_number)]
StrictBool = Annotated[bool, Strict()]
Amount = Annotated[Decimal, BeforeValidator(parse_amount)]
Percent = Annotated[Decimal, BeforeValidator(_check_percent)]
Currency = Annotated[str, AfterValidator(_check_currency)]
Window = Annotated[str, BeforeValidator(_int_to_str), _checked(parse_window)]
ConvertAfter = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=86400)]
Hours = Mapping[DaySpec, tuple[TimeRange, ...]]
Strategy = Literal[
    "priority", "round_robin", "weighted", "least_calls", "least_recent", "simultaneous",
    "hash_caller",
]  # fmt: skip


_One = BeforeValidator(_listify)  # a single value where a list is meant
NameList = Annotated[tuple[Name, ...], _One]
TextList = Annotated[tuple[Text, ...], _One]
E164List = Annotated[tuple[E164, ...], _One]
AniPrefixList = Annotated[tuple[AniPrefix, ...], _One]
AreaCodeList = Annotated[tuple[AreaCode, ...], _One]
StateList = Annotated[tuple[State, ...], _One]
RegionList = Annotated[tuple[Region, ...], _One]
ZipList = Annotated[tuple[Zip, ...], _One]
DigitsList = Annotated[tuple[Digits, ...], _One]
FailoverList = Annotated[tuple[Literal["busy", "noanswer", "unavailable"], ...], _One]


class _Model(BaseModel):
    """Base of every configuration model: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _raise_problems(problems: list[tuple[Loc, str]]) -> None:
    """Raise located problems (relative to the model being validated) as one pydantic error."""
    if problems:
        detail = "; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in problems)
        raise PydanticCustomError(
            "config_reference", "{detail}", {"detail": detail, "problems": tuple(problems)}
        )


# --- the models -------------------------------------------------------------------------------


class Settings(_Model):
    """Global settings."""

    default_country: Region = DEFAULT_COUNTRY
    repeat_window_days: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=3650)] = 7
    ring_timeout: RingTimeout = DEFAULT_RING_TIMEOUT
    timezone: TimeZoneName = DEFAULT_TIMEZONE


class Trunk(_Model):
    """An outbound trunk: the key is its PJSIP endpoint name."""

    name: Endpoint


class CapLimit(_Model):
    """One cap: at most ``max`` calls per period, counted on dialled, answered or converted."""

    max: Count
    on: Literal["dialed", "answered", "converted"] = "answered"

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """Accept ``daily: 40`` for ``daily: {max: 40}``."""
        if isinstance(data, int) and not isinstance(data, bool):
            return {"max": data}
        return data


class Caps(_Model):
    """Volume caps per hour, day, month (in the owner's time zone) and in total."""

    hourly: CapLimit | None = None
    daily: CapLimit | None = None
    monthly: CapLimit | None = None
    total: CapLimit | None = None
    convert_after: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=86400)] = 90

    @model_validator(mode="before")
    @classmethod
    def _periods(cls, data: Any) -> Any:
        """Name an unknown cap period plainly."""
        if isinstance(data, dict):
            known = (*CAP_PERIODS, "convert_after")
            _raise_problems(
                [
                    ((key,), f"unknown cap period {key!r} (use {', '.join(CAP_PERIODS)})")
                    for key in data
                    if key not in known
                ]
            )
        return data

    def limits(self) -> Iterator[tuple[str, CapLimit]]:
        """Yield (period, limit) for each cap that is set."""
        for period in CAP_PERIODS:
            limit = getattr(self, period)
            if limit is not None:
                yield period, limit


class Target(_Model):
    """A destination to ring: a SIP endpoint, or a PSTN number through a trunk."""

    name: Name
    endpoint: Endpoint | None = None
    number: E164 | None = None
    trunk: Endpoint | None = None
    ring_timeout: RingTimeout = DEFAULT_RING_TIMEOUT
    timezone: TimeZoneName = DEFAULT_TIMEZONE
    hours: Hours | None = None
    closed_dates: tuple[ClosedDate, ...] = ()
    priority: Annotated[int, BeforeValidator(_no_bool), Field(ge=-1000, le=1000)] = 0
    weight: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=1000)] = 1
    caps: Caps | None = None
    concurrency: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=100_000)] | None = None
    min_gap: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=86400)] = 0
    tags: NameList = ()

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        """Require exactly one of ``endpoint`` or ``number`` + ``trunk``; hours that open."""
        pstn = self.number is not None or self.trunk is not None
        if self.endpoint is not None and pstn:
            raise ValueError("give either 'endpoint' or 'number' + 'trunk', not both")
        if self.endpoint is None and not pstn:
            raise ValueError("needs 'endpoint' (a SIP endpoint) or 'number' + 'trunk' (PSTN)")
        if pstn and (self.number is None or self.trunk is None):
            raise ValueError("a PSTN target needs both 'number' and 'trunk'")
        _raise_problems(list(_hours_problems(self.hours, ("hours",))))
        return self

    @functools.cached_property  # read on every dial: after the first, a plain attribute
    def dial_string(self) -> str:
        """The Asterisk dial string: ``PJSIP/<endpoint>`` or ``PJSIP/<number>@<trunk>``.

        Cached: a target is frozen. (``model_copy(update=...)`` would copy it stale: build a
        new target instead.)
        """
        if self.endpoint is not None:
            return f"PJSIP/{self.endpoint}"
        return f"PJSIP/{self.number}@{self.trunk}"


def _hours_problems(hours: Hours | None, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Yield problems of an hours mapping: a day given twice, or hours that never open."""
    if hours is None:
        return
    if not hours:
        yield loc, "no days given: list days like 'mon-fri: [09:00-17:00]', or remove 'hours'"
        return
    owner: dict[int, str] = {}
    for spec in hours:
        for day in parse_days(spec):
            if day in owner:
                yield (*loc, spec), f"{WEEKDAYS[day]} is also in {owner[day]!r}"
            owner.setdefault(day, spec)
    if not any(hours.values()):
        yield loc, "never open: every day listed has no time ranges"


class Member(_Model):
    """A target in a group, optionally with its own priority and weight there."""

    target: Name
    priority: Annotated[int, BeforeValidator(_no_bool), Field(ge=-1000, le=1000)] | None = None
    weight: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=1000)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """Accept a bare target name."""
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            return {"target": str(data)}
        return data


class Sticky(_Model):
    """Send a repeat caller first to the target that answered them last, within ``days``."""

    days: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=3650)]


class Group(_Model):
    """Targets rung by a strategy, with optional group-wide caps and concurrency."""

    name: Name
    strategy: Strategy = "priority"
    targets: tuple[Member, ...] = ()
    sticky: Sticky | None = None
    caps: Caps | None = None
    concurrency: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=100_000)] | None = None
    timezone: TimeZoneName = DEFAULT_TIMEZONE


class ListEntry(_Model):
    """A number (or ``+prefix*``) in a caller list, optionally until an expiry date."""

    number: ListNumber
    expires: Expiry | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """Accept a bare number."""
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            return {"number": data}
        return data


class CollectZipSpec(_Model):
    """Ask the caller for a 5-digit ZIP code."""

    prompt: Sound
    retries: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=10)] = 2


def _repeat_is_none(value: object) -> object:
    """Read the IVR branch ``repeat`` as None (play the prompt again)."""
    if value == "repeat":
        return None
    if isinstance(value, str):
        raise ValueError(f"{value!r}: use 'repeat' or an action such as {{play: SOUND}}")
    return value


class ActionSpec(_Model):
    """What to do with a call: exactly one of route, ivr, collect_zip, play, voicemail, ..."""

    route: Name | None = None
    max_attempts: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=100)] | None = None
    failover_on: FailoverList | None = None
    fallback: ActionSpec | None = None
    ivr: Name | None = None
    collect_zip: CollectZipSpec | None = None
    play: Sound | None = None
    voicemail: Mailbox | None = None
    reject: Literal["busy", "congestion", "unavailable", "rejected"] | None = None
    hangup: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> ActionSpec:
        """Require exactly one action, and route options only with ``route``."""
        given = [key for key in ACTION_KEYS if getattr(self, key) is not None]
        problems: list[tuple[Loc, str]] = []
        if not given:
            problems.append(((), f"needs an action: one of {', '.join(ACTION_KEYS)}"))
        for extra in given[1:]:
            problems.append(((extra,), f"give one action, not both {given[0]!r} and {extra!r}"))
        if self.route is None:
            for option in ("max_attempts", "failover_on", "fallback"):
                if getattr(self, option) is not None:
                    problems.append(((option,), f"{option!r} only goes with 'route'"))
        _raise_problems(problems)
        return self

    @property
    def kind(self) -> str:
        """The action key that is set."""
        return next(key for key in ACTION_KEYS if getattr(self, key) is not None)


class IvrMenu(_Model):
    """An IVR menu: a prompt, then up to ``max_digits`` DTMF digits."""

    name: Name
    prompt: Sound
    digit_timeout: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=60)] = 5
    max_digits: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=20)] = 1
    retries: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=10)] = 2
    choices: DigitsList = ()
    invalid: Annotated[ActionSpec | None, BeforeValidator(_repeat_is_none)] = None
    timeout: Annotated[ActionSpec | None, BeforeValidator(_repeat_is_none)] = None

    @model_validator(mode="after")
    def _choices_fit(self) -> IvrMenu:
        """Require choices no longer than ``max_digits``, each listed once."""
        problems: list[tuple[Loc, str]] = []
        for i, choice in enumerate(self.choices):
            if len(choice) > self.max_digits:
                problems.append(
                    (("choices", i), f"{choice!r} is longer than max_digits {self.max_digits}")
                )
            if choice in self.choices[:i]:
                problems.append((("choices", i), f"{choice!r} is listed twice"))
        _raise_problems(problems)
        return self

    def accepts(self, digits: str) -> bool:
        """Tell whether digits the caller entered are a valid choice."""
        if not digits:
            return False
        return digits in self.choices if self.choices else len(digits) <= self.max_digits


class Conditions(_Model):
    """What a call must have for a rule to match (all conditions must hold)."""

    tracking_number: E164List | None = None
    campaign: NameList | None = None
    source: TextList | None = None
    medium: TextList | None = None
    keyword: TextList | None = None
    dnis: E164List | None = None
    ani_prefix: AniPrefixList | None = None
    area_code: AreaCodeList | None = None
    state: StateList | None = None
    country: RegionList | None = None
    zip: ZipList | None = None
    ivr: Mapping[Name, DigitsList] | None = None
    hours: Hours | None = None
    closed_dates: tuple[ClosedDate, ...] = ()
    timezone: TimeZoneName | None = None
    repeat_caller: StrictBool | None = None
    anonymous: StrictBool | None = None
    in_list: NameList | None = None
    not_in_list: NameList | None = None

    def is_empty(self) -> bool:
        """Tell whether there is no condition at all (the rule matches every call)."""
        return not self.closed_dates and all(
            getattr(self, key) is None for key in type(self).model_fields if key != "closed_dates"
        )


class Rule(ActionSpec):
    """A routing rule: conditions (``when``) and one action; the first rule that matches wins."""

    name: Name | None = None
    when: Conditions = Conditions()


class Campaign(_Model):
    """A marketing campaign: attribution labels and the ordered targets to ring by default."""

    name: Name
    source: Text | None = None
    medium: Text | None = None
    keyword: Text | None = None
    ad: Text | None = None
    route: tuple[Name, ...] = Field(default=(), min_length=1)
    record: bool = False  # record this campaign's calls (see `recordings`)
    convert_after: ConvertAfter | None = None  # pay per call: seconds to convert (buyers' default)


class TrackingNumber(_Model):
    """A tracking number (DNIS) with its campaign and optional per-number attribution."""

    number: E164
    original: str = ""
    campaign: Name
    source: Text | None = None
    medium: Text | None = None
    keyword: Text | None = None
    ad: Text | None = None


class UnknownNumber(_Model):
    """Where a call to a number not listed in ``numbers`` goes."""

    campaign: Name


# --- pay per call: buyers and publishers ------------------------------------------------------


def _decimals(amount: Decimal) -> int:
    """Return how many digits an amount has after the point (``25.50`` has 2)."""
    exponent = amount.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _amount_problems(
    amounts: Iterator[tuple[Loc, Decimal]], currency: str
) -> Iterator[tuple[Loc, str]]:
    """Yield a problem for each amount with more decimals than its currency has."""
    digits = CURRENCY_DIGITS.get(currency, 2)
    for loc, amount in amounts:
        if _decimals(amount.normalize()) > digits:
            yield loc, f"{amount} has more decimals than {currency} has ({digits})"


class RevenueTier(_Model):
    """Revenue of a converted call that lasted at least ``min_seconds``."""

    min_seconds: ConvertAfter
    amount: Amount


class Revenue(_Model):
    """What a buyer pays per converted call: ``per_call``, or ``tiers`` by duration."""

    per_call: Amount | None = None
    tiers: tuple[RevenueTier, ...] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Revenue:
        """Require exactly one of per_call and tiers; tiers in increasing order of seconds."""
        if (self.per_call is None) == (self.tiers is None):
            raise ValueError("give either 'per_call' or 'tiers'")
        problems: list[tuple[Loc, str]] = []
        if self.tiers is not None and not self.tiers:
            problems.append((("tiers",), "needs at least one tier"))
        for i, tier in enumerate(self.tiers or ()):
            if i and tier.min_seconds <= self.tiers[i - 1].min_seconds:  # type: ignore[index]
                problems.append(
                    (("tiers", i, "min_seconds"), "tiers must be in increasing min_seconds")
                )
        _raise_problems(problems)
        return self

    def amounts(self) -> Iterator[tuple[Loc, Decimal]]:
        """Yield (location, amount) of every amount."""
        if self.per_call is not None:
            yield ("per_call",), self.per_call
        for i, tier in enumerate(self.tiers or ()):
            yield ("tiers", i, "amount"), tier.amount


def _one_metric(data: Any, metrics: tuple[str, ...]) -> Any:
    """Require a cap to count exactly one of ``metrics``."""
    if isinstance(data, dict):
        given = [m for m in metrics if m in data]
        if len(given) > 1:
            _raise_problems([((given[1],), f"give one of {', '.join(metrics)}, not both")])
        if not given and not set(data) - set(metrics):
            raise ValueError(f"needs one of {', '.join(metrics)}")
    return data


class BuyerCapLimit(_Model):
    """A buyer cap per period: at most N conversions, or at most this much revenue."""

    conversions: Count | None = None
    revenue: Amount | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        """Require exactly one of conversions and revenue."""
        return _one_metric(data, ("conversions", "revenue"))


class PublisherCapLimit(_Model):
    """A publisher cap per period: at most N paid conversions, or at most this much payout."""

    conversions: Count | None = None
    payout: Amount | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        """Require exactly one of conversions and payout."""
        return _one_metric(data, ("conversions", "payout"))


def _billing_periods(data: Any) -> Any:
    """Name an unknown billing cap period plainly."""
    if isinstance(data, dict):
        _raise_problems(
            [
                ((key,), f"unknown cap period {key!r} (use {', '.join(BILLING_CAP_PERIODS)})")
                for key in data
                if key not in BILLING_CAP_PERIODS
            ]
        )
    return data


class BuyerCaps(_Model):
    """Buyer caps per hour, day and month in the buyer's time zone."""

    hourly: BuyerCapLimit | None = None
    daily: BuyerCapLimit | None = None
    monthly: BuyerCapLimit | None = None

    @model_validator(mode="before")
    @classmethod
    def _periods(cls, data: Any) -> Any:
        """Name an unknown cap period plainly."""
        return _billing_periods(data)

    def limits(self) -> Iterator[tuple[str, BuyerCapLimit]]:
        """Yield (period, limit) of each cap that is set."""
        for period in BILLING_CAP_PERIODS:
            limit = getattr(self, period)
            if limit is not None:
                yield period, limit


class PublisherCaps(_Model):
    """Publisher caps per hour, day and month in the publisher's time zone."""

    hourly: PublisherCapLimit | None = None
    daily: PublisherCapLimit | None = None
    monthly: PublisherCapLimit | None = None

    @model_validator(mode="before")
    @classmethod
    def _periods(cls, data: Any) -> Any:
        """Name an unknown cap period plainly."""
        return _billing_periods(data)

    def limits(self) -> Iterator[tuple[str, PublisherCapLimit]]:
        """Yield (period, limit) of each cap that is set."""
        for period in BILLING_CAP_PERIODS:
            limit = getattr(self, period)
            if limit is not None:
                yield period, limit


class Duplicate(_Model):
    """A caller who converted for this buyer (or campaign) within ``window`` is a duplicate."""

    window: Window
    per: Literal["buyer", "campaign"] = "buyer"  # converted for this buyer, or this campaign
    bill: StrictBool = False  # bill the buyer for a duplicate anyway
    pay: StrictBool = False  # pay the publisher for a duplicate anyway
    route_elsewhere: StrictBool = True  # skip this buyer's targets for a duplicate caller

    @property
    def seconds(self) -> int | None:
        """The window in seconds, None for ever."""
        return parse_window(self.window)


class Buyer(_Model):
    """Who pays for calls to its targets."""

    name: Name
    targets: NameList = Field(min_length=1)
    currency: Currency = "USD"
    revenue: Revenue
    convert_after: ConvertAfter | None = None
    count_from: Literal["answer", "accept"] = "answer"
    caps: BuyerCaps | None = None
    timezone: TimeZoneName = DEFAULT_TIMEZONE
    duplicate: Duplicate | None = None

    @model_validator(mode="after")
    def _amounts(self) -> Buyer:
        """Require amounts with no more decimals than the currency has."""
        amounts = [(("revenue", *loc), a) for loc, a in self.revenue.amounts()]
        for period, limit in self.caps.limits() if self.caps else ():
            if limit.revenue is not None:
                amounts.append((("caps", period, "revenue"), limit.revenue))
        _raise_problems(list(_amount_problems(iter(amounts), self.currency)))
        return self


class Payout(_Model):
    """What a publisher is paid per converted call: ``per_call``, or ``percent`` of revenue."""

    per_call: Amount | None = None
    percent: Percent | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Payout:
        """Require exactly one of per_call and percent."""
        if (self.per_call is None) == (self.percent is None):
            raise ValueError("give either 'per_call' or 'percent'")
        return self


class Publisher(_Model):
    """Who is paid for the calls it brings: to its tracking numbers, or of its campaigns."""

    name: Name
    numbers: E164List = ()
    campaigns: NameList = ()
    currency: Currency = "USD"
    payout: Payout
    convert_after: ConvertAfter | None = None
    caps: PublisherCaps | None = None
    timezone: TimeZoneName = DEFAULT_TIMEZONE

    @model_validator(mode="after")
    def _owns(self) -> Publisher:
        """Require numbers or campaigns, and amounts that fit the currency."""
        if not self.numbers and not self.campaigns:
            raise ValueError("needs 'numbers' (tracking numbers) or 'campaigns'")
        amounts: list[tuple[Loc, Decimal]] = []
        if self.payout.per_call is not None:
            amounts.append((("payout", "per_call"), self.payout.per_call))
        for period, limit in self.caps.limits() if self.caps else ():
            if limit.payout is not None:
                amounts.append((("caps", period, "payout"), limit.payout))
        _raise_problems(list(_amount_problems(iter(amounts), self.currency)))
        return self


#: Prefix of the implicit group of a campaign's ``route`` list.
CAMPAIGN_GROUP_PREFIX = "campaign:"
_NUMBER_CONDITIONS = ("ani_prefix", "area_code", "state", "country", "in_list")


_PATH_RE = re.compile(r"/[A-Za-z0-9_./-]{0,200}\Z")


def _check_dir(value: str) -> str:
    """Require an absolute path of plain characters (it goes into a MixMonitor argument)."""
    if not _PATH_RE.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not an absolute path of letters, digits, _ . / -")
    return value.rstrip("/") or "/"


Directory = Annotated[str, AfterValidator(_check_dir)]


class Recordings(_Model):
    """Where call recordings go and how long they are kept."""

    dir: Directory = "/var/spool/asterisk/monitor/callflow"  # as Asterisk writes them
    local_dir: Directory | None = None  # as the daemon sees them, if different (chroot, NFS)
    format: Literal["wav", "gsm", "wav49"] = "wav"
    retention_days: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=36500)] = 90
    split: bool = False  # also one file per party (-caller, -agent)
    notice: Sound | None = None  # played to the caller before ringing (e.g. "calls are recorded")

    @property
    def daemon_dir(self) -> str:
        """The recordings folder as the daemon sees it."""
        return self.local_dir or self.dir


class Config(_Model):
    """The whole configuration file."""

    version: Annotated[Literal[1], BeforeValidator(_no_bool)]
    settings: Settings = Settings()
    trunks: Mapping[Name, Trunk] = {}
    targets: Mapping[Name, Target] = {}
    groups: Mapping[Name, Group] = {}
    lists: Mapping[Name, tuple[ListEntry, ...]] = {}
    menus: Mapping[Name, IvrMenu] = {}
    rules: tuple[Rule, ...] = ()
    campaigns: Mapping[Name, Campaign]
    numbers: tuple[TrackingNumber, ...] = ()
    unknown_number: UnknownNumber
    recordings: Recordings = Recordings()
    events: EventsConfig = EventsConfig()
    buyers: Mapping[Name, Buyer] = {}
    publishers: Mapping[Name, Publisher] = {}

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Fill names from keys, default ring timeouts and zones, and normalise phone numbers."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        country = _raw_country(settings)
        timeout = _raw_ring_timeout(settings)
        tz = _raw_timezone(settings)
        if data.get("settings") is None:
            data.pop("settings", None)
        for section in ("trunks", "targets", "campaigns", "groups", "menus", "buyers",
                        "publishers"):  # fmt: skip
            if section in data:
                data[section] = _named(data[section])
        for section in ("buyers", "publishers"):
            if isinstance(data.get(section), dict):
                data[section] = {
                    k: _prepare_account(v, tz, country) for k, v in data[section].items()
                }
        if isinstance(data.get("targets"), dict):
            defaults = {"ring_timeout": timeout, "timezone": tz}
            data["targets"] = {
                k: _prepare_target(v, defaults, country) for k, v in data["targets"].items()
            }
        if isinstance(data.get("groups"), dict):
            data["groups"] = {
                k: {"timezone": tz, **v} if isinstance(v, dict) else v
                for k, v in data["groups"].items()
            }
        if isinstance(data.get("numbers"), list):
            data["numbers"] = [_prepare_number(v, country) for v in data["numbers"]]
        if isinstance(data.get("lists"), dict):
            data["lists"] = {k: _prepare_list(v, country) for k, v in data["lists"].items()}
        if isinstance(data.get("rules"), list):
            data["rules"] = [_prepare_rule(v, country) for v in data["rules"]]
        return data

    @model_validator(mode="after")
    def _references(self) -> Config:
        """Check that every name refers to something defined, and that every rule can match."""
        _raise_problems(list(self._reference_problems()))
        return self

    # --- lookups used by the engine and the call flow ---

    def route_targets(self, campaign: str) -> tuple[Target, ...]:
        """Return the targets a campaign rings by default, in order."""
        return tuple(self.targets[name] for name in self.campaigns[campaign].route)

    def rule_name(self, index: int) -> str:
        """Return the name of a rule: its ``name``, else ``rules[i]``."""
        return self.rules[index].name or f"rules[{index}]"

    def group(self, name: str) -> Group:
        """Return a group by name, including ``campaign:<name>``, a campaign's ``route`` list."""
        if name.startswith(CAMPAIGN_GROUP_PREFIX):
            campaign = self.campaigns[name.removeprefix(CAMPAIGN_GROUP_PREFIX)]
            members = tuple(
                Member.model_construct(target=t, priority=i, weight=None)
                for i, t in enumerate(campaign.route)
            )
            return Group.model_construct(
                name=name, strategy="priority", targets=members, sticky=None, caps=None,
                concurrency=None, timezone=self.settings.timezone,
            )  # fmt: skip
        return self.groups[name]

    def group_names(self) -> tuple[str, ...]:
        """Return the names of every group, the implicit campaign groups included."""
        implicit = (CAMPAIGN_GROUP_PREFIX + c for c, v in self.campaigns.items() if v.route)
        return (*self.groups, *implicit)

    def matches_every_call(self, rule: Rule) -> bool:
        """Tell whether a rule ends matching for every call (no conditions, a final action)."""
        return rule.when.is_empty() and rule.ivr is None and rule.collect_zip is None

    # --- checks ---

    def _reference_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield (location, message) for each dangling reference, duplicate or dead rule."""
        yield from self._name_problems()
        for key, target in self.targets.items():
            if target.trunk is not None and target.trunk not in self.trunks:
                yield ("targets", key, "trunk"), f"unknown trunk {target.trunk!r}"
        yield from self._group_problems()
        for key, campaign in self.campaigns.items():
            for i, name in enumerate(campaign.route):
                if name not in self.targets:
                    yield ("campaigns", key, "route", i), f"unknown target {name!r}"
        yield from self._number_problems()
        if self.unknown_number.campaign not in self.campaigns:
            name = self.unknown_number.campaign
            yield ("unknown_number", "campaign"), f"unknown campaign {name!r}"
        for loc, action in self._actions():
            yield from self._action_problems(action, loc)
        yield from self._rule_problems()
        yield from self._billing_problems()

    def _name_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for each entry whose ``name`` was written and differs from its key."""
        for section in ("trunks", "targets", "campaigns", "groups", "menus", "buyers",
                        "publishers"):  # fmt: skip
            for key, item in getattr(self, section).items():
                if item.name != key:
                    yield (section, key, "name"), "remove 'name': the name is the key"

    def _billing_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield problems of buyers and publishers: unknown or twice-owned targets and numbers."""
        owner: dict[str, str] = {}
        for key, buyer in self.buyers.items():
            for i, name in enumerate(buyer.targets):
                loc = ("buyers", key, "targets", i)
                if name not in self.targets:
                    yield loc, f"unknown target {name!r}"
                elif name in owner:
                    yield loc, f"target {name!r} already belongs to buyer {owner[name]!r}"
                owner.setdefault(name, key)
        listed = {n.number for n in self.numbers}
        number_owner: dict[str, str] = {}
        campaign_owner: dict[str, str] = {}
        for key, publisher in self.publishers.items():
            for i, number in enumerate(publisher.numbers):
                loc = ("publishers", key, "numbers", i)
                if number not in listed:
                    yield loc, f"{number} is not in 'numbers'"
                elif number in number_owner:
                    yield loc, f"{number} already belongs to publisher {number_owner[number]!r}"
                number_owner.setdefault(number, key)
            for i, name in enumerate(publisher.campaigns):
                loc = ("publishers", key, "campaigns", i)
                if name not in self.campaigns:
                    yield loc, f"unknown campaign {name!r}"
                elif name in campaign_owner:
                    yield loc, f"campaign {name!r} already belongs to {campaign_owner[name]!r}"
                campaign_owner.setdefault(name, key)
            if publisher.payout.percent is not None:
                for name, buyer in self.buyers.items():
                    if buyer.currency != publisher.currency:
                        yield (
                            ("publishers", key, "payout", "percent"),
                            f"a percentage of revenue needs one currency: buyer {name!r} pays "
                            f"in {buyer.currency}, this publisher is paid in {publisher.currency}",
                        )

    def _group_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for each empty group, unknown member or member listed twice."""
        for key, group in self.groups.items():
            if not group.targets:
                yield ("groups", key, "targets"), "a group needs at least one target"
            seen: set[str] = set()
            for i, member in enumerate(group.targets):
                loc = ("groups", key, "targets", i)
                if member.target not in self.targets:
                    yield loc, f"unknown target {member.target!r}"
                elif member.target in seen:
                    yield loc, f"target {member.target!r} is listed twice"
                seen.add(member.target)

    def _number_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for each tracking number of an unknown campaign, or listed twice."""
        seen: dict[str, int] = {}
        for i, number in enumerate(self.numbers):
            if number.campaign not in self.campaigns:
                yield ("numbers", i, "campaign"), f"unknown campaign {number.campaign!r}"
            if number.number in seen:
                first = _format_loc(("numbers", seen[number.number]))
                message = f"duplicate tracking number {number.number} (also {first})"
                yield ("numbers", i, "number"), message
            seen.setdefault(number.number, i)

    def _actions(self) -> Iterator[tuple[Loc, ActionSpec]]:
        """Yield every action of the file: rules, their fallbacks and the menus' branches."""
        stack: list[tuple[Loc, ActionSpec]] = [(("rules", i), r) for i, r in enumerate(self.rules)]
        for key, menu in self.menus.items():
            for branch in ("invalid", "timeout"):
                spec = getattr(menu, branch)
                if spec is not None:
                    stack.append((("menus", key, branch), spec))
        while stack:
            loc, action = stack.pop(0)
            yield loc, action
            if action.fallback is not None:
                stack.append(((*loc, "fallback"), action.fallback))

    def _action_problems(self, action: ActionSpec, loc: Loc) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for an action naming an unknown group or menu."""
        if action.route is not None and action.route not in self.groups:
            hint = " (a target: list it in a group)" if action.route in self.targets else ""
            yield (*loc, "route"), f"unknown group {action.route!r}{hint}"
        if action.ivr is not None and action.ivr not in self.menus:
            yield (*loc, "ivr"), f"unknown menu {action.ivr!r}"
        nested = loc[0] != "rules" or len(loc) > 2
        for key in ("ivr", "collect_zip"):
            if nested and getattr(action, key) is not None:
                yield (*loc, key), f"{key!r} cannot be a fallback or a menu branch: use a rule"

    def _rule_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield problems of the rules: duplicate names, bad conditions, rules that never match."""
        names: dict[str, int] = {}
        catch_all: int | None = None
        run_menus = {action.ivr for _, action in self._actions() if action.ivr is not None}
        campaigns = {n.number: n.campaign for n in self.numbers}
        for i, rule in enumerate(self.rules):
            loc: Loc = ("rules", i)
            if rule.name is not None:
                if rule.name in names:
                    yield (
                        (*loc, "name"),
                        f"duplicate rule name {rule.name!r} (also rules[{names[rule.name]}])",
                    )
                names.setdefault(rule.name, i)
            if catch_all is not None:
                yield (
                    loc,
                    (
                        f"can never match: {self.rule_name(catch_all)!r} (rules[{catch_all}]) "
                        "above matches every call"
                    ),
                )
            yield from self._condition_problems(rule.when, (*loc, "when"), run_menus, campaigns)
            if catch_all is None and self.matches_every_call(rule):
                catch_all = i
        if catch_all is None:
            for key, campaign in self.campaigns.items():
                if not campaign.route:
                    yield (
                        ("campaigns", key),
                        (
                            "needs 'route' (targets for calls no rule matches), "
                            "or add a last rule without conditions"
                        ),
                    )

    def _condition_problems(
        self, when: Conditions, loc: Loc, run_menus: set[str], campaigns: Mapping[str, str]
    ) -> Iterator[tuple[Loc, str]]:
        """Yield problems of one rule's conditions: unknown names and contradictions."""
        for key in type(when).model_fields:
            if getattr(when, key) == () and key != "closed_dates":
                yield (*loc, key), "an empty list can never match"
        for name in when.campaign or ():
            if name not in self.campaigns:
                yield (*loc, "campaign"), f"unknown campaign {name!r}"
        for key in ("in_list", "not_in_list"):
            for name in getattr(when, key) or ():
                if name not in self.lists:
                    yield (*loc, key), f"unknown list {name!r}"
        yield from self._ivr_condition_problems(when, loc, run_menus)
        yield from _hours_problems(when.hours, (*loc, "hours"))
        if when.timezone is not None and when.hours is None and not when.closed_dates:
            yield (*loc, "timezone"), "'timezone' only applies to 'hours' and 'closed_dates'"
        if when.anonymous:
            for key in (*_NUMBER_CONDITIONS, "repeat_caller"):
                if getattr(when, key) not in (None, False):
                    yield (*loc, key), f"can never match: anonymous callers have no number ({key})"
        yield from _tracking_condition_problems(when, loc, campaigns)

    def _ivr_condition_problems(
        self, when: Conditions, loc: Loc, run_menus: set[str]
    ) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for an IVR condition on an unknown or never-run menu, or a bad choice."""
        for menu_name, choices in (when.ivr or {}).items():
            menu = self.menus.get(menu_name)
            if menu is None:
                yield (*loc, "ivr", menu_name), f"unknown menu {menu_name!r}"
                continue
            if menu_name not in run_menus:
                yield (
                    (*loc, "ivr", menu_name),
                    (f"can never match: no rule runs menu {menu_name!r} (ivr: {menu_name})"),
                )
            for j, digits in enumerate(choices):
                if not menu.accepts(digits):
                    listed = ", ".join(menu.choices) or f"up to {menu.max_digits} digits"
                    yield (
                        (*loc, "ivr", menu_name, j),
                        f"can never match: menu {menu_name!r} has no choice {digits!r} ({listed})",
                    )


def _tracking_condition_problems(
    when: Conditions, loc: Loc, campaigns: Mapping[str, str]
) -> Iterator[tuple[Loc, str]]:
    """Yield a problem for a tracking number that is not one, or not of the rule's campaigns."""
    for j, number in enumerate(when.tracking_number or ()):
        campaign = campaigns.get(number)
        if campaign is None:
            yield (*loc, "tracking_number", j), f"{number} is not in 'numbers'"
        elif when.campaign is not None and campaign not in when.campaign:
            message = (
                f"can never match: {number} belongs to campaign {campaign!r}, "
                f"not {', '.join(when.campaign)}"
            )
            yield (*loc, "tracking_number", j), message


def _raw_country(settings: dict[Any, Any]) -> str:
    """Return the default country as written if usable, else the built-in default."""
    value = settings.get("default_country", DEFAULT_COUNTRY)
    if isinstance(value, str) and value.upper() in phonenumbers.SUPPORTED_REGIONS:
        return value.upper()
    return DEFAULT_COUNTRY


def _raw_ring_timeout(settings: dict[Any, Any]) -> int:
    """Return the default ring timeout as written if usable, else the built-in default."""
    value = settings.get("ring_timeout", DEFAULT_RING_TIMEOUT)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 600:
        return value
    return DEFAULT_RING_TIMEOUT


def _raw_timezone(settings: dict[Any, Any]) -> str:
    """Return the default time zone as written if usable, else UTC."""
    value = settings.get("timezone", DEFAULT_TIMEZONE)
    try:
        return _check_timezone(value) if isinstance(value, str) else DEFAULT_TIMEZONE
    except ValueError:
        return DEFAULT_TIMEZONE


def _named(section: object) -> object:
    """Give each mapping entry of a keyed section its ``name`` (an empty entry is ``{}``)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        return section
    named: dict[Any, Any] = {}
    for key, value in section.items():
        item = {} if value is None else value
        if isinstance(item, dict):
            item = {"name": key, **item}
        named[key] = item
    return named


def _prepare_target(value: object, defaults: dict[str, object], country: str) -> object:
    """Default a target's ring timeout and zone, and normalise its PSTN number."""
    if not isinstance(value, dict):
        return value
    value = {**defaults, **value}
    if "number" in value:
        value["number"] = _normalise_written(value["number"], country)
    return value


def _prepare_account(value: object, tz: str, country: str) -> object:
    """Default a buyer's or publisher's zone, and normalise a publisher's tracking numbers."""
    if not isinstance(value, dict):
        return value
    value = {"timezone": tz, **value}
    numbers = _listify(value.get("numbers"))
    if isinstance(numbers, list):
        value["numbers"] = [_normalise_written(v, country) for v in numbers]
    return value


def _prepare_number(value: object, country: str) -> object:
    """Normalise a tracking number to E.164, keeping what was written in ``original``."""
    if not isinstance(value, dict) or "number" not in value:
        return value
    written = value["number"]
    prepared = {**value, "number": _normalise_written(written, country)}
    if isinstance(written, (str, int)) and not isinstance(written, bool):
        prepared.setdefault("original", str(written))
    return prepared


def _prepare_list_number(value: object, country: str) -> object:
    """Normalise a list entry's number to E.164 (prefixes ending in ``*`` stay as written)."""
    if isinstance(value, str) and value.endswith("*"):
        return value
    return _normalise_written(value, country)


def _prepare_list(entries: object, country: str) -> object:
    """Normalise the numbers of a caller list."""
    if not isinstance(entries, list):
        return entries
    prepared: list[object] = []
    for entry in entries:
        if isinstance(entry, dict) and "number" in entry:
            entry = {**entry, "number": _prepare_list_number(entry["number"], country)}
        elif not isinstance(entry, dict):
            entry = _prepare_list_number(entry, country)
        prepared.append(entry)
    return prepared


def _prepare_rule(rule: object, country: str) -> object:
    """Normalise the phone numbers of a rule's ``tracking_number`` and ``dnis`` conditions."""
    if not isinstance(rule, dict) or not isinstance(rule.get("when"), dict):
        return rule
    when = dict(rule["when"])
    for key in ("tracking_number", "dnis"):
        values = _listify(when.get(key))
        if isinstance(values, list):
            when[key] = [_normalise_written(v, country) for v in values]
    return {**rule, "when": when}


# --- YAML with line and column numbers --------------------------------------------------------

#: A place in the file: 1-based line and column.
Pos = tuple[int, int]


class _PyLoader(yaml.SafeLoader):
    """A YAML loader without YAML 1.1 surprises (``NO`` as false, ``0123`` as octal, dates)."""


# libyaml's parser when PyYAML has it: about 4 times faster on large files, same positions.
_FastBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_FastBase):  # type: ignore[valid-type,misc]
    """The same loader on libyaml (which cannot read text with lone surrogates)."""


for _cls in (_PyLoader, _Loader):
    _cls.yaml_implicit_resolvers = {}
    for _tag, _pattern, _first in (
        ("tag:yaml.org,2002:bool", r"(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
        ("tag:yaml.org,2002:null", r"(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:int", r"-?(?:0|[1-9][0-9]*)\Z", "-0123456789"),
        ("tag:yaml.org,2002:float", r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z", "-0123456789"),
        ("tag:yaml.org,2002:merge", r"<<\Z", "<"),
    ):
        _cls.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _compose(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """Parse YAML into its node tree (for positions) and its Python data."""
    try:
        try:
            text.encode("utf-8")
            loader: yaml.SafeLoader = _Loader(text)
        except UnicodeEncodeError:  # a lone surrogate: the Python reader names it
            loader = _PyLoader(text)
    except yaml.YAMLError as exc:  # a character YAML does not allow
        raise ConfigError([_yaml_problem(exc, text, filename)]) from None
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text, filename)]) from None
    finally:
        loader.dispose()
    return node, data


def _yaml_problem(exc: yaml.YAMLError, text: str, filename: str) -> str:
    """Describe a YAML error as ``file:line:col: YAML syntax error: ...``."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        problem = f"character {shown} is not allowed"
    else:
        line, col, problem = 1, 1, str(exc)
    return f"{filename}:{line}:{col}: YAML syntax error: {problem}"


def _mark(node: yaml.Node) -> Pos:
    """Return the 1-based line and column where a node starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[Pos, str]]:
    """Yield (position, message) for each key written twice in one mapping."""
    stack, visited = [node], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                name = str(key.value)
                if isinstance(key, yaml.ScalarNode) and name != "<<":
                    if name in seen:
                        yield _mark(key), f"duplicate key {name!r}"
                    seen.add(name)
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _position_of(root: yaml.Node | None, loc: Loc) -> Pos:
    """Return the position of the deepest key or item found along a pydantic location."""
    pos = (1, 1) if root is None else _mark(root)
    node = root
    for part in loc:
        if part == "[key]":
            break
        found = _child(node, part)
        if found is None:
            break
        pos, node = found
    return pos


def _child(node: yaml.Node | None, part: str | int) -> tuple[Pos, yaml.Node] | None:
    """Return (position of the key or item, value node) of one step into a mapping or list."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return _mark(key), value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return _mark(item), item
    elif isinstance(node, yaml.ScalarNode) and part == 0:  # one value written for a list
        return _mark(node), node
    return None


def _format_loc(loc: Loc) -> str:
    """Render a location as ``targets.alice.endpoint`` or ``numbers[0].campaign``."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "dict_type": "must be a mapping (key: value)",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
}


def _messages(error: ErrorDetails) -> Iterator[tuple[Loc, str]]:
    """Turn one pydantic error into (location, message) pairs."""
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if error["type"] == "config_reference":
        for inner, message in ctx["problems"]:
            yield (*loc, *inner), message
        return
    if error["type"] == "literal_error":
        if loc == ("version",):
            yield loc, "must be 1 (the only format version)"
        else:
            yield loc, f"must be {ctx.get('expected', 'one of the listed values')}"
        return
    message = _FRIENDLY.get(error["type"], error["msg"])
    message = message.removeprefix("Value error, ")
    yield loc, message


def _validation_problems(exc: ValidationError, root: yaml.Node | None) -> list[tuple[Pos, str]]:
    """Map pydantic errors to (position, ``path: message``) pairs."""
    problems = []
    for error in exc.errors():
        for loc, message in _messages(error):
            problems.append((_position_of(root, loc), f"{_format_loc(loc)}: {message}"))
    return problems


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Parse and validate configuration text; raise ConfigError listing every ``file:line:col``."""
    root, data = _compose(text, filename)
    problems = list(_duplicate_keys(root))
    if not isinstance(data, dict):
        problems.append(
            ((1, 1), "the file must be a mapping with version, targets, campaigns, ...")
        )
    else:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, root))
    if problems:
        problems.sort(key=lambda problem: problem[0])
        raise ConfigError(
            [f"{filename}:{line}:{col}: {message}" for (line, col), message in problems]
        )
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; raise ConfigError on any problem."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    return parse_config(text, str(path))
