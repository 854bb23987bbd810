"""Ads calls through the shared Redis token bucket and the SP-API client's typed errors, against the
simulator (real python-amazon-ad-api, Redis, PostgreSQL): operation names and families, the bucket of
(connection, Ads operation), Retry-After holding the bucket and halving the rate, our own refusal before
anything is sent, and every failure as an `AmazonApiError` subclass (never ad_api's exceptions)."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import pytest
from ad_api.api import Profiles
from ad_api.api.sp import CampaignsV3, KeywordsV3
from django.test import override_settings

from amazon import ratelimit
from amazon.ads_clients import ads_api_client, ads_operation, is_ads_read
from amazon.clients import (
    AmazonApiError,
    AmazonAuthError,
    AmazonRequestError,
    AmazonThrottled,
    AmazonUnavailable,
    RetryPolicy,
)
from amazon.models import SellerConnection
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket
from amazon.simulator.market import DE, US
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tests.factories import make_tenant

FAST = RetryPolicy(budget_seconds=10, max_attempts=4, base_delay=0.01, max_delay=0.05)
CAMPAIGN = {
    "name": "Limiter",
    "targetingType": "MANUAL",
    "state": "ENABLED",
    "budget": {"budgetType": "DAILY", "budget": 10},
}


@pytest.fixture
def sim(simulator: Any) -> Any:
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
    ):
        yield simulator


@pytest.fixture
def conn(db: None, sim: Any) -> SellerConnection:
    creds = sim.credentials
    connection = make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
    )
    with tenant_context(connection.tenant):
        connection.set_secret("ads_refresh_token", DEMO_ADS_REFRESH_TOKEN)
        connection.save()
    return connection


def _quota(conn: SellerConnection, operation: str) -> ratelimit.OperationQuota:
    return next(q for q in ratelimit.quota_state(conn).operations if q.operation == operation)


# --- names and families (no network) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "operation", "family"),
    [
        ("GET", "/v2/profiles", "ads.listProfiles", "read"),
        ("GET", "/v2/profiles/1234567890123", "ads.getProfile", "read"),
        ("POST", "/sp/campaigns/list", "ads.listSponsoredProductsCampaigns", "read"),
        ("POST", "/sp/campaigns", "ads.createSponsoredProductsCampaigns", "write"),
        ("PUT", "/sp/adGroups", "ads.updateSponsoredProductsAdGroups", "write"),
        ("POST", "/sp/keywords/delete", "ads.deleteSponsoredProductsKeywords", "write"),
        ("POST", "/sp/targets/list", "ads.listSponsoredProductsTargetingClauses", "read"),
        ("POST", "/sp/negativeTargets", "ads.createSponsoredProductsNegativeTargetingClauses", "write"),
        ("POST", "/reporting/reports", "ads.createAsyncReport", "report"),
        (
            "GET",
            "/reporting/reports/6f1b2c3d-0000-4000-8000-123456789abc",
            "ads.getAsyncReport",
            "read",
        ),
        (
            "DELETE",
            "/reporting/reports/6f1b2c3d-0000-4000-8000-123456789abc",
            "ads.deleteAsyncReport",
            "write",
        ),
        ("GET", "/v2/sp/keywords/987654321", "ads.get:/v2/sp/keywords/{id}", "read"),
        ("POST", "/v2/sp/campaigns/report", "ads.post:/v2/sp/campaigns/report", "report"),
        ("POST", "/portfolios/list", "ads.post:/portfolios/list", "read"),
        ("POST", "/portfolios", "ads.post:/portfolios", "write"),
    ],
)
def test_operation_names_and_families(method: str, path: str, operation: str, family: str) -> None:
    assert ads_operation(method, path) == operation
    assert ratelimit.ads_family(operation) == family
    assert ratelimit.limits_for(operation) == ratelimit.ADS_FAMILY_LIMITS[family]


def test_reads_are_get_and_list() -> None:
    assert is_ads_read("GET", "/v2/profiles") and is_ads_read("POST", "/sp/keywords/list")
    assert not is_ads_read("POST", "/sp/keywords") and not is_ads_read("PUT", "/sp/keywords")


def test_sp_api_operations_keep_their_published_plans() -> None:
    assert ratelimit.limits_for("getListingsItem") == (5, 10)
    assert ratelimit.limits_for("getOrders") == (0.0167, 20)


# --- the bucket --------------------------------------------------------------------------------------------


def test_every_ads_call_takes_a_token_of_its_operation(sim: Any, conn: SellerConnection) -> None:
    ads_api_client(Profiles, conn, None).list_profiles()
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    client = ads_api_client(CampaignsV3, conn, profile_id)
    for _ in range(3):
        client.list_campaigns(body={})
    client.create_campaigns(body={"campaigns": [CAMPAIGN]})
    read_rate, read_burst = ratelimit.ADS_FAMILY_LIMITS["read"]
    listed = _quota(conn, "ads.listSponsoredProductsCampaigns")
    assert listed.burst == read_burst and listed.rate == read_rate
    assert listed.tokens < read_burst - 2.5  # three taken (a little refilled meanwhile)
    write_rate, write_burst = ratelimit.ADS_FAMILY_LIMITS["write"]
    created = _quota(conn, "ads.createSponsoredProductsCampaigns")
    assert (created.burst, created.rate) == (write_burst, write_rate) and created.tokens < write_burst
    assert _quota(conn, "ads.listProfiles").tokens < read_burst
    # one bucket per connection: another connection's calls leave these alone
    other = str(uuid.uuid4())
    assert [q.operation for q in ratelimit.quota_state(other).operations] == []


def test_our_empty_bucket_refuses_before_anything_is_sent(
    sim: Any, conn: SellerConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ratelimit.ADS_FAMILY_LIMITS, "write", (0.01, 1))  # one now, the next in 100 s
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    client = ads_api_client(CampaignsV3, conn, profile_id, policy=FAST)
    client.create_campaigns(body={"campaigns": [CAMPAIGN]})
    with pytest.raises(AmazonThrottled) as caught:
        client.create_campaigns(body={"campaigns": [{**CAMPAIGN, "name": "second"}]})
    assert caught.value.status == 429 and caught.value.operation == "ads.createSponsoredProductsCampaigns"
    assert sim.market.stats.calls["createSponsoredProductsCampaigns"] == 1  # the second never left


def test_retry_after_holds_the_bucket_and_halves_the_rate_once_per_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "ADS_SLOW_DOWN_MIN_SECONDS", 0.005)  # windows as short as Retry-After
    conn, operation = str(uuid.uuid4()), "ads.listSponsoredProductsKeywords"
    seed, _burst = ratelimit.limits_for(operation)
    ratelimit.acquire(conn, operation)
    ratelimit.record_throttle(conn, operation, retry_after=0.6)
    ratelimit.record_throttle(conn, operation, retry_after=0.6)  # the same storm: one signal
    assert _rate(conn, operation) == seed / 2
    started = time.monotonic()
    waited = ratelimit.acquire(conn, operation, timeout=5)
    assert 0.5 <= waited <= 0.65 and time.monotonic() - started >= 0.5  # not before Retry-After
    with pytest.raises(ratelimit.Throttled):  # and then at the halved rate, not the burst
        ratelimit.acquire(conn, operation, timeout=0)
    # Every new window halves again, never below the floor.
    for _ in range(10):
        time.sleep(0.01)
        ratelimit.record_throttle(conn, operation, retry_after=0)
    assert _rate(conn, operation) == seed / ratelimit.ADS_MIN_RATE_DIVISOR
    assert ratelimit.quota_state(conn).throttled_recently == 12
    # the adapted rate is temporary: without it the seed applies again
    assert (
        0
        < ratelimit.redis_client().ttl(f"rl:{{{conn}}}:rate:{operation}")
        <= ratelimit.ADS_ADAPTED_RATE_SECONDS
    )


def test_sp_api_throttles_keep_their_behaviour() -> None:
    conn = str(uuid.uuid4())
    ratelimit.record_throttle(conn, "getItemOffers")
    assert _rate(conn, "getItemOffers") == ratelimit.limits_for("getItemOffers")[0]  # no halving


def _rate(conn: str, operation: str) -> float:
    return next(q.rate for q in ratelimit.quota_state(conn).operations if q.operation == operation)


# --- typed errors ------------------------------------------------------------------------------------------


def test_a_429_storm_beyond_the_budget_is_amazon_throttled(sim: Any, conn: SellerConnection) -> None:
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    client = ads_api_client(
        CampaignsV3, conn, profile_id, policy=RetryPolicy(budget_seconds=2, max_attempts=6)
    )
    sim.market.fail_next("listSponsoredProductsCampaigns", 10, status=429)
    with pytest.raises(AmazonThrottled) as caught:
        client.list_campaigns(body={})
    assert caught.value.status == 429 and caught.value.code == "THROTTLED"
    assert _quota(conn, "ads.listSponsoredProductsCampaigns").throttled_recently >= 1


def test_a_bad_request_is_a_request_error_and_not_retried(sim: Any, conn: SellerConnection) -> None:
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    client = ads_api_client(KeywordsV3, conn, profile_id, policy=FAST)
    with pytest.raises(AmazonRequestError) as caught:
        client.list_keywords(body={"maxResults": 6000})
    error = caught.value
    assert isinstance(error, AmazonApiError)
    assert (error.status, error.code, error.operation) == (
        400,
        "BAD_REQUEST",
        "ads.listSponsoredProductsKeywords",
    )
    assert sim.market.stats.calls["listSponsoredProductsKeywords"] == 1


def test_a_foreign_profile_is_an_auth_error_after_one_renewal(sim: Any, conn: SellerConnection) -> None:
    other = sim.market.add_seller("A2OTHERSELLER9", "Other Store", [US])
    client = ads_api_client(
        CampaignsV3, conn, AdsMarket.profile_id_for(other.selling_partner_id, US), policy=FAST
    )
    with pytest.raises(AmazonAuthError) as caught:
        client.list_campaigns(body={})
    assert caught.value.status == 401 and caught.value.code == "UNAUTHORIZED"
    sent = [e for e in sim.app.ads.log if e.operation == "listSponsoredProductsCampaigns"]
    assert [e.status for e in sent] == [401, 401]  # one renewal, then no more
    assert sim.market.stats.token_grants_by_type["refresh_token"] == 2


def test_5xx_is_retried_for_reads_only(sim: Any, conn: SellerConnection) -> None:
    profile_id = AdsMarket.profile_id_for(sim.seller_id, DE)
    client = ads_api_client(CampaignsV3, conn, profile_id, policy=FAST)
    sim.market.fail_next("listSponsoredProductsCampaigns", 2, status=503)
    assert client.list_campaigns(body={}).payload["totalResults"] == 0
    sim.market.fail_next("updateSponsoredProductsCampaigns", 1, status=502)
    with pytest.raises(AmazonUnavailable) as caught:
        client.edit_campaigns(body={"campaigns": [{"campaignId": "1", "state": "PAUSED"}]})
    assert caught.value.status == 502
    assert sim.market.stats.calls["updateSponsoredProductsCampaigns"] == 1


def test_an_unreachable_endpoint_is_unavailable(db: None, conn: SellerConnection) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with override_settings(ADS_API_ENDPOINT=f"http://127.0.0.1:{port}"):
        client = ads_api_client(Profiles, conn, None, policy=RetryPolicy(budget_seconds=2, max_attempts=2))
        with pytest.raises(AmazonUnavailable) as caught:
            client.list_profiles()
    assert caught.value.status == 0 and caught.value.operation == "ads.listProfiles"
