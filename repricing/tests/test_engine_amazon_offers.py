"""Amazon's wire shapes → engine offers, on Amazon's own examples (../shared/spapi-models: the Product
Pricing v0 sandbox responses and the ANY_OFFER_CHANGED notification examples), then decided on."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from amazon.simulator.models_dir import spapi_models_path
from repricing.engine import Offer
from repricing.engine.amazon_offers import (
    AMAZON_RETAIL_SELLER_IDS,
    OfferFormatError,
    offers_from_notification,
    offers_from_pricing,
)
from repricing.tests.test_engine_strategies import listing, rule, run

D = Decimal
PRICING = spapi_models_path("models", "product-pricing-api-model", "productPricingV0.json")
EXAMPLES = spapi_models_path("notification-examples")

pytestmark = pytest.mark.skipif(
    not PRICING.is_file(), reason=f"Amazon's SP-API models are not at {PRICING} (../shared/spapi-models)"
)


@cache
def _pricing_model() -> dict[str, Any]:
    return json.loads(PRICING.read_text())


def batch_payloads() -> dict[str, dict[str, Any]]:
    """getListingOffersBatch's sandbox example: SKU → the per-SKU getListingOffers payload."""
    operation = _pricing_model()["paths"]["/batches/products/pricing/v0/listingOffers"]["post"]
    (example,) = operation["responses"]["200"]["x-amzn-api-sandbox"]["static"]
    payloads = (r["body"]["payload"] for r in example["response"]["responses"])
    return {p["SKU"]: copy.deepcopy(p) for p in payloads}


def notification(name: str) -> dict[str, Any]:
    (path,) = EXAMPLES.glob(f"{name}-*.json")
    return json.loads(path.read_text())


def test_get_listing_offers_example() -> None:
    operation = _pricing_model()["paths"]["/products/pricing/v0/listings/{SellerSKU}/offers"]["get"]
    payload = operation["responses"]["200"]["x-amzn-api-sandbox"]["static"][0]["response"]["payload"]
    (only,) = offers_from_pricing(payload["Offers"], "SOMEONE-ELSE", item_condition=payload["ItemCondition"])
    # MyOffer marks ours even when the seller id we were given does not match.
    assert only == Offer(
        seller_id="AXXXXXXXXXXXXX",
        price=D("10.0"),
        shipping=D("0.0"),
        currency="USD",
        condition="new",
        fulfillment="FBM",
        is_buy_box_winner=False,
        feedback_rating=0.0,
        feedback_count=0,
        ships_from="US",
        handling_hours_max=48,
        is_amazon=False,
        is_ours=True,
    )


def test_batch_example_offers() -> None:
    payload = batch_payloads()["VT-DEIT-57TQ"]
    offers = offers_from_pricing(payload["Offers"], "A2SNBFWOFW4SWG", item_condition=payload["ItemCondition"])
    assert [(o.seller_id, o.price, o.shipping, o.is_buy_box_winner, o.is_ours) for o in offers] == [
        ("A5LI4TEX5CN80", D("10"), D("4.99"), True, False),
        ("A2SNBFWOFW4SWG", D("15"), D("0"), False, True),
        ("AH2OYH1RAT8PM", D("33"), D("0"), False, False),
    ]
    assert offers[0].landed == D("14.99") and offers[1].handling_hours_max == 24


def test_batch_example_decided() -> None:
    # Amazon's example: the Buy Box is 10.00 + 4.99 = 14.99 landed (A5LI4TEX5CN80), we are at 15.00.
    # Beat by a cent → 14.98.
    payload = batch_payloads()["VT-DEIT-57TQ"]
    offers = offers_from_pricing(payload["Offers"], "A2SNBFWOFW4SWG", item_condition="New")
    d = run(offers, the_listing=listing(current_price=D("15.00")))
    assert (d.new_price, d.reason) == (D("14.98"), "beat_buy_box")


