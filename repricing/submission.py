"""Sending prices to Amazon, at most once per decision, and following each one to its outcome.

The pipeline (`repricing/pipeline.py`) writes a `PriceSubmission` (status queued) for every decision to
send and enqueues `repricing.send_submissions`. From there:

1. **Send** (`send_submissions`). Queued rows are grouped per (seller connection, marketplace). A few
   (at most `REPRICING_PATCH_MAX`) go as single patchListingsItem calls, more as one JSON_LISTINGS_FEED
   (createFeedDocument, upload, createFeed; one PATCH message per SKU). Each group's listings are read
   from Amazon first (searchListingsItems by SKU, 20 a call; getListingsItem for one): the product type
   the patch must name, the current `purchasable_offer` (its minimum/maximum allowed prices are carried
   into the patch, which replaces the attribute) and the issues the listing already has (the baseline
   that tells a later rejection apart from an old problem; kept in Redis for the follow-up).
2. **Follow up** (`follow_up_submissions`: periodic, and shortly after each send). Feeds: getFeed until
   DONE, then the processing report decides each message (an ERROR issue → rejected, else accepted).
   Accepted prices: the listing is read back until Amazon shows our price (applied), a new price error
   appears on it (rejected, Amazon's issues kept verbatim), a newer price for the listing was sent
   (superseded) or `REPRICING_FOLLOW_UP_MAX_HOURS` pass (failed). Times: `sent_at`, `accepted_at`,
   `finished_at`.

At most once, and never silently lost
-------------------------------------
- A row is claimed in its own committed transaction *before* its request leaves: `SELECT ... FOR UPDATE
  SKIP LOCKED` on queued rows, then `sending`, attempts + 1, `sent_at`. Two workers never claim the same
  row, and a retried or duplicated task finds it no longer queued. A feed holds its rows' locks while its
  document is uploaded, so the document carries exactly the rows it then marks `sending`.
- The kill switch and the company's dry run are read in that same transaction, with the settings row
  locked `FOR NO KEY UPDATE` (the kill switch service's `SELECT ... FOR UPDATE` waits for it, and it for
  the switch): once the switch is on nothing more is claimed, and queued rows are cancelled. A feed
  checks again between its claim and createFeed.
- A 429 that the client's limiter and retries could not absorb never reached Amazon: the row goes back
  to queued (not failed) and the task schedules another send. So does a token that could not be had.
- A `sending` row without Amazon's reference has an **unknown outcome**: its worker died, or Amazon
  answered 5xx / timed out after the request may have arrived. It is never sent again automatically.
  Once older than `REPRICING_SENDING_STALE_SECONDS` (longer than any live send takes) the follow-up
  watches the listing like an accepted price: our price live → applied; a new price error → rejected;
  still neither after `REPRICING_UNKNOWN_WATCH_SECONDS` → failed, saying so. We chose this over
  resending because Amazon's Listings API has no idempotency key and an accepted patch takes minutes to
  show, so no read can prove that a patch did not arrive; a price that old is stale anyway, and the
  listing's next decision sends a fresh one.
- A row queued longer than `REPRICING_QUEUED_MAX_AGE_SECONDS` (a long 429 storm) fails as too old
  rather than sending a stale price; an older queued row of a listing with a newer submission is
  superseded.

`amazon.models.Listing.price` is not written here: it is Amazon's copy, owned by the listings sync, which
reads the same offer the follow-up sees. When Amazon accepts a price, `SkuPricing.last_changed_at` is
set (the engine's guards count changes from it).

Call `send_submissions` / `follow_up_submissions` inside the tenant's context but outside a transaction
(the non-atomic tasks in `repricing/tasks_submission.py` do): they commit step by step.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from sp_api.api import Feeds, ListingsItems

from amazon import tokens
from amazon.clients import (
    AmazonApiError,
    AmazonAuthError,
    AmazonRequestError,
    AmazonThrottled,
    AmazonUnavailable,
    SpApiClient,
    sp_api_client,
)
from amazon.models import SellerConnection
from amazon.sync import listing_fields
from config.redis import redis_client
from repricing.models import PriceSubmission, RepricingSettings, SkuPricing
from tenants.context import require_tenant, tenant_context
from tenants.jobs import RunRecorder, job_run

logger = logging.getLogger(__name__)

Status = PriceSubmission.Status
Channel = PriceSubmission.Channel

#: searchListingsItems takes at most 20 identifiers.
READ_BATCH = 20
READ_INCLUDED_DATA = "summaries,attributes,offers,issues"
FEED_TYPE = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
FEED_UPLOAD_ATTEMPTS = 3
#: Keys of the current purchasable_offer kept when ours replaces it (the seller's own price guards).
KEPT_OFFER_KEYS = ("audience", "minimum_seller_allowed_price", "maximum_seller_allowed_price")
PRICE_ATTRIBUTES = frozenset({"purchasable_offer"})
PRICE_ISSUE_CATEGORIES = frozenset({"INVALID_PRICE", "MISSING_PRICE"})
#: How long the issues a listing had before we sent are kept (longer than any follow-up).
BASELINE_EXTRA_SECONDS = 24 * 3600

DRY_RUN_REASON = "Dry run is on for the company: nothing is sent to Amazon."
NOT_ON_AMAZON = "Amazon does not list this SKU in this marketplace (any more): nothing was sent."
NO_PRODUCT_TYPE = "Amazon did not give this listing's product type, which a price change must name."
CONNECTION_INACTIVE = "The Amazon connection is not active; re-authorise it to send prices."
SUPERSEDED_QUEUED = "A newer price for this listing replaced it before it was sent."
SUPERSEDED_SENT = "A newer price for this listing was sent before this one showed on Amazon."
THROTTLED = "Amazon's request quota was used up; it stays queued and is sent again shortly."
UNKNOWN_WATCHING = (
    "Outcome unknown: the send was interrupted after it may have reached Amazon. It is not sent again "
    "(at most once); the listing is watched for the price."
)
UNKNOWN_APPLIED = "The send was interrupted, but Amazon shows the price live."


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def patch_max() -> int:
    """At most this many changes of one connection and marketplace go as single patches; more, one feed."""
    return int(_setting("REPRICING_PATCH_MAX", 20))


def _feed_max_messages() -> int:
    return int(_setting("REPRICING_FEED_MAX_MESSAGES", 5000))


def _send_batch() -> int:
    return int(_setting("REPRICING_SEND_BATCH", 10000))


def _stale_after() -> timedelta:
    return timedelta(seconds=_setting("REPRICING_SENDING_STALE_SECONDS", 600))


def _unknown_watch() -> timedelta:
    return timedelta(seconds=_setting("REPRICING_UNKNOWN_WATCH_SECONDS", 3600))


def _follow_up_max() -> timedelta:
    return timedelta(hours=_setting("REPRICING_FOLLOW_UP_MAX_HOURS", 24))


def _queued_max_age() -> timedelta:
    return timedelta(seconds=_setting("REPRICING_QUEUED_MAX_AGE_SECONDS", 3600))


# --- what Amazon is sent ----------------------------------------------------------------------------------


def price_patch(
    *, marketplace_id: str, currency: str, price: Decimal, current_offer: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON Patch operation that sets our price: `replace /attributes/purchasable_offer` with
    `our_price[0].schedule[0].value_with_tax` (Amazon's documented shape). A replace drops what it does
    not carry, so the seller's minimum/maximum allowed prices and audience of `current_offer` (the entry
    Amazon shows now) are carried over."""
    entry: dict[str, Any] = {
        key: current_offer[key] for key in KEPT_OFFER_KEYS if current_offer and key in current_offer
    }
    entry.update(
        {
            "marketplace_id": marketplace_id,
            "currency": currency,
            # A JSON number: two decimals survive float's shortest repr exactly.
            "our_price": [{"schedule": [{"value_with_tax": float(price)}]}],
        }
    )
    return {"op": "replace", "path": "/attributes/purchasable_offer", "value": [entry]}


