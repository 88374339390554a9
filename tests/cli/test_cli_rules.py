"""`callflow rules check` and `callflow rules explain` (a dry run, no call placed)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from callflow.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

RULES = """\
version: 1
settings: {default_country: US, timezone: America/New_York}
targets:
  nyc: {endpoint: agent1, hours: {mon-fri: ["09:00-17:00"]}}
  sf: {endpoint: agent2}
groups: {nyc: {targets: [nyc]}, sf: {targets: [sf]}}
menus: {main: {prompt: custom/menu, choices: ["1", "2"]}}
campaigns: {main: {route: [sf]}}
numbers:
  - {number: "8005550001", campaign: main}
unknown_number: {campaign: main}
rules:
  - {name: menu, when: {campaign: main}, ivr: main}
  - {name: ny-sales, when: {ivr: {main: "1"}, state: NY}, route: nyc, fallback: {route: sf}}
  - {name: rest, route: sf}
"""


def test_rules_check_reports_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(
        RULES.replace("groups: {nyc: {targets: [nyc]}", "groups: {nyc: {targets: [nyy]}")
    )
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 2
    assert "rules.yaml:6:" in result.output and "nyy" in result.output
    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    assert runner.invoke(app, ["rules", "check", str(good)]).exit_code == 0


def test_rules_explain_walks_the_ivr_and_says_why(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    args = ["rules", "explain", "--config", str(rules), "--db", str(tmp_path / "none.sqlite3"),
            "--dnis", "8005550001", "--ani", "2125550100", "--digits", "1"]  # fmt: skip

    at_night = runner.invoke(app, [*args, "--at", "2026-11-20T23:30:00-05:00"])  # a Friday
    by_day = runner.invoke(app, [*args, "--at", "2026-11-20T10:00:00-05:00"])

    assert at_night.exit_code == 0, at_night.output
    assert "run menu main" in at_night.output
    assert "caller enters '1' at menu main" in at_night.output
    assert "closed" in at_night.output  # nyc is closed at 23:30 …
    assert "fallback" in at_night.output  # … so the fallback group answers
    assert "route to group nyc: 1 nyc" in by_day.output
