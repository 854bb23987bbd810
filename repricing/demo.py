"""Demo mode for repricing: the demo company gets a rule, bounds for its SKUs and live repricing on
the simulator, so a new user sees the repricer work without an Amazon account.

Bounds need a unit cost, which Amazon does not know; the demo assumes each SKU cost 45 % of its
price when first seen, with the simulator's fees (15 % referral, a 3.00 FBA fee), and computes the
minimum for a 5 % margin; the maximum is 150 % of that first price. A real seller enters or imports
costs (CSV) instead. Never used outside `manage.py seed_demo`.
"""

from __future__ import annotations

from decimal import Decimal

from accounts.models import User
from accounts.roles import Role
from amazon.models import Listing, SellerConnection
from repricing.models import RepricingRule, RepricingSettings, SkuPricing
from repricing.services import RepricingError, company_settings_update, rule_create, sku_pricing_update

DEMO_RULE_NAME = "Beat the Buy Box by a cent (demo)"
DEMO_RULE = {
    "strategy": {
        "kind": "buy_box",
        "mode": "beat",
        "amount": "0.01",
        "when_no_buy_box": "lowest",
        "when_alone": "hold",
    },
    "filters": {"exclude_amazon": False, "min_feedback_rating": 80},
    "buy_box_probe": {"amount": "0.25", "when_sharing": "hold", "sharing_below": 0.9},
    "bounds": {"out_of_bounds": "bound"},
    "guards": {
        "max_step": {"percent": "5"},
        "max_daily": {"percent": "25"},
        "cooldown_seconds": 60,
        "price_war": {"undercuts": 6, "window_seconds": 3600, "pause_seconds": 3 * 3600},
        "anomaly": {"percent": "40"},
    },
    "dry_run": False,
}
COST_SHARE = Decimal("0.45")
MAX_SHARE = Decimal("1.50")


def seed_demo_repricing(*, connection: SellerConnection, user: User) -> str:
    """Idempotent. Runs in the demo tenant's context. Returns what happened, for the console."""
    from amazon.sync import sync_listings

    if not Listing.objects.filter(connection=connection).exists():
        # The first start: take the listings now (a few seconds) rather than after the worker starts,
        # so the SKUs can get their bounds here.
        sync_listings(connection=connection, triggered_by="demo")
    rule = RepricingRule.objects.filter(name=DEMO_RULE_NAME).first()
    if rule is None:
        rule = rule_create(
            name=DEMO_RULE_NAME,
            config=DEMO_RULE,
            description="Demo: beat the Buy Box by 0.01, probe up when we hold it, never below cost + 5 %.",
            actor=user,
            actor_role=Role.OWNER,
        )
    if not RepricingSettings.objects.exists():
        # Only the first time: a user who switches dry run back on keeps it on.
        company_settings_update(dry_run=False, default_rule=rule, actor=user, actor_role=Role.OWNER)
    priced = set(SkuPricing.objects.values_list("listing_id", flat=True))
    added = skipped = 0
    for listing in Listing.objects.filter(connection=connection, price__isnull=False).exclude(pk__in=priced):
        assert listing.price is not None
        try:
            sku_pricing_update(
                listing=listing,
                values={
                    "cost": (listing.price * COST_SHARE).quantize(Decimal("0.01")),
                    "referral_fee_percent": "15",
                    "fba_fee": "3.00"
                    if listing.fulfillment_channel == Listing.FulfillmentChannel.AFN
                    else "0",
                    "bounds_source": SkuPricing.BoundsSource.MARGIN,
                    "target_percent": "5",
                    "max_price": (listing.price * MAX_SHARE).quantize(Decimal("0.01")),
                },
                actor=user,
                actor_role=Role.OWNER,
            )
        except RepricingError:
            skipped += 1  # too cheap to cover the FBA fee at a 5 % margin: left for the seller
            continue
        added += 1
    total = SkuPricing.objects.count()
    return (
        f"Demo repricing: rule {rule.name!r} is the default; {added} SKU(s) got demo bounds ({total} in all"
        + (f", {skipped} too cheap to cover their fees" if skipped else "")
        + ")."
    )
