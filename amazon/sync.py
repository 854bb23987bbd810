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

Limits, as Amazon has them: searchListingsItems pages through at most 1,000 items per query. A pass
that reaches it says so (`counts["search_limit_reached"]`), skips removal detection and hands the
marketplace to the merchant listings report (GET_MERCHANT_LISTINGS_ALL_DATA, `_ListingsReport`), which
lists every SKU; marketplaces where we hold 1,000 listings or more go to the report directly. The report
id is kept in a `SyncCursor`, so a run that stops waiting for Amazon (or dies) is continued by the next
run with the same report.
Pages are ordered by SKU (stable while prices and stock change); a SKU created mid-pass may shift the
pages and be seen twice (harmless: upsert) or be picked up by the next pass.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote

import httpx
from django.db.models import Q
from django.utils import timezone
from sp_api.api import ListingsItems, ProductsV0, Reports

from amazon.clients import AmazonUnavailable, RetryPolicy, marketplace_for, sp_api_client
from amazon.models import Listing, OfferSnapshot, SellerConnection, SyncCursor
from config.redis import redis_client
from tenants.context import require_tenant, tenant_context
from tenants.jobs import RunRecorder, job_run
from tenants.models import JobRun

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

#: The report that lists every offer of the seller in a marketplace ("All Listings Report").
LISTINGS_REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
#: Report rows written per transaction.
REPORT_BATCH_SIZE = 500
#: Seconds between getReport polls (the last one repeats). Amazon takes seconds to many minutes.
REPORT_POLL_DELAYS = (15.0, 30.0, 60.0, 120.0)
#: How long one run waits for the report; past that the run ends and the next one polls the same report.
REPORT_MAX_WAIT_SECONDS = 10 * 60
#: The report has no currency column: the marketplace's.
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1805IZSGTT6HS": "EUR",
    "AMEN7PMS3EDWL": "EUR",
    "A2NODRKZP88ZB9": "SEK",
    "A1C3SOZRARQ6R3": "PLN",
    "A33AVAJ2PDY3EV": "TRY",
    "A2VIGQ35RCS4UG": "AED",
    "A17E79C6D8DWNP": "SAR",
    "ARBP9OOSHTCHU": "EGP",
    "A21TJRUUN4KGV": "INR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A19VAU5U5O7RUS": "SGD",
}
#: The report's item-condition codes as the listings API's condition types.
REPORT_CONDITIONS = {
    "1": "used_like_new",
    "2": "used_very_good",
    "3": "used_good",
    "4": "used_acceptable",
    "5": "collectible_like_new",
    "6": "collectible_very_good",
    "7": "collectible_good",
    "8": "collectible_acceptable",
    "10": "refurbished_refurbished",
    "11": "new_new",
}
#: Report status -> ours. "Inactive" offers (out of stock, suppressed) keep their detail page;
#: "Incomplete" ones lack required data.
REPORT_STATUSES = {
    "active": Listing.Status.BUYABLE,
    "inactive": Listing.Status.DISCOVERABLE,
    "incomplete": Listing.Status.INACTIVE,
}


class SyncAlreadyRunning(Exception):
    """Another worker is running this sync for this connection right now."""


class ReportFailed(Exception):
    """Amazon could not produce the listings report (FATAL / CANCELLED) or sent one we cannot read; the
    next run requests a new one."""


class ConnectionNotActive(Exception):
    """The connection stopped being active (a person disconnected it, or Amazon refused its grant) while
    a sync was running: the sync stops before its next call to Amazon."""

    def __init__(self, status: str) -> None:
        self.status = status
        if status == SellerConnection.Status.NEEDS_REAUTHORIZATION:
            why = "the Amazon account needs re-authorisation"
        else:
            why = "the Amazon account was disconnected while this ran"
        super().__init__(f"Stopped: {why}. Nothing more was asked of Amazon for it.")


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


