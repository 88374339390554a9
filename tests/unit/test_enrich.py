"""Tests for caller enrichment (ANI → E.164, geography, time zone, name)."""

from __future__ import annotations

import re._constants as C
import re._parser as _parser
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata

from callflow.enrich import NANP_VALIDITY_DIGITS, CallerInfo, enrich

NYC = {
    "e164": "+12125550100",
    "valid": True,
    "anonymous": False,
    "country": "US",
    "area_code": "212",
    "region": "New York",
    "state": "NY",
    "city": "New York",
    "timezone": "America/New_York",
}


def fullwidth(digits: str) -> str:
    """Return the same digits as fullwidth (U+FF10...) characters."""
    return "".join(chr(0xFF10 + int(d)) for d in digits)


def fields(info: CallerInfo, *names: str) -> dict[str, object]:
    """Return some fields of a CallerInfo as a dict."""
    return {name: getattr(info, name) for name in names}


@pytest.mark.parametrize(
    "ani", ["2125550100", "+12125550100", "12125550100", "+1 (212) 555-0100", "212.555.0100"]
)
def test_new_york_number(ani: str) -> None:
    info = enrich(ani, None)
    assert info.ani_raw == ani
    assert fields(info, *NYC) == NYC


def test_invalid_number_still_gets_its_area() -> None:
    info = enrich("2121234567", None)  # exchange 123 does not exist
    assert not info.valid
    assert info.e164 == "+12121234567"
    assert (info.area_code, info.state, info.city) == ("212", "NY", "New York")
    assert info.timezone == "America/New_York"


@pytest.mark.parametrize(
    ("ani", "state", "region", "city", "country", "zone"),
    [
        ("+13125550100", "IL", "Illinois", "Chicago", "US", "America/Chicago"),
        ("+12135550100", "CA", "California", "Los Angeles", "US", "America/Los_Angeles"),
        ("+15125550100", "TX", "Texas", None, "US", "America/Chicago"),
        ("+12025550100", "DC", "District of Columbia", "Washington", "US", "America/New_York"),
        ("+12065550100", "WA", "Washington", None, "US", "America/Los_Angeles"),
        ("+14165551234", "ON", "Ontario", None, "CA", "America/Toronto"),
        ("+17875550100", "PR", "Puerto Rico", None, "PR", "America/Puerto_Rico"),
    ],
)
def test_nanp_places(
    ani: str, state: str, region: str, city: str | None, country: str, zone: str
) -> None:
    info = enrich(ani, None)
    assert (info.state, info.region, info.city) == (state, region, city)
    assert (info.country, info.timezone) == (country, zone)


def test_uk_number() -> None:
    info = enrich("+442079460000", None)
    assert info.e164 == "+442079460000"
    assert info.valid
    assert (info.country, info.area_code, info.city) == ("GB", "20", "London")
    assert (info.state, info.region) == (None, None)
    assert info.timezone == "Europe/London"


def test_uk_number_with_international_prefix() -> None:
    assert enrich("011442079460000", None).e164 == "+442079460000"
    assert enrich("02079460000", None, "GB").e164 == "+442079460000"


def test_toll_free_has_no_place_or_zone() -> None:
    info = enrich("8005550001", None)
    assert (info.e164, info.valid, info.area_code) == ("+18005550001", True, "800")
    assert (info.state, info.city, info.timezone) == (None, None, None)


@pytest.mark.parametrize(
    "ani",
    [
        None,
        "",
        "   ",
        "unknown",
        "Unknown",
        "anonymous",
        "ANONYMOUS",
        "restricted",
        "Private",
        "unavailable",
        "withheld",
        "0",
        "0000",
        "sip:anonymous@anonymous.invalid",
        '"Anonymous"',
    ],
)
def test_anonymous_forms(ani: str | None) -> None:
    info = enrich(ani, "Anonymous")
    assert info == CallerInfo(ani_raw=ani, anonymous=True)


@pytest.mark.parametrize(
    "ani",
    ["abc", "12", "+", "+999123", "1" * 40, "2125550100x", "2125550100&drop", "\x00\x01", "\udcff"],
)
def test_garbage(ani: str) -> None:
    info = enrich(ani, None)
    assert info.ani_raw == ani
    assert (info.e164, info.valid, info.anonymous, info.state) == (None, False, False, None)


