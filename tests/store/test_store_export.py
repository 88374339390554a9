"""Exports: exact CSV / JSON / JSONL content on a tiny dataset, and rows written as they stream."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cdr_samples import T0, UPDATED, make_attempt, make_end, make_start

from callflow.store import CallEnd, CallStart, CdrReader, CdrStore, export_calls
from callflow.store.export import CSV_COLUMNS, iso_utc

HEADER = (
    "uniqueid,linkedid,channel,started_at,ani_raw,ani_e164,caller_name,ani_valid,ani_anonymous,"
    "country,area_code,state,region,city,timezone,dnis,tracking_number,number_known,campaign,"
    "source,medium,keyword,ad,repeat_caller,node,contact_name,company,account_id,contact_tags,"
    "answered_at,ended_at,disposition,final_target,"
    "final_destination,ring_seconds,talk_seconds,hangup_by,ivr_digits,route_reason,dialstatus,"
    "recording_path,zip,recording_bytes,status,updated_at,attempts"
)
CSV_A = (
    "1700000000.1,1700000000.1,PJSIP/carrier-00000001,2023-11-14T22:13:20.250Z,2125550100,"
    '+12125550100,"DOE, ""JOHN""",true,false,US,212,NY,Northeast,New York,America/New_York,'
    "8005550001,+18005550001,true,spring,google,cpc,plumber,ad-17,false,pbx1,,,,,"
    "2023-11-14T22:13:26.750Z,2023-11-14T22:14:26.750Z,answered,agent2,PJSIP/agent2,5.125,60.0,"
    'caller,12,"{""rule"": ""sales"", ""targets"": [""agent1"", ""agent2""]}",ANSWER,,,,completed,'
    "2023-11-14T22:15:00.000Z,agent1:BUSY:3.1s;agent2:ANSWER:2.0s"
)
CSV_B = (
    "1700000200.2,1700000200.2,PJSIP/carrier-00000002,2023-11-14T22:16:40.000Z,anonymous,,,"
    "false,true,,,,,,,8005550002,,false,,,,,,false,pbx1,,,,,,2023-11-14T22:16:50.000Z,abandoned,,,"
    '10.0,0.0,caller,,"{""rule"": ""default""}",,,,,completed,2023-11-14T22:15:00.000Z,'
)
JSON_A: dict[str, Any] = {
    "uniqueid": "1700000000.1",
    "linkedid": "1700000000.1",
    "channel": "PJSIP/carrier-00000001",
    "started_at": "2023-11-14T22:13:20.250Z",
    "ani_raw": "2125550100",
    "ani_e164": "+12125550100",
    "caller_name": 'DOE, "JOHN"',
    "ani_valid": True,
    "ani_anonymous": False,
    "country": "US",
    "area_code": "212",
    "state": "NY",
    "region": "Northeast",
    "city": "New York",
    "timezone": "America/New_York",
    "dnis": "8005550001",
    "tracking_number": "+18005550001",
    "number_known": True,
    "campaign": "spring",
    "source": "google",
    "medium": "cpc",
    "keyword": "plumber",
    "ad": "ad-17",
    "repeat_caller": False,
    "node": "pbx1",
    "contact_name": None,
    "company": None,
    "account_id": None,
    "contact_tags": None,
    "answered_at": "2023-11-14T22:13:26.750Z",
    "ended_at": "2023-11-14T22:14:26.750Z",
    "disposition": "answered",
    "final_target": "agent2",
    "final_destination": "PJSIP/agent2",
    "ring_seconds": 5.125,
    "talk_seconds": 60.0,
    "hangup_by": "caller",
    "ivr_digits": "12",
    "route_reason": {"rule": "sales", "targets": ["agent1", "agent2"]},
    "dialstatus": "ANSWER",
    "recording_path": None,
    "zip": None,
    "recording_bytes": None,
    "status": "completed",
    "updated_at": "2023-11-14T22:15:00.000Z",
    "attempts": [
        {
            "seq": 1,
            "target": "agent1",
            "destination": "PJSIP/agent1",
            "started_at": "2023-11-14T22:13:21.250Z",
            "answered_at": None,
            "ended_at": "2023-11-14T22:13:24.375Z",
            "result": "BUSY",
            "ring_seconds": 3.125,
            "talk_seconds": 0.0,
            "hangup_cause": 17,
            "group": None,
            "accepted_at": None,
        },
        {
            "seq": 2,
            "target": "agent2",
            "destination": "PJSIP/agent2",
            "started_at": "2023-11-14T22:13:22.250Z",
            "answered_at": "2023-11-14T22:13:26.750Z",
            "ended_at": "2023-11-14T22:14:26.750Z",
            "result": "ANSWER",
            "ring_seconds": 2.0,
            "talk_seconds": 60.0,
            "hangup_cause": 16,
            "group": None,
            "accepted_at": None,
        },
    ],
}
JSON_B: dict[str, Any] = {
    **{k: None for k in CSV_COLUMNS},
    "uniqueid": "1700000200.2",
    "linkedid": "1700000200.2",
    "channel": "PJSIP/carrier-00000002",
    "started_at": "2023-11-14T22:16:40.000Z",
    "ani_raw": "anonymous",
    "ani_valid": False,
    "ani_anonymous": True,
    "dnis": "8005550002",
    "number_known": False,
    "repeat_caller": False,
    "node": "pbx1",
    "contact_name": None,
    "company": None,
    "account_id": None,
    "contact_tags": None,
    "ended_at": "2023-11-14T22:16:50.000Z",
    "disposition": "abandoned",
    "ring_seconds": 10.0,
    "talk_seconds": 0.0,
    "hangup_by": "caller",
    "route_reason": {"rule": "default"},
    "status": "completed",
    "updated_at": "2023-11-14T22:15:00.000Z",
    "attempts": [],
}


