"""Shared fixtures for the FastAGI tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from callflow.agi import AgiSession
from callflow.agi.fake import HEADER, FakeAsterisk


@pytest.fixture
def fake_asterisk() -> type[FakeAsterisk]:
    """The FakeAsterisk class, for tests that connect to a server."""
    return FakeAsterisk


@pytest.fixture
def header_bytes() -> bytes:
    """A realistic Asterisk 22 FastAGI header."""
    return HEADER


@pytest.fixture
async def agi_pair() -> AsyncIterator[tuple[AgiSession, FakeAsterisk]]:
    """An AgiSession and its FakeAsterisk peer, joined by a socketpair."""
    left, right = socket.socketpair()
    f_reader, f_writer = await asyncio.open_connection(sock=right)
    fake = FakeAsterisk(f_reader, f_writer)
    await fake.send(HEADER)
    session = await AgiSession.accept(left, command_timeout=2.0)
    session.close_timeout = 0.2
    yield session, fake
    session.abort()
    fake.close()
