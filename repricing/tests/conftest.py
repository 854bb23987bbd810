"""Fixtures for the repricing run's tests: a company connected to the simulator's demo seller with its
listings synced (``world``), a hand-made market for exact scenarios (``shop``), and helpers to deliver
notifications through the real intake and to work as the non-atomic tasks do."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from accounts.models import User
from accounts.roles import Role
from amazon.models import Listing, OfferSnapshot, SellerConnection
from amazon.notifications import notification_receive, notification_sign
from amazon.services import seller_route_sync
from amazon.simulator.market import US
from amazon.simulator.notifications import any_offer_changed
from amazon.simulator.testing import simulator
from amazon.sync import sync_listings, sync_offers
from amazon.tests.data_factories import make_listing, make_offer_snapshot
from amazon.tests.factories import make_connection
from config.redis import redis_client
from repricing.models import RepricingRule, SkuPricing
from repricing.services import company_settings_update, rule_create, sku_pricing_update
from tenants import context
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import make_member, make_tenant

__all__ = ["simulator"]

#: Beat the Buy Box by a cent; no cooldown, so consecutive runs can each change the price.
BEAT = {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01", "when_no_buy_box": "lowest"}}


@contextlib.contextmanager
def working_for(tenant: Tenant) -> Iterator[None]:
    """What a non-atomic TenantTask does around its body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


def setup_repricing(
    tenant: Tenant, owner: User, *, config: dict[str, Any] | None = None, dry_run: bool = False
) -> RepricingRule:
    """A default rule for the company and its dry run set (new companies start in dry run)."""
    with tenant_context(tenant):
        rule = rule_create(name="Beat the Buy Box", config=config or BEAT, actor=owner, actor_role=Role.OWNER)
        company_settings_update(dry_run=dry_run, default_rule=rule, actor=owner, actor_role=Role.OWNER)
    return rule


def set_bounds(listing: Listing, owner: User, minimum: str, maximum: str, **values: Any) -> SkuPricing:
    with tenant_context(listing.tenant):
        return sku_pricing_update(
            listing=listing,
            values={"min_price": minimum, "max_price": maximum, **values},
            actor=owner,
            actor_role=Role.OWNER,
        )


def broker_messages(queue: str = "repricing") -> list[dict[str, Any]]:
    """The task messages waiting in the Celery broker's queue (Redis list), oldest first."""
    raw: Any = redis_client().lrange(queue, 0, -1)
    return [json.loads(item) for item in reversed(raw)]


def task_names(queue: str = "repricing") -> list[str]:
    return [message["headers"]["task"] for message in broker_messages(queue)]


# --- the simulator's demo seller -----------------------------------------------------------------------


@dataclass
class World:
    sim: Any
    tenant: Tenant
    owner: User
    connection: SellerConnection
    listings: list[Listing] = field(default_factory=list)

    def listing(self, sku: str) -> Listing:
        return next(li for li in self.listings if li.sku == sku)

    def snapshot_offers(self, skus: list[str] | None = None) -> None:
        with working_for(self.tenant):
            sync_offers(connection=self.connection, skus=skus)

    def notify(self, asin: str, *, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """The simulator's ANY_OFFER_CHANGED for `asin` now, through the real intake (signed)."""
        document = payload or any_offer_changed(
            self.sim.market, self.sim.seller_id, US, asin, seq=int(time.time() * 1e6)
        )
        body = json.dumps(document).encode()
        stamp = int(time.time())
        notification_receive(
            body=body,
            timestamp=str(stamp),
            signature=notification_sign(body, timestamp=stamp),
            content_type="application/json",
        )
        return document


def make_world(sim: Any, name: str = "Alpha") -> World:
    tenant = make_tenant(name)
    owner = make_member(tenant, Role.OWNER)
    creds = sim.credentials
    connection = make_connection(
        tenant,
        selling_partner_id=sim.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )
    with tenant_context(tenant):
        seller_route_sync(connection)
    with working_for(tenant):
        sync_listings(connection=connection)
    with tenant_context(tenant):
        listings = list(Listing.objects.filter(connection=connection).order_by("sku"))
    return World(sim=sim, tenant=tenant, owner=owner, connection=connection, listings=listings)


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.market.throttling = False  # the client's limiter is the test's subject where it matters
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        SP_API_MAX_ATTEMPTS=3,
    ):
        yield simulator


@pytest.fixture
def world(sim: Any) -> World:
    """A company with the demo seller's 40 listings synced, a default beat-the-Buy-Box rule, live (not
    dry run), every SKU bounded by the simulator's own min/max; no offers snapshot yet."""
    w = make_world(sim)
    setup_repricing(w.tenant, w.owner)
    for listing in w.listings:
        market_listing = sim.market.listing(sim.seller_id, listing.sku)
        set_bounds(listing, w.owner, str(market_listing.min_price), str(market_listing.max_price))
    return w


# --- a hand-made market ----------------------------------------------------------------------------------

OUR_SELLER = "AOURSELLER0001"


def offer(
    seller_id: str,
    price: str,
    *,
    shipping: str = "0.00",
    buy_box: bool = False,
    fba: bool = True,
    mine: bool = False,
) -> dict[str, Any]:
    """One Product Pricing offer as Amazon sends it (and OfferSnapshot keeps it)."""
    return {
        "SellerId": seller_id,
        "MyOffer": mine,
        "SubCondition": "new",
        "ListingPrice": {"Amount": float(Decimal(price)), "CurrencyCode": "USD"},
        "Shipping": {"Amount": float(Decimal(shipping)), "CurrencyCode": "USD"},
        "IsFulfilledByAmazon": fba,
        "IsBuyBoxWinner": buy_box,
        "SellerFeedbackRating": {"SellerPositiveFeedbackRating": 98.0, "FeedbackCount": 500},
    }


@dataclass
class Shop:
    tenant: Tenant
    owner: User
    connection: SellerConnection
    rule: RepricingRule

    def listing(
        self, price: str = "20.00", *, bounds: tuple[str, str] | None = ("10.00", "30.00"), **fields: Any
    ) -> Listing:
        listing = make_listing(self.connection, price=Decimal(price), condition="new_new", **fields)
        if bounds is not None:
            set_bounds(listing, self.owner, *bounds)
        return listing

    def market(
        self, listing: Listing, *offers: dict[str, Any], ours: str | None = None, **fields: Any
    ) -> OfferSnapshot:
        """An offers snapshot of `listing`: our offer (at `ours`, else the listing's price) and `offers`."""
        mine = offer(OUR_SELLER, ours or str(listing.price), mine=True)
        return make_offer_snapshot(listing, offers=[mine, *offers], **fields)


def make_shop(name: str = "Shop", config: dict[str, Any] | None = None, dry_run: bool = False) -> Shop:
    tenant = make_tenant(name)
    owner = make_member(tenant, Role.OWNER)
    connection = make_connection(tenant, selling_partner_id=OUR_SELLER)
    rule = setup_repricing(tenant, owner, config=config, dry_run=dry_run)
    return Shop(tenant=tenant, owner=owner, connection=connection, rule=rule)


@pytest.fixture
def shop(transactional_db: None) -> Shop:
    return make_shop()