def ensure_still_active(connection: SellerConnection) -> None:
    """Call before each request to Amazon in a sync: the connection's status as committed now (one
    query by primary key). A connection disconnected while the sync pages through Amazon raises
    ConnectionNotActive: this worker still holds its credentials in memory and must not use them."""
    with tenant_context(require_tenant()):
        status = SellerConnection.objects.filter(pk=connection.pk).values_list("status", flat=True).first()
    if status != SellerConnection.Status.ACTIVE:
        connection.status = status or SellerConnection.Status.DISCONNECTED
        raise ConnectionNotActive(connection.status)


@contextlib.contextmanager
def connection_run(kind: str, connection: SellerConnection, *, triggered_by: str) -> Iterator[RunRecorder]:
    """`job_run` for a sync of one connection that stops cleanly when the connection stops being active
    mid-way (ConnectionNotActive): the body ends there, the task does not fail, what was committed stays
    (cursors included, so a reconnected account resumes), and the run says why: outcome `partial` (or
    `skipped` when nothing was done yet), the reason as its error, `stopped: 1` in its counts."""
    stopped: ConnectionNotActive | None = None
    with job_run(kind, triggered_by=triggered_by) as run:
        try:
            yield run
        except ConnectionNotActive as error:
            stopped = error
            run.count("stopped")
            logger.info("%s of connection %s stopped: it is %s", kind, connection.public_id, error.status)
    if stopped is not None:
        # job_run has just recorded success; this run stopped short of it.
        record = run.run
        record.outcome = JobRun.Outcome.PARTIAL if record.progress_done else JobRun.Outcome.SKIPPED
        record.error = str(stopped)
        with tenant_context(require_tenant()):
            record.save(update_fields=["outcome", "error", "updated_at"])


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
    """Write one searchListingsItems page (inside the caller's transaction)."""
    incoming: dict[str, dict[str, Any]] = {}
    for item in items:
        sku = str(item.get("sku") or "")
        if sku:
            incoming[sku] = listing_fields(item, marketplace_id)
    return _upsert_listings(connection, marketplace_id, incoming, now)


def _upsert_listings(
    connection: SellerConnection, marketplace_id: str, incoming: dict[str, dict[str, Any]], now: Any
) -> dict[str, int]:
    """Write one batch of listings, `{sku: columns}` (inside the caller's transaction): one upsert for the
    new and changed rows, a bare `last_synced_at` update for the unchanged. A column missing from a SKU's
    columns keeps its stored value (None for a new row): the listings report has no FBA quantity, for
    one. Returns created/updated/unchanged counts."""
    tenant = require_tenant()
    existing = {
        row["sku"]: row
        for row in Listing.objects.filter(
            connection=connection, marketplace_id=marketplace_id, sku__in=list(incoming)
        ).values("id", "sku", *LISTING_DATA_FIELDS)
    }
    write: list[Listing] = []
    unchanged_ids: list[int] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for sku, given in incoming.items():
        old = existing.get(sku)
        fields = {
            name: given[name] if name in given else (old or {}).get(name) for name in LISTING_DATA_FIELDS
        }
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
    use_report: bool | None = None,
    report_batch_size: int = REPORT_BATCH_SIZE,
    report_wait_seconds: float = REPORT_MAX_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Bring the tenant's copy of `connection`'s listings up to date (resuming an interrupted pass).

    Per marketplace: searchListingsItems for small catalogues; the merchant listings report when a
    search pass reaches Amazon's 1,000-item limit, when we already hold that many listings there, or
    when a report is already under way (`use_report` True/False forces the choice). Runs in the current
    tenant context, outside a transaction. Returns the run's counts."""
    with (
        _single_run(connection, "listings"),
        connection_run("amazon.sync_listings", connection, triggered_by=triggered_by) as run,
    ):
        for name in ("created", "updated", "unchanged", "removed"):
            run.count(name, 0)
        pages = 0
        done_before = 0
        for marketplace_id in marketplace_ids or connection_marketplace_ids(connection):
            report = _ListingsReport(
                connection, marketplace_id, run, policy, report_batch_size, report_wait_seconds, sleep
            )
            if use_report is None:
                use_report_here = report.pending() or _known_large(connection, marketplace_id)
            else:
                use_report_here = use_report
            if not use_report_here:
                pages, done, limit_reached = _sync_marketplace_listings(
                    connection, marketplace_id, run, page_size, policy, after_page, pages, done_before
                )
                use_report_here = limit_reached and use_report is None
                if not use_report_here:
                    done_before += done
                    continue
            done_before += report.sync(done_before)
    return dict(run.run.counts)


