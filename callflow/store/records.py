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


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
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

    def __init__(
        self,
        *,
        uniqueid: str,
        linkedid: str,
        channel: str,
        started_at: float,
        ani_raw: str,
        dnis: str,
        node: str,
        ani_e164: str | None = None,
        caller_name: str | None = None,
        ani_valid: bool = False,
        ani_anonymous: bool = False,
        country: str | None = None,
        area_code: str | None = None,
        state: str | None = None,
        region: str | None = None,
        city: str | None = None,
        timezone: str | None = None,
        tracking_number: str | None = None,
        number_known: bool = False,
        campaign: str | None = None,
        source: str | None = None,
        medium: str | None = None,
        keyword: str | None = None,
        ad: str | None = None,
        repeat_caller: bool = False,
        contact_name: str | None = None,
        company: str | None = None,
        account_id: str | None = None,
        contact_tags: str | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "uniqueid", uniqueid)
        object.__setattr__(self, "linkedid", linkedid)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "started_at", started_at)
        object.__setattr__(self, "ani_raw", ani_raw)
        object.__setattr__(self, "ani_e164", ani_e164)
        object.__setattr__(self, "caller_name", caller_name)
        object.__setattr__(self, "ani_valid", ani_valid)
        object.__setattr__(self, "ani_anonymous", ani_anonymous)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "area_code", area_code)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "city", city)
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "dnis", dnis)
        object.__setattr__(self, "tracking_number", tracking_number)
        object.__setattr__(self, "number_known", number_known)
        object.__setattr__(self, "campaign", campaign)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "medium", medium)
        object.__setattr__(self, "keyword", keyword)
        object.__setattr__(self, "ad", ad)
        object.__setattr__(self, "repeat_caller", repeat_caller)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "contact_name", contact_name)
        object.__setattr__(self, "company", company)
        object.__setattr__(self, "account_id", account_id)
        object.__setattr__(self, "contact_tags", contact_tags)


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
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

    def __init__(
        self,
        *,
        uniqueid: str,
        seq: int,
        target: str,
        destination: str,
        started_at: float,
        ended_at: float,
        result: str,
        ring_seconds: float,
        answered_at: float | None = None,
        talk_seconds: float = 0.0,
        hangup_cause: int | None = None,
        group: str | None = None,
        accepted_at: float | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "uniqueid", uniqueid)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "destination", destination)
        object.__setattr__(self, "started_at", started_at)
        object.__setattr__(self, "answered_at", answered_at)
        object.__setattr__(self, "ended_at", ended_at)
        object.__setattr__(self, "result", result)
        object.__setattr__(self, "ring_seconds", ring_seconds)
        object.__setattr__(self, "talk_seconds", talk_seconds)
        object.__setattr__(self, "hangup_cause", hangup_cause)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "accepted_at", accepted_at)
        self.__post_init__()

    def __post_init__(self) -> None:
        """Reject a sequence number below 1."""
        if self.seq < 1:
            raise ValueError(f"DialAttempt.seq must be >= 1, got {self.seq}")


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
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

    def __init__(
        self,
        *,
        uniqueid: str,
        ended_at: float,
        disposition: str,
        answered_at: float | None = None,
        final_target: str | None = None,
        final_destination: str | None = None,
        ring_seconds: float = 0.0,
        talk_seconds: float = 0.0,
        hangup_by: str | None = None,
        ivr_digits: str | None = None,
        route_reason: str = "{}",
        dialstatus: str | None = None,
        recording_path: str | None = None,
        zip: str | None = None,
    ) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "uniqueid", uniqueid)
        object.__setattr__(self, "answered_at", answered_at)
        object.__setattr__(self, "ended_at", ended_at)
        object.__setattr__(self, "disposition", disposition)
        object.__setattr__(self, "final_target", final_target)
        object.__setattr__(self, "final_destination", final_destination)
        object.__setattr__(self, "ring_seconds", ring_seconds)
        object.__setattr__(self, "talk_seconds", talk_seconds)
        object.__setattr__(self, "hangup_by", hangup_by)
        object.__setattr__(self, "ivr_digits", ivr_digits)
        object.__setattr__(self, "route_reason", route_reason)
        object.__setattr__(self, "dialstatus", dialstatus)
        object.__setattr__(self, "recording_path", recording_path)
        object.__setattr__(self, "zip", zip)
        self.__post_init__()

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
