"""Live billing state: caps with reservations (exact under interleaving), duplicates, periods."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from billing_helpers import T0, call, config_of
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow.billing import BillingState, SettledEntry
from callflow.config import zone

CONFIG = config_of()


def test_revenue_cap_refusal_words_and_last_slot() -> None:
    state = BillingState(CONFIG)
    for i in range(3):  # 3 x $25 billed of a $100 daily cap
        assert state.reserve("a1", f"c{i}", T0, ani_e164=f"+1212555010{i}") is None
        state.bill(call(f"c{i}", ani_e164=f"+1212555010{i}"))
    # one $25 slot left: two calls ringing at once cannot both take it
    assert state.reserve("a1", "x", T0 + 200) is None
    refusal = state.reserve("a2", "y", T0 + 200)
    assert refusal == "buyer acme daily revenue cap $100.00/$100.00 (1 call in progress)"
    state.release("x", "a1")  # x was not answered there
    assert state.refusal("a2", T0 + 200) is None
    assert state.reserve("a2", "y", T0 + 200) is None
    state.bill(call("y", final_target="a2", ani_e164="+12125550199", started_at=T0 + 200))
    assert state.refusal("a1", T0 + 400) == "buyer acme daily revenue cap $100.00/$100.00"
    assert state.holds() == 0


def test_revenue_cap_stops_short_of_a_call_that_might_not_fit() -> None:
    config = config_of("""\
        buyers:
          bolt:
            targets: [b1]
            revenue: {tiers: [{min_seconds: 60, amount: "20.00"}, {min_seconds: 180, amount: "35.00"}]}
            caps: {daily: {revenue: "50.00"}}
        """)  # noqa: E501
    state = BillingState(config)
    assert state.reserve("b1", "c1", T0) is None
    state.bill(call("c1", final_target="b1", talk_seconds=100))  # $20 billed, $30 left < $35
    assert state.refusal("b1", T0 + 200) == (
        "buyer bolt daily revenue cap $20.00/$50.00; the next call may bill up to $35.00"
    )


def test_conversions_cap_and_unconverted_calls_free_the_slot() -> None:
    state = BillingState(CONFIG)  # bolt: 2 conversions a day (America/Chicago)
    assert state.reserve("b1", "c1", T0) is None
    assert state.reserve("b1", "c2", T0) is None
    assert state.reserve("b1", "c3", T0) == (
        "buyer bolt daily conversions cap 2/2 (2 calls in progress)"
    )
    state.bill(call("c1", final_target="b1", talk_seconds=30))  # not converted
    assert state.reserve("b1", "c3", T0 + 60) is None
    state.bill(call("c2", final_target="b1", talk_seconds=100))
    state.bill(call("c3", final_target="b1", talk_seconds=100))
    assert state.refusal("b1", T0 + 300) == "buyer bolt daily conversions cap 2/2"
    # the next day in Chicago (T0 is 15:26 there): room again
    assert state.refusal("b1", T0 + 9 * 3600) is None


def test_simultaneous_ringing_holds_once_per_buyer() -> None:
    state = BillingState(CONFIG)
    assert state.reserve("a1", "c1", T0) is None
    assert state.reserve("a2", "c1", T0) is None  # same buyer, same call: nothing more held
    assert state.holds("c1") == 1
    assert state.reserve("b1", "c1", T0) is None
    assert state.holds("c1") == 2
    state.release("c1")
    assert state.holds() == 0


def test_targets_without_a_buyer_always_pass() -> None:
    state = BillingState(CONFIG)
    assert state.refusal("house", T0) is None
    assert state.reserve("house", "c1", T0) is None and state.holds() == 0


def test_duplicates_route_elsewhere() -> None:
    state = BillingState(CONFIG)
    ani = "+12125550100"
    assert state.is_duplicate("acme", ani, T0) is None
    state.reserve("a1", "c1", T0, ani_e164=ani)
    first = state.bill(call("c1"))
    assert first.billed
    later = T0 + 86400
    assert (
        state.is_duplicate("acme", ani, later) == "duplicate of call c1 for buyer acme within 48h"
    )
    assert state.refusal("a1", later, ani_e164=ani) == (
        "duplicate of call c1 for buyer acme within 48h: routed elsewhere"
    )
    assert state.refusal("b1", later, ani_e164=ani) is None  # another buyer takes them
    assert state.reserve("a2", "c2", later, ani_e164=ani) is not None
    # If it reaches acme anyway (e.g. no other buyer), it is not billed twice
    second = state.bill(call("c2", final_target="a2", started_at=later))
    assert second.duplicate_of == "c1" and second.revenue_minor == 0
    # a duplicate does not extend the window: 48 h after c1's conversion it is over
    assert state.is_duplicate("acme", ani, first.at + 48 * 3600 + 1) is None


def test_unconverted_calls_do_not_make_duplicates() -> None:
    state = BillingState(CONFIG)
    state.bill(call("c1", talk_seconds=30))
    assert state.is_duplicate("acme", "+12125550100", T0 + 60) is None


def test_publisher_payout_cap() -> None:
    state = BillingState(CONFIG)  # pubn: $20.00 a day, $10 per call
    paid = [state.bill(call(f"c{i}", ani_e164=f"+121255501{i:02d}", final_target="house"))
            for i in range(3)]  # fmt: skip
    assert [a.payout_minor for a in paid] == [1000, 1000, 0]
    assert "publisher pubn daily payout cap $20.00/$20.00: not paid" in paid[2].reasons
    assert paid[2].payout_rule == "publishers.pubn.caps"
    assert state.usage("publisher", "pubn", T0)["daily"] == {"conversions": 2, "amount_minor": 2000}


def test_load_rebuilds_totals_and_duplicates() -> None:
    state = BillingState(CONFIG)
    state.load([
        SettledEntry("buyer", "acme", "old", T0 - 100, 10000, True, None, "+12125550100", "solar"),
    ])  # fmt: skip
    assert state.refusal("a1", T0) == "buyer acme daily revenue cap $100.00/$100.00"
    assert state.is_duplicate("acme", "+12125550100", T0) is not None
    assert state.usage("buyer", "acme", T0)["held"] == {"calls": 0, "amount_minor": 0}


# --- the property: caps are never exceeded, whatever the interleaving ---

CAPPED = config_of("""\
    buyers:
      acme:
        targets: [a1, a2]
        revenue: {tiers: [{min_seconds: 30, amount: "7.00"}, {min_seconds: 120, amount: "19.99"}]}
        convert_after: 30
        caps: {hourly: {revenue: "60.00"}, daily: {conversions: 5}}
      bolt:
        targets: [b1]
        revenue: {per_call: "12.34"}
        caps: {daily: {revenue: "50.00"}, monthly: {conversions: 9}}
    """)
TARGETS = ("a1", "a2", "b1")

TALKS = st.one_of(
    st.sampled_from([0.0, 29.999, 30.0, 90.0, 119.9, 120.0, 600.0]), st.floats(0, 400)
)
reserve = st.tuples(st.just("reserve"), st.sampled_from(TARGETS), st.integers(1, 6))
end = st.tuples(st.just("end"), st.integers(0, 20), st.sampled_from([True, True, False]), TALKS)
# Mostly calls arriving and ending; now and then a call released unanswered, or time passing.
step = st.one_of(
    reserve,
    end,
    end,
    end,
    end,
    end,
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 600.0, 3600.0, 86400.0])),
).filter(lambda op: op[0] != "release" or op[1] % 4 == 0)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=10, max_size=120))
def test_caps_are_never_exceeded_under_interleaving(steps: list[tuple[object, ...]]) -> None:
    state = BillingState(CAPPED)
    now = T0
    ringing: dict[int, tuple[str, float]] = {}  # call number -> (target, started)
    n = 0
    billed = []
    for op in steps:
        if op[0] == "reserve":  # k calls arrive together
            for _ in range(int(op[2])):  # type: ignore[call-overload]
                target = str(op[1])
                if state.reserve(target, f"c{n}", now) is None:
                    ringing[n] = (target, now)
                n += 1
        elif op[0] == "end" and ringing:
            number = sorted(ringing)[int(op[1]) % len(ringing)]  # type: ignore[call-overload]
            target, started = ringing.pop(number)
            talk = float(op[3])  # type: ignore[arg-type]
            now += talk
            answered = bool(op[2])
            billed.append(state.bill(call(
                f"c{number}", final_target=target if answered else None, answered=answered,
                talk_seconds=talk if answered else 0.0, started_at=started, ended_at=now,
                ani_e164=None,
            )))  # fmt: skip
        elif op[0] == "release" and ringing:
            number = sorted(ringing)[int(op[1]) % len(ringing)]  # type: ignore[call-overload]
            del ringing[number]
            state.release(f"c{number}")
        elif op[0] == "wait":
            now += float(op[1])  # type: ignore[arg-type]
    totals: dict[tuple[str, str, tuple[int, ...]], list[int]] = defaultdict(lambda: [0, 0])
    for a in billed:
        if a.buyer is None:
            continue
        local = datetime.fromtimestamp(a.at, zone("America/New_York"))
        keys = {
            "hourly": (local.year, local.month, local.day, local.hour, local.fold),
            "daily": (local.year, local.month, local.day),
            "monthly": (local.year, local.month),
        }
        for period, key in keys.items():
            slot = totals[(a.buyer, period, key)]
            slot[0] += a.revenue_minor
            slot[1] += int(a.billed)
    for (buyer, period, _), (revenue, conversions) in totals.items():
        if buyer == "acme":
            assert period != "hourly" or revenue <= 6000
            assert period != "daily" or conversions <= 5
        else:
            assert period != "daily" or revenue <= 5000
            assert period != "monthly" or conversions <= 9


def test_idle_only_without_accounts_and_holds() -> None:
    assert BillingState(config_of("")).idle  # the daemon skips billing these calls
    state = BillingState(CONFIG)
    assert not state.idle
    state.reconfigure(config_of(""))
    assert state.idle
    live = BillingState(CONFIG)
    assert live.reserve("a1", "x", T0) is None
    live.reconfigure(config_of(""))  # buyers removed while a call holds a reservation
    assert not live.idle
    live.release("x")
    assert live.idle
