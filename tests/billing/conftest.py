"""The billing tests' fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from callflow.billing import open_ledger


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """A migrated CDR database, open for the ledger."""
    connection = await open_ledger(tmp_path / "cdr.sqlite3")
    try:
        yield connection
    finally:
        await connection.close()
