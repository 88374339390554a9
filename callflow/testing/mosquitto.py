"""A real Mosquitto on a free loopback port, and an MQTT subscriber that survives its restarts."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

MOSQUITTO = os.environ.get("CALLFLOW_MOSQUITTO", "/usr/sbin/mosquitto")


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out to outgoing connections (``ip_local_port_range``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range, to be bound later by a server.

    A port from ``bind(0)`` comes from the ephemeral range, where any outgoing connection made
    before the server binds it (SIPp, Asterisk, the daemon's clients) may take it; below that
    range only a listener can.
    """
    low, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_port(port: int, timeout: float = 5.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass
class Broker:
    """A Mosquitto broker of the test's own, with persistence (so sessions survive a restart)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        """The broker's mosquitto.conf."""
        return self.directory / "mosquitto.conf"

    def start(self) -> None:
        """Write the configuration, start Mosquitto and wait for its port."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.directory}/",
            f"log_dest file {self.directory}/mosquitto.log",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # do not drop to the mosquitto user (tmp dir is ours)
        self.conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except OSError:
            self.stop()
            log = (self.directory / "mosquitto.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mosquitto did not start:\n{log}") from None

    def stop(self) -> None:
        """Stop Mosquitto (SIGTERM: it saves its persistence file) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class Subscriber:
    """Collects the JSON messages of a topic filter, reconnecting with a persistent session."""

    port: int
    topic: str = "#"
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    identifier: str = field(default_factory=lambda: f"test-sub-{os.getpid()}-{time.time_ns()}")

    async def run(self) -> None:
        """Receive until cancelled."""
        while True:
            try:
                client = aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.identifier, clean_session=False
                )
                async with client:
                    await client.subscribe(self.topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append((str(message.topic), json.loads(payload)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    def events(self) -> list[dict[str, Any]]:
        """The call-event payloads received (status messages left out)."""
        return [m for t, m in self.messages if "/calls/" in t]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` is true."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {len(self.events())} events")
            await asyncio.sleep(0.02)
