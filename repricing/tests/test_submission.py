"""Sending prices to Amazon and following them up, against the simulator: the real sp_api client over
HTTP, real PostgreSQL (every claim and outcome committed on its own, as the non-atomic task runs it) and
Redis (token cache, limiter, the issues baseline)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django import db
from django.test import override_settings
from django.utils import timezone

from accounts.roles import Role
from amazon.models import Listing, SellerConnection
from amazon.simulator.market import US
from amazon.simulator.models_dir import spapi_models_path
from amazon.simulator.testing import simulator  # noqa: F401 - the fixture
from amazon.sync import sync_listings
from amazon.tests.factories import make_connection
from repricing import submission
from repricing.models import PriceDecision, PriceSubmission, RepricingSettings, SkuPricing
from repricing.services import kill_switch_set
from repricing.submission import (
    DRY_RUN_REASON,
    follow_up_submissions,
    price_patch,
    send_submissions,
    submissions_cancel_queued,
)
from tenants import context
from tenants.context import tenant_context
from tenants.jobs import PERIODIC_JOBS
from tenants.models import JobRun, Tenant
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

S = PriceSubmission.Status


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:  # noqa: F811 - the fixture above
    simulator.market.throttling = False  # the 429 tests turn it on themselves
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        SP_API_MAX_ATTEMPTS=3,
    ):
        yield simulator


@dataclass
class Shop:
    sim: Any
    tenant: Tenant
    connection: SellerConnection

    @property
    def market(self) -> Any:
        return self.sim.market

    def listing(self, sku: str) -> Listing:
        with tenant_context(self.tenant):
            return Listing.objects.get(sku=sku)

    def skus(self, count: int) -> list[str]:
        """The first `count` buyable simulator SKUs."""
        rows = sorted(self.market.seller_listings(self.sim.seller_id, US), key=lambda li: li.sku)
        return [li.sku for li in rows if "BUYABLE" in li.status][:count]

    def on_amazon(self, sku: str) -> Any:
        return self.market.listing(self.sim.seller_id, sku, US)

    def reference_price(self, sku: str) -> Decimal:
        li = self.on_amazon(sku)
        return Decimal(self.market.products[(US, li.asin)].list_price)

    def queue(
        self, sku: str, price: Decimal | str, *, currency: str = "USD", **fields: Any
    ) -> PriceSubmission:
        """What the pipeline writes for a decision to send: the decision and its queued submission."""
        listing = self.listing(sku)
        now = fields.pop("queued_at", timezone.now())
        with tenant_context(self.tenant):
            decision = PriceDecision.objects.create(
                listing=listing,
                trigger=PriceDecision.Trigger.NOTIFICATION,
                action=PriceDecision.Action.CHANGE,
                reason="beat_buy_box",
                currency=currency,
                old_price=listing.price,
                new_price=Decimal(price),
                submit=True,
                observed_at=now,
                decided_at=now,
            )
            return PriceSubmission.objects.create(
                decision=decision,
                listing=listing,
                channel=PriceSubmission.Channel.LISTINGS_PATCH,
                price=Decimal(price),
                currency=currency,
                queued_at=now,
                **fields,
            )

    def rows(self) -> dict[str, PriceSubmission]:
        with tenant_context(self.tenant):
            return {
                row.listing.sku: row
                for row in PriceSubmission.objects.select_related("listing").order_by("queued_at", "pk")
            }

    def row(self, pk: int) -> PriceSubmission:
        with tenant_context(self.tenant):
            return PriceSubmission.objects.select_related("listing").get(pk=pk)

    def patches(self, sku: str | None = None, status: int | None = 200) -> list[Any]:
        """patchListingsItem requests the simulator answered (with `status`, None: any)."""
        return [
            r
            for r in self.sim.app.log
            if r.operation == "patchListingsItem"
            and (status is None or r.status == status)
            and (sku is None or r.path.endswith("/" + sku))
        ]

    def send(self) -> dict[str, int]:
        with working_for(self.tenant):
            return send_submissions()

    def follow_up(self, *, later: timedelta = timedelta(0)) -> dict[str, int]:
        with working_for(self.tenant):
            return follow_up_submissions(now=timezone.now() + later)

    def advance(self, seconds: float) -> None:
        self.market.clock.advance(seconds)


@contextlib.contextmanager
def working_for(tenant: Tenant) -> Iterator[None]:
    """What the non-atomic TenantTask does around the body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