def listings_feed_document(seller_id: str, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A JSON_LISTINGS_FEED document (listings-feed-schema-v2) of PATCH messages."""
    return {
        "header": {"sellerId": seller_id, "version": "2.0", "issueLocale": "en_US"},
        "messages": list(messages),
    }


def feed_message(message_id: int, sku: str, product_type: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "sku": sku,
        "operationType": "PATCH",
        "productType": product_type,
        "patches": [dict(patch)],
    }


# --- what Amazon shows --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmazonListing:
    """One listing as Amazon shows it now (the parts sending and following up need)."""

    sku: str
    product_type: str
    price: Decimal | None
    offer: dict[str, Any]
    issues: list[dict[str, Any]]


def _in_marketplace(entries: Any, marketplace_id: str, key: str) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get(key) in (None, marketplace_id)]


def amazon_listing(item: Mapping[str, Any], marketplace_id: str) -> AmazonListing:
    """Read a getListingsItem / searchListingsItems item (summaries, attributes, offers, issues)."""
    summary = next(iter(_in_marketplace(item.get("summaries"), marketplace_id, "marketplaceId")), {})
    product_type = str(summary.get("productType") or "")
    if not product_type:
        entry = next(iter(_in_marketplace(item.get("productTypes"), marketplace_id, "marketplaceId")), {})
        product_type = str(entry.get("productType") or "")
    attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
    assert isinstance(attributes, dict)
    offer = next(
        iter(_in_marketplace(attributes.get("purchasable_offer"), marketplace_id, "marketplace_id")), {}
    )
    issues = [
        issue
        for issue in item.get("issues") or []
        if isinstance(issue, dict) and marketplace_id in (issue.get("marketplaceIds") or [marketplace_id])
    ]
    return AmazonListing(
        sku=str(item.get("sku") or ""),
        product_type=product_type,
        price=listing_fields(dict(item), marketplace_id)["price"],
        offer=offer,
        issues=issues,
    )


def read_listings(
    client: SpApiClient, seller_id: str, marketplace_id: str, skus: Iterable[str]
) -> dict[str, AmazonListing]:
    """SKU -> the listing as Amazon shows it; SKUs Amazon does not know are absent. 20 SKUs per
    searchListingsItems call; a lone SKU, or one with a comma (the identifiers list is comma-separated),
    through getListingsItem."""
    wanted = list(dict.fromkeys(skus))
    single = wanted if len(wanted) == 1 else [sku for sku in wanted if "," in sku]
    batched = [sku for sku in wanted if sku not in single]
    found: dict[str, AmazonListing] = {}
    for start in range(0, len(batched), READ_BATCH):
        chunk = batched[start : start + READ_BATCH]
        response = client.search_listings_items(
            sellerId=seller_id,
            marketplaceIds=marketplace_id,
            identifiers=",".join(chunk),
            identifiersType="SKU",
            includedData=READ_INCLUDED_DATA,
            pageSize=READ_BATCH,
        )
        payload = response.payload if isinstance(response.payload, dict) else {}
        for item in payload.get("items") or []:
            if isinstance(item, dict) and item.get("sku") in chunk:
                found[str(item["sku"])] = amazon_listing(item, marketplace_id)
    for sku in single:
        try:
            response = client.get_listings_item(
                seller_id, sku, marketplaceIds=marketplace_id, includedData=READ_INCLUDED_DATA
            )
        except AmazonRequestError as error:
            if error.status == 404:
                continue
            raise
        if isinstance(response.payload, dict):
            found[sku] = amazon_listing({"sku": sku, **response.payload}, marketplace_id)
    return found


def is_price_error(issue: Mapping[str, Any]) -> bool:
    """An ERROR issue about the listing's price (a rejected price change shows up as one)."""
    if issue.get("severity") != "ERROR":
        return False
    names = list(issue.get("attributeNames") or [])
    if issue.get("attributeName"):
        names.append(issue["attributeName"])
    if any(str(name).split(".", 1)[0] in PRICE_ATTRIBUTES for name in names):
        return True
    return bool(PRICE_ISSUE_CATEGORIES & set(issue.get("categories") or []))


def _fingerprint(issue: Mapping[str, Any]) -> str:
    return f"{issue.get('code', '')}|{issue.get('message', '')}"


def _baseline_key(row: PriceSubmission) -> str:
    return f"repricing:submission:baseline:{row.tenant_id}:{row.public_id}"


def _remember_baseline(row: PriceSubmission, listing: AmazonListing) -> None:
    ttl = int(_follow_up_max().total_seconds() + _unknown_watch().total_seconds()) + BASELINE_EXTRA_SECONDS
    fingerprints = sorted({_fingerprint(i) for i in listing.issues})
    redis_client().set(_baseline_key(row), json.dumps(fingerprints), ex=ttl)


def _new_price_errors(row: PriceSubmission, listing: AmazonListing) -> list[dict[str, Any]]:
    """Price errors the listing did not have before we sent. Without the baseline (Redis lost it) none
    count: an old error must not be pinned on this price; it then ends by time-out instead."""
    raw = redis_client().get(_baseline_key(row))
    if raw is None:
        return []
    baseline = set(json.loads(raw))
    return [i for i in listing.issues if is_price_error(i) and _fingerprint(i) not in baseline]


# --- state changes (each its own transaction, conditional on the status it expects) ----------------------


def _now() -> datetime:
    return timezone.now()


def _settle(pks: Iterable[int], expected: Sequence[str], **changes: Any) -> int:
    """Move rows still in one of the `expected` statuses. Returns how many moved."""
    ids = list(pks)
    if not ids:
        return 0
    with tenant_context(require_tenant()):
        return PriceSubmission.objects.filter(pk__in=ids, status__in=list(expected)).update(
            updated_at=_now(), **changes
        )


def _finish(pks: Iterable[int], expected: Sequence[str], status: str, error: str = "", **changes: Any) -> int:
    return _settle(pks, expected, status=status, error=error[:500], finished_at=_now(), **changes)


def _accept(
    pk: int, expected: str, *, reference: str | None, issues: list[dict[str, Any]], at: datetime
) -> int:
    """Accepted by Amazon: the row, and the SKU's last change for the engine's guards, together."""
    with tenant_context(require_tenant()):
        changes: dict[str, Any] = {
            "status": Status.ACCEPTED,
            "accepted_at": at,
            "issues": issues,
            "error": "",
        }
        if reference is not None:
            changes["amazon_reference"] = reference[:100]
        moved = PriceSubmission.objects.filter(pk=pk, status=expected).update(updated_at=_now(), **changes)
        if moved:
            _mark_changed(PriceSubmission.objects.get(pk=pk).listing_id, at)
        return moved


def _mark_changed(listing_id: int, at: datetime) -> None:
    SkuPricing.objects.filter(listing_id=listing_id).filter(
        Q(last_changed_at__isnull=True) | Q(last_changed_at__lt=at)
    ).update(last_changed_at=at, updated_at=_now())


def _gate_closed() -> str:
    """Why nothing may be sent now ("" when sending is allowed). Inside a transaction: locks the
    company's settings row, so a kill switch being turned on either waits for this claim or is seen by it.
    Without a settings row the company is new, and new companies start in dry run."""
    row = RepricingSettings.objects.select_for_update(no_key=True).first()
    if row is None:
        return DRY_RUN_REASON
    if row.kill_switch:
        reason = f": {row.kill_switch_reason}" if row.kill_switch_reason else "."
        return f"Kill switch on{reason}"[:500]
    return DRY_RUN_REASON if row.dry_run else ""


def submissions_cancel_queued(reason: str) -> int:
    """Cancel every queued submission of the current tenant at once (the kill switch calls this on
    commit; sending also checks the switch before each claim). Returns how many were cancelled.

    Rows a sender holds locked right now are skipped, never waited for (the seller's click must not wait
    on an upload to Amazon): that sender checks the switch again before it sends (a feed's before its
    createFeed) and cancels them itself."""
    with tenant_context(require_tenant()):
        free = PriceSubmission.objects.select_for_update(skip_locked=True).filter(status=Status.QUEUED)
        return PriceSubmission.objects.filter(pk__in=list(free.values_list("pk", flat=True))).update(
            status=Status.CANCELLED,
            error=(reason or "Kill switch on.")[:500],
            finished_at=_now(),
            updated_at=_now(),
        )


@dataclass
class _Claim:
    ids: list[int] = field(default_factory=list)
    closed: str = ""
    cancelled: int = 0


def _cancel_all_queued(reason: str) -> int:
    """Inside the tenant's transaction (the gate was found closed)."""
    return PriceSubmission.objects.filter(status=Status.QUEUED).update(
        status=Status.CANCELLED, error=reason[:500], finished_at=_now(), updated_at=_now()
    )


def _claim_patch(pk: int) -> _Claim:
    """Claim one queued row for a patch, in its own committed transaction."""
    with tenant_context(require_tenant()):
        closed = _gate_closed()
        if closed:
            return _Claim(closed=closed, cancelled=_cancel_all_queued(closed))
        ids = list(
            PriceSubmission.objects.filter(pk=pk, status=Status.QUEUED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        _mark_sending(ids, Channel.LISTINGS_PATCH)
        return _Claim(ids=ids)


def _mark_sending(ids: list[int], channel: str) -> None:
    if ids:
        now = _now()
        PriceSubmission.objects.filter(pk__in=ids).update(
            status=Status.SENDING,
            channel=channel,
            attempts=F("attempts") + 1,
            sent_at=now,
            error="",
            updated_at=now,
        )


def _release(pks: Iterable[int], error: str) -> int:
    """Back to queued: the request surely did not reach Amazon (429, no token)."""
    return _settle(pks, [Status.SENDING], status=Status.QUEUED, sent_at=None, error=error[:500])


def _unknown(pks: Iterable[int], error: str) -> int:
    return _settle(pks, [Status.SENDING], error=f"{UNKNOWN_WATCHING} ({error})"[:500])


def _error_issue(error: AmazonApiError) -> dict[str, Any]:
    return {"code": error.code or str(error.status), "message": str(error)[:500], "severity": "ERROR"}


# --- sending --------------------------------------------------------------------------------------------


class _SendStopped(Exception):
    """The kill switch or dry run closed the gate while a batch was being sent."""


#: Failures before anything could reach Amazon that pass by themselves: the rows wait in the queue.
TRANSIENT = (AmazonThrottled, AmazonUnavailable, tokens.TokenRefreshTimeout, tokens.LwaError)
#: Failures that need the seller (re-authorise): the rows fail, saying so.
NEEDS_SELLER = (AmazonAuthError, tokens.ReauthorizationRequired, tokens.ConnectionUnavailable)


def send_submissions(*, triggered_by: str = "schedule") -> dict[str, int]:
    """Send the current tenant's queued submissions. Returns counts: sent, accepted, rejected, failed,
    unknown, cancelled, superseded, expired, deferred (left queued for a later send: 429s, no token,
    Amazon unavailable before anything was sent) and taken (claimed by another worker first)."""
    tenant = require_tenant()
    counts: Counter[str] = Counter()
    now = _now()
    with tenant_context(tenant):
        closed = _gate_closed()
        if closed:
            cancelled = _cancel_all_queued(closed)
            return {"cancelled": cancelled} if cancelled else {}
        counts.update(_supersede_and_expire(now))
        rows = list(
            PriceSubmission.objects.filter(status=Status.QUEUED)
            .select_related("listing__connection")
            .order_by("queued_at", "pk")[: _send_batch()]
        )
    if not rows:
        return {k: v for k, v in counts.items() if v}
    groups: dict[tuple[int, str], list[PriceSubmission]] = defaultdict(list)
    for row in rows:
        groups[(row.listing.connection_id, row.listing.marketplace_id)].append(row)
    with job_run("repricing.send_submissions", triggered_by=triggered_by) as run:
        run.progress(0, len(rows))
        done = 0
        try:
            for group in groups.values():
                _send_group(group[0].listing.connection, group[0].listing.marketplace_id, group, counts)
                done += len(group)
                run.progress(done)
        except _SendStopped:
            counts["stopped"] += 1
        for name, amount in counts.items():
            if amount:
                run.count(name, amount)
    return {k: v for k, v in counts.items() if v}


def _supersede_and_expire(now: datetime) -> Counter[str]:
    """Inside the tenant's transaction: older queued rows of a listing with a newer submission are
    superseded; rows queued too long fail instead of sending an old price. Rows another sender holds
    are skipped (they are being sent)."""
    counts: Counter[str] = Counter()
    newer = PriceSubmission.objects.filter(listing_id=OuterRef("listing_id")).filter(
        Q(queued_at__gt=OuterRef("queued_at")) | Q(queued_at=OuterRef("queued_at"), pk__gt=OuterRef("pk"))
    )
    older = list(
        PriceSubmission.objects.filter(status=Status.QUEUED)
        .filter(Exists(newer))
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    if older:
        counts["superseded"] += PriceSubmission.objects.filter(pk__in=older).update(
            status=Status.SUPERSEDED, error=SUPERSEDED_QUEUED, finished_at=now, updated_at=now
        )
    max_age = _queued_max_age()
    old = list(
        PriceSubmission.objects.filter(status=Status.QUEUED, queued_at__lt=now - max_age)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    if old:
        minutes = int(max_age.total_seconds() // 60)
        counts["expired"] += PriceSubmission.objects.filter(pk__in=old).update(
            status=Status.FAILED,
            error=f"Not sent: it waited more than {minutes} minutes (Amazon's quota); a price that old is "
            "not sent, the next decision sends a fresh one.",
            finished_at=now,
            updated_at=now,
        )
    return counts


def _send_group(
    connection: SellerConnection, marketplace_id: str, rows: list[PriceSubmission], counts: Counter[str]
) -> None:
    ids = [row.pk for row in rows]
    if not connection.is_usable:
        counts["failed"] += _finish(ids, [Status.QUEUED], Status.FAILED, CONNECTION_INACTIVE)
        return
    try:
        client = sp_api_client(ListingsItems, connection, marketplace_id)
    except ValueError as error:  # a marketplace outside the connection's region
        counts["failed"] += _finish(ids, [Status.QUEUED], Status.FAILED, str(error))
        return
    try:
        seen = read_listings(
            client, connection.selling_partner_id, marketplace_id, [r.listing.sku for r in rows]
        )
    except TRANSIENT as error:
        logger.info("send of %d price(s) deferred: %s", len(rows), error)
        counts["deferred"] += len(rows)
        return
    except NEEDS_SELLER as error:
        counts["failed"] += _finish(
            ids, [Status.QUEUED], Status.FAILED, f"Amazon refused our access: {error}"
        )
        return
    ready: list[tuple[PriceSubmission, AmazonListing]] = []
    for row in rows:
        listing = seen.get(row.listing.sku)
        if listing is None or not listing.product_type:
            why = NOT_ON_AMAZON if listing is None else NO_PRODUCT_TYPE
            counts["failed"] += _finish([row.pk], [Status.QUEUED], Status.FAILED, why)
            continue
        if row.price <= 0:
            counts["failed"] += _finish([row.pk], [Status.QUEUED], Status.FAILED, "Not a valid price.")
            continue
        ready.append((row, listing))
    if len(ready) <= patch_max():
        _send_patches(client, connection, marketplace_id, ready, counts)
        return
    feeds = sp_api_client(Feeds, connection, marketplace_id)
    size = _feed_max_messages()
    for start in range(0, len(ready), size):
        _send_feed(feeds, connection, marketplace_id, ready[start : start + size], counts)


def _send_patches(
    client: SpApiClient,
    connection: SellerConnection,
    marketplace_id: str,
    ready: list[tuple[PriceSubmission, AmazonListing]],
    counts: Counter[str],
) -> None:
    for index, (row, listing) in enumerate(ready):
        body: dict[str, Any] = {
            "productType": listing.product_type,
            "patches": [
                price_patch(
                    marketplace_id=marketplace_id,
                    currency=row.currency,
                    price=row.price,
                    current_offer=listing.offer,
                )
            ],
        }
        claim = _claim_patch(row.pk)
        if claim.closed:
            counts["cancelled"] += claim.cancelled
            raise _SendStopped(claim.closed)
        if not claim.ids:
            counts["taken"] += 1
            continue
        _remember_baseline(row, listing)
        try:
            response = client.patch_listings_item(
                connection.selling_partner_id, row.listing.sku, marketplaceIds=marketplace_id, body=body
            )
        except (AmazonThrottled, tokens.TokenRefreshTimeout, tokens.LwaError) as error:
            # Never reached Amazon (clients.py retries a write only on 429 or a refused connection).
            _release(
                [row.pk], THROTTLED if isinstance(error, AmazonThrottled) else f"No access token: {error}"
            )
            counts["deferred"] += len(ready) - index
            return
        except NEEDS_SELLER as error:
            counts["failed"] += _finish(
                [row.pk], [Status.SENDING], Status.FAILED, f"Amazon refused our access: {error}"
            )
            continue
        except AmazonRequestError as error:
            counts["rejected"] += _finish(
                [row.pk], [Status.SENDING], Status.REJECTED, str(error), issues=[_error_issue(error)]
            )
            continue
        except Exception as error:
            # AmazonUnavailable on a write (5xx, timeout) or anything unexpected: it may have arrived.
            counts["unknown"] += _unknown([row.pk], f"{type(error).__name__}: {error}")
            if isinstance(error, AmazonUnavailable):
                continue
            raise
        counts["sent"] += 1
        _record_patch_answer(row, response.payload if isinstance(response.payload, dict) else {}, counts)


def _record_patch_answer(row: PriceSubmission, payload: Mapping[str, Any], counts: Counter[str]) -> None:
    status = str(payload.get("status") or "")
    reference = str(payload.get("submissionId") or "")
    issues = [i for i in payload.get("issues") or [] if isinstance(i, dict)]
    if status == "ACCEPTED":
        counts["accepted"] += _accept(row.pk, Status.SENDING, reference=reference, issues=issues, at=_now())
    elif status == "INVALID":
        counts["rejected"] += _finish(
            [row.pk],
            [Status.SENDING],
            Status.REJECTED,
            "Amazon refused the price change.",
            issues=issues,
            amazon_reference=reference[:100],
        )
    else:
        counts["unknown"] += _unknown([row.pk], f"Amazon answered status {status!r}")


def _upload_feed_document(feeds: SpApiClient, content: bytes) -> str:
    """createFeedDocument, then the PUT to its presigned URL (retried: a PUT of the same bytes to the
    same document is harmless). Nothing reaches the listings until createFeed."""
    response = feeds.create_feed_document(None, FEED_CONTENT_TYPE)
    payload = response.payload if isinstance(response.payload, dict) else {}
    document_id, url = str(payload.get("feedDocumentId") or ""), str(payload.get("url") or "")
    if not document_id or not url:
        raise AmazonUnavailable(
            "createFeedDocument answered without an id or url", operation="createFeedDocument"
        )
    problem = ""
    for _attempt in range(FEED_UPLOAD_ATTEMPTS):
        try:
            answer = httpx.put(url, content=content, headers={"Content-Type": FEED_CONTENT_TYPE}, timeout=60)
        except httpx.TransportError as error:
            problem = type(error).__name__
            continue
        if answer.status_code < 300:
            return document_id
        problem = f"HTTP {answer.status_code}"
        if answer.status_code < 500:
            break
    raise AmazonUnavailable(f"feed document upload: {problem}", operation="uploadFeedDocument")


def _send_feed(
    feeds: SpApiClient,
    connection: SellerConnection,
    marketplace_id: str,
    ready: list[tuple[PriceSubmission, AmazonListing]],
    counts: Counter[str],
) -> None:
    tenant = require_tenant()
    closed = ""
    try:
        # The rows stay locked (SKIP LOCKED for other senders) while their document is built and
        # uploaded, so it carries exactly the rows this transaction then marks `sending`.
        with tenant_context(tenant):
            locked = set(
                PriceSubmission.objects.filter(pk__in=[r.pk for r, _ in ready], status=Status.QUEUED)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
            batch = sorted(((r, li) for r, li in ready if r.pk in locked), key=lambda pair: pair[0].pk)
            counts["taken"] += len(ready) - len(batch)
            if not batch:
                return
            messages = [
                feed_message(
                    number,
                    row.listing.sku,
                    listing.product_type,
                    price_patch(
                        marketplace_id=marketplace_id,
                        currency=row.currency,
                        price=row.price,
                        current_offer=listing.offer,
                    ),
                )
                for number, (row, listing) in enumerate(batch, start=1)
            ]
            document = listings_feed_document(connection.selling_partner_id, messages)
            document_id = _upload_feed_document(feeds, json.dumps(document).encode())
            closed = _gate_closed()
            if closed:
                counts["cancelled"] += _cancel_all_queued(closed)
            else:
                _mark_sending([row.pk for row, _ in batch], Channel.LISTINGS_FEED)
    except TRANSIENT as error:
        logger.info("feed of %d price(s) deferred: %s", len(ready), error)
        counts["deferred"] += len(ready)
        return
    except NEEDS_SELLER as error:
        ids = [r.pk for r, _ in ready]
        counts["failed"] += _finish(
            ids, [Status.QUEUED], Status.FAILED, f"Amazon refused our access: {error}"
        )
        return
    if closed:
        raise _SendStopped(closed)  # after the transaction: its cancellations are committed
    ids = [row.pk for row, _ in batch]
    for row, listing in batch:
        _remember_baseline(row, listing)
    # Last look before the feed is created: a switch turned on since the claim still stops it.
    with tenant_context(tenant):
        closed = _gate_closed()
    if closed:
        counts["cancelled"] += _finish(ids, [Status.SENDING], Status.CANCELLED, closed)
        raise _SendStopped(closed)
    try:
        response = feeds.create_feed(FEED_TYPE, document_id, marketplaceIds=[marketplace_id])
    except (AmazonThrottled, tokens.TokenRefreshTimeout, tokens.LwaError) as error:
        _release(ids, THROTTLED if isinstance(error, AmazonThrottled) else f"No access token: {error}")
        counts["deferred"] += len(ids)
        return
    except NEEDS_SELLER as error:
        counts["failed"] += _finish(
            ids, [Status.SENDING], Status.FAILED, f"Amazon refused our access: {error}"
        )
        return
    except AmazonRequestError as error:
        counts["rejected"] += _finish(
            ids, [Status.SENDING], Status.REJECTED, str(error), issues=[_error_issue(error)]
        )
        return
    except Exception as error:
        counts["unknown"] += _unknown(ids, f"{type(error).__name__}: {error}")
        if isinstance(error, AmazonUnavailable):
            return
        raise
    payload = response.payload if isinstance(response.payload, dict) else {}
    feed_id = str(payload.get("feedId") or "")
    if not feed_id:
        counts["unknown"] += _unknown(ids, "createFeed answered without a feedId")
        return
    _settle(ids, [Status.SENDING], amazon_reference=feed_id[:100])
    counts["sent"] += len(ids)


# --- following up ----------------------------------------------------------------------------------------


def follow_up_submissions(*, triggered_by: str = "schedule", now: datetime | None = None) -> dict[str, int]:
    """Follow the current tenant's sent prices to their outcome (see the module's docstring). `now`
    (default: the clock) decides what is stale or timed out. Returns counts: applied, accepted
    (feed messages), rejected, superseded, failed, waiting, deferred (Amazon unavailable or throttled:
    next run)."""
    tenant = require_tenant()
    now = now or _now()
    counts: Counter[str] = Counter()
    with tenant_context(tenant):
        in_feeds = list(
            PriceSubmission.objects.filter(channel=Channel.LISTINGS_FEED, status=Status.SENDING)
            .exclude(amazon_reference="")
            .select_related("listing__connection")
            .order_by("pk")
        )
        watching = _watched().filter(_watch_condition(now)).exists()
    if not in_feeds and not watching:
        return {}
    with job_run("repricing.follow_up_submissions", triggered_by=triggered_by) as run:
        feeds: dict[tuple[int, str, str], list[PriceSubmission]] = defaultdict(list)
        for row in in_feeds:
            feeds[(row.listing.connection_id, row.listing.marketplace_id, row.amazon_reference)].append(row)
        for (_c, marketplace_id, feed_id), rows in feeds.items():
            _guarded(
                counts,
                rows,
                now,
                _follow_feed,
                marketplace_id,
                feed_id,
                rows,
                now,
                counts,
            )
        with tenant_context(tenant):
            rows = list(_watched().filter(_watch_condition(now)).order_by("pk"))
        groups: dict[tuple[int, str], list[PriceSubmission]] = defaultdict(list)
        for row in rows:
            groups[(row.listing.connection_id, row.listing.marketplace_id)].append(row)
        for (_c, marketplace_id), group in groups.items():
            _guarded(
                counts,
                group,
                now,
                _watch_listings,
                marketplace_id,
                group,
                now,
                counts,
            )
        _record_counts(run, counts)
    return {k: v for k, v in counts.items() if v}


def _record_counts(run: RunRecorder, counts: Counter[str]) -> None:
    for name, amount in counts.items():
        if amount:
            run.count(name, amount)


def _guarded(counts: Counter[str], rows: list[PriceSubmission], now: datetime, work: Any, *args: Any) -> None:
    """One group's follow-up (`work(connection, *args)`). Amazon trouble or an inactive connection only
    postpones it, until the rows are past REPRICING_FOLLOW_UP_MAX_HOURS: then they fail, saying why."""
    connection = rows[0].listing.connection
    if not connection.is_usable:
        problem = CONNECTION_INACTIVE
    else:
        try:
            work(connection, *args)
            return
        except (*TRANSIENT, *NEEDS_SELLER, AmazonRequestError) as error:
            problem = str(error)
    logger.info("follow-up of %d price(s) postponed: %s", len(rows), problem)
    limit = _follow_up_max()
    late = [row.pk for row in rows if (row.accepted_at or row.sent_at or now) + limit < now]
    if late:
        hours = int(limit.total_seconds() // 3600)
        counts["failed"] += _finish(
            late,
            [Status.ACCEPTED, Status.SENDING],
            Status.FAILED,
            f"Its outcome could not be read from Amazon for {hours} h: {problem}",
        )
    counts["deferred"] += len(rows) - len(late)


def _watched() -> QuerySet[PriceSubmission]:
    # A newer price Amazon took (or a feed it is processing) replaces this one.
    newer_sent = (
        PriceSubmission.objects.filter(listing_id=OuterRef("listing_id"))
        .filter(
            Q(status__in=[Status.ACCEPTED, Status.APPLIED])
            | Q(status=Status.SENDING, channel=Channel.LISTINGS_FEED, amazon_reference__gt="")
        )
        .filter(
            Q(queued_at__gt=OuterRef("queued_at")) | Q(queued_at=OuterRef("queued_at"), pk__gt=OuterRef("pk"))
        )
    )
    return PriceSubmission.objects.select_related("listing__connection").annotate(
        newer_sent=Exists(newer_sent)
    )


def _watch_condition(now: datetime) -> Q:
    """Accepted prices, and sends of unknown outcome old enough that no worker is still on them."""
    return Q(status=Status.ACCEPTED) | Q(
        status=Status.SENDING, amazon_reference="", sent_at__lt=now - _stale_after()
    )


def _follow_feed(
    connection: SellerConnection,
    marketplace_id: str,
    feed_id: str,
    rows: list[PriceSubmission],
    now: datetime,
    counts: Counter[str],
) -> None:
    feeds = sp_api_client(Feeds, connection, marketplace_id)
    ids = [row.pk for row in rows]
    try:
        answer = feeds.get_feed(feed_id).payload
    except AmazonRequestError as error:
        if error.status != 404:
            raise
        counts["failed"] += _finish(
            ids, [Status.SENDING], Status.FAILED, f"Amazon does not know feed {feed_id}."
        )
        return
    feed = answer if isinstance(answer, dict) else {}
    status = str(feed.get("processingStatus") or "")
    sent_at = min((row.sent_at for row in rows if row.sent_at), default=now)
    if status in ("IN_QUEUE", "IN_PROGRESS", ""):
        if sent_at + _follow_up_max() < now:
            hours = int(_follow_up_max().total_seconds() // 3600)
            counts["failed"] += _finish(
                ids,
                [Status.SENDING],
                Status.FAILED,
                f"Amazon had not processed feed {feed_id} after {hours} h.",
            )
        else:
            counts["waiting"] += len(rows)
        return
    if status == "CANCELLED":
        counts["failed"] += _finish(ids, [Status.SENDING], Status.FAILED, f"Amazon cancelled feed {feed_id}.")
        return
    report = _processing_report(feeds, str(feed.get("resultFeedDocumentId") or ""))
    if status == "FATAL" or report is None:
        if status != "FATAL" and sent_at + _follow_up_max() > now:
            counts["waiting"] += len(rows)  # DONE, but its report is not readable yet: next run
            return
        issues = [
            i for i in (report or {}).get("issues") or [] if isinstance(i, dict) and "messageId" not in i
        ]
        counts["failed"] += _finish(
            ids,
            [Status.SENDING],
            Status.FAILED,
            f"Amazon could not process feed {feed_id} ({status}).",
            issues=issues,
        )
        return
    by_message: dict[int, list[dict[str, Any]]] = defaultdict(list)
    number_of = {row.listing.sku: number for number, row in enumerate(rows, start=1)}
    for issue in report.get("issues") or []:
        if not isinstance(issue, dict):
            continue
        number = issue.get("messageId")
        if not isinstance(number, int):
            number = number_of.get(str(issue.get("sku") or ""))
        if isinstance(number, int):
            by_message[number].append(issue)
    finished_at = now
    for number, row in enumerate(rows, start=1):
        issues = by_message.get(number, [])
        if any(i.get("severity") == "ERROR" for i in issues):
            counts["rejected"] += _finish(
                [row.pk], [Status.SENDING], Status.REJECTED, "Amazon refused the price change.", issues=issues
            )
        else:
            counts["accepted"] += _accept(
                row.pk, Status.SENDING, reference=None, issues=issues, at=finished_at
            )


def _processing_report(feeds: SpApiClient, document_id: str) -> dict[str, Any] | None:
    """The feed's processing report (JSON), or None when there is none or it cannot be read yet."""
    if not document_id:
        return None
    # sp_api downloads (and gunzips) the document itself; the call is getFeedDocument's quota.
    text = feeds.call("getFeedDocument", lambda: feeds.api.get_feed_result_document(document_id))
    try:
        report = json.loads(str(text))
    except ValueError:
        logger.warning("feed processing report %s is not JSON", document_id)
        return None
    return report if isinstance(report, dict) else None


def _watch_listings(
    connection: SellerConnection,
    marketplace_id: str,
    rows: list[PriceSubmission],
    now: datetime,
    counts: Counter[str],
) -> None:
    client = sp_api_client(ListingsItems, connection, marketplace_id)
    seen = read_listings(client, connection.selling_partner_id, marketplace_id, [r.listing.sku for r in rows])
    for row in rows:
        listing = seen.get(row.listing.sku)
        expected = [row.status]
        unknown = row.status == Status.SENDING
        if listing is not None and listing.price is not None and listing.price == row.price:
            error = UNKNOWN_APPLIED if unknown else ""
            moved = _finish([row.pk], expected, Status.APPLIED, error)
            if moved and unknown:
                with tenant_context(require_tenant()):
                    _mark_changed(row.listing_id, now)
            counts["applied"] += moved
            continue
        rejected = _new_price_errors(row, listing) if listing is not None else []
        if rejected:
            counts["rejected"] += _finish(
                [row.pk],
                expected,
                Status.REJECTED,
                "Amazon rejected the price after accepting it.",
                issues=[*row.issues, *rejected],
            )
        elif getattr(row, "newer_sent", False):
            counts["superseded"] += _finish([row.pk], expected, Status.SUPERSEDED, SUPERSEDED_SENT)
        elif listing is None:
            counts["failed"] += _finish(
                [row.pk], expected, Status.FAILED, "The listing is no longer on Amazon."
            )
        elif unknown and row.sent_at is not None and row.sent_at + _unknown_watch() < now:
            minutes = int(_unknown_watch().total_seconds() // 60)
            counts["failed"] += _finish(
                [row.pk],
                expected,
                Status.FAILED,
                f"Outcome unknown: the send was interrupted and the price was not on Amazon "
                f"{minutes} minutes later. It was not sent again (at most once); the next decision "
                "sends a fresh price.",
            )
        elif not unknown and (row.accepted_at or row.sent_at or now) + _follow_up_max() < now:
            hours = int(_follow_up_max().total_seconds() // 3600)
            counts["failed"] += _finish(
                [row.pk],
                expected,
                Status.FAILED,
                f"Amazon accepted the price but it was not live after {hours} h.",
            )
        else:
            if unknown and not row.error.startswith(UNKNOWN_WATCHING[:40]):
                _settle([row.pk], expected, error=UNKNOWN_WATCHING)
            counts["waiting"] += 1
