"""Property: whatever plain values a call carries come back from SQLite unchanged."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import callflow
from callflow.store import (
    DISPOSITIONS,
    CallEnd,
    CallStart,
    CdrReader,
    CdrStore,
    DialAttempt,
)
from callflow.store.records import HANGUP_BY

_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(max_size=30),
    "str | None": st.none() | st.text(max_size=30),
    "float": st.floats(allow_nan=False),
    "float | None": st.none() | st.floats(allow_nan=False),
    "bool": st.booleans(),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "int | None": st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
}


def _declared(cls: type[Any]) -> dict[str, str]:
    """Each field's annotation as records.py writes it (compiled, a union's type is lost)."""
    source = (Path(callflow.__file__).parent / "store" / "records.py").read_text()
    body = next(
        n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls.__name__
    ).body
    return {
        s.target.id: ast.unparse(s.annotation)
        for s in body
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    }


def _record(cls: type[Any], **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A strategy filling every field of a record by its declared type."""
    declared = _declared(cls)
    kwargs = {f.name: _BY_TYPE[declared[f.name]] for f in dataclasses.fields(cls)}
    return st.builds(cls, **{**kwargs, **fixed})


@st.composite
def _calls(draw: st.DrawFn) -> tuple[CallStart, list[DialAttempt], CallEnd]:
    """A call with up to 3 attempts and an end, all sharing one uniqueid."""
    uid = st.just(draw(st.text(min_size=1, max_size=30)))
    start = draw(_record(CallStart, uniqueid=uid))
    n = draw(st.integers(min_value=0, max_value=3))
    attempts = [draw(_record(DialAttempt, uniqueid=uid, seq=st.just(i))) for i in range(1, n + 1)]
    end = draw(
        _record(
            CallEnd,
            uniqueid=uid,
            disposition=st.sampled_from(sorted(DISPOSITIONS)),
            hangup_by=st.none() | st.sampled_from(sorted(HANGUP_BY)),
        )
    )
    return start, attempts, end


async def _round_trip(
    path: Path, start: CallStart, attempts: list[DialAttempt], end: CallEnd
) -> dict[str, Any] | None:
    """Write one call through the store and read it back."""
    async with await CdrStore.open(path, batch_interval=0) as store:
        store.start_call(start)
        for attempt in attempts:
            store.add_attempt(attempt)
        await store.finish_call(end)
    async with await CdrReader.open(path) as reader:
        return await reader.get_call(start.uniqueid)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_calls())
def test_every_value_round_trips(call: tuple[CallStart, list[DialAttempt], CallEnd]) -> None:
    start, attempts, end = call
    with tempfile.TemporaryDirectory() as tmp:
        row = asyncio.run(_round_trip(Path(tmp) / "cdr.sqlite3", start, attempts, end))
    assert row is not None
    assert CallStart(**{f.name: row[f.name] for f in dataclasses.fields(CallStart)}) == start
    assert CallEnd(**{f.name: row[f.name] for f in dataclasses.fields(CallEnd)}) == end
    assert [DialAttempt(**a) for a in row["attempts"]] == attempts


async def test_resolve_keeps_calls_asterisk_still_has(tmp_path: Path) -> None:
    from cdr_samples import make_start

    live, dead = make_start(1), make_start(2)
    store = await CdrStore.open(tmp_path / "k.sqlite3")
    try:
        store.start_call(live)
        store.start_call(dead)
        assert await store.in_progress() == [live.uniqueid, dead.uniqueid]
        assert await store.resolve_in_progress(keep={live.uniqueid}) == 1
        assert await store.in_progress() == [live.uniqueid]
    finally:
        await store.close()
