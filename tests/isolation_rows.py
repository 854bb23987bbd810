"""One way to create a row of every tenant-owned model, for the isolation tests.

A new tenant-owned model must be added here: tests/test_isolation.py fails for any model missing,
so its table is always checked by the database-level isolation tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db.models import Model
from django.utils import timezone

from accounts.models import Invitation
from amazon.models import (
    AdsProfile,
    FinancialEvent,
    Listing,
    OfferChangeNotification,
    OfferSnapshot,
    Order,
    OrderItem,
    SellerConnection,
    SyncCursor,
)
from repricing.models import (
    Backtest,
    BoundsImport,
    PriceDecision,
    PriceSubmission,
    RepricingRule,
    RepricingSettings,
    SkuPricing,
    TagRule,
)
from tenants.models import AuditEvent, JobRun, Tenant


def _audit_event(tenant: Tenant, canary: str) -> Model:
    return AuditEvent.objects.create(tenant=tenant, actor_label=canary, action="test.canary")


def _job_run(tenant: Tenant, canary: str) -> Model:
    return JobRun.objects.create(tenant=tenant, kind=canary, started_at=timezone.now())


def _invitation(tenant: Tenant, canary: str) -> Model:
    return Invitation.objects.create(
        tenant=tenant,
        email=f"{canary.lower()}@example.com",
        role="viewer",
        token_hash=uuid.uuid4().hex,
        expires_at=timezone.now() + timedelta(days=1),
    )


def _seller_connection(tenant: Tenant, canary: str) -> Model:
    connection = SellerConnection(tenant=tenant, region="NA", selling_partner_id=canary, name=canary)
    connection.set_secret("refresh_token", f"Atzr|{canary}")
    connection.save()
    return connection


def _ads_profile(tenant: Tenant, canary: str) -> Model:
    # The tenant's connection from the maker above (one row per table is what the isolation tests count).
    connection = SellerConnection.objects.filter(tenant=tenant).first() or _seller_connection(tenant, canary)
    return AdsProfile.objects.create(tenant=tenant, connection=connection, profile_id="1", name=canary)


def _tenant_connection(tenant: Tenant, canary: str) -> SellerConnection:
    return SellerConnection.objects.filter(tenant=tenant).first() or _seller_connection(tenant, canary)  # type: ignore[return-value]


def _listing(tenant: Tenant, canary: str) -> Model:
    return Listing.objects.create(
        tenant=tenant,
        connection=_tenant_connection(tenant, canary),
        marketplace_id="ATVPDKIKX0DER",
        sku=canary,
        title=canary,
        last_synced_at=timezone.now(),
    )


def _offer_snapshot(tenant: Tenant, canary: str) -> Model:
    listing = Listing.objects.filter(tenant=tenant).first() or _listing(tenant, canary)
    return OfferSnapshot.objects.create(
        tenant=tenant, listing=listing, observed_at=timezone.now(), buy_box_seller_id=canary
    )


def _sync_cursor(tenant: Tenant, canary: str) -> Model:
    return SyncCursor.objects.create(
        tenant=tenant, connection=_tenant_connection(tenant, canary), kind=canary
    )


def _order(tenant: Tenant, canary: str) -> Model:
    now = timezone.now()
    return Order.objects.create(
        tenant=tenant,
        connection=_tenant_connection(tenant, canary),
        marketplace_id="ATVPDKIKX0DER",
        amazon_order_id=canary[:50],
        status=Order.Status.SHIPPED,
        purchase_date=now,
        last_update_date=now,
        last_synced_at=now,
    )


def _order_item(tenant: Tenant, canary: str) -> Model:
    order = Order.objects.filter(tenant=tenant).first() or _order(tenant, canary)
    return OrderItem.objects.create(tenant=tenant, order=order, order_item_id=canary[:50], sku=canary)


def _financial_event(tenant: Tenant, canary: str) -> Model:
    order = Order.objects.filter(tenant=tenant).first() or _order(tenant, canary)
    return FinancialEvent.objects.create(
        tenant=tenant,
        connection=_tenant_connection(tenant, canary),
        order=order,
        amazon_order_id=order.amazon_order_id,  # type: ignore[attr-defined]
        kind=FinancialEvent.Kind.SHIPMENT,
        posted_date=timezone.now(),
        line_key=canary,
        sku=canary,
    )


def _offer_change_notification(tenant: Tenant, canary: str) -> Model:
    return OfferChangeNotification.objects.create(
        tenant=tenant,
        connection=_tenant_connection(tenant, canary),
        notification_id=canary,
        notification_type=OfferChangeNotification.Kind.ANY_OFFER_CHANGED,
        seller_id=canary,
        marketplace_id="ATVPDKIKX0DER",
        asin=canary[:40],
        received_at=timezone.now(),
    )


def _repricing_rule(tenant: Tenant, canary: str) -> Model:
    return RepricingRule.objects.create(tenant=tenant, name=canary, config={"canary": canary})


def _repricing_settings(tenant: Tenant, canary: str) -> Model:
    return RepricingSettings.objects.create(tenant=tenant, kill_switch_reason=canary)


def _tag_rule(tenant: Tenant, canary: str) -> Model:
    rule = RepricingRule.objects.filter(tenant=tenant).first() or _repricing_rule(tenant, canary)
    return TagRule.objects.create(tenant=tenant, tag=canary[:100], rule=rule)


def _sku_pricing(tenant: Tenant, canary: str) -> Model:
    listing = Listing.objects.filter(tenant=tenant).first() or _listing(tenant, canary)
    return SkuPricing.objects.create(tenant=tenant, listing=listing, tags=[canary[:100]])


def _price_decision(tenant: Tenant, canary: str) -> Model:
    listing = Listing.objects.filter(tenant=tenant).first() or _listing(tenant, canary)
    now = timezone.now()
    return PriceDecision.objects.create(
        tenant=tenant,
        listing=listing,
        trigger=PriceDecision.Trigger.MANUAL,
        action=PriceDecision.Action.HOLD,
        reason=canary[:60],
        inputs={"canary": canary},
        observed_at=now,
        decided_at=now,
    )


def _price_submission(tenant: Tenant, canary: str) -> Model:
    decision = PriceDecision.objects.filter(tenant=tenant).first() or _price_decision(tenant, canary)
    return PriceSubmission.objects.create(
        tenant=tenant,
        decision=decision,
        listing=decision.listing,  # type: ignore[attr-defined]
        channel=PriceSubmission.Channel.LISTINGS_PATCH,
        price="10.00",
        currency="USD",
        error=canary[:500],
        queued_at=timezone.now(),
    )


def _bounds_import(tenant: Tenant, canary: str) -> Model:
    """A checked import, ready to apply, that sets bounds on the tenant's first listing."""
    listing = Listing.objects.filter(tenant=tenant).order_by("id").first() or _listing(tenant, canary)
    return BoundsImport.objects.create(
        tenant=tenant,
        status=BoundsImport.Status.READY,
        file_name=f"{canary}.csv",
        columns=["sku", "min_price", "max_price"],
        row_count=1,
        csv_text=f"sku,min_price,max_price\n{listing.sku},10.00,20.00\n",  # type: ignore[attr-defined]
        preview={"counts": {"rows": 1, "changing": 1}, "sample": []},
    )


