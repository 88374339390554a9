"""An Asterisk-speaking FastAGI load generator: `python -m callflow.bench.loadgen --help`.

Each simulated call connects like Asterisk's res_agi does, sends the full ``agi_*`` header the
``[callflow-inbound]`` dialplan produces, and answers every command as Asterisk 22 would:
``SET VARIABLE`` → ``200 result=1``; ``GET VARIABLE`` → ``200 result=1 (value)`` or
``200 result=0``; ``GET FULL VARIABLE`` → ``200 result=1 (substituted)``; ``EXEC Dial`` rings for
the planned time, then answers (and talks) or is busy, and replies only when the Dial is over,
setting DIALSTATUS/HANGUPCAUSE and the answer-time ``SHARED()`` stamp the answer gosub writes.
A caller who hangs up gets ``200 result=-1`` plus a ``HANGUP`` line (the channel is dead from
then on: only dead-capable commands work). When the server half-closes, the final ``HANGUP``
line Asterisk always writes is sent, then the connection is closed.

Arrivals are open loop (a fixed schedule, whatever the completions) or closed loop (N callers
flat out). Per call it measures the routing decision latency: connect start → first EXEC Dial.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import quote

from callflow.bench.configs import tracking_number
from callflow.bench.procstat import raise_nofile
from callflow.bench.stats import summarise

__all__ = [
    "CallPlan",
    "ChannelModel",
    "LoadGen",
    "LoadResult",
    "Response",
    "build_header",
    "parse_args",
]

HangupWhen = Literal["none", "ringing", "talking"]

#: Commands Asterisk still runs after the channel hung up (res_agi's dead-capable set).
_DEAD_OK = frozenset(
    {"EXEC", "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP", "DATABASE"}
)
_VERBS = (
    "GET FULL VARIABLE", "GET VARIABLE", "SET VARIABLE", "CHANNEL STATUS", "DATABASE",
    "EXEC", "ANSWER", "HANGUP", "VERBOSE", "NOOP",
)  # fmt: skip
_VAR_RE = re.compile(r"\$\{([^{}]*)\}")
_SHARED_RE = re.compile(r"SHARED\(([^,)]*)(?:,[^)]*)?\)\Z")
_DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


@dataclass(frozen=True, slots=True)
class CallPlan:
    """How one simulated channel behaves: ring and talk seconds, busy first target, hangups."""

    ring: float = 0.0
    talk: float = 0.0
    busy_first: bool = False
    caller_hangup: HangupWhen = "none"


@dataclass(frozen=True, slots=True)
class Response:
    """Reply lines to write after ``delay`` seconds (0: at once)."""

    lines: tuple[str, ...]
    delay: float = 0.0


def parse_args(line: str) -> list[str]:
    """Split a command line as Asterisk's parse_args does: blanks, quotes, backslash escapes."""
    if "\\" not in line and line.count('"') % 2 == 0:
        parts = line.split('"')
        words: list[str] = []
        last = len(parts) - 1
        for i, part in enumerate(parts):
            if i % 2:
                words.append(part)
                continue
            # Text outside quotes must be separated from them by blanks, else Asterisk glues.
            if (i > 0 and part[:1] not in (" ", "\t")) or (
                i < last and part[-1:] not in (" ", "\t")
            ):
                return _parse_args_slow(line)
            words.extend(part.split())
        return words
    return _parse_args_slow(line)


def _parse_args_slow(line: str) -> list[str]:
    """Split a command line character by character (escapes and glued quotes)."""
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = started = False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = started = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        words.append("".join(current))
    return words


