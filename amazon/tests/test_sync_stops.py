"""A connection disconnected while one of its syncs pages through Amazon: the sync stops before its next
call (no request of any kind reaches the simulator after the disconnect), keeps what it committed, and
its JobRun says why. Against the simulator, with the disconnect done through the service a person uses
(between pages, or from another thread while Amazon answers, as a web request would)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings

from accounts.roles import Role
from amazon import ratelimit, services
from amazon.models import FinancialEvent, Listing, OfferSnapshot, Order, SellerConnection, SyncCursor
from amazon.simulator.market import US
from amazon.sync import ConnectionNotActive, ensure_still_active, sync_listings, sync_offers
from amazon.sync_orders import sync_financial_events, sync_orders
from amazon.tasks import sync_listings_task
from amazon.tests.factories import make_connection
from tenants import context
from tenants.context import tenant_context
from tenants.models import JobRun, Tenant
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    simulator.market.throttling = False
    for operation in ("getOrders", "getOrderItems", "listFinancialEvents", "getListingOffersBatch"):
        monkeypatch.setitem(ratelimit.OPERATION_LIMITS, operation, (1000.0, 1000))
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        SP_API_MAX_ATTEMPTS=3,
    ):
        yield simulator


@pytest.fixture
def conn(sim: Any) -> SellerConnection:
    creds = sim.credentials
    return make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )


@contextlib.contextmanager
def working_for(tenant: Tenant) -> Iterator[None]:
    """What the non-atomic TenantTask does around the body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


class Disconnector:
    """Disconnects `connection` (as its owner would, through the service) and remembers how many
    requests the simulator had received by then."""

    def __init__(self, sim: Any, connection: SellerConnection) -> None:
        self.sim, self.connection = sim, connection
        self.owner = make_member(connection.tenant, Role.OWNER)
        self.requests_before: int | None = None

    def __call__(self) -> None:
        with tenant_context(self.connection.tenant):
            services.seller_connection_disconnect(
                connection=self.connection, actor=self.owner, actor_role=Role.OWNER
            )
        self.requests_before = len(self.sim.app.log)

    def after_page(self, page: int) -> Callable[[int], None]:
        return lambda pages: self() if pages == page else None

    def on_simulator_call(self, operation: str, call: int) -> None:
        """Disconnect from another thread (a person's web request) while Amazon answers the `call`-th
        `operation` request; that answer still arrives."""
        original = getattr(self.sim.app, operation)
        seen = [0]

        def answer(*args: Any, **kwargs: Any) -> Any:
            seen[0] += 1
            if seen[0] == call:
                worker = threading.Thread(target=self._in_own_thread)
                worker.start()
                worker.join()
            return original(*args, **kwargs)

        setattr(self.sim.app, operation, answer)

    def _in_own_thread(self) -> None:
        try:
            self()
            # The request in flight is answered after this, and logged: count it as before.
            self.requests_before = (self.requests_before or 0) + 1
        finally:
            connections.close_all()

    def assert_nothing_asked_since(self) -> None:
        assert self.requests_before is not None, "the disconnect never happened"
        later = list(self.sim.app.log)[self.requests_before :]
        assert later == [], [r.operation for r in later]


def _calls(sim: Any, operation: str) -> int:
    return sum(1 for r in sim.app.log if r.operation == operation)


def _run(tenant: Tenant, kind: str) -> JobRun:
    with tenant_context(tenant):
        return JobRun.objects.get(kind=kind)


def _assert_stopped(run: JobRun, outcome: str = JobRun.Outcome.PARTIAL) -> None:
    assert run.outcome == outcome
    assert run.counts["stopped"] == 1
    assert run.error == (
        "Stopped: the Amazon account was disconnected while this ran. "
        "Nothing more was asked of Amazon for it."
    )
    assert run.finished_at is not None


def test_a_listings_sync_stops_between_pages_and_keeps_what_it_committed(
    sim: Any, conn: SellerConnection
) -> None:
    disconnect = Disconnector(sim, conn)
    with working_for(conn.tenant):
        counts = sync_listings(connection=conn, page_size=10, after_page=disconnect.after_page(2))

    disconnect.assert_nothing_asked_since()
    assert _calls(sim, "searchListingsItems") == 2  # of 4 pages
    assert counts["created"] == 20 and counts["stopped"] == 1
    run = _run(conn.tenant, "amazon.sync_listings")
    _assert_stopped(run)
    assert (run.progress_done, run.progress_total) == (20, 40)
    with tenant_context(conn.tenant):
        assert Listing.objects.count() == 20
        cursor = SyncCursor.objects.get(connection=conn, kind=f"listings:{US}")
        assert cursor.next_token and cursor.position == 20  # a reconnected account resumes here
        assert SellerConnection.objects.get(pk=conn.pk).status == SellerConnection.Status.DISCONNECTED