def _backtest(tenant: Tenant, canary: str) -> Model:
    now = timezone.now()
    return Backtest.objects.create(
        tenant=tenant,
        name=canary,
        status=Backtest.Status.SUCCEEDED,
        rule_name=canary,
        rule_config={"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}},
        selection={"kind": "all"},
        period_start=now - timedelta(days=7),
        period_end=now,
        summary={"skus": 1, "observations": 0},
        results=[{"sku": canary, "observations": 0, "points": []}],
    )


ROW_MAKERS: dict[str, Callable[[Tenant, str], Model]] = {
    "tenants.auditevent": _audit_event,
    "tenants.jobrun": _job_run,
    "accounts.invitation": _invitation,
    "amazon.sellerconnection": _seller_connection,
    "amazon.adsprofile": _ads_profile,
    "amazon.listing": _listing,
    "amazon.offersnapshot": _offer_snapshot,
    "amazon.synccursor": _sync_cursor,
    "amazon.order": _order,
    "amazon.orderitem": _order_item,
    "amazon.financialevent": _financial_event,
    "amazon.offerchangenotification": _offer_change_notification,
    "repricing.repricingrule": _repricing_rule,
    "repricing.repricingsettings": _repricing_settings,
    "repricing.tagrule": _tag_rule,
    "repricing.skupricing": _sku_pricing,
    "repricing.pricedecision": _price_decision,
    "repricing.pricesubmission": _price_submission,
    "repricing.boundsimport": _bounds_import,
    "repricing.backtest": _backtest,
}