class ChannelModel:
    """The Asterisk side of one AGI session as pure logic: a command line in, a Response out."""

    def __init__(self, plan: CallPlan, clock: Callable[[], float] = time.time) -> None:
        """Start a live channel that will behave as ``plan`` says."""
        self.plan = plan
        self.clock = clock
        self.variables: dict[str, str] = {}
        self.shared: dict[str, str] = {}
        self.dead = False
        self.dials = 0
        self.commands: list[list[str]] = []

    def handle(self, line: str) -> Response:
        """Answer one command line (without its newline) as Asterisk 22 would."""
        words = parse_args(line)
        self.commands.append(words)
        upper = [w.upper() for w in words]
        verb = next((v for v in _VERBS if upper[: v.count(" ") + 1] == v.split(" ")), None)
        if verb is None:
            return Response(("510 Invalid or unknown command",))
        if self.dead and verb not in _DEAD_OK:
            return Response((_DEAD,))
        args = words[verb.count(" ") + 1 :]
        if verb == "SET VARIABLE":
            if len(args) != 2:
                return Response(("520 Invalid command syntax.  Proper usage not available.",))
            self.variables[args[0]] = args[1]
            return Response(("200 result=1",))
        if verb == "GET VARIABLE":
            value = self._lookup(args[0]) if args else None
            return Response(("200 result=0",) if value is None else (f"200 result=1 ({value})",))
        if verb == "GET FULL VARIABLE":
            expr = args[0] if args else ""
            return Response((f"200 result=1 ({_VAR_RE.sub(self._substitute, expr)})",))
        if verb == "EXEC":
            if args and args[0].lower() == "dial":
                return self._dial()
            return Response(("200 result=0",))
        if verb == "HANGUP":
            self.dead = True
            return Response(("200 result=1",))
        if verb == "CHANNEL STATUS":
            return Response(("200 result=6",))
        if verb in ("ANSWER", "NOOP"):
            return Response(("200 result=0",))
        return Response(("200 result=1",))  # VERBOSE, DATABASE

    def _lookup(self, name: str) -> str | None:
        """Return a variable or a SHARED() value, None when unset."""
        shared = _SHARED_RE.match(name)
        if shared is not None:
            return self.shared.get(shared.group(1))
        return self.variables.get(name)

    def _substitute(self, match: re.Match[str]) -> str:
        """Substitute one ``${...}`` (unset is empty, as pbx_substitute_variables does)."""
        return self._lookup(match.group(1)) or ""

    def _dial(self) -> Response:
        """Ring for the planned time, then answer (and talk) or be busy; the channel may hang up."""
        self.dials += 1
        plan = self.plan
        now = self.clock()
        ring = f"{plan.ring:.0f}"
        if plan.busy_first and self.dials == 1:
            self.variables.update(DIALSTATUS="BUSY", HANGUPCAUSE="17", DIALEDTIME=ring)
            return Response(("200 result=0",), plan.ring)
        if plan.caller_hangup == "ringing":
            self.dead = True
            self.variables.update(DIALSTATUS="CANCEL", HANGUPCAUSE="16", DIALEDTIME=ring)
            return Response(("200 result=-1", "HANGUP"), plan.ring)
        self.shared["CALLFLOW_AGENT_ANSWERED_AT"] = f"{now + plan.ring:.3f}"
        self.variables.update(
            DIALSTATUS="ANSWER",
            HANGUPCAUSE="16",
            DIALEDTIME=f"{plan.ring + plan.talk:.0f}",
            ANSWEREDTIME=f"{plan.talk:.0f}",
        )
        if plan.caller_hangup == "talking":
            self.dead = True
            return Response(("200 result=-1", "HANGUP"), plan.ring + plan.talk)
        # The agent hangs up first: Dial returns -1 with no HANGUP line and the AGI goes on.
        return Response(("200 result=-1",), plan.ring + plan.talk)


