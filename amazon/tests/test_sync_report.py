"""Listings past searchListingsItems' 1,000-item limit: the merchant listings report
(GET_MERCHANT_LISTINGS_ALL_DATA) against the simulator, through the real sp_api Reports client, with real
PostgreSQL and Redis. Simulator throttling is off (the client's limiter is under test elsewhere); the
report's simulated clock moves through the sync's `sleep`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from amazon.models import Listing, SellerConnection, SyncCursor
from amazon.simulator import market as market_module
from amazon.simulator.market import US, Market
from amazon.simulator.testing import TEST_SEED, start_simulator
from amazon.sync import SEARCH_RESULT_LIMIT, sync_listings
from amazon.tests.test_sync import FIELDS, _connect, _expected, _runs, working_for
from tenants.context import tenant_context
from tenants.models import JobRun, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

QUANTITY = FIELDS.index("quantity")
CHANNEL = FIELDS.index("fulfillment_channel")


def _serve(market: Market) -> Iterator[Any]:
    running = start_simulator(market)
    running.market.throttling = False
    try:
        with override_settings(
            LWA_TOKEN_URL=running.lwa_url,
            SP_API_ENDPOINT=running.base_url,
            SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
            SP_API_MAX_ATTEMPTS=3,
        ):
            yield running
    finally:
        running.server.stop()


@pytest.fixture
def big() -> Iterator[Any]:
    """1,200 SKUs in the US marketplace: 200 past the search limit."""
    yield from _serve(Market.demo(seed=TEST_SEED, skus=1200))


@pytest.fixture
def small() -> Iterator[Any]:
    yield from _serve(Market.demo(seed=TEST_SEED, skus=40))


def _advance(sim: Any) -> Any:
    return lambda seconds: sim.market.clock.advance(seconds)


def _without_fba_quantity(rows: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """The report has no FBA quantity (stock moved by buyers while it was prepared is not in it)."""
    return {
        sku: tuple(None if i == QUANTITY and row[CHANNEL] == "AFN" else v for i, v in enumerate(row))
        for sku, row in rows.items()
    }


def _stored(tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    with tenant_context(tenant):
        return {row[0]: row[1:] for row in Listing.objects.values_list("sku", *FIELDS)}


def _cursor(conn: SellerConnection) -> SyncCursor:
    with tenant_context(conn.tenant):
        return SyncCursor.objects.get(connection=conn, kind=f"listings_report:{US}")


def test_a_catalogue_past_the_search_limit_is_completed_from_the_report(big: Any) -> None:
    conn = _connect(big)
    tenant = conn.tenant
    with working_for(tenant):
        counts = sync_listings(connection=conn, sleep=_advance(big))
    expected = _expected(big)
    assert len(expected) == 1200
    stored = _stored(tenant)
    assert _without_fba_quantity(stored) == _without_fba_quantity(expected)
    with tenant_context(tenant):
        assert Listing.objects.count() == 1200  # each SKU once
        past_limit = Listing.objects.order_by("sku")[SEARCH_RESULT_LIMIT:]
        # never seen by a search: FBA stock unknown until the inventory sync, merchant stock from the report
        assert all(li.quantity is None for li in past_limit if li.fulfillment_channel == "AFN")
        assert all(isinstance(li.price, Decimal) and li.currency == "USD" for li in past_limit)
    assert counts["created"] == 1200 and counts["removed"] == 0
    assert counts["search_limit_reached"] == 1 and counts["report_passes"] == 1
    assert "waiting_for_report" not in counts
    assert big.market.stats.calls["createReport"] == 1
    assert big.market.stats.calls["searchListingsItems"] == SEARCH_RESULT_LIMIT // 20
    (run,) = _runs(tenant, "amazon.sync_listings")
    assert run.outcome == JobRun.Outcome.SUCCEEDED
    assert (run.progress_done, run.progress_total) == (1200, 1200)
    cursor = _cursor(conn)
    assert cursor.next_token == "" and cursor.last_completed_at is not None

    # Known to be large now: the next run goes straight to a report, and sees removals.
    gone = sorted(expected)[1100]
    with big.market.lock:
        del big.market.listings[(big.seller_id, US, gone)]
    searches = big.market.stats.calls["searchListingsItems"]
    with working_for(tenant):
        again = sync_listings(connection=conn, sleep=_advance(big))
    assert big.market.stats.calls["searchListingsItems"] == searches
    assert big.market.stats.calls["createReport"] == 2
    assert again["created"] == 0 and again["removed"] == 1
    assert again["updated"] + again["unchanged"] == 1199
    with tenant_context(tenant):
        assert Listing.objects.get(sku=gone).status == Listing.Status.REMOVED
        assert Listing.objects.exclude(status=Listing.Status.REMOVED).count() == 1199


def test_a_run_ending_while_the_report_is_in_progress_is_resumed_with_the_same_report(big: Any) -> None:
    conn = _connect(big)
    tenant = conn.tenant
    market = big.market
    with working_for(tenant):
        # polls at 0 s, 15 s, 45 s (IN_PROGRESS after 30 s), then gives up before waiting 60 s more
        first = sync_listings(connection=conn, use_report=True, sleep=_advance(big), report_wait_seconds=50)
    assert first["waiting_for_report"] == 1 and first["created"] == 0
    cursor = _cursor(conn)
    (report,) = market.reports.values()
    assert cursor.next_token == report.report_id
    assert report.status_at(market.clock.now()) == "IN_PROGRESS"
    (run,) = _runs(tenant, "amazon.sync_listings")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.counts["waiting_for_report"] == 1
    assert _stored(tenant) == {}

    with working_for(tenant):
        second = sync_listings(connection=conn, sleep=_advance(big))  # not forced: the pending report wins
    assert market.stats.calls["createReport"] == 1
    assert market.stats.calls["searchListingsItems"] == 0
    gets = [r for r in big.app.log if r.operation == "getReport"]
    assert gets and all(report.report_id in r.path for r in gets)
    assert second["resumed_reports"] == 1 and second["created"] == 1200
    assert "waiting_for_report" not in second
    assert _without_fba_quantity(_stored(tenant)) == _without_fba_quantity(_expected(big))
    assert _cursor(conn).next_token == ""


def test_a_gzip_report_document_is_decompressed(small: Any) -> None:
    small.market.gzip_documents = True
    conn = _connect(small)
    with working_for(conn.tenant):
        counts = sync_listings(connection=conn, use_report=True, sleep=_advance(small), report_batch_size=7)
    (document,) = small.market.documents.values()
    assert document.compressed
    assert counts["created"] == 40 and counts.get("failed", 0) == 0
    assert _without_fba_quantity(_stored(conn.tenant)) == _without_fba_quantity(_expected(small))


def test_unreadable_rows_are_counted_as_failed_and_the_rest_is_kept(
    small: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _connect(small)
    tenant = conn.tenant
    with working_for(tenant):
        sync_listings(connection=conn, use_report=True, sleep=_advance(small))
    before = _stored(tenant)
    skus = sorted(before)
    real = market_module.merchant_listings_report

    def damaged(*args: Any) -> bytes:
        lines = real(*args).decode().splitlines()
        header = lines[0].split("\t")
        price, quantity, sku = header.index("price"), header.index("quantity"), header.index("seller-sku")
        for number, line in enumerate(lines[1:], start=1):
            cells = line.split("\t")
            if cells[sku] == skus[0]:
                cells[price] = "12,99 USD"
            elif cells[sku] == skus[1]:
                cells[quantity] = "lots"
            lines[number] = "\t".join(cells)
        lines.insert(5, "Cut short\tno more columns")
        return ("\n".join(lines) + "\n").encode()

    monkeypatch.setattr(market_module, "merchant_listings_report", damaged)
    with small.market.lock:
        small.market.listing(small.seller_id, skus[2]).price += Decimal("1.00")
    with working_for(tenant):
        counts = sync_listings(connection=conn, use_report=True, sleep=_advance(small), report_batch_size=10)
    assert counts["failed"] == 3
    assert counts["updated"] + counts["unchanged"] == 38 and counts["updated"] >= 1
    assert counts["removals_skipped"] == 1 and counts["removed"] == 0
    after = _stored(tenant)
    assert set(after) == set(before)
    assert after[skus[0]] == before[skus[0]] and after[skus[1]] == before[skus[1]]  # kept as they were
    assert after[skus[2]][FIELDS.index("price")] == small.market.listing(small.seller_id, skus[2]).price
    (_, run) = _runs(tenant, "amazon.sync_listings")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.counts["failed"] == 3
