"""`decide`: one listing, its offers, the seller's rule and the SKU's history → a `Decision`.

The order of the steps (each writes a trace line; the first that settles the outcome names the
``reason``):

 1. no current price → hold "no_current_price" (nothing live to reprice);
 2. paused (``History.paused_until`` in the future) → hold "paused";
 3. no min or no max price → hold "no_bounds" (never reprice without both: a rule without a floor is
    how repricers have dumped whole catalogs); min ≤ 0 or min > max → hold "invalid_bounds";
 4. a schedule window that pauses → hold "schedule_pause";
 5. the offers are sorted (filters.py) and the strategy sets a target (strategies.py), or keeps the
    price ("own_buy_box", "no_competitors", "buy_box_shared"...);
 6. velocity / inventory / schedule adjustments move the target (percents add up), and the target is
    rounded half up to the minor unit: this is ``target_price``;
 7. price war: when the target would lower our price and at least ``undercuts`` competitor undercuts
    happened within the window → action "pause" until now + pause_seconds, alert "price_war";
 8. anomaly: a move of ``anomaly.percent`` % or more from the current price → hold, alert "anomaly";
 9. bounds: outside [min, max] → the bound ("held_at_min"/"held_at_max") or hold ("below_min"/
    "above_max"), per ``bounds.out_of_bounds``;
10. already at that price → hold "no_change";
11. cooldown since the last change → hold "cooldown";
12. step and daily limits clamp toward the target ("max_step"/"max_daily"), or hold when they leave no
    room; when the current price is outside the bounds and the limits cannot reach them, hold with
    alert "out_of_bounds";
13. the kill switch (tenant) and dry-run (rule or tenant) keep everything above (the seller sees what
    would happen) but set ``submit`` False; a change they stop gets reason "kill_switch"/"dry_run".

``price_reason`` is the step that set the price (strategy, fallback or bound) whatever guard then
decided. The result depends on the inputs only (no clock, no randomness, no order dependence).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from repricing.engine.bounds import apply_bounds
from repricing.engine.filters import Selection, select
from repricing.engine.guards import anomaly_percent, clamp_to_limits, cooldown_remaining, undercuts_in_window
from repricing.engine.money import round_money
from repricing.engine.rules import Rule, Schedule, ScheduleEntry, zone
from repricing.engine.strategies import adjustments, apply_percent, strategy_target
from repricing.engine.types import (
    CHANGE,
    HOLD,
    PAUSE,
    ZERO,
    Decision,
    History,
    ListingState,
    Offer,
    TraceStep,
)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _schedule_entry(schedule: Schedule, now: datetime) -> ScheduleEntry | None:
    local = now.astimezone(zone(schedule.timezone))
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    for entry in schedule.entries:
        if entry.matches(weekday, minute):
            return entry
    return None


def _counts(counts: dict[str, int]) -> str:
    if len(counts) == 1:
        for what, count in counts.items():
            return f"{count} {what}"
    return ", ".join(f"{count} {what}" for what, count in sorted(counts.items()))


def _explain_offers(
    offers: Sequence[Offer], selection: Selection, listing: ListingState, trace: list[TraceStep]
) -> None:
    if selection.other_currency:
        n = sum(selection.other_currency.values())
        trace.append(
            TraceStep(
                "currency",
                f"Ignored {n} offer{'s' if n != 1 else ''} in another currency than your {listing.currency} "
                f"({_counts(selection.other_currency)})",
                {"ignored": str(n)},
            )
        )
    if selection.other_condition:
        n = sum(selection.other_condition.values())
        trace.append(
            TraceStep(
                "condition",
                f"Ignored {n} offer{'s' if n != 1 else ''} in another condition "
                f"({_counts(selection.other_condition)})",
                {"ignored": str(n)},
            )
        )
    competing, seen = len(selection.competitors), len(offers)
    message = f"{competing} competing offer{'' if competing == 1 else 's'} of {seen} seen"
    data = {"seen": str(seen), "competitors": str(competing)}
    n = selection.excluded_total
    if n:
        message += f"; your filters left out {n} ({_counts(selection.excluded)})"
        data["excluded"] = str(n)
    trace.append(TraceStep("offers", message, data))


class _Outcome:
    """Collects the trace, alerts, target and price reason of one decision, and builds the Decision."""

    __slots__ = (
        "alerts",
        "kill_switch",
        "listing",
        "price_reason",
        "rule",
        "target",
        "tenant_dry_run",
        "trace",
    )

    def __init__(self, listing: ListingState, rule: Rule, kill_switch: bool, tenant_dry_run: bool) -> None:
        self.listing, self.rule = listing, rule
        self.kill_switch, self.tenant_dry_run = kill_switch, tenant_dry_run
        self.trace: list[TraceStep] = []
        self.alerts: list[str] = []
        self.target: Decimal | None = None
        self.price_reason = ""

    def finish(
        self, action: str, reason: str, new_price: Decimal | None = None, pause_until: datetime | None = None
    ) -> Decision:
        """The Decision, after the kill switch and dry-run had their say on submitting it."""
        trace, rule = self.trace, self.rule
        submit = action == CHANGE
        final_reason = reason
        if self.kill_switch or rule.dry_run or self.tenant_dry_run:
            would = f" (this would have changed the price to {new_price})" if submit else ""
            if self.kill_switch:
                trace.append(
                    TraceStep("kill_switch", f"Kill switch is on: nothing is sent to Amazon{would}", {})
                )
                if submit:
                    final_reason = "kill_switch"
            else:
                scope = "rule" if rule.dry_run else "tenant"
                whose = "this rule" if rule.dry_run else "your account"
                message = f"Dry run ({whose}): nothing is sent to Amazon{would}"
                trace.append(TraceStep("dry_run", message, {"scope": scope}))
                if submit:
                    final_reason = "dry_run"
            submit = False
        return Decision(
            action,
            self.listing.current_price,
            new_price if action == CHANGE else None,
            self.target,
            final_reason,
            tuple(trace),
            tuple(self.alerts),
            submit,
            self.price_reason or reason,
            pause_until,
        )


def decide(
    listing: ListingState,
    offers: Sequence[Offer],
    rule: Rule,
    history: History,
    *,
    kill_switch: bool = False,
    tenant_dry_run: bool = False,
) -> Decision:
    """Decide the price of one listing (see the module docstring for the steps). Never raises on valid
    inputs; never returns a price outside [min, max] or beyond the step and daily limits."""
    out = _Outcome(listing, rule, kill_switch, tenant_dry_run)
    trace = out.trace
    current = listing.current_price
    now = _utc(history.now)

    if current is None:
        trace.append(TraceStep("listing", "The listing has no current price: nothing to reprice", {}))
        return out.finish(HOLD, "no_current_price")
    paused_until = history.paused_until
    if paused_until is not None and _utc(paused_until) > now:
        until = _utc(paused_until).isoformat()
        trace.append(TraceStep("paused", f"Repricing of this SKU is paused until {until}", {"until": until}))
        return out.finish(HOLD, "paused")
    minimum, maximum = listing.min_price, listing.max_price
    if minimum is None or maximum is None:
        trace.append(
            TraceStep(
                "bounds", "Set a min and a max price for this SKU: it is never repriced without both", {}
            )
        )
        return out.finish(HOLD, "no_bounds")
    if minimum <= 0 or minimum > maximum:
        trace.append(
            TraceStep(
                "bounds",
                f"Your min price {minimum} and max price {maximum} do not make a range: keep the price",
                {"min": str(minimum), "max": str(maximum)},
            )
        )
        return out.finish(HOLD, "invalid_bounds")

    entry = None if rule.schedule is None else _schedule_entry(rule.schedule, now)
    if entry is not None and entry.pause:
        trace.append(TraceStep("schedule", "Your schedule pauses repricing at this time", {}))
        return out.finish(HOLD, "schedule_pause")

    selection = select(listing, offers, rule.filters)
    _explain_offers(offers, selection, listing, trace)
    wanted, out.price_reason = strategy_target(listing, selection, rule, history, trace)
    if wanted is None:
        return out.finish(HOLD, out.price_reason)

    currency = listing.currency
    has_adjustments = rule.velocity is not None or rule.inventory is not None or entry is not None
    percent = adjustments(listing, rule, entry, trace) if has_adjustments else ZERO
    if percent:
        adjusted = apply_percent(wanted, percent, currency)
        trace.append(
            TraceStep(
                "adjust",
                f"Adjustments total {'+' if percent > 0 else ''}{percent}%: {wanted} → {adjusted}",
                {"percent": str(percent), "price": str(adjusted)},
            )
        )
        wanted = adjusted
    target = out.target = round_money(wanted, currency)

    guards = rule.guards
    war = guards.price_war
    if war is not None and target < current:
        undercuts = undercuts_in_window(tuple(_utc(t) for t in history.undercut_times), now, war)
        if undercuts >= war.undercuts:
            until_at = now + timedelta(seconds=war.pause_seconds)
            out.alerts.append("price_war")
            trace.append(
                TraceStep(
                    "price_war",
                    f"Competitors undercut you {undercuts} times in the last {war.window_seconds // 60} min: "
                    f"price war, repricing paused until {until_at.isoformat()}",
                    {"undercuts": str(undercuts), "until": until_at.isoformat()},
                )
            )
            return out.finish(PAUSE, "price_war", pause_until=until_at)

    if guards.anomaly_percent is not None and current > 0:
        move = anomaly_percent(current, target)
        if move >= guards.anomaly_percent:
            out.alerts.append("anomaly")
            trace.append(
                TraceStep(
                    "anomaly",
                    f"A move from {current} to {target} is {move:.1f}%, at or over your alert level of "
                    f"{guards.anomaly_percent}%: keep the price and check the market",
                    {"move_percent": f"{move:.2f}"},
                )
            )
            return out.finish(HOLD, "anomaly")

    bounded, bound_reason = apply_bounds(target, minimum, maximum, rule.bounds.out_of_bounds, trace)
    if bound_reason is not None:
        out.price_reason = bound_reason
    if bounded is None:
        return out.finish(HOLD, bound_reason or "bounds")
    if bounded == current:
        trace.append(TraceStep("no_change", f"Already at {current}: no change", {}))
        return out.finish(HOLD, "no_change")

    last_change = history.last_change_at
    if guards.cooldown_seconds and last_change is not None:
        wait = cooldown_remaining(_utc(last_change), now, guards.cooldown_seconds)
        if wait:
            trace.append(
                TraceStep(
                    "cooldown",
                    f"Changed {guards.cooldown_seconds - wait:.0f} s ago; your cooldown is "
                    f"{guards.cooldown_seconds} s: keep the price for now",
                    {"seconds_left": f"{wait:.0f}"},
                )
            )
            return out.finish(HOLD, "cooldown")

    price, limit_reason = clamp_to_limits(
        current, bounded, minimum, maximum, guards, history.day_open_price, currency, trace
    )
    if price is None:
        if not minimum <= current <= maximum:
            out.alerts.append("out_of_bounds")
        return out.finish(HOLD, limit_reason or "limits_conflict")
    trace.append(
        TraceStep("price", f"New price {price} (was {current})", {"old": str(current), "new": str(price)})
    )
    return out.finish(CHANGE, limit_reason or out.price_reason, new_price=price)
