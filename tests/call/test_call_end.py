"""The CDR's final fields are derived exactly from the dial attempts."""

from __future__ import annotations

import json

from callflow.call.outcome import call_end
from callflow.store.records import DialAttempt


def attempt(seq: int, result: str, ring: float, talk: float = 0.0, target: str = "") -> DialAttempt:
    start = 1000.0 + seq * 100
    answered = start + ring if result == "ANSWER" else None
    return DialAttempt(
        uniqueid="u1", seq=seq, target=target or f"t{seq}", destination=f"PJSIP/agent{seq}",
        started_at=start, answered_at=answered, ended_at=start + ring + talk, result=result,
        ring_seconds=ring, talk_seconds=talk, hangup_cause=16,
    )  # fmt: skip


def test_answered_after_busy() -> None:
    end = call_end(
        "u1", [attempt(1, "BUSY", 0.2), attempt(2, "ANSWER", 3.0, 42.5)], True, 2000.0, {}
    )
    assert end.disposition == "answered"
    assert end.final_target == "t2" and end.final_destination == "PJSIP/agent2"
    assert end.ring_seconds == 3.2 and end.talk_seconds == 42.5
    assert end.hangup_by == "caller" and end.dialstatus == "ANSWER"
    assert end.answered_at == 1203.0
    assert json.loads(end.route_reason)["attempts"] == ["t1:BUSY", "t2:ANSWER"]


def test_agent_hung_up_first() -> None:
    end = call_end("u1", [attempt(1, "ANSWER", 1.0, 10.0)], False, 2000.0, {})
    assert end.hangup_by == "agent"


def test_last_failure_decides_disposition() -> None:
    assert call_end("u1", [attempt(1, "NOANSWER", 5)], False, 0, {}).disposition == "no-answer"
    assert (
        call_end("u1", [attempt(1, "NOANSWER", 5), attempt(2, "BUSY", 0)], False, 0, {}).disposition
        == "busy"
    )
    for status in ("CONGESTION", "CHANUNAVAIL", "INVALIDARGS"):
        end = call_end("u1", [attempt(1, status, 0.1)], False, 0, {})
        assert end.disposition == "failed" and end.hangup_by == "system"


def test_caller_gave_up_while_ringing() -> None:
    end = call_end("u1", [attempt(1, "BUSY", 0.1), attempt(2, "CANCEL", 4.0)], True, 0, {})
    assert end.disposition == "abandoned" and end.hangup_by == "caller"
    assert end.ring_seconds == 4.1 and end.talk_seconds == 0.0


def test_a_final_action_decides_after_failed_attempts() -> None:
    end = call_end("u1", [attempt(1, "BUSY", 0.2)], True, 0, {}, ended_in="voicemail")
    assert end.disposition == "voicemail" and end.hangup_by == "caller"
    assert end.final_target == "t1" and end.dialstatus == "BUSY"
    assert call_end("u1", [], False, 0, {}, ended_in="failed").hangup_by == "system"


def test_no_attempt_at_all() -> None:
    assert call_end("u1", [], False, 0, {}).disposition == "failed"
    assert call_end("u1", [], True, 0, {}).disposition == "abandoned"


def test_retention_sweep_deletes_only_old_recordings(tmp_path) -> None:
    import os

    from callflow.call.recording import sweep

    now = 2_000_000_000.0
    old, new, other = tmp_path / "1795.1.wav", tmp_path / "1795.2.wav", tmp_path / "notes.txt"
    for f in (old, new, other):
        f.write_bytes(b"x")
    os.utime(old, (now - 31 * 86400, now - 31 * 86400))
    os.utime(new, (now - 29 * 86400, now - 29 * 86400))
    os.utime(other, (now - 99 * 86400, now - 99 * 86400))
    assert sweep(str(tmp_path), 30, now) == 1
    assert not old.exists() and new.exists() and other.exists()
    assert sweep(str(tmp_path), 0, now) == 0  # 0 keeps recordings forever
