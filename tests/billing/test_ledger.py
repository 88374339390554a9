"""The ledger: append-only, idempotent posts, reversing adjustments, statements = the ledger."""

from __future__ import annotations

import contextlib
import sqlite3

import aiosqlite
import pytest
from billing_helpers import T0, call, config_of
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow.billing import (
    BillingState,
    LedgerError,
    adjust,
    assess,
    call_money,
    entries_of,
    load_state,
    post,
    statement,
)

CONFIG = config_of()


async def _sum(conn: aiosqlite.Connection, kind: str, account: str, lo: float, hi: float) -> int:
    rows = list(await conn.execute_fetchall(
        "SELECT coalesce(sum(amount_minor), 0) FROM ledger WHERE account_kind = ? AND account = ? "
        "AND at >= ? AND at < ?", (kind, account, lo, hi),
    ))  # fmt: skip
    return int(rows[0][0])


async def test_post_is_idempotent_and_records_the_rule_and_reasons(
    conn: aiosqlite.Connection,
) -> None:
    a = assess(call(), CONFIG)
    written = await post(conn, a)
    assert [(e.kind, e.account_kind, e.account, e.amount_minor) for e in written] == [
        ("revenue", "buyer", "acme", 2500), ("payout", "publisher", "pubn", 1000)
    ]  # fmt: skip
    assert await post(conn, a) == []
    found = await entries_of(conn, "c1")
    assert len(found) == 2
    assert found[0].rule == "buyers.acme.revenue.per_call"
    assert found[0].reason == "talk 95 s ≥ 90 s: converted for buyer acme; revenue $25.00 per call"
    assert found[0].converted and found[0].at == a.at


async def test_unconverted_calls_are_posted_at_zero_with_why(conn: aiosqlite.Connection) -> None:
    await post(conn, assess(call(talk_seconds=85), CONFIG))
    revenue, payout = await entries_of(conn, "c1")
    assert (revenue.amount_minor, revenue.converted) == (0, False)
    assert "talk 85 s < 90 s: not converted for buyer acme" in revenue.reason
    assert (payout.amount_minor, payout.converted) == (1000, True)  # pubn converts at 60


