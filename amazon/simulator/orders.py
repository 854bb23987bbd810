"""Orders and the money they move, for the simulator: an order's life over simulated time (Pending ->
Unshipped -> Shipped, some Canceled, some refunded and a few reimbursed later) and its Orders v0 /
Finances v0 wire representation.

An order stores the moments of its transitions, not a mutable status: ``status_at(now)`` and
``last_update_at(now)`` derive them, so advancing the clock needs no per-order work and 100,000 orders
cost one small object each. Amounts are integer cents here (fast, compact) and become ``Decimal`` on
the way out (``cents_to_decimal``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]

# Sales tax / VAT collected on top of the item price, per marketplace (simplified: one rate each).
TAX_RATES: dict[str, int] = {  # basis points
    "ATVPDKIKX0DER": 800,
    "A2EUQ1WTGCTBG2": 1300,
    "A1AM78C64UM0Y8": 1600,
    "A1F83G8C2ARO7P": 2000,
    "A1PA6795UKMFR9": 1900,
    "A13V1IB3VIYZZH": 2000,
}
CANCEL_RATE = 0.03
REFUND_RATE = 0.05
REIMBURSE_RATE = 0.3  # of refunded Amazon-fulfilled orders: the return never made it back to stock
REFUND_COMMISSION_RATE = 0.2  # Amazon keeps 20 % of the referral fee on a refund (at most 5.00)


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def decimal_to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def order_id_for(seq: int) -> str:
    """Amazon's 3-7-7 order ids; unique for seq < 10,000,000 (104729 is coprime to 10^7)."""
    return f"{111 + seq % 800:03d}-{(seq * 7919) % 10_000_000:07d}-{(seq * 104729) % 10_000_000:07d}"


@dataclass(slots=True)
class OrderItem:
    order_item_id: str
    sku: str
    asin: str
    title: str
    quantity: int
    price_cents: int  # item price x quantity
    tax_cents: int
    shipping_cents: int
    referral_cents: int  # x quantity
    fba_fee_cents: int  # x quantity


