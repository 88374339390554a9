"""`callflow billing statement` and `callflow billing adjust`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

from billing_helpers import call, config_of
from typer.testing import CliRunner

from callflow.billing import BillingState, entries_of, open_ledger, post
from callflow.cli import app

runner = CliRunner()
SINCE, UNTIL = "2026-05-28", "2026-05-29"  # T0 is 2026-05-28 20:26 UTC


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "cdr.sqlite3"

    async def fill() -> None:
        conn = await open_ledger(path)
        try:
            state = BillingState(config_of())
            await post(conn, state.bill(call("c1")))
            await post(conn, state.bill(call("c2", talk_seconds=80, ani_e164="+12125550111")))
        finally:
            await conn.close()

    asyncio.run(fill())
    return path


def test_statement_json_csv_table(tmp_path: Path) -> None:
    db = str(_db(tmp_path))
    args = [
        "billing",
        "statement",
        "--buyer",
        "acme",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--db",
        db,
    ]
    result = runner.invoke(app, [*args, "--format", "json", "--lines"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["calls"], data["conversions"], data["total_minor"], data["total"]) == (
        2, 1, 2500, "$25.00"
    )  # fmt: skip
    assert [line["uniqueid"] for line in data["lines"]] == ["c2", "c1"]
    result = runner.invoke(app, [*args, "--format", "csv", "--lines"])
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][0] == "row" and [r[0] for r in rows[1:]] == ["call", "call", "total"]
    assert rows[-1][10] == "2500"
    result = runner.invoke(app, [*args])
    assert result.exit_code == 0 and "$25.00" in result.output and "conversions" in result.output
    publisher = runner.invoke(app, ["billing", "statement", "--publisher", "pubn", "--db", db,
                                    "--format", "json"])  # fmt: skip
    assert json.loads(publisher.output)["total"] == "$20.00"


def test_statement_needs_one_account(tmp_path: Path) -> None:
    result = runner.invoke(app, ["billing", "statement", "--db", str(_db(tmp_path))])
    assert result.exit_code != 0


def test_adjust(tmp_path: Path) -> None:
    path = _db(tmp_path)
    result = runner.invoke(app, ["billing", "adjust", "c1", "--amount", "-12.50",
                                 "--reason", "buyer dispute", "--db", str(path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "adjustment -$12.50 for buyer acme on call c1" in result.output
    result = runner.invoke(app, ["billing", "adjust", "c1", "--amount", "-10", "--reason", "fraud",
                                 "--account", "pubn", "--db", str(path)])  # fmt: skip
    assert "reversal -$10.00 for publisher pubn" in result.output
    bad = runner.invoke(app, ["billing", "adjust", "c1", "--amount", "-99", "--reason", "x",
                              "--db", str(path)])  # fmt: skip
    assert bad.exit_code == 1
    missing = runner.invoke(app, ["billing", "adjust", "zz", "--amount", "1", "--reason", "x",
                                  "--db", str(path)])  # fmt: skip
    assert missing.exit_code == 1 and "never billed" in missing.output

    async def amounts() -> list[int]:
        conn = await open_ledger(path)
        try:
            return [e.amount_minor for e in await entries_of(conn, "c1")]
        finally:
            await conn.close()

    assert asyncio.run(amounts()) == [2500, 1000, -1250, -1000]
    statement = runner.invoke(app, ["billing", "statement", "--buyer", "acme", "--db", str(path),
                                    "--format", "json"])  # fmt: skip
    assert json.loads(statement.output)["total"] == "$12.50"
