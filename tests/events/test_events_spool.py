"""The on-disk spool: FIFO across segments and reopenings, bounded, tolerant of torn files."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from callflow.events.spool import Spool


def drain(spool: Spool, batch: int = 7) -> list[int]:
    """Read and acknowledge everything, returning the record numbers."""
    out: list[int] = []
    while records := spool.peek(batch):
        out.extend(r["n"] for r in records)
        spool.advance(len(records))
    return out


def test_fifo_across_segments_and_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mqtt", max_events=100, segment_events=4)
    assert spool.open() == 0
    assert spool.append([{"n": i} for i in range(10)]) == 0
    assert len(list(tmp_path.glob("mqtt-*.jsonl"))) == 3
    first = spool.peek(3)
    spool.advance(2)  # the third is not acknowledged: it comes back
    spool.close()
    assert [r["n"] for r in first] == [0, 1, 2]

    again = Spool(tmp_path, "mqtt", max_events=100, segment_events=4)
    assert again.open() == 8
    again.append([{"n": 10}])
    assert drain(again) == list(range(2, 11))
    assert again.count == 0 and not list(tmp_path.iterdir())  # empty spool leaves no files


def test_bounded_drops_the_newest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mqtt", max_events=5)
    spool.open()
    assert spool.append([{"n": i} for i in range(3)]) == 0
    assert spool.append([{"n": i} for i in range(3, 8)]) == 3
    assert spool.count == 5 and drain(spool) == [0, 1, 2, 3, 4]


def test_torn_and_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "mqtt-00000001.jsonl").write_bytes(b'{"n":0}\nnot json\n{"n":2}\n{"n":3')
    spool = Spool(tmp_path, "mqtt", max_events=100)
    assert spool.open() == 3  # the torn last line is not a record
    spool.append([{"n": 4}])  # goes to a new segment, never glued to the torn line
    assert drain(spool) == [0, 2, 4]
    assert spool.lost == 1


def test_truncated_segment_does_not_hang(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mqtt", max_events=100, segment_events=3)
    spool.open()
    spool.append([{"n": i} for i in range(6)])
    (tmp_path / "mqtt-00000001.jsonl").write_bytes(b'{"n":0}\n')  # lost two lines
    assert drain(spool) == [0, 3, 4, 5]
    assert spool.lost == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "read", "reopen"]), st.integers(1, 9))))
def test_order_is_kept_whatever_happens(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        spool = Spool(directory, "s", max_events=25, segment_events=4)
        spool.open()
        expected: list[int] = []
        got: list[int] = []
        counter = 0
        for op, n in ops:
            if op == "append":
                batch = list(range(counter, counter + n))
                counter += n
                dropped = spool.append([{"n": i} for i in batch])
                expected.extend(batch[: n - dropped])
            elif op == "read":
                records = spool.peek(n)
                take = (n + 1) // 2
                got.extend(r["n"] for r in records[:take])
                spool.advance(take)
            else:
                spool.close()
                spool = Spool(directory, "s", max_events=25, segment_events=4)
                spool.open()
            assert spool.count == len(expected) - len(got)
        got.extend(drain(spool))
        assert got == expected


def test_a_deleted_segment_is_counted_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mqtt", max_events=100, segment_events=2)
    spool.open()
    spool.append([{"n": i} for i in range(5)])
    (tmp_path / "mqtt-00000002.jsonl").unlink()
    assert drain(spool, batch=1) == [0, 1, 4]
    assert spool.lost == 2
