"""Asterisk Manager Interface (panoramisk), with events filtered at the source.

Asterisk sends this session its Cdr events and, when something listens for them, the DialEnd
events of answered legs and the DialBegin events of legs dialled through a trunk, and nothing
else: every event costs Python time to parse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from panoramisk import Manager

log = structlog.get_logger("callflow.ami")

#: The filter letting only answered legs' DialEnd events through (the others stay at Asterisk).
ANSWER_FILTER = "DialStatus: ANSWER"
#: The DialBegin of a leg dialled through a trunk ("+15551234567@pstn-trunk"): its dial string
#: tells apart two numbers rung through one trunk, whose channels name only the trunk.
TRUNK_DIAL_FILTER = "DialString: [^[:space:]]*@"

CdrCallback = Callable[[Mapping[str, str]], None]
EventCallback = Callable[[Mapping[str, str]], None]


class AmiError(RuntimeError):
    """The manager interface refused a login or an action."""


@dataclass(frozen=True)
class AmiUrl:
    """Where and as whom to log in: tcp://user:secret@host:port."""

    host: str
    port: int
    username: str
    secret: str

    @classmethod
    def parse(cls, url: str) -> AmiUrl:
        """Parse tcp://user:secret@host:port (port defaults to 5038)."""
        parts = urlsplit(url)
        if parts.scheme not in ("tcp", "ami") or not parts.hostname or not parts.username:
            raise ValueError(f"not an AMI URL (tcp://user:secret@host:port): {url!r}")
        return cls(parts.hostname, parts.port or 5038, unquote(parts.username),
                   unquote(parts.password or ""))  # fmt: skip


class Ami:
    """One AMI session: login asking only for the events wanted, actions, and callbacks."""

    def __init__(self, url: AmiUrl, *, answers: EventCallback | None = None) -> None:
        """Configure the session (``answers`` gets answered DialEnds and trunk legs' DialBegins);
        nothing connects yet."""
        self.url = url
        self._manager: Manager | None = None
        self._cdr_callbacks: list[CdrCallback] = []
        self._answers = answers

    async def start(self, timeout: float = 5.0) -> None:
        """Connect and log in (AmiError if refused or unreachable within timeout)."""
        manager = Manager(
            loop=asyncio.get_running_loop(),
            host=self.url.host,
            port=self.url.port,
            username=self.url.username,
            secret=self.url.secret,
            # Event classes at login: CDR, plus call (DialBegin, DialEnd) only when answers are
            # wanted.
            events="cdr,call" if self._answers is not None else "cdr",
            ping_delay=10,
            reconnect_timeout=2,
            log=logging.getLogger("callflow.ami.panoramisk"),
        )
        manager.register_event("Cdr", self._on_cdr)
        if self._answers is not None:
            manager.register_event("DialBegin", self._on_dial)
            manager.register_event("DialEnd", self._on_dial)
        manager.connect()
        self._manager = manager
        try:
            async with asyncio.timeout(timeout):
                while not manager.authenticated:
                    if manager.authenticated_future is None and manager.protocol is not None:
                        raise AmiError("AMI login refused")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            manager.close()
            raise AmiError(f"no AMI login at {self.url.host}:{self.url.port}") from None
        await self.action({"Action": "Filter", "Operation": "Add", "Filter": "Event: Cdr"})
        if self._answers is not None:
            for kept in (ANSWER_FILTER, TRUNK_DIAL_FILTER):
                await self.action({"Action": "Filter", "Operation": "Add", "Filter": kept})
        log.info("ami.connected", host=self.url.host, port=self.url.port)

    async def stop(self) -> None:
        """Close the session."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def on_cdr(self, callback: CdrCallback) -> None:
        """Call back with each Cdr event's fields (Asterisk's own CDR of a finished channel)."""
        self._cdr_callbacks.append(callback)

    def _on_cdr(self, _manager: Manager, event: Any) -> None:
        fields = {str(k): str(v) for k, v in dict(event).items()}
        for callback in self._cdr_callbacks:
            try:
                callback(fields)
            except Exception:
                log.exception("ami.cdr_callback_failed")

    def _on_dial(self, _manager: Manager, event: Any) -> None:
        if self._answers is None:
            return
        try:
            self._answers({str(k): str(v) for k, v in dict(event).items()})
        except Exception:
            log.exception("ami.answer_callback_failed")

    async def action(self, action: Mapping[str, str], *, as_list: bool = False) -> Any:
        """Send one action and return its response (a list of messages with as_list)."""
        if self._manager is None:
            raise AmiError("AMI session not started")
        response = await self._manager.send_action(dict(action), as_list=as_list)
        first = response[0] if isinstance(response, list) and response else response
        if getattr(first, "response", "") == "Error":
            raise AmiError(f"{action.get('Action')}: {getattr(first, 'message', '')}")
        return response

    async def live_uniqueids(self) -> set[str]:
        """The uniqueids of every channel Asterisk has now."""
        messages = await self.action({"Action": "CoreShowChannels"}, as_list=True)
        return {str(m.get("Uniqueid")) for m in messages if m.get("Event") == "CoreShowChannel"}

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        callerid: str,
        variables: Mapping[str, str],
        timeout: float = 30.0,
    ) -> None:
        """Originate a call (async): when CHANNEL answers, it runs context/exten/1."""
        await self.action(
            {
                "Action": "Originate",
                "Channel": channel,
                "Context": context,
                "Exten": exten,
                "Priority": "1",
                "CallerID": callerid,
                "Timeout": str(int(timeout * 1000)),
                "Async": "true",
                "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
            }
        )
