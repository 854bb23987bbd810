"""Keeping our copy of the seller's Amazon data: listings (searchListingsItems) and the competition on
them (getListingOffersBatch).

Promises:

- **Idempotent upserts on natural keys.** A listing is (tenant, connection, marketplace, SKU); a page
  is written with one `INSERT ... ON CONFLICT DO UPDATE` for the new and changed rows (and a bare
  `last_synced_at` update for the unchanged ones), so running a sync twice changes nothing twice.
- **The cursor moves only with the data.** Each page commits in its own transaction together with
  the page token of the next page (`SyncCursor`). A sync that dies half-way (worker killed, Amazon
  down past the retry budget) resumes from the last committed page on its next run, without
  duplicates; a complete pass resets the cursor and marks listings Amazon no longer reports as
  removed.
- **Visible runs.** Each call records a `JobRun` (progress done/total, counts created / updated /
  unchanged / removed, or snapshots / failed) that commits as it goes, so the seller sees progress and
  failures. Call these inside the tenant's context (the task base class sets it) but *outside* a
  transaction: they open one per page.
- **Quota.** Every call goes through `amazon.clients.sp_api_client` (shared token bucket, retries on
  429/5xx), so a 429 storm slows the sync down rather than losing a page.

Limits, as Amazon has them: searchListingsItems pages through at most 1,000 items per query. A
catalogue above that is synced up to the limit, the run says so (`counts["search_limit_reached"]`), and
removal detection is skipped for that marketplace; the merchant listings report is the way past it.
Pages are ordered by SKU (stable while prices and stock change); a SKU created mid-pass may shift the
pages and be seen twice (harmless: upsert) or be picked up by the next pass.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote

from django.db.models import Q
from django.utils import timezone
from sp_api.api import ListingsItems, ProductsV0

from amazon.clients import RetryPolicy, marketplace_for, sp_api_client
from amazon.models import Listing, OfferSnapshot, SellerConnection, SyncCursor
from config.redis import redis_client
from tenants.context import require_tenant, tenant_context
from tenants.jobs import RunRecorder, job_run

logger = logging.getLogger(__name__)

#: searchListingsItems' maximum page size.
LISTINGS_PAGE_SIZE = 20
#: searchListingsItems never pages past this many items for one query.
SEARCH_RESULT_LIMIT = 1000
LISTINGS_INCLUDED_DATA = "summaries,attributes,offers,fulfillmentAvailability"
#: getListingOffersBatch takes at most 20 requests.
OFFERS_BATCH_SIZE = 20
#: A sync of one kind runs once per connection at a time; the lock frees itself after this long.
SYNC_LOCK_SECONDS = 30 * 60

CENT = Decimal("0.01")
AWS_REGION = {"NA": "us-east-1", "EU": "eu-west-1", "FE": "us-west-2"}
#: The listing columns a sync writes (compared to decide "updated" vs "unchanged").
LISTING_DATA_FIELDS = (
    "asin",
    "title",
    "price",
    "currency",
    "quantity",
    "fulfillment_channel",
    "condition",
    "status",
)

#: Called after each committed page with the number of pages committed so far in this call.
PageHook = Callable[[int], None]


class SyncAlreadyRunning(Exception):
    """Another worker is running this sync for this connection right now."""


# --- helpers ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _single_run(connection: SellerConnection, kind: str) -> Iterator[None]:
    client = redis_client()
    key = f"sync:lock:{connection.public_id}:{kind}"
    owner = secrets.token_hex(16)
    if not client.set(key, owner, nx=True, ex=SYNC_LOCK_SECONDS):
        raise SyncAlreadyRunning(f"{kind} is already running for connection {connection.public_id}")
    try:
        yield
    finally:
        client.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            1,
            key,
            owner,
        )


def connection_marketplace_ids(connection: SellerConnection) -> list[str]:
    """The connection's marketplaces that belong to its region (the only ones its endpoint serves)."""
    ids = []
    for entry in connection.marketplaces or []:
        marketplace_id = entry.get("id") if isinstance(entry, dict) else entry
        if not marketplace_id:
            continue
        try:
            member = marketplace_for(str(marketplace_id))
        except ValueError:
            continue
        if member.region == AWS_REGION.get(connection.region) and marketplace_id not in ids:
            ids.append(str(marketplace_id))
    return ids


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return None


def _for_marketplace(entries: Any, marketplace_id: str, key: str = "marketplaceId") -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        return []
    dicts = [e for e in entries if isinstance(e, dict)]
    return [e for e in dicts if e.get(key) in (None, marketplace_id)]


