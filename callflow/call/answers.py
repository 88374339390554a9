"""Which target of a Dial answered: live over AMI (its leg's channel or dial string), or at the
Dial's end."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from callflow.config import Target

__all__ = ["PJSIP", "LiveAnswers", "OnAnswer", "answering_target", "dialed_target"]

PJSIP = "PJSIP/"

#: Told the answering leg's channel ("PJSIP/agent1-0000000a"), its dial string when AMI gave it
#: ("+15551234567@pstn-trunk": trunk legs only), and the instant it answered.
OnAnswer = Callable[[str, str | None, float], None]


class LiveAnswers:
    """The Dials in progress, by the caller's uniqueid; an answered DialEnd calls back once.

    A DialBegin of a watched Dial leaves its leg's dial string, so the answered leg of two
    numbers rung through one trunk is named too (their channels name only the trunk).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """Start with no Dial watched."""
        self._clock = clock
        self._watching: dict[str, OnAnswer] = {}
        self._dialed: dict[str, dict[str, str]] = {}  # caller -> leg uniqueid -> dial string

    def watch(self, uniqueid: str, on_answer: OnAnswer) -> None:
        """Call ``on_answer`` when a leg of this caller's Dial answers (at most once)."""
        self._watching[uniqueid] = on_answer

    def unwatch(self, uniqueid: str) -> None:
        """Stop watching a caller (its Dial ended)."""
        self._watching.pop(uniqueid, None)
        self._dialed.pop(uniqueid, None)

    def on_event(self, fields: Mapping[str, str]) -> None:
        """Take one AMI event: note a watched Dial's legs; call back on its answered DialEnd."""
        event, caller = fields.get("Event"), fields.get("Uniqueid", "")
        if event == "DialBegin" and caller in self._watching:
            legs = self._dialed.setdefault(caller, {})
            legs[fields.get("DestUniqueid", "")] = fields.get("DialString", "")
            return
        if event != "DialEnd" or fields.get("DialStatus") != "ANSWER":
            return
        on_answer = self._watching.pop(caller, None)
        dialed = self._dialed.pop(caller, {}).get(fields.get("DestUniqueid", ""))
        if on_answer is not None:
            on_answer(fields.get("DestChannel", ""), dialed or None, self._clock())


def answering_target(
    targets: tuple[Target, ...], channel: str, dialed: str | None = None
) -> Target | None:
    """The target whose leg is ``channel`` (dialled as ``dialed``), or None if ambiguous.

    A leg's channel names the endpoint it was dialled through ("PJSIP/agent1-0000000a",
    "PJSIP/pstn-trunk-0000000b"); two numbers dialled through one trunk together are told apart
    by the leg's dial string, or else only when the Dial ends (DIALEDPEERNUMBER).
    """
    if len(targets) == 1:
        return targets[0]
    if dialed and len(named := _dialled_as(targets, dialed)) == 1:
        return named[0]
    endpoint = channel.partition("/")[2].rpartition("-")[0]
    found = [t for t in targets if _endpoint(t.dial_string) == endpoint]
    return found[0] if len(found) == 1 else None


def dialed_target(targets: tuple[Target, ...], peer: str) -> Target | None:
    """The target whose leg answered, from DIALEDPEERNUMBER ('agent1', '+1555…@trunk')."""
    if len(targets) == 1:
        return targets[0]
    found = _dialled_as(targets, peer)
    return found[0] if found else targets[0]


def _dialled_as(targets: tuple[Target, ...], dialed: str) -> list[Target]:
    """The targets dialled as ``dialed``: DIALEDPEERNUMBER or a DialBegin's DialString."""
    return [t for t in targets if t.dial_string.removeprefix(PJSIP) == dialed]


def _endpoint(dial_string: str) -> str:
    """The endpoint a dial string goes through: ``PJSIP/agent1``, ``PJSIP/+1555…@trunk``."""
    return dial_string.removeprefix(PJSIP).rpartition("@")[2]
