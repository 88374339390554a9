"""Marketing cost per campaign (or other source dimension) from a YAML or CSV file.

YAML: a mapping ``name: amount`` (optionally under a top-level ``costs:`` key).
CSV: two columns ``name,cost`` (a header row is allowed). Amounts are the spend over the
report's window; the sources report divides them by calls and by conversions.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = ["CostError", "load_costs"]


class CostError(ValueError):
    """The cost file cannot be read."""


def _amount(value: object, where: str) -> float:
    """A non-negative amount."""
    try:
        amount = float(str(value).replace(",", "").lstrip("$"))
    except ValueError:
        raise CostError(f"{where}: not an amount: {value!r}") from None
    if amount < 0:
        raise CostError(f"{where}: negative cost {amount}")
    return amount


def load_costs(path: Path) -> Mapping[str, float]:
    """Read a cost file: name → spend."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CostError(f"{path}: {exc.strerror}") from None
    if path.suffix.lower() == ".csv":
        rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].startswith("#")]
        if rows and rows[0][1:2] and not _is_number(rows[0][1]):
            rows = rows[1:]  # header
        costs = {}
        for i, row in enumerate(rows, 1):
            if len(row) < 2:
                raise CostError(f"{path}: row {i}: expected name,cost")
            costs[row[0].strip()] = _amount(row[1], f"{path}: row {i}")
        return costs
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CostError(f"{path}: {exc}") from None
    if isinstance(data, dict) and set(data) == {"costs"}:
        data = data["costs"]
    if not isinstance(data, dict):
        raise CostError(f"{path}: expected a mapping of name: cost")
    return {str(k): _amount(v, f"{path}: {k}") for k, v in data.items()}


def _is_number(text: str) -> bool:
    """Whether a CSV cell is an amount (so the row is data, not a header)."""
    try:
        float(text.replace(",", "").lstrip("$"))
    except ValueError:
        return False
    return True