def listing_fields(item: dict[str, Any], marketplace_id: str) -> dict[str, Any]:
    """Our columns from one searchListingsItems item (summaries, attributes, offers,
    fulfillmentAvailability), preferring the dedicated datasets over the attributes."""
    summary = next(iter(_for_marketplace(item.get("summaries"), marketplace_id)), {})
    attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
    assert isinstance(attributes, dict)

    statuses = summary.get("status") or []
    if "BUYABLE" in statuses:
        status = Listing.Status.BUYABLE
    elif "DISCOVERABLE" in statuses:
        status = Listing.Status.DISCOVERABLE
    else:
        status = Listing.Status.INACTIVE

    price: Decimal | None = None
    currency = ""
    offer = next(
        (
            o
            for o in _for_marketplace(item.get("offers"), marketplace_id)
            if o.get("offerType", "B2C") == "B2C"
        ),
        None,
    )
    if offer is not None and isinstance(offer.get("price"), dict):
        price = _money(offer["price"].get("amount"))
        currency = str(offer["price"].get("currencyCode", ""))
    if price is None:
        purchasable = next(
            iter(_for_marketplace(attributes.get("purchasable_offer"), marketplace_id, "marketplace_id")), {}
        )
        with contextlib.suppress(KeyError, IndexError, TypeError):
            price = _money(purchasable["our_price"][0]["schedule"][0]["value_with_tax"])
            currency = str(purchasable.get("currency", ""))

    quantity: int | None = None
    channel_code = ""
    availability = item.get("fulfillmentAvailability")
    if isinstance(availability, list) and availability and isinstance(availability[0], dict):
        channel_code = str(availability[0].get("fulfillmentChannelCode", ""))
        if availability[0].get("quantity") is not None:
            quantity = int(availability[0]["quantity"])
    else:
        entry = next(
            iter(
                _for_marketplace(attributes.get("fulfillment_availability"), marketplace_id, "marketplace_id")
            ),
            {},
        )
        channel_code = str(entry.get("fulfillment_channel_code", ""))
        if entry.get("quantity") is not None:
            quantity = int(entry["quantity"])
    if channel_code:
        channel = (
            Listing.FulfillmentChannel.MFN if channel_code == "DEFAULT" else Listing.FulfillmentChannel.AFN
        )
    else:
        channel = Listing.FulfillmentChannel.AFN if summary.get("fnSku") else Listing.FulfillmentChannel.MFN

    condition = summary.get("conditionType") or ""
    if not condition:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            condition = attributes["condition_type"][0]["value"]
    title = summary.get("itemName") or ""
    if not title:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            title = attributes["item_name"][0]["value"]

    return {
        "asin": str(summary.get("asin", ""))[:20],
        "title": str(title)[:500],
        "price": price,
        "currency": currency[:3],
        "quantity": quantity,
        "fulfillment_channel": channel,
        "condition": str(condition)[:40],
        "status": status,
    }


# --- listings --------------------------------------------------------------------------------------------


@dataclass
class _Pass:
    marketplace_id: str
    kind: str
    next_token: str
    position: int
    pass_started_at: Any


def _load_pass(connection: SellerConnection, marketplace_id: str) -> _Pass:
    kind = f"listings:{marketplace_id}"
    with tenant_context(require_tenant()):
        cursor = SyncCursor.objects.filter(connection=connection, kind=kind).first()
    if cursor is not None and cursor.next_token:
        return _Pass(marketplace_id, kind, cursor.next_token, cursor.position, cursor.pass_started_at)
    return _Pass(marketplace_id, kind, "", 0, timezone.now())


def _upsert_page(
    connection: SellerConnection, marketplace_id: str, items: Sequence[dict[str, Any]], now: Any
) -> dict[str, int]:
    """Write one page (inside the caller's transaction). Returns created/updated/unchanged counts."""
    tenant = require_tenant()
    incoming: dict[str, dict[str, Any]] = {}
    for item in items:
        sku = str(item.get("sku") or "")
        if sku:
            incoming[sku] = listing_fields(item, marketplace_id)
    existing = {
        row["sku"]: row
        for row in Listing.objects.filter(
            connection=connection, marketplace_id=marketplace_id, sku__in=list(incoming)
        ).values("id", "sku", *LISTING_DATA_FIELDS)
    }
    write: list[Listing] = []
    unchanged_ids: list[int] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for sku, fields in incoming.items():
        old = existing.get(sku)
        if old is not None and all(old[name] == fields[name] for name in LISTING_DATA_FIELDS):
            unchanged_ids.append(old["id"])
            counts["unchanged"] += 1
            continue
        counts["updated" if old is not None else "created"] += 1
        write.append(
            Listing(
                tenant=tenant,
                connection=connection,
                marketplace_id=marketplace_id,
                sku=sku,
                last_synced_at=now,
                **fields,
            )
        )
    if write:
        Listing.objects.bulk_create(
            write,
            update_conflicts=True,
            unique_fields=["tenant", "connection", "marketplace_id", "sku"],
            update_fields=[*LISTING_DATA_FIELDS, "last_synced_at", "updated_at"],
        )
    if unchanged_ids:
        Listing.objects.filter(pk__in=unchanged_ids).update(last_synced_at=now)
    return counts


