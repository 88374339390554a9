"""SIPp as the sandbox's carrier (placing inbound calls) and agents (answering, busy, …)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from callflow.testing import scenarios
from callflow.testing.pcap import write_audio_pcap, write_dtmf_pcap
from callflow.testing.sandbox import SandboxConfig

SIPP = shutil.which("sipp") or "/usr/bin/sipp"

_MSG_SPLIT = re.compile(r"^-{20,} (\S+ \S+)\s*$", re.M)
_STAMP = re.compile(r"^-{20,} ([0-9-]+ [0-9:.]+)", re.M)


@dataclass(frozen=True)
class SipMessage:
    """One SIP message from a SIPp trace: direction, first line and headers."""

    received: bool
    at: float  # epoch seconds
    first_line: str
    headers: dict[str, str]
    raw: str

    @property
    def code(self) -> int | None:
        """The status code of a response, None for a request."""
        parts = self.first_line.split()
        if self.first_line.startswith("SIP/2.0") and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def method(self) -> str | None:
        """The method of a request, None for a response."""
        return None if self.first_line.startswith("SIP/2.0") else self.first_line.split()[0]

    @property
    def request_uri(self) -> str | None:
        """The request URI of a request."""
        parts = self.first_line.split()
        return parts[1] if self.method and len(parts) > 1 else None

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower())


def parse_trace(text: str) -> list[SipMessage]:
    """Parse SIPp's -trace_msg log into messages, oldest first."""
    messages = []
    chunks = re.split(r"^(?=-{20,} )", text, flags=re.M)
    for chunk in chunks:
        stamp = _STAMP.match(chunk)
        if not stamp:
            continue
        lines = chunk.splitlines()
        direction = lines[1] if len(lines) > 1 else ""
        received = "received" in direction
        body = [ln for ln in lines[2:]]
        while body and not body[0].strip():
            body.pop(0)
        if not body:
            continue
        headers: dict[str, str] = {}
        for line in body[1:]:
            if not line.strip():
                break
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        at = time.mktime(time.strptime(stamp.group(1).split(".")[0], "%Y-%m-%d %H:%M:%S"))
        frac = stamp.group(1).split(".")[1] if "." in stamp.group(1) else "0"
        messages.append(
            SipMessage(received, at + float("0." + frac), body[0].strip(), headers, "\n".join(body))
        )
    return messages


_ports = itertools.count(16000, 4)


def udp_bound(ip: str, port: int, table: str = "/proc/net/udp") -> bool:
    """Whether some socket is bound to the UDP address, read from the kernel without binding it."""
    want = f"{int.from_bytes(socket.inet_aton(ip), sys.byteorder):08X}:{port:04X}"
    any_ip = f"00000000:{port:04X}"
    with open(table, encoding="ascii") as f:
        next(f)
        return any(line.split()[1] in (want, any_ip) for line in f)


