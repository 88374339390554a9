"""Small statistics helpers: nearest-rank percentiles over a sorted list of samples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["paired_ratios", "percentile", "summarise", "worst_ratio"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0-100) of already sorted samples (nan if none)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise(samples: Sequence[float]) -> dict[str, float]:
    """Summarise samples (seconds) as count, mean, p50, p90, p99, p99.9 and max in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0.0}
    ms = 1000.0
    return {
        "n": float(len(ordered)),
        "mean_ms": sum(ordered) / len(ordered) * ms,
        "p50_ms": percentile(ordered, 50) * ms,
        "p90_ms": percentile(ordered, 90) * ms,
        "p99_ms": percentile(ordered, 99) * ms,
        "p999_ms": percentile(ordered, 99.9) * ms,
        "max_ms": ordered[-1] * ms,
    }


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Return each turn's ratio (turn i of one server over turn i of the other), in turn order."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} turns against {len(denominators)}")
    return [n / d if d else math.nan for n, d in zip(numerators, denominators, strict=True)]


def worst_ratio(pairs: Mapping[str, tuple[float, float]]) -> tuple[str, float]:
    """Return the label whose numerator/denominator is highest, and that ratio."""
    if not pairs:
        raise ValueError("no ratios to compare")
    ratios = {label: n / d if d else math.inf for label, (n, d) in pairs.items()}
    label = max(ratios, key=lambda key: ratios[key])
    return label, ratios[label]