def build_header(
    seq: int,
    *,
    dnis: str,
    ani: str,
    caller_name: str = "unknown",
    port: int = 4573,
    epoch: int = 1_732_280_000,
) -> bytes:
    """Encode the header Asterisk 22 sends for the [callflow-inbound] AGI of call number ``seq``."""
    script = f"inbound?dnis={quote(dnis, safe='')}"
    env = (
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", f"agi://127.0.0.1:{port}/{script}"),
        ("agi_channel", f"PJSIP/carrier-{seq:08x}"),
        ("agi_language", "en"),
        ("agi_type", "PJSIP"),
        ("agi_uniqueid", f"{epoch}.{seq}"),
        ("agi_version", "22.10.1"),
        ("agi_callerid", ani),
        ("agi_calleridname", caller_name),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", dnis),
        ("agi_rdnis", "unknown"),
        ("agi_context", "callflow-inbound"),
        ("agi_extension", dnis),
        ("agi_priority", "9"),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(139_900_000_000_000 + seq)),
    )
    return "".join(f"{k}: {v}\n" for k, v in env).encode() + b"\n"


class _Call(asyncio.Protocol):
    """One simulated Asterisk channel talking FastAGI to the server under test."""

    def __init__(self, gen: LoadGen, model: ChannelModel, header: bytes, started: float) -> None:
        """Prepare the call; ``started`` is the connect start (perf_counter)."""
        self.gen = gen
        self.model = model
        self.header = header
        self.started = started
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False  # a command is being answered (a delayed Dial): no pipelining allowed
        self.dialled = False
        self.done_status = False
        self.error: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending = b""
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the AGI header, as Asterisk does at once."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.header)

    def data_received(self, data: bytes) -> None:
        """Answer each complete command line."""
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = self.buffer[:end].decode("utf-8", "surrogateescape")
            self.buffer = self.buffer[end + 1 :]
            if self.busy:
                self._fail("pipelined")
                return
            self._command(line)

    def _command(self, line: str) -> None:
        """Run one command through the channel model and schedule its reply."""
        words = line.split(" ", 2)
        if not self.dialled and words[0].upper() == "EXEC" and "dial" in line[:12].lower():
            self.dialled = True
            self.gen.record_decision(time.perf_counter() - self.started)
        if line.startswith('SET VARIABLE "CALLFLOW_STATUS" "done"'):
            self.done_status = True
        response = self.model.handle(line)
        payload = "".join(f"{reply}\n" for reply in response.lines).encode()
        if response.delay <= 0:
            self._write(payload)
            return
        self.busy = True
        self.pending = payload
        self.gen.in_dial += 1
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(response.delay, self._deliver, payload)
        self.gen.holding.add(self)

    def _deliver(self, payload: bytes) -> None:
        """Write a delayed reply (the Dial is over)."""
        self.timer = None
        self.busy = False
        self.gen.in_dial -= 1
        self.gen.holding.discard(self)
        self._write(payload)

    def release(self) -> None:
        """End a held Dial now (used to release calls held for the memory benchmark)."""
        if self.timer is not None:
            self.timer.cancel()
            self._deliver(self.pending)

    def _write(self, payload: bytes) -> None:
        """Write to the server if still connected."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)

    def eof_received(self) -> bool | None:
        """The server half-closed: write Asterisk's final HANGUP line and close."""
        if self.transport is not None:
            with contextlib.suppress(OSError):
                self.transport.write(b"HANGUP\n")
            self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Settle the call's outcome."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.gen.in_dial -= 1
            self.gen.holding.discard(self)
        finished = self.done_status or self.model.variables.get("DIALSTATUS") == "ANSWER"
        if self.error is None and not finished:  # the dialplan would send this call to fallback
            self.error = "reset" if exc is not None else "closed_early"
        if not self.finished.done():
            self.finished.set_result(None)

    def _fail(self, kind: str) -> None:
        """Record a protocol error and drop the connection."""
        self.error = self.error or kind
        if self.transport is not None:
            self.transport.abort()


