"""Factories for the synchronised seller data: listings, offers snapshots, orders, items, financial events."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from amazon.models import FinancialEvent, Listing, OfferSnapshot, Order, OrderItem, SellerConnection
from tenants.context import tenant_context

_sequence = itertools.count(1)
MARKETPLACE = "ATVPDKIKX0DER"


def make_listing(connection: SellerConnection, **fields: Any) -> Listing:
    n = next(_sequence)
    with tenant_context(connection.tenant):
        return Listing.objects.create(
            tenant=connection.tenant,
            connection=connection,
            marketplace_id=fields.pop("marketplace_id", MARKETPLACE),
            sku=fields.pop("sku", f"SKU-{n:05d}"),
            asin=fields.pop("asin", f"B0{n:08d}"),
            title=fields.pop("title", f"Product {n}"),
            price=fields.pop("price", Decimal("19.99")),
            currency=fields.pop("currency", "USD"),
            quantity=fields.pop("quantity", 10),
            fulfillment_channel=fields.pop("fulfillment_channel", "AFN"),
            status=fields.pop("status", Listing.Status.BUYABLE),
            last_synced_at=fields.pop("last_synced_at", timezone.now()),
            **fields,
        )


def make_offer_snapshot(listing: Listing, **fields: Any) -> OfferSnapshot:
    with tenant_context(listing.tenant):
        return OfferSnapshot.objects.create(
            tenant=listing.tenant,
            listing=listing,
            observed_at=fields.pop("observed_at", timezone.now()),
            currency=fields.pop("currency", "USD"),
            buy_box_price=fields.pop("buy_box_price", Decimal("18.50")),
            we_hold_buy_box=fields.pop("we_hold_buy_box", False),
            number_of_offers=fields.pop("number_of_offers", 3),
            **fields,
        )


def make_order(connection: SellerConnection, **fields: Any) -> Order:
    n = next(_sequence)
    purchased = fields.pop("purchase_date", timezone.now() - timedelta(hours=n))
    with tenant_context(connection.tenant):
        return Order.objects.create(
            tenant=connection.tenant,
            connection=connection,
            marketplace_id=fields.pop("marketplace_id", MARKETPLACE),
            amazon_order_id=fields.pop("amazon_order_id", f"111-{n:07d}-0000001"),
            status=fields.pop("status", Order.Status.SHIPPED),
            purchase_date=purchased,
            last_update_date=fields.pop("last_update_date", purchased),
            fulfillment_channel=fields.pop("fulfillment_channel", "AFN"),
            order_total=fields.pop("order_total", Decimal("4321.09")),
            currency=fields.pop("currency", "USD"),
            number_of_items_shipped=fields.pop("number_of_items_shipped", 1),
            last_synced_at=fields.pop("last_synced_at", timezone.now()),
            **fields,
        )


def make_order_item(order: Order, **fields: Any) -> OrderItem:
    n = next(_sequence)
    with tenant_context(order.tenant):
        return OrderItem.objects.create(
            tenant=order.tenant,
            order=order,
            order_item_id=fields.pop("order_item_id", f"{n:014d}"),
            sku=fields.pop("sku", f"SKU-{n:05d}"),
            title=fields.pop("title", f"Item {n}"),
            quantity_ordered=fields.pop("quantity_ordered", 1),
            quantity_shipped=fields.pop("quantity_shipped", 1),
            item_price=fields.pop("item_price", Decimal("4321.09")),
            currency=fields.pop("currency", "USD"),
            **fields,
        )


def make_financial_event(order: Order, *, attach: bool = True, **fields: Any) -> FinancialEvent:
    n = next(_sequence)
    with tenant_context(order.tenant):
        return FinancialEvent.objects.create(
            tenant=order.tenant,
            connection_id=order.connection_id,
            order=order if attach else None,
            amazon_order_id=order.amazon_order_id,
            kind=fields.pop("kind", FinancialEvent.Kind.SHIPMENT),
            posted_date=fields.pop("posted_date", timezone.now()),
            line_key=fields.pop("line_key", f"line-{n}"),
            currency=fields.pop("currency", "USD"),
            principal=fields.pop("principal", Decimal("4321.09")),
            referral_fee=fields.pop("referral_fee", Decimal("-987.65")),
            **fields,
        )