def _save_cursor(connection: SellerConnection, state: _Pass, *, completed_at: Any = None) -> None:
    SyncCursor.objects.update_or_create(
        connection=connection,
        kind=state.kind,
        defaults={
            "tenant": require_tenant(),
            "next_token": state.next_token,
            "position": state.position,
            "pass_started_at": state.pass_started_at if state.next_token else None,
            **({"last_completed_at": completed_at} if completed_at else {}),
        },
    )


def sync_listings(
    *,
    connection: SellerConnection,
    marketplace_ids: Sequence[str] | None = None,
    triggered_by: str = "schedule",
    page_size: int = LISTINGS_PAGE_SIZE,
    policy: RetryPolicy | None = None,
    after_page: PageHook | None = None,
) -> dict[str, int]:
    """Bring the tenant's copy of `connection`'s listings up to date (resuming an interrupted pass).

    Runs in the current tenant context, outside a transaction. Returns the run's counts."""
    with (
        _single_run(connection, "listings"),
        job_run("amazon.sync_listings", triggered_by=triggered_by) as run,
    ):
        for name in ("created", "updated", "unchanged", "removed"):
            run.count(name, 0)
        pages = 0
        done_before = 0
        for marketplace_id in marketplace_ids or connection_marketplace_ids(connection):
            pages, done = _sync_marketplace_listings(
                connection, marketplace_id, run, page_size, policy, after_page, pages, done_before
            )
            done_before += done
        return dict(run.run.counts)


def _sync_marketplace_listings(
    connection: SellerConnection,
    marketplace_id: str,
    run: RunRecorder,
    page_size: int,
    policy: RetryPolicy | None,
    after_page: PageHook | None,
    pages: int,
    done_before: int,
) -> tuple[int, int]:
    client = sp_api_client(ListingsItems, connection, marketplace_id, policy=policy)
    state = _load_pass(connection, marketplace_id)
    if state.next_token:
        run.count("resumed_passes")
    while True:
        params: dict[str, Any] = {
            "sellerId": connection.selling_partner_id,
            "marketplaceIds": marketplace_id,
            "includedData": LISTINGS_INCLUDED_DATA,
            "pageSize": page_size,
            "sortBy": "sku",
            "sortOrder": "ASC",
        }
        if state.next_token:
            params["pageToken"] = state.next_token
        response = client.search_listings_items(**params)
        payload = response.payload if isinstance(response.payload, dict) else {}
        items = [i for i in payload.get("items") or [] if isinstance(i, dict)]
        total = int(payload.get("numberOfResults") or 0)
        next_token = str(response.next_token or "")
        now = timezone.now()
        with tenant_context(require_tenant()):
            counts = _upsert_page(connection, marketplace_id, items, now)
            state.next_token = next_token
            state.position += len(items)
            done = state.position
            if next_token:
                _save_cursor(connection, state)
            else:
                removed = 0
                if total >= SEARCH_RESULT_LIMIT:
                    run.count("search_limit_reached")
                else:
                    # Not reported during this whole pass: gone from Amazon.
                    removed = (
                        Listing.objects.filter(
                            connection=connection,
                            marketplace_id=marketplace_id,
                            last_synced_at__lt=state.pass_started_at,
                        )
                        .filter(~Q(status=Listing.Status.REMOVED))
                        .update(status=Listing.Status.REMOVED, updated_at=now)
                    )
                counts["removed"] = removed
                state.position = 0
                _save_cursor(connection, state, completed_at=now)
        for name, amount in counts.items():
            run.count(name, amount)
        pages += 1
        run.progress(done_before + done, done_before + min(total, SEARCH_RESULT_LIMIT))
        if after_page is not None:
            after_page(pages)
        if not next_token:
            return pages, done


# --- offers ----------------------------------------------------------------------------------------------


