"""Competitor filters: each one alone, what happens to offers missing the filtered fact, a filtered-out
Buy Box holder, and the fast selection loop agreeing with the one-offer explanation.

Strategy throughout: match the lowest competitor (so the expected price is simply the landed price of
the cheapest offer the filters keep); listing at 20.00 within 10.00..30.00.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from repricing.engine.filters import exclusion, select
from repricing.engine.rules import Filters
from repricing.tests.test_engine_strategies import listing, offer, ours, rule, run

D = Decimal
MATCH_LOWEST = {"kind": "lowest", "mode": "match", "when_alone": "hold"}


def matched(offers: list[Any], filters: dict[str, Any], **kwargs: Any) -> Decimal | None:
    return run([ours(), *offers], rule(MATCH_LOWEST, filters=filters), **kwargs).new_price


def test_fulfillment_channel() -> None:
    offers = [offer("FBM1", "15.00"), offer("FBA1", "18.00", fulfillment="FBA")]
    assert matched(offers, {"fulfillment": "FBA"}) == D("18.00")
    assert matched(offers, {"fulfillment": "FBM"}) == D("15.00")
    assert matched(offers, {"fulfillment": "any"}) == D("15.00")


def test_minimum_feedback_rating_and_unknown_ratings() -> None:
    # 89 % fails a 90 % minimum, so does an offer without a rating; 95 % passes.
    offers = [
        offer("LOW", "12.00", feedback_rating=89.0, feedback_count=1000),
        offer("NONE", "13.00"),
        offer("GOOD", "17.00", feedback_rating=95.0, feedback_count=1000),
    ]
    assert matched(offers, {"min_feedback_rating": 90}) == D("17.00")
    # The boundary is inclusive: exactly 89 passes an 89 minimum.
    assert matched(offers, {"min_feedback_rating": 89}) == D("12.00")


def test_minimum_feedback_count() -> None:
    offers = [
        offer("NEW", "12.00", feedback_count=3),
        offer("OLD", "16.00", feedback_count=500),
        offer("X", "11.00"),
    ]
    assert matched(offers, {"min_feedback_count": 100}) == D("16.00")


def test_conditions_filter_widens_what_we_compete_with() -> None:
    # A used listing normally ignores new offers; naming both conditions brings the new 14.00 in.
    used = listing(condition="used")
    offers = [offer("N", "14.00"), offer("U", "16.00", condition="used")]
    assert matched(offers, {}, the_listing=used) == D("16.00")
    assert matched(offers, {"conditions": ["new", "used"]}, the_listing=used) == D("14.00")


def test_ships_from_and_unknown_origin() -> None:
    # Only US: the CN offer goes; the one of unknown origin (Amazon often omits it for FBA) stays.
    offers = [
        offer("CN", "11.00", ships_from="CN"),
        offer("UNK", "13.00"),
        offer("US", "15.00", ships_from="us"),
    ]
    assert matched(offers, {"ships_from": ["US"]}) == D("13.00")
    assert matched([offers[0], offers[2]], {"ships_from": ["us"]}) == D("15.00")


def test_handling_time() -> None:
    offers = [offer("SLOW", "11.00", handling_hours_max=96), offer("FAST", "14.00", handling_hours_max=48)]
    assert matched(offers, {"max_handling_hours": 48}) == D("14.00")
    assert matched([*offers, offer("UNK", "12.00")], {"max_handling_hours": 48}) == D("12.00")


def test_exclude_amazon() -> None:
    offers = [offer("ATVPDKIKX0DER", "12.00", is_amazon=True), offer("B", "17.00")]
    assert matched(offers, {"exclude_amazon": True}) == D("17.00")
    assert matched(offers, {}) == D("12.00")


def test_exclude_and_target_named_sellers() -> None:
    offers = [offer("DUMPER", "11.00"), offer("RIVAL", "16.00"), offer("OTHER", "18.00")]
    assert matched(offers, {"exclude_sellers": ["DUMPER"]}) == D("16.00")
    assert matched(offers, {"only_sellers": ["OTHER"]}) == D("18.00")


def test_everyone_filtered_out_is_being_alone() -> None:
    d = run([ours(), offer("A", "12.00")], rule(MATCH_LOWEST, filters={"exclude_sellers": ["A"]}))
    assert (d.action, d.reason) == ("hold", "no_competitors")
    offers_step = next(s for s in d.trace if s.code == "offers")
    assert offers_step.data["excluded"] == "1" and "excluded by name" in offers_step.message


def test_buy_box_holder_left_out_by_the_filters_counts_as_no_buy_box() -> None:
    # Amazon holds the Buy Box at 12.00 but the seller excludes Amazon: fall back to the lowest kept
    # competitor, 17.00, beaten by a cent → 16.99.
    d = run(
        [
            ours(),
            offer("ATVPDKIKX0DER", "12.00", is_amazon=True, is_buy_box_winner=True),
            offer("B", "17.00"),
        ],
        rule({"kind": "buy_box", "mode": "beat", "amount": "0.01"}, filters={"exclude_amazon": True}),
    )
    assert (d.new_price, d.reason) == (D("16.99"), "beat_lowest")
    step = next(s for s in d.trace if s.code == "buy_box")
    assert step.data["excluded"] == "Amazon" and "left out by your filters" in step.message


def test_filters_combine() -> None:
    offers = [
        offer("A", "11.00", fulfillment="FBA", feedback_rating=99.0, feedback_count=10),  # too few ratings
        offer("B", "12.00", fulfillment="FBM", feedback_rating=99.0, feedback_count=999),  # FBM
        offer("C", "13.00", fulfillment="FBA", feedback_rating=80.0, feedback_count=999),  # low rating
        offer("D", "19.00", fulfillment="FBA", feedback_rating=99.0, feedback_count=999),  # kept
    ]
    filters = {"fulfillment": "FBA", "min_feedback_rating": 95, "min_feedback_count": 100}
    assert matched(offers, filters) == D("19.00")


CASES = [
    ({"fulfillment": "FBA"}, offer("X", "1", fulfillment="FBM"), "not FBA"),
    ({"min_feedback_rating": 90}, offer("X", "1", feedback_rating=50.0), "below 90% positive feedback"),
    ({"min_feedback_count": 5}, offer("X", "1"), "fewer than 5 ratings"),
    ({"ships_from": ["US", "CA"]}, offer("X", "1", ships_from="CN"), "ships from outside CA, US"),
    ({"max_handling_hours": 24}, offer("X", "1", handling_hours_max=48), "handling time over 24 h"),
    ({"exclude_amazon": True}, offer("X", "1", is_amazon=True), "Amazon"),
    ({"exclude_sellers": ["X"]}, offer("X", "1"), "excluded by name"),
    ({"only_sellers": ["Y"]}, offer("X", "1"), "not among your targeted sellers"),
    ({"only_sellers": ["X"]}, offer("X", "1"), None),
]


@pytest.mark.parametrize(("filters", "the_offer", "reason"), CASES)
def test_each_filter_names_its_reason_and_select_agrees(
    filters: dict[str, Any], the_offer: Any, reason: str | None
) -> None:
    parsed = Filters.from_dict(filters)
    assert exclusion(the_offer, parsed) == reason
    selection = select(listing(), [the_offer], parsed)
    assert (selection.competitors == []) == (reason is not None)
    assert selection.excluded == ({reason: 1} if reason else {})
