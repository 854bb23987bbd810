"""The guards between a target and a submitted price: cooldown, price-war breaker, anomaly, and the
per-step and per-day change limits.

Limits: the step limit counts from the current price, the daily limit from the day's opening price
(`History.day_open_price`, or the current price when there was no change yet today). A percent limit
is that percent of its reference price, rounded *down* to the minor unit; with both an amount and a
percent the tighter applies. The submitted price is the target clamped into the intersection of
[min, max], the step band and the daily band, so it is always inside all three; when they do not
overlap (e.g. the current price sits far below a freshly raised min), or the only prices they allow
lie away from the target or past it, the price is kept instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from repricing.engine.money import limit_amount
from repricing.engine.rules import Guards, PriceWar
from repricing.engine.types import TraceStep


def cooldown_remaining(last_change_at: datetime | None, now: datetime, seconds: int) -> float:
    """Seconds left before the SKU may change again (0 when free)."""
    if not seconds or last_change_at is None:
        return 0.0
    left = seconds - (now - last_change_at).total_seconds()
    return left if left > 0 else 0.0


def undercuts_in_window(undercut_times: tuple[datetime, ...], now: datetime, price_war: PriceWar) -> int:
    """How many competitor undercuts happened in (now - window, now]."""
    start = now - timedelta(seconds=price_war.window_seconds)
    return sum(1 for moment in undercut_times if start < moment <= now)


def anomaly_percent(current: Decimal, target: Decimal) -> Decimal:
    """The size of the move from ``current`` to ``target`` in percent of ``current``."""
    return abs(target - current) * 100 / current


def clamp_to_limits(
    current: Decimal,
    target: Decimal,
    minimum: Decimal,
    maximum: Decimal,
    guards: Guards,
    day_open_price: Decimal | None,
    currency: str,
    trace: list[TraceStep],
) -> tuple[Decimal | None, str | None]:
    """(price, reason): the target, or the closest price toward it the limits allow, with the limit
    that bound it ("max_step" / "max_daily", None when nothing did); (None, reason) to keep the price."""
    step, daily = guards.max_step, guards.max_daily
    if step is None and daily is None and minimum <= target <= maximum:
        return target, None
    low, high = minimum, maximum
    low_by = high_by = "bounds"
    if step is not None:
        room = limit_amount(current, step.amount, step.percent, currency)
        if current - room > low:
            low, low_by = current - room, "max_step"
        if current + room < high:
            high, high_by = current + room, "max_step"
    opening = current if day_open_price is None else day_open_price
    if daily is not None:
        room = limit_amount(opening, daily.amount, daily.percent, currency)
        if opening - room > low:
            low, low_by = opening - room, "max_daily"
        if opening + room < high:
            high, high_by = opening + room, "max_daily"
    if low > high:
        trace.append(
            TraceStep(
                "limits",
                f"Your change limits (from {current}, day opened at {opening}) cannot reach your bounds "
                f"{minimum} to {maximum}: keep the price",
                {"low": str(low), "high": str(high)},
            )
        )
        return None, "limits_conflict"
    if low <= target <= high:
        return target, None
    # Clamped: the price must still lie between the current price and the target (toward it, not past
    # it, not away from it), and inside [low, high].
    if target < current:
        price, by = max(target, low), low_by
        blocked = price >= current or price > high
        if price > high:
            by = high_by
    else:
        price, by = min(target, high), high_by
        blocked = price <= current or price < low
        if price < low:
            by = low_by
    label = "step" if by == "max_step" else "daily" if by == "max_daily" else "bounds"
    if blocked:
        trace.append(
            TraceStep(
                by if by != "bounds" else "limits",
                f"Your {label} limit leaves no room toward {target} (day opened at {opening}): "
                "keep the price",
                {"limit": by},
            )
        )
        return None, by if by != "bounds" else "limits_conflict"
    trace.append(
        TraceStep(
            by,
            f"Your {label} limit caps the move toward {target} at {price}",
            {"limit": by, "price": str(price)},
        )
    )
    return price, by
