"""Caller enrichment: the caller's number (ANI) → E.164, country, area code, state, city, zone.

Offline and cached: everything comes from phonenumbers' bundled metadata, geocoding and
time-zone prefix tables. Numbers that phonenumbers calls invalid (such as fictional 555 lines)
still get their area's geography from the prefix tables when their length is plausible.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import geocoder, timezone
from phonenumbers.phonenumber import PhoneNumber
from phonenumbers.tzdata import TIMEZONE_DATA

__all__ = ["CallerInfo", "enrich"]

_MAX_DIGITS = 20
_MAX_NAME = 64
_CACHE_SIZE = 16384
_NANP = 1

#: What carriers and Asterisk put in the caller number when it is withheld (lower case).
_WITHHELD = frozenset(
    {
        "", "unknown", "anonymous", "restricted", "private", "unavailable", "withheld",
        "blocked", "unknown caller", "no caller id", "out of area", "not available",
        "o", "p", "r", "s", "anonymous@anonymous.invalid", "asterisk",
    }
)  # fmt: skip
#: Caller names that mean "no name".
_NO_NAME = _WITHHELD | {"wireless caller", "cell phone", "toll free", "name unavailable"}
_PHONE_CHARS_RE = re.compile(r"\+?[0-9 ()./-]*\Z")
# A plain NANP number as carriers send it: +1NXXNXXXXXX, 1NXXNXXXXXX, or NXXNXXXXXX.
_NANP_PLAIN_RE = re.compile(r"(\+1|1)?([2-9][0-9]{2}[2-9][0-9]{6})\Z")
#: Every NANP number pattern in phonenumbers' metadata ends in at least three free digits, so a
#: NANP number's region, type and validity follow from its first seven (tests check the metadata).
NANP_VALIDITY_DIGITS = 7
_NANP_REGIONS = frozenset(phonenumbers.region_codes_for_country_code(_NANP))
_URI_SCHEME_RE = re.compile(r"(?:sips?|tel):", re.IGNORECASE)

# State, district and territory codes of the NANP regions phonenumbers' geocoder names, with the
# ISO country of each (US territories have their own ISO codes; Canada's provinces are "CA").
_US = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"  # noqa: E501
_US_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|"
    "District of Columbia|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|"
    "Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|"
    "Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|"
    "Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|"
    "Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)
_OTHER_STATES = {
    "PR": ("Puerto Rico", "PR"),
    "GU": ("Guam", "GU"),
    "VI": ("U.S. Virgin Islands", "VI"),
    "AS": ("American Samoa", "AS"),
    "MP": ("Northern Mariana Islands", "MP"),
    "AB": ("Alberta", "CA"),
    "BC": ("British Columbia", "CA"),
    "MB": ("Manitoba", "CA"),
    "NB": ("New Brunswick", "CA"),
    "NL": ("Newfoundland and Labrador", "CA"),
    "NS": ("Nova Scotia", "CA"),
    "NT": ("Northwest Territories", "CA"),
    "NU": ("Nunavut", "CA"),
    "ON": ("Ontario", "CA"),
    "PE": ("Prince Edward Island", "CA"),
    "QC": ("Quebec", "CA"),
    "SK": ("Saskatchewan", "CA"),
    "YT": ("Yukon", "CA"),
}
#: State code → (state name, ISO country).
_STATES: dict[str, tuple[str, str]] = {
    **{code: (name, "US") for code, name in zip(_US.split(), _US_NAMES.split("|"), strict=True)},
    **_OTHER_STATES,
}
#: Geocoder description → (state code, city) for descriptions that name a whole state.
_STATE_DESCRIPTIONS: dict[str, tuple[str, str | None]] = {
    **{name: (code, None) for code, (name, _) in _STATES.items()},
    "Washington State": ("WA", None),
    "Washington D.C.": ("DC", "Washington"),
    "British Colombia": ("BC", None),
    "Québec": ("QC", None),
}


@dataclass(frozen=True, slots=True, init=False)
class CallerInfo:
    """What the caller's number and name tell about the caller."""

    ani_raw: str | None
    e164: str | None = None
    valid: bool = False
    anonymous: bool = False
    country: str | None = None
    area_code: str | None = None
    region: str | None = None
    state: str | None = None
    city: str | None = None
    timezone: str | None = None
    caller_name: str | None = None

    def __init__(
        self,
        ani_raw: str | None,
        e164: str | None = None,
        valid: bool = False,
        anonymous: bool = False,
        country: str | None = None,
        area_code: str | None = None,
        region: str | None = None,
        state: str | None = None,
        city: str | None = None,
        timezone: str | None = None,
        caller_name: str | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "ani_raw", ani_raw)
        object.__setattr__(self, "e164", e164)
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "anonymous", anonymous)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "area_code", area_code)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "city", city)
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "caller_name", caller_name)


