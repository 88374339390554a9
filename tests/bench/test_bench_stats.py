"""The bench's small statistics helpers."""

from __future__ import annotations

import math

import pytest

from callflow.bench.stats import paired_ratios, percentile, worst_ratio


def test_paired_ratios_pair_turns_in_order() -> None:
    assert paired_ratios([0.9, 1.2, 1.0], [0.3, 0.4, 0.25]) == pytest.approx([3.0, 3.0, 4.0])


def test_paired_ratios_refuse_unequal_turns_and_mark_a_zero_floor() -> None:
    with pytest.raises(ValueError, match="2 turns against 1"):
        paired_ratios([1.0, 2.0], [1.0])
    assert math.isnan(paired_ratios([1.0], [0.0])[0])


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(x) for x in range(1, 101)]
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 99.9) == 100.0
    assert math.isnan(percentile([], 50))


def test_worst_ratio_names_the_load_furthest_above_its_floor() -> None:
    label, worst = worst_ratio({"flat out": (0.78, 0.22), "500 calls/s": (1.42, 0.52)})
    assert label == "flat out"
    assert worst == pytest.approx(0.78 / 0.22)


def test_worst_ratio_counts_a_zero_floor_as_worst_and_refuses_no_pairs() -> None:
    assert worst_ratio({"a": (1.0, 0.5), "b": (1.0, 0.0)}) == ("b", math.inf)
    with pytest.raises(ValueError, match="no ratios"):
        worst_ratio({})
