"""Money as integer minor units: parsing, percentages (rounded half up) and display.

Amounts are never floats: the rules file's ``"25.00"`` is read as a ``Decimal`` and turned into
``2500`` (cents) with the currency's number of minor digits (ISO 4217: JPY 0, USD 2, KWD 3).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from callflow.config import CURRENCY_DIGITS

__all__ = ["digits_of", "format_money", "parse_money", "percent_of", "to_minor"]


def digits_of(currency: str) -> int:
    """Return the number of minor-unit digits of a currency (2 if unknown)."""
    return CURRENCY_DIGITS.get(currency, 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """Return an amount in minor units; raise ValueError if it has more decimals than allowed."""
    scaled = amount.scaleb(digits_of(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} has ({digits_of(currency)})")
    return int(scaled)


def parse_money(text: str, currency: str) -> int:
    """Read a signed amount written by a person (``-12.50``) as minor units of a currency."""
    cleaned = text.strip().replace(",", "").removeprefix("$")
    if cleaned.startswith("-$"):
        cleaned = "-" + cleaned[2:]
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount (e.g. -12.50)") from None
    if not amount.is_finite():
        raise ValueError(f"{text!r} is not an amount (e.g. -12.50)")
    return to_minor(amount, currency)


def percent_of(minor: int, percent: Decimal) -> int:
    """Return ``percent`` % of an amount in minor units, rounded half up to the minor unit.

    Half up: an exact half goes away from zero (12.5 % of 20 cents is 2.5 cents: 3 cents, where
    banker's rounding would give 2). Rounded once, on the exact decimal product.
    """
    exact = Decimal(minor) * percent / Decimal(100)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(minor: int, currency: str) -> str:
    """Show minor units as ``$500.00`` (USD), ``-$12.50``, or ``500.00 EUR`` / ``1500 JPY``."""
    digits = digits_of(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"
