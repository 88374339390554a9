"""Small exact tests for "is this change noise?": Poisson rate comparison and a 2x2 chi-square."""

from __future__ import annotations

import math
from typing import Final

__all__ = ["chi_square_2x2", "noise_note", "poisson_rate_test"]

#: Below this total count the Poisson test sums the exact binomial tail.
_EXACT_MAX: Final = 5000
ALPHA: Final = 0.05


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p), 0 < p < 1."""
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def poisson_rate_test(c1: int, t1: float, c2: int, t2: float) -> float:
    """Two-sided p-value that ``c1`` events over ``t1`` and ``c2`` over ``t2`` share one rate.

    Conditional test: given n = c1 + c2, c1 ~ Binomial(n, t1 / (t1 + t2)) under equal rates.
    Exact (summing every outcome no more likely than the one seen) up to n = 5000, normal
    approximation with continuity correction above.
    """
    n = c1 + c2
    if n == 0 or t1 <= 0 or t2 <= 0:
        return 1.0
    p = t1 / (t1 + t2)
    if n <= _EXACT_MAX:
        observed = _log_binom_pmf(c1, n, p)
        total = sum(
            math.exp(lp) for k in range(n + 1) if (lp := _log_binom_pmf(k, n, p)) <= observed + 1e-7
        )
        return min(1.0, total)
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    z = max(0.0, abs(c1 - mean) - 0.5) / sd
    return math.erfc(z / math.sqrt(2))


def chi_square_2x2(a1: int, n1: int, a2: int, n2: int) -> float | None:
    """p-value of Pearson's chi-square (1 df) that proportions a1/n1 and a2/n2 are equal.

    None when an expected cell count is below 5 (too few calls for the test to mean much).
    """
    total, hits = n1 + n2, a1 + a2
    if not n1 or not n2 or hits in (0, total):
        return None
    cells = (
        (a1, n1, hits),
        (n1 - a1, n1, total - hits),
        (a2, n2, hits),
        (n2 - a2, n2, total - hits),
    )
    chi2 = 0.0
    for observed, row, col in cells:
        expected = row * col / total
        if expected < 5:
            return None
        chi2 += (observed - expected) ** 2 / expected
    return math.erfc(math.sqrt(chi2 / 2))


def noise_note(p: float | None) -> str:
    """The p-value in plain words."""
    if p is None:
        return "too few calls to tell"
    if p < 0.001:
        return "real change (p < 0.001)"
    if p < ALPHA:
        return f"likely a real change (p = {p:.3f})"
    return f"within noise (p = {p:.2f}): chance alone often moves it this much"
