"""Call recordings: MixMonitor on the caller's channel, file size after the call, retention."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import structlog

from callflow.agi import AgiSession
from callflow.config import Recordings
from callflow.store import CdrStore

log = structlog.get_logger("callflow.recording")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_NAME = re.compile(r"[A-Za-z0-9._-]+(-caller|-agent)?\.(wav|gsm|wav49|WAV)\Z")


def file_stem(uniqueid: str) -> str:
    """The recording's file name (without extension): the call id, made safe for a path."""
    return _UNSAFE.sub("_", uniqueid) or "call"


async def start_recording(session: AgiSession, rec: Recordings, uniqueid: str) -> str:
    """Start MixMonitor (bridged audio only) and return the file's path as the daemon sees it."""
    stem, fmt = file_stem(uniqueid), rec.format
    options = "b"
    if rec.split:
        options += f"r({rec.dir}/{stem}-caller.{fmt})t({rec.dir}/{stem}-agent.{fmt})"
    await session.exec("MixMonitor", f"{rec.dir}/{stem}.{fmt}", options)
    return f"{rec.daemon_dir}/{stem}.{fmt}"


async def measure_later(store: CdrStore, uniqueid: str, path: str, wait: float = 5.0) -> None:
    """Record the file's size once Asterisk has finished writing it (its size stops changing)."""
    last, stable = -1, 0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        size = _size(path)
        stable = stable + 1 if size == last and size >= 0 else 0
        if stable >= 2:
            store.set_recording_bytes(uniqueid, size)
            return
        last = size
        await asyncio.sleep(0.25)
    if last >= 0:
        store.set_recording_bytes(uniqueid, last)
    else:
        log.warning("recording.missing", uniqueid=uniqueid, path=path)


def _size(path: str) -> int:
    """A file's size, -1 while it does not exist."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def sweep(directory: str, retention_days: int, now: float | None = None) -> int:
    """Delete recordings older than the retention (0 keeps them forever); return how many."""
    if retention_days <= 0:
        return 0
    cutoff = (now or time.time()) - retention_days * 86400
    deleted = 0
    folder = Path(directory)
    if not folder.is_dir():
        return 0
    for file in folder.iterdir():
        if _NAME.match(file.name) and file.is_file() and file.stat().st_mtime < cutoff:
            file.unlink(missing_ok=True)
            deleted += 1
    if deleted:
        log.info("recording.swept", deleted=deleted, directory=directory)
    return deleted
