"""A small catalogue with real repricing history, for the dashboard and API tests of repricing.

`make_catalog(tenant)` connects a store, creates two rules and a tag rule through the services, sets
SKU pricing (one SKU with its own rule, cost and bounds; one tagged; one with nothing), and builds a
price history for the first SKU by recording offers snapshots and running the real pipeline
(`repricing.pipeline.reprice`, i.e. the engine) after each, so decisions carry genuine inputs, traces and
submissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from amazon.models import Listing, SellerConnection
from amazon.tests.data_factories import make_listing, make_offer_snapshot
from amazon.tests.factories import make_connection
from repricing.models import PriceDecision, RepricingRule, TagRule
from repricing.services import company_settings_update, rule_create, sku_pricing_update, tag_rule_set
from tenants.context import tenant_context
from tenants.models import Tenant

OUR_SELLER = "AOURSELLER0042"
BEAT = {
    "strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"},
    "guards": {"max_step": {"percent": "20"}},
}
MATCH_LOWEST = {"strategy": {"kind": "lowest", "mode": "match"}}
#: The cost of the first SKU: a string no other number on the pages contains.
COST = "3.21"


def offer(seller: str, price: str, *, buy_box: bool = False, mine: bool = False) -> dict[str, Any]:
    """One Product Pricing offer as Amazon sends it (what OfferSnapshot.offers keeps)."""
    return {
        "SellerId": seller,
        "MyOffer": mine,
        "SubCondition": "new",
        "ListingPrice": {"Amount": float(Decimal(price)), "CurrencyCode": "USD"},
        "Shipping": {"Amount": 0.0, "CurrencyCode": "USD"},
        "IsFulfilledByAmazon": True,
        "IsBuyBoxWinner": buy_box,
        "SellerFeedbackRating": {"SellerPositiveFeedbackRating": 98.0, "FeedbackCount": 500},
    }


@dataclass
class Catalog:
    tenant: Tenant
    owner: User
    connection: SellerConnection
    beat: RepricingRule
    match: RepricingRule
    tag_rule: TagRule
    mug: Listing  # own rule, cost, bounds, history
    lamp: Listing  # tagged "clearance" (tag rule: match lowest), bounds
    pen: Listing  # nothing set

    def decisions(self) -> list[PriceDecision]:
        with tenant_context(self.tenant):
            return list(PriceDecision.objects.filter(listing=self.mug).order_by("decided_at", "id"))


def make_catalog(tenant: Tenant, owner: User | None = None, *, label: str = "") -> Catalog:
    owner = owner or _owner(tenant)
    connection = make_connection(tenant, name=f"Main store {label}".strip(), selling_partner_id=OUR_SELLER)
    mug = make_listing(
        connection,
        sku=f"MUG-RED{label}",
        title=f"Red mug {label}".strip(),
        price=Decimal("20.00"),
        condition="new_new",
    )
    lamp = make_listing(
        connection, sku=f"LAMP-1{label}", title="Desk lamp", price=Decimal("35.00"), condition="new_new"
    )
    pen = make_listing(
        connection, sku=f"PEN-9{label}", title="Fountain pen", price=Decimal("12.00"), condition="new_new"
    )
    with tenant_context(tenant):
        beat = rule_create(
            name=f"Beat the Buy Box {label}".strip(), config=BEAT, actor=owner, actor_role=Role.OWNER
        )
        match = rule_create(
            name=f"Match lowest {label}".strip(), config=MATCH_LOWEST, actor=owner, actor_role=Role.OWNER
        )
        company_settings_update(dry_run=False, actor=owner, actor_role=Role.OWNER)
        tag = tag_rule_set(tag="clearance", rule=match, priority=10, actor=owner, actor_role=Role.OWNER)
        sku_pricing_update(
            listing=mug,
            values={
                "rule": beat,
                "cost": COST,
                "min_price": "15.00",
                "max_price": "30.00",
                "tags": ["kitchen"],
            },
            actor=owner,
            actor_role=Role.OWNER,
        )
        sku_pricing_update(
            listing=lamp,
            values={"tags": ["clearance"], "min_price": "20.00", "max_price": "50.00"},
            actor=owner,
            actor_role=Role.OWNER,
        )
    return Catalog(tenant, owner, connection, beat, match, tag, mug, lamp, pen)


def _owner(tenant: Tenant) -> User:
    from tests.factories import make_member

    return make_member(tenant, Role.OWNER)


def record_history(catalog: Catalog, *, hours: int = 3, start: datetime | None = None) -> list[PriceDecision]:
    """`hours` rounds of market movement on the mug: a competitor holding the Buy Box undercuts by 0.50
    each hour; after each snapshot the real pipeline decides (beat the Buy Box by 0.01, so a change)."""
    from repricing.pipeline import reprice

    start = start or timezone.now() - timedelta(hours=hours, minutes=5)
    decisions = []
    ours = Decimal("20.00")
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        competitor = Decimal("19.50") - Decimal("0.50") * hour
        make_offer_snapshot(
            catalog.mug,
            observed_at=moment,
            buy_box_price=competitor,
            lowest_landed_price=competitor,
            offers=[
                offer(OUR_SELLER, str(ours), mine=True),
                offer("ACOMPETITOR1", str(competitor), buy_box=True),
            ],
        )
        with tenant_context(catalog.tenant):
            (decision,) = reprice(
                [catalog.mug], trigger=PriceDecision.Trigger.SCHEDULE, now=moment + timedelta(seconds=30)
            )
        decisions.append(decision)
        if decision.new_price is not None:
            ours = decision.new_price
    return decisions
