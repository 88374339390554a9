"""Tests for tracking-number attribution (DNIS → campaign and labels)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callflow.config import parse_config
from callflow.tracking import Attribution, NumberIndex

CONFIG = """\
version: 1
targets:
  a: {endpoint: agent1}
campaigns:
  spring-promo: {source: google, medium: cpc, keyword: "emergency plumber", ad: ad-1, route: [a]}
  general:      {source: website, route: [a]}
  unattributed: {medium: unknown, route: [a]}
numbers:
  - {number: "8005550001", campaign: spring-promo, ad: "ad-17"}
  - {number: "+18005550002", campaign: general, source: billboard, medium: offline}
  - {number: "+442079460000", campaign: general}
unknown_number: {campaign: unattributed}
"""
_INDEX = NumberIndex(parse_config(CONFIG))


@pytest.fixture(scope="module")
def index() -> NumberIndex:
    """A NumberIndex over the test configuration."""
    return NumberIndex(parse_config(CONFIG))


@pytest.mark.parametrize(
    "dnis",
    [
        "8005550001",
        "18005550001",
        "+18005550001",
        "1-800-555-0001",
        "(800) 555-0001",
        "+1 800 555 0001",
        " 8005550001 ",
        "tel:+18005550001",
        "01118005550001",
    ],
)
def test_lookup_every_form(index: NumberIndex, dnis: str) -> None:
    result = index.lookup(dnis)
    assert result == Attribution(
        dnis=dnis,
        tracking_number="+18005550001",
        known=True,
        campaign="spring-promo",
        source="google",
        medium="cpc",
        keyword="emergency plumber",
        ad="ad-17",
    )


def test_per_number_labels_override_the_campaign(index: NumberIndex) -> None:
    result = index.lookup("8005550002")
    assert (result.campaign, result.source, result.medium) == ("general", "billboard", "offline")
    assert (result.keyword, result.ad) == (None, None)


def test_international_number(index: NumberIndex) -> None:
    for dnis in ("+442079460000", "442079460000", "011442079460000"):
        result = index.lookup(dnis)
        assert (result.tracking_number, result.known) == ("+442079460000", True), dnis


@pytest.mark.parametrize(
    "dnis",
    [
        "8005559999",
        "",
        "s",
        "abc",
        "+",
        "0",
        "1" * 40,
        "\x00\udcff",
        "".join(chr(0xFF10 + int(d)) for d in "8005550001"),
        "+999",
    ],
)
def test_unknown_and_garbage_go_to_unknown_campaign(index: NumberIndex, dnis: str) -> None:
    result = index.lookup(dnis)
    assert result == Attribution(
        dnis=dnis,
        tracking_number=None,
        known=False,
        campaign="unattributed",
        medium="unknown",
    )


def test_len_and_contains(index: NumberIndex) -> None:
    assert len(index) == 3
    assert "18005550001" in index
    assert "8005559999" not in index


def test_repeated_unknown_lookups_do_not_grow_the_index(index: NumberIndex) -> None:
    before = len(index._by_key)
    for i in range(100):
        index.lookup(f"80055{i:05d}9")
    assert len(index._by_key) == before


def test_default_country_applies() -> None:
    text = CONFIG.replace("version: 1\n", "version: 1\nsettings: {default_country: GB}\n")
    gb = NumberIndex(parse_config(text.replace('"8005550001"', '"+18005550001"')))
    assert gb.lookup("02079460000").tracking_number == "+442079460000"
    assert gb.lookup("2079460000").tracking_number == "+442079460000"


@given(st.text(max_size=60))
def test_lookup_never_raises(dnis: str) -> None:
    result = _INDEX.lookup(dnis)
    assert result.dnis == dnis
    assert result.known == (result.tracking_number is not None)


@given(st.from_regex(r"\+?[0-9 ()-]{0,25}", fullmatch=True))
def test_lookup_never_raises_on_numberish_input(dnis: str) -> None:
    result = _INDEX.lookup(dnis)
    assert result.campaign in {"spring-promo", "general", "unattributed"}
