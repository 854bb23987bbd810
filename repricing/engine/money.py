"""Money rounding in the listing's currency: prices are whole minor units (cents; yen have none)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
ZERO = Decimal(0)

#: ISO 4217 minor units that are not 2. Amazon's marketplaces use JPY (0) and otherwise 2-decimal
#: currencies; the others are here so that a new marketplace does not silently round wrongly.
MINOR_UNITS = {
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "VND": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}
_QUANTUM = {0: Decimal(1), 2: Decimal("0.01"), 3: Decimal("0.001")}
_CENT = _QUANTUM[2]


def quantum(currency: str) -> Decimal:
    """The smallest price step in ``currency``: 0.01 for USD/EUR/GBP..., 1 for JPY."""
    digits = MINOR_UNITS.get(currency)
    return _CENT if digits is None else _QUANTUM[digits]


def round_money(value: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to the currency's minor unit (half up unless told otherwise)."""
    return value.quantize(quantum(currency), rounding=rounding)


def percent_of(value: Decimal, percent: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``percent`` % of ``value``, rounded to the minor unit (half up: 1 % of 19.99 is 0.20)."""
    return (value * percent / HUNDRED).quantize(quantum(currency), rounding=rounding)


def limit_amount(
    reference: Decimal, amount: Decimal | None, percent: Decimal | None, currency: str
) -> Decimal:
    """The largest allowed move from ``reference``: the tighter of ``amount`` and ``percent`` % of it, both
    rounded *down* to the minor unit so that a move of exactly this size never exceeds either limit."""
    unit = quantum(currency)
    room = None if amount is None else amount.quantize(unit, rounding=ROUND_DOWN)
    if percent is not None:
        share = (reference * percent / HUNDRED).quantize(unit, rounding=ROUND_DOWN)
        if room is None or share < room:
            room = share
    return room if room is not None and room > 0 else ZERO
