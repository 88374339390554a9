"""Fixtures for the events tests: a real Mosquitto per test, MQTT subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from callflow.testing.mosquitto import MOSQUITTO, Broker, Subscriber


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running Mosquitto on a free loopback port, stopped at teardown."""
    if not shutil.which(MOSQUITTO):
        pytest.skip(f"{MOSQUITTO} not installed")
    b = Broker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def subscribe(broker: Broker) -> AsyncIterator[Any]:
    """Start subscribers on the test broker: ``sub = await subscribe("callflow/#")``."""
    tasks: list[asyncio.Task[None]] = []

    async def _subscribe(topic: str = "#") -> Subscriber:
        sub = Subscriber(broker.port, topic)
        tasks.append(asyncio.create_task(sub.run()))
        await asyncio.wait_for(sub.subscribed.wait(), 5)
        return sub

    yield _subscribe
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
