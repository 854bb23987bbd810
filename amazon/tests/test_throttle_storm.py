"""A throttling storm: many workers share one connection's quota against a simulator that enforces
Amazon's published bucket on the wall clock and also injects 429s. Every call completes, nothing is
lost, and our shared bucket keeps the calls Amazon sees within its quota."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings
from sp_api.api import ListingsItems

from amazon.clients import RetryPolicy, sp_api_client
from amazon.models import SellerConnection
from amazon.simulator.market import US
from amazon.tests.factories import make_connection
from tests.factories import make_tenant

WORKERS = 6
CALLS_EACH = 5
RATE, BURST = 5.0, 10  # getListingsItem's published usage plan


@pytest.mark.django_db(transaction=True)
def test_a_storm_of_workers_stays_within_the_bucket_and_loses_no_call(simulator: Any) -> None:
    market = simulator.market
    market.throttle_clock = "wall"  # Amazon's buckets refill in real time here, like ours
    with override_settings(LWA_TOKEN_URL=simulator.lwa_url, SP_API_ENDPOINT=simulator.base_url):
        creds = simulator.credentials
        connection = make_connection(
            make_tenant(),
            selling_partner_id=simulator.seller_id,
            refresh_token=creds["refresh_token"],
            client_id=creds["lwa_app_id"],
            client_secret=creds["lwa_client_secret"],
        )
        skus = [listing.sku for listing in list(market.listings.values())[: WORKERS * CALLS_EACH]]
        market.fail_next("getListingsItem", 4, 429)  # Amazon throttles a few on top, as it does
        policy = RetryPolicy(budget_seconds=30, max_attempts=8, base_delay=0.05, max_delay=0.5)
        results: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker(mine: list[str], conn: SellerConnection) -> None:
            try:
                client = sp_api_client(ListingsItems, conn, US, policy=policy)
                for sku in mine:
                    item = client.get_listings_item(sellerId=simulator.seller_id, sku=sku)
                    with lock:
                        results.append(item.payload["sku"])
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        started = time.monotonic()
        threads = [
            threading.Thread(target=worker, args=(skus[i::WORKERS], connection)) for i in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started

    assert not errors, errors
    assert sorted(results) == sorted(skus), "every call completed exactly once"
    total = WORKERS * CALLS_EACH
    # Beyond the burst, the shared bucket paces all workers together at the published rate.
    assert elapsed >= (total - BURST) / RATE * 0.8
    assert market.stats.faults["getListingsItem"] == 4  # the injected ones, absorbed by retries
    # The bucket Amazon enforces hardly ever has to refuse: ours spent the quota first.
    assert market.stats.throttled["getListingsItem"] <= 2