@dataclass(frozen=True, slots=True)
class _Place:
    """Country, region, state and city found for a number."""

    country: str | None = None
    region: str | None = None
    state: str | None = None
    city: str | None = None


def enrich(ani: str | None, caller_name: str | None, default_country: str = "US") -> CallerInfo:
    """Return what is known of a caller from its number and name; never raises."""
    try:
        return _enrich_cached(ani, caller_name, default_country)
    except Exception:  # never fail a call over its caller ID
        return CallerInfo(ani_raw=ani if isinstance(ani, str) else None)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _enrich_cached(ani: str | None, caller_name: str | None, default_country: str) -> CallerInfo:
    """Enrich one (ANI, name, country), memoised: the same callers call again."""
    name = clean_caller_name(caller_name)
    if is_withheld(ani):
        return CallerInfo(ani_raw=ani, anonymous=True, caller_name=name)
    fast = _NANP_PLAIN_RE.match(ani or "")
    if fast and (fast.group(1) or default_country.upper() in _NANP_REGIONS):
        return _nanp_caller(ani or "", fast.group(2), name)
    number = _parse(ani or "", default_country.upper())
    if number is None:
        return CallerInfo(ani_raw=ani, caller_name=name)
    region = phonenumbers.region_code_for_number(number)
    valid = region is not None and phonenumbers.is_valid_number_for_region(number, region)
    geographic = not valid or _is_geographic(number)
    place = _place(number, region, geographic)
    return CallerInfo(
        ani_raw=ani,
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        valid=valid,
        country=place.country,
        area_code=_area_code(number),
        region=place.region,
        state=place.state,
        city=place.city,
        timezone=_timezone(number, geographic),
        caller_name=name,
    )


