"""Listings and offers sync against the simulator: real sp_api client over HTTP, real PostgreSQL (each
page committed on its own, as the non-atomic task runs it) and Redis (token cache, limiter, lock)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from amazon import ratelimit
from amazon.clients import AmazonUnavailable
from amazon.models import Listing, OfferSnapshot, SellerConnection, SyncCursor
from amazon.simulator.market import US
from amazon.sync import sync_listings, sync_offers
from amazon.tasks import sync_listings_task
from amazon.tests.factories import make_connection
from tenants import context
from tenants.context import tenant_context
from tenants.jobs import PERIODIC_JOBS
from tenants.models import JobRun, Tenant
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = ("asin", "title", "price", "currency", "quantity", "fulfillment_channel", "condition", "status")


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    # Throttling is the client's limiter's business here; the 429 test forces Amazon's answers itself.
    simulator.market.throttling = False
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        SP_API_MAX_ATTEMPTS=3,
    ):
        yield simulator


def _connect(sim: Any, tenant: Tenant | None = None) -> SellerConnection:
    creds = sim.credentials
    return make_connection(
        tenant or make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )


@pytest.fixture
def conn(sim: Any) -> SellerConnection:
    return _connect(sim)


@contextlib.contextmanager
def working_for(tenant: Tenant) -> Iterator[None]:
    """What the non-atomic TenantTask does around the body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


def _expected(sim: Any) -> dict[str, tuple[Any, ...]]:
    rows = {}
    for li in sim.market.seller_listings(sim.seller_id, US):
        status = "buyable" if "BUYABLE" in li.status else "discoverable" if li.status else "inactive"
        rows[li.sku] = (
            li.asin,
            li.item_name,
            li.price,
            "USD",
            max(li.quantity, 0),
            "AFN" if li.is_fba else "MFN",
            li.condition_type,
            status,
        )
    return rows