def _known_large(connection: SellerConnection, marketplace_id: str) -> bool:
    with tenant_context(require_tenant()):
        held = (
            Listing.objects.filter(connection=connection, marketplace_id=marketplace_id)
            .exclude(status=Listing.Status.REMOVED)
            .values("id")[:SEARCH_RESULT_LIMIT]
            .count()
        )
    return held >= SEARCH_RESULT_LIMIT


def _sync_marketplace_listings(
    connection: SellerConnection,
    marketplace_id: str,
    run: RunRecorder,
    page_size: int,
    policy: RetryPolicy | None,
    after_page: PageHook | None,
    pages: int,
    done_before: int,
) -> tuple[int, int, bool]:
    """One searchListingsItems pass (or its rest). Returns (pages so far, items, limit reached?)."""
    client = sp_api_client(ListingsItems, connection, marketplace_id, policy=policy)
    state = _load_pass(connection, marketplace_id)
    if state.next_token:
        run.count("resumed_passes")
    while True:
        ensure_still_active(connection)
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
                limit_reached = total >= SEARCH_RESULT_LIMIT
                if limit_reached:
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
            return pages, done, limit_reached


# --- listings from the merchant listings report ----------------------------------------------------------


def report_listing_fields(row: dict[str | None, Any], marketplace_id: str) -> dict[str, Any] | None:
    """Our columns from one row of the "All Listings Report" (GET_MERCHANT_LISTINGS_ALL_DATA), or None
    for a row we cannot read (cut short, extra fields, no SKU, a price or quantity that is no number).
    FBA rows leave quantity empty (Amazon counts that stock elsewhere): the column is left out, so the
    stored value stays."""
    if row.get(None) or any(row.get(name) is None for name in ("seller-sku", "price", "quantity")):
        return None
    sku = str(row["seller-sku"]).strip()
    if not sku:
        return None
    raw_price = str(row["price"]).strip()
    price = _money(raw_price)
    if raw_price and (price is None or price < 0):
        return None
    channel_code = str(row.get("fulfillment-channel") or "").strip().upper()
    afn = bool(channel_code) and channel_code != "DEFAULT"
    fields: dict[str, Any] = {
        "sku": sku,
        "asin": str(row.get("asin1") or "").strip()[:20],
        "title": str(row.get("item-name") or "").strip()[:500],
        "price": price,
        "currency": MARKETPLACE_CURRENCY.get(marketplace_id, "") if price is not None else "",
        "fulfillment_channel": Listing.FulfillmentChannel.AFN if afn else Listing.FulfillmentChannel.MFN,
        "condition": REPORT_CONDITIONS.get(str(row.get("item-condition") or "").strip(), ""),
        "status": REPORT_STATUSES.get(str(row.get("status") or "").strip().lower(), Listing.Status.INACTIVE),
    }
    raw_quantity = str(row["quantity"]).strip()
    if raw_quantity:
        try:
            fields["quantity"] = max(int(raw_quantity), 0)
        except ValueError:
            return None
    elif not afn:
        fields["quantity"] = None
    return fields


