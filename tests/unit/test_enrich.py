"""Tests for caller enrichment (ANI → E.164, geography, time zone, name)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callflow.enrich import CallerInfo, enrich

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


def test_lookup_is_cheap() -> None:
    start = time.perf_counter()
    for i in range(300):
        enrich(f"+1312555{i:04d}", None)
    uncached = (time.perf_counter() - start) / 300
    start = time.perf_counter()
    for i in range(300):
        enrich(f"+1312555{i:04d}", None)
    cached = (time.perf_counter() - start) / 300
    assert uncached < 0.002
    assert cached < 0.0001


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
