"""Ads API tokens and the ad_api client factory against the simulator, with real Redis and PostgreSQL:
the Ads token is cached encrypted under its own key, one LWA grant for N workers, a revoked Ads grant is
typed, and the real ad_api classes work through `ads_api_client` (token, headers, endpoint, retries)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from ad_api.api import Profiles, Reports
from ad_api.api.sp import CampaignsV3
from django.test import override_settings

from amazon import tokens
from amazon.ads_clients import ads_api_client, ads_endpoint
from amazon.ads_tokens import (
    ADS_TOKEN_KEY,
    AdsNotAuthorized,
    AdsReauthorizationRequired,
    ads_access_token_for,
    invalidate_ads_access_token,
)
from amazon.clients import AmazonUnavailable
from amazon.models import SellerConnection
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket, ads_for
from amazon.simulator.market import US
from amazon.tests.factories import make_connection
from amazon.tokens import IssuedToken
from config.redis import redis_client
from tenants.context import tenant_context
from tests.factories import make_tenant


@pytest.fixture
def sim(simulator: Any) -> Any:
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
    ):
        yield simulator


def _connection(sim: Any, *, ads_refresh_token: str | None = DEMO_ADS_REFRESH_TOKEN) -> SellerConnection:
    creds = sim.credentials
    conn = make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
    )
    with tenant_context(conn.tenant):
        conn.set_secret("ads_refresh_token", ads_refresh_token)
        conn.save()
    return conn


@pytest.fixture
def conn(db: None, sim: Any) -> SellerConnection:
    return _connection(sim)


def _grants(sim: Any) -> int:
    return int(sim.market.stats.token_grants_by_type["refresh_token"])


def test_the_ads_token_is_cached_encrypted_under_its_own_key(sim: Any, conn: SellerConnection) -> None:
    first = ads_access_token_for(conn)
    assert ads_access_token_for(conn) == first
    assert _grants(sim) == 1
    assert first in ads_for(sim.market).access_tokens  # granted for the Ads refresh token
    raw = redis_client().get(ADS_TOKEN_KEY.format(conn.public_id))
    assert raw is not None and first.encode() not in raw and b"Atza" not in raw
    # the SP-API token is another one, under another key
    sp_token = tokens.access_token_for(conn)
    assert sp_token != first and _grants(sim) == 2
    assert redis_client().get(tokens.TOKEN_KEY.format(conn.public_id)) != raw
    # a value copied under another connection's key does not decrypt there: a miss, a fresh grant
    other = _connection(sim)
    redis_client().set(ADS_TOKEN_KEY.format(other.public_id), raw)
    assert ads_access_token_for(other) != first
    invalidate_ads_access_token(conn)
    assert ads_access_token_for(conn) != first


def test_n_workers_cause_one_ads_grant(sim: Any, conn: SellerConnection) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(ads_access_token_for(conn))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 8
    assert _grants(sim) == 1


def test_a_revoked_ads_grant_is_typed_and_leaves_the_connection_active(
    sim: Any, conn: SellerConnection
) -> None:
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    with pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(conn)
    with pytest.raises(AdsReauthorizationRequired):  # remembered: no second LWA call
        ads_access_token_for(conn)
    assert sim.market.stats.token_errors["invalid_grant"] == 1
    with tenant_context(conn.tenant):
        conn.refresh_from_db()
    assert conn.status == SellerConnection.Status.ACTIVE


def test_no_ads_grant_no_token(db: None, sim: Any) -> None:
    with pytest.raises(AdsNotAuthorized):
        ads_access_token_for(_connection(sim, ads_refresh_token=None))


def test_the_factory_builds_real_ad_api_clients(sim: Any, conn: SellerConnection) -> None:
    profiles = ads_api_client(Profiles, conn, None).list_profiles().payload
    profile_id = profiles[0]["profileId"]
    assert profile_id == AdsMarket.profile_id_for(sim.seller_id, US)
    campaigns = ads_api_client(CampaignsV3, conn, profile_id)
    assert campaigns.endpoint == sim.base_url
    created = campaigns.create_campaigns(
        body={
            "campaigns": [
                {
                    "name": "Via factory",
                    "targetingType": "MANUAL",
                    "state": "ENABLED",
                    "budget": {"budgetType": "DAILY", "budget": 10},
                }
            ]
        }
    ).payload["campaigns"]["success"]
    listed = campaigns.list_campaigns(body={}).payload["campaigns"]
    assert [c["campaignId"] for c in listed] == [created[0]["campaignId"]]
    entry = [e for e in sim.app.ads.log if e.operation == "listSponsoredProductsCampaigns"][-1]
    assert entry.headers["Amazon-Advertising-Api-Scope"] == str(profile_id)
    assert entry.headers["Amazon-Advertising-Api-Clientid"] == sim.credentials["lwa_app_id"]
    assert entry.headers["Content-Type"] == "application/vnd.spCampaign.v3+json"
    assert _grants(sim) == 1  # one Ads grant for all of it


def test_a_stale_token_is_renewed_once_on_401(sim: Any, conn: SellerConnection) -> None:
    key = ADS_TOKEN_KEY.format(conn.public_id)
    tokens._store(key, IssuedToken(access_token="Atza|stale", expires_in=3600))
    client = ads_api_client(Profiles, conn, None)
    assert client.list_profiles().payload
    assert _grants(sim) == 1


def test_429_waits_for_retry_after_and_a_failed_write_is_typed_and_not_repeated(
    sim: Any, conn: SellerConnection
) -> None:
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    client = ads_api_client(CampaignsV3, conn, profile_id)
    sim.market.fail_next("listSponsoredProductsCampaigns", 2, status=429)  # Retry-After: 1
    started = time.monotonic()
    assert client.list_campaigns(body={}).payload["totalResults"] == 0
    assert time.monotonic() - started >= 1.8  # our bucket held each retry until Amazon's Retry-After
    assert sim.market.stats.calls["listSponsoredProductsCampaigns"] == 3
    # a create answered 500 is not repeated (it may have been applied), and the error is ours
    sim.market.fail_next("createSponsoredProductsCampaigns", 1, status=500)
    with pytest.raises(AmazonUnavailable) as caught:
        client.create_campaigns(
            body={
                "campaigns": [
                    {
                        "name": "x",
                        "targetingType": "MANUAL",
                        "state": "ENABLED",
                        "budget": {"budgetType": "DAILY", "budget": 10},
                    }
                ]
            }
        )
    assert caught.value.status == 500 and caught.value.operation == "ads.createSponsoredProductsCampaigns"
    assert caught.value.code == "INTERNAL_ERROR"
    assert sim.market.stats.calls["createSponsoredProductsCampaigns"] == 1


def test_reports_through_the_factory(sim: Any, conn: SellerConnection) -> None:
    profile_id = AdsMarket.profile_id_for(sim.seller_id, US)
    reports = ads_api_client(Reports, conn, profile_id)
    created = reports.post_report(
        body={
            "startDate": "2026-01-04",
            "endDate": "2026-01-05",
            "configuration": {
                "adProduct": "SPONSORED_PRODUCTS",
                "groupBy": ["campaign"],
                "columns": ["campaignId", "impressions", "clicks", "cost"],
                "reportTypeId": "spCampaigns",
                "timeUnit": "SUMMARY",
                "format": "GZIP_JSON",
            },
        }
    ).payload
    sim.market.clock.advance(120)
    done = reports.get_report(reportId=created["reportId"]).payload
    assert done["status"] == "COMPLETED"
    assert reports.download_report(url=done["url"], format="data").payload == []


def test_endpoint_selection() -> None:
    with override_settings(ADS_API_ENDPOINT="", SIMULATOR_URL=""):
        assert ads_endpoint("NA") == "https://advertising-api.amazon.com"
        assert ads_endpoint("EU") == "https://advertising-api-eu.amazon.com"
        assert ads_endpoint("FE") == "https://advertising-api-fe.amazon.com"
    with override_settings(ADS_API_ENDPOINT="http://127.0.0.1:8100/"):
        assert ads_endpoint("EU") == "http://127.0.0.1:8100"