class _ListingsReport:
    """One marketplace's listings from GET_MERCHANT_LISTINGS_ALL_DATA.

    Its cursor (kind `listings_report:<marketplace>`) holds the report id (`next_token`) from the moment
    Amazon accepts the request, when it was requested (`pass_started_at`) and how many rows are written
    (`position`): a run that ends while Amazon is still working, or dies half-way through the rows, is
    taken up by the next run with the same report."""

    def __init__(
        self,
        connection: SellerConnection,
        marketplace_id: str,
        run: RunRecorder,
        policy: RetryPolicy | None,
        batch_size: int,
        wait_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.connection = connection
        self.marketplace_id = marketplace_id
        self.run = run
        self.policy = policy
        self.batch_size = max(batch_size, 1)
        self.wait_seconds = wait_seconds
        self.sleep = sleep
        self.state = _Pass(marketplace_id, f"listings_report:{marketplace_id}", "", 0, None)
        with tenant_context(require_tenant()):
            cursor = SyncCursor.objects.filter(connection=connection, kind=self.state.kind).first()
        if cursor is not None and cursor.next_token:
            self.state.next_token = cursor.next_token
            self.state.position = cursor.position
            self.state.pass_started_at = cursor.pass_started_at

    def pending(self) -> bool:
        return bool(self.state.next_token)

    def _save(self, *, completed_at: Any = None) -> None:
        with tenant_context(require_tenant()):
            _save_cursor(self.connection, self.state, completed_at=completed_at)

    def _show_counts(self) -> None:
        with tenant_context(require_tenant()):
            self.run.run.save(update_fields=["counts", "updated_at"])

    def sync(self, done_before: int) -> int:
        """Request (or keep polling) the report and write it. Returns the rows written, 0 while Amazon is
        still preparing it past `wait_seconds` (`counts["waiting_for_report"]`; the next run goes on)."""
        client = sp_api_client(Reports, self.connection, self.marketplace_id, policy=self.policy)
        self.run.count("report_passes")
        if self.state.next_token:
            self.run.count("resumed_reports")
        else:
            ensure_still_active(self.connection)
            response = client.create_report(
                reportType=LISTINGS_REPORT_TYPE, marketplaceIds=[self.marketplace_id]
            )
            payload = response.payload if isinstance(response.payload, dict) else {}
            self.state.next_token = str(payload.get("reportId") or "")
            if not self.state.next_token:
                raise ReportFailed(f"createReport answered without a reportId: {payload!r}"[:500])
            self.state.position = 0
            self.state.pass_started_at = timezone.now()
            self._save()
        report = self._wait(client)
        if report is None:
            return 0
        document_id = str(report.get("reportDocumentId") or "")
        if not document_id:
            self._abandon()
            raise ReportFailed(f"report {self.state.next_token} is DONE without a document")
        ensure_still_active(self.connection)
        response = client.get_report_document(document_id)
        document = response.payload if isinstance(response.payload, dict) else {}
        ensure_still_active(self.connection)
        text = _download_report(document, self.policy or RetryPolicy.from_settings(), self.sleep)
        return self._write(text, done_before)

    def _wait(self, client: Any) -> dict[str, Any] | None:
        waited = 0.0
        attempt = 0
        while True:
            ensure_still_active(self.connection)
            response = client.get_report(self.state.next_token)
            report = response.payload if isinstance(response.payload, dict) else {}
            status = str(report.get("processingStatus") or "")
            if status == "DONE":
                self.run.run.counts.pop("waiting_for_report", None)
                return report
            if status in ("CANCELLED", "FATAL"):
                report_id = self.state.next_token
                self._abandon()
                raise ReportFailed(f"Amazon ended listings report {report_id} with {status}")
            if "waiting_for_report" not in self.run.run.counts:
                self.run.count("waiting_for_report")
                self._show_counts()
            delay = REPORT_POLL_DELAYS[min(attempt, len(REPORT_POLL_DELAYS) - 1)]
            attempt += 1
            if waited + delay > self.wait_seconds:
                logger.info(
                    "listings report %s still %s; the next run polls it", self.state.next_token, status
                )
                return None
            self.sleep(delay)
            waited += delay

    def _abandon(self) -> None:
        self.state.next_token = ""
        self.state.position = 0
        self._save()

    def _write(self, text: str, done_before: int) -> int:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
        if "seller-sku" not in (reader.fieldnames or []):
            self._abandon()
            raise ReportFailed(f"listings report without a seller-sku column: {reader.fieldnames!r}"[:500])
        rows = list(reader)
        total = len(rows)
        skip = min(self.state.position, total)
        if skip:
            self.run.count("resumed_passes")
        # Rows we cannot read keep their SKU out of removal; one without a readable SKU stops removals.
        unreadable_skus: set[str] = set()
        unreadable_unknown = False
        batch: dict[str, dict[str, Any]] = {}
        failed = 0
        index = skip
        for number, row in enumerate(rows):
            fields = report_listing_fields(row, self.marketplace_id)
            if fields is None:
                sku = str(row.get("seller-sku") or "").strip()
                if sku:
                    unreadable_skus.add(sku)
                else:
                    unreadable_unknown = True
            if number < skip:
                continue
            if fields is None:
                failed += 1
                logger.warning("listings report %s: unreadable row %d", self.state.next_token, number + 2)
            else:
                batch[fields.pop("sku")] = fields
            index = number + 1
            if len(batch) >= self.batch_size or index == total:
                self._commit(batch, index, failed, total, done_before, final=False)
                batch, failed = {}, 0
        self._commit(
            batch,
            total,
            failed,
            total,
            done_before,
            final=True,
            keep=unreadable_skus,
            skip_removals=unreadable_unknown,
        )
        return total

    def _commit(
        self,
        batch: dict[str, dict[str, Any]],
        position: int,
        failed: int,
        total: int,
        done_before: int,
        *,
        final: bool,
        keep: set[str] | None = None,
        skip_removals: bool = False,
    ) -> None:
        now = timezone.now()
        counts: dict[str, int] = {"failed": failed} if failed else {}
        with tenant_context(require_tenant()):
            if batch:
                counts.update(_upsert_listings(self.connection, self.marketplace_id, batch, now))
            self.state.position = position
            if final:
                if skip_removals:
                    counts["removals_skipped"] = 1
                else:
                    counts["removed"] = (
                        Listing.objects.filter(
                            connection=self.connection,
                            marketplace_id=self.marketplace_id,
                            last_synced_at__lt=self.state.pass_started_at,
                        )
                        .exclude(sku__in=sorted(keep or ()))
                        .filter(~Q(status=Listing.Status.REMOVED))
                        .update(status=Listing.Status.REMOVED, updated_at=now)
                    )
                self.state.next_token = ""
                self.state.position = 0
                _save_cursor(self.connection, self.state, completed_at=now)
            else:
                _save_cursor(self.connection, self.state)
        for name, amount in counts.items():
            self.run.count(name, amount)
        self.run.progress(done_before + position, done_before + total)


def _download_report(document: dict[str, Any], policy: RetryPolicy, sleep: Callable[[float], None]) -> str:
    """The report document's text: fetched from its (presigned) URL, gunzipped when
    `compressionAlgorithm` says GZIP, decoded with the charset Amazon names (UTF-8, else Windows-1252)."""
    url = str(document.get("url") or "")
    if not url:
        raise ReportFailed("getReportDocument answered without a url")
    attempt = 0
    while True:
        attempt += 1
        try:
            response = httpx.get(url, timeout=120, follow_redirects=True)
            if response.status_code < 500:
                response.raise_for_status()
                break
            problem = f"HTTP {response.status_code}"
        except httpx.TransportError as error:
            problem = type(error).__name__
        except httpx.HTTPStatusError as error:
            raise ReportFailed(f"report document download: HTTP {error.response.status_code}") from None
        if attempt >= policy.max_attempts:
            raise AmazonUnavailable(
                f"report document download: {problem}", operation="getReportDocument", status=0
            )
        sleep(policy.backoff(attempt))
    content = response.content
    if str(document.get("compressionAlgorithm") or "").upper() == "GZIP":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise ReportFailed(f"report document is not valid gzip: {error}") from None
    charset = response.charset_encoding
    if charset:
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            return content.decode(charset)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


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
    transaction. A SKU Amazon answers with an error is counted as failed, the others are kept.
    A refresh of chosen `skus` (repricing's poll, "reprice now") takes no lock: it runs beside a full
    pass, the shared token bucket keeping both inside Amazon's quota."""
    lock: contextlib.AbstractContextManager[None] = (
        _single_run(connection, "offers") if skus is None else contextlib.nullcontext()
    )
    with lock, connection_run("amazon.sync_offers", connection, triggered_by=triggered_by) as run:
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
                ensure_still_active(connection)
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
