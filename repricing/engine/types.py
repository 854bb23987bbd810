"""The engine's inputs and output: plain, frozen values (no Django, no I/O).

Money is `decimal.Decimal` in the listing's currency; times are timezone-aware (UTC by convention).
A naive datetime handed to `decide` is read as UTC rather than rejected, so the engine never raises on
a value the caller merely forgot to tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)

#: Decision.action values.
CHANGE, HOLD, PAUSE = "change", "hold", "pause"


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer on the product page (ours or a competitor's).

    ``condition`` is normalised lower-case (new / used / collectible / refurbished); ``fulfillment`` is
    "FBA" or "FBM"; ``feedback_rating`` is the percent positive (0..100); ``ships_from`` an ISO country;
    ``handling_hours_max`` the most hours the seller takes to ship."""

    seller_id: str
    price: Decimal
    shipping: Decimal = ZERO
    currency: str = "USD"
    condition: str = "new"
    fulfillment: str = "FBM"
    is_buy_box_winner: bool = False
    feedback_rating: float | None = None
    feedback_count: int | None = None
    ships_from: str | None = None
    handling_hours_max: int | None = None
    is_amazon: bool = False
    is_ours: bool = False

    @property
    def landed(self) -> Decimal:
        """What the buyer pays: item price plus shipping (the Buy Box compares landed prices)."""
        return self.price + self.shipping


@dataclass(frozen=True, slots=True)
class ListingState:
    """Our listing as we last saw it.

    ``min_price``/``max_price`` are the seller's bounds for this SKU (entered, or computed with
    `bounds.computed_min_price`); without both the engine never reprices. The inventory fields are None
    when unknown: the velocity and inventory adjustments then skip themselves with a trace line."""

    sku: str
    asin: str
    marketplace_id: str
    currency: str
    condition: str
    fulfillment: str
    current_price: Decimal | None
    our_shipping: Decimal = ZERO
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    quantity: int | None = None
    units_sold_7d: int | None = None
    days_of_cover: float | None = None
    aged_units: int | None = None


@dataclass(frozen=True, slots=True)
class History:
    """What the engine needs to remember between runs, supplied by the caller.

    ``day_open_price``: our price at the start of the seller's day (the daily limit counts from it;
    None means no change yet today, so the current price is the day's opening price).
    ``undercut_times``: moments a competitor undercut our price (the price-war breaker counts them).
    ``buy_box_share``: fraction (0..1) of recent observations in which we held the Buy Box.
    ``paused_until``: the SKU is paused (e.g. by the price-war breaker) until then."""

    now: datetime
    last_change_at: datetime | None = None
    day_open_price: Decimal | None = None
    undercut_times: tuple[datetime, ...] = ()
    buy_box_share: float | None = None
    paused_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One line of the decision's explanation. ``message`` is plain seller English, e.g.
    "Buy Box is 19.99 (seller A2XYZ, FBA); beat by 0.01 → 19.98"; ``data`` holds the same facts as
    strings for machines (code names a step: "buy_box", "filters", "bounds", "max_step"...)."""

    code: str
    message: str
    data: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": dict(self.data)}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one listing.

    ``action``: "change" (a new price), "hold" (keep the price) or "pause" (stop repricing this SKU until
    ``pause_until``, e.g. the price-war breaker fired). ``new_price`` is None unless action is "change".
    ``target_price``: what the strategy (plus adjustments) wanted before bounds and guards.
    ``reason``: short code of the deciding step ("beat_buy_box", "held_at_min", "cooldown", "price_war",
    "kill_switch", "dry_run"...). ``price_reason``: the step that set the target (strategy, fallback or
    bound, e.g. "beat_buy_box" while ``reason`` is "cooldown"), whatever guard then decided.
    ``submit``: True only when action is "change" and neither dry-run nor the kill switch is on."""

    action: str
    old_price: Decimal | None
    new_price: Decimal | None
    target_price: Decimal | None
    reason: str
    trace: tuple[TraceStep, ...]
    alerts: tuple[str, ...]
    submit: bool
    price_reason: str = ""
    pause_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, datetimes as ISO 8601."""
        return {
            "action": self.action,
            "old_price": _money(self.old_price),
            "new_price": _money(self.new_price),
            "target_price": _money(self.target_price),
            "reason": self.reason,
            "price_reason": self.price_reason or self.reason,
            "trace": [step.to_dict() for step in self.trace],
            "alerts": list(self.alerts),
            "submit": self.submit,
            "pause_until": None if self.pause_until is None else self.pause_until.isoformat(),
        }
