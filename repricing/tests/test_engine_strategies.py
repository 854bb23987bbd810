"""Scenario tests of the engine's strategies, Buy Box probe and sharing, fallbacks and adjustments.

Every expected price is worked out by hand in the comment beside it. Unless a test says otherwise the
listing is new, USD, FBM, at 20.00 with no shipping of its own, min 10.00 and max 30.00, and the rule
has no guards (the guards have their own file). The builders here are shared by the other engine
test files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from repricing.engine import Decision, History, ListingState, Offer, Rule, decide

D = Decimal
NOW = datetime(2025, 6, 4, 15, 30, tzinfo=UTC)  # a Wednesday


def listing(**changes: Any) -> ListingState:
    base = ListingState(
        sku="SKU-1",
        asin="B000000001",
        marketplace_id="ATVPDKIKX0DER",
        currency="USD",
        condition="new",
        fulfillment="FBM",
        current_price=D("20.00"),
        min_price=D("10.00"),
        max_price=D("30.00"),
    )
    return replace(base, **changes)


def offer(seller: str, price: str, shipping: str = "0", **changes: Any) -> Offer:
    return replace(Offer(seller_id=seller, price=D(price), shipping=D(shipping)), **changes)


def ours(price: str = "20.00", **changes: Any) -> Offer:
    return offer("ME", price, is_ours=True, **changes)


def rule(strategy: Mapping[str, Any] | None = None, **sections: Any) -> Rule:
    return Rule.from_dict(
        {"strategy": strategy or {"kind": "buy_box", "mode": "beat", "amount": "0.01"}, **sections}
    )


def history(**changes: Any) -> History:
    return replace(History(now=NOW), **changes)


def run(
    offers: list[Offer], the_rule: Rule | None = None, the_listing: ListingState | None = None, **kwargs: Any
) -> Decision:
    return decide(
        the_listing or listing(), offers, the_rule or rule(), kwargs.pop("hist", None) or history(), **kwargs
    )


def codes(decision: Decision) -> list[str]:
    return [step.code for step in decision.trace]


BEAT_CENT = {"kind": "buy_box", "mode": "beat", "amount": "0.01"}


# --- Buy Box ---------------------------------------------------------------------------------------


def test_beat_the_buy_box_by_a_cent() -> None:
    # Buy Box 19.99 landed; one cent below → 19.98.
    d = run([ours(), offer("A2XYZ", "19.99", fulfillment="FBA", is_buy_box_winner=True), offer("B", "21.00")])
    assert (d.action, d.new_price, d.target_price, d.reason, d.submit) == (
        "change",
        D("19.98"),
        D("19.98"),
        "beat_buy_box",
        True,
    )
    step = next(s for s in d.trace if s.code == "buy_box")
    assert step.message == "Buy Box is 19.99 (seller A2XYZ, FBA); beat by 0.01 → 19.98"
    assert step.data["seller_id"] == "A2XYZ"


def test_match_the_buy_box() -> None:
    # Match: our landed = Buy Box landed = 19.99.
    d = run([ours(), offer("A", "19.99", is_buy_box_winner=True)], rule({"kind": "buy_box", "mode": "match"}))
    assert (d.new_price, d.reason) == (D("19.99"), "match_buy_box")


def test_beat_the_buy_box_by_a_percent_rounds_half_up() -> None:
    # 1 % of 19.99 = 0.1999 → 0.20 (half up to the cent); 19.99 - 0.20 = 19.79.
    d = run(
        [ours(), offer("A", "19.99", is_buy_box_winner=True)],
        rule({"kind": "buy_box", "mode": "beat", "percent": "1"}),
    )
    assert d.new_price == D("19.79")


def test_half_cent_rounds_up() -> None:
    # 0.5 % of 21.00 = 0.105 → 0.11 (half up, not banker's 0.10); 21.00 - 0.11 = 20.89.
    d = run(
        [ours(), offer("A", "21.00", is_buy_box_winner=True)],
        rule({"kind": "buy_box", "mode": "beat", "percent": "0.5"}),
    )
    assert d.new_price == D("20.89")


def test_stay_above_the_buy_box() -> None:
    # 19.99 + 0.50 = 20.49.
    d = run(
        [ours(), offer("A", "19.99", is_buy_box_winner=True)],
        rule({"kind": "buy_box", "mode": "above", "amount": "0.50"}),
    )
    assert (d.new_price, d.reason) == (D("20.49"), "above_buy_box")


def test_landed_prices_and_our_shipping() -> None:
    # Buy Box 17.00 + 2.99 shipping = 19.99 landed; beat by 0.01 → 19.98 landed; we charge 4.99 shipping,
    # so our item price is 19.98 - 4.99 = 14.99.
    d = run(
        [ours("20.00", shipping=D("4.99")), offer("A", "17.00", "2.99", is_buy_box_winner=True)],
        the_listing=listing(our_shipping=D("4.99")),
    )
    assert d.new_price == D("14.99")
    assert "less your shipping 4.99 → 14.99" in next(s for s in d.trace if s.code == "buy_box").message


def test_tie_with_the_buy_box_is_beaten() -> None:
    # The Buy Box is at our price (20.00), we do not hold it: beat → 19.99.
    d = run([ours(), offer("A", "20.00", is_buy_box_winner=True)])
    assert d.new_price == D("19.99")


def test_already_at_the_matched_price_holds() -> None:
    d = run([ours(), offer("A", "20.00", is_buy_box_winner=True)], rule({"kind": "buy_box", "mode": "match"}))
    assert (d.action, d.reason, d.price_reason, d.new_price, d.submit) == (
        "hold",
        "no_change",
        "match_buy_box",
        None,
        False,
    )


def test_two_buy_box_winners_the_lower_counts() -> None:
    # Amazon may show a Prime and a non-Prime winner: 19.50 and 19.80 → the Buy Box is 19.50 → 19.49.
    d = run(
        [ours(), offer("P", "19.80", is_buy_box_winner=True), offer("N", "19.50", is_buy_box_winner=True)]
    )
    assert d.new_price == D("19.49")


# --- Our own offer holds the Buy Box: probe and sharing ------------------------------------------------


def test_our_buy_box_without_probe_holds() -> None:
    d = run([ours(is_buy_box_winner=True), offer("A", "19.00")])
    assert (d.action, d.reason) == ("hold", "own_buy_box")


def test_our_buy_box_probes_up_by_an_amount() -> None:
    # We hold the Buy Box at 20.00; probe step 0.25 → 20.25.
    d = run(
        [ours(is_buy_box_winner=True), offer("A", "21.00")], rule(BEAT_CENT, buy_box_probe={"amount": "0.25"})
    )
    assert (d.new_price, d.reason) == (D("20.25"), "buy_box_probe")


def test_probe_by_a_percent() -> None:
    # 1 % of 20.00 = 0.20 → 20.20.
    d = run([ours(is_buy_box_winner=True)], rule(BEAT_CENT, buy_box_probe={"percent": "1"}))
    assert d.new_price == D("20.20")


def test_probe_stops_at_the_max() -> None:
    # 29.90 + 0.25 = 30.15 > max 30.00 → 30.00.
    d = run(
        [ours("29.90", is_buy_box_winner=True)],
        rule(BEAT_CENT, buy_box_probe={"amount": "0.25"}),
        listing(current_price=D("29.90")),
    )
    assert d.new_price == D("30.00")
    # Already at the max: nothing to probe.
    d = run(
        [ours("30.00", is_buy_box_winner=True)],
        rule(BEAT_CENT, buy_box_probe={"amount": "0.25"}),
        listing(current_price=D("30.00")),
    )
    assert (d.action, d.reason) == ("hold", "probe_at_max")


def test_probe_applies_to_any_strategy_kind() -> None:
    d = run(
        [ours(is_buy_box_winner=True), offer("A", "15.00")],
        rule({"kind": "lowest", "mode": "beat", "amount": "0.01"}, buy_box_probe={"amount": "0.10"}),
    )
    assert (d.new_price, d.reason) == (D("20.10"), "buy_box_probe")


def test_shared_buy_box_is_held() -> None:
    # We hold it now but only in 55 % of recent checks (< 0.9): Amazon rotates it; keep the price.
    d = run(
        [ours(is_buy_box_winner=True), offer("A", "20.00")],
        rule(BEAT_CENT, buy_box_probe={"amount": "0.25", "when_sharing": "hold"}),
        hist=history(buy_box_share=0.55),
    )
    assert (d.action, d.reason) == ("hold", "buy_box_shared")
    assert "55%" in next(s for s in d.trace if s.code == "sharing").message


def test_shared_buy_box_probes_when_told_to() -> None:
    d = run(
        [ours(is_buy_box_winner=True)],
        rule(BEAT_CENT, buy_box_probe={"amount": "0.25", "when_sharing": "probe"}),
        hist=history(buy_box_share=0.55),
    )
    assert (d.new_price, d.reason) == (D("20.25"), "buy_box_probe")


def test_full_share_is_not_sharing() -> None:
    d = run(
        [ours(is_buy_box_winner=True)],
        rule(BEAT_CENT, buy_box_probe={"amount": "0.25"}),
        hist=history(buy_box_share=0.95),
    )
    assert d.reason == "buy_box_probe"


def test_rotation_partner_at_our_price_is_not_undercut() -> None:
    # Another seller holds the Buy Box at our landed price and we held it 40 % of the time: sharing.
    sharing = rule(BEAT_CENT, buy_box_probe={"amount": "0.25"})
    d = run([ours(), offer("A", "20.00", is_buy_box_winner=True)], sharing, hist=history(buy_box_share=0.4))
    assert (d.action, d.reason) == ("hold", "buy_box_shared")
    # Never held it (share 0): no rotation to protect, beat it → 19.99.
    d = run([ours(), offer("A", "20.00", is_buy_box_winner=True)], sharing, hist=history(buy_box_share=0.0))
    assert d.new_price == D("19.99")


# --- No Buy Box, no competitors ---------------------------------------------------------------------


def test_missing_buy_box_falls_back_to_the_lowest_by_default() -> None:
    # Nobody holds the Buy Box; lowest competitor 18.50 → beat → 18.49.
    d = run([ours(), offer("A", "18.50"), offer("B", "19.00")])
    assert (d.new_price, d.reason) == (D("18.49"), "beat_lowest")
    assert "buy_box" in codes(d)


@pytest.mark.parametrize(
    ("fallback", "action", "price", "reason"),
    [
        ("hold", "hold", None, "no_buy_box"),
        ("min", "change", D("10.00"), "no_buy_box_min"),
        ("max", "change", D("30.00"), "no_buy_box_max"),
    ],
)
def test_missing_buy_box_fallbacks(fallback: str, action: str, price: Decimal | None, reason: str) -> None:
    d = run([ours(), offer("A", "18.50")], rule({**BEAT_CENT, "when_no_buy_box": fallback}))
    assert (d.action, d.new_price, d.reason) == (action, price, reason)


@pytest.mark.parametrize(
    ("fallback", "action", "price", "reason"),
    [
        ("hold", "hold", None, "no_competitors"),
        ("min", "change", D("10.00"), "no_competitors_min"),
        ("max", "change", D("30.00"), "no_competitors_max"),
    ],
)
def test_single_offer_uses_the_alone_fallback(
    fallback: str, action: str, price: Decimal | None, reason: str
) -> None:
    # Only our own offer: no Buy Box holder, no competitor.
    d = run([ours()], rule({"kind": "lowest", "mode": "beat", "amount": "0.01", "when_alone": fallback}))
    assert (d.action, d.new_price, d.reason) == (action, price, reason)
    d = run([], rule({"kind": "buy_box", "mode": "match", "when_alone": fallback}))
    assert (d.action, d.new_price, d.reason) == (action, price, reason)


# --- Lowest, lowest FBA, named competitors ------------------------------------------------------------


def test_lowest_compares_landed_prices() -> None:
    # Landed: 21.00, 19.50 + 0.99 = 20.49, 19.75 → lowest 19.75 → beat → 19.74.
    d = run(
        [ours(), offer("A", "21.00"), offer("B", "19.50", "0.99"), offer("C", "19.75")],
        rule({"kind": "lowest", "mode": "beat", "amount": "0.01"}),
    )
    assert (d.new_price, d.reason) == (D("19.74"), "beat_lowest")


def test_tied_competitors_give_the_same_decision_in_any_order() -> None:
    offers = [ours(), offer("ZED", "19.75"), offer("ALF", "19.75"), offer("MID", "22.00")]
    the_rule = rule({"kind": "lowest", "mode": "beat", "amount": "0.01"})
    first, second = run(offers, the_rule), run(list(reversed(offers)), the_rule)
    assert first == second
    assert first.new_price == D("19.74")
    assert next(s for s in first.trace if s.code == "lowest").data["seller_id"] == "ALF"


def test_our_cheaper_offer_is_not_a_competitor() -> None:
    # Our own second offer at 15.00 is ignored; the lowest competitor is 19.00 → match → 19.00.
    d = run(
        [ours(), ours("15.00", fulfillment="FBA"), offer("A", "19.00")],
        rule({"kind": "lowest", "mode": "match"}),
    )
    assert d.new_price == D("19.00")


def test_lowest_fba() -> None:
    # FBM at 18.00 does not count; the FBA offer at 20.10 is matched.
    d = run(
        [ours(), offer("A", "18.00"), offer("B", "20.10", fulfillment="FBA")],
        rule({"kind": "lowest_fba", "mode": "match"}),
    )
    assert (d.new_price, d.reason) == (D("20.10"), "match_lowest_fba")


def test_named_competitors_stay_a_percent_above() -> None:
    # Only B is named: 19.00 + 5 % (0.95) = 19.95. A at 18.00 is not named.
    d = run(
        [ours(), offer("A", "18.00"), offer("B", "19.00")],
        rule({"kind": "named_competitors", "mode": "above", "percent": "5", "competitors": ["B", "Q"]}),
    )
    assert (d.new_price, d.reason) == (D("19.95"), "above_named_competitors")


def test_named_competitors_absent_uses_the_alone_fallback() -> None:
    d = run(
        [ours(), offer("A", "18.00")],
        rule(
            {
                "kind": "named_competitors",
                "mode": "beat",
                "amount": "0.05",
                "competitors": ["B"],
                "when_alone": "max",
            }
        ),
    )
    assert (d.new_price, d.reason) == (D("30.00"), "no_competitors_max")


# --- Currencies and conditions ---------------------------------------------------------------------


def test_offers_in_another_currency_or_condition_are_ignored_with_a_trace_line() -> None:
    # EUR 5.00 and used 6.00 would be lowest; ignored → lowest is 19.00 → 18.99.
    d = run(
        [
            ours(),
            offer("E", "5.00", currency="EUR"),
            offer("U", "6.00", condition="used"),
            offer("A", "19.00"),
        ],
        rule({"kind": "lowest", "mode": "beat", "amount": "0.01"}),
    )
    assert d.new_price == D("18.99")
    assert {"currency", "condition"} <= set(codes(d))
    assert "EUR" in next(s for s in d.trace if s.code == "currency").message


def test_buy_box_in_another_condition_is_not_our_buy_box() -> None:
    # The used offer holds "a" Buy Box, but we sell new: no comparable Buy Box → lowest 19.00 → 18.99.
    d = run([ours(), offer("U", "8.00", condition="used", is_buy_box_winner=True), offer("A", "19.00")])
    assert (d.new_price, d.reason) == (D("18.99"), "beat_lowest")


def test_yen_have_no_minor_unit() -> None:
    # JPY: 1 % of 1980 = 19.8 → 20 (whole yen, half up) → 1960; a 0.01 beat is less than one yen → 1 yen.
    jp = listing(currency="JPY", current_price=D("2000"), min_price=D("1000"), max_price=D("3000"))
    bb = offer("A", "1980", currency="JPY", is_buy_box_winner=True)
    d = run([bb], rule({"kind": "buy_box", "mode": "beat", "percent": "1"}), jp)
    assert d.new_price == D("1960")
    d = run([bb], rule(BEAT_CENT), jp)
    assert d.new_price == D("1979")


def test_competitor_prices_with_sub_cent_digits_round_to_the_cent() -> None:
    # Match 19.995 → rounded half up → 20.00 = current → no change.
    d = run([offer("A", "19.995", is_buy_box_winner=True)], rule({"kind": "buy_box", "mode": "match"}))
    assert (d.target_price, d.reason) == (D("20.00"), "no_change")


# --- Adjustments: velocity, inventory, schedule ------------------------------------------------------

CURRENT = {"kind": "current"}
VELOCITY = {"target_units_7d": 10, "raise_percent": "3", "lower_percent": "3"}


@pytest.mark.parametrize(
    ("units", "price", "reason"),
    [
        (15, D("20.60"), "current_price"),  # faster than 10/week: 20.00 x 1.03 = 20.60
        (5, D("19.40"), "current_price"),  # slower: 20.00 x 0.97 = 19.40
        (10, None, "no_change"),  # on target
        (None, None, "no_change"),  # unknown: skipped with a trace line
    ],
)
def test_sales_velocity(units: int | None, price: Decimal | None, reason: str) -> None:
    d = run([], rule(CURRENT, velocity=VELOCITY), listing(units_sold_7d=units))
    assert (d.new_price, d.reason) == (price, reason)
    assert "velocity" in codes(d)


def test_velocity_tolerance() -> None:
    # Target 10 ± 20 % = 8..12: 12 sold is on target, 13 is faster (20.00 x 1.03 = 20.60).
    the_rule = rule(CURRENT, velocity={**VELOCITY, "tolerance_percent": "20"})
    assert run([], the_rule, listing(units_sold_7d=12)).reason == "no_change"
    assert run([], the_rule, listing(units_sold_7d=13)).new_price == D("20.60")


INVENTORY = {
    "low_days_of_cover": 7, "raise_percent": "5",
    "high_days_of_cover": 120, "lower_percent": "5",
    "aged_units_min": 1, "aged_lower_percent": "10",
}  # fmt: skip


@pytest.mark.parametrize(
    ("cover", "aged", "price"),
    [
        (3.0, 0, D("21.00")),  # low cover: 20.00 x 1.05
        (3.0, 9, D("21.00")),  # low cover wins over aged stock: still raise
        (150.0, 0, D("19.00")),  # excess cover: 20.00 x 0.95
        (150.0, 6, D("18.00")),  # excess (5 %) and aged (10 %): the larger, 20.00 x 0.90
        (60.0, 6, D("18.00")),  # aged only
        (60.0, 0, None),  # healthy: no change
        (None, 6, D("18.00")),  # cover unknown (skipped), aged known
        (None, None, None),  # nothing known: both skipped
    ],
)
def test_inventory(cover: float | None, aged: int | None, price: Decimal | None) -> None:
    d = run([], rule(CURRENT, inventory=INVENTORY), listing(days_of_cover=cover, aged_units=aged))
    assert d.new_price == price
    if cover is None:
        assert any("Days of cover unknown" in s.message for s in d.trace)


def test_adjustments_add_up_on_a_competitive_target() -> None:
    # Buy Box 19.99 - 0.01 = 19.98; velocity +3 % and inventory -5 % → -2 %: 19.98 x 0.98 = 19.5804 → 19.58.
    d = run(
        [offer("A", "19.99", is_buy_box_winner=True)],
        rule(BEAT_CENT, velocity=VELOCITY, inventory={"high_days_of_cover": 90, "lower_percent": "5"}),
        listing(units_sold_7d=30, days_of_cover=200.0),
    )
    assert (d.target_price, d.new_price, d.reason) == (D("19.58"), D("19.58"), "beat_buy_box")
    assert "adjust" in codes(d)


SCHEDULE = {
    "timezone": "America/New_York",
    "entries": [
        {"days": ["sat", "sun"], "start": "00:00", "end": "24:00", "adjust_percent": "3"},
        {"days": ["mon"], "start": "22:00", "end": "06:00", "pause": True},
    ],
}


@pytest.mark.parametrize(
    ("now", "action", "price", "reason"),
    [
        # Saturday 15:00 UTC = 11:00 in New York (EDT): weekend +3 % → 20.60.
        (datetime(2025, 6, 7, 15, 0, tzinfo=UTC), "change", D("20.60"), "current_price"),
        # Saturday 02:00 UTC is still Friday 22:00 in New York: no entry.
        (datetime(2025, 6, 7, 2, 0, tzinfo=UTC), "hold", None, "no_change"),
        # Tuesday 07:00 UTC = 03:00 Tuesday in New York, inside Monday's 22:00-06:00 window: paused.
        (datetime(2025, 6, 10, 7, 0, tzinfo=UTC), "hold", None, "schedule_pause"),
        # Monday 23:00 New York (Tuesday 03:00 UTC): paused too.
        (datetime(2025, 6, 10, 3, 0, tzinfo=UTC), "hold", None, "schedule_pause"),
        # Tuesday 11:00 UTC = 07:00 New York: after the window.
        (datetime(2025, 6, 10, 11, 0, tzinfo=UTC), "hold", None, "no_change"),
    ],
)
def test_schedule(now: datetime, action: str, price: Decimal | None, reason: str) -> None:
    d = run([], rule(CURRENT, schedule=SCHEDULE), hist=history(now=now))
    assert (d.action, d.new_price, d.reason) == (action, price, reason)


def test_strategy_hold_is_not_moved_by_adjustments() -> None:
    # No competitors and "hold": velocity does not turn that into a change (use the "current" strategy).
    d = run([], rule({"kind": "lowest", "mode": "match"}, velocity=VELOCITY), listing(units_sold_7d=50))
    assert (d.action, d.reason) == ("hold", "no_competitors")


def test_decision_is_json_ready() -> None:
    import json

    d = run([ours(), offer("A2XYZ", "19.99", is_buy_box_winner=True)])
    data = json.loads(json.dumps(d.to_dict()))
    assert data["new_price"] == "19.98" and data["old_price"] == "20.00" and data["submit"] is True
    assert data["trace"][-1] == {
        "code": "price",
        "message": "New price 19.98 (was 20.00)",
        "data": {"old": "20.00", "new": "19.98"},
    }
