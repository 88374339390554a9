"""Record factories and constants shared by the CDR store tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from callflow.store import CallEnd, CallStart, CdrStore, DialAttempt

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
UPDATED = T0 + 100.0  # the fixed clock of the exact-content tests


def make_start(i: int = 1, **changes: Any) -> CallStart:
    """A fully populated CallStart; ``i`` varies uniqueid, ANI and start time."""
    call = CallStart(
        uniqueid=f"{T0:.0f}.{i}",
        linkedid=f"{T0:.0f}.{i}",
        channel=f"PJSIP/carrier-{i:08x}",
        started_at=T0 + i,
        ani_raw="2125550100",
        ani_e164=f"+1212555{i % 10000:04d}",
        caller_name="JOHN DOE",
        ani_valid=True,
        ani_anonymous=False,
        country="US",
        area_code="212",
        state="NY",
        region="Northeast",
        city="New York",
        timezone="America/New_York",
        dnis="8005550001",
        tracking_number="+18005550001",
        number_known=True,
        campaign="spring",
        source="google",
        medium="cpc",
        keyword="plumber",
        ad="ad-17",
        repeat_caller=False,
        node="pbx1",
    )
    return dataclasses.replace(call, **changes)


def make_attempt(call: CallStart, seq: int = 1, **changes: Any) -> DialAttempt:
    """A finished (busy) dial attempt of ``call``."""
    attempt = DialAttempt(
        uniqueid=call.uniqueid,
        seq=seq,
        target=f"agent{seq}",
        destination=f"PJSIP/agent{seq}",
        started_at=call.started_at + seq,
        answered_at=None,
        ended_at=call.started_at + seq + 3.125,
        result="BUSY",
        ring_seconds=3.125,
        talk_seconds=0.0,
        hangup_cause=17,
    )
    return dataclasses.replace(attempt, **changes)


def make_end(call: CallStart, **changes: Any) -> CallEnd:
    """An answered end of ``call``."""
    end = CallEnd(
        uniqueid=call.uniqueid,
        answered_at=call.started_at + 6.5,
        ended_at=call.started_at + 66.5,
        disposition="answered",
        final_target="agent2",
        final_destination="PJSIP/agent2",
        ring_seconds=5.125,
        talk_seconds=60.0,
        hangup_by="caller",
        ivr_digits="12",
        route_reason='{"rule": "sales", "targets": ["agent1", "agent2"]}',
        dialstatus="ANSWER",
    )
    return dataclasses.replace(end, **changes)


OpenStore = Callable[..., Awaitable[CdrStore]]