@dataclass(slots=True)
class Order:
    order_id: str
    seller_id: str
    marketplace_id: str
    currency: str
    sales_channel: str
    afn: bool
    purchased: datetime
    unshipped_at: datetime  # payment authorised
    shipped_at: datetime | None  # None when canceled before shipping
    canceled_at: datetime | None
    refunded_at: datetime | None
    reimbursed_at: datetime | None
    items: list[OrderItem] = field(default_factory=list)
    business: bool = False
    prime: bool = False

    # ---------------------------------------------------------------- status over time

    def status_at(self, now: datetime) -> str:
        if self.canceled_at is not None and now >= self.canceled_at:
            return "Canceled"
        if self.shipped_at is not None and now >= self.shipped_at:
            return "Shipped"
        if now >= self.unshipped_at:
            return "Unshipped"
        return "Pending"

    def last_update_at(self, now: datetime) -> datetime:
        if self.canceled_at is not None and now >= self.canceled_at:
            return self.canceled_at
        if self.shipped_at is not None and now >= self.shipped_at:
            return self.shipped_at
        if now >= self.unshipped_at:
            return self.unshipped_at
        return self.purchased

    @property
    def total_cents(self) -> int:
        return sum(i.price_cents + i.tax_cents + i.shipping_cents for i in self.items)

    @property
    def units(self) -> int:
        return sum(i.quantity for i in self.items)

    # ---------------------------------------------------------------- Orders v0

    def to_order(self, now: datetime, seller_name: str = "") -> JSON:
        status = self.status_at(now)
        shipped = status == "Shipped"
        latest_ship = self.purchased + timedelta(days=2 if self.afn else 3)
        body: JSON = {
            "AmazonOrderId": self.order_id,
            "SellerOrderId": self.order_id,
            "PurchaseDate": iso(self.purchased),
            "LastUpdateDate": iso(self.last_update_at(now)),
            "OrderStatus": status,
            "FulfillmentChannel": "AFN" if self.afn else "MFN",
            "SalesChannel": self.sales_channel,
            "ShipServiceLevel": "Expedited" if self.prime else "Std US D2D Dom",
            "NumberOfItemsShipped": self.units if shipped else 0,
            "NumberOfItemsUnshipped": 0 if shipped or status == "Canceled" else self.units,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "MarketplaceId": self.marketplace_id,
            "ShipmentServiceLevelCategory": "Expedited" if self.prime else "Standard",
            "OrderType": "StandardOrder",
            "EarliestShipDate": iso(self.purchased),
            "LatestShipDate": iso(latest_ship),
            "EarliestDeliveryDate": iso(latest_ship + timedelta(days=1)),
            "LatestDeliveryDate": iso(latest_ship + timedelta(days=5)),
            "IsBusinessOrder": self.business,
            "IsPrime": self.prime,
            "IsPremiumOrder": False,
            "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": False,
            "IsSoldByAB": False,
            "IsIBA": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
            "HasRegulatedItems": False,
            "ElectronicInvoiceStatus": "NotRequired",
        }
        if status != "Pending":  # Amazon gives no totals before payment is authorised
            body["OrderTotal"] = {
                "CurrencyCode": self.currency,
                "Amount": str(cents_to_decimal(self.total_cents)),
            }
        if seller_name:
            body["SellerDisplayName"] = seller_name
        return body

    def to_items(self, now: datetime) -> list[JSON]:
        status = self.status_at(now)
        out = []
        for item in self.items:
            row: JSON = {
                "ASIN": item.asin,
                "SellerSKU": item.sku,
                "OrderItemId": item.order_item_id,
                "Title": item.title,
                "QuantityOrdered": item.quantity,
                "QuantityShipped": item.quantity if status == "Shipped" else 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": False,
                "SerialNumberRequired": False,
            }
            if status != "Pending":  # no pricing while payment is pending (as Amazon documents)
                money = self._money
                row.update(
                    ItemPrice=money(item.price_cents),
                    ItemTax=money(item.tax_cents),
                    ShippingPrice=money(item.shipping_cents),
                    ShippingTax=money(0),
                    ShippingDiscount=money(0),
                    ShippingDiscountTax=money(0),
                    PromotionDiscount=money(0),
                    PromotionDiscountTax=money(0),
                )
            out.append(row)
        return out

    def _money(self, cents: int) -> JSON:
        return {"CurrencyCode": self.currency, "Amount": str(cents_to_decimal(cents))}

    # ---------------------------------------------------------------- Finances v0

    def _amount(self, cents: int) -> JSON:
        # Finances' Currency.CurrencyAmount is a JSON number ("BigDecimal"): Decimal -> exact float repr
        return {"CurrencyCode": self.currency, "CurrencyAmount": float(cents_to_decimal(cents))}

    def financial_events(self) -> Iterator[tuple[datetime, str, JSON]]:
        """(posted date, event list name, event) for every event this order ever posts."""
        if self.shipped_at is not None and (self.canceled_at is None or self.canceled_at > self.shipped_at):
            yield self.shipped_at, "ShipmentEventList", self._shipment_event()
        if self.refunded_at is not None:
            yield self.refunded_at, "RefundEventList", self._refund_event()
        if self.reimbursed_at is not None:
            yield self.reimbursed_at, "AdjustmentEventList", self._reimbursement_event()

    def _charges(self, item: OrderItem, sign: int) -> list[JSON]:
        charges = [
            {"ChargeType": "Principal", "ChargeAmount": self._amount(sign * item.price_cents)},
            {"ChargeType": "Tax", "ChargeAmount": self._amount(sign * item.tax_cents)},
        ]
        if item.shipping_cents:
            charges.append(
                {"ChargeType": "ShippingCharge", "ChargeAmount": self._amount(sign * item.shipping_cents)}
            )
        return charges

    def _shipment_event(self) -> JSON:
        assert self.shipped_at is not None
        items = []
        for item in self.items:
            fees = [{"FeeType": "Commission", "FeeAmount": self._amount(-item.referral_cents)}]
            if self.afn:
                fees.append(
                    {"FeeType": "FBAPerUnitFulfillmentFee", "FeeAmount": self._amount(-item.fba_fee_cents)}
                )
            items.append(
                {
                    "SellerSKU": item.sku,
                    "OrderItemId": item.order_item_id,
                    "QuantityShipped": item.quantity,
                    "ItemChargeList": self._charges(item, 1),
                    "ItemFeeList": fees,
                    "PromotionList": [],
                }
            )
        return {
            "AmazonOrderId": self.order_id,
            "SellerOrderId": self.order_id,
            "MarketplaceName": self.sales_channel,
            "PostedDate": iso(self.shipped_at),
            "ShipmentItemList": items,
        }

    def _refund_event(self) -> JSON:
        assert self.refunded_at is not None
        items = []
        for n, item in enumerate(self.items):
            kept = min(round(item.referral_cents * REFUND_COMMISSION_RATE), 500)
            items.append(
                {
                    "SellerSKU": item.sku,
                    "OrderAdjustmentItemId": f"{item.order_item_id[:-2]}{90 + n:02d}",
                    "QuantityShipped": item.quantity,
                    "ItemChargeAdjustmentList": self._charges(item, -1),
                    "ItemFeeAdjustmentList": [
                        {"FeeType": "Commission", "FeeAmount": self._amount(item.referral_cents)},
                        {"FeeType": "RefundCommission", "FeeAmount": self._amount(-kept)},
                    ],
                }
            )
        return {
            "AmazonOrderId": self.order_id,
            "SellerOrderId": self.order_id,
            "MarketplaceName": self.sales_channel,
            "PostedDate": iso(self.refunded_at),
            "ShipmentItemAdjustmentList": items,
        }

    def _reimbursement_event(self) -> JSON:
        assert self.reimbursed_at is not None
        lines = []
        total = 0
        for item in self.items:
            per_unit = (item.price_cents - item.referral_cents) // max(item.quantity, 1)
            total += per_unit * item.quantity
            lines.append(
                {
                    "Quantity": str(item.quantity),
                    "PerUnitAmount": self._amount(per_unit),
                    "TotalAmount": self._amount(per_unit * item.quantity),
                    "SellerSKU": item.sku,
                    "FnSKU": "X00" + item.asin[-7:],
                    "ProductDescription": item.title,
                    "ASIN": item.asin,
                }
            )
        return {
            "AdjustmentType": "FBAInventoryReimbursement",
            "PostedDate": iso(self.reimbursed_at),
            "AdjustmentAmount": self._amount(total),
            "AdjustmentItemList": lines,
        }