async def test_the_ledger_refuses_updates_and_deletes(conn: aiosqlite.Connection) -> None:
    await post(conn, assess(call(), CONFIG))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        await conn.execute("UPDATE ledger SET amount_minor = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        await conn.execute("DELETE FROM ledger")
    assert [e.amount_minor for e in await entries_of(conn, "c1")] == [2500, 1000]


async def test_adjustments_and_reversals(conn: aiosqlite.Connection) -> None:
    await post(conn, assess(call(), CONFIG))
    revenue = (await entries_of(conn, "c1"))[0]
    part = await adjust(conn, "c1", -1250, "buyer dispute: half", at=T0 + 1000)
    assert (part.kind, part.account, part.amount_minor, part.reverses_id) == (
        "adjustment", "acme", -1250, revenue.id
    )  # fmt: skip
    with pytest.raises(LedgerError, match=r"would leave call c1 at -\$0.01"):
        await adjust(conn, "c1", -1251, "too much")
    rest = await adjust(conn, "c1", -1250, "refunded", at=T0 + 2000)
    assert rest.kind == "reversal"  # cancels what is left exactly
    payout = await adjust(conn, "c1", -1000, "fraud", "publisher:pubn", at=T0 + 3000)
    assert (payout.kind, payout.account_kind) == ("reversal", "publisher")
    money = await call_money(conn, "c1")
    assert (money["revenue_minor"], money["payout_minor"], money["margin_minor"]) == (0, 0, 0)
    assert len(money["entries"]) == 5
    with pytest.raises(LedgerError, match="never billed"):
        await adjust(conn, "nope", -1, "x")
    with pytest.raises(LedgerError, match="needs a reason"):
        await adjust(conn, "c1", 100, " ")
    with pytest.raises(LedgerError, match="not billed for it"):
        await adjust(conn, "c1", 100, "x", "bolt")
    credit = await adjust(conn, "c1", 500, "goodwill back", "acme")
    assert credit.kind == "adjustment" and credit.amount_minor == 500


async def test_call_money(conn: aiosqlite.Connection) -> None:
    assert await call_money(conn, "c1") == {}
    await post(conn, assess(call(tracking_number="+18005550002"), CONFIG))  # pubc, 40 %
    money = await call_money(conn, "c1")
    assert money["buyer"] == "acme" and money["publisher"] == "pubc"
    assert (money["revenue"], money["payout"], money["margin"]) == ("$25.00", "$10.00", "$15.00")
    assert money["buyer_converted"] and money["publisher_converted"]
    assert any("converted for buyer acme" in r for r in money["reasons"])


async def test_statement_counts_and_totals(conn: aiosqlite.Connection) -> None:
    state = BillingState(CONFIG)
    ani = "+12125550100"
    calls = [
        call("c1", ani_e164=ani),  # converts
        call("c2", ani_e164="+12125550101", talk_seconds=40),  # does not
        call("c3", ani_e164=ani, started_at=T0 + 3600),  # duplicate of c1
        call("c4", ani_e164="+12125550102", started_at=T0 + 7200, final_target="a2"),
    ]
    for c in calls:
        await post(conn, state.bill(c))
    await adjust(conn, "c4", -500, "short call dispute", at=T0 + 8000)
    s = await statement(conn, "buyer", "acme", T0, T0 + 86400)
    assert (s.calls, s.conversions, s.duplicates) == (4, 2, 1)
    assert (s.billed_minor, s.adjustments_minor, s.total_minor) == (5000, -500, 4500)
    assert s.total_minor == await _sum(conn, "buyer", "acme", T0, T0 + 86400)
    assert sum(line.total_minor for line in s.lines) == s.total_minor
    assert [line.uniqueid for line in s.lines] == ["c2", "c1", "c3", "c4"]  # by end time
    dup = s.lines[2]
    assert dup.duplicate_of == "c1" and dup.total_minor == 0
    # The adjustment is dated when it was made: a period ending before it does not show it.
    early = await statement(conn, "buyer", "acme", T0, T0 + 7800)
    assert early.adjustments_minor == 0 and early.total_minor == 5000
    late = await statement(conn, "buyer", "acme", T0 + 7800, None)
    assert (late.calls, late.total_minor, late.lines[0].uniqueid) == (0, -500, "c4")
    pub = await statement(conn, "publisher", "pubn")
    assert pub.total_minor == await _sum(conn, "publisher", "pubn", 0, 1e12)
    # c1 and c4 paid $10 each; c2 too short (40 s < 60 s); c3 a duplicate: not paid
    assert pub.as_dict(lines=False)["total"] == "$20.00"
    assert (pub.calls, pub.conversions, pub.duplicates) == (4, 2, 1)
    assert pub.as_dict()["lines"][0]["uniqueid"] == "c2"


async def test_statement_refuses_mixed_currencies(conn: aiosqlite.Connection) -> None:
    await post(conn, assess(call("c1"), CONFIG))
    eur = config_of(
        """\
        buyers:
          acme: {targets: [a1], currency: EUR, revenue: {per_call: 20}}
        """
    )
    await post(conn, assess(call("c2"), eur))
    with pytest.raises(LedgerError, match=r"EUR, USD"):
        await statement(conn, "buyer", "acme")
    only = await statement(conn, "buyer", "acme", currency="EUR")
    assert (only.currency, only.total_minor) == ("EUR", 2000)


async def test_load_state_rebuilds_caps_and_duplicates(conn: aiosqlite.Connection) -> None:
    live = BillingState(CONFIG)
    for i in range(4):
        await post(conn, live.bill(call(f"c{i}", ani_e164=f"+1212555010{i}")))
    rebuilt = await load_state(conn, CONFIG, T0 + 600)
    assert rebuilt.refusal("a1", T0 + 600) == live.refusal("a1", T0 + 600)
    assert rebuilt.refusal("a1", T0 + 600) == "buyer acme daily revenue cap $100.00/$100.00"
    assert rebuilt.is_duplicate("acme", "+12125550100", T0 + 3600) is not None
    # a day later the cap is open again, the duplicate still holds (48 h)
    assert rebuilt.refusal("a1", T0 + 86400) is None
    assert rebuilt.is_duplicate("acme", "+12125550100", T0 + 86400) is not None


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(0, 300), st.integers(0, 5000)),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.tuples(st.integers(0, 11), st.integers(-3000, 3000)), max_size=8),
)
async def test_statement_totals_equal_the_ledger(
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[tuple[int, float, int]],
    adjustments: list[tuple[int, int]],
) -> None:
    from callflow.billing import open_ledger

    conn = await open_ledger(tmp_path_factory.mktemp("ledger") / "cdr.sqlite3")
    try:
        state = BillingState(CONFIG)
        for n, (caller, talk, offset) in enumerate(calls):
            target = ("a1", "a2", "b1")[caller % 3]
            await post(conn, state.bill(call(
                f"c{n}", ani_e164=f"+1212555010{caller}", talk_seconds=talk,
                final_target=target, started_at=T0 + offset * 60,
            )))  # fmt: skip
        for n, (which, amount) in enumerate(adjustments):
            # an unknown call, or a total that would go negative, is refused
            with contextlib.suppress(LedgerError):
                await adjust(conn, f"c{which}", amount or 1, "why", at=T0 + 1000 * n)
        for kind, account in (("buyer", "acme"), ("buyer", "bolt"), ("publisher", "pubn")):
            for lo, hi in ((T0 - 1, T0 + 86400 * 10), (T0 + 3600, T0 + 86400)):
                s = await statement(conn, kind, account, lo, hi)  # type: ignore[arg-type]
                assert s.total_minor == await _sum(conn, kind, account, lo, hi)
                assert sum(line.total_minor for line in s.lines) == s.total_minor
    finally:
        await conn.close()
