"""Reads of the synchronised seller data (listings with their latest offers picture, orders with their
items and financial events) for the dashboard pages and the API.

Everything is scoped to the tenant (the managers fail closed without one, and row-level security
backs them) and to the connections the member may see (django-guardian grants, as
`amazon.selectors.seller_connection_list`), so another company's or a restricted connection's rows are
never listed and look-ups by public_id answer DoesNotExist (a 404).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from accounts.models import User
from amazon import selectors
from amazon.models import FinancialEvent, Listing, OfferSnapshot, Order, OrderItem
from tenants.models import Tenant


def _visible_connections(tenant: Tenant, user: User | None) -> Any:
    return selectors.seller_connection_list(tenant=tenant, user=user, include_disconnected=True).values("pk")


def listing_list(
    *, tenant: Tenant, user: User | None = None, q: str = "", status: str = ""
) -> QuerySet[Listing]:
    """Listings, ordered by SKU, each annotated from its newest OfferSnapshot in the same query:
    `buy_box_price`, `buy_box_currency`, `we_hold_buy_box` (None before the first snapshot),
    `offers_observed_at`."""
    latest = OfferSnapshot.objects.filter(tenant=tenant, listing=OuterRef("pk")).order_by(
        "-observed_at", "-id"
    )
    listings = (
        Listing.objects.filter(tenant=tenant, connection__in=_visible_connections(tenant, user))
        .select_related("connection")
        .annotate(
            buy_box_price=Subquery(latest.values("buy_box_price")[:1]),
            buy_box_currency=Subquery(latest.values("currency")[:1]),
            we_hold_buy_box=Subquery(latest.values("we_hold_buy_box")[:1]),
            offers_observed_at=Subquery(latest.values("observed_at")[:1]),
        )
    )
    q = q.strip()
    if q:
        listings = listings.filter(Q(sku__icontains=q) | Q(asin__icontains=q) | Q(title__icontains=q))
    if status:
        listings = listings.filter(status=status)
    return listings.order_by("sku", "id")


def order_list(*, tenant: Tenant, user: User | None = None, status: str = "") -> QuerySet[Order]:
    """Orders, newest purchase first."""
    orders = Order.objects.filter(tenant=tenant, connection__in=_visible_connections(tenant, user))
    if status:
        orders = orders.filter(status=status)
    return orders.select_related("connection").order_by("-purchase_date", "-id")


def order_get(*, tenant: Tenant, public_id: UUID | str, user: User | None = None) -> Order:
    """One order with its items prefetched, or Order.DoesNotExist."""
    return (
        order_list(tenant=tenant, user=user)
        .prefetch_related(Prefetch("items", queryset=OrderItem.objects.filter(tenant=tenant)))
        .get(public_id=public_id)
    )


def order_financial_events(*, order: Order) -> QuerySet[FinancialEvent]:
    """The order's financial events (fees, refunds...): attached to it, or not yet attached but naming it."""
    return (
        FinancialEvent.objects.filter(tenant_id=order.tenant_id)
        .filter(
            Q(order=order)
            | Q(order__isnull=True, connection_id=order.connection_id, amazon_order_id=order.amazon_order_id)
        )
        .order_by("posted_date", "id")
    )