def test_batch_example_with_fba_and_repeat_sellers() -> None:
    # GC-QTMS-SV2I: 15 offers; one FBA offer (A1OHOT6VONX3KA at 17.99); A1EZPZGQPCQEQR holds the Buy Box
    # at 10.00; the lowest landed price is 0.50. Lowest FBA, matched → 17.99.
    payload = batch_payloads()["GC-QTMS-SV2I"]
    offers = offers_from_pricing(payload["Offers"], "A2SNBFWOFW4SWG", item_condition=payload["ItemCondition"])
    assert len(offers) == 15
    assert [o.seller_id for o in offers if o.fulfillment == "FBA"] == ["A1OHOT6VONX3KA"]
    assert [o.seller_id for o in offers if o.is_buy_box_winner] == ["A1EZPZGQPCQEQR"]
    d = run(offers, rule({"kind": "lowest_fba", "mode": "match"}))
    assert d.new_price == D("17.99")
    d = run(offers, rule({"kind": "lowest", "mode": "match"}))
    assert (d.target_price, d.new_price, d.reason) == (D("0.50"), D("10.00"), "held_at_min")


def test_condition_without_item_condition_comes_from_the_sub_condition() -> None:
    raw = [
        {"SellerId": "A", "SubCondition": "new", "ListingPrice": {"Amount": 5, "CurrencyCode": "USD"}},
        {"SellerId": "B", "SubCondition": "Very Good", "ListingPrice": {"Amount": 5, "CurrencyCode": "USD"}},
        {"SellerId": "C", "SubCondition": "very_good", "ListingPrice": {"Amount": 5, "CurrencyCode": "USD"}},
        {
            "SellerId": "D",
            "SubCondition": "Refurbished Warranty",
            "ListingPrice": {"Amount": 5, "CurrencyCode": "USD"},
        },
    ]
    assert [o.condition for o in offers_from_pricing(raw, "X")] == ["new", "used", "used", "refurbished"]
    assert {o.condition for o in offers_from_pricing(raw, "X", item_condition="Collectible")} == {
        "collectible"
    }


def test_business_offers_and_amazon_retail() -> None:
    raw = [
        {"SellerId": "B2B", "offerType": "B2B", "ListingPrice": {"Amount": 1, "CurrencyCode": "USD"}},
        {
            "SellerId": "ATVPDKIKX0DER",
            "offerType": "B2C",
            "ListingPrice": {"Amount": 9.99, "CurrencyCode": "USD"},
        },
    ]
    (amazon,) = offers_from_pricing(raw, "ME")
    assert amazon.is_amazon and amazon.price == D("9.99") and amazon.shipping == D("0")
    assert "A3JWKAKR8XB7XF" in AMAZON_RETAIL_SELLER_IDS  # amazon.de


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"SellerId": "A"}, "ListingPrice"),
        ({"ListingPrice": {"Amount": "ten", "CurrencyCode": "USD"}}, "not a number"),
        ({"ListingPrice": {"Amount": -1, "CurrencyCode": "USD"}}, "not a price"),
        ({"ListingPrice": {"Amount": True, "CurrencyCode": "USD"}}, "expected a number"),
        ({"ListingPrice": {"Amount": 1}}, "CurrencyCode"),
        ("offer", "expected an object"),
    ],
)
def test_malformed_offers_raise(raw: Any, message: str) -> None:
    with pytest.raises(OfferFormatError, match=message):
        offers_from_pricing([raw], "ME")


def test_schema_example_notification() -> None:
    # Amazon's schema example: one FBA offer at 23.00 + 110.00 shipping from "USA", condition "New".
    (only,) = offers_from_notification(notification("aoc-01"), "A3TH9S8BH6GOGM")
    assert only == Offer(
        seller_id="111",
        price=D("23.0"),
        shipping=D("110.0"),
        currency="USD",
        condition="new",
        fulfillment="FBA",
        is_buy_box_winner=False,
        feedback_rating=10.0,
        feedback_count=9,
        ships_from="USA",
        handling_hours_max=30,
        is_amazon=False,
        is_ours=False,
    )


