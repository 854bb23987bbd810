"""Throttling storms on the Ads API: many workers share one connection's Ads quota against the simulator's
Ads throttling on the wall clock (a bucket per LWA client and profile, 429 with Retry-After), with 429s
injected on top, as amazon/tests/test_throttle_storm.py does for SP-API. Every call completes exactly once
(creates included: nothing lost, nothing sent twice), our shared bucket keeps the calls within its quota,
and when Amazon allows less than our seed the 429s slow the bucket down until they stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ad_api.api.sp import CampaignsV3
from django.db import connections
from django.test import override_settings

from amazon import ratelimit
from amazon.ads_clients import ads_api_client
from amazon.clients import RetryPolicy
from amazon.models import SellerConnection
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket, ads_for
from amazon.simulator.market import US
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tests.factories import make_tenant

WORKERS = 6
POLICY = RetryPolicy(budget_seconds=60, max_attempts=12, base_delay=0.05, max_delay=0.5)
LIST, CREATE = "listSponsoredProductsCampaigns", "createSponsoredProductsCampaigns"


def _connection(sim: Any) -> SellerConnection:
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


def _storm(
    connection: SellerConnection, profile_id: int, jobs: list[Callable[[CampaignsV3], Any]]
) -> tuple[list[Any], list[BaseException], float]:
    """Run `jobs` split over WORKERS threads, each with its own client; (results, errors, seconds)."""
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(mine: list[Callable[[CampaignsV3], Any]]) -> None:
        try:
            client = ads_api_client(CampaignsV3, connection, profile_id, policy=POLICY)
            for job in mine:
                result = job(client)
                with lock:
                    results.append(result)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(jobs[i::WORKERS],)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return results, errors, time.monotonic() - started


def _create(name: str) -> Callable[[CampaignsV3], Any]:
    def job(client: CampaignsV3) -> Any:
        body = {
            "campaigns": [
                {
                    "name": name,
                    "targetingType": "MANUAL",
                    "state": "ENABLED",
                    "budget": {"budgetType": "DAILY", "budget": 10},
                }
            ]
        }
        answer = client.create_campaigns(body=body).payload["campaigns"]
        assert not answer["error"], answer
        return name

    return job


def _list(client: CampaignsV3) -> Any:
    return client.list_campaigns(body={"maxResults": 10}).payload["totalResults"]


@pytest.mark.django_db(transaction=True)
def test_an_ads_storm_stays_within_our_bucket_and_loses_no_call(
    simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = simulator.market
    market.throttle_clock = "wall"  # Amazon's buckets refill in real time here, like ours
    read_rate, read_burst = 5.0, 10
    monkeypatch.setitem(ratelimit.ADS_FAMILY_LIMITS, "read", (read_rate, read_burst))
    monkeypatch.setitem(ratelimit.ADS_FAMILY_LIMITS, "write", (2.0, 5))
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
    ):
        connection = _connection(simulator)
        profile_id = AdsMarket.profile_id_for(simulator.seller_id, US)
        names = [f"Storm {n:02d}" for n in range(8)]
        jobs: list[Callable[[CampaignsV3], Any]] = [_list] * 20 + [_create(name) for name in names]
        market.fail_next(LIST, 3, 429)  # Amazon throttles a few on top, as it does
        market.fail_next(CREATE, 1, 429)
        results, errors, elapsed = _storm(connection, profile_id, jobs)

    assert not errors, errors
    assert len(results) == len(jobs), "every call completed"
    created = [c["name"] for c in ads_for(market).entities["campaigns"].values()]
    assert sorted(created) == names, "every campaign created exactly once: nothing lost, nothing twice"
    # Beyond the burst, the shared bucket paced all workers together (at most at the seeded rate).
    assert elapsed >= (20 - read_burst) / read_rate * 0.8
    assert market.stats.faults[LIST] == 3 and market.stats.faults[CREATE] == 1  # absorbed by retries
    # Amazon's own bucket (10/s, burst 20 over every call of the profile) hardly ever had to refuse.
    assert ads_for(market).stats.throttled <= 2
    quota = {q.operation: q for q in ratelimit.quota_state(connection).operations}
    assert quota[f"ads.{LIST}"].throttled_recently == 3 and quota[f"ads.{CREATE}"].throttled_recently == 1


@pytest.mark.django_db(transaction=True)
def test_when_amazon_allows_less_than_our_seed_the_429s_slow_us_down(
    simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = simulator.market
    market.throttle_clock = "wall"
    ads = ads_for(market)
    ads.rate, ads.burst = 4.0, 6  # Amazon allows less today than our seed (5/s, burst 10)
    monkeypatch.setitem(ratelimit.ADS_FAMILY_LIMITS, "read", (5.0, 10))
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
    ):
        connection = _connection(simulator)
        profile_id = AdsMarket.profile_id_for(simulator.seller_id, US)
        results, errors, _elapsed = _storm(connection, profile_id, [_list] * 20)
        first_storm = ads.stats.throttled
        # The adapted rate holds: a second storm right after is (nearly) never refused by Amazon.
        results_2, errors_2, _ = _storm(connection, profile_id, [_list] * 10)

    assert not errors and not errors_2, errors or errors_2
    assert len(results) == 20 and len(results_2) == 10, "every call completed"
    # Our burst of 10 met Amazon's 6 once; the Retry-After hold and the halved rate absorbed the rest.
    assert 1 <= first_storm <= 6
    assert ads.stats.throttled - first_storm <= 1
    rate = next(q.rate for q in ratelimit.quota_state(connection).operations if q.operation == f"ads.{LIST}")
    assert rate <= 2.5  # below Amazon's 4/s now
    sent = [e for e in simulator.app.ads.log if e.operation == LIST]
    assert len([e for e in sent if e.status == 200]) == 30  # each call answered once
