"""Every report in every format, the charts, and the CLI end to end (typer's CliRunner)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callflow.cli import app
from callflow.reports import Filters, ReportDb, render
from callflow.reports.charts import chart
from callflow.reports.costs import CostError, load_costs
from callflow.reports.stats import chi_square_2x2, noise_note, poisson_rate_test
from callflow.reports.summary import summary_report
from callflow.reports.timeutil import zone

NY = zone("America/New_York")
runner = CliRunner()
COMMON = ["--tz", "America/New_York"]
COMMANDS = {
    "summary": ["summary", "--by", "day"],
    "missed": ["missed"],
    "callers": ["callers"],
    "sources": ["sources"],
    "geo": ["geo"],
    "targets": ["targets"],
    "heatmap": ["heatmap"],
    "compare": [
        "compare",
        "--before",
        "2024-11-02..2024-11-02",
        "--after",
        "2024-11-03..2024-11-04",
    ],
    "caller": ["caller", "212-555-0001"],
}


def invoke(db_path: Path, *args: str) -> str:
    """Run ``callflow report ARGS`` on the data set; return stdout (fails on a non-zero exit)."""
    result = runner.invoke(app, ["report", *args, "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_summary_formats_exact(db: ReportDb) -> None:
    report, _ = summary_report(db, Filters(), "day", NY, {"tz": "America/New_York"})
    text = render(report, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1] == {"bucket": "2024-11-03", "start": "2024-11-03T00:00:00-04:00", "calls": "5",
                       "answered": "2", "missed": "2", "abandoned": "1", "unknown": "0",
                       "unique_callers": "3", "answer_rate": "0.4", "avg_ring": "10.2",
                       "avg_talk": "115.0"}  # fmt: skip
    assert rows[-1]["bucket"] == "total" and rows[-1]["calls"] == "7"
    doc = json.loads(render(report, "json"))
    assert doc["report"] == "summary" and doc["params"] == {"tz": "America/New_York"}
    assert doc["buckets"][2] == {"bucket": "2024-11-04", "start": "2024-11-04T00:00:00-05:00",
                                 "calls": 1, "answered": 1, "missed": 0, "abandoned": 0,
                                 "unknown": 0, "unique_callers": 1, "answer_rate": 1.0,
                                 "avg_ring": 2.0, "avg_talk": 60.0}  # fmt: skip
    table = render(report, "table")
    assert "2024-11-03" in table and "40.0%" in table and "10.2" in table and "total" in table


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_report_in_every_format(db_path: Path, name: str) -> None:
    args = [*COMMANDS[name], *COMMON]
    table = invoke(db_path, *args, "--format", "table")
    assert table.strip()
    doc = json.loads(invoke(db_path, *args, "--format", "json"))
    assert doc["report"] == name and doc["params"]["tz"] == "America/New_York"
    text = invoke(db_path, *args, "--format", "csv")
    first = text.splitlines()[0]
    assert first.startswith("#") or "," in first


def test_cli_numbers(db_path: Path) -> None:
    doc = json.loads(invoke(db_path, "sources", "--by", "campaign", "--format", "json"))
    assert [(g["campaign"], g["calls"], g["conversions"]) for g in doc["groups"]] == [
        ("google", 5, 2), ("facebook", 2, 1), ("total", 7, 3)]  # fmt: skip
    doc = json.loads(invoke(db_path, "missed", "--format", "json", *COMMON))
    assert [(c["caller"], c["reached_later"], c["reached_after"]) for c in doc["calls"]] == [
        ("+13125550003", True, "1 min"),
        ("anonymous", False, None),
        ("+13055550002", True, "2.0 h"),
    ]
    assert doc["totals"][-1] == {"disposition": "total", "calls": 3, "reached_later": 2,
                                 "reached_rate": 0.6667}  # fmt: skip
    doc = json.loads(invoke(db_path, "summary", "--since", "2024-11-03", "--until", "2024-11-03",
                            "--by", "hour", "--format", "json", *COMMON))  # fmt: skip
    assert len(doc["buckets"]) == 26 and doc["buckets"][-1]["calls"] == 5
    doc = json.loads(invoke(db_path, "targets", "--campaign", "facebook", "--format", "json"))
    assert [r["offered"] for r in doc["targets"]] == [1, 1, 1, 1]
    doc = json.loads(invoke(db_path, "heatmap", "--format", "json", "--state", "IL", *COMMON))
    assert [(c["weekday"], c["hour"]) for c in doc["cells"] if c["calls"]] == [
        ("Mon", 0),
        ("Sun", 23),
    ]
    doc = json.loads(invoke(db_path, *COMMANDS["compare"], "--format", "json", *COMMON))
    calls = doc["metrics"][0]
    assert (calls["before"], calls["after"], calls["change_pct"]) == (1.0, 3.0, 2.0)
    assert "within noise" in calls["note"]
    heat = invoke(db_path, "heatmap", "--format", "csv", *COMMON)
    assert heat.splitlines()[0] == "weekday,hour,calls,missed" and len(heat.splitlines()) == 169


def test_sources_cost_file(db_path: Path, tmp_path: Path) -> None:
    costs = tmp_path / "costs.csv"
    costs.write_text("campaign,cost\ngoogle,$100\nfacebook,50\n")
    doc = json.loads(invoke(db_path, "sources", "--cost-file", str(costs), "--format", "json"))
    got = [(g["campaign"], g["cost_per_call"], g["cost_per_conversion"]) for g in doc["groups"]]
    assert got == [("google", 20.0, 50.0), ("facebook", 25.0, 50.0), ("total", 21.4286, 50.0)]
    yaml_file = tmp_path / "costs.yaml"
    yaml_file.write_text("costs:\n  google: 10\n")
    assert load_costs(yaml_file) == {"google": 10.0}
    yaml_file.write_text("- 1\n")
    with pytest.raises(CostError):
        load_costs(yaml_file)


def test_cli_errors(db_path: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["report", "summary", "--db", str(db_path), "--tz", "Mars/Base"])
    assert bad.exit_code == 2 and "time zone" in bad.output
    bad = runner.invoke(app, ["report", "summary", "--db", str(db_path), "--by", "year"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["report", "summary", "--db", str(tmp_path / "none.sqlite3")])
    assert missing.exit_code == 1 and "no CDR database" in missing.output
    zip_report = invoke(db_path, "geo", "--by", "zip")
    assert "(unknown)" in zip_report


MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<svg", ".html": b"<!DOCTYPE html>"}


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("summary", ".png"), ("summary", ".svg"), ("summary", ".html"), ("missed", ".svg"),
     ("callers", ".png"), ("sources", ".svg"), ("geo", ".png"), ("targets", ".html"),
     ("heatmap", ".png"), ("compare", ".svg"), ("caller", ".png")],
)  # fmt: skip
def test_charts(db_path: Path, tmp_path: Path, name: str, suffix: str) -> None:
    path = tmp_path / f"{name}{suffix}"
    invoke(db_path, *COMMANDS[name], *COMMON, "--format", "csv", "--chart", str(path))
    data = path.read_bytes()
    assert len(data) > 1000
    if suffix == ".svg":
        assert b"<svg" in data[:500] and data.rstrip().endswith(b"</svg>")
    else:
        assert data.startswith(MAGIC[suffix])
    if suffix == ".html":
        assert b"<svg" in data and b"</html>" in data


def test_chart_rejects_other_suffixes(db_path: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["report", "summary", "--db", str(db_path), "--chart",
                              str(tmp_path / "x.jpg")])  # fmt: skip
    assert bad.exit_code == 2
    with pytest.raises(ValueError):
        chart("nope", [], tmp_path / "x.png", "t")


def test_poisson_rate_test_exact_and_approximate() -> None:
    assert poisson_rate_test(0, 1, 0, 1) == 1.0
    assert poisson_rate_test(10, 1, 10, 1) == pytest.approx(1.0)
    # exact binomial: 2 vs 12 events over equal time -> P = 2 * P(X <= 2 | n=14, p=.5)
    tail = sum(math.comb(14, k) for k in range(3)) / 2**14
    assert poisson_rate_test(2, 1, 12, 1) == pytest.approx(2 * tail)
    # large counts use the normal approximation: 10000 vs 10300 per equal time
    assert poisson_rate_test(10000, 1, 10300, 1) == pytest.approx(0.0352, abs=0.002)
    assert poisson_rate_test(1000, 10, 100, 1) == pytest.approx(1.0, abs=0.05)


def test_chi_square_2x2() -> None:
    # 60/100 vs 40/100: chi2 = 8.0 -> p = 0.004678
    assert chi_square_2x2(60, 100, 40, 100) == pytest.approx(0.004678, abs=1e-5)
    assert chi_square_2x2(1, 2, 1, 3) is None
    assert noise_note(None) == "too few calls to tell"
    assert noise_note(0.0001).startswith("real change")
    assert noise_note(0.03).startswith("likely a real change")
    assert noise_note(0.5).startswith("within noise")