def _stored(tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    with tenant_context(tenant):
        return {row[0]: row[1:] for row in Listing.objects.values_list("sku", *FIELDS)}


def _runs(tenant: Tenant, kind: str) -> list[JobRun]:
    with tenant_context(tenant):
        return list(JobRun.objects.filter(kind=kind).order_by("id"))


def test_a_full_sync_stores_every_listing_once_with_its_fields(sim: Any, conn: SellerConnection) -> None:
    tenant = conn.tenant
    sync_listings_task.apply(
        kwargs={"tenant_id": tenant.pk, "connection_id": str(conn.public_id)}, throw=True
    )
    expected = _expected(sim)
    assert len(expected) == 40
    assert _stored(tenant) == expected
    (run,) = _runs(tenant, "amazon.sync_listings")
    assert run.outcome == JobRun.Outcome.SUCCEEDED
    assert run.counts == {"created": 40, "updated": 0, "unchanged": 0, "removed": 0}
    assert (run.progress_done, run.progress_total) == (40, 40)
    with tenant_context(tenant):
        cursor = SyncCursor.objects.get(connection=conn, kind=f"listings:{US}")
    assert cursor.next_token == "" and cursor.last_completed_at is not None
    searches = [r for r in sim.app.log if r.operation == "searchListingsItems"]
    assert len(searches) == 2  # 20 per page
    assert searches[0].query["includedData"] == ["summaries,attributes,offers,fulfillmentAvailability"]


def test_a_resync_changes_only_what_the_market_changed(sim: Any, conn: SellerConnection) -> None:
    tenant = conn.tenant
    with working_for(tenant):
        sync_listings(connection=conn)
        with tenant_context(tenant):
            before = dict(Listing.objects.values_list("sku", "updated_at"))
        assert sync_listings(connection=conn) == {"created": 0, "updated": 0, "unchanged": 40, "removed": 0}

        changed, gone = sorted(before)[3], sorted(before)[7]
        with sim.market.lock:
            sim.market.listing(sim.seller_id, changed).price += Decimal("1.25")
            del sim.market.listings[(sim.seller_id, US, gone)]
        counts = sync_listings(connection=conn)
    assert counts == {"created": 0, "updated": 1, "unchanged": 38, "removed": 1}
    with tenant_context(tenant):
        after = {li.sku: li for li in Listing.objects.all()}
    assert after[changed].price == sim.market.listing(sim.seller_id, changed).price
    assert after[gone].status == Listing.Status.REMOVED
    assert {sku for sku, li in after.items() if li.updated_at != before[sku]} == {changed, gone}


def test_an_interrupted_sync_resumes_from_the_cursor_without_duplicates(
    sim: Any, conn: SellerConnection
) -> None:
    tenant = conn.tenant

    def amazon_goes_down(pages: int) -> None:
        if pages == 2:  # pages 1 and 2 are committed; page 3 meets 500s past the retry budget
            sim.market.fail_next("searchListingsItems", 10, 500)

    with working_for(tenant), pytest.raises(AmazonUnavailable):
        sync_listings(connection=conn, page_size=5, after_page=amazon_goes_down)
    assert len(_stored(tenant)) == 10
    with tenant_context(tenant):
        cursor = SyncCursor.objects.get(connection=conn, kind=f"listings:{US}")
    assert cursor.next_token and cursor.position == 10
    (failed,) = _runs(tenant, "amazon.sync_listings")
    assert failed.outcome == JobRun.Outcome.FAILED
    assert "AmazonUnavailable" in failed.error and "searchListingsItems" in failed.error
    assert (failed.progress_done, failed.progress_total) == (10, 40)
    assert failed.counts["created"] == 10

    sim.market.faults.clear()
    sim.app.log.clear()
    with working_for(tenant):
        counts = sync_listings(connection=conn, page_size=5)
    assert counts == {"created": 30, "updated": 0, "unchanged": 0, "removed": 0, "resumed_passes": 1}
    first = next(r for r in sim.app.log if r.operation == "searchListingsItems")
    assert first.query["pageToken"] == [cursor.next_token]  # resumed, not started over
    assert _stored(tenant) == _expected(sim)
    with tenant_context(tenant):
        cursor.refresh_from_db()
    assert cursor.next_token == "" and cursor.position == 0
    assert _runs(tenant, "amazon.sync_listings")[-1].progress_done == 40


def test_a_worker_killed_mid_sync_loses_at_most_the_page_in_flight(sim: Any, conn: SellerConnection) -> None:
    class Killed(BaseException):
        pass

    def kill(pages: int) -> None:
        if pages == 3:
            raise Killed

    with working_for(conn.tenant), pytest.raises(Killed):
        sync_listings(connection=conn, page_size=5, after_page=kill)
    assert len(_stored(conn.tenant)) == 15
    with working_for(conn.tenant):
        sync_listings(connection=conn, page_size=5)
    assert _stored(conn.tenant) == _expected(sim)
    assert len(sim.app.log) == 1 + 3 + 5  # one LWA call, 3 + 5 of 8 pages: none fetched twice


def test_offers_sync_stores_snapshots_with_the_buy_box(sim: Any, conn: SellerConnection) -> None:
    tenant = conn.tenant
    with working_for(tenant):
        sync_listings(connection=conn)
        counts = sync_offers(connection=conn)
    market = sim.market
    assert counts["snapshots"] == 40 and counts["failed"] == 0
    batches = [r for r in sim.app.log if r.operation == "getListingOffersBatch"]
    assert [len(b.body["requests"]) for b in batches] == [20, 20]
    with tenant_context(tenant):
        snapshots = list(OfferSnapshot.objects.select_related("listing"))
    assert len(snapshots) == 40
    ours = 0
    for snap in snapshots:
        winner = market.buybox_winner(US, snap.listing.asin)
        if winner is None:
            assert snap.buy_box_price is None
            continue
        assert snap.buy_box_landed_price == winner.landed
        assert snap.buy_box_price == winner.price
        assert snap.buy_box_seller_id == winner.seller_id
        assert snap.we_hold_buy_box == (winner.seller_id == sim.seller_id)
        assert snap.currency == "USD"
        assert snap.number_of_offers == len(market.offers(US, snap.listing.asin))
        assert snap.lowest_landed_price == min(o.landed for o in market.offers(US, snap.listing.asin, "New"))
        assert snap.offers and {"SellerId", "ListingPrice", "IsBuyBoxWinner"} <= set(snap.offers[0])
        ours += snap.we_hold_buy_box
    assert counts["buy_box_ours"] == ours
    (run,) = _runs(tenant, "amazon.sync_offers")
    assert (run.outcome, run.progress_done, run.progress_total) == (JobRun.Outcome.SUCCEEDED, 40, 40)


def test_429_storms_are_absorbed_without_losing_work(sim: Any, conn: SellerConnection) -> None:
    sim.market.fail_next("searchListingsItems", 2, 429)  # first page: two 429s, then through
    with working_for(conn.tenant):
        sync_listings(
            connection=conn,
            page_size=10,
            after_page=lambda n: sim.market.fail_next("searchListingsItems", 2 if n == 2 else 0, 429),
        )
        sim.market.fail_next("getListingOffersBatch", 1, 429)
        offers = sync_offers(connection=conn)
    assert _stored(conn.tenant) == _expected(sim)
    assert offers["snapshots"] == 40
    assert sim.market.stats.faults["searchListingsItems"] == 4
    assert sim.market.stats.faults["getListingOffersBatch"] == 1
    assert ratelimit.quota_state(conn).throttled_recently == 5
    assert all(r.outcome == JobRun.Outcome.SUCCEEDED for r in _runs(conn.tenant, "amazon.sync_listings"))


def test_one_tenants_sync_never_touches_anothers_rows(sim: Any) -> None:
    a, b = _connect(sim), _connect(sim)  # two companies, same Amazon account
    with working_for(a.tenant):
        sync_listings(connection=a)
    assert len(_stored(a.tenant)) == 40 and _stored(b.tenant) == {}
    with tenant_context(a.tenant):
        a_rows = dict(Listing.objects.values_list("sku", "updated_at"))
    sku = sorted(a_rows)[0]
    with sim.market.lock:
        sim.market.listing(sim.seller_id, sku).price += Decimal("2.00")
    with working_for(b.tenant):
        assert sync_listings(connection=b)["created"] == 40
        sync_offers(connection=b)
    with tenant_context(a.tenant):
        assert dict(Listing.objects.values_list("sku", "updated_at")) == a_rows  # untouched by B
        assert OfferSnapshot.objects.count() == 0
        assert Listing.all_tenants.count() == 40  # the database itself shows A's rows only
    assert _runs(a.tenant, "amazon.sync_offers") == []


def test_tasks_skip_connections_that_are_not_active(sim: Any, conn: SellerConnection) -> None:
    with tenant_context(conn.tenant):
        conn.status = SellerConnection.Status.DISCONNECTED
        conn.save(update_fields=["status", "updated_at"])
    result = sync_listings_task.apply(
        kwargs={"tenant_id": conn.tenant.pk, "connection_id": str(conn.public_id)}, throw=True
    )
    assert result.result is None
    assert _runs(conn.tenant, "amazon.sync_listings") == [] and _stored(conn.tenant) == {}
    assert sim.app.log.maxlen and len(sim.app.log) == 0


def test_syncs_are_registered_with_the_dispatcher() -> None:
    assert PERIODIC_JOBS["amazon.sync_listings"].task_name == "amazon.sync_listings_all"
    assert PERIODIC_JOBS["amazon.sync_offers"].every.total_seconds() == 300
    assert PERIODIC_JOBS["amazon.sync_offers"].kwargs == {}
