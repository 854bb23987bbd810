"""The real python-amazon-sp-api client, configured as in production (LWA app id/secret + refresh
token), pointed at the simulator, through a whole read -> reprice -> verify cycle.

How it is pointed at the simulator:
* LWA: ``sp_api.auth.AccessTokenClient`` builds its URL from the class attributes ``scheme``, ``host``
  and ``path``; a subclass with the simulator's values goes in as ``auth_token_client_class=``. It also
  keeps its own per-instance cache here, because sp_api's module-level TTLCache would leak access tokens
  between tests (and between simulator instances).
* SP-API: there is no endpoint argument; ``client.endpoint = base_url`` after construction. sp_api then
  sends ``Host: endpoint[8:]`` (garbage for http://), which the simulator ignores.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sp_api.api import ListingsItems, Products, Sellers
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import Marketplaces
from sp_api.base.exceptions import SellingApiForbiddenException, SellingApiRequestThrottledException

from amazon.simulator.market import US


def token_client_for(lwa_url: str) -> type[AccessTokenClient]:
    parts = urlsplit(lwa_url)

    class SimulatorAccessTokenClient(AccessTokenClient):
        scheme = f"{parts.scheme}://"
        host = parts.netloc
        path = parts.path

        def get_auth(self) -> AccessTokenResponse:
            token = getattr(self, "_token", None)
            if token is None:
                token = self._token = self._request(
                    self.scheme + self.host + self.path, self.data, self.headers
                )
            return AccessTokenResponse(**token)

    return SimulatorAccessTokenClient


def client(cls, simulator, **kwargs):
    api = cls(
        marketplace=Marketplaces.US,
        credentials=simulator.credentials,
        auth_token_client_class=token_client_for(simulator.lwa_url),
        **kwargs,
    )
    api.endpoint = simulator.base_url
    return api


def test_marketplace_participations(simulator):
    response = client(Sellers, simulator).get_marketplace_participation()
    ids = [p["marketplace"]["id"] for p in response.payload]
    assert ids[0] == US
    assert "A1PA6795UKMFR9" in ids
    assert response.rate_limit == "0.016"
    assert simulator.market.stats.token_grants == 1


def test_search_get_patch_and_see_the_price_take_effect_later(simulator):
    market, seller = simulator.market, simulator.seller_id
    listings = client(ListingsItems, simulator)

    page = listings.search_listings_items(sellerId=seller, includedData=["summaries", "offers"], pageSize=20)
    assert page.payload["numberOfResults"] == 40
    assert len(page.payload["items"]) == 20
    assert page.next_token
    rest = listings.search_listings_items(sellerId=seller, pageSize=20, pageToken=page.next_token)
    skus = [i["sku"] for i in page.payload["items"]] + [i["sku"] for i in rest.payload["items"]]
    assert len(set(skus)) == 40
    assert "pagination" not in rest.payload or "nextToken" not in rest.payload["pagination"]

    sku = next(i["sku"] for i in page.payload["items"] if "BUYABLE" in i["summaries"][0]["status"])
    item = listings.get_listings_item(
        sellerId=seller,
        sku=sku,
        includedData=["summaries", "attributes", "offers", "fulfillmentAvailability", "issues"],
    ).payload
    old_price = Decimal(item["offers"][0]["price"]["amount"])
    new_price = old_price - Decimal("0.50")
    product_type = item["summaries"][0]["productType"]

    submission = listings.patch_listings_item(
        sellerId=seller,
        sku=sku,
        body={
            "productType": product_type,
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/purchasable_offer",
                    "value": [
                        {
                            "marketplace_id": US,
                            "currency": "USD",
                            "our_price": [{"schedule": [{"value_with_tax": float(new_price)}]}],
                        }
                    ],
                }
            ],
        },
    ).payload
    assert submission["status"] == "ACCEPTED"
    assert submission["submissionId"]

    def current() -> Decimal:
        got = listings.get_listings_item(sellerId=seller, sku=sku, includedData=["offers"]).payload
        return Decimal(got["offers"][0]["price"]["amount"])

    assert current() == old_price  # accepted, not yet applied
    market.clock.advance(market.patch_delay_seconds)
    assert current() == new_price


def test_item_offers_single_and_batch_with_throttling(simulator):
    market = simulator.market
    products = client(Products, simulator)
    li = next(li for li in market.seller_listings(simulator.seller_id, US) if "BUYABLE" in li.status)

    offers = products.get_item_offers(li.asin, "New").payload
    assert offers["ASIN"] == li.asin
    assert offers["Summary"]["TotalOfferCount"] >= 1
    assert any(o.get("MyOffer") for o in offers["Offers"])

    with pytest.raises(SellingApiRequestThrottledException) as throttled:
        products.get_item_offers(li.asin, "New")  # 0.5 requests/second, burst 1
    assert throttled.value.code == 429
    assert throttled.value.error[0]["code"] == "QuotaExceeded"
    market.clock.advance(2)
    products.get_item_offers(li.asin, "New")

    asins = [x.asin for x in market.seller_listings(simulator.seller_id, US)[:20]]
    batch = products.get_item_offers_batch(
        requests_=[
            {
                "uri": f"/products/pricing/v0/items/{a}/offers",
                "method": "GET",
                "MarketplaceId": US,
                "ItemCondition": "New",
            }
            for a in asins
        ]
    ).payload
    assert [r["request"]["Asin"] for r in batch["responses"]] == asins
    assert {r["status"]["statusCode"] for r in batch["responses"]} == {200}

    skus = [x.sku for x in market.seller_listings(simulator.seller_id, US)[:5]]
    listing_batch = products.get_listing_offers_batch(
        requests_=[
            {
                "uri": f"/products/pricing/v0/listings/{s}/offers",
                "method": "GET",
                "MarketplaceId": US,
                "ItemCondition": "New",
            }
            for s in skus
        ]
    ).payload
    assert [r["body"]["payload"]["SKU"] for r in listing_batch["responses"]] == skus


def test_expired_access_token_and_revoked_refresh_token_surface_as_sp_api_errors(simulator):
    sellers = client(Sellers, simulator)
    sellers.get_marketplace_participation()
    simulator.market.clock.advance(3601)
    with pytest.raises(SellingApiForbiddenException) as forbidden:
        sellers.get_marketplace_participation()  # sp_api's cache still hands out the expired token
    assert forbidden.value.error[0]["code"] == "Unauthorized"

    simulator.market.revoke_refresh_token(simulator.credentials["refresh_token"])
    with pytest.raises(AuthorizationError) as denied:
        client(Sellers, simulator).get_marketplace_participation()
    assert denied.value.status_code == 400
    assert denied.value.error_code == "invalid_grant"


def test_forced_faults(simulator):
    sellers = client(Sellers, simulator)
    simulator.market.fail_next("getMarketplaceParticipations", 2, status=500)
    for _ in range(2):
        with pytest.raises(Exception) as failed:
            sellers.get_marketplace_participation()
        assert failed.value.code == 500
    assert sellers.get_marketplace_participation().payload