def timeline(
    rng: random.Random, purchased: datetime, afn: bool
) -> tuple[datetime, datetime | None, datetime | None, datetime | None, datetime | None]:
    """(unshipped_at, shipped_at, canceled_at, refunded_at, reimbursed_at) for an order placed at
    ``purchased``: payment within minutes to hours, shipping within a day (FBA) or 1-3 days (merchant),
    about 3 % canceled before shipping, about 5 % of shipped orders refunded 3-20 days later, and
    about a third of refunded FBA orders reimbursed 10-30 days after that."""
    unshipped = purchased + timedelta(seconds=rng.randint(60, 4 * 3600))
    if rng.random() < CANCEL_RATE:
        canceled = purchased + timedelta(seconds=rng.randint(120, 20 * 3600))
        return max(unshipped, purchased), None, canceled, None, None
    ship_hours = rng.uniform(4, 30) if afn else rng.uniform(20, 72)
    shipped = unshipped + timedelta(hours=ship_hours)
    refunded = reimbursed = None
    if rng.random() < REFUND_RATE:
        refunded = shipped + timedelta(days=rng.uniform(3, 20))
        if afn and rng.random() < REIMBURSE_RATE:
            reimbursed = refunded + timedelta(days=rng.uniform(10, 30))
    return unshipped, shipped, None, refunded, reimbursed
