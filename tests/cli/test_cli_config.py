"""`callflow config check` and `numbers list` on good and bad rules files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from callflow.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_config_check_ok() -> None:
    result = runner.invoke(app, ["config", "check", "--config", str(REPO / "rules/callflow.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_config_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (
        (REPO / "rules/callflow.yaml").read_text().replace("endpoint: agent1", "endpoint: agent1&x")
    )
    bad.write_text(text)
    result = runner.invoke(app, ["config", "check", "--config", str(bad)])
    assert result.exit_code == 2
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "agent1&x" in s)
    assert f"bad.yaml:{line}" in result.output


def test_numbers_list_json() -> None:
    result = runner.invoke(
        app, ["numbers", "list", "--format", "json", "--config", str(REPO / "rules/callflow.yaml")]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {"number": "+18005550001", "campaign": "spring-promo"}.items() <= rows[0].items()
