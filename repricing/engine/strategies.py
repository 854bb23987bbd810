"""From the market to a target price: the competitive strategies, the Buy Box probe and the
adjustments (sales velocity, inventory, schedule).

Prices are compared *landed* (item + shipping, what the Buy Box compares) and turned back into our
item price by subtracting our own shipping: a competitor at 18.00 + 1.99 shipping (19.99 landed), beaten
by 0.01, puts our landed price at 19.98; with 4.99 shipping of our own our item price is 14.99.

Modes: "match" takes the competitor's landed price; "beat" goes below it by the amount, or by the
percent of it rounded half up to the minor unit (1 % of 19.99 is 0.20 → 19.79); "above" stays above it
the same way. A beat/above step smaller than the currency's minor unit (0.001 USD, 0.5 JPY) moves one
unit, so "beat" always really goes below. Ties between competitors at the same landed price are broken
by seller id (then the offers' other fields), so the outcome and the trace never depend on the order
the offers arrived in.

When several comparable offers hold the Buy Box (Amazon may show a Prime and a non-Prime winner), the
lowest landed one is "the Buy Box". Our holding any of them counts as holding it.

Strategy outcomes that keep the price return ``None`` with a reason; adjustments only move a target a
strategy produced (a seller who wants pure velocity / inventory / schedule pricing uses the "current"
strategy, which targets the current price).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from repricing.engine.filters import Selection, exclusion
from repricing.engine.money import HUNDRED, percent_of, quantum, round_money
from repricing.engine.rules import BuyBoxProbe, Inventory, Rule, ScheduleEntry
from repricing.engine.types import History, ListingState, Offer, TraceStep

ZERO = Decimal(0)


def describe(offer: Offer) -> str:
    who = "Amazon" if offer.is_amazon else f"seller {offer.seller_id}"
    return f"{offer.price + offer.shipping} ({who}, {offer.fulfillment})"


def _tie_key(offer: Offer) -> tuple[Any, ...]:
    return (
        offer.seller_id, offer.fulfillment, offer.price, offer.condition, offer.is_amazon,
        offer.is_buy_box_winner,
        -1.0 if offer.feedback_rating is None else offer.feedback_rating,
        -1 if offer.feedback_count is None else offer.feedback_count,
        offer.ships_from or "", -1 if offer.handling_hours_max is None else offer.handling_hours_max,
    )  # fmt: skip


def lowest(offers: Iterable[Offer]) -> Offer | None:
    """The offer with the lowest landed price; ties go to the smaller seller id (then the other fields),
    so that the choice, and the trace that names it, never depends on the order offers arrived in."""
    best: Offer | None = None
    best_landed = ZERO
    for offer in offers:
        landed = offer.price + offer.shipping
        if (
            best is None
            or landed < best_landed
            or (landed == best_landed and _tie_key(offer) < _tie_key(best))
        ):
            best, best_landed = offer, landed
    return best


def _offset(landed: Decimal, amount: Decimal | None, percent: Decimal | None, currency: str) -> Decimal:
    unit = quantum(currency)
    step = (
        round_money(amount, currency) if amount is not None else percent_of(landed, percent or ZERO, currency)
    )
    return step if step >= unit else unit


def _compete(
    listing: ListingState, rule: Rule, offer: Offer, what: str, kind: str, trace: list[TraceStep]
) -> tuple[Decimal, str]:
    """Our item price against ``offer`` under the strategy's mode, with its trace line."""
    s = rule.strategy
    landed = offer.price + offer.shipping
    if s.mode == "match":
        target_landed, how = landed, "match"
    else:
        step = _offset(landed, s.amount, s.percent, listing.currency)
        size = f"{s.percent}% ({step})" if s.percent is not None else str(step)
        if s.mode == "beat":
            target_landed, how = landed - step, f"beat by {size}"
        else:
            target_landed, how = landed + step, f"stay {size} above"
    shipping = listing.our_shipping
    target = target_landed - shipping if shipping else target_landed
    landed_text, target_text = str(landed), str(target)
    who = "Amazon" if offer.is_amazon else f"seller {offer.seller_id}"
    message = f"{what} is {landed_text} ({who}, {offer.fulfillment}); {how} → {target_landed}"
    if shipping:
        message += f"; less your shipping {shipping} → {target_text}"
    data = {"seller_id": offer.seller_id, "landed": landed_text, "mode": s.mode, "target": target_text}
    trace.append(TraceStep(kind, message, data))
    return target, f"{s.mode}_{kind}"