def _nanp_caller(ani: str, national: str, name: str | None) -> CallerInfo:
    """Enrich a plain NANP number without parsing: validity per NPA-NXX-X, place per NPA-NXX."""
    valid = _nanp_valid(national[:NANP_VALIDITY_DIGITS])
    place, zone = _nanp_prefix(national[:6], valid)
    return CallerInfo(
        ani_raw=ani,
        e164="+1" + national,
        valid=valid,
        country=place.country,
        area_code=national[:3],
        region=place.region,
        state=place.state,
        city=place.city,
        timezone=zone,
        caller_name=name,
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _nanp_valid(prefix: str) -> bool:
    """Whether the NANP numbers starting with ``prefix`` (NANP_VALIDITY_DIGITS long) are valid."""
    number = PhoneNumber(country_code=_NANP, national_number=int(prefix.ljust(10, "0")))
    region = phonenumbers.region_code_for_number(number)
    return region is not None and phonenumbers.is_valid_number_for_region(number, region)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _nanp_prefix(prefix: str, valid: bool) -> tuple[_Place, str | None]:
    """Place and zone of a NANP exchange (NANP geocoding and zone data key on NPA-NXX)."""
    number = PhoneNumber(country_code=_NANP, national_number=int(prefix + "0000"))
    region = phonenumbers.region_code_for_number(number)
    geographic = not valid or _is_geographic(number)
    return _place(number, region, geographic), _timezone(number, geographic)


def is_withheld(ani: str | None) -> bool:
    """Tell whether a caller number means "withheld" (anonymous, restricted, all zeros...)."""
    if ani is None:
        return True
    if ani.isdigit() and ani.isascii():  # the usual caller number: withheld only if all zeros
        return not ani.strip("0")
    text = _URI_SCHEME_RE.sub("", ani.strip().strip("\"'<>")).strip().lower()
    if text in _WITHHELD or text.split("@", 1)[0] in _WITHHELD:
        return True
    return text.isascii() and text.isdigit() and not text.strip("0")


def clean_caller_name(name: str | None) -> str | None:
    """Return a printable caller name, or None when it is empty, withheld or just a number."""
    if name is None:
        return None
    text = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    text = " ".join(text.split()).strip("\"' ")[:_MAX_NAME].strip()
    if text.lower() in _NO_NAME or _PHONE_CHARS_RE.match(text):
        return None
    return text


def _parse(ani: str, region: str) -> PhoneNumber | None:
    """Parse a caller number made of digits and punctuation; None if it is not a number."""
    text = _URI_SCHEME_RE.sub("", ani.strip()).split("@", 1)[0].split(";", 1)[0].strip()
    if not _PHONE_CHARS_RE.match(text):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    try:
        number = phonenumbers.parse(("+" if text.startswith("+") else "") + digits, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def _area_code(number: PhoneNumber) -> str | None:
    """Return the NANP area code (NPA), or else the national destination code."""
    national = phonenumbers.national_significant_number(number)
    if number.country_code == _NANP:
        return national[:3] if len(national) == 10 else None
    length = phonenumbers.length_of_national_destination_code(number)
    return national[:length] if 0 < length < len(national) else None


def _is_geographic(number: PhoneNumber) -> bool:
    """Tell whether a valid number belongs to an area (fixed lines, some countries' mobiles)."""
    number_type = phonenumbers.number_type(number)
    return bool(phonenumbers.is_number_type_geographical(number_type, number.country_code or 0))


def _place(number: PhoneNumber, region: str | None, geographic: bool) -> _Place:
    """Work out country, region, state and city of a number (area prefix lookup if invalid)."""
    country = _country(number, region)
    description = str(geocoder.description_for_valid_number(number, "en")) if geographic else ""
    if not description:
        return _Place(country=country)
    if number.country_code == _NANP:
        return _nanp_place(description, country)
    if description == geocoder.country_name_for_number(number, "en"):
        return _Place(country=country)
    return _Place(country=country, city=description)


def _country(number: PhoneNumber, region: str | None) -> str | None:
    """Return the ISO country of a number, or of its country code when that has only one."""
    if region is None:
        regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
        region = regions[0] if len(regions) == 1 else None
    return None if region in (None, "001", "ZZ") else region


def _nanp_place(description: str, country: str | None) -> _Place:
    """Split a NANP description ("New York, NY", "Texas", "Washington D.C.") into a place."""
    parts = [part.strip() for part in description.split(",")]
    city: str | None
    if len(parts) >= 2 and parts[-1] in _STATES:
        state, city = parts[-1], parts[-2]
    elif description in _STATE_DESCRIPTIONS:
        state, city = _STATE_DESCRIPTIONS[description]
    else:
        return _Place(country=country, region=description)
    name, state_country = _STATES[state]
    return _Place(country=state_country, region=name, state=state, city=city)


def _timezone(number: PhoneNumber, geographic: bool) -> str | None:
    """Return the caller's IANA zone, or None when unknown or only known country-wide."""
    country_zones = _country_zones(number.country_code or 0)
    if geographic:
        zones = tuple(timezone.time_zones_for_geographical_number(number))
    else:
        zones = country_zones
    if not zones or zones[0] == timezone.UNKNOWN_TIMEZONE:
        return None
    if len(zones) > 1 and zones == country_zones:
        return None  # e.g. toll-free, or a mobile: any zone of the country
    return zones[0]


def _country_zones(country_code: int) -> tuple[str, ...]:
    """Return the zones phonenumbers lists for a whole country code."""
    return tuple(TIMEZONE_DATA.get(str(country_code), ()))