def open_shop(sim: Any, *, dry_run: bool = False) -> Shop:
    creds = sim.credentials
    connection = make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )
    tenant = connection.tenant
    with working_for(tenant):
        sync_listings(connection=connection)
    with tenant_context(tenant):
        RepricingSettings.objects.create(dry_run=dry_run)
        for listing in Listing.objects.all():
            SkuPricing.objects.create(listing=listing)
    return Shop(sim, tenant, connection)


@pytest.fixture
def shop(sim: Any) -> Shop:
    return open_shop(sim)


# --- what is sent -------------------------------------------------------------------------------------


def test_the_price_patch_replaces_purchasable_offer_and_keeps_the_sellers_own_bounds() -> None:
    current = {
        "marketplace_id": "ATVPDKIKX0DER",
        "currency": "USD",
        "audience": "ALL",
        "our_price": [{"schedule": [{"value_with_tax": 30.0}]}],
        "minimum_seller_allowed_price": [{"schedule": [{"value_with_tax": 20.0}]}],
        "maximum_seller_allowed_price": [{"schedule": [{"value_with_tax": 50.0}]}],
        "discounted_price": [{"schedule": [{"value_with_tax": 25.0}]}],
    }
    patch = price_patch(
        marketplace_id="ATVPDKIKX0DER", currency="USD", price=Decimal("19.99"), current_offer=current
    )
    assert patch == {
        "op": "replace",
        "path": "/attributes/purchasable_offer",
        "value": [
            {
                "audience": "ALL",
                "minimum_seller_allowed_price": [{"schedule": [{"value_with_tax": 20.0}]}],
                "maximum_seller_allowed_price": [{"schedule": [{"value_with_tax": 50.0}]}],
                "marketplace_id": "ATVPDKIKX0DER",
                "currency": "USD",
                "our_price": [{"schedule": [{"value_with_tax": 19.99}]}],
            }
        ],
    }
    assert json.dumps(patch).count("19.99") == 1  # a JSON number, exactly the price


def test_the_feed_document_follows_amazons_listings_feed_schema() -> None:
    schema_dir = spapi_models_path("schemas", "feeds")
    schema_file = Path(schema_dir) / "listings-feed-schema-v2.json"
    if not schema_file.is_file():
        pytest.skip(f"Amazon's listings feed schema is not at {schema_file}")
    patch = price_patch(marketplace_id=US, currency="USD", price=Decimal("12.50"))
    document = submission.listings_feed_document(
        "A3SIMDEMOSELL1",
        [
            submission.feed_message(1, "SKU-1", "KITCHEN", patch),
            submission.feed_message(2, "S,2", "TOY", patch),
        ],
    )
    jsonschema.Draft7Validator(json.loads(schema_file.read_text())).validate(document)


# --- single patches --------------------------------------------------------------------------------------


def test_a_few_prices_go_as_single_patches_and_are_followed_until_live(shop: Shop) -> None:
    first, second = shop.skus(2)
    before_min = shop.on_amazon(first).min_price
    stored_price = shop.listing(first).price
    one = shop.queue(first, shop.reference_price(first) - Decimal("0.37"))
    two = shop.queue(second, shop.reference_price(second) + Decimal("0.21"))

    assert shop.send() == {"sent": 2, "accepted": 2}
    assert len(shop.patches()) == 2
    request = shop.patches(first)[0]
    assert "mode" not in request.query  # a real change, not VALIDATION_PREVIEW
    assert request.query["marketplaceIds"] == [US]
    assert request.body["productType"] == shop.on_amazon(first).product_type
    (patch,) = request.body["patches"]
    assert patch["op"] == "replace" and patch["path"] == "/attributes/purchasable_offer"
    (value,) = patch["value"]
    assert value["marketplace_id"] == US and value["currency"] == "USD"
    assert Decimal(str(value["our_price"][0]["schedule"][0]["value_with_tax"])) == one.price
    assert (
        Decimal(str(value["minimum_seller_allowed_price"][0]["schedule"][0]["value_with_tax"])) == before_min
    )

    accepted = shop.row(one.pk)
    assert accepted.status == S.ACCEPTED and accepted.attempts == 1
    assert accepted.amazon_reference and accepted.amazon_reference in shop.market.pending
    assert accepted.sent_at is not None and accepted.accepted_at is not None and accepted.finished_at is None
    with tenant_context(shop.tenant):
        assert SkuPricing.objects.get(listing__sku=first).last_changed_at == accepted.accepted_at

    assert shop.follow_up() == {"waiting": 2}  # Amazon applies a price minutes later
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up() == {"applied": 2}
    for row in (shop.row(one.pk), shop.row(two.pk)):
        assert row.status == S.APPLIED and row.finished_at is not None and row.error == ""
        assert shop.on_amazon(row.listing.sku).price == row.price
    assert shop.on_amazon(first).min_price == before_min  # the seller's own floor survived the replace
    assert shop.listing(first).price == stored_price  # Amazon's copy is the listings sync's to write
    assert shop.follow_up() == {}  # nothing left to follow
    with tenant_context(shop.tenant):
        kinds = list(JobRun.objects.values_list("kind", "outcome"))
    assert ("repricing.send_submissions", JobRun.Outcome.SUCCEEDED) in kinds
    assert ("repricing.follow_up_submissions", JobRun.Outcome.SUCCEEDED) in kinds