@dataclass
class LoadResult:
    """What a load run measured."""

    mode: str
    offered_rate: float | None
    concurrency: int | None
    placed: int = 0
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    decision: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    late_starts: int = 0
    generator_cpu: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (latencies summarised)."""
        return {
            "mode": self.mode,
            "offered_rate": self.offered_rate,
            "concurrency": self.concurrency,
            "placed": self.placed,
            "completed": self.completed,
            "errors": dict(self.errors),
            "achieved_rate": self.completed / self.elapsed if self.elapsed else 0.0,
            "elapsed": self.elapsed,
            "late_starts": self.late_starts,
            "generator_cpu": self.generator_cpu,
            "decision": summarise(self.decision),
        }


@dataclass
class LoadGen:
    """Places simulated calls at a FastAGI server on loopback and collects what it measured."""

    port: int
    host: str = "127.0.0.1"
    ring: float = 0.0
    talk: float = 0.0
    busy_fraction: float = 0.0
    hangup_ringing_fraction: float = 0.0
    hangup_talking_fraction: float = 0.0
    numbers: int = 2
    unknown_fraction: float = 0.0
    ani_pool: int = 100_000
    call_timeout: float = 30.0
    seed: int = 1
    in_dial: int = 0
    holding: set[_Call] = field(default_factory=set)
    result: LoadResult = field(default_factory=lambda: LoadResult("none", None, None))
    #: Asterisk names channels "<start time>.<counter>"; each run has its own start (in ms
    #: here), so runs against one server never repeat a uniqueid (the CDR store refuses those).
    epoch: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    _seq: int = 0
    _rng: random.Random = field(default_factory=random.Random)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        """Seed the random choices so runs are repeatable."""
        self._rng.seed(self.seed)

    def record_decision(self, seconds: float) -> None:
        """Record one routing decision latency (connect start → first EXEC Dial)."""
        self.result.decision.append(seconds)

    def plan(self) -> CallPlan:
        """Draw the behaviour of the next call."""
        rng = self._rng
        draw = rng.random()
        hangup: HangupWhen = "none"
        if draw < self.hangup_ringing_fraction:
            hangup = "ringing"
        elif draw < self.hangup_ringing_fraction + self.hangup_talking_fraction:
            hangup = "talking"
        busy = rng.random() < self.busy_fraction
        return CallPlan(self.ring, self.talk, busy, hangup)

    def header(self) -> bytes:
        """Build the next call's header with a tracking number (or an unknown one) and an ANI."""
        self._seq += 1
        rng = self._rng
        if self.numbers <= 0 or rng.random() < self.unknown_fraction:
            dnis = f"888{rng.randrange(2_000_000, 9_999_999)}"
        else:
            dnis = tracking_number(rng.randrange(self.numbers))
        n = rng.randrange(max(1, self.ani_pool))
        area = (212, 312, 415, 617, 713, 305, 206, 303)[n % 8]
        ani = f"{area}{2_000_000 + (n // 8) % 7_000_000:07d}"
        return build_header(self._seq, dnis=dnis, ani=ani, port=self.port, epoch=self.epoch)

    async def place(self) -> None:
        """Place one call and wait until it is over (or fails)."""
        loop = asyncio.get_running_loop()
        result = self.result
        result.placed += 1
        call = _Call(self, ChannelModel(self.plan()), self.header(), time.perf_counter())
        try:
            async with asyncio.timeout(self.call_timeout):
                await loop.create_connection(lambda: call, self.host, self.port)
                await call.finished
        except TimeoutError:
            call.error = call.error or "timeout"
            if call.transport is not None:
                call.transport.abort()
        except OSError as exc:
            call.error = type(exc).__name__
        if call.error is None:
            result.completed += 1
        else:
            result.errors[call.error] += 1

    def _launch(self) -> None:
        """Start a call in the background."""
        task = asyncio.get_running_loop().create_task(self.place())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        """Wait for the calls in flight (each bounded by call_timeout)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def open_loop(self, rate: float, duration: float) -> LoadResult:
        """Offer ``rate`` calls/s for ``duration`` seconds on a fixed schedule."""
        self.result = LoadResult("open", rate, None)
        loop = asyncio.get_running_loop()
        total = max(1, int(rate * duration))
        cpu0, t0 = _own_cpu(), time.perf_counter()
        start = loop.time()
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.002:
                self.result.late_starts += 1
            self._launch()
        await self._drain()
        self.result.elapsed = time.perf_counter() - t0
        self.result.generator_cpu = _own_cpu() - cpu0
        return self.result

    async def closed_loop(self, concurrency: int, duration: float) -> LoadResult:
        """Keep ``concurrency`` callers busy back to back for ``duration`` seconds."""
        self.result = LoadResult("closed", None, concurrency)
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        cpu0, t0 = _own_cpu(), time.perf_counter()

        async def caller() -> None:
            while loop.time() < end:
                await self.place()

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        self.result.elapsed = time.perf_counter() - t0
        self.result.generator_cpu = _own_cpu() - cpu0
        return self.result

    async def hold(
        self, calls: int, rate: float, hold_for: float, on_held: Callable[[int], None]
    ) -> LoadResult:
        """Bring ``calls`` calls into a long Dial at ``rate``/s, report, hold, then release them."""
        self.result = LoadResult("hold", rate, calls)
        self.ring = max(self.ring, 3600.0)
        self.call_timeout = max(self.call_timeout, hold_for + calls / rate + 60.0)
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        start = loop.time()
        for i in range(calls):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._launch()
        deadline = loop.time() + 60.0
        # Polled: the count is reached from many connection callbacks.
        while self.in_dial + sum(self.result.errors.values()) < calls and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        on_held(self.in_dial)
        await asyncio.sleep(hold_for)
        for call in list(self.holding):
            call.release()
        await self._drain()
        self.result.elapsed = time.perf_counter() - t0
        return self.result


def _own_cpu() -> float:
    """Return this process's CPU seconds (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    p = argparse.ArgumentParser(prog="python -m callflow.bench.loadgen", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="server address (loopback only)")
    p.add_argument("--port", type=int, default=4573)
    p.add_argument("--rate", type=float, default=0.0, help="offered calls/s (open loop)")
    p.add_argument("--concurrency", type=int, default=32, help="callers (closed loop)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of arrivals")
    p.add_argument("--hold", type=int, default=0, help="hold this many calls in a long Dial")
    p.add_argument("--hold-rate", type=float, default=2000.0, help="arrival rate when holding")
    p.add_argument("--hold-for", type=float, default=3.0, help="seconds to keep them held")
    p.add_argument("--ring", type=float, default=0.0, help="seconds a Dial rings")
    p.add_argument("--talk", type=float, default=0.0, help="seconds of talk after answer")
    p.add_argument("--busy-fraction", type=float, default=0.0, help="first target busy")
    p.add_argument("--hangup-ringing", type=float, default=0.0, help="callers who give up")
    p.add_argument("--hangup-talking", type=float, default=0.0, help="callers who hang up")
    p.add_argument("--numbers", type=int, default=2, help="tracking numbers to call")
    p.add_argument("--unknown-fraction", type=float, default=0.0, help="calls to other numbers")
    p.add_argument("--ani-pool", type=int, default=100_000, help="distinct caller numbers")
    p.add_argument("--call-timeout", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one load and print its result as one JSON line on stdout."""
    args = _parser().parse_args(argv)
    if not args.host.startswith("127."):
        print("loadgen: traffic goes to loopback only", file=sys.stderr)
        return 2
    raise_nofile()
    gen = LoadGen(
        args.port, args.host, args.ring, args.talk, args.busy_fraction, args.hangup_ringing,
        args.hangup_talking, args.numbers, args.unknown_fraction, args.ani_pool,
        args.call_timeout, args.seed,
    )  # fmt: skip

    def held(count: int) -> None:
        print(f"HELD {count}", flush=True)

    async def run() -> LoadResult:
        if args.hold:
            return await gen.hold(args.hold, args.hold_rate, args.hold_for, held)
        if args.rate > 0:
            return await gen.open_loop(args.rate, args.duration)
        return await gen.closed_loop(args.concurrency, args.duration)

    runner: Callable[..., LoadResult] = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    result = runner(run())
    print(json.dumps({**result.as_dict(), "uvloop": runner is not asyncio.run}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
