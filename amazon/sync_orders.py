"""Keeping our copy of the seller's orders (getOrders, getOrderItems) and the money they move
(listFinancialEvents), incrementally.

Promises (the same as amazon/sync.py's for listings):

- **Incremental by Amazon's own clock.** Orders are asked for by `LastUpdatedAfter` = the saved cursor
  (`SyncCursor.updated_until`, kind `orders:<marketplace>`); Amazon answers with `LastUpdatedBefore`,
  the upper bound it used, and that becomes the next cursor once the pass's last page is committed.
  Our own clock is never compared with Amazon's, except for the first run's lookback
  (`AMAZON_ORDERS_LOOKBACK_DAYS`, default 30, or the `since` argument).
- **The cursor moves only with the data.** Each page is upserted on (tenant, connection,
  amazon_order_id) in one transaction together with the next page token (and the pass's upper bound, in
  `pass_started_at`); `updated_until` advances in the transaction of the *last* page only. A pass that
  dies half-way resumes from its page token (or, if Amazon no longer accepts it, starts the pass again
  from `updated_until`); upserts make either harmless. An order Amazon reports older than the stored
  one (a stale page) never overwrites it.
- **Order items follow their order.** `Order.items_synced_for` holds the `last_update_date` whose items
  are stored; an order whose last update differs (new, or changed since: payment authorised, shipped)
  has its items fetched (getOrderItems, through the limiter: 0.5 requests/s at Amazon) after the order
  pages, each order's items committed with that mark. The backlog lives in the table, not in the
  cursor, so an interrupted or time-limited run loses none of it; `items_limit` caps one run.
- **Financial events** by `PostedAfter`: one row per item line (natural key documented on
  `FinancialEvent`), attached to the order by `AmazonOrderId` when the order is stored (and attached
  later by the orders sync when the event came first). Finances v0 does not echo its upper bound, so
  the cursor is the latest `PostedDate` stored and each run re-reads `AMAZON_FINANCES_OVERLAP_HOURS`
  (default 48: Amazon may post events up to 48 h late) before it; the natural key de-duplicates.
- **Visible runs**: a `JobRun` per call with counts; one run of a kind per connection at a time.

Call these inside the tenant's context (the task base class sets it) but *outside* a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from sp_api.api import Finances, Orders

from amazon.clients import AmazonRequestError, RetryPolicy, sp_api_client
from amazon.models import FinancialEvent, Order, OrderItem, SellerConnection, SyncCursor
from amazon.sync import (
    SyncAlreadyRunning,
    _money,
    _single_run,
    connection_marketplace_ids,
    connection_run,
    ensure_still_active,
)
from tenants.context import require_tenant, tenant_context
from tenants.jobs import RunRecorder

logger = logging.getLogger(__name__)

__all__ = ["SyncAlreadyRunning", "sync_financial_events", "sync_orders"]

#: getOrders' maximum page size.
ORDERS_PAGE_SIZE = 100
#: listFinancialEvents' maximum page size.
FINANCES_PAGE_SIZE = 100
#: getOrderItems calls in one run at most (0.5/s at Amazon: ~17 minutes); the rest waits for the next run.
ORDER_ITEMS_PER_RUN = 500
FINANCES_KIND = "finances"

#: The order columns a sync writes (compared to decide "updated" vs "unchanged").
ORDER_DATA_FIELDS = (
    "marketplace_id",
    "status",
    "purchase_date",
    "last_update_date",
    "fulfillment_channel",
    "order_total",
    "currency",
    "number_of_items_shipped",
    "number_of_items_unshipped",
)
ORDER_ITEM_FIELDS = (
    "sku",
    "asin",
    "title",
    "quantity_ordered",
    "quantity_shipped",
    "item_price",
    "item_tax",
    "shipping_price",
    "currency",
)
AMOUNT_FIELDS = ("principal", "tax", "shipping", "referral_fee", "fba_fee", "other")
FINANCIAL_EVENT_FIELDS = (
    "adjustment_type",
    "sku",
    "quantity",
    "currency",
    *AMOUNT_FIELDS,
)
ZERO = Decimal("0.00")

#: Called after each committed page with the number of pages committed so far in this call.
PageHook = Callable[[int], None]


def lookback_start() -> datetime:
    days = settings.AMAZON_ORDERS_LOOKBACK_DAYS
    return timezone.now() - timedelta(days=days)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- orders ----------------------------------------------------------------------------------------------


def order_fields(payload: dict[str, Any], marketplace_id: str) -> dict[str, Any] | None:
    """Our columns from one getOrders order; None when it lacks what identifies it."""
    purchased, updated = _when(payload.get("PurchaseDate")), _when(payload.get("LastUpdateDate"))
    if not payload.get("AmazonOrderId") or purchased is None:
        return None
    total = _dict(payload.get("OrderTotal"))
    return {
        "marketplace_id": str(payload.get("MarketplaceId") or marketplace_id)[:20],
        "status": str(payload.get("OrderStatus", ""))[:30],
        "purchase_date": purchased,
        "last_update_date": updated or purchased,
        "fulfillment_channel": str(payload.get("FulfillmentChannel", ""))[:3],
        "order_total": _money(total.get("Amount")),
        "currency": str(total.get("CurrencyCode", ""))[:3],
        "number_of_items_shipped": int(payload.get("NumberOfItemsShipped") or 0),
        "number_of_items_unshipped": int(payload.get("NumberOfItemsUnshipped") or 0),
    }


def _upsert_orders(
    connection: SellerConnection, marketplace_id: str, orders: Iterable[dict[str, Any]], now: datetime
) -> dict[str, int]:
    """Write one page of orders (inside the caller's transaction); created/updated/unchanged counts."""
    tenant = require_tenant()
    incoming: dict[str, dict[str, Any]] = {}
    for payload in orders:
        fields = order_fields(payload, marketplace_id)
        if fields is not None:
            incoming[str(payload["AmazonOrderId"])[:50]] = fields
    existing = {
        row["amazon_order_id"]: row
        for row in Order.objects.filter(connection=connection, amazon_order_id__in=list(incoming)).values(
            "id", "amazon_order_id", *ORDER_DATA_FIELDS
        )
    }
    write: list[Order] = []
    unchanged_ids: list[int] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for amazon_order_id, fields in incoming.items():
        old = existing.get(amazon_order_id)
        if old is not None and (
            old["last_update_date"] > fields["last_update_date"]  # a stale page: keep the newer copy
            or all(old[name] == fields[name] for name in ORDER_DATA_FIELDS)
        ):
            unchanged_ids.append(old["id"])
            counts["unchanged"] += 1
            continue
        counts["updated" if old is not None else "created"] += 1
        write.append(
            Order(
                tenant=tenant,
                connection=connection,
                amazon_order_id=amazon_order_id,
                last_synced_at=now,
                **fields,
            )
        )
    if write:
        Order.objects.bulk_create(
            write,
            update_conflicts=True,
            unique_fields=["tenant", "connection", "amazon_order_id"],
            update_fields=[*ORDER_DATA_FIELDS, "last_synced_at", "updated_at"],
        )
    if unchanged_ids:
        Order.objects.filter(pk__in=unchanged_ids).update(last_synced_at=now)
    created = [o.amazon_order_id for o in write if o.amazon_order_id not in existing]
    if created:  # events that arrived before their order
        _attach_events(connection, created)
    return counts


def _attach_events(connection: SellerConnection, amazon_order_ids: Sequence[str]) -> int:
    return FinancialEvent.objects.filter(
        connection=connection, order__isnull=True, amazon_order_id__in=list(amazon_order_ids)
    ).update(
        order_id=Subquery(
            Order.objects.filter(connection=connection, amazon_order_id=OuterRef("amazon_order_id")).values(
                "id"
            )[:1]
        )
    )


@dataclass
class _OrdersPass:
    kind: str
    next_token: str
    position: int
    #: Amazon's LastUpdatedBefore for this pass (stored in SyncCursor.pass_started_at meanwhile).
    until: datetime | None
    #: The committed cursor: everything updated up to here is stored.
    updated_until: datetime | None


def _load_orders_pass(connection: SellerConnection, marketplace_id: str) -> _OrdersPass:
    kind = f"orders:{marketplace_id}"
    with tenant_context(require_tenant()):
        cursor = SyncCursor.objects.filter(connection=connection, kind=kind).first()
    if cursor is None:
        return _OrdersPass(kind, "", 0, None, None)
    return _OrdersPass(
        kind,
        cursor.next_token,
        cursor.position if cursor.next_token else 0,
        cursor.pass_started_at if cursor.next_token else None,
        cursor.updated_until,
    )


def _save_orders_cursor(
    connection: SellerConnection, state: _OrdersPass, *, completed_at: Any = None
) -> None:
    SyncCursor.objects.update_or_create(
        connection=connection,
        kind=state.kind,
        defaults={
            "tenant": require_tenant(),
            "next_token": state.next_token,
            "position": state.position,
            "pass_started_at": state.until if state.next_token else None,
            "updated_until": state.updated_until,
            **({"last_completed_at": completed_at} if completed_at else {}),
        },
    )


def sync_orders(
    *,
    connection: SellerConnection,
    marketplace_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    with_items: bool = True,
    items_limit: int | None = ORDER_ITEMS_PER_RUN,
    triggered_by: str = "schedule",
    page_size: int = ORDERS_PAGE_SIZE,
    policy: RetryPolicy | None = None,
    after_page: PageHook | None = None,
) -> dict[str, int]:
    """Bring the tenant's copy of `connection`'s orders (and their items) up to date, resuming an
    interrupted pass. `since`: where a first run starts (default: the configured lookback).

    Runs in the current tenant context, outside a transaction. Returns the run's counts."""
    with (
        _single_run(connection, "orders"),
        connection_run("amazon.sync_orders", connection, triggered_by=triggered_by) as run,
    ):
        for name in ("created", "updated", "unchanged"):
            run.count(name, 0)
        pages = done = 0
        for marketplace_id in marketplace_ids or connection_marketplace_ids(connection):
            pages, done = _sync_marketplace_orders(
                connection, marketplace_id, run, since, page_size, policy, after_page, pages, done
            )
        if with_items:
            _sync_order_items(connection, run, policy, items_limit)
    return dict(run.run.counts)


def _sync_marketplace_orders(
    connection: SellerConnection,
    marketplace_id: str,
    run: RunRecorder,
    since: datetime | None,
    page_size: int,
    policy: RetryPolicy | None,
    after_page: PageHook | None,
    pages: int,
    done: int,
) -> tuple[int, int]:
    client = sp_api_client(Orders, connection, marketplace_id, policy=policy)
    state = _load_orders_pass(connection, marketplace_id)
    if state.next_token:
        run.count("resumed_passes")
    while True:
        ensure_still_active(connection)
        try:
            if state.next_token:
                # The page size again: harmless at Amazon, and the simulator reads it per page.
                response = client.get_orders(NextToken=state.next_token, MaxResultsPerPage=page_size)
            else:
                start = state.updated_until or since or lookback_start()
                response = client.get_orders(
                    LastUpdatedAfter=_iso(start), MaxResultsPerPage=page_size, MarketplaceIds=[marketplace_id]
                )
        except AmazonRequestError:
            if not state.next_token:
                raise
            # Amazon no longer knows the page token (they expire): the pass starts again from the
            # committed cursor; what the first attempt stored is upserted again, not duplicated.
            logger.info("orders page token of %s expired; the pass starts again", connection.public_id)
            run.count("restarted_passes")
            state.next_token, state.position, state.until = "", 0, None
            continue
        payload = _dict(response.payload)
        orders = _dicts(payload.get("Orders"))
        next_token = str(response.next_token or payload.get("NextToken") or "")
        if state.until is None:
            state.until = _when(payload.get("LastUpdatedBefore"))
        now = timezone.now()
        with tenant_context(require_tenant()):
            counts = _upsert_orders(connection, marketplace_id, orders, now)
            state.next_token = next_token
            state.position += len(orders)
            if next_token:
                _save_orders_cursor(connection, state)
            else:
                # The pass is complete: only now does the cursor move (to Amazon's upper bound; if Amazon
                # did not say, to the newest update seen, or nowhere).
                seen = [f["last_update_date"] for f in (order_fields(o, marketplace_id) for o in orders) if f]
                bound = state.until or max(seen, default=None)
                if bound is not None and (state.updated_until is None or bound > state.updated_until):
                    state.updated_until = bound
                state.position = 0
                _save_orders_cursor(connection, state, completed_at=now)
        for name, amount in counts.items():
            run.count(name, amount)
        pages += 1
        done += len(orders)
        run.progress(done)
        if after_page is not None:
            after_page(pages)
        if not next_token:
            return pages, done


# --- order items -----------------------------------------------------------------------------------------


def order_item_fields(payload: dict[str, Any]) -> dict[str, Any]:
    price = _dict(payload.get("ItemPrice"))
    return {
        "sku": str(payload.get("SellerSKU", ""))[:200],
        "asin": str(payload.get("ASIN", ""))[:20],
        "title": str(payload.get("Title", ""))[:500],
        "quantity_ordered": int(payload.get("QuantityOrdered") or 0),
        "quantity_shipped": int(payload.get("QuantityShipped") or 0),
        "item_price": _money(price.get("Amount")),
        "item_tax": _money(_dict(payload.get("ItemTax")).get("Amount")),
        "shipping_price": _money(_dict(payload.get("ShippingPrice")).get("Amount")),
        "currency": str(price.get("CurrencyCode", ""))[:3],
    }


def orders_needing_items(connection: SellerConnection) -> Any:
    """Orders whose stored items are not those of their last update (a queryset; tenant context)."""
    return Order.objects.filter(connection=connection).filter(
        Q(items_synced_for__isnull=True) | ~Q(items_synced_for=F("last_update_date"))
    )


def _sync_order_items(
    connection: SellerConnection, run: RunRecorder, policy: RetryPolicy | None, limit: int | None
) -> None:
    tenant = require_tenant()
    with tenant_context(tenant):
        pending = orders_needing_items(connection).order_by("last_update_date", "id")
        backlog = pending.count()
        rows = list(pending.values("id", "amazon_order_id", "marketplace_id", "last_update_date")[:limit])
    run.count("items_orders", 0)
    run.count("items_backlog", max(0, backlog - len(rows)))
    clients: dict[str, Any] = {}
    for row in rows:
        ensure_still_active(connection)
        marketplace_id = row["marketplace_id"]
        if marketplace_id not in clients:
            clients[marketplace_id] = sp_api_client(Orders, connection, marketplace_id, policy=policy)
        items: list[dict[str, Any]] = []
        try:
            response = clients[marketplace_id].get_order_items(row["amazon_order_id"])
            while True:
                payload = _dict(response.payload)
                items.extend(_dicts(payload.get("OrderItems")))
                token = str(response.next_token or payload.get("NextToken") or "")
                if not token:
                    break
                ensure_still_active(connection)
                response = clients[marketplace_id].get_order_items(row["amazon_order_id"], NextToken=token)
        except AmazonRequestError as error:  # e.g. 404: counted, tried again on the next run
            logger.info("order items of %s: %s", row["amazon_order_id"], error)
            run.count("items_failed")
            continue
        with tenant_context(tenant):
            written = [
                OrderItem(
                    tenant=tenant,
                    order_id=row["id"],
                    order_item_id=str(item.get("OrderItemId"))[:50],
                    **order_item_fields(item),
                )
                for item in items
                if item.get("OrderItemId")
            ]
            if written:
                OrderItem.objects.bulk_create(
                    written,
                    update_conflicts=True,
                    unique_fields=["tenant", "order", "order_item_id"],
                    update_fields=[*ORDER_ITEM_FIELDS, "updated_at"],
                )
            # Marked for the update we read; if the order changed meanwhile it stays in the backlog.
            Order.objects.filter(pk=row["id"], last_update_date=row["last_update_date"]).update(
                items_synced_for=row["last_update_date"]
            )
        run.count("items_orders")
        run.count("items", len(written))


# --- financial events ------------------------------------------------------------------------------------


def _amount(entry: dict[str, Any], key: str) -> tuple[Decimal, str]:
    money = _dict(entry.get(key))
    return _money(money.get("CurrencyAmount")) or ZERO, str(money.get("CurrencyCode", ""))[:3]


#: Amazon's charge and fee types -> our amount columns (anything else is "other").
CHARGE_COLUMNS = {"Principal": "principal", "Tax": "tax", "ShippingCharge": "shipping"}
FEE_COLUMNS = {
    "Commission": "referral_fee",
    "RefundCommission": "referral_fee",
    "FBAPerUnitFulfillmentFee": "fba_fee",
}


def _item_line(
    item: dict[str, Any], charges_key: str, fees_key: str, promotions_key: str
) -> tuple[dict[str, Decimal], str]:
    amounts = dict.fromkeys(AMOUNT_FIELDS, ZERO)
    currency = ""
    for charge in _dicts(item.get(charges_key)):
        value, code = _amount(charge, "ChargeAmount")
        amounts[CHARGE_COLUMNS.get(str(charge.get("ChargeType")), "other")] += value
        currency = currency or code
    for fee in _dicts(item.get(fees_key)):
        value, code = _amount(fee, "FeeAmount")
        amounts[FEE_COLUMNS.get(str(fee.get("FeeType")), "other")] += value
        currency = currency or code
    for promotion in _dicts(item.get(promotions_key)):
        value, code = _amount(promotion, "PromotionAmount")
        amounts["other"] += value
        currency = currency or code
    return amounts, currency


def financial_event_lines(events: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict of FinancialEvent columns per item line of a listFinancialEvents `FinancialEvents`."""
    lines: list[dict[str, Any]] = []
    for kind, list_name, items_key, charges_key, fees_key, promotions_key, key_name in (
        (
            FinancialEvent.Kind.SHIPMENT,
            "ShipmentEventList",
            "ShipmentItemList",
            "ItemChargeList",
            "ItemFeeList",
            "PromotionList",
            "OrderItemId",
        ),
        (
            FinancialEvent.Kind.REFUND,
            "RefundEventList",
            "ShipmentItemAdjustmentList",
            "ItemChargeAdjustmentList",
            "ItemFeeAdjustmentList",
            "PromotionAdjustmentList",
            "OrderAdjustmentItemId",
        ),
    ):
        for event in _dicts(events.get(list_name)):
            posted = _when(event.get("PostedDate"))
            if posted is None:
                continue
            for index, item in enumerate(_dicts(event.get(items_key))):
                amounts, currency = _item_line(item, charges_key, fees_key, promotions_key)
                sku = str(item.get("SellerSKU", ""))[:200]
                lines.append(
                    {
                        "kind": kind,
                        "amazon_order_id": str(event.get("AmazonOrderId", ""))[:50],
                        "posted_date": posted,
                        "line_key": str(item.get(key_name) or f"{sku}:{index}")[:300],
                        "adjustment_type": "",
                        "sku": sku,
                        "quantity": int(item.get("QuantityShipped") or 0),
                        "currency": currency,
                        **amounts,
                    }
                )
    for event in _dicts(events.get("AdjustmentEventList")):
        posted = _when(event.get("PostedDate"))
        if posted is None:
            continue
        adjustment_type = str(event.get("AdjustmentType", ""))[:100]
        items = _dicts(event.get("AdjustmentItemList"))
        if not items:  # an adjustment without lines: its total as one line
            value, currency = _amount(event, "AdjustmentAmount")
            items = [{"TotalAmount": {"CurrencyAmount": value, "CurrencyCode": currency}}]
        for index, item in enumerate(items):
            value, currency = _amount(item, "TotalAmount")
            sku = str(item.get("SellerSKU", ""))[:200]
            amounts = dict.fromkeys(AMOUNT_FIELDS, ZERO)
            amounts["other"] = value
            lines.append(
                {
                    "kind": FinancialEvent.Kind.ADJUSTMENT,
                    "amazon_order_id": str(event.get("AmazonOrderId", ""))[:50],
                    "posted_date": posted,
                    "line_key": f"{adjustment_type}:{sku}:{index}"[:300],
                    "adjustment_type": adjustment_type,
                    "sku": sku,
                    "quantity": int(item.get("Quantity") or 0),
                    "currency": currency,
                    **amounts,
                }
            )
    return lines


def _upsert_events(connection: SellerConnection, lines: list[dict[str, Any]]) -> dict[str, int]:
    tenant = require_tenant()
    order_ids = {line["amazon_order_id"] for line in lines if line["amazon_order_id"]}
    orders = dict(
        Order.objects.filter(connection=connection, amazon_order_id__in=list(order_ids)).values_list(
            "amazon_order_id", "id"
        )
    )
    key = ("kind", "amazon_order_id", "posted_date", "line_key")
    unique: dict[tuple[Any, ...], dict[str, Any]] = {tuple(line[k] for k in key): line for line in lines}
    rows = [
        FinancialEvent(
            tenant=tenant, connection=connection, order_id=orders.get(line["amazon_order_id"]), **line
        )
        for line in unique.values()
    ]
    if rows:
        FinancialEvent.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["tenant", "connection", *key],
            update_fields=[*FINANCIAL_EVENT_FIELDS, "order", "updated_at"],
        )
    return {"events": len(rows), "attached": sum(1 for r in rows if r.order_id)}


def sync_financial_events(
    *,
    connection: SellerConnection,
    since: datetime | None = None,
    triggered_by: str = "schedule",
    policy: RetryPolicy | None = None,
    after_page: PageHook | None = None,
) -> dict[str, int]:
    """Store the connection's financial events posted since the cursor (minus the overlap), each page in
    its own transaction with its page token. Runs in the tenant context, outside a transaction."""
    overlap = timedelta(hours=settings.AMAZON_FINANCES_OVERLAP_HOURS)
    with (
        _single_run(connection, FINANCES_KIND),
        connection_run("amazon.sync_financial_events", connection, triggered_by=triggered_by) as run,
    ):
        run.count("events", 0)
        run.count("attached", 0)
        marketplaces = connection_marketplace_ids(connection)
        if not marketplaces:
            return dict(run.run.counts)
        # Finances is per seller account, not per marketplace: any of the region's marketplaces serves.
        client = sp_api_client(Finances, connection, marketplaces[0], policy=policy)
        with tenant_context(require_tenant()):
            cursor = SyncCursor.objects.filter(connection=connection, kind=FINANCES_KIND).first()
        next_token = cursor.next_token if cursor else ""
        #: The committed cursor (the newest PostedDate of the last complete pass) ...
        updated_until = cursor.updated_until if cursor else None
        #: ... and the newest of the pass in progress, kept in pass_started_at until the pass completes.
        newest = cursor.pass_started_at if cursor and next_token else None
        position = cursor.position if cursor and next_token else 0
        if next_token:
            run.count("resumed_passes")
        pages = 0
        while True:
            ensure_still_active(connection)
            try:
                if next_token:
                    response = client.list_financial_events(
                        NextToken=next_token, MaxResultsPerPage=FINANCES_PAGE_SIZE
                    )
                else:
                    start = updated_until - overlap if updated_until else since or lookback_start()
                    response = client.list_financial_events(
                        PostedAfter=_iso(start), MaxResultsPerPage=FINANCES_PAGE_SIZE
                    )
            except AmazonRequestError:
                if not next_token:
                    raise
                run.count("restarted_passes")
                next_token, position, newest = "", 0, None
                continue
            payload = _dict(response.payload)
            lines = financial_event_lines(_dict(payload.get("FinancialEvents")))
            next_token = str(response.next_token or payload.get("NextToken") or "")
            posted = [line["posted_date"] for line in lines]
            if posted and (newest is None or max(posted) > newest):
                newest = max(posted)
            position += len(lines)
            now = timezone.now()
            with tenant_context(require_tenant()):
                counts = _upsert_events(connection, lines)
                if (
                    not next_token
                    and newest is not None
                    and (updated_until is None or newest > updated_until)
                ):
                    updated_until = newest  # the pass is complete: only now does the cursor move
                SyncCursor.objects.update_or_create(
                    connection=connection,
                    kind=FINANCES_KIND,
                    defaults={
                        "tenant": require_tenant(),
                        "next_token": next_token,
                        "position": position if next_token else 0,
                        "pass_started_at": newest if next_token else None,
                        "updated_until": updated_until,
                        **({} if next_token else {"last_completed_at": now}),
                    },
                )
            for name, amount in counts.items():
                run.count(name, amount)
            pages += 1
            run.progress(position)
            if after_page is not None:
                after_page(pages)
            if not next_token:
                break
    return dict(run.run.counts)
