"""Which target of a Dial answered: live over AMI (its leg's channel), or at the Dial's end."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from callflow.config import Target

__all__ = ["PJSIP", "LiveAnswers", "OnAnswer", "answering_target", "dialed_target"]

PJSIP = "PJSIP/"

#: Told the answering leg's channel ("PJSIP/agent1-0000000a") and the instant it answered.
OnAnswer = Callable[[str, float], None]


class LiveAnswers:
    """The Dials in progress, by the caller's uniqueid; an answered DialEnd calls back once."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """Start with no Dial watched."""
        self._clock = clock
        self._watching: dict[str, OnAnswer] = {}

    def watch(self, uniqueid: str, on_answer: OnAnswer) -> None:
        """Call ``on_answer`` when a leg of this caller's Dial answers (at most once)."""
        self._watching[uniqueid] = on_answer

    def unwatch(self, uniqueid: str) -> None:
        """Stop watching a caller (its Dial ended)."""
        self._watching.pop(uniqueid, None)

    def on_event(self, fields: Mapping[str, str]) -> None:
        """Take one AMI event; a watched caller's answered DialEnd calls its callback."""
        if fields.get("Event") != "DialEnd" or fields.get("DialStatus") != "ANSWER":
            return
        on_answer = self._watching.pop(fields.get("Uniqueid", ""), None)
        if on_answer is not None:
            on_answer(fields.get("DestChannel", ""), self._clock())


def answering_target(targets: tuple[Target, ...], channel: str) -> Target | None:
    """The target whose leg is ``channel``, or None when its endpoint leaves it ambiguous.

    A leg's channel names the endpoint it was dialled through ("PJSIP/agent1-0000000a",
    "PJSIP/pstn-trunk-0000000b"), so two numbers dialled through one trunk together are told
    apart only when the Dial ends (DIALEDPEERNUMBER).
    """
    if len(targets) == 1:
        return targets[0]
    endpoint = channel.partition("/")[2].rpartition("-")[0]
    found = [t for t in targets if _endpoint(t.dial_string) == endpoint]
    return found[0] if len(found) == 1 else None


def dialed_target(targets: tuple[Target, ...], peer: str) -> Target | None:
    """The target whose leg answered, from DIALEDPEERNUMBER ('agent1', '+1555…@trunk')."""
    if len(targets) == 1:
        return targets[0]
    for target in targets:
        if target.dial_string.removeprefix(PJSIP) == peer:
            return target
    return targets[0]


def _endpoint(dial_string: str) -> str:
    """The endpoint a dial string goes through: ``PJSIP/agent1``, ``PJSIP/+1555…@trunk``."""
    return dial_string.removeprefix(PJSIP).rpartition("@")[2]
