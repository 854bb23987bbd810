"""The client factory against the simulator: the real sp_api client with our token cache, limiter and
retries; typed errors for what cannot be retried."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from sp_api.api import ListingsItems, Sellers

from amazon import ratelimit, tokens
from amazon.clients import (
    AmazonAuthError,
    AmazonRequestError,
    AmazonThrottled,
    AmazonUnavailable,
    RetryPolicy,
    operation_name,
    sp_api_client,
)
from amazon.models import SellerConnection
from amazon.simulator.market import US
from amazon.tests.factories import make_connection
from tests.factories import make_tenant

FAST = RetryPolicy(budget_seconds=5, max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def sim(simulator: Any) -> Any:
    with override_settings(LWA_TOKEN_URL=simulator.lwa_url, SP_API_ENDPOINT=simulator.base_url):
        yield simulator


@pytest.fixture
def conn(db: None, sim: Any) -> SellerConnection:
    creds = sim.credentials
    return make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
    )


def test_operation_names() -> None:
    assert operation_name("get_item_offers") == "getItemOffers"
    assert operation_name("search_listings_items") == "searchListingsItems"
    assert operation_name("get_marketplace_participation") == "getMarketplaceParticipations"


def test_a_call_goes_through_token_cache_and_limiter(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(Sellers, conn, US, policy=FAST)
    response = client.get_marketplace_participation()
    assert response.payload[0]["marketplace"]["id"] == US
    client.get_marketplace_participation()
    assert sim.market.stats.token_grants == 1
    quota = {q.operation: q for q in ratelimit.quota_state(conn).operations}
    assert 12.9 < quota["getMarketplaceParticipations"].tokens <= 13.01  # burst 15, two taken
    assert quota["getMarketplaceParticipations"].rate == 0.016  # from x-amzn-RateLimit-Limit


def test_429s_and_503s_are_retried_and_counted(sim: Any, conn: SellerConnection) -> None:
    sim.market.fail_next("getListingsItem", 2, 429)
    sim.market.fail_next("getListingsItem", 1, 503)
    client = sp_api_client(ListingsItems, conn, US, policy=FAST)
    sku = client.search_listings_items(sellerId=sim.seller_id, pageSize=1).payload["items"][0]["sku"]
    item = client.get_listings_item(sellerId=sim.seller_id, sku=sku)
    assert item.payload["sku"] == sku
    assert sim.market.stats.faults["getListingsItem"] == 3
    assert ratelimit.quota_state(conn).throttled_recently == 2


def test_retries_stop_at_the_budget_with_a_typed_error(sim: Any, conn: SellerConnection) -> None:
    sim.market.fail_next("getMarketplaceParticipations", 10, 500)
    client = sp_api_client(Sellers, conn, US, policy=FAST)
    with pytest.raises(AmazonUnavailable) as caught:
        client.get_marketplace_participation()
    assert caught.value.status == 500
    assert sim.market.stats.faults["getMarketplaceParticipations"] == FAST.max_attempts
    sim.market.fail_next("getListingsItem", 10, 429)
    with pytest.raises(AmazonThrottled):
        sp_api_client(ListingsItems, conn, US, policy=FAST).get_listings_item(sellerId=sim.seller_id, sku="x")


def test_our_bucket_refuses_before_amazon_does(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(Sellers, conn, US, policy=RetryPolicy(budget_seconds=0.5, max_attempts=3))
    for _ in range(15):  # the burst
        client.get_marketplace_participation()
    calls = sim.market.stats.calls["getMarketplaceParticipations"]
    with pytest.raises(AmazonThrottled):
        client.get_marketplace_participation()  # next token in ~60 s: refused here, not sent
    assert sim.market.stats.calls["getMarketplaceParticipations"] == calls
    assert sim.market.stats.throttled["getMarketplaceParticipations"] == 0


def test_an_expired_access_token_is_replaced_once(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(Sellers, conn, US, policy=FAST)
    client.get_marketplace_participation()
    sim.market.clock.advance(3700)  # Amazon's token expired, ours is still cached
    client.get_marketplace_participation()
    assert sim.market.stats.token_grants == 2


def test_a_refused_request_is_not_retried(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(ListingsItems, conn, US, policy=FAST)
    with pytest.raises(AmazonRequestError) as caught:
        client.get_listings_item(sellerId=sim.seller_id, sku="NO-SUCH-SKU")
    assert caught.value.status in (400, 404)


def test_access_denied_after_a_fresh_token_is_typed(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(ListingsItems, conn, US, policy=FAST)
    with pytest.raises(AmazonAuthError):
        client.get_listings_item(sellerId="ANOTHERSELLER", sku="x")  # not this seller's listings
    assert sim.market.stats.token_grants == 2  # retried once with a fresh token


def test_the_marketplace_must_be_in_the_connections_region(conn: SellerConnection) -> None:
    with pytest.raises(ValueError):
        sp_api_client(Sellers, conn, "A1PA6795UKMFR9")  # Germany, EU


def test_no_secret_reaches_the_sp_api_client(conn: SellerConnection) -> None:
    client = sp_api_client(Sellers, conn, US)
    cred = client.api._auth.cred
    text = repr(vars(client.api)) + repr(vars(client.api._auth)) + repr(vars(cred))
    for field in ("refresh_token", "lwa_client_secret", "lwa_client_id"):
        secret = conn.get_secret(field)
        assert secret and secret not in text
    assert cred.client_id == cred.client_secret == tokens.SP_API_PLACEHOLDER_CREDENTIALS["lwa_app_id"]


def test_a_write_that_may_have_arrived_is_not_sent_twice(sim: Any, conn: SellerConnection) -> None:
    client = sp_api_client(ListingsItems, conn, US, policy=FAST)
    sku = client.search_listings_items(sellerId=sim.seller_id, pageSize=1).payload["items"][0]["sku"]
    patch = [{"op": "replace", "path": "/attributes/fulfillment_availability", "value": []}]
    sim.market.fail_next("patchListingsItem", 1, 500)
    with pytest.raises(AmazonUnavailable):
        client.patch_listings_item(
            sellerId=sim.seller_id, sku=sku, body={"productType": "PRODUCT", "patches": patch}
        )
    assert sim.market.stats.faults["patchListingsItem"] == 1
    assert sim.market.stats.calls["patchListingsItem"] <= 1
    # A 429 never reached the listing: that one is retried.
    sim.market.fail_next("patchListingsItem", 1, 429)
    response = client.patch_listings_item(
        sellerId=sim.seller_id, sku=sku, body={"productType": "PRODUCT", "patches": patch}
    )
    assert response.payload["sku"] == sku  # answered (Amazon's verdict on the patch is its own)
    assert sim.market.stats.faults["patchListingsItem"] == 2
