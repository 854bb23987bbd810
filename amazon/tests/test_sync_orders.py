"""Orders, order items and financial events sync against the simulator: real sp_api client over HTTP,
real PostgreSQL (each page committed on its own, as the non-atomic task runs it) and Redis (token
cache, limiter, lock). The simulated clock is Amazon's; the sync never compares it with ours."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F
from django.test import override_settings

from amazon import ratelimit
from amazon.clients import AmazonUnavailable
from amazon.models import FinancialEvent, Order, OrderItem, SellerConnection, SyncCursor
from amazon.simulator.market import US
from amazon.simulator.orders import cents_to_decimal, iso
from amazon.sync_orders import sync_financial_events, sync_orders
from amazon.tasks import sync_financial_events_task, sync_orders_task
from amazon.tests.factories import make_connection
from tenants import context
from tenants.context import tenant_context
from tenants.jobs import PERIODIC_JOBS
from tenants.models import JobRun, Tenant
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

SKEW = timedelta(minutes=2)


@pytest.fixture
def sim(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Amazon's quota (getOrders: one call a minute after a burst of 20) is the limiter's business and
    # tested there; here the calls are let through so the tests run in seconds.
    simulator.market.throttling = False
    for operation in ("getOrders", "getOrderItems", "listFinancialEvents"):
        monkeypatch.setitem(ratelimit.OPERATION_LIMITS, operation, (1000.0, 1000))
    monkeypatch.setattr(ratelimit, "observe_rate_limit", lambda *args, **kwargs: None)
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


def _now(sim: Any) -> datetime:
    return sim.market.clock.now()  # type: ignore[no-any-return]


def _since(sim: Any) -> datetime:
    return _now(sim) - timedelta(days=31)


def _expected(sim: Any) -> dict[str, tuple[Any, ...]]:
    """What Amazon reports now for every order updated since the lookback, up to now - 2 min."""
    now = _now(sim)
    rows = {}
    for order in sim.market.seller_orders(sim.seller_id):
        updated = order.last_update_at(now)
        if order.purchased > now or not (_since(sim) <= updated <= now - SKEW):
            continue
        status = order.status_at(now)
        rows[order.order_id] = (
            status,
            updated.replace(microsecond=0),  # Amazon reports whole seconds
            None if status == "Pending" else cents_to_decimal(order.total_cents),
            "" if status == "Pending" else "USD",
            order.units if status == "Shipped" else 0,
            order.units if status in ("Pending", "Unshipped") else 0,
            "AFN" if order.afn else "MFN",
        )
    return rows


def _stored(tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    with tenant_context(tenant):
        return {
            row[0]: row[1:]
            for row in Order.objects.values_list(
                "amazon_order_id",
                "status",
                "last_update_date",
                "order_total",
                "currency",
                "number_of_items_shipped",
                "number_of_items_unshipped",
                "fulfillment_channel",
            )
        }


def _cursor(tenant: Tenant, kind: str = f"orders:{US}") -> SyncCursor:
    with tenant_context(tenant):
        return SyncCursor.objects.get(kind=kind)


def _runs(tenant: Tenant, kind: str) -> list[JobRun]:
    with tenant_context(tenant):
        return list(JobRun.objects.filter(kind=kind).order_by("id"))


def test_full_then_incremental_sync_matches_the_market(sim: Any, conn: SellerConnection) -> None:
    tenant, market = conn.tenant, sim.market
    market.generate_orders(120, days=30)
    with working_for(tenant):
        counts = sync_orders(connection=conn, since=_since(sim), page_size=50)
    expected = _expected(sim)
    assert len(expected) >= 110
    assert _stored(tenant) == expected
    assert counts["created"] == len(expected) and counts["updated"] == counts["unchanged"] == 0
    assert counts["items_orders"] == len(expected) and counts["items_backlog"] == 0
    cursor = _cursor(tenant)
    assert cursor.updated_until == _now(sim) - SKEW and cursor.next_token == ""
    (run,) = _runs(tenant, "amazon.sync_orders")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.progress_done == len(expected)

    # Items: every line, prices as Amazon gives them (none while Pending), money exact.
    with tenant_context(tenant):
        items = {
            (i.order.amazon_order_id, i.order_item_id): i for i in OrderItem.objects.select_related("order")
        }
        assert not Order.objects.exclude(items_synced_for=F("last_update_date")).exists()
    for order_id in expected:
        order = market.orders[order_id]
        pending = order.status_at(_now(sim)) == "Pending"
        for line in order.items:
            item = items.pop((order_id, line.order_item_id))
            assert (item.sku, item.asin, item.quantity_ordered) == (line.sku, line.asin, line.quantity)
            assert item.item_price == (None if pending else cents_to_decimal(line.price_cents))
            assert item.item_tax == (None if pending else cents_to_decimal(line.tax_cents))
            assert isinstance(item.item_price, Decimal | None)
    assert items == {}

    # Six hours later: only what moved comes back, and only that is written again.
    with tenant_context(tenant):
        before = dict(Order.objects.values_list("amazon_order_id", "updated_at"))
    old_until = cursor.updated_until
    market.clock.advance(6 * 3600)
    now = _now(sim)
    moved = {oid for oid in before if old_until < market.orders[oid].last_update_at(now) <= now - SKEW}
    assert moved, "six hours move some orders (payment, shipping)"
    sim.app.log.clear()
    with working_for(tenant):
        counts = sync_orders(connection=conn, page_size=50)
    expected = _expected(sim)
    new = set(expected) - set(before)
    stored = _stored(tenant)
    assert {k: stored[k] for k in expected} == expected
    assert counts["updated"] == len(moved) and counts["created"] == len(new)
    first = next(r for r in sim.app.log if r.operation == "getOrders")
    assert first.query["LastUpdatedAfter"] == [iso(old_until)]
    with tenant_context(tenant):
        after = dict(Order.objects.values_list("amazon_order_id", "updated_at"))
        assert not Order.objects.exclude(items_synced_for=F("last_update_date")).exists()
    assert {oid for oid in before if after[oid] != before[oid]} == moved
    assert counts["items_orders"] == len(moved) + len(new)  # items refetched only for what changed
    assert _cursor(tenant).updated_until == now - SKEW


def test_an_interrupted_sync_resumes_without_duplicates_and_the_cursor_waits(
    sim: Any, conn: SellerConnection
) -> None:
    tenant, market = conn.tenant, sim.market
    market.generate_orders(250, days=30)

    def amazon_goes_down(pages: int) -> None:
        if pages == 2:  # pages 1 and 2 are committed; page 3 meets 500s past the retry budget
            market.fail_next("getOrders", 10, 500)

    with working_for(tenant), pytest.raises(AmazonUnavailable):
        sync_orders(connection=conn, since=_since(sim), page_size=50, after_page=amazon_goes_down)
    assert len(_stored(tenant)) == 100
    cursor = _cursor(tenant)
    assert cursor.next_token and cursor.position == 100
    assert cursor.updated_until is None  # the pass is not complete: the cursor has not moved
    assert cursor.pass_started_at == _now(sim) - SKEW  # Amazon's bound for this pass, kept for its end
    (failed,) = _runs(tenant, "amazon.sync_orders")
    assert failed.outcome == JobRun.Outcome.FAILED and "getOrders" in failed.error
    assert failed.counts["created"] == 100

    market.faults.clear()
    sim.app.log.clear()
    with working_for(tenant):
        counts = sync_orders(connection=conn, page_size=50, with_items=False)
    first = next(r for r in sim.app.log if r.operation == "getOrders")
    assert first.query["NextToken"] == [cursor.next_token]  # resumed, not started over
    expected = _expected(sim)
    assert counts["created"] == len(expected) - 100 and counts["resumed_passes"] == 1
    assert counts["updated"] == 0
    assert _stored(tenant) == expected
    with tenant_context(tenant):
        assert Order.objects.count() == len(expected)
    cursor = _cursor(tenant)
    assert cursor.next_token == "" and cursor.updated_until == _now(sim) - SKEW


def test_a_worker_killed_on_the_last_page_leaves_the_cursor_where_it_was(
    sim: Any, conn: SellerConnection
) -> None:
    class Killed(BaseException):
        pass

    tenant, market = conn.tenant, sim.market
    market.generate_orders(80, days=30)
    with working_for(tenant):
        sync_orders(connection=conn, since=_since(sim), with_items=False)
    first_until = _cursor(tenant).updated_until
    # Orders placed during the next three hours (Amazon never backdates one).
    market.generate_orders(250, days=3 / 24, until=_now(sim) + timedelta(hours=3))
    market.clock.advance(3 * 3600)

    def kill(pages: int) -> None:
        if pages == 1:
            raise Killed

    with working_for(tenant), pytest.raises(Killed):
        sync_orders(connection=conn, page_size=100, with_items=False, after_page=kill)
    cursor = _cursor(tenant)
    assert cursor.updated_until == first_until and cursor.next_token  # page 1 kept, cursor unmoved

    def kill_on_the_way_to_the_last_page(pages: int) -> None:
        market.fail_next("getOrders", 10, 503)  # the final page never arrives

    with working_for(tenant), pytest.raises(AmazonUnavailable):
        sync_orders(connection=conn, with_items=False, after_page=kill_on_the_way_to_the_last_page)
    assert _cursor(tenant).updated_until == first_until
    market.faults.clear()
    with working_for(tenant):
        sync_orders(connection=conn, with_items=False)
    assert _cursor(tenant).updated_until == _now(sim) - SKEW
    assert _stored(tenant) == _expected(sim)


def test_an_expired_page_token_restarts_the_pass_from_the_cursor(sim: Any, conn: SellerConnection) -> None:
    tenant = conn.tenant
    sim.market.generate_orders(150, days=30)
    with working_for(tenant), pytest.raises(AmazonUnavailable):
        sync_orders(
            connection=conn,
            since=_since(sim),
            page_size=50,
            with_items=False,
            after_page=lambda n: sim.market.fail_next("getOrders", 10, 500),
        )
    sim.market.faults.clear()
    sim.app._cursors.clear()  # Amazon forgot the page token
    with working_for(tenant):
        counts = sync_orders(connection=conn, since=_since(sim), page_size=50, with_items=False)
    assert counts["restarted_passes"] == 1 and counts["unchanged"] == 50
    assert _stored(tenant) == _expected(sim)


def _expected_events(sim: Any, since: datetime) -> tuple[int, dict[tuple[str, str, str], dict[str, Decimal]]]:
    """(number of lines, (kind, order id, sku) -> summed amounts), from the market's own bookkeeping.
    Adjustments (FBA reimbursements) carry no order id on Amazon: keyed by ("adjustment", "", sku)."""
    now = _now(sim)
    d = cents_to_decimal
    lines = 0
    rows: dict[tuple[str, str, str], dict[str, Decimal]] = {}

    def add(key: tuple[str, str, str], **amounts: Decimal) -> None:
        total = rows.setdefault(key, dict.fromkeys(AMOUNTS, Decimal("0.00")))
        for name, value in amounts.items():
            total[name] += value

    for order in sim.market.seller_orders(sim.seller_id):
        for posted, list_name, _ in order.financial_events():
            if not (since <= posted <= now - SKEW):
                continue
            for item in order.items:
                lines += 1
                if list_name == "ShipmentEventList":
                    add(
                        ("shipment", order.order_id, item.sku),
                        principal=d(item.price_cents),
                        tax=d(item.tax_cents),
                        shipping=d(item.shipping_cents),
                        referral_fee=d(-item.referral_cents),
                        fba_fee=d(-item.fba_fee_cents) if order.afn else d(0),
                    )
                elif list_name == "RefundEventList":
                    kept = min(round(item.referral_cents * 0.2), 500)
                    add(
                        ("refund", order.order_id, item.sku),
                        principal=d(-item.price_cents),
                        tax=d(-item.tax_cents),
                        shipping=d(-item.shipping_cents),
                        referral_fee=d(item.referral_cents - kept),
                    )
                else:
                    per_unit = (item.price_cents - item.referral_cents) // max(item.quantity, 1)
                    add(("adjustment", "", item.sku), other=d(per_unit * item.quantity))
    return lines, rows


AMOUNTS = ("principal", "tax", "shipping", "referral_fee", "fba_fee", "other")


def _stored_events(tenant: Tenant) -> dict[tuple[str, str, str], dict[str, Decimal]]:
    rows: dict[tuple[str, str, str], dict[str, Decimal]] = {}
    with tenant_context(tenant):
        for event in FinancialEvent.objects.all():
            total = rows.setdefault(
                (event.kind, event.amazon_order_id, event.sku), dict.fromkeys(AMOUNTS, Decimal("0.00"))
            )
            for name in AMOUNTS:
                total[name] += getattr(event, name)
    return rows


def test_financial_events_are_stored_once_with_exact_money_and_attached_to_orders(
    sim: Any, conn: SellerConnection
) -> None:
    tenant, market = conn.tenant, sim.market
    # Three months of orders: shipments, refunds 3-20 days later, FBA reimbursements 10-30 days after.
    market.generate_orders(600, days=90)
    since = _now(sim) - timedelta(days=120)
    with working_for(tenant):
        counts = sync_financial_events(connection=conn, since=since)  # before the orders: unattached
    lines, expected = _expected_events(sim, since)
    assert {k[0] for k in expected} == {"shipment", "refund", "adjustment"}
    with tenant_context(tenant):
        events = list(FinancialEvent.objects.all())
    assert counts["events"] == len(events) == lines
    assert all(e.order_id is None for e in events)
    assert _stored_events(tenant) == expected  # every amount, to the cent

    with working_for(tenant):
        sync_orders(connection=conn, since=since, with_items=False)
        again = sync_financial_events(connection=conn)  # re-reads the overlap: updated, not duplicated
    assert again["events"] > 0
    assert _stored_events(tenant) == expected
    with tenant_context(tenant):
        events = list(FinancialEvent.objects.select_related("order"))
    assert len(events) == lines
    for event in events:
        assert event.currency == "USD" and isinstance(event.principal, Decimal)
        if event.kind == FinancialEvent.Kind.ADJUSTMENT:
            assert event.adjustment_type == "FBAInventoryReimbursement" and event.order is None
        else:  # attached by the orders sync, which came after the events
            assert event.order is not None and event.order.amazon_order_id == event.amazon_order_id
    cursor = _cursor(tenant, "finances")
    assert cursor.next_token == "" and cursor.updated_until == max(e.posted_date for e in events)


def test_one_tenants_sync_never_touches_anothers_rows(sim: Any) -> None:
    a, b = _connect(sim), _connect(sim)  # two companies, same Amazon account
    sim.market.generate_orders(60, days=30)
    with working_for(a.tenant):
        sync_orders(connection=a, since=_since(sim))
        sync_financial_events(connection=a, since=_since(sim))
    expected = _expected(sim)
    assert _stored(a.tenant) == expected and _stored(b.tenant) == {}
    with tenant_context(a.tenant):
        a_rows = dict(Order.objects.values_list("amazon_order_id", "updated_at"))
        a_items, a_events = OrderItem.objects.count(), FinancialEvent.objects.count()
    sim.market.clock.advance(4 * 3600)
    with working_for(b.tenant):
        assert sync_orders(connection=b, since=_since(sim))["created"] == len(_expected(sim))
        sync_financial_events(connection=b, since=_since(sim))
    with tenant_context(a.tenant):
        assert dict(Order.objects.values_list("amazon_order_id", "updated_at")) == a_rows  # untouched by B
        assert (OrderItem.objects.count(), FinancialEvent.objects.count()) == (a_items, a_events)
        # The database itself shows A's rows only, even through the unscoped manager.
        assert Order.all_tenants.count() == len(a_rows)
        assert OrderItem.all_tenants.count() == a_items
        assert FinancialEvent.all_tenants.count() == a_events
        assert not Order.all_tenants.filter(connection=b).exists()


def test_tasks_run_the_syncs_and_skip_inactive_connections(sim: Any, conn: SellerConnection) -> None:
    # The task starts at the configured lookback from *our* clock, which the simulator does not share;
    # the lookback is therefore pushed past the simulated "now" (January 2026) for this test.
    sim.market.generate_orders(30, days=5)
    with override_settings(
        AMAZON_ORDERS_LOOKBACK_DAYS=(datetime.now(tz=_now(sim).tzinfo) - _now(sim)).days + 6
    ):
        sync_orders_task.apply(
            kwargs={"tenant_id": conn.tenant.pk, "connection_id": str(conn.public_id)}, throw=True
        )
        sync_financial_events_task.apply(
            kwargs={"tenant_id": conn.tenant.pk, "connection_id": str(conn.public_id)}, throw=True
        )
    assert _stored(conn.tenant) == _expected(sim)
    assert [r.outcome for r in _runs(conn.tenant, "amazon.sync_financial_events")] == [
        JobRun.Outcome.SUCCEEDED
    ]
    with tenant_context(conn.tenant):
        conn.status = SellerConnection.Status.DISCONNECTED
        conn.save(update_fields=["status", "updated_at"])
    sim.app.log.clear()
    result = sync_orders_task.apply(
        kwargs={"tenant_id": conn.tenant.pk, "connection_id": str(conn.public_id)}, throw=True
    )
    assert result.result is None and len(sim.app.log) == 0


def test_order_syncs_are_registered_with_the_dispatcher() -> None:
    assert PERIODIC_JOBS["amazon.sync_orders"].task_name == "amazon.sync_orders_all"
    assert PERIODIC_JOBS["amazon.sync_orders"].every == timedelta(minutes=10)
    assert PERIODIC_JOBS["amazon.sync_financial_events"].task_name == "amazon.sync_financial_events_all"
    assert PERIODIC_JOBS["amazon.sync_financial_events"].every == timedelta(hours=1)
