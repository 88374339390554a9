"""Call records and event streams for the events tests."""

from __future__ import annotations

from callflow.events import CallEvent, answered, dialed, ended, routed, started
from callflow.store.records import CallEnd, CallStart, DialAttempt


def call_start(n: int, campaign: str = "spring", t0: float = 1_700_000_000.0) -> CallStart:
    """The start record of test call ``n``."""
    return CallStart(
        uniqueid=f"1700000000.{n}",
        linkedid=f"1700000000.{n}",
        channel=f"PJSIP/carrier-{n:08x}",
        started_at=t0 + n,
        ani_raw="2125550100",
        ani_e164="+12125550100",
        ani_valid=True,
        city="New York",
        state="NY",
        dnis="8005550001",
        tracking_number="+18005550001",
        number_known=True,
        campaign=campaign,
        source="google",
        node="pbx1",
    )


def attempt(
    n: int, seq: int = 1, result: str = "ANSWER", t0: float = 1_700_000_000.0
) -> DialAttempt:
    """A dial attempt of test call ``n``."""
    start = t0 + n + 0.1
    return DialAttempt(
        uniqueid=f"1700000000.{n}",
        seq=seq,
        target=f"agent{seq}",
        destination=f"PJSIP/agent{seq}",
        started_at=start,
        answered_at=start + 2.0 if result == "ANSWER" else None,
        ended_at=start + 32.0,
        result=result,
        ring_seconds=2.0,
        talk_seconds=30.0 if result == "ANSWER" else 0.0,
    )


def call_end(n: int, t0: float = 1_700_000_000.0) -> CallEnd:
    """The end record of test call ``n`` (answered, 32.1 s after its start)."""
    return CallEnd(
        uniqueid=f"1700000000.{n}",
        answered_at=t0 + n + 2.1,
        ended_at=t0 + n + 32.6,
        disposition="answered",
        final_target="agent1",
        final_destination="PJSIP/agent1",
        ring_seconds=2.0,
        talk_seconds=30.5,
        hangup_by="caller",
        route_reason='{"campaign":"spring","attempts":["agent1:ANSWER"]}',
        dialstatus="ANSWER",
    )


def call_events(n: int, campaign: str = "spring") -> list[CallEvent]:
    """The five events of an answered test call, in order."""
    start = call_start(n, campaign)
    a = attempt(n)
    return [
        started(start),
        routed(start.uniqueid, campaign, start.started_at + 0.01, {"route": ["agent1"]}),
        answered(a, campaign),
        dialed(a, campaign),
        ended(call_end(n), campaign),
    ]
