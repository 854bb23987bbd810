"""The simulator's marketplace model, without HTTP: Buy Box, competitor strategies, buyers, fees,
delayed listing changes, throttling, determinism."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from amazon.simulator.market import DEFAULT_START, US, Listing, Market, Offer, Product

D = Decimal
SELLER = "A1OURSELLER001"


def small_market(demand: float = 0.0, **kwargs) -> Market:
    market = Market(seed=1, **kwargs)
    market.add_seller(SELLER, "Our Store", [US])
    market.add_product(
        Product(
            asin="B0TEST0001",
            title="Test Kettle",
            category="Home & Kitchen",
            size_tier="large_standard",
            list_price=D("20.00"),
            demand_per_hour=demand,
            sales_rank=1000,
        )
    )
    return market


def competitor(seller_id: str, price: str, **kwargs) -> Offer:
    defaults = {
        "asin": "B0TEST0001",
        "marketplace_id": US,
        "condition": "New",
        "sub_condition": "new",
        "shipping": D("0.00"),
        "fulfillment": "Amazon",
        "feedback_rating": 98,
        "feedback_count": 5000,
        "handling_hours": (0, 0),
        "quantity": 50,
    }
    defaults.update(kwargs)
    return Offer(seller_id=seller_id, price=D(price), **defaults)


def our_listing(price: str = "20.00", quantity: int = 10, channel: str = "DEFAULT") -> Listing:
    return Listing(
        seller_id=SELLER,
        sku="OUR-SKU-1",
        asin="B0TEST0001",
        marketplace_id=US,
        price=D(price),
        quantity=quantity,
        fulfillment_channel=channel,
        condition_type="new_new",
        item_name="Test Kettle",
        product_type="HOME",
        created=DEFAULT_START - timedelta(days=10),
        updated=DEFAULT_START - timedelta(days=1),
    )


# ------------------------------------------------------------------ Buy Box


def test_buybox_prefers_fba_at_a_small_premium_but_not_a_large_one():
    market = small_market()
    market.add_competitor(competitor("AFBA", "20.00"))
    market.add_competitor(competitor("AFBM", "19.50", fulfillment="Merchant", handling_hours=(24, 48)))
    assert market.buybox_winner(US, "B0TEST0001").seller_id == "AFBA"
    market.competitors[(US, "B0TEST0001")][1].price = D("17.00")
    assert market.buybox_winner(US, "B0TEST0001").seller_id == "AFBM"


def test_buybox_counts_landed_price_feedback_and_ignores_used_and_out_of_stock_offers():
    market = small_market()
    market.add_competitor(competitor("ASHIP", "15.00", shipping=D("6.00"), fulfillment="Merchant"))
    market.add_competitor(competitor("APOOR", "19.00", feedback_rating=70, fulfillment="Merchant"))
    market.add_competitor(competitor("AUSED", "5.00", condition="Used", sub_condition="good"))
    market.add_competitor(competitor("AEMPTY", "1.00", quantity=0))
    market.add_competitor(competitor("AGOOD", "20.50"))
    # ASHIP lands at 21.00 FBM; APOOR is ineligible (feedback); used and empty offers never win
    assert market.buybox_winner(US, "B0TEST0001").seller_id == "AGOOD"
    assert [o.seller_id for o in market.offers(US, "B0TEST0001")] == ["AUSED", "APOOR", "AGOOD", "ASHIP"]


def test_our_listing_competes_and_wins_when_cheapest():
    market = small_market()
    market.add_competitor(competitor("AFBA", "20.00"))
    market.add_listing(our_listing("18.00", channel="AMAZON_NA"))
    winner = market.buybox_winner(US, "B0TEST0001")
    assert (winner.seller_id, winner.sku) == (SELLER, "OUR-SKU-1")


# ------------------------------------------------------------------ competitor strategies


def test_strategies_react_when_the_clock_advances():
    market = small_market()
    static = market.add_competitor(competitor("ASTATIC", "21.00", strategy="static", reprice_every=600))
    undercut = market.add_competitor(
        competitor("AUNDER", "25.00", strategy="undercut", reprice_every=600, floor=D("15.00"))
    )
    market.add_listing(our_listing("19.99", channel="AMAZON_NA"))
    market.clock.advance(599)
    assert undercut.price == D("25.00")  # not yet its turn
    market.clock.advance(1)
    assert undercut.price == D("19.98")  # one cent under the lowest landed price
    assert static.price == D("21.00")
    # our price drops below its floor: it stops at the floor
    market.listing(SELLER, "OUR-SKU-1").price = D("10.00")
    market.clock.advance(600)
    assert undercut.price == D("15.00")


def test_follow_buybox_matches_the_winner_and_random_walk_stays_in_bounds():
    market = small_market()
    market.add_competitor(competitor("AWINNER", "18.00"))
    follower = market.add_competitor(
        competitor(
            "AFOLLOW",
            "22.00",
            strategy="follow_buybox",
            reprice_every=600,
            shipping=D("2.00"),
            fulfillment="Merchant",
        )
    )
    walker = market.add_competitor(
        competitor(
            "AWALK", "20.00", strategy="random_walk", reprice_every=600, floor=D("19.00"), ceiling=D("21.00")
        )
    )
    prices = set()
    for _ in range(30):
        market.clock.advance(600)
        prices.add(walker.price)
        assert D("19.00") <= walker.price <= D("21.00")
    assert follower.price == D("16.00")  # landed 18.00 = the Buy Box's landed price
    assert len(prices) > 3


# ------------------------------------------------------------------ buyers, stock, fees


def test_buyers_buy_from_the_winner_until_stock_runs_out_then_the_buybox_moves():
    market = small_market(demand=6.0)
    market.add_competitor(competitor("AOTHER", "21.00", quantity=1000))
    market.add_listing(our_listing("19.00", quantity=5, channel="AMAZON_NA"))
    market.clock.advance(24 * 3600)
    li = market.listing(SELLER, "OUR-SKU-1")
    assert li.quantity == 0
    assert li.status == ["DISCOVERABLE"]
    ours = [s for s in market.sales if s.seller_id == SELLER]
    assert sum(s.quantity for s in ours) == 5
    assert any(s.seller_id == "AOTHER" for s in market.sales)
    assert market.buybox_winner(US, "B0TEST0001").seller_id == "AOTHER"
    sale = ours[0]
    assert sale.referral_fee == D("2.85") * sale.quantity  # 15% of 19.00
    assert sale.fba_fee == D("4.75") * sale.quantity  # large standard
    assert all(isinstance(s.item_price, Decimal) for s in market.sales)


def test_no_buyers_without_demand_and_price_elasticity():
    quiet = small_market(demand=0.0)
    quiet.add_listing(our_listing())
    quiet.clock.advance(48 * 3600)
    assert quiet.sales == []

    def sold_at(price: str) -> int:
        market = small_market(demand=3.0)
        market.add_listing(our_listing(price, quantity=100_000))
        market.clock.advance(72 * 3600)
        return sum(s.quantity for s in market.sales)

    assert sold_at("15.00") > sold_at("30.00")


def test_fees_referral_minimum_and_fba_tier():
    market = small_market()
    fees = market.fees(US, "B0TEST0001", D("20.00"), fba=True)
    assert (fees.referral, fees.fba, fees.total) == (D("3.00"), D("4.75"), D("7.75"))
    assert market.fees(US, "B0TEST0001", D("1.00"), fba=False).referral == D("0.30")
    assert market.fees(US, "B0TEST0001", D("1.00"), fba=False).fba == D("0.00")


# ------------------------------------------------------------------ listing changes


def _price_patch(price: str) -> dict:
    return {
        "productType": "HOME",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/purchasable_offer",
                "value": [
                    {
                        "marketplace_id": US,
                        "currency": "USD",
                        "our_price": [{"schedule": [{"value_with_tax": price}]}],
                    }
                ],
            }
        ],
    }


def test_price_change_is_accepted_at_once_and_applies_after_the_delay():
    market = small_market(patch_delay_seconds=600)
    market.add_listing(our_listing("20.00"))
    result = market.submit_patch(SELLER, "OUR-SKU-1", [US], _price_patch("18.49"))
    assert result["status"] == "ACCEPTED"
    market.clock.advance(599)
    assert market.listing(SELLER, "OUR-SKU-1").price == D("20.00")
    market.clock.advance(1)
    assert market.listing(SELLER, "OUR-SKU-1").price == D("18.49")
    assert market.pending[result["submissionId"]].state == "APPLIED"


def test_accepted_change_can_be_rejected_later_with_an_issue():
    market = small_market(patch_delay_seconds=60)
    market.add_listing(our_listing("20.00"))
    result = market.submit_patch(SELLER, "OUR-SKU-1", [US], _price_patch("1.00"))  # far below the reference
    assert result["status"] == "ACCEPTED"
    market.clock.advance(60)
    li = market.listing(SELLER, "OUR-SKU-1")
    assert li.price == D("20.00")
    assert li.issues[0]["categories"] == ["INVALID_PRICE"]
    assert "BUYABLE" not in li.status
    # a test can force the next rejection too
    market.reject_next_patch(SELLER, "OUR-SKU-1", "Brand approval required.")
    assert market.submit_patch(SELLER, "OUR-SKU-1", [US], _price_patch("19.00"))["status"] == "ACCEPTED"
    market.clock.advance(60)
    assert li.price == D("20.00")
    assert li.issues[-1]["message"] == "Brand approval required."


def test_invalid_patches_are_refused_with_issues():
    market = small_market()
    market.add_listing(our_listing(channel="AMAZON_NA"))
    bad_price = market.submit_patch(SELLER, "OUR-SKU-1", [US], _price_patch("-1"))
    assert bad_price["status"] == "INVALID"
    fba_quantity = market.submit_patch(
        SELLER,
        "OUR-SKU-1",
        [US],
        {
            "productType": "HOME",
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
                }
            ],
        },
    )
    assert fba_quantity["status"] == "INVALID"
    unknown = market.submit_patch(
        SELLER,
        "OUR-SKU-1",
        [US],
        {"productType": "HOME", "patches": [{"op": "replace", "path": "/attributes/color", "value": [{}]}]},
    )
    assert unknown["status"] == "INVALID"
    assert market.pending == {}


# ------------------------------------------------------------------ throttling, determinism


def test_token_bucket_on_the_simulated_clock():
    market = small_market()
    assert market.take_token(SELLER, "app", "getItemOffers")  # burst 1
    assert not market.take_token(SELLER, "app", "getItemOffers")
    assert market.take_token(SELLER, "other-app", "getItemOffers")  # per (seller, application)
    market.clock.advance(1.9)
    assert not market.take_token(SELLER, "app", "getItemOffers")  # 0.5/s: needs 2 s
    market.clock.advance(0.1)
    assert market.take_token(SELLER, "app", "getItemOffers")
    assert market.stats.throttled["getItemOffers"] == 2
    burst = [market.take_token(SELLER, "app", "getListingsItem") for _ in range(11)]
    assert burst == [True] * 10 + [False]


def test_throttling_can_be_switched_off_and_clock_mode_validated():
    market = small_market(throttling=False)
    assert all(market.take_token(SELLER, "app", "getItemOffersBatch") for _ in range(5))
    with pytest.raises(ValueError):
        Market(throttle_clock="sundial")


def test_same_seed_same_market_after_the_same_steps():
    def run(seed: int) -> dict:
        market = Market.demo(seed=seed, skus=30)
        for step in (600, 3600, 7200, 86400):
            market.clock.advance(step)
        return market.snapshot()

    first, second = run(11), run(11)
    assert first == second
    assert first["sales"], "a day of trading sells something"
    assert run(12) != first


def test_demo_catalogue():
    market = Market.demo(seed=7, skus=200)
    listings = market.seller_listings("A3SIMDEMOSELL1", US)
    assert len(listings) == 200
    assert {li.fulfillment_channel for li in listings} == {"AMAZON_NA", "DEFAULT"}
    assert all(2 <= len(market.competitors[(US, li.asin)]) <= 8 for li in listings)
    assert {o.strategy for offers in market.competitors.values() for o in offers} == {
        "static",
        "undercut",
        "follow_buybox",
        "random_walk",
    }
    assert {"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P", "A1PA6795UKMFR9"} <= set(
        market.sellers["A3SIMDEMOSELL1"].marketplace_ids
    )


def test_a_restarted_simulator_never_reuses_notification_ids() -> None:
    """make run restarts the simulator with the same seed: our intake would drop repeated ids as replays."""
    from amazon.simulator.market import DEMO_SELLER_ID

    ids, prices = [], []
    for _ in range(2):
        market = Market.demo(seed=7, skus=5)
        market.subscribe("http://127.0.0.1:9/unreachable")
        asin = market.seller_listings(DEMO_SELLER_ID, US)[0].asin
        moved = market.competitor_move(US, asin, Decimal("0.97"))
        assert moved is not None
        prices.append(moved.price)
        ids.append(market.pending_notifications[-1]["NotificationMetadata"]["NotificationId"])
    assert ids[0] != ids[1]
    assert prices[0] == prices[1]  # the seeded market itself behaves the same