def test_notification_accepts_the_document_the_payload_or_the_body() -> None:
    document = notification("aoc-02")
    body = document["Payload"]["AnyOfferChangedNotification"]
    expected = offers_from_notification(document, "merchantId")
    assert offers_from_notification(document["Payload"], "merchantId") == expected
    assert offers_from_notification(body, "merchantId") == expected
    # The docs example's trigger names the Collectible condition; feedback and handling come through.
    assert {o.condition for o in expected} == {"collectible"}
    assert (expected[0].feedback_rating, expected[0].feedback_count, expected[0].handling_hours_max) == (
        92.0,
        78786,
        48,
    )
    assert expected[0].ships_from is None  # Amazon sent an empty country


def test_our_two_offers_in_a_notification_are_both_ours() -> None:
    # Code-recipe example: the seller has an FBA offer (Buy Box, 29.99) and an FBM one (24.99 + 4.99).
    offers = offers_from_notification(notification("aoc-05"), "A3SELLER123")
    assert [(o.fulfillment, o.is_buy_box_winner, o.is_ours) for o in offers] == [
        ("FBA", True, True),
        ("FBM", False, True),
    ]
    d = run(offers, the_listing=listing(current_price=D("29.99"), fulfillment="FBA"))
    assert (d.action, d.reason) == ("hold", "own_buy_box")


def test_notification_in_another_currency_is_ignored_by_a_usd_listing() -> None:
    # Pricing-readme example: EUR offers on the US marketplace. A USD listing ignores them.
    offers = offers_from_notification(notification("aoc-04"), "ABCDEF12345678")
    assert {o.currency for o in offers} == {"EUR"} and [o.is_ours for o in offers] == [False, True]
    d = run(offers, the_listing=listing())
    assert (d.action, d.reason) == ("hold", "no_competitors")
    assert "currency" in [s.code for s in d.trace]
    # A EUR listing competes: Buy Box 15.00 + 5.00 = 20.00; beat by a cent, less our 4.00 shipping → 15.99.
    eur = listing(currency="EUR", current_price=D("18.00"), our_shipping=D("4.00"))
    assert run(offers, the_listing=eur).new_price == D("15.99")


def test_deployment_test_message() -> None:
    (only,) = offers_from_notification(notification("aoc-03"), "AMY6FKRUBY7XV")
    assert (only.is_ours, only.condition, only.ships_from, only.landed) == (True, "new", "US", D("21.00"))


def test_notification_without_offers() -> None:
    assert (
        offers_from_notification({"Payload": {"AnyOfferChangedNotification": {"SellerId": "A"}}}, "A") == []
    )
    with pytest.raises(OfferFormatError):
        offers_from_notification({"Payload": {"AnyOfferChangedNotification": {"Offers": {}}}}, "A")


def test_json_number_prices_read_as_whole_minor_units() -> None:
    """Amazon sends 18.5 for 18.50 (a JSON number): the trace must say 18.50, and yen have no decimals."""
    item = {
        "SellerId": "A2COMP",
        "ListingPrice": {"Amount": 18.5, "CurrencyCode": "USD"},
        "Shipping": {"Amount": 0, "CurrencyCode": "USD"},
        "IsFulfilledByAmazon": True,
        "IsBuyBoxWinner": True,
    }
    yen = {**item, "ListingPrice": {"Amount": 1980.0, "CurrencyCode": "JPY"}}
    (offer,) = offers_from_pricing([item], "A1OURS")
    assert str(offer.price) == "18.50" and str(offer.shipping) == "0.00"
    (offer,) = offers_from_pricing([yen], "A1OURS")
    assert str(offer.price) == "1980"
