"""The trace of a decision: which rules were tested, and why each target was taken or skipped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Note", "RuleCheck", "TargetCheck", "Trace", "TraceEntry"]

_VERSION = 1


@dataclass(frozen=True, slots=True, init=False)
class RuleCheck:
    """A rule that was tested: matched or not, and why not (its first failing condition)."""

    rule: str
    matched: bool
    reason: str = ""

    def __init__(self, rule: str, matched: bool, reason: str = "") -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "matched", matched)
        object.__setattr__(self, "reason", reason)


@dataclass(frozen=True, slots=True, init=False)
class TargetCheck:
    """A target considered for a group: taken (with its step) or skipped (with the reason)."""

    group: str
    target: str
    taken: bool
    reason: str

    def __init__(self, group: str, target: str, taken: bool, reason: str) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "taken", taken)
        object.__setattr__(self, "reason", reason)


@dataclass(frozen=True, slots=True, init=False)
class Note:
    """Anything else worth knowing about the decision (strategy, sticky, fallback, index)."""

    text: str

    def __init__(self, text: str) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "text", text)


TraceEntry = RuleCheck | TargetCheck | Note


@dataclass(frozen=True, slots=True, init=False)
class Trace:
    """The ordered entries explaining one decision."""

    entries: tuple[TraceEntry, ...] = ()

    def __init__(self, entries: tuple[TraceEntry, ...] = ()) -> None:
        """Set the fields (written out for mypyc: scripts/compiled-modules)."""
        object.__setattr__(self, "entries", entries)

    @property
    def matched_rule(self) -> str | None:
        """Return the name of the rule that matched, if any."""
        return next((e.rule for e in self.entries if isinstance(e, RuleCheck) and e.matched), None)

    def as_json(self) -> str:
        """Return the trace as compact JSON (stored with the CDR)."""
        return json.dumps(self.as_data(), separators=(",", ":"))

    def as_data(self) -> dict[str, Any]:
        """Return the trace as plain JSON-ready data (what ``as_json`` writes)."""
        rows: list[list[Any]] = []
        for e in self.entries:
            if isinstance(e, RuleCheck):
                rows.append(["r", e.rule, int(e.matched), e.reason])
            elif isinstance(e, TargetCheck):
                rows.append(["t", e.group, e.target, int(e.taken), e.reason])
            else:
                rows.append(["n", e.text])
        return {"v": _VERSION, "trace": rows}

    @classmethod
    def from_json(cls, text: str) -> Trace:
        """Read a trace written by ``as_json``."""
        return cls.from_data(json.loads(text))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Trace:
        """Read a trace from the data ``as_data`` returns."""
        entries: list[TraceEntry] = []
        for row in data["trace"]:
            if row[0] == "r":
                entries.append(RuleCheck(row[1], bool(row[2]), row[3]))
            elif row[0] == "t":
                entries.append(TargetCheck(row[1], row[2], bool(row[3]), row[4]))
            else:
                entries.append(Note(row[1]))
        return cls(tuple(entries))

    def render(self) -> str:
        """Return the trace as text for people (``cdr show``, ``rules explain``)."""
        lines: list[str] = []
        for e in self.entries:
            if isinstance(e, RuleCheck):
                verdict = "no: " if not e.matched else "MATCH: " if e.reason else "MATCH"
                verdict += e.reason
                lines.append(f"rule {e.rule}: {verdict}")
            elif isinstance(e, TargetCheck):
                mark = "+" if e.taken else "-"
                lines.append(f"    {mark} {e.target}: {e.reason}")
            else:
                lines.append(f"  {e.text}")
        return "\n".join(lines)


class TraceBuilder:
    """Collects trace entries while a decision is made."""

    def __init__(self) -> None:
        """Start an empty trace."""
        self._entries: list[TraceEntry] = []

    def rule(self, rule: str, matched: bool, reason: str = "") -> None:
        """Record a tested rule."""
        self._entries.append(RuleCheck(rule, matched, reason))

    def target(self, group: str, target: str, taken: bool, reason: str) -> None:
        """Record a target taken or skipped."""
        self._entries.append(TargetCheck(group, target, taken, reason))

    def note(self, text: str) -> None:
        """Record a note."""
        self._entries.append(Note(text))

    def build(self) -> Trace:
        """Return the finished trace."""
        return Trace(tuple(self._entries))
