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
}
