"""Caller directory: CSV import with per-line rejects, storage in the CDR database, CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callflow import directory
from callflow.cli import app
from callflow.store import CdrStore

REPO = Path(__file__).resolve().parents[2]

CSV = """number,name,company,address,account_id,tags
(212) 555-0100,Jane Roe,Acme Plumbing,"1 Main St, New York",A-17,"vip, plumbing"
+44 20 7946 0000,Tom Hill,,,,
not-a-number,Bad Row,,,,
3125550199,Sam Lee,Lee & Co,,B-2,
4155550123,Too,Many,Fields,,,,extra
"""


def test_parse_normalises_and_reports_bad_lines() -> None:
    contacts, report = directory.parse_csv(CSV, "US")
    by_number = {c.e164: c for c in contacts}
    assert set(by_number) == {"+12125550100", "+442079460000", "+13125550199"}
    jane = by_number["+12125550100"]
    assert (jane.name, jane.company, jane.account_id, jane.tags) == (
        "Jane Roe", "Acme Plumbing", "A-17", "vip,plumbing",
    )  # fmt: skip
    assert jane.address == "1 Main St, New York"
    assert report.imported == 3
    assert [line for line, _ in report.rejected] == [4, 6]
    assert "not a phone number" in report.rejected[0][1]


def test_header_must_name_a_number_column() -> None:
    with pytest.raises(directory.DirectoryError, match="number"):
        directory.parse_csv("name,company\nJane,Acme\n")
    with pytest.raises(directory.DirectoryError, match="unknown columns"):
        directory.parse_csv("number,colour\n2125550100,red\n")


def test_cli_import_then_list(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"
    src = tmp_path / "contacts.csv"
    src.write_text(CSV)
    runner = CliRunner()
    config = ["--config", str(REPO / "rules/callflow.yaml")]

    imported = runner.invoke(app, ["directory", "import", str(src), "--db", str(db), *config])
    listed = runner.invoke(app, ["directory", "list", "--db", str(db)])

    assert imported.exit_code == 0, imported.output
    assert "3 contacts imported, 2 rows skipped" in imported.output
    assert "contacts.csv:4: skipped" in imported.output
    assert "Acme Plumbing" in listed.output and "+442079460000" in listed.output
    # importing again updates in place; --replace drops the rest
    src.write_text("number,name\n2125550100,Jane R.\n")
    runner.invoke(app, ["directory", "import", str(src), "--db", str(db), "--replace", *config])
    assert {c.e164: c.name for c in directory.load(db).values()} == {"+12125550100": "Jane R."}


def test_import_beside_a_running_store(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"

    async def run() -> None:
        store = await CdrStore.open(db)
        try:
            contacts, _ = directory.parse_csv(CSV)
            await asyncio.to_thread(directory.save, db, contacts)
        finally:
            await store.close()

    asyncio.run(run())
    assert len(directory.load(db)) == 3