def test_a_patch_rejected_later_is_shown_with_amazons_issue(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    before = shop.on_amazon(sku).price
    shop.market.reject_next_patch(shop.sim.seller_id, sku, "The price is outside the allowed range.")
    row = shop.queue(sku, before + Decimal("1.00"))
    assert shop.send() == {"sent": 1, "accepted": 1}
    assert shop.row(row.pk).status == S.ACCEPTED
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up() == {"rejected": 1}
    rejected = shop.row(row.pk)
    assert rejected.status == S.REJECTED and rejected.finished_at is not None
    (issue,) = rejected.issues
    assert issue == {
        "code": "99022",
        "message": "The price is outside the allowed range.",
        "severity": "ERROR",
        "attributeNames": ["purchasable_offer"],
        "categories": ["INVALID_ATTRIBUTE"],
        "marketplaceIds": [US],
    }
    assert shop.on_amazon(sku).price == before
    assert len(shop.patches(sku)) == 1


def test_an_old_price_error_on_the_listing_is_not_taken_for_a_rejection(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    old = {"code": "18208", "message": "An old pricing error.", "severity": "ERROR"}
    shop.on_amazon(sku).issues.append(
        dict(old, attributeNames=["purchasable_offer"], categories=["INVALID_PRICE"])
    )
    row = shop.queue(sku, shop.reference_price(sku) + Decimal("1.11"))
    shop.send()
    assert shop.follow_up() == {"waiting": 1}  # the error was there before we sent: not ours
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up() == {"applied": 1}
    assert shop.row(row.pk).status == S.APPLIED


def test_a_price_amazon_refuses_at_once_is_rejected_with_its_issues(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "9.99", currency="EUR")  # not the marketplace's currency
    assert shop.send() == {"sent": 1, "rejected": 1}
    rejected = shop.row(row.pk)
    assert rejected.status == S.REJECTED and rejected.finished_at is not None
    assert rejected.amazon_reference
    assert rejected.issues[0]["code"] == "90244"
    assert "currency EUR" in rejected.issues[0]["message"]
    assert shop.follow_up() == {}


def test_a_sku_amazon_does_not_know_fails_without_sending(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "20.00")
    with shop.market.lock:  # the seller deleted it in Seller Central
        del shop.market.listings[(shop.sim.seller_id, US, sku)]
    assert shop.send() == {"failed": 1}
    failed = shop.row(row.pk)
    assert failed.status == S.FAILED and "does not list this SKU" in failed.error
    assert shop.patches(status=None) == []


def test_an_older_queued_price_of_the_same_listing_is_superseded(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    now = timezone.now()
    old = shop.queue(sku, shop.reference_price(sku), queued_at=now - timedelta(seconds=30))
    new = shop.queue(sku, shop.reference_price(sku) + Decimal("0.50"), queued_at=now)
    assert shop.send() == {"superseded": 1, "sent": 1, "accepted": 1}
    assert shop.row(old.pk).status == S.SUPERSEDED
    assert shop.row(new.pk).status == S.ACCEPTED
    (request,) = shop.patches(sku)
    assert (
        Decimal(str(request.body["patches"][0]["value"][0]["our_price"][0]["schedule"][0]["value_with_tax"]))
        == new.price
    )


def test_an_accepted_price_overtaken_by_a_newer_one_is_superseded(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    first = shop.queue(sku, shop.reference_price(sku) + Decimal("0.10"))
    shop.send()
    second = shop.queue(sku, shop.reference_price(sku) + Decimal("0.20"))
    shop.send()
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up() == {"applied": 1, "superseded": 1}
    assert shop.row(first.pk).status == S.SUPERSEDED
    assert shop.row(second.pk).status == S.APPLIED
    assert shop.on_amazon(sku).price == second.price


def test_a_price_queued_too_long_is_not_sent(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "20.00", queued_at=timezone.now() - timedelta(hours=2))
    assert shop.send() == {"expired": 1}
    assert shop.row(row.pk).status == S.FAILED and "waited more than 60 minutes" in shop.row(row.pk).error
    assert shop.patches(status=None) == []


def test_an_inactive_connection_sends_nothing(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "20.00")
    with tenant_context(shop.tenant):
        SellerConnection.objects.filter(pk=shop.connection.pk).update(
            status=SellerConnection.Status.NEEDS_REAUTHORIZATION
        )
    assert shop.send() == {"failed": 1}
    assert "re-authorise" in shop.row(row.pk).error
    assert shop.patches(status=None) == []


# --- feeds ---------------------------------------------------------------------------------------------


@override_settings(REPRICING_PATCH_MAX=2)
def test_many_prices_go_as_one_feed_and_each_message_gets_its_own_outcome(shop: Shop) -> None:
    market = shop.market
    a, b, c, d, e, f = shop.skus(6)
    rows = {
        a: shop.queue(a, shop.reference_price(a) - Decimal("0.01")),
        b: shop.queue(b, shop.reference_price(b) + Decimal("0.99")),
        c: shop.queue(c, "15.00", currency="EUR"),  # refused when Amazon processes the feed
        d: shop.queue(d, shop.reference_price(d)),  # accepted, rejected when it comes due
        e: shop.queue(
            e, (shop.reference_price(e) * Decimal("0.2")).quantize(Decimal("0.01"))
        ),  # pricing error
        f: shop.queue(f, shop.reference_price(f) + Decimal("0.05")),
    }
    market.reject_next_patch(shop.sim.seller_id, d, "Rejected after review.")

    assert shop.send() == {"sent": 6}
    assert shop.patches(status=None) == []
    calls = [
        r.operation
        for r in shop.sim.app.log
        if r.operation in ("createFeedDocument", "_upload", "createFeed")
    ]
    assert calls == ["createFeedDocument", "_upload", "createFeed"]
    (feed,) = market.feeds.values()
    assert feed.feed_type == "JSON_LISTINGS_FEED" and feed.marketplace_ids == [US]
    document = json.loads(market.documents[feed.input_document_id].content)
    assert document["header"] == {"sellerId": shop.sim.seller_id, "version": "2.0", "issueLocale": "en_US"}
    assert [(m["messageId"], m["sku"], m["operationType"]) for m in document["messages"]] == [
        (n, sku, "PATCH") for n, sku in enumerate([a, b, c, d, e, f], start=1)
    ]
    for row in shop.rows().values():
        assert row.status == S.SENDING and row.channel == PriceSubmission.Channel.LISTINGS_FEED
        assert row.amazon_reference == feed.feed_id and row.attempts == 1

    assert shop.follow_up() == {"waiting": 6}  # IN_QUEUE
    shop.advance(sum(market.feed_delays) + 1)
    assert shop.follow_up() == {"accepted": 5, "rejected": 1, "waiting": 5}
    refused = shop.row(rows[c].pk)
    assert refused.status == S.REJECTED
    assert refused.issues[0]["messageId"] == 3 and "currency EUR" in refused.issues[0]["message"]
    assert shop.row(rows[a].pk).status == S.ACCEPTED and shop.row(rows[a].pk).accepted_at is not None

    shop.advance(market.patch_delay_seconds + 1)
    assert shop.follow_up() == {"applied": 3, "rejected": 2}
    outcome = {sku: shop.row(row.pk) for sku, row in rows.items()}
    assert {sku: row.status for sku, row in outcome.items()} == {
        a: S.APPLIED,
        b: S.APPLIED,
        c: S.REJECTED,
        d: S.REJECTED,
        e: S.REJECTED,
        f: S.APPLIED,
    }
    assert outcome[d].issues[-1]["code"] == "99022"
    assert outcome[e].issues[-1]["code"] == "18208"
    for sku in (a, b, f):
        assert shop.on_amazon(sku).price == outcome[sku].price


@override_settings(REPRICING_PATCH_MAX=1)
def test_a_feed_amazon_cannot_process_fails_its_prices_with_the_reason(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    skus = shop.skus(2)
    before = [shop.on_amazon(sku).price for sku in skus]
    rows = [shop.queue(sku, shop.reference_price(sku) + Decimal("0.02")) for sku in skus]
    build = submission.listings_feed_document

    def foreign_seller(seller_id: str, messages: Any) -> dict[str, Any]:
        return build("ANOTHERSELLER1", messages)  # Amazon refuses the whole feed (FATAL)

    monkeypatch.setattr(submission, "listings_feed_document", foreign_seller)
    assert shop.send() == {"sent": 2}
    shop.advance(sum(shop.market.feed_delays) + 1)
    assert shop.follow_up() == {"failed": 2}
    for row in rows:
        failed = shop.row(row.pk)
        assert failed.status == S.FAILED and "(FATAL)" in failed.error
        assert failed.issues[0]["code"] == "90000002"  # the processing report's own words
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert [shop.on_amazon(sku).price for sku in skus] == before


# --- follow-up limits ----------------------------------------------------------------------------------


def test_a_price_amazon_accepts_but_never_applies_fails_after_the_limit(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    shop.market.patch_delay_seconds = 10 * 24 * 3600
    row = shop.queue(sku, shop.reference_price(sku) + Decimal("0.30"))
    shop.send()
    assert shop.follow_up(later=timedelta(hours=23)) == {"waiting": 1}
    assert shop.follow_up(later=timedelta(hours=25)) == {"failed": 1}
    failed = shop.row(row.pk)
    assert failed.status == S.FAILED and "not live after 24 h" in failed.error


def test_a_price_that_cannot_be_followed_waits_then_fails_after_the_limit(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, shop.reference_price(sku) + Decimal("0.30"))
    shop.send()
    with tenant_context(shop.tenant):
        SellerConnection.objects.filter(pk=shop.connection.pk).update(
            status=SellerConnection.Status.NEEDS_REAUTHORIZATION
        )
    assert shop.follow_up() == {"deferred": 1}
    assert shop.row(row.pk).status == S.ACCEPTED
    assert shop.follow_up(later=timedelta(hours=25)) == {"failed": 1}
    assert "could not be read from Amazon for 24 h" in shop.row(row.pk).error


# --- kill switch and dry run -------------------------------------------------------------------------


def test_the_kill_switch_cancels_every_queued_price_at_once(shop: Shop) -> None:
    first, second, third = shop.skus(3)
    sent = shop.queue(first, shop.reference_price(first))
    shop.send()
    queued = [shop.queue(second, "20.00"), shop.queue(third, "21.00")]
    with working_for(shop.tenant):
        assert submissions_cancel_queued("Stopped by the seller.") == 2
    for row in queued:
        cancelled = shop.row(row.pk)
        assert cancelled.status == S.CANCELLED and cancelled.error == "Stopped by the seller."
        assert cancelled.finished_at is not None
    assert shop.row(sent.pk).status == S.ACCEPTED  # already at Amazon: followed, not cancelled
    assert shop.send() == {}
    assert len(shop.patches()) == 1


def test_turning_the_kill_switch_on_cancels_what_is_queued(shop: Shop) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "20.00")
    with tenant_context(shop.tenant):
        kill_switch_set(on=True, reason="Prices look wrong", actor=None, actor_role=Role.OWNER)
    cancelled = shop.row(row.pk)
    assert cancelled.status == S.CANCELLED and cancelled.error == "Kill switch on: Prices look wrong"
    assert shop.send() == {}
    assert shop.patches(status=None) == []


def test_sending_checks_the_kill_switch_first(shop: Shop) -> None:
    """A price queued while the switch is on (say by a decision made just before it) is never sent."""
    (sku,) = shop.skus(1)
    with tenant_context(shop.tenant):
        kill_switch_set(on=True, reason="Prices look wrong", actor=None, actor_role=Role.OWNER)
    row = shop.queue(sku, "20.00")
    assert shop.send() == {"cancelled": 1}
    cancelled = shop.row(row.pk)
    assert cancelled.status == S.CANCELLED and cancelled.error == "Kill switch on: Prices look wrong"
    assert shop.patches(status=None) == []


def test_sending_checks_the_dry_run(sim: Any) -> None:
    shop = open_shop(sim, dry_run=True)
    (sku,) = shop.skus(1)
    row = shop.queue(sku, "20.00")
    assert shop.send() == {"cancelled": 1}
    assert shop.row(row.pk).error == DRY_RUN_REASON
    assert shop.patches(status=None) == []


def test_a_kill_switch_pulled_mid_batch_stops_the_rest(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    skus = shop.skus(4)
    rows = [shop.queue(sku, shop.reference_price(sku)) for sku in skus]
    original = submission.SpApiClient.call

    def call(self: Any, operation: str, send: Any) -> Any:
        answer = original(self, operation, send)
        if operation == "patchListingsItem":
            with tenant_context(shop.tenant):
                kill_switch_set(on=True, reason="Stop", actor=None, actor_role=Role.OWNER)
        return answer

    monkeypatch.setattr(submission.SpApiClient, "call", call)
    counts = shop.send()
    # The switch cancels the three still queued itself (the sender is between two claims, holding none).
    assert counts["sent"] == 1 and counts.get("cancelled", 0) == 0
    assert [shop.row(r.pk).status for r in rows] == [S.ACCEPTED, S.CANCELLED, S.CANCELLED, S.CANCELLED]
    assert len(shop.patches()) == 1


@override_settings(REPRICING_PATCH_MAX=1)
def test_a_kill_switch_pulled_while_a_feed_uploads_stops_the_feed(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    skus = shop.skus(3)
    rows = [shop.queue(sku, shop.reference_price(sku)) for sku in skus]
    original = submission.httpx.put

    def put(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)

        # The seller turns the switch on (another request, its own connection) while the sender holds
        # the rows and uploads their document.
        def pull() -> None:
            try:
                with tenant_context(shop.tenant):
                    kill_switch_set(on=True, reason="Stop", actor=None, actor_role=Role.OWNER)
            finally:
                db.connection.close()

        thread = threading.Thread(target=pull)
        thread.start()
        thread.join()
        return answer

    monkeypatch.setattr(submission.httpx, "put", put)
    counts = shop.send()
    assert counts["cancelled"] == 3 and "sent" not in counts
    assert [shop.row(r.pk).status for r in rows] == [S.CANCELLED] * 3
    assert shop.market.feeds == {}  # createFeed never called


# --- tasks ---------------------------------------------------------------------------------------------


def test_the_tasks_are_registered_and_schedule_their_follow_up(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import current_app

    from repricing import tasks_submission

    assert "repricing.send_submissions" in current_app.tasks
    assert "repricing.follow_up_submissions" in current_app.tasks
    assert PERIODIC_JOBS["repricing.send_submissions"].task_name == "repricing.send_submissions"
    assert PERIODIC_JOBS["repricing.follow_up_submissions"].task_name == "repricing.follow_up_submissions"

    sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def fake_apply_async(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        sent.append((self.name, kwargs or {}, options))

    monkeypatch.setattr(tasks_submission.SubmissionTask, "apply_async", fake_apply_async)
    (sku,) = shop.skus(1)
    shop.queue(sku, shop.reference_price(sku))
    result = tasks_submission.send_submissions_task.apply(kwargs={"tenant_id": shop.tenant.pk}, throw=True)
    assert result.get() == {"sent": 1, "accepted": 1}
    assert sent == [
        (
            "repricing.follow_up_submissions",
            {"tenant_id": shop.tenant.pk},
            {"countdown": tasks_submission.FOLLOW_UP_DELAY_SECONDS},
        )
    ]
    shop.advance(shop.market.patch_delay_seconds + 1)
    follow = tasks_submission.follow_up_submissions_task.apply(
        kwargs={"tenant_id": shop.tenant.pk}, throw=True
    )
    assert follow.get() == {"applied": 1}