def _offer_snapshot(
    listing_row: dict[str, Any], result: dict[str, Any], seller_id: str, now: Any
) -> OfferSnapshot:
    raw_payload = result.get("payload")
    payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    raw_summary = payload.get("Summary")
    summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
    offers = [o for o in payload.get("Offers") or [] if isinstance(o, dict)]
    condition = str(listing_row["item_condition"]).lower()

    buy_box = next(
        (b for b in summary.get("BuyBoxPrices") or [] if str(b.get("condition", "")).lower() == condition),
        None,
    )
    currency = ""
    buy_box_price = buy_box_landed = None
    if buy_box:
        buy_box_price = _money((buy_box.get("ListingPrice") or {}).get("Amount"))
        buy_box_landed = _money((buy_box.get("LandedPrice") or {}).get("Amount"))
        currency = str((buy_box.get("LandedPrice") or {}).get("CurrencyCode", ""))
    winner = next((o for o in offers if o.get("IsBuyBoxWinner")), None)
    lowest: dict[str, Decimal] = {}
    for entry in summary.get("LowestPrices") or []:
        if str(entry.get("condition", "")).lower() != condition:
            continue
        amount = _money((entry.get("LandedPrice") or {}).get("Amount"))
        if amount is None:
            continue
        channel = "fba" if entry.get("fulfillmentChannel") == "Amazon" else "mfn"
        lowest[channel] = min(amount, lowest.get(channel, amount))
        currency = currency or str((entry.get("LandedPrice") or {}).get("CurrencyCode", ""))
    return OfferSnapshot(
        tenant=require_tenant(),
        listing_id=listing_row["id"],
        observed_at=now,
        status=str(payload.get("status") or "Success")[:40],
        currency=currency[:3],
        buy_box_price=buy_box_price,
        buy_box_landed_price=buy_box_landed,
        buy_box_seller_id=str(winner.get("SellerId", "")) if winner else "",
        we_hold_buy_box=bool(winner and (winner.get("MyOffer") or winner.get("SellerId") == seller_id)),
        lowest_landed_price=min(lowest.values()) if lowest else None,
        lowest_landed_price_fba=lowest.get("fba"),
        lowest_landed_price_mfn=lowest.get("mfn"),
        number_of_offers=int(summary.get("TotalOfferCount") or len(offers)),
        offers=offers,
        summary=summary,
    )


def sync_offers(
    *,
    connection: SellerConnection,
    skus: Sequence[str] | None = None,
    triggered_by: str = "schedule",
    policy: RetryPolicy | None = None,
) -> dict[str, int]:
    """Snapshot the offers on the connection's listings (all not removed, or `skus`), 20 per
    getListingOffersBatch call, each batch committed on its own. Runs in the tenant context, outside a
    transaction. A SKU Amazon answers with an error is counted as failed, the others are kept."""
    with _single_run(connection, "offers"), job_run("amazon.sync_offers", triggered_by=triggered_by) as run:
        run.count("snapshots", 0)
        run.count("failed", 0)
        with tenant_context(require_tenant()):
            rows = Listing.objects.filter(connection=connection).exclude(status=Listing.Status.REMOVED)
            if skus is not None:
                rows = rows.filter(sku__in=list(skus))
            listings = [
                {
                    "id": li.id,
                    "sku": li.sku,
                    "marketplace_id": li.marketplace_id,
                    "item_condition": li.item_condition,
                }
                for li in rows.order_by("marketplace_id", "sku")
            ]
        run.progress(0, len(listings))
        done = 0
        clients: dict[str, Any] = {}
        by_marketplace: dict[str, list[dict[str, Any]]] = {}
        for row in listings:
            by_marketplace.setdefault(row["marketplace_id"], []).append(row)
        for marketplace_id, rows_in_marketplace in by_marketplace.items():
            if marketplace_id not in clients:
                clients[marketplace_id] = sp_api_client(ProductsV0, connection, marketplace_id, policy=policy)
            for start in range(0, len(rows_in_marketplace), OFFERS_BATCH_SIZE):
                batch = rows_in_marketplace[start : start + OFFERS_BATCH_SIZE]
                by_sku = {row["sku"]: row for row in batch}
                response = clients[marketplace_id].get_listing_offers_batch(
                    requests_=[
                        {
                            "uri": f"/products/pricing/v0/listings/{quote(row['sku'], safe='')}/offers",
                            "method": "GET",
                            "MarketplaceId": marketplace_id,
                            "ItemCondition": row["item_condition"],
                            "CustomerType": "Consumer",
                        }
                        for row in batch
                    ]
                )
                payload = response.payload if isinstance(response.payload, dict) else {}
                now = timezone.now()
                snapshots = []
                failed = 0
                for answer in payload.get("responses") or []:
                    request = answer.get("request") or {}
                    answered = by_sku.get(unquote(str(request.get("SellerSKU", ""))))
                    status = int((answer.get("status") or {}).get("statusCode") or 0)
                    if answered is None or status != 200:
                        failed += 1
                        continue
                    snapshots.append(
                        _offer_snapshot(
                            answered, answer.get("body") or {}, connection.selling_partner_id, now
                        )
                    )
                failed += max(0, len(batch) - len(snapshots) - failed)
                with tenant_context(require_tenant()):
                    OfferSnapshot.objects.bulk_create(snapshots)
                run.count("snapshots", len(snapshots))
                run.count("buy_box_ours", sum(1 for s in snapshots if s.we_hold_buy_box))
                run.count("failed", failed)
                done += len(batch)
                run.progress(done, len(listings))
        return dict(run.run.counts)
