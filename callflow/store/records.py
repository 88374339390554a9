"""Plain, frozen records the call flow hands to the CDR store (times are UTC epoch seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ABANDONED",
    "ANSWERED",
    "BUSY",
    "DISPOSITIONS",
    "FAILED",
    "HANGUP_BY",
    "MESSAGE",
    "NO_ANSWER",
    "REJECTED",
    "STATUSES",
    "STATUS_COMPLETED",
    "STATUS_IN_PROGRESS",
    "STATUS_UNKNOWN",
    "UNKNOWN",
    "VOICEMAIL",
    "AttemptHistory",
    "CallEnd",
    "CallStart",
    "DialAttempt",
]

# Dispositions of a finished call (CallEnd.disposition).
ANSWERED: Final = "answered"
BUSY: Final = "busy"
NO_ANSWER: Final = "no-answer"
FAILED: Final = "failed"
ABANDONED: Final = "abandoned"
REJECTED: Final = "rejected"
UNKNOWN: Final = "unknown"
MESSAGE: Final = "message"  # a message was played, then the call ended (e.g. closed)
VOICEMAIL: Final = "voicemail"
#: Every disposition a finished call may carry.
DISPOSITIONS: Final = frozenset(
    {ANSWERED, BUSY, NO_ANSWER, FAILED, ABANDONED, REJECTED, UNKNOWN, MESSAGE, VOICEMAIL}
)
#: Who hung up a finished call (or None when not known).
HANGUP_BY: Final = frozenset({"caller", "agent", "system"})

STATUS_IN_PROGRESS: Final = "in_progress"
STATUS_COMPLETED: Final = "completed"
STATUS_UNKNOWN: Final = "unknown"
#: The lifecycle states of a row in ``calls``.
STATUSES: Final = frozenset({STATUS_IN_PROGRESS, STATUS_COMPLETED, STATUS_UNKNOWN})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStart:
    """What is known when an inbound call arrives: caller, enrichment, tracking, routing node."""

    uniqueid: str
    linkedid: str
    channel: str
    started_at: float
    ani_raw: str
    ani_e164: str | None = None
    caller_name: str | None = None
    ani_valid: bool = False
    ani_anonymous: bool = False
    country: str | None = None
    area_code: str | None = None
    state: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None
    dnis: str
    tracking_number: str | None = None
    number_known: bool = False
    campaign: str | None = None
    source: str | None = None
    medium: str | None = None
    keyword: str | None = None
    ad: str | None = None
    repeat_caller: bool = False
    node: str
    contact_name: str | None = None  # from the caller directory
    company: str | None = None
    account_id: str | None = None
    contact_tags: str | None = None  # comma-separated


@dataclass(frozen=True, slots=True, kw_only=True)
class DialAttempt:
    """One finished dial attempt of a call (``seq`` counts from 1; ``result`` is DIALSTATUS)."""

    uniqueid: str
    seq: int
    target: str
    destination: str
    started_at: float
    answered_at: float | None = None
    ended_at: float
    result: str
    ring_seconds: float
    talk_seconds: float = 0.0
    hangup_cause: int | None = None
    group: str | None = None  # the rules group the target was dialled for (caps, counters)
    accepted_at: float | None = None  # the agent pressed 1 to accept (pay-per-call buyers)

    def __post_init__(self) -> None:
        """Reject a sequence number below 1."""
        if self.seq < 1:
            raise ValueError(f"DialAttempt.seq must be >= 1, got {self.seq}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnd:
    """How a call ended; ``route_reason`` is a JSON text explaining the routing decision."""

    uniqueid: str
    answered_at: float | None = None
    ended_at: float
    disposition: str
    final_target: str | None = None
    final_destination: str | None = None
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    hangup_by: str | None = None
    ivr_digits: str | None = None
    route_reason: str = "{}"
    dialstatus: str | None = None
    recording_path: str | None = None
    zip: str | None = None  # entered in the IVR (and found in the ZIP data)

    def __post_init__(self) -> None:
        """Reject a disposition or hangup side outside the documented sets."""
        if self.disposition not in DISPOSITIONS:
            raise ValueError(f"unknown disposition {self.disposition!r}")
        if self.hangup_by is not None and self.hangup_by not in HANGUP_BY:
            raise ValueError(f"unknown hangup_by {self.hangup_by!r}")


@dataclass(frozen=True, slots=True)
class AttemptHistory:
    """A past dial attempt as the routing counters need it (rebuilt at start-up)."""

    target: str
    group: str | None
    started_at: float
    answered: bool
    talk_seconds: float
    ended_at: float | None
