"""Repricing end to end on the simulator: real HTTP both ways (the simulator's notification dispatcher
posts to our intake on a live server; our sp_api client calls the simulator), real PostgreSQL and Redis,
and the real Celery tasks run by a stand-in worker in the order they were enqueued.

A competitor drops its price and takes the Buy Box; Amazon notifies; the consumer reprices with the
seller's "beat the Buy Box by 0.01" rule within the SKU's bounds; the price is sent, followed up and goes
live; the Buy Box comes back to us; the decision's trace says why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery.app.task import Task
from django.conf import settings
from django.test import override_settings

import repricing.tasks  # noqa: F401 - registers the consumer task (autodiscovery runs only in a worker)
from accounts.roles import Role
from amazon.models import Listing, OfferChangeNotification
from amazon.services import seller_route_sync
from amazon.simulator.market import DEMO_SELLER_ID, US, Market, Offer, Product
from amazon.simulator.market import Listing as AmazonListing
from amazon.simulator.notifications import deliver
from amazon.simulator.testing import RunningSimulator, start_simulator
from amazon.sync import sync_listings
from amazon.tests.factories import make_connection
from config.celery import app
from repricing.models import PriceDecision, PriceSubmission
from repricing.services import company_settings_update, rule_create, sku_pricing_update
from repricing.tests.test_submission import working_for
from tenants.context import tenant_context
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

ASIN = "B0E2EKETTL"
SKU = "E2E-KETTLE-01"
RIVAL = "ARIVALSELLER01"
RULE = {
    "strategy": {
        "kind": "buy_box",
        "mode": "beat",
        "amount": "0.01",
        "when_no_buy_box": "hold",
        "when_alone": "hold",
    },
    "bounds": {"out_of_bounds": "bound"},
    "dry_run": False,
}


def _market() -> Market:
    """The demo market plus one kettle: ours (FBA, 45.00) and a rival's (FBA, 95 % feedback, 47.00) that
    undercuts the lowest other offer every 15 minutes, but never above its own ceiling of 41.00."""
    market = Market.demo(seed=7, skus=3)
    product = market.add_product(
        Product(
            asin=ASIN,
            title="Gooseneck Kettle",
            category="Home & Kitchen",
            size_tier="small_standard",
            list_price=Decimal("50.00"),
            demand_per_hour=0.0,  # no buyers: stock and the Buy Box stay put
            sales_rank=1200,
        )
    )
    market.add_competitor(
        Offer(
            seller_id=RIVAL,
            asin=ASIN,
            marketplace_id=US,
            condition="New",
            sub_condition="new",
            price=Decimal("47.00"),
            shipping=Decimal("0.00"),
            fulfillment="Amazon",
            feedback_rating=95,
            feedback_count=2300,
            handling_hours=(0, 0),
            quantity=500,
            strategy="undercut",
            floor=Decimal("30.00"),
            ceiling=Decimal("41.00"),
            reprice_every=900,
        )
    )
    now = market.clock.now()
    market.add_listing(
        AmazonListing(
            seller_id=DEMO_SELLER_ID,
            sku=SKU,
            asin=ASIN,
            marketplace_id=US,
            price=Decimal("45.00"),
            quantity=500,
            fulfillment_channel="AMAZON_NA",
            condition_type="new_new",
            item_name=product.title,
            product_type=product.product_type,
            created=now - timedelta(days=90),
            updated=now - timedelta(days=2),
            min_price=Decimal("30.00"),
            max_price=Decimal("60.00"),
        )
    )
    return market


@pytest.fixture
def marketplace() -> Iterator[RunningSimulator]:
    running = start_simulator(_market())
    try:
        with override_settings(
            LWA_TOKEN_URL=running.lwa_url,
            SP_API_ENDPOINT=running.base_url,
            SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        ):
            yield running
    finally:
        running.server.stop()


class Worker:
    """Stands in for the Celery worker: collects what is enqueued (apply_async, send_task) and runs it
    eagerly, in order, countdowns ignored (the test moves the simulator's clock instead)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.ran: list[str] = []
        worker = self

        def apply_async(self: Task, args: Any = None, kwargs: Any = None, **options: Any) -> None:
            worker.queue.append((self.name, dict(kwargs or {})))

        def send_task(name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:
            worker.queue.append((name, dict(kwargs or {})))

        monkeypatch.setattr(Task, "apply_async", apply_async)
        monkeypatch.setattr(app, "send_task", send_task)

    def run(self) -> list[str]:
        done: list[str] = []
        while self.queue:
            name, kwargs = self.queue.pop(0)
            app.tasks[name].apply(kwargs=kwargs, throw=True)
            done.append(name)
        self.ran += done
        return done


def test_a_competitors_price_drop_is_answered_on_amazon_by_the_rule(
    marketplace: RunningSimulator, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = marketplace.market
    creds = marketplace.credentials
    connection = make_connection(
        make_tenant("Kettle Co"),
        selling_partner_id=marketplace.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )
    tenant = connection.tenant
    seller_route_sync(connection)  # notifications for this seller reach this company
    with working_for(tenant):
        sync_listings(connection=connection)
    with tenant_context(tenant):
        listing = Listing.objects.get(sku=SKU)
        rule = rule_create(name="Beat the Buy Box by a cent", config=RULE, actor=None, actor_role=Role.OWNER)
        company_settings_update(dry_run=False, actor=None, actor_role=Role.OWNER)
        sku_pricing_update(
            listing=listing,
            values={"rule": rule, "min_price": "35.00", "max_price": "60.00"},
            actor=None,
            actor_role=Role.OWNER,
        )
    assert market.buybox_winner(US, ASIN).seller_id == DEMO_SELLER_ID  # 45.00 against 47.00

    worker = Worker(monkeypatch)
    secret = str(settings.AMAZON_NOTIFICATIONS_SECRET).split(",")[0]
    market.subscribe(live_server.url + "/amazon/notifications", secret=secret)

    # A quarter of an hour later the rival drops to its ceiling, 41.00, and takes the Buy Box.
    market.clock.advance(901)
    rival = next(o for o in market.competitors[(US, ASIN)] if o.seller_id == RIVAL)
    assert rival.price == Decimal("41.00")
    assert market.buybox_winner(US, ASIN).seller_id == RIVAL
    assert marketplace.server.notifications.flush(timeout=60)
    ours = [
        n
        for n in market.pending_notifications
        if n["Payload"]["AnyOfferChangedNotification"]["OfferChangeTrigger"]["ASIN"] == ASIN
    ]
    assert ours and {status for _, nid, status in market.deliveries if nid in _ids(ours)} == {202}
    with tenant_context(tenant):
        assert OfferChangeNotification.objects.filter(asin=ASIN).count() == len(ours)

    # The worker: the intake woke the consumer, which reprices and wakes the sender, which schedules
    # the follow-up.
    ran = worker.run()
    assert ran[0] == "repricing.consume_notifications"
    assert "repricing.send_submissions" in ran and "repricing.follow_up_submissions" in ran
    with tenant_context(tenant):
        decision = PriceDecision.objects.get(listing=listing)
        submission = PriceSubmission.objects.get(decision=decision)
        assert OfferChangeNotification.objects.filter(asin=ASIN, processed_at__isnull=True).count() == 0
    assert decision.trigger == PriceDecision.Trigger.NOTIFICATION
    assert (decision.action, decision.old_price, decision.new_price) == (
        PriceDecision.Action.CHANGE,
        Decimal("45.00"),
        Decimal("40.99"),
    )
    assert decision.submit and not decision.dry_run and not decision.kill_switch
    assert decision.rule_id == rule.pk and decision.notification_received_at is not None
    # Why this price: the rival's Buy Box at 41.00, beaten by a cent.
    why = next(step["message"] for step in decision.trace if step["code"] == "buy_box")
    seen = re.search(r"Buy Box is ([0-9.]+) \(seller (\w+)", why)
    assert seen and Decimal(seen.group(1)) == Decimal("41.00") and seen.group(2) == RIVAL, why
    assert "beat by 0.01" in why and "40.99" in why, why

    assert submission.status == PriceSubmission.Status.ACCEPTED, submission.error
    assert submission.price == Decimal("40.99") and submission.amazon_reference
    (patch,) = [r for r in marketplace.app.log if r.operation == "patchListingsItem"]
    assert patch.path.endswith("/" + SKU) and patch.status == 200
    assert market.listing(DEMO_SELLER_ID, SKU, US).price == Decimal("45.00")  # not live yet
    assert market.buybox_winner(US, ASIN).seller_id == RIVAL

    # Amazon applies the price five minutes later; the follow-up sees it live.
    market.clock.advance(market.patch_delay_seconds + 1)
    app.tasks["repricing.follow_up_submissions"].apply(kwargs={"tenant_id": tenant.pk}, throw=True)
    with tenant_context(tenant):
        submission.refresh_from_db()
    assert submission.status == PriceSubmission.Status.APPLIED
    assert submission.sent_at <= submission.accepted_at <= submission.finished_at
    assert market.listing(DEMO_SELLER_ID, SKU, US).price == Decimal("40.99")
    winner = market.buybox_winner(US, ASIN)
    assert (winner.seller_id, winner.sku, winner.price) == (DEMO_SELLER_ID, SKU, Decimal("40.99"))
    assert len([r for r in marketplace.app.log if r.operation == "patchListingsItem"]) == 1

    # Amazon (SQS) delivers at least once: the same notification again decides and sends nothing more.
    assert deliver(live_server.url + "/amazon/notifications", ours[-1], secret=secret) == 200
    worker.run()
    app.tasks["repricing.send_submissions"].apply(kwargs={"tenant_id": tenant.pk}, throw=True)
    with tenant_context(tenant):
        assert PriceDecision.objects.filter(listing=listing).count() == 1
        assert PriceSubmission.objects.filter(listing=listing).count() == 1
    assert len([r for r in marketplace.app.log if r.operation == "patchListingsItem"]) == 1


def _ids(notifications: list[dict[str, Any]]) -> set[str]:
    return {n["NotificationMetadata"]["NotificationId"] for n in notifications}
