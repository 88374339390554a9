"""The routing rules engine: pure decisions over plain data (no sockets, no SQL, no asyncio).

``Engine(config).decide(facts, counters)`` returns a ``Decision`` (an action and its trace);
``Counters`` holds the live usage that caps, concurrency and minimum gaps are checked against.
"""

from callflow.rules.actions import (
    Action,
    CollectZip,
    Decision,
    Hangup,
    Play,
    Reject,
    Route,
    RunIvr,
    Step,
    Voicemail,
    describe,
)
from callflow.rules.counters import AttemptLike, Counters, Usage
from callflow.rules.engine import Engine, explain
from callflow.rules.facts import ZIP_KEY, CallFacts
from callflow.rules.trace import Note, RuleCheck, TargetCheck, Trace, TraceEntry

__all__ = [
    "ZIP_KEY",
    "Action",
    "AttemptLike",
    "CallFacts",
    "CollectZip",
    "Counters",
    "Decision",
    "Engine",
    "Hangup",
    "Note",
    "Play",
    "Reject",
    "Route",
    "RuleCheck",
    "RunIvr",
    "Step",
    "TargetCheck",
    "Trace",
    "TraceEntry",
    "Usage",
    "Voicemail",
    "describe",
    "explain",
]
