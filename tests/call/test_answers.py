"""Answered legs seen live over AMI: the caller's Dial told once, the right target named."""

from __future__ import annotations

from callflow.call.answers import LiveAnswers, answering_target
from callflow.config import Target


def dial_end(
    caller: str, status: str, dest: str = "PJSIP/agent1-0000000a", leg: str = "1700000000.2"
) -> dict[str, str]:
    return {"Event": "DialEnd", "Uniqueid": caller, "DestChannel": dest, "DialStatus": status,
            "DestUniqueid": leg}  # fmt: skip


def dial_begin(caller: str, leg: str, dialed: str) -> dict[str, str]:
    return {"Event": "DialBegin", "Uniqueid": caller, "DestUniqueid": leg, "DialString": dialed,
            "DestChannel": "PJSIP/pstn-trunk-0000000c"}  # fmt: skip


def test_an_answered_leg_of_a_watched_dial_is_told_once() -> None:
    live = LiveAnswers(clock=lambda: 1234.5)
    told: list[tuple[str, str | None, float]] = []
    live.watch("1700000000.1", lambda channel, dialed, at: told.append((channel, dialed, at)))

    live.on_event(dial_end("1700000000.1", "CANCEL", "PJSIP/agent2-0000000b"))  # a losing leg
    live.on_event(dial_end("1700000000.9", "ANSWER"))  # another call
    live.on_event({"Event": "Cdr", "Uniqueid": "1700000000.1", "DialStatus": "ANSWER"})
    live.on_event(dial_end("1700000000.1", "ANSWER"))
    live.on_event(dial_end("1700000000.1", "ANSWER"))  # told once per Dial

    assert told == [("PJSIP/agent1-0000000a", None, 1234.5)]


def test_an_ended_dial_is_no_longer_watched() -> None:
    live = LiveAnswers()
    told: list[str] = []
    live.watch("1700000000.1", lambda channel, dialed, at: told.append(channel))
    live.unwatch("1700000000.1")
    live.on_event(dial_end("1700000000.1", "ANSWER"))
    assert told == []


def test_the_answering_target_is_named_by_its_endpoint_or_not_at_all() -> None:
    alice = Target(name="alice", endpoint="agent1")
    bob = Target(name="bob", endpoint="agent12")
    out1 = Target(name="out1", number="+15551230001", trunk="pstn-trunk")
    out2 = Target(name="out2", number="+15551230002", trunk="pstn-trunk")

    assert answering_target((out1,), "PJSIP/pstn-trunk-00000003") is out1
    assert answering_target((alice, bob), "PJSIP/agent12-00000004") is bob
    assert answering_target((alice, out1), "PJSIP/pstn-trunk-00000005") is out1
    # two numbers through one trunk: only the Dial's end can tell which answered
    assert answering_target((out1, out2), "PJSIP/pstn-trunk-00000006") is None


def test_a_trunk_legs_dial_string_comes_with_its_answer() -> None:
    live = LiveAnswers(clock=lambda: 1.0)
    told: list[str | None] = []
    live.watch("1700000000.1", lambda channel, dialed, at: told.append(dialed))
    live.on_event(dial_begin("1700000000.1", "1700000000.2", "+15551230001@pstn-trunk"))
    live.on_event(dial_begin("1700000000.1", "1700000000.3", "+15551230002@pstn-trunk"))
    live.on_event(dial_begin("1700000000.8", "1700000000.9", "+15551230009@pstn-trunk"))
    live.on_event(dial_end("1700000000.1", "ANSWER", "PJSIP/pstn-trunk-00000003", "1700000000.3"))
    assert told == ["+15551230002@pstn-trunk"]

    live.watch("1700000000.5", lambda channel, dialed, at: told.append(dialed))
    live.on_event(dial_begin("1700000000.5", "1700000000.6", "+15551230001@pstn-trunk"))
    live.unwatch("1700000000.5")  # its legs are forgotten with it
    live.watch("1700000000.5", lambda channel, dialed, at: told.append(dialed))
    live.on_event(dial_end("1700000000.5", "ANSWER", "PJSIP/pstn-trunk-00000007", "1700000000.6"))
    assert told[-1] is None


def test_two_numbers_through_one_trunk_are_told_apart_by_the_dial_string() -> None:
    out1 = Target(name="out1", number="+15551230001", trunk="pstn-trunk")
    out2 = Target(name="out2", number="+15551230002", trunk="pstn-trunk")
    channel = "PJSIP/pstn-trunk-00000006"

    assert answering_target((out1, out2), channel, "+15551230002@pstn-trunk") is out2
    assert answering_target((out1, out2), channel, "+15559999999@pstn-trunk") is None


def test_two_targets_dialled_the_same_way_are_not_told_apart_live() -> None:
    out1 = Target(name="out1", number="+15551230001", trunk="pstn-trunk")
    again = Target(name="again", number="+15551230001", trunk="pstn-trunk")
    channel = "PJSIP/pstn-trunk-00000006"

    assert answering_target((out1, again), channel, "+15551230001@pstn-trunk") is None
