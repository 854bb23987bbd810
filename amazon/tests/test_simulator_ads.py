"""The simulator's Ads API driven by the real python-amazon-ad-api client (configured as in production,
pointed at the simulator): profiles, Sponsored Products v3 list/create/edit with multi-status answers and
vendor media types, auctions where the bid moves impressions and clicks, budget caps, async reports.

No official Ads models exist in ../shared, so the documented shapes are asserted here."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests
from ad_api.api import Profiles, Reports
from ad_api.api.sp import AdGroupsV3, CampaignsV3, KeywordsV3, ProductAdsV3, TargetsV3
from ad_api.auth import AccessTokenClient, AccessTokenResponse
from ad_api.base import Client, Marketplaces
from ad_api.base.exceptions import AdvertisingApiException

from amazon.simulator import Market
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket, ads_for
from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SELLER_ID, US, money
from amazon.simulator.testing import TEST_SEED, TEST_SKUS, RunningSimulator, start_simulator

DAY = 86400
C = TypeVar("C", bound=Client)


class SimulatorAdsTokenClient(AccessTokenClient):
    """ad_api's LWA client aimed at the simulator's token endpoint, caching on the instance only
    (ad_api's module-level cache is keyed by refresh token and would outlive a simulator)."""

    def __init__(self, lwa_url: str, credentials: dict[str, str]) -> None:
        super().__init__(credentials=credentials)
        self.lwa_url = lwa_url
        self._token: dict[str, Any] | None = None

    def get_auth(self) -> AccessTokenResponse:
        if self._token is None:
            self._token = self._request(self.lwa_url, self.data, self.headers)
        return AccessTokenResponse(**self._token)


def ads_client(
    api_class: type[C],
    sim: RunningSimulator,
    profile_id: int | None = None,
    *,
    refresh_token: str = DEMO_ADS_REFRESH_TOKEN,
) -> C:
    """How production builds an ad_api client, except for the endpoint and the token source."""
    credentials = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
    if profile_id is not None:
        credentials["profile_id"] = str(profile_id)
    client = api_class(
        credentials=credentials,
        marketplace=Marketplaces.NA,
        verify_additional_credentials=profile_id is not None,
    )
    client.credentials = credentials  # ad_api prefers AD_API_* environment variables when set
    client._auth = SimulatorAdsTokenClient(sim.lwa_url, credentials)
    client.endpoint = sim.base_url  # ad_api has no endpoint argument (Marketplaces.NA -> Amazon)
    return client


def _profile_id(sim: RunningSimulator) -> int:
    return AdsMarket.profile_id_for(DEMO_SELLER_ID, US)


def _hero_listing(market: Market) -> Any:
    """Our best-selling US listing, made to hold the Buy Box for the whole test (competitors frozen,
    plenty of stock) so the auctions are about the bid alone."""
    listings = sorted(
        market.seller_listings(DEMO_SELLER_ID, US),
        key=lambda li: (-market.products[(US, li.asin)].demand_per_hour, li.sku),
    )
    li = listings[0]
    with market.lock:
        product = market.products[(US, li.asin)]
        for offer in market.competitors[(US, li.asin)]:
            offer.strategy = "static"
            offer.price = max(offer.price, money(product.list_price * Decimal("1.2")))
        li.price = money(product.list_price * Decimal("0.95"))
        li.quantity = 100_000
        li.issues = []
    winner = market.buybox_winner(US, li.asin)
    assert winner is not None and winner.sku == li.sku
    return li


def _campaign(
    sim: RunningSimulator, *, bid: str = "1.00", budget: float = 500.0, name: str = "Hero exact"
) -> dict[str, str]:
    """Campaign -> ad group -> product ad -> EXACT keyword through the real client; returns the ids."""
    pid = _profile_id(sim)
    li = _hero_listing(sim.market)
    campaigns = ads_client(CampaignsV3, sim, pid).create_campaigns(
        body={
            "campaigns": [
                {
                    "name": name,
                    "targetingType": "MANUAL",
                    "state": "ENABLED",
                    "budget": {"budgetType": "DAILY", "budget": budget},
                }
            ]
        }
    )
    campaign_id = campaigns.payload["campaigns"]["success"][0]["campaignId"]
    groups = ads_client(AdGroupsV3, sim, pid).create_ad_groups(
        body={
            "adGroups": [{"campaignId": campaign_id, "name": "Hero", "state": "ENABLED", "defaultBid": 0.75}]
        }
    )
    ad_group_id = groups.payload["adGroups"]["success"][0]["adGroupId"]
    ads = ads_client(ProductAdsV3, sim, pid).create_product_ads(
        body={
            "productAds": [
                {"campaignId": campaign_id, "adGroupId": ad_group_id, "state": "ENABLED", "sku": li.sku}
            ]
        }
    )
    assert ads.payload["productAds"]["success"][0]["index"] == 0
    keywords = ads_client(KeywordsV3, sim, pid).create_keyword(
        body={
            "keywords": [
                {
                    "campaignId": campaign_id,
                    "adGroupId": ad_group_id,
                    "state": "ENABLED",
                    "keywordText": "premium chef knife",
                    "matchType": "EXACT",
                    "bid": float(bid),
                }
            ]
        }
    )
    keyword_id = keywords.payload["keywords"]["success"][0]["keywordId"]
    return {"campaignId": campaign_id, "adGroupId": ad_group_id, "keywordId": keyword_id, "sku": li.sku}


@pytest.fixture
def second_simulator() -> Iterator[RunningSimulator]:
    running = start_simulator(Market.demo(seed=TEST_SEED, skus=TEST_SKUS))
    try:
        yield running
    finally:
        running.server.stop()


# --- profiles, tokens, headers ----------------------------------------------------------------------


def test_profiles_with_the_ads_refresh_token(simulator: RunningSimulator) -> None:
    answer = ads_client(Profiles, simulator).list_profiles()
    profiles = answer.payload
    assert [p["accountInfo"]["marketplaceStringId"] for p in profiles] == list(
        simulator.market.sellers[DEMO_SELLER_ID].marketplace_ids
    )
    us = profiles[0]
    assert us["profileId"] == _profile_id(simulator) and isinstance(us["profileId"], int)
    assert us["countryCode"] == "US" and us["currencyCode"] == "USD"
    assert us["timezone"] == "America/Los_Angeles"
    assert us["accountInfo"]["type"] == "seller" and us["accountInfo"]["id"] == DEMO_SELLER_ID
    # The LWA grant went through the same token endpoint, with the Ads refresh token.
    assert simulator.market.stats.token_grants_by_type["refresh_token"] == 1


def test_an_sp_api_token_is_not_an_ads_token(simulator: RunningSimulator) -> None:
    client = ads_client(Profiles, simulator, refresh_token=simulator.credentials["refresh_token"])
    with pytest.raises(AdvertisingApiException) as caught:
        client.list_profiles()
    assert caught.value.code == 401 and caught.value.amzn_code == "UNAUTHORIZED"


def test_scope_and_client_id_are_checked(simulator: RunningSimulator) -> None:
    with pytest.raises(AdvertisingApiException) as caught:
        ads_client(CampaignsV3, simulator, 1234567).list_campaigns(body={})
    assert caught.value.code == 401 and "scope 1234567" in caught.value.message
    client = ads_client(CampaignsV3, simulator, _profile_id(simulator))
    token = client.auth.access_token
    base = {"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.spCampaign.v3+json"}
    url = simulator.base_url + "/sp/campaigns/list"
    no_scope = requests.post(
        url, headers={**base, "Amazon-Advertising-API-ClientId": DEMO_CLIENT_ID}, timeout=5
    )
    assert no_scope.status_code == 400 and "Scope" in no_scope.json()["details"]
    scope = {"Amazon-Advertising-API-Scope": str(_profile_id(simulator))}
    wrong_client = requests.post(
        url, headers={**base, **scope, "Amazon-Advertising-API-ClientId": "amzn1.other"}, timeout=5
    )
    assert wrong_client.status_code == 401
    plain_json = requests.post(
        url,
        headers={
            **base,
            **scope,
            "Amazon-Advertising-API-ClientId": DEMO_CLIENT_ID,
            "Content-Type": "application/json",
        },
        timeout=5,
    )
    assert plain_json.status_code == 415 and plain_json.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_the_wire_format_ad_api_sends(simulator: RunningSimulator) -> None:
    _campaign(simulator)
    ads_client(KeywordsV3, simulator, _profile_id(simulator)).list_keywords(body={})
    log = {entry.operation: entry for entry in simulator.app.ads.log}
    create = log["createSponsoredProductsCampaigns"]
    assert create.method == "POST" and create.path == "/sp/campaigns" and create.status == 207
    assert create.headers["Content-Type"] == "application/vnd.spCampaign.v3+json"
    assert create.headers["Accept"] == "application/vnd.spCampaign.v3+json"
    assert create.headers["Amazon-Advertising-Api-Scope"] == str(_profile_id(simulator))
    assert create.headers["Amazon-Advertising-Api-Clientid"] == DEMO_CLIENT_ID
    assert create.headers["Authorization"] == "Bearer ***"  # the log never keeps the token
    assert create.body == {
        "campaigns": [
            {
                "name": "Hero exact",
                "targetingType": "MANUAL",
                "state": "ENABLED",
                "budget": {"budgetType": "DAILY", "budget": Decimal("500.0")},
            }
        ]
    }
    expected_media = {
        "createSponsoredProductsAdGroups": "application/vnd.spAdGroup.v3+json",
        "createSponsoredProductsProductAds": "application/vnd.spProductAd.v3+json",
        "createSponsoredProductsKeywords": "application/vnd.spKeyword.v3+json",
        "listSponsoredProductsKeywords": "application/vnd.spKeyword.v3+json",
    }
    for operation, media in expected_media.items():
        assert log[operation].headers["Content-Type"] == media
        assert log[operation].content_type == media  # answered with the same media type


# --- Sponsored Products v3 entities -----------------------------------------------------------------


def test_multi_status_create_and_edit(simulator: RunningSimulator) -> None:
    pid = _profile_id(simulator)
    campaigns = ads_client(CampaignsV3, simulator, pid)
    body = {
        "campaigns": [
            {
                "name": "A",
                "targetingType": "MANUAL",
                "state": "ENABLED",
                "budget": {"budgetType": "DAILY", "budget": 20},
            },
            {
                "name": "A",
                "targetingType": "MANUAL",
                "state": "ENABLED",
                "budget": {"budgetType": "DAILY", "budget": 20},
            },
            {"name": "B", "targetingType": "MANUAL", "state": "ENABLED"},
            {
                "name": "C",
                "targetingType": "MANUAL",
                "state": "ENABLED",
                "budget": {"budgetType": "DAILY", "budget": 0.5},
            },
        ]
    }
    answer = campaigns.create_campaigns(body=body, prefer=True).payload["campaigns"]
    assert [s["index"] for s in answer["success"]] == [0]
    created = answer["success"][0]
    assert created["campaign"]["campaignId"] == created["campaignId"]  # Prefer: return=representation
    assert created["campaign"]["budget"] == {"budgetType": "DAILY", "budget": 20.0}
    errors = {e["index"]: e["errors"][0] for e in answer["error"]}
    assert errors[1]["errorType"] == "duplicateValueError"
    assert errors[2]["errorType"] == "missingValueError"
    assert errors[2]["errorValue"]["missingValueError"]["cause"]["location"] == "$.budget"
    assert errors[3]["errorType"] == "rangeError"

    edited = campaigns.edit_campaigns(
        body={
            "campaigns": [
                {
                    "campaignId": created["campaignId"],
                    "state": "PAUSED",
                    "budget": {"budgetType": "DAILY", "budget": 35},
                },
                {"campaignId": "999", "state": "PAUSED"},
            ]
        }
    ).payload["campaigns"]
    assert [s["campaignId"] for s in edited["success"]] == [created["campaignId"]]
    assert edited["error"][0]["index"] == 1
    assert edited["error"][0]["errors"][0]["errorType"] == "entityNotFoundError"
    listed = campaigns.list_campaigns(body={"campaignIdFilter": {"include": [created["campaignId"]]}}).payload
    assert listed["totalResults"] == 1
    assert listed["campaigns"][0]["state"] == "PAUSED"
    assert listed["campaigns"][0]["budget"]["budget"] == 35.0


def test_list_filters_and_next_token(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator)
    pid = _profile_id(simulator)
    keywords = ads_client(KeywordsV3, simulator, pid)
    more = [
        {
            "campaignId": ids["campaignId"],
            "adGroupId": ids["adGroupId"],
            "state": "ENABLED" if i % 2 else "PAUSED",
            "keywordText": f"chef knife {i}",
            "matchType": "PHRASE",
            "bid": 0.5,
        }
        for i in range(7)
    ]
    answer = keywords.create_keyword(body={"keywords": more}).payload["keywords"]
    assert len(answer["success"]) == 7 and answer["error"] == []
    seen: list[str] = []
    page = keywords.list_keywords(body={"maxResults": 3, "stateFilter": {"include": ["ENABLED"]}}).payload
    total = page["totalResults"]
    while True:
        seen += [k["keywordId"] for k in page["keywords"]]
        assert all(k["state"] == "ENABLED" for k in page["keywords"])
        if "nextToken" not in page:
            break
        page = keywords.list_keywords(
            body={"maxResults": 3, "stateFilter": {"include": ["ENABLED"]}, "nextToken": page["nextToken"]}
        ).payload
    assert total == 4 and len(seen) == len(set(seen)) == 4  # 3 odd ones + the hero keyword
    exact = keywords.list_keywords(body={"matchTypeFilter": ["EXACT"]}).payload["keywords"]
    assert [k["keywordText"] for k in exact] == ["premium chef knife"]
    assert exact[0]["bid"] == 1.0 and exact[0]["adGroupId"] == ids["adGroupId"]
    broad = keywords.list_keywords(
        body={"keywordTextFilter": {"queryTermMatchType": "BROAD_MATCH", "include": ["knife 3"]}}
    ).payload["keywords"]
    assert [k["keywordText"] for k in broad] == ["chef knife 3"]
    # edit a bid, archive a keyword
    keywords.edit_keyword(body={"keywords": [{"keywordId": ids["keywordId"], "bid": 2.35}]})
    keywords.delete_keywords(body={"keywordIdFilter": {"include": [seen[-1]]}})
    extended = keywords.list_keywords(
        body={"keywordIdFilter": {"include": [ids["keywordId"], seen[-1]]}, "includeExtendedDataFields": True}
    ).payload["keywords"]
    by_id = {k["keywordId"]: k for k in extended}
    assert by_id[ids["keywordId"]]["bid"] == 2.35
    assert by_id[seen[-1]]["state"] == "ARCHIVED"
    assert by_id[seen[-1]]["extendedData"]["servingStatus"] == "KEYWORD_ARCHIVED"
    # a bad token is refused
    with pytest.raises(AdvertisingApiException):
        keywords.list_keywords(body={"nextToken": "garbage"})


def test_product_targets(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator)
    pid = _profile_id(simulator)
    other_asin = next(a for (m, a) in simulator.market.products if m == US)
    targets = ads_client(TargetsV3, simulator, pid)
    answer = targets.create_product_targets(
        body={
            "targetingClauses": [
                {
                    "campaignId": ids["campaignId"],
                    "adGroupId": ids["adGroupId"],
                    "state": "ENABLED",
                    "expression": [{"type": "ASIN_SAME_AS", "value": other_asin}],
                    "expressionType": "MANUAL",
                    "bid": 0.9,
                },
                {
                    "campaignId": ids["campaignId"],
                    "adGroupId": ids["adGroupId"],
                    "state": "ENABLED",
                    "expression": [{"type": "NOT_A_TYPE"}],
                    "expressionType": "MANUAL",
                },
            ]
        }
    ).payload["targetingClauses"]
    target_id = answer["success"][0]["targetId"]
    assert answer["error"][0]["index"] == 1
    listed = targets.list_product_targets(body={"targetIdFilter": {"include": [target_id]}}).payload
    clause = listed["targetingClauses"][0]
    assert clause["expression"] == [{"type": "ASIN_SAME_AS", "value": other_asin}]
    assert clause["bid"] == 0.9 and clause["state"] == "ENABLED"
    targets.edit_product_targets(body={"targetingClauses": [{"targetId": target_id, "state": "PAUSED"}]})
    assert (
        targets.list_product_targets(body={"stateFilter": {"include": ["PAUSED"]}}).payload["totalResults"]
        == 1
    )


def test_product_ads_need_a_listing_of_the_advertiser(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator)
    answer = (
        ads_client(ProductAdsV3, simulator, _profile_id(simulator))
        .create_product_ads(
            body={
                "productAds": [
                    {
                        "campaignId": ids["campaignId"],
                        "adGroupId": ids["adGroupId"],
                        "state": "ENABLED",
                        "sku": "NOPE",
                    }
                ]
            }
        )
        .payload["productAds"]
    )
    assert answer["success"] == [] and answer["error"][0]["errors"][0]["errorType"] == "invalidArgumentError"


# --- auctions -----------------------------------------------------------------------------------------


def test_a_higher_bid_buys_more_traffic(
    simulator: RunningSimulator, second_simulator: RunningSimulator
) -> None:
    low = _campaign(simulator, bid="0.30")
    high = _campaign(second_simulator, bid="3.00")
    for sim in (simulator, second_simulator):
        sim.market.clock.advance(2 * DAY)
    low_total = ads_for(simulator.market).totals(keyword_id=low["keywordId"])
    high_total = ads_for(second_simulator.market).totals(keyword_id=high["keywordId"])
    assert high_total.impressions > 2 * low_total.impressions > 0
    assert high_total.clicks > low_total.clicks
    assert high_total.cost > low_total.cost
    # second-price-ish: never more than the bid per click
    assert low_total.cost <= Decimal("0.30") * low_total.clicks
    assert high_total.cost <= Decimal("3.00") * high_total.clicks
    # conversions are real purchases: orders for the advertised SKU
    assert high_total.purchases > 0
    sold = [s for s in second_simulator.market.sales if s.sku == high["sku"]]
    assert sum(s.quantity for s in sold) >= high_total.units


def test_same_seed_same_auctions(simulator: RunningSimulator, second_simulator: RunningSimulator) -> None:
    a, b = _campaign(simulator), _campaign(second_simulator)
    for sim in (simulator, second_simulator):
        sim.market.clock.advance(DAY)
    assert ads_for(simulator.market).totals(keyword_id=a["keywordId"]) == ads_for(
        second_simulator.market
    ).totals(keyword_id=b["keywordId"])
    assert simulator.market.snapshot() == second_simulator.market.snapshot()


def test_the_daily_budget_caps_spend(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator, bid="4.00", budget=5.0)
    simulator.market.clock.advance(3 * DAY)
    ads = ads_for(simulator.market)
    spend = {day: cost for (campaign, day), cost in ads.spend.items() if campaign == ids["campaignId"]}
    assert spend and all(cost <= Decimal("5.00") for cost in spend.values())
    assert ads.stats.budget_capped > 0
    assert max(spend.values()) > Decimal("3.00")  # it does spend up to about the budget


def test_paused_keywords_and_lost_buy_box_serve_nothing(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator)
    ads_client(KeywordsV3, simulator, _profile_id(simulator)).edit_keyword(
        body={"keywords": [{"keywordId": ids["keywordId"], "state": "PAUSED"}]}
    )
    simulator.market.clock.advance(DAY)
    assert ads_for(simulator.market).totals(keyword_id=ids["keywordId"]).impressions == 0
    ads_client(KeywordsV3, simulator, _profile_id(simulator)).edit_keyword(
        body={"keywords": [{"keywordId": ids["keywordId"], "state": "ENABLED"}]}
    )
    li = simulator.market.listing(DEMO_SELLER_ID, ids["sku"], US)
    assert li is not None
    li.price = li.price * 3  # no longer the Buy Box winner
    simulator.market.clock.advance(DAY)
    assert ads_for(simulator.market).totals(keyword_id=ids["keywordId"]).impressions == 0


# --- reports v3 ---------------------------------------------------------------------------------------


def test_report_round_trip(simulator: RunningSimulator) -> None:
    ids = _campaign(simulator, bid="2.00")
    simulator.market.clock.advance(3 * DAY)
    pid = _profile_id(simulator)
    # pause it, so the metrics the report shows stay the totals compared below
    ads_client(KeywordsV3, simulator, pid).edit_keyword(
        body={"keywords": [{"keywordId": ids["keywordId"], "state": "PAUSED"}]}
    )
    ads = ads_for(simulator.market)
    profile = ads.profile(pid)
    assert profile is not None
    today = ads.day(profile, simulator.market.clock.now())
    start = (today.fromordinal(today.toordinal() - 3)).isoformat()
    reports = ads_client(Reports, simulator, pid)
    body = {
        "name": "SP keywords",
        "startDate": start,
        "endDate": today.isoformat(),
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "groupBy": ["targeting"],
            "columns": [
                "date",
                "campaignId",
                "keywordId",
                "keyword",
                "matchType",
                "keywordBid",
                "impressions",
                "clicks",
                "cost",
                "purchases7d",
                "sales7d",
                "unitsSoldClicks7d",
            ],
            "reportTypeId": "spTargeting",
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }
    created = reports.post_report(body=body).payload
    assert created["status"] == "PENDING" and created["url"] is None
    with pytest.raises(AdvertisingApiException) as duplicate:
        reports.post_report(body=body)
    assert duplicate.value.code == 425 and created["reportId"] in duplicate.value.message
    simulator.market.clock.advance(40)
    assert reports.get_report(reportId=created["reportId"]).payload["status"] == "PROCESSING"
    simulator.market.clock.advance(60)
    done = reports.get_report(reportId=created["reportId"]).payload
    assert done["status"] == "COMPLETED" and done["url"] and done["fileSize"] > 0
    rows = reports.download_report(url=done["url"], format="data").payload
    assert rows and {r["keywordId"] for r in rows} == {int(ids["keywordId"])}
    assert sorted(rows[0]) == sorted(body["configuration"]["columns"])  # type: ignore[index]
    assert rows[0]["matchType"] == "EXACT" and rows[0]["keyword"] == "premium chef knife"
    m = ads.totals(keyword_id=ids["keywordId"])
    assert sum(r["impressions"] for r in rows) == m.impressions
    assert sum(r["clicks"] for r in rows) == m.clicks
    assert round(sum(Decimal(str(r["cost"])) for r in rows), 2) == m.cost
    assert sum(r["purchases7d"] for r in rows) == m.purchases

    campaign_report = reports.post_report(
        body={
            "startDate": start,
            "endDate": today.isoformat(),
            "configuration": {
                "adProduct": "SPONSORED_PRODUCTS",
                "groupBy": ["campaign"],
                "columns": [
                    "campaignId",
                    "campaignName",
                    "campaignBudgetAmount",
                    "impressions",
                    "cost",
                    "startDate",
                    "endDate",
                ],
                "reportTypeId": "spCampaigns",
                "timeUnit": "SUMMARY",
                "format": "GZIP_JSON",
            },
        }
    ).payload
    simulator.market.clock.advance(120)
    url = reports.get_report(reportId=campaign_report["reportId"]).payload["url"]
    raw = requests.get(url, timeout=5).content  # a presigned-style URL: no token needed
    summary = json.loads(gzip.decompress(raw))
    assert summary == [
        {
            "campaignId": int(ids["campaignId"]),
            "campaignName": "Hero exact",
            "campaignBudgetAmount": 500.0,
            "impressions": m.impressions,
            "cost": float(m.cost),
            "startDate": start,
            "endDate": today.isoformat(),
        }
    ]


def test_report_requests_are_validated(simulator: RunningSimulator) -> None:
    reports = ads_client(Reports, simulator, _profile_id(simulator))
    base = {
        "startDate": "2026-01-01",
        "endDate": "2026-01-04",
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "groupBy": ["campaign"],
            "columns": ["impressions"],
            "reportTypeId": "spCampaigns",
            "timeUnit": "SUMMARY",
            "format": "GZIP_JSON",
        },
    }
    for change in (
        {"reportTypeId": "spKeywords"},  # not a v3 report type: keyword rows are in spTargeting
        {"columns": ["impressions", "nope"]},
        {"groupBy": ["targeting"]},
        {"timeUnit": "HOURLY"},
    ):
        body = {**base, "configuration": {**base["configuration"], **change}}  # type: ignore[dict-item]
        with pytest.raises(AdvertisingApiException) as caught:
            reports.post_report(body=body)
        assert caught.value.code == 400


def test_throttling_answers_429_with_retry_after(simulator: RunningSimulator) -> None:
    client = ads_client(CampaignsV3, simulator, _profile_id(simulator))
    statuses = []
    for _ in range(AdsMarket.burst + 3):
        try:
            client.list_campaigns(body={})
            statuses.append(200)
        except AdvertisingApiException as exc:
            statuses.append(exc.code)
            retry_after = exc.headers["Retry-After"]
    assert statuses.count(429) == 3 and statuses[: AdsMarket.burst] == [200] * AdsMarket.burst
    assert int(retry_after) >= 1
    simulator.market.clock.advance(1)
    client.list_campaigns(body={})  # the bucket refills on the simulated clock
    simulator.market.fail_next("listSponsoredProductsCampaigns", 1, status=429)
    with pytest.raises(AdvertisingApiException) as caught:
        client.list_campaigns(body={})
    assert caught.value.code == 429
