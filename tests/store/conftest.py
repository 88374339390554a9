"""Shared fixtures and record factories for the CDR store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cdr_samples import OpenStore

from callflow.store import CdrReader, CdrStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's CDR database lives (not created yet)."""
    return tmp_path / "cdr.sqlite3"


@pytest.fixture
async def open_store(db_path: Path) -> AsyncIterator[OpenStore]:
    """Open CdrStores on the test database (quick batching by default), closed at teardown."""
    opened: list[CdrStore] = []

    async def _open(**kwargs: Any) -> CdrStore:
        kwargs.setdefault("batch_interval", 0.01)
        store = await CdrStore.open(db_path, **kwargs)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[CdrStore]:
    """An open CdrStore with quick batching, closed at teardown."""
    async with await CdrStore.open(db_path, batch_interval=0.01) as s:
        yield s


@pytest.fixture
async def reader(store: CdrStore, db_path: Path) -> AsyncIterator[CdrReader]:
    """A CdrReader on the same database as ``store``."""
    async with await CdrReader.open(db_path) as r:
        yield r
