"""An on-disk FIFO of JSON records: append-only JSONL segments plus a persisted read cursor."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import IO, Any

import structlog

__all__ = ["Spool"]

log = structlog.get_logger("callflow.events.spool")


class Spool:
    """Records appended at the tail, read and acknowledged at the head, bounded in count.

    Files: ``<name>-<n>.jsonl`` segments (``segment_events`` lines each) and ``<name>.cursor``
    (head segment and byte offset, rewritten atomically). Records are appended with a flush but
    no fsync: a crashed daemon loses nothing, a power cut may lose the last writes.
    """

    def __init__(
        self, directory: Path, name: str, max_events: int, segment_events: int = 1000
    ) -> None:
        """Describe the spool; nothing is read until open()."""
        self.directory = directory
        self.name = name
        self.max_events = max_events
        self.segment_events = max(1, segment_events)
        self.count = 0
        self.lost = 0  # records lost to corrupt or truncated files since open
        self._pattern = re.compile(rf"{re.escape(name)}-(\d{{8}})\.jsonl\Z")
        self._segments: list[int] = []  # segment numbers, oldest first
        self._lines: dict[int, int] = {}  # lines written to each segment
        self._head_offset = 0  # bytes of the head segment already acknowledged
        self._head_line = 0  # lines of the head segment already acknowledged
        self._writer: IO[bytes] | None = None
        self._peeked: list[int] = []  # byte lengths of the lines last returned by peek()

    def _path(self, segment: int) -> Path:
        """The file of a segment."""
        return self.directory / f"{self.name}-{segment:08d}.jsonl"

    @property
    def _cursor_path(self) -> Path:
        """The file holding the read cursor."""
        return self.directory / f"{self.name}.cursor"

    def open(self) -> int:
        """Find the segments left on disk and the cursor; return how many records wait."""
        self.directory.mkdir(parents=True, exist_ok=True)
        found = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := self._pattern.match(p.name))
        )
        self._segments = found
        self._lines = {seg: _count_lines(self._path(seg)) for seg in found}
        head, offset = self._read_cursor()
        for seg in [s for s in found if s < head]:
            self._drop_segment(seg)
        if self._segments and self._segments[0] == head:
            self._head_offset = offset
            self._head_line = _count_lines(self._path(head), offset)
        self.count = sum(self._lines.values()) - self._head_line
        if self.count <= 0:
            self._reset()
        return self.count

    def _read_cursor(self) -> tuple[int, int]:
        """The (head segment, byte offset) saved by commit(), or (0, 0)."""
        try:
            saved = json.loads(self._cursor_path.read_text())
            return int(saved["segment"]), int(saved["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def append(self, records: list[dict[str, Any]]) -> int:
        """Append records in order up to the bound; return how many did not fit (dropped)."""
        room = max(0, self.max_events - self.count)
        accepted, dropped = records[:room], len(records) - min(room, len(records))
        for record in accepted:
            writer = self._tail_writer()
            writer.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            self._lines[self._segments[-1]] += 1
            self.count += 1
        if self._writer is not None:
            self._writer.flush()
        return dropped

    def _tail_writer(self) -> IO[bytes]:
        """The open tail segment, rotated when full."""
        if self._writer is None or self._lines[self._segments[-1]] >= self.segment_events:
            if self._writer is not None:
                self._writer.close()
            segment = self._segments[-1] + 1 if self._segments else 1
            self._segments.append(segment)
            self._lines[segment] = 0
            self._writer = self._path(segment).open("ab")
        return self._writer

    def peek(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records from the head, oldest first, without removing them."""
        self._peeked = []
        records: list[dict[str, Any]] = []
        while self.count and not records:
            head = self._segments[0]
            if self._head_line >= self._lines[head]:
                self._finish_head()
                continue
            try:
                skipped = self._read_head(head, max(1, limit), records)
            except FileNotFoundError:  # deleted under us: its records are lost
                log.warning("spool.segment_missing", spool=self.name, segment=head)
                skipped = 0
            if not records and not skipped:
                # The file holds fewer lines than counted (truncated): forget the missing ones.
                self.lost += self._lines[head] - self._head_line
                self.count -= self._lines[head] - self._head_line
                self._lines[head] = self._head_line
        if self.count == 0 and self._segments:
            self._reset()
        return records

    def _read_head(self, head: int, limit: int, records: list[dict[str, Any]]) -> int:
        """Read up to ``limit`` records of the head segment; return how many bad lines passed."""
        skipped = 0
        with self._path(head).open("rb") as reader:
            reader.seek(self._head_offset)
            for line in reader:
                if len(records) >= limit or not line.endswith(b"\n"):
                    break
                record = _decode(line)
                if record is not None:
                    records.append(record)
                    self._peeked.append(len(line))
                    continue
                if records:  # skip the bad line once everything before it is acknowledged
                    break
                log.warning("spool.corrupt_line", spool=self.name, segment=head)
                self._advance_bytes(len(line))
                self.lost += 1
                skipped += 1
                if self._segments[0] != head:
                    break
        return skipped

    def advance(self, n: int) -> None:
        """Acknowledge the first ``n`` records of the last peek (they leave the spool)."""
        for length in self._peeked[:n]:
            self._advance_bytes(length)
        self._peeked = self._peeked[n:]
        if self.count == 0:
            self._reset()

    def _advance_bytes(self, length: int) -> None:
        """Move the head past one line of ``length`` bytes."""
        self._head_offset += length
        self._head_line += 1
        self.count -= 1
        if self._head_line >= self._lines[self._segments[0]] and len(self._segments) > 1:
            self._finish_head()

    def _finish_head(self) -> None:
        """Delete the fully read head segment and move to the next."""
        if len(self._segments) == 1:
            self._reset()
            return
        self._drop_segment(self._segments[0])
        self._head_offset = self._head_line = 0
        self.commit()

    def _drop_segment(self, segment: int) -> None:
        """Delete one segment file and forget it."""
        with contextlib.suppress(FileNotFoundError):
            self._path(segment).unlink()
        self._segments.remove(segment)
        self._lines.pop(segment, None)

    def _reset(self) -> None:
        """Empty spool: delete every segment file and the cursor."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for segment in list(self._segments):
            self._drop_segment(segment)
        self._head_offset = self._head_line = 0
        self.count = 0
        self._peeked = []
        with contextlib.suppress(FileNotFoundError):
            self._cursor_path.unlink()
        self._segments, self._lines = [], {}

    def commit(self) -> None:
        """Persist the read cursor (after acknowledged records) so a restart resumes there."""
        if not self._segments:
            return
        tmp = self._cursor_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segment": self._segments[0], "offset": self._head_offset}))
        os.replace(tmp, self._cursor_path)

    def close(self) -> None:
        """Persist the cursor and close the tail file."""
        self.commit()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _decode(line: bytes) -> dict[str, Any] | None:
    """One JSONL record, or None if the line is not a JSON object."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _count_lines(path: Path, limit: int | None = None) -> int:
    """Complete lines in a file (or in its first ``limit`` bytes)."""
    try:
        with path.open("rb") as f:
            data = f.read() if limit is None else f.read(limit)
    except FileNotFoundError:
        return 0
    return data.count(b"\n")