def _fallback(
    choice: str, situation: str, listing: ListingState, trace: list[TraceStep]
) -> tuple[Decimal | None, str]:
    """``when_alone`` / ``when_no_buy_box``: hold, or go to the min or max price."""
    if choice == "min":
        trace.append(
            TraceStep("fallback", f"Your setting: go to your min price {listing.min_price}", {"to": "min"})
        )
        return listing.min_price, f"{situation}_min"
    if choice == "max":
        trace.append(
            TraceStep("fallback", f"Your setting: go to your max price {listing.max_price}", {"to": "max"})
        )
        return listing.max_price, f"{situation}_max"
    trace.append(TraceStep("fallback", "Your setting: keep the current price", {"to": "hold"}))
    return None, situation


def _sharing(history: History, probe: BuyBoxProbe | None) -> bool:
    share = history.buy_box_share
    return probe is not None and share is not None and 0 < share < probe.sharing_below


def _probe(
    listing: ListingState, probe: BuyBoxProbe, current: Decimal, trace: list[TraceStep]
) -> tuple[Decimal | None, str]:
    maximum = listing.max_price
    assert maximum is not None  # decide() holds listings without bounds before any strategy runs
    if current >= maximum:
        trace.append(
            TraceStep("probe", f"Already at or above your max price {maximum}: nothing to probe", {})
        )
        return None, "probe_at_max"
    unit = quantum(listing.currency)
    if probe.amount is not None:
        step = round_money(probe.amount, listing.currency)
    else:
        step = percent_of(current, probe.percent or ZERO, listing.currency)
    step = max(step, unit)
    target = min(current + step, maximum)
    trace.append(
        TraceStep(
            "probe",
            f"Probe upwards by {step} → {target}" + (" (your max price)" if target == maximum else ""),
            {"step": str(step), "target": str(target)},
        )
    )
    return target, "buy_box_probe"


def strategy_target(
    listing: ListingState, selection: Selection, rule: Rule, history: History, trace: list[TraceStep]
) -> tuple[Decimal | None, str]:
    """The item price the strategy wants (None: keep the current price) and the reason code."""
    s = rule.strategy
    current = listing.current_price
    assert current is not None  # decide() holds listings without a price first
    probe = rule.buy_box_probe
    holders = selection.buy_box
    our_holder = lowest(o for o in holders if o.is_ours) if holders else None
    ours_hold = our_holder is not None
    if our_holder is not None:
        landed = our_holder.price + our_holder.shipping
        trace.append(TraceStep("buy_box", f"You hold the Buy Box at {landed}", {"holder": "you"}))
        if probe is not None:
            if _sharing(history, probe):
                share = f"{history.buy_box_share:.0%}"
                if probe.when_sharing == "hold":
                    trace.append(
                        TraceStep(
                            "sharing",
                            f"Amazon is sharing the Buy Box between you and others (you held it in "
                            f"{share} of recent checks); keep the price so the rotation is not lost",
                            {"share": share},
                        )
                    )
                    return None, "buy_box_shared"
                trace.append(
                    TraceStep(
                        "sharing",
                        f"Buy Box shared (you held it in {share} of checks); probing anyway",
                        {"share": share},
                    )
                )
            return _probe(listing, probe, current, trace)
        if s.kind == "buy_box":
            trace.append(TraceStep("buy_box", "No probing configured: keep the price", {}))
            return None, "own_buy_box"

    if s.kind == "current":
        trace.append(
            TraceStep("current", f"Start from your current price {current}", {"price": str(current)})
        )
        return current, "current_price"

    if s.kind == "buy_box":
        holder = None if ours_hold else lowest(holders)
        if holder is not None:
            why = exclusion(holder, rule.filters)
            if why is None:
                if (
                    probe is not None
                    and probe.when_sharing == "hold"
                    and _sharing(history, probe)
                    and holder.price + holder.shipping == current + listing.our_shipping
                ):
                    trace.append(
                        TraceStep(
                            "sharing",
                            f"The Buy Box ({describe(holder)}) is at your price and you held it in "
                            f"{history.buy_box_share:.0%} of recent checks: Amazon is sharing it; "
                            "keep the price rather than start a price war",
                            {"seller_id": holder.seller_id},
                        )
                    )
                    return None, "buy_box_shared"
                return _compete(listing, rule, holder, "Buy Box", "buy_box", trace)
            trace.append(
                TraceStep(
                    "buy_box",
                    f"The Buy Box holder {describe(holder)} is left out by your filters ({why}): "
                    "treated as no Buy Box",
                    {"seller_id": holder.seller_id, "excluded": why},
                )
            )
        else:
            trace.append(TraceStep("buy_box", "Nobody holds the Buy Box", {"holder": ""}))
        if s.when_no_buy_box != "lowest":
            return _fallback(s.when_no_buy_box, "no_buy_box", listing, trace)
        pool: list[Offer] = selection.competitors
        what, kind = "Lowest competitor", "lowest"
    elif s.kind == "lowest":
        pool, what, kind = selection.competitors, "Lowest competitor", "lowest"
    elif s.kind == "lowest_fba":
        pool = [o for o in selection.competitors if o.fulfillment == "FBA"]
        what, kind = "Lowest FBA competitor", "lowest_fba"
    else:
        named = s.competitors
        pool = [o for o in selection.competitors if o.seller_id in named]
        what, kind = "Lowest of your named competitors", "named_competitors"

    best = lowest(pool)
    if best is None:
        trace.append(
            TraceStep("competitors", f"No competitor for this strategy ({what.lower()}): you are alone", {})
        )
        return _fallback(s.when_alone, "no_competitors", listing, trace)
    return _compete(listing, rule, best, what, kind, trace)


