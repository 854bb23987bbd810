"""Price bounds: computing a SKU's min/max from its costs, and keeping a target inside them.

Formulas (all per unit, in the listing's currency; r = referral percent / 100, F = the referral fee's
minimum per item, C = cost + FBA fee, where "FBA fee" is the fulfilment fee plus any other fixed
per-unit fee the seller wants covered):

    referral fee(p) = max(p * r, F)
    profit(p)       = p - referral fee(p) - FBA fee - cost

    target margin m (profit as a share of the price):   profit(p) ≥ m * p
        p ≥ C / (1 - r - m)   and   p ≥ (C + F) / (1 - m)
    target ROI q (profit as a share of the cost):        profit(p) ≥ q * cost
        p ≥ (cost * (1 + q) + FBA fee) / (1 - r)   and   p ≥ cost * (1 + q) + FBA fee + F

The min price is the smallest p meeting every target given (neither given: break even, m = 0), rounded
*up* to the minor unit so that it really meets them. The max price (`computed_max_price`) is the same
calculation for a ceiling (the price at which the margin or ROI reaches the most the seller will take,
against price gouging), rounded *down*; with both a margin and an ROI ceiling the lower price wins.
Amazon charges the referral percentage on what the buyer pays; for an FBM listing that charges
shipping, add the referral on shipping to ``fba_fee``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from repricing.engine.money import HUNDRED, quantum
from repricing.engine.types import TraceStep

ZERO = Decimal(0)
ONE = Decimal(1)


def _lowest_price_meeting(
    cost: Decimal,
    referral_percent: Decimal,
    fba_fee: Decimal,
    referral_min_fee: Decimal,
    margin_percent: Decimal | None,
    roi_percent: Decimal | None,
) -> list[Decimal]:
    if cost < 0 or fba_fee < 0 or referral_min_fee < 0:
        raise ValueError("cost, fees and the minimum referral fee cannot be negative")
    if not ZERO <= referral_percent < HUNDRED:
        raise ValueError("referral_percent must be at least 0 and below 100")
    r = referral_percent / HUNDRED
    prices = []
    if margin_percent is not None:
        m = margin_percent / HUNDRED
        if m < 0 or r + m >= ONE:
            raise ValueError("the margin must be at least 0 and, with the referral percent, below 100 %")
        costs = cost + fba_fee
        prices.append(max(costs / (ONE - r - m), (costs + referral_min_fee) / (ONE - m)))
    if roi_percent is not None:
        if roi_percent < 0:
            raise ValueError("the ROI cannot be negative")
        needed = cost * (ONE + roi_percent / HUNDRED) + fba_fee
        prices.append(max(needed / (ONE - r), needed + referral_min_fee))
    return prices


def computed_min_price(
    cost: Decimal,
    referral_percent: Decimal,
    fba_fee: Decimal,
    *,
    target_margin_percent: Decimal | None = None,
    target_roi_percent: Decimal | None = None,
    referral_min_fee: Decimal = ZERO,
    currency: str = "USD",
) -> Decimal:
    """The lowest price at which profit after the referral and FBA fees meets the margin and/or ROI
    target (break-even without one), rounded up to the minor unit. Raises ValueError on impossible
    inputs (negative costs, referral + margin of 100 % or more)."""
    if target_margin_percent is None and target_roi_percent is None:
        target_margin_percent = ZERO
    prices = _lowest_price_meeting(
        cost, referral_percent, fba_fee, referral_min_fee, target_margin_percent, target_roi_percent
    )
    return max(prices).quantize(quantum(currency), rounding=ROUND_CEILING)


def computed_max_price(
    cost: Decimal,
    referral_percent: Decimal,
    fba_fee: Decimal,
    *,
    max_margin_percent: Decimal | None = None,
    max_roi_percent: Decimal | None = None,
    referral_min_fee: Decimal = ZERO,
    currency: str = "USD",
) -> Decimal:
    """The highest price at which the margin and/or ROI stays within the ceiling given (at least one is
    required), rounded down to the minor unit."""
    if max_margin_percent is None and max_roi_percent is None:
        raise ValueError("give max_margin_percent and/or max_roi_percent")
    prices = _lowest_price_meeting(
        cost, referral_percent, fba_fee, referral_min_fee, max_margin_percent, max_roi_percent
    )
    return min(prices).quantize(quantum(currency), rounding=ROUND_FLOOR)


def apply_bounds(
    target: Decimal, minimum: Decimal, maximum: Decimal, out_of_bounds: str, trace: list[TraceStep]
) -> tuple[Decimal | None, str | None]:
    """Keep ``target`` inside [minimum, maximum]. Returns (price, reason): the target and None when it is
    inside; the bound and "held_at_min"/"held_at_max" when ``out_of_bounds`` is "bound"; None and
    "below_min"/"above_max" (keep the current price) when it is "hold"."""
    if target < minimum:
        if out_of_bounds == "bound":
            trace.append(
                TraceStep(
                    "bounds", f"{target} is below your min price {minimum}: use {minimum}", {"bound": "min"}
                )
            )
            return minimum, "held_at_min"
        trace.append(
            TraceStep(
                "bounds",
                f"{target} is below your min price {minimum}: keep the current price (your setting)",
                {"bound": "min"},
            )
        )
        return None, "below_min"
    if target > maximum:
        if out_of_bounds == "bound":
            trace.append(
                TraceStep(
                    "bounds", f"{target} is above your max price {maximum}: use {maximum}", {"bound": "max"}
                )
            )
            return maximum, "held_at_max"
        trace.append(
            TraceStep(
                "bounds",
                f"{target} is above your max price {maximum}: keep the current price (your setting)",
                {"bound": "max"},
            )
        )
        return None, "above_max"
    return target, None
