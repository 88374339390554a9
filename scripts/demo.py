"""`make demo`: sandbox Asterisk + `callflow serve` + real SIPp calls, then the CDRs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from callflow.testing.sandbox import Sandbox, SandboxConfig
from callflow.testing.sipp import Agent, Carrier

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules" / "callflow.yaml"
DB = REPO / "var" / "demo.sqlite3"
CLI = [sys.executable, "-m", "callflow.cli"]

# (ANI, caller name, DNIS, DTMF digits pressed at the menu, seconds on the line after answer)
CALLS = [
    ("2125550100", "Jane Roe", "8005550001", "", 3),  # New York, spring-promo
    ("3125550199", "Sam Lee", "8005550001", "", 2),  # Chicago, spring-promo
    ("4155550123", "Ana Diaz", "8005550002", "", 2),  # San Francisco, general
    ("+442079460000", "Tom Hill", "8005550002", "", 2),  # London, general
    ("anonymous", "", "8005550099", "", 2),  # withheld caller, unknown tracking number
    ("2125550100", "Jane Roe", "8005550001", "", 2),  # the New Yorker again: a repeat caller
    ("4155550188", "Lee Park", "8005550003", "1", 5),  # radio ad, menu 1 = sales, from CA
    ("6465550142", "Max Roy", "8005550003", "2", 5),  # radio ad, menu 2 = support (all ring)
]


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the daemon accepts FastAGI connections."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"callflow serve exited with status {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("callflow serve did not start listening")


async def place_calls(cfg: SandboxConfig) -> None:
    """Start the agents and place the demo calls one after another."""
    agents = [
        Agent("agent1", cfg.agent_ip(1), cfg.peer_port, reject=486),  # alice is busy today
        Agent("agent2", cfg.agent_ip(2), cfg.peer_port, reject=486),
        Agent("agent3", cfg.agent_ip(3), cfg.peer_port, answer_after=0.5),
        Agent("agent4", cfg.agent_ip(4), cfg.peer_port, answer_after=1.5),
        Agent("pstn-trunk", cfg.pstn_ip, cfg.peer_port, answer_after=1.0),
        Agent("agent5", cfg.agent_ip(5), cfg.peer_port, answer_after=1.0),
        Agent("agent6", cfg.agent_ip(6), cfg.peer_port, answer_after=1.0),
        Agent("agent7", cfg.agent_ip(7), cfg.peer_port, answer_after=1.0),
        Agent("agent8", cfg.agent_ip(8), cfg.peer_port, answer_after=0.5),
    ]
    try:
        for agent in agents:
            await agent.start()
        carrier = Carrier(cfg)
        print(f"== placing {len(CALLS)} real SIP calls from the carrier", flush=True)
        for ani, name, dnis, digits, hold in CALLS:
            result = await carrier.place_call(
                ani=ani, dnis=dnis, caller_name=name or None, digits=digits, hold=hold
            )
            state = "answered" if result.answered else f"not answered (SIP {result.final_code})"
            pressed = f" (pressed {digits})" if digits else ""
            print(f"   {ani:>15} -> {dnis}{pressed}: {state}", flush=True)
    finally:
        for agent in agents:
            await agent.stop()


def main() -> int:
    """Run the demo; returns the exit status."""
    sandbox = Sandbox()
    print("== starting the sandbox Asterisk", flush=True)
    sandbox.start()
    cfg = sandbox.config
    DB.parent.mkdir(exist_ok=True)
    DB.unlink(missing_ok=True)
    print(f"== starting callflow serve on 127.0.0.1:{cfg.agi_port} ({RULES.relative_to(REPO)})")
    daemon = subprocess.Popen(
        [*CLI, "serve", "--config", str(RULES), "--db", str(DB),
         "--listen", f"127.0.0.1:{cfg.agi_port}", "--log-level", "warning"],
        env=dict(os.environ),
    )  # fmt: skip
    try:
        wait_listening("127.0.0.1", cfg.agi_port, daemon)
        asyncio.run(place_calls(cfg))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=40)
        sandbox.stop()
    print("\n== callflow cdr list", flush=True)
    subprocess.run([*CLI, "cdr", "list", "--db", str(DB)], check=True)
    print("\n== callflow cdr show (the first call: alice busy, bob busy, the NYC office answered)")
    with sqlite3.connect(DB) as db:
        (first,) = db.execute("select uniqueid from calls order by started_at limit 1").fetchone()
    subprocess.run([*CLI, "cdr", "show", first, "--db", str(DB)], check=True)
    print("\n== callflow cdr show (the radio caller from California: IVR menu, then the rules)")
    with sqlite3.connect(DB) as db:
        (ivr,) = db.execute("select uniqueid from calls where ivr_digits = 'main=1'").fetchone()
    subprocess.run([*CLI, "cdr", "show", ivr, "--db", str(DB)], check=True)
    rel = DB.relative_to(REPO)
    print(f"\nMore: .venv/bin/callflow cdr show <uniqueid> --db {rel}")
    print(f"      .venv/bin/callflow cdr export --format csv --db {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