def adjustments(
    listing: ListingState, rule: Rule, entry: ScheduleEntry | None, trace: list[TraceStep]
) -> Decimal:
    """The summed percent adjustment of velocity, inventory and the schedule (0 when none applies).
    Unknown inventory data skips its adjustment with a trace line."""
    total = ZERO
    velocity = rule.velocity
    if velocity is not None:
        units = listing.units_sold_7d
        if units is None:
            trace.append(TraceStep("velocity", "Sales velocity unknown: velocity rule skipped", {}))
        else:
            target = Decimal(velocity.target_units_7d)
            slack = target * velocity.tolerance_percent / HUNDRED
            if units > target + slack and velocity.raise_percent:
                total += velocity.raise_percent
                trace.append(
                    TraceStep(
                        "velocity",
                        f"Sold {units} in 7 days, faster than your target {velocity.target_units_7d}: "
                        f"raise {velocity.raise_percent}%",
                        {"units_7d": str(units), "percent": str(velocity.raise_percent)},
                    )
                )
            elif units < target - slack and velocity.lower_percent:
                total -= velocity.lower_percent
                trace.append(
                    TraceStep(
                        "velocity",
                        f"Sold {units} in 7 days, slower than your target {velocity.target_units_7d}: "
                        f"lower {velocity.lower_percent}%",
                        {"units_7d": str(units), "percent": str(-velocity.lower_percent)},
                    )
                )
            else:
                trace.append(
                    TraceStep(
                        "velocity",
                        f"Sold {units} in 7 days: on target, no velocity change",
                        {"units_7d": str(units)},
                    )
                )
    inventory = rule.inventory
    if inventory is not None:
        total += _inventory(listing, inventory, trace)
    if entry is not None and entry.adjust_percent is not None:
        total += entry.adjust_percent
        trace.append(
            TraceStep(
                "schedule",
                f"Schedule window: adjust {entry.adjust_percent}%",
                {"percent": str(entry.adjust_percent)},
            )
        )
    return total


def _inventory(listing: ListingState, inventory: Inventory, trace: list[TraceStep]) -> Decimal:
    cover = listing.days_of_cover
    uses_cover = inventory.low_days_of_cover is not None or inventory.high_days_of_cover is not None
    if uses_cover and cover is None:
        trace.append(TraceStep("inventory", "Days of cover unknown: stock-cover adjustment skipped", {}))
    if (
        cover is not None
        and inventory.low_days_of_cover is not None
        and cover < inventory.low_days_of_cover
        and inventory.raise_percent is not None
    ):
        trace.append(
            TraceStep(
                "inventory",
                f"Only {cover:g} days of cover (below {inventory.low_days_of_cover:g}): "
                f"raise {inventory.raise_percent}%",
                {"days_of_cover": f"{cover:g}", "percent": str(inventory.raise_percent)},
            )
        )
        return Decimal(inventory.raise_percent)
    lower = ZERO
    if (
        cover is not None
        and inventory.high_days_of_cover is not None
        and cover > inventory.high_days_of_cover
        and inventory.lower_percent is not None
    ):
        lower = inventory.lower_percent
        trace.append(
            TraceStep(
                "inventory",
                f"{cover:g} days of cover (above {inventory.high_days_of_cover:g}): "
                f"lower {inventory.lower_percent}%",
                {"days_of_cover": f"{cover:g}", "percent": str(-inventory.lower_percent)},
            )
        )
    if inventory.aged_units_min is not None and inventory.aged_lower_percent is not None:
        aged = listing.aged_units
        if aged is None:
            trace.append(TraceStep("inventory", "Aged stock unknown: aged-stock adjustment skipped", {}))
        elif aged >= inventory.aged_units_min:
            trace.append(
                TraceStep(
                    "inventory",
                    f"{aged} aged units (at least {inventory.aged_units_min}): "
                    f"lower {inventory.aged_lower_percent}%"
                    + (" (the larger of the two reductions applies)" if lower else ""),
                    {"aged_units": str(aged), "percent": str(-inventory.aged_lower_percent)},
                )
            )
            lower = max(lower, inventory.aged_lower_percent)
    return -lower


def apply_percent(price: Decimal, percent: Decimal, currency: str) -> Decimal:
    """``price`` moved by ``percent`` (signed), rounded half up to the minor unit."""
    return round_money(price * (HUNDRED + percent) / HUNDRED, currency)