def test_an_offers_run_stops_between_batches(sim: Any, conn: SellerConnection) -> None:
    with working_for(conn.tenant):
        sync_listings(connection=conn)
    disconnect = Disconnector(sim, conn)
    disconnect.on_simulator_call("getListingOffersBatch", call=1)
    with working_for(conn.tenant):
        sync_offers(connection=conn)

    disconnect.assert_nothing_asked_since()
    assert _calls(sim, "getListingOffersBatch") == 1  # of 2 batches of 20
    run = _run(conn.tenant, "amazon.sync_offers")
    _assert_stopped(run)
    assert run.counts["snapshots"] == 20
    with tenant_context(conn.tenant):
        assert OfferSnapshot.objects.count() == 20


def test_an_orders_sync_stops_between_pages_before_any_order_items(sim: Any, conn: SellerConnection) -> None:
    sim.market.generate_orders(250)
    disconnect = Disconnector(sim, conn)
    since = sim.market.clock.now() - timedelta(days=31)
    with working_for(conn.tenant):
        sync_orders(connection=conn, since=since, page_size=100, after_page=disconnect.after_page(1))

    disconnect.assert_nothing_asked_since()
    assert _calls(sim, "getOrders") == 1 and _calls(sim, "getOrderItems") == 0
    run = _run(conn.tenant, "amazon.sync_orders")
    _assert_stopped(run)
    assert run.counts["created"] == 100
    with tenant_context(conn.tenant):
        assert Order.objects.count() == 100


def test_an_orders_sync_stops_in_the_order_items_backlog(sim: Any, conn: SellerConnection) -> None:
    sim.market.generate_orders(30)
    disconnect = Disconnector(sim, conn)
    disconnect.on_simulator_call("getOrderItems", call=3)
    since = sim.market.clock.now() - timedelta(days=31)
    with working_for(conn.tenant):
        sync_orders(connection=conn, since=since)

    disconnect.assert_nothing_asked_since()
    assert _calls(sim, "getOrderItems") == 3
    run = _run(conn.tenant, "amazon.sync_orders")
    _assert_stopped(run)
    assert run.counts["items_orders"] == 3
    with tenant_context(conn.tenant):
        assert Order.objects.filter(items_synced_for__isnull=False).count() == 3


def test_a_financial_events_sync_stops_between_pages(sim: Any, conn: SellerConnection) -> None:
    sim.market.generate_orders(400)
    disconnect = Disconnector(sim, conn)
    since = sim.market.clock.now() - timedelta(days=31)
    with working_for(conn.tenant):
        sync_financial_events(connection=conn, since=since, after_page=disconnect.after_page(1))

    disconnect.assert_nothing_asked_since()
    assert _calls(sim, "listFinancialEvents") == 1
    run = _run(conn.tenant, "amazon.sync_financial_events")
    _assert_stopped(run)
    with tenant_context(conn.tenant):
        assert FinancialEvent.objects.exists()
        assert SyncCursor.objects.get(connection=conn, kind="finances").next_token


def test_a_sync_whose_connection_went_before_its_first_call_is_skipped(
    sim: Any, conn: SellerConnection
) -> None:
    Disconnector(sim, conn)()
    with working_for(conn.tenant):
        counts = sync_listings(connection=conn)  # called directly: the task would not even start it
    assert counts["stopped"] == 1
    assert not sim.app.log
    _assert_stopped(_run(conn.tenant, "amazon.sync_listings"), JobRun.Outcome.SKIPPED)


def test_needs_reauthorization_also_stops_with_its_own_reason(sim: Any, conn: SellerConnection) -> None:
    with tenant_context(conn.tenant):
        SellerConnection.objects.filter(pk=conn.pk).update(
            status=SellerConnection.Status.NEEDS_REAUTHORIZATION
        )
        with pytest.raises(ConnectionNotActive) as stopped:
            ensure_still_active(conn)
    assert "needs re-authorisation" in str(stopped.value)
    assert conn.status == SellerConnection.Status.NEEDS_REAUTHORIZATION


def test_the_task_still_skips_an_inactive_connection_without_a_run(sim: Any, conn: SellerConnection) -> None:
    Disconnector(sim, conn)()
    result = sync_listings_task.apply(
        kwargs={"tenant_id": conn.tenant.pk, "connection_id": str(conn.public_id)}, throw=True
    )
    assert result.result is None
    with tenant_context(conn.tenant):
        assert not JobRun.objects.exists()
    assert not sim.app.log


def test_an_active_connection_runs_to_the_end(sim: Any, conn: SellerConnection) -> None:
    with working_for(conn.tenant):
        counts = sync_listings(connection=conn, page_size=10)
    assert "stopped" not in counts and counts["created"] == 40
    run = _run(conn.tenant, "amazon.sync_listings")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.error == ""