@pytest.mark.parametrize(
    "ani", ["\udcff\udcfe2125550100", "٢١٢٥٥٥٠١٠٠", fullwidth("2125550100"), "2125550100\u200b"]
)
def test_non_ascii_is_not_a_number(ani: str) -> None:
    info = enrich(ani, "\udcffname")
    assert info.e164 is None
    assert not info.anonymous


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("JOHN SMITH", "JOHN SMITH"),
        ('  "Jane  Doe"  ', "Jane Doe"),
        ("unknown", None),
        ("UNAVAILABLE", None),
        ("Anonymous", None),
        ("", None),
        (None, None),
        ("2125550100", None),
        ("+1 212-555-0100", None),
        ("Ann\x00\x07 Lee", "Ann Lee"),
        ("Zoë \udcff", "Zoë"),
        ("x" * 200, "x" * 64),
    ],
)
def test_caller_name_cleaning(name: str | None, expected: str | None) -> None:
    assert enrich("2125550100", name).caller_name == expected


def test_uri_forms() -> None:
    assert enrich("sip:+12125550100@carrier.example;user=phone", None).state == "NY"
    assert enrich("tel:+12125550100;phone-context=x", None).e164 == "+12125550100"


def test_bad_default_country_does_not_raise() -> None:
    assert enrich("2125550100", None, "XX").e164 is None
    assert enrich("+12125550100", None, "zz").state == "NY"
    assert enrich("2125550100", None, "us").state == "NY"


def test_results_are_cached() -> None:
    assert enrich("+13125550199", "A") is enrich("+13125550199", "A")


def _free_tail(items: Any) -> int:
    """How many trailing digits a parsed regex leaves unconstrained (a lower bound)."""
    digit = [(C.IN, [(C.CATEGORY, C.CATEGORY_DIGIT)])]
    free = 0
    for op, av in reversed(list(items)):
        if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] == av[1] and list(av[2]) == digit:
            free += av[0]
        elif (op, av) == digit[0]:
            free += 1
        elif op is C.SUBPATTERN:
            return free + _free_tail(av[-1])
        elif op is C.BRANCH:
            return free + min(_free_tail(branch) for branch in av[1])
        else:
            return free
    return free


def test_nanp_validity_follows_from_the_first_digits() -> None:
    # enrich() caches NANP validity per first NANP_VALIDITY_DIGITS digits: every pattern of
    # every NANP region's metadata must leave the rest of the number free.
    free = []
    for region in phonenumbers.region_codes_for_country_code(1):
        metadata = PhoneMetadata.metadata_for_region(region)
        assert metadata is not None
        for desc in (metadata.general_desc, metadata.fixed_line, metadata.mobile,
                     metadata.toll_free, metadata.premium_rate, metadata.shared_cost,
                     metadata.personal_number, metadata.voip, metadata.pager, metadata.uan,
                     metadata.voicemail):  # fmt: skip
            if desc is not None and desc.national_number_pattern:
                free.append(_free_tail(_parser.parse(desc.national_number_pattern)))
    assert len(free) > 100
    assert min(free) >= 10 - NANP_VALIDITY_DIGITS


@settings(max_examples=300)
@given(st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True))
def test_nanp_validity_matches_phonenumbers(national: str) -> None:
    number = phonenumbers.parse("+1" + national)
    assert enrich("+1" + national, None).valid == phonenumbers.is_valid_number(number)


@given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=40)))
def test_enrich_never_raises(ani: str | None, name: str | None) -> None:
    info = enrich(ani, name)
    assert info.ani_raw == ani
    assert info.e164 is None or info.e164.startswith("+")
    assert not (info.anonymous and info.e164)


@given(st.from_regex(r"\+?[0-9 ()-]{0,25}", fullmatch=True), st.sampled_from(["US", "GB", "XX"]))
def test_enrich_never_raises_on_numberish_input(ani: str, country: str) -> None:
    info = enrich(ani, None, country)
    if info.e164 is not None:
        assert info.e164[1:].isdigit()
        assert info.timezone != "Etc/Unknown"
