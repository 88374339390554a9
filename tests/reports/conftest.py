"""Fixtures for the report tests: the hand-built data set, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_data import create_db, fill

from callflow.reports import ReportDb


@pytest.fixture(scope="session")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data set, built once per session."""
    path = tmp_path_factory.mktemp("reports") / "cdr.sqlite3"
    conn = create_db(path)
    fill(conn)
    conn.close()
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[ReportDb]:
    """A read-only report connection to the data set."""
    with ReportDb.open(db_path) as handle:
        yield handle