@pytest.fixture
async def tiny(db_path: Path) -> AsyncIterator[CdrReader]:
    """Two finished calls (one answered after a busy attempt, one anonymous and abandoned)."""
    async with await CdrStore.open(db_path, batch_interval=0, clock=lambda: UPDATED) as store:
        a = make_start(1, started_at=T0 + 0.25, caller_name='DOE, "JOHN"', ani_e164="+12125550100")
        b = CallStart(
            uniqueid="1700000200.2",
            linkedid="1700000200.2",
            channel="PJSIP/carrier-00000002",
            started_at=T0 + 200,
            ani_raw="anonymous",
            ani_anonymous=True,
            dnis="8005550002",
            node="pbx1",
        )
        store.start_call(b)
        store.start_call(a)
        store.add_attempt(make_attempt(a, 1))
        answered = make_attempt(
            a, 2, answered_at=T0 + 6.75, ended_at=T0 + 66.75, result="ANSWER", ring_seconds=2.0
        )
        store.add_attempt(dataclasses.replace(answered, talk_seconds=60.0, hangup_cause=16))
        await store.finish_call(make_end(a, answered_at=T0 + 6.75, ended_at=T0 + 66.75))
        await store.finish_call(
            CallEnd(
                uniqueid=b.uniqueid,
                ended_at=T0 + 210,
                disposition="abandoned",
                ring_seconds=10.0,
                hangup_by="caller",
                route_reason='{"rule": "default"}',
            )
        )
    async with await CdrReader.open(db_path) as reader:
        yield reader


async def test_csv(tiny: CdrReader) -> None:
    out = io.StringIO()
    assert await export_calls(tiny, out, "csv") == 2
    assert out.getvalue() == "\n".join([HEADER, CSV_A, CSV_B]) + "\n"


async def test_json(tiny: CdrReader) -> None:
    out = io.StringIO()
    assert await export_calls(tiny, out, "json") == 2
    expected = "[\n" + ",\n".join(json.dumps(o, ensure_ascii=False) for o in (JSON_A, JSON_B))
    assert out.getvalue() == expected + "\n]\n"
    assert json.loads(out.getvalue()) == [JSON_A, JSON_B]


async def test_jsonl(tiny: CdrReader) -> None:
    out = io.StringIO()
    assert await export_calls(tiny, out, "jsonl") == 2
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [JSON_A, JSON_B]
    assert out.getvalue() == "".join(json.dumps(o) + "\n" for o in (JSON_A, JSON_B))


async def test_filters_and_empty_exports(tiny: CdrReader) -> None:
    out = io.StringIO()
    assert await export_calls(tiny, out, "jsonl", campaign="spring") == 1
    assert json.loads(out.getvalue()) == JSON_A
    for fmt, text in (("json", "[]\n"), ("jsonl", ""), ("csv", HEADER + "\n")):
        out = io.StringIO()
        assert await export_calls(tiny, out, fmt, since=T0 + 1000) == 0  # type: ignore[arg-type]
        assert out.getvalue() == text
    with pytest.raises(ValueError, match="format"):
        await export_calls(tiny, io.StringIO(), "xml")  # type: ignore[arg-type]


async def test_rows_are_written_as_they_stream(db_path: Path) -> None:
    async with await CdrStore.open(db_path, batch_interval=0) as store:
        for i in range(1, 26):
            store.start_call(make_start(i))
    fetched: list[int] = []

    class Sink(io.StringIO):
        """Records how many calls had been read from SQLite at each write."""

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []

        def write(self, s: str) -> int:
            self.seen.append(len(fetched))
            return super().write(s)

    async with await CdrReader.open(db_path, chunk_size=10) as reader:
        real = reader.iter_calls

        async def counting(**kw: Any) -> AsyncIterator[dict[str, Any]]:
            async for row in real(**kw):
                fetched.append(1)
                yield row

        reader.iter_calls = counting  # type: ignore[method-assign]
        sink = Sink()
        assert await export_calls(reader, sink, "jsonl") == 25
    assert sink.seen == list(range(1, 26))  # each row written before the next one is read


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(T0 + 0.123) == "2023-11-14T22:13:20.123Z"
    assert iso_utc(T0 + 0.9999) == "2023-11-14T22:13:20.999Z"
