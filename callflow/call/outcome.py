"""How a call ended, derived exactly from what happened: attempts, hangups, the action taken."""

from __future__ import annotations

from callflow import jsontext
from callflow.store.records import (
    ABANDONED,
    ANSWERED,
    BUSY,
    FAILED,
    NO_ANSWER,
    CallEnd,
    DialAttempt,
)

_DISPOSITION = {"BUSY": BUSY, "NOANSWER": NO_ANSWER, "CANCEL": ABANDONED, "ANSWER": ANSWERED}
#: The routing reason as stored in the CDR: compact ASCII JSON (callflow.jsontext).
reason_json = jsontext.encoder()


def call_end(
    uniqueid: str,
    attempts: list[DialAttempt],
    caller_hung_up: bool,
    ended_at: float,
    reason: dict[str, object],
    *,
    no_attempt: str = FAILED,
    ended_in: str | None = None,
    ivr_digits: str | None = None,
    recording_path: str | None = None,
    zip: str | None = None,
) -> CallEnd:
    """The CDR's final fields.

    ``no_attempt`` is the disposition when nothing was dialled; ``ended_in``, that of a final
    action which decides it whatever was dialled before (voicemail after a busy agent).
    """
    answered = next((a for a in attempts if a.result == "ANSWER"), None)
    last = attempts[-1] if attempts else None
    if answered is not None:
        disposition, hangup_by = ANSWERED, "caller" if caller_hung_up else "agent"
    elif last is None:
        disposition = ABANDONED if caller_hung_up and no_attempt == FAILED else no_attempt
        hangup_by = "caller" if disposition == ABANDONED else "system"
    else:
        disposition = _DISPOSITION.get(last.result, FAILED)
        if caller_hung_up and disposition != ABANDONED:
            disposition = ABANDONED
        hangup_by = "caller" if disposition == ABANDONED else "system"
    if ended_in is not None and answered is None:
        disposition, hangup_by = ended_in, "caller" if caller_hung_up else "system"
    final = answered or last
    reason = {**reason, "attempts": [f"{a.target}:{a.result}" for a in attempts]}
    return CallEnd(
        uniqueid=uniqueid,
        answered_at=answered.answered_at if answered else None,
        ended_at=ended_at,
        disposition=disposition,
        final_target=final.target if final else None,
        final_destination=final.destination if final else None,
        ring_seconds=_ring_seconds(attempts),
        talk_seconds=answered.talk_seconds if answered else 0.0,
        hangup_by=hangup_by,
        ivr_digits=ivr_digits,
        route_reason=reason_json(reason),
        dialstatus=last.result if last else None,
        recording_path=recording_path,
        zip=zip,
    )


def _ring_seconds(attempts: list[DialAttempt]) -> float:
    """How long the caller heard ringing: the legs of one simultaneous step ring together."""
    per_step: dict[float, float] = {}
    for a in attempts:
        per_step[a.started_at] = max(per_step.get(a.started_at, 0.0), a.ring_seconds)
    return round(sum(per_step.values()), 3)