def _free_udp_port(ip: str) -> int:
    """A UDP port free on the address, from a range SIPp media ports use."""
    for _ in range(1000):
        port = next(_ports)
        if port > 29000:
            globals()["_ports"] = itertools.count(16000, 4)
            port = next(_ports)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((ip, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP port on {ip}")


@dataclass(frozen=True)
class CallResult:
    """What the carrier saw of one call."""

    answered: bool
    final_code: int | None
    duration: float | None  # seconds from the 200 OK to the end of the call
    hung_up_by: str | None  # "carrier" or "pbx", for answered calls
    messages: tuple[SipMessage, ...]
    exit_code: int
    started_at: float

    @property
    def invite_sent_at(self) -> float | None:
        """When the INVITE left the carrier."""
        for m in self.messages:
            if not m.received and m.method == "INVITE":
                return m.at
        return None


class Carrier:
    """Places inbound calls into the sandbox from the carrier's address, one SIPp per call."""

    def __init__(self, config: SandboxConfig | None = None, workdir: Path | None = None) -> None:
        self.config = config or SandboxConfig()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="callflow-carrier-"))
        self._seq = itertools.count(1)

    async def place_call(
        self,
        *,
        ani: str,
        dnis: str,
        caller_name: str | None = None,
        digits: str = "",
        digits_delay: float = 0.5,
        hold: float = 2.0,
        headers: dict[str, str] | None = None,
        cancel_after: float | None = None,
        audio: bool = False,
        timeout: float | None = None,
    ) -> CallResult:
        """Call DNIS from ANI; after answer send DIGITS, then hang up after HOLD seconds.

        With cancel_after, the caller hangs up that many seconds after the call starts ringing.
        With audio (and no digits), the caller talks (a tone) for the whole hold time.
        """
        if timeout is None:  # SIPp's own limit: well past the call's planned length
            timeout = 60.0 + hold + (cancel_after or 0.0) + digits_delay
        n = next(self._seq)
        d = self.workdir / f"call{n}"
        d.mkdir(parents=True, exist_ok=True)
        pcap = None
        if digits:
            pcap = write_dtmf_pcap(d / "digits.pcap", digits)
        elif audio:
            pcap = write_audio_pcap(d / "audio.pcap", hold)
            digits_delay = 0.0
        xml = scenarios.carrier_scenario(
            ani=ani, dnis=dnis, caller_name=caller_name, hold_ms=max(1, int(hold * 1000)),
            dtmf_pcap=str(pcap) if pcap else None, dtmf_delay_ms=int(digits_delay * 1000),
            extra_headers=headers or {},
            cancel_after_ms=None if cancel_after is None else max(1, int(cancel_after * 1000)),
        )  # fmt: skip
        (d / "carrier.xml").write_text(xml, encoding="latin-1", errors="replace")
        c = self.config
        started = time.time()
        proc = await asyncio.create_subprocess_exec(
            SIPP, f"{c.host}:{c.sip_port}", "-sf", str(d / "carrier.xml"),
            "-i", c.carrier_ip, "-p", str(_free_udp_port(c.carrier_ip)),
            "-mi", c.carrier_ip, "-mp", str(_free_udp_port(c.carrier_ip)),
            "-m", "1", "-l", "1", "-nostdin", "-aa",
            "-trace_msg", "-message_file", str(d / "messages.log"),
            "-trace_logs", "-log_file", str(d / "actions.log"),
            "-trace_err", "-error_file", str(d / "errors.log"),
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        messages = parse_trace(_read(d / "messages.log"))
        actions = _read(d / "actions.log")
        responses = [
            m.code
            for m in messages
            if m.received and m.code and m.code >= 200 and "INVITE" in (m.header("cseq") or "")
        ]
        final = responses[0] if responses else None
        answered = final == 200
        duration = None
        hung_up_by = None
        if answered:
            ok_at = next(
                m.at
                for m in messages
                if m.received and m.code == 200 and "INVITE" in (m.header("cseq") or "")
            )
            end_at = messages[-1].at
            duration = end_at - ok_at
            hung_up_by = "pbx" if "REMOTE-BYE" in actions else "carrier"
        assert proc.returncode is not None
        if proc.returncode not in (0, 1) or (final is None and err):
            (d / "stderr.log").write_bytes(err)
        return CallResult(
            answered, final, duration, hung_up_by, tuple(messages), proc.returncode, started
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="latin-1")
    except FileNotFoundError:
        return ""


@dataclass
class Agent:
    """One agent endpoint played by a SIPp UAS with a chosen behaviour."""

    name: str
    ip: str
    port: int
    answer_after: float | None = 0.0  # seconds of ringing; None = never answers
    reject: int | None = None  # SIP code to answer with instead (486 busy, 503, 480, 603 …)
    talk: float | None = None  # seconds until the agent hangs up; None = waits for the caller
    press: str = ""  # DTMF digits the agent sends after answering (e.g. "1" to accept a call)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="callflow-agent-")))
    _proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Agent:
        """Start the UAS and wait until it listens."""
        pcap = write_dtmf_pcap(self.workdir / "press.pcap", self.press) if self.press else None
        xml = scenarios.agent_scenario(
            answer_after_ms=None if self.answer_after is None else int(self.answer_after * 1000),
            reject=self.reject,
            talk_ms=None if self.talk is None else max(1, int(self.talk * 1000)),
            press_pcap=str(pcap) if pcap else None,
        )
        (self.workdir / "agent.xml").write_text(xml)
        with (self.workdir / "stderr.log").open("wb") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                SIPP, "-sf", str(self.workdir / "agent.xml"),
                "-i", self.ip, "-p", str(self.port), "-mi", self.ip, "-mp", str(self.port + 10000),
                "-nostdin", "-aa", "-l", "1000",
                "-trace_msg", "-message_file", str(self.workdir / "messages.log"),
                "-trace_err", "-error_file", str(self.workdir / "errors.log"),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                why = _read(self.workdir / "stderr.log").strip()
                raise RuntimeError(
                    f"agent {self.name}: sipp exited {self._proc.returncode}: {why[-500:]}"
                )
            if udp_bound(self.ip, self.port):
                return self
            await asyncio.sleep(0.02)
        await self.stop()  # or it would hold the agent's address for every later test
        raise RuntimeError(f"agent {self.name}: sipp did not start listening")

    async def stop(self) -> None:
        """Stop the UAS."""
        if self._proc and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    @property
    def messages(self) -> list[SipMessage]:
        """Every SIP message the agent sent or received so far."""
        return parse_trace(_read(self.workdir / "messages.log"))

    @property
    def invites(self) -> list[SipMessage]:
        """The INVITEs the agent received (one per call offered to it)."""
        seen: set[str | None] = set()
        out = []
        for m in self.messages:
            if m.received and m.method == "INVITE" and m.header("call-id") not in seen:
                seen.add(m.header("call-id"))
                out.append(m)
        return out

    async def wait_for_invites(self, count: int, timeout: float = 10.0) -> list[SipMessage]:
        """Wait until the agent has received COUNT calls."""
        deadline = time.monotonic() + timeout
        while len(self.invites) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.invites


@contextlib.asynccontextmanager
async def agent(config: SandboxConfig, name: str, **behaviour: object):  # type: ignore[no-untyped-def]
    """Run an agent endpoint (e.g. 'agent1', 'pstn-trunk', 'fallback') for a with-block."""
    a = Agent(name, config.peers()[name], config.peer_port, **behaviour)  # type: ignore[arg-type]
    await a.start()
    try:
        yield a
    finally:
        await a.stop()
