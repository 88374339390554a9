"""The synthetic CDR generator: deterministic, consistent, readable by every report."""

from __future__ import annotations

import importlib.util
import itertools
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

from callflow.reports import Filters, ReportDb, sources, summary, targets
from callflow.reports.timeutil import zone


def _gen() -> ModuleType:
    """Import scripts/gen_cdrs.py."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "gen_cdrs.py"
    spec = importlib.util.spec_from_file_location("gen_cdrs", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_cdrs"] = module
    spec.loader.exec_module(module)
    return module


def test_generator_is_deterministic_and_consistent(tmp_path: Path) -> None:
    gen = _gen()
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    gen.generate(a, 3000, seed=7, days=30, parallel=False)
    gen.generate(b, 3000, seed=7, days=30, parallel=False)
    dump = "SELECT * FROM calls ORDER BY uniqueid"
    with sqlite3.connect(a) as ca, sqlite3.connect(b) as cb:
        assert ca.execute(dump).fetchall() == cb.execute(dump).fetchall()
        assert ca.execute("SELECT count(*) FROM calls").fetchone() == (3000,)
        # every answered call has exactly one ANSWER attempt on its final target
        bad = ca.execute(
            "SELECT count(*) FROM calls c WHERE disposition = 'answered' AND NOT EXISTS "
            "(SELECT 1 FROM attempts a WHERE a.uniqueid = c.uniqueid AND a.result = 'ANSWER' "
            "AND a.target = c.final_target)"
        ).fetchone()
        assert bad == (0,)
        # the caller links, as the daemon's writer keeps them (see tests/store)
        rows = ca.execute(
            "SELECT ani_e164, started_at, disposition, prev_started_at, next_answered_at "
            "FROM calls WHERE ani_e164 IS NOT NULL ORDER BY ani_e164, started_at, rowid"
        ).fetchall()
    for ani, group in itertools.groupby(rows, key=lambda r: r[0]):
        calls = list(group)
        for i, (_, at, _, prev, nxt) in enumerate(calls):
            assert prev == (calls[i - 1][1] if i else None), ani
            later = [c[1] for c in calls if c[1] > at and c[2] == "answered"]
            assert nxt == (min(later) if later else None), ani
    with ReportDb.open(a) as db:
        _, total = summary(db, Filters(), "day", zone("America/Chicago"))
        assert total.calls == 3000 and 0.5 < (total.answer_rate or 0) < 0.9
        assert total.unique_callers < 3000  # repeat callers
        assert len(sources(db, Filters())[0]) == len(gen.CAMPAIGNS)
        assert sum(t.cap_hits for t in targets(db, Filters())) > 0
