"""Finish CDRs whose AGI session was lost, from Asterisk's own CDR events over AMI."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

import structlog

from callflow.ami import Ami
from callflow.call.outcome import reason_json
from callflow.store import CdrStore
from callflow.store.records import ANSWERED, BUSY, FAILED, NO_ANSWER, CallEnd

log = structlog.get_logger("callflow.reconcile")

_DISPOSITIONS = {
    "ANSWERED": ANSWERED,
    "BUSY": BUSY,
    "NO ANSWER": NO_ANSWER,
    "FAILED": FAILED,
    "CONGESTION": FAILED,
}
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}$")


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def end_from_cdr(fields: Mapping[str, str], now: float) -> CallEnd:
    """A CallEnd from Asterisk's CDR of the caller's channel (seconds precision)."""
    f = {k.lower(): v for k, v in fields.items()}
    billsec, duration = _int(f.get("billableseconds")), _int(f.get("duration"))
    disposition = _DISPOSITIONS.get(f.get("disposition", "").upper(), FAILED)
    answered = disposition == ANSWERED
    peer = _CHANNEL_SUFFIX.sub("", f.get("destinationchannel", "")) or None
    reason = {
        "reconciled": "the daemon lost this call's AGI session; from Asterisk's CDR over AMI",
        "asterisk": {k: f.get(k) for k in ("disposition", "duration", "billableseconds",
                                           "destinationchannel", "lastapplication")},
    }  # fmt: skip
    return CallEnd(
        uniqueid=f.get("uniqueid", ""),
        answered_at=now - billsec if answered else None,
        ended_at=now,
        disposition=disposition,
        final_destination=peer,
        ring_seconds=float(max(duration - billsec, 0)),
        talk_seconds=float(billsec),
        route_reason=reason_json(reason),
        dialstatus=f.get("disposition"),
    )


class Reconciler:
    """Watches Cdr events for calls left in progress and completes their rows."""

    def __init__(self, store: CdrStore, ami: Ami, clock: Callable[[], float] = time.time) -> None:
        """Configure; start() adopts what a previous daemon left behind."""
        self.store = store
        self.ami = ami
        self.clock = clock
        self.watching: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Keep rows Asterisk still has in progress (watched), mark the others unknown."""
        self.ami.on_cdr(self._on_cdr)
        left = await self.store.in_progress()
        live = await self.ami.live_uniqueids() if left else set()
        self.watching.update(u for u in left if u in live)
        unknown = await self.store.resolve_in_progress(keep=self.watching)
        log.info("reconcile.started", watching=len(self.watching), unknown=unknown)
        return unknown

    def adopt(self, uniqueid: str) -> None:
        """Watch a call of this daemon whose AGI session was lost."""
        self.watching.add(uniqueid)

    def _on_cdr(self, fields: Mapping[str, str]) -> None:
        uniqueid = fields.get("UniqueID") or fields.get("Uniqueid") or ""
        if uniqueid not in self.watching:
            return
        self.watching.discard(uniqueid)  # the first CDR row of the channel is the Dial's
        end = end_from_cdr(fields, self.clock())
        task = asyncio.get_running_loop().create_task(self._finish(end))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, end: CallEnd) -> None:
        try:
            await self.store.finish_call(end)
        except Exception:
            log.exception("reconcile.finish_failed", uniqueid=end.uniqueid)
            return
        log.info("reconcile.finished", uniqueid=end.uniqueid, disposition=end.disposition,
                 talk=end.talk_seconds)  # fmt: skip

    async def stop(self) -> None:
        """Wait for rows being written."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
