"""Compact ASCII JSON: orjson's output where it can, the standard library's where it cannot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from callflow import jsontext


def _stdlib(obj: Any, default: Any = None) -> str:
    return json.dumps(obj, separators=(",", ":"), default=default)


@pytest.mark.parametrize(
    "obj",
    [
        {
            "event": "call.end",
            "ring": 0.25,
            "talk": 12.0,
            "attempts": 2,
            "repeat": False,
            "rule": None,
            "ani": "+12125551234",
        },
        {"rounds": [{"rule": "vip", "checks": [["t1", "busy"], ["t2", None]]}], "ivr": []},
        {"legs": ("t0", "ANSWER"), "n": -7, "x": 1e-3, "quote": 'a "b" \\ c\n\t'},
        {1: "one", None: "none", False: "no", 2.5: "half"},
        [],
        "plain",
    ],
)
def test_the_same_text_as_the_standard_library(obj: Any) -> None:
    assert jsontext.encoder()(obj) == _stdlib(obj)


def test_non_ascii_is_escaped_as_the_standard_library_escapes_it() -> None:
    text = jsontext.encoder()({"city": "Montréal", "name": "Zoë 🙂"})
    assert text == _stdlib({"city": "Montréal", "name": "Zoë 🙂"})
    assert text.isascii() and "\\u00e9" in text


def test_what_orjson_refuses_is_still_written() -> None:
    garbled = b"Caller \xff".decode("utf-8", "surrogateescape")  # a lone surrogate
    encode = jsontext.encoder()
    assert encode({"name": garbled}) == '{"name":"Caller \\udcff"}'
    assert encode({"big": 2**70}) == '{"big":1180591620717411303424}'


@dataclass
class _Leg:
    target: str


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_default_renders_what_json_cannot_hold_on_either_path() -> None:
    encode = jsontext.encoder(default=repr)
    when = datetime(2026, 11, 23, tzinfo=UTC)
    obj = {"leg": _Leg("t1"), "other": _Opaque(), "at": when}
    assert encode(obj) == _stdlib(obj, default=repr)  # dataclasses and datetimes too
    assert encode({**obj, "city": "Montréal"}) == _stdlib({**obj, "city": "Montréal"}, repr)


def test_without_default_an_unknown_value_is_an_error() -> None:
    with pytest.raises(TypeError):
        jsontext.encoder()({"other": _Opaque()})


def test_orjson_writes_what_it_can() -> None:
    # The one visible difference, kept on purpose: the fast path is taken.
    assert jsontext.encoder()({"x": 1e-7}) == '{"x":1e-7}'
    assert _stdlib({"x": 1e-7}) == '{"x":1e-07}'
