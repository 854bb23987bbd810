"""What starts a repricing run: a competitor's price change (Amazon's notifications), the scheduled
poll, and the seller's "reprice now". Each calls `repricing.pipeline.reprice_batch` and is recorded as
a `JobRun` with counts (decided, changed, held, paused, submitted, and the skipped by reason).

**Notifications.** The intake (amazon/notifications.py) coalesces notifications per (tenant,
marketplace, ASIN) in Redis and, after commit, calls `notifications_wake`: a short Redis key per tenant
(`SET NX`) lets the first notification of a burst enqueue `repricing.consume_notifications` with a
`WAKE_DELAY_SECONDS` countdown while the rest of the burst rides along. The consumer clears that key
*before* each take (`repricing_pending_take`), so a notification landing while it works wakes a new
task, and it takes again until nothing is pending. The database is the record: the consumer reprices
from the `OfferChangeNotification` rows still unprocessed for the taken (marketplace, ASIN)s, locked
`FOR UPDATE SKIP LOCKED` and marked processed in the same transaction as the decisions, so a
duplicated notification, a repeated take or a concurrent sweep never decides one notification twice.
If that transaction fails, the taken entries are put back (unless a newer one arrived meanwhile) and
the rows stay unprocessed; if the worker is killed, the per-minute sweep
(`repricing.sweep_notifications`) finds the rows left unprocessed for `SWEEP_AFTER` and handles them.
Each (connection, marketplace, ASIN, condition) is decided once per run, from its newest notification
(by Amazon's time of change); a notification for an ASIN the company does not list is marked processed
and decides nothing.

**Polling.** Every `POLL_EVERY`, per active connection, the SKUs that most need a fresh look
(`poll_priority`: a recent competitor change, a lost Buy Box, sales velocity, the oldest observation)
are refreshed through the offers sync (`amazon.sync.sync_offers`, 20 SKUs per getListingOffersBatch) —
as many as `REPRICING_POLL_QUOTA_SHARE` of that operation's published rate allows in the period
(`poll_budget`), leaving the rest for the full offers sync and "reprice now" — and repriced from the
snapshots that refresh took. A SKU the refresh did not reach (Amazon down, throttled past the retry
budget) is left for the next poll, where its old observation raises its priority.

**Reprice now.** `repricing.pipeline.reprice_now` records the run; `reprice_now_run` refreshes the
chosen SKUs' offers and reprices them in chunks, updating the run's progress. A task delivered again
after its worker was lost resumes after the chunks already done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.utils import timezone

from amazon import ratelimit
from amazon.clients import AmazonApiError
from amazon.models import Listing, OfferChangeNotification, SellerConnection
from amazon.notifications import PENDING_KEY, PENDING_TENANTS_KEY, repricing_pending_take
from amazon.sync import OFFERS_BATCH_SIZE, SyncAlreadyRunning, sync_offers
from config.celery import app
from config.redis import redis_client
from repricing.apps import POLL_EVERY
from repricing.models import PriceDecision, SkuPricing
from repricing.pipeline import REPRICE_NOW_KIND, add_counts, reprice_batch, snapshot_facts, units_sold_7d
from repricing.selectors import RuleResolver, repricing_settings
from tenants.context import require_tenant, tenant_context
from tenants.jobs import RunRecorder, job_run
from tenants.models import JobRun, Tenant

logger = logging.getLogger(__name__)

Trigger = PriceDecision.Trigger

# --- notifications ----------------------------------------------------------------------------------------

CONSUME_TASK = "repricing.consume_notifications"
#: Redis: "a consumer is on its way" for a tenant (the debounce of a burst).
WAKE_KEY = "repricing:wake:{}"
#: A burst's first notification wakes the consumer this many seconds later; the rest ride along.
WAKE_DELAY_SECONDS = 2
#: A wake whose task never ran (worker down) stops suppressing new ones after this long.
WAKE_TTL_SECONDS = 60
#: Rows still unprocessed this long after they arrived are the sweep's (their wake-up was lost).
SWEEP_AFTER = timedelta(seconds=60)
#: At most this many notification rows per sweep (the next minute takes the rest).
SWEEP_LIMIT = 5000
#: Takes per consumer task before it leaves the rest to the next wake (a never-ending storm).
CONSUME_ROUNDS = 20


def notifications_wake(tenant_ids: Iterable[int]) -> None:
    """Called by the intake after commit: make sure a consumer runs for each tenant within seconds.
    Never raises (the sweep is the safety net)."""
    try:
        client = redis_client()
        for tenant_id in sorted(set(tenant_ids)):
            key = WAKE_KEY.format(tenant_id)
            if not client.set(key, "1", nx=True, ex=WAKE_TTL_SECONDS):
                continue
            try:
                app.send_task(CONSUME_TASK, kwargs={"tenant_id": tenant_id}, countdown=WAKE_DELAY_SECONDS)
            except Exception:
                client.delete(key)
                logger.warning(
                    "repricing: could not wake the consumer of tenant %s", tenant_id, exc_info=True
                )
    except redis.RedisError:
        logger.warning("repricing: Redis unavailable; notifications wait for the sweep")


def _requeue(tenant_id: int, entries: dict[str, dict[str, Any]]) -> None:
    """Put taken entries back after a failure (a newer entry that arrived meanwhile wins)."""
    try:
        pipe = redis_client().pipeline(transaction=True)
        key = PENDING_KEY.format(tenant_id)
        for field, entry in entries.items():
            pipe.hsetnx(key, field, json.dumps(entry))
        pipe.zadd(PENDING_TENANTS_KEY, {str(tenant_id): int(time.time() * 1000)}, nx=True)
        pipe.execute()
    except redis.RedisError:
        logger.warning("repricing: could not re-queue %d entries; the sweep will find them", len(entries))


def _newest(rows: Sequence[OfferChangeNotification]) -> OfferChangeNotification:
    return max(rows, key=lambda r: (r.time_of_offer_change or r.received_at, r.received_at, r.pk))


def process_notification_rows(ids: Sequence[int], *, now: datetime | None = None) -> dict[str, int]:
    """Reprice from the unprocessed notification rows `ids` and mark them processed, in one transaction.
    Rows another worker holds are skipped (theirs to finish); rows already processed are ignored."""
    tenant = require_tenant()
    now = now or timezone.now()
    with tenant_context(tenant):
        rows = list(
            OfferChangeNotification.objects.filter(pk__in=list(ids), processed_at__isnull=True)
            .select_for_update(skip_locked=True)
            .order_by("pk")
        )
        if not rows:
            return {}
        groups: dict[tuple[int, str, str, str], list[OfferChangeNotification]] = defaultdict(list)
        for row in rows:
            groups[(row.connection_id, row.marketplace_id, row.asin, row.item_condition.lower())].append(row)
        candidates = Listing.objects.filter(
            connection_id__in={key[0] for key in groups},
            marketplace_id__in={key[1] for key in groups},
            asin__in={key[2] for key in groups},
        ).exclude(status=Listing.Status.REMOVED)
        by_asin: dict[tuple[int, str, str], list[Listing]] = defaultdict(list)
        for listing in candidates:
            by_asin[(listing.connection_id, listing.marketplace_id, listing.asin)].append(listing)
        chosen: dict[int, OfferChangeNotification] = {}
        listings: dict[int, Listing] = {}
        unlisted = 0
        for (connection_id, marketplace_id, asin, condition), members in groups.items():
            # The newest ANY_OFFER_CHANGED carries the competitors; a PRICING_HEALTH-only group still
            # triggers a decision (from the newest snapshot).
            offers_rows = [
                r for r in members if r.notification_type == OfferChangeNotification.Kind.ANY_OFFER_CHANGED
            ]
            newest = _newest(offers_rows or members)
            matched = [
                li
                for li in by_asin.get((connection_id, marketplace_id, asin), [])
                if not condition or li.item_condition.lower() == condition
            ]
            if not matched:
                unlisted += 1
            for listing in matched:
                current = chosen.get(listing.pk)
                if current is None or _newest([current, newest]) is newest:
                    chosen[listing.pk] = newest
                    listings[listing.pk] = listing
        result = reprice_batch(
            list(listings.values()), trigger=Trigger.NOTIFICATION, notification_by_listing=chosen, now=now
        )
        OfferChangeNotification.objects.filter(pk__in=[row.pk for row in rows]).update(
            processed_at=now, updated_at=now
        )
    counts = result.counts()
    counts["notifications"] = len(rows)
    counts["unlisted"] = unlisted
    return counts


def _rows_for_entries(entries: dict[str, dict[str, Any]]) -> list[int]:
    keys = set()
    for field, entry in entries.items():
        marketplace_id, _, asin = field.partition(":")
        keys.add((str(entry.get("marketplace_id") or marketplace_id), str(entry.get("asin") or asin)))
    with tenant_context(require_tenant()):
        rows = OfferChangeNotification.objects.filter(
            processed_at__isnull=True,
            marketplace_id__in={m for m, _ in keys},
            asin__in={a for _, a in keys},
        ).values_list("pk", "marketplace_id", "asin")
        return [pk for pk, marketplace_id, asin in rows if (marketplace_id, asin) in keys]


def notifications_consume(*, now: datetime | None = None) -> dict[str, int] | None:
    """The consumer: take the tenant's pending entries and reprice from them, until none are left.
    Returns the run's counts, None when nothing was pending (no run is recorded then)."""
    tenant = require_tenant()
    client = redis_client()
    with contextlib.suppress(redis.RedisError):
        client.delete(WAKE_KEY.format(tenant.pk))
    entries = repricing_pending_take(tenant.pk)
    if not entries:
        return None
    with job_run("repricing.notifications", triggered_by="notification") as run:
        for round_number in range(CONSUME_ROUNDS):
            if round_number:
                client.delete(WAKE_KEY.format(tenant.pk))
                entries = repricing_pending_take(tenant.pk)
                if not entries:
                    break
            try:
                counts = process_notification_rows(_rows_for_entries(entries), now=now)
            except BaseException:
                _requeue(tenant.pk, entries)
                raise
            add_counts(run.run.counts, counts)
        return dict(run.run.counts)


def notifications_sweep(*, now: datetime | None = None) -> dict[str, int] | None:
    """Per minute: pending entries whose wake-up was lost, and rows left unprocessed for `SWEEP_AFTER`
    (Redis was down at the intake, or a worker died mid-run)."""
    tenant = require_tenant()
    totals: dict[str, int] = {}
    consumed = notifications_consume(now=now)
    if consumed:
        add_counts(totals, consumed)
    moment = now or timezone.now()
    with tenant_context(tenant):
        ids = list(
            OfferChangeNotification.objects.filter(
                processed_at__isnull=True, received_at__lt=moment - SWEEP_AFTER
            )
            .order_by("received_at", "pk")
            .values_list("pk", flat=True)[:SWEEP_LIMIT]
        )
    if ids:
        with job_run("repricing.notifications", triggered_by="sweep") as run:
            add_counts(run.run.counts, process_notification_rows(ids, now=now))
            add_counts(totals, run.run.counts)
    return totals or None


# --- refreshing offers ------------------------------------------------------------------------------------


def refresh_offers(connection: SellerConnection, listings: Sequence[Listing]) -> set[int]:
    """Snapshot the offers of `listings` (one connection) through the offers sync; returns the ids of
    those with a snapshot taken now. Amazon's failures are logged and leave the rest as it was."""
    if not listings:
        return set()
    started = timezone.now()
    try:
        sync_offers(connection=connection, skus=sorted({li.sku for li in listings}), triggered_by="repricing")
    except (AmazonApiError, SyncAlreadyRunning):
        logger.warning(
            "repricing: offers refresh failed for connection %s", connection.public_id, exc_info=True
        )
    with tenant_context(require_tenant()):
        facts = snapshot_facts([li.pk for li in listings], depth=1)
    return {listing_id for listing_id, f in facts.items() if f.newest_observed_at >= started}


# --- scheduled polling ------------------------------------------------------------------------------------

#: Default share of getListingOffersBatch's published rate the poll may use (setting
#: REPRICING_POLL_QUOTA_SHARE); the rest is for the full offers sync and "reprice now".
POLL_QUOTA_SHARE = 0.5
POLL_OPERATION = "getListingOffersBatch"
#: SKUs repriced per transaction after a refresh.
REPRICE_CHUNK = 500
POLL_LOCK = "repricing:poll:lock:{}"
#: A competitor change notified this recently makes a SKU urgent.
RECENT_CHANGE = timedelta(hours=1)


def poll_budget(every: timedelta = POLL_EVERY) -> int:
    """How many SKUs one connection's poll may refresh per period: the batches the operation's
    published rate allows in `every`, times the poll's share, 20 SKUs each."""
    rate, _burst = ratelimit.limits_for(POLL_OPERATION)
    share = float(getattr(settings, "REPRICING_POLL_QUOTA_SHARE", POLL_QUOTA_SHARE))  # config/settings.py
    batches = int(rate * every.total_seconds() * share)
    return max(batches, 0) * OFFERS_BATCH_SIZE


def poll_priority(
    *,
    recent_change: bool,
    held_now: bool | None,
    held_before: bool | None,
    units_7d: int | None,
    minutes_since_observed: float | None,
) -> int:
    """A SKU's urgency (higher first): a competitor change notified within the last hour +100; the Buy
    Box lost since the snapshot before +80, or simply not ours +20; +1 per unit sold in 7 days (up to
    50); +1 per minute since the last observation (up to 60; never observed counts 60)."""
    score = 100 if recent_change else 0
    if held_now is False:
        score += 80 if held_before else 20
    score += min(units_7d or 0, 50)
    score += 60 if minutes_since_observed is None else int(min(max(minutes_since_observed, 0), 60))
    return score


def poll_candidates(connection: SellerConnection, limit: int, now: datetime) -> list[Listing]:
    """The connection's buyable SKUs that have a rule, are enabled and not paused, most urgent first
    (`poll_priority`, ties by age), at most `limit`. A handful of queries whatever the catalogue."""
    if limit <= 0:
        return []
    listings = list(
        Listing.objects.filter(connection=connection, status=Listing.Status.BUYABLE).order_by("pk")
    )
    pricing = {
        row.listing_id: row
        for row in SkuPricing.objects.filter(listing_id__in=[li.pk for li in listings]).select_related("rule")
    }
    resolver = RuleResolver(repricing_settings())
    eligible = []
    for listing in listings:
        row = pricing.get(listing.pk)
        if row is not None and (not row.enabled or (row.paused_until is not None and row.paused_until > now)):
            continue
        if resolver.resolve(row)[0] is None:
            continue
        eligible.append(listing)
    if not eligible:
        return []
    facts = snapshot_facts([li.pk for li in eligible], depth=2)
    units = units_sold_7d(eligible, now)
    recent = set(
        OfferChangeNotification.objects.filter(
            connection=connection, received_at__gte=now - RECENT_CHANGE
        ).values_list("marketplace_id", "asin")
    )

    def score(listing: Listing) -> tuple[int, int]:
        f = facts.get(listing.pk)
        minutes = None if f is None else (now - f.newest_observed_at).total_seconds() / 60
        return (
            -poll_priority(
                recent_change=(listing.marketplace_id, listing.asin) in recent,
                held_now=None if f is None else f.held_now,
                held_before=None if f is None else f.held_before,
                units_7d=units.get(listing.pk),
                minutes_since_observed=minutes,
            ),
            listing.pk,
        )

    return sorted(eligible, key=score)[:limit]


def _chunks(items: Sequence[Listing], size: int) -> Iterator[Sequence[Listing]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@contextlib.contextmanager
def _poll_lock(tenant: Tenant) -> Iterator[bool]:
    client = redis_client()
    key = POLL_LOCK.format(tenant.pk)
    owner = uuid.uuid4().hex
    acquired = bool(client.set(key, owner, nx=True, ex=int(POLL_EVERY.total_seconds()) * 2))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(_RELEASE, 1, key, owner)


def poll(*, now: datetime | None = None, budget: int | None = None) -> dict[str, int] | None:
    """The scheduled poll of the current tenant (see the module docstring). None, and no run recorded,
    when there is nothing to poll (no active connection, no SKU with a rule) or another poll of the
    tenant is still running. Call outside a transaction (each refresh batch commits on its own)."""
    tenant = require_tenant()
    with _poll_lock(tenant) as acquired:
        if not acquired:
            logger.info("repricing poll of tenant %s skipped: the previous one is still running", tenant.pk)
            return None
        allowed = poll_budget() if budget is None else budget
        with tenant_context(tenant):
            connections = SellerConnection.objects.filter(status=SellerConnection.Status.ACTIVE).order_by(
                "pk"
            )
            plan = [(c, poll_candidates(c, allowed, now or timezone.now())) for c in connections]
        plan = [(connection, chosen) for connection, chosen in plan if chosen]
        if not plan:
            return None
        with job_run("repricing.poll", triggered_by="schedule") as run:
            done = 0
            run.progress(done, sum(len(chosen) for _, chosen in plan))
            for connection, chosen in plan:
                run.count("selected", len(chosen))
                refreshed = refresh_offers(connection, chosen)
                run.count("refreshed", len(refreshed))
                run.count("not_refreshed", len(chosen) - len(refreshed))
                fresh = [li for li in chosen if li.pk in refreshed]
                for chunk in _chunks(fresh, REPRICE_CHUNK):
                    result = reprice_batch(chunk, trigger=Trigger.SCHEDULE, now=now)
                    add_counts(run.run.counts, result.counts())
                    done += len(chunk)
                    run.progress(done)
                done += len(chosen) - len(fresh)
                run.progress(done)
            return dict(run.run.counts)


# --- reprice now ------------------------------------------------------------------------------------------

#: "Reprice now" refreshes and reprices this many SKUs at a time (progress moves per chunk).
REPRICE_NOW_CHUNK = 100


def _parse_ids(listing_ids: Iterable[str]) -> list[uuid.UUID]:
    parsed = []
    for text in listing_ids:
        with contextlib.suppress(ValueError):
            parsed.append(uuid.UUID(text.strip()))
    return parsed


def reprice_now_run(
    *, run_id: str, listing_ids: Iterable[str], now: datetime | None = None
) -> dict[str, int] | None:
    """Carry out a "reprice now" run recorded by `repricing.pipeline.reprice_now`: per chunk, refresh the
    SKUs' offers and reprice them (from the newest snapshot when the refresh could not reach Amazon:
    the seller asked now; the decision shows when its offers were observed). Call outside a
    transaction. None when the run is unknown or already over."""
    tenant = require_tenant()
    with tenant_context(tenant):
        run = JobRun.objects.filter(public_id=run_id, kind=REPRICE_NOW_KIND).first()
        if run is None or run.outcome != JobRun.Outcome.RUNNING:
            return None
        wanted = _parse_ids(listing_ids)
        listings = list(
            Listing.objects.filter(public_id__in=wanted).select_related("connection").order_by("pk")
        )

    def write(fn: Callable[[], object]) -> None:
        with tenant_context(tenant):
            fn()

    recorder = RunRecorder(run, write)
    total = len(listings)
    resume_at = min(run.progress_done, total)
    if resume_at:
        recorder.count("resumed_at", resume_at)
    if not resume_at and len(set(wanted)) > total:
        recorder.count("skipped_unknown", len(set(wanted)) - total)
    try:
        done = resume_at
        recorder.progress(done, total)
        for chunk in _chunks(listings[resume_at:], REPRICE_NOW_CHUNK):
            by_connection: dict[int, list[Listing]] = defaultdict(list)
            for listing in chunk:
                by_connection[listing.connection_id].append(listing)
            usable: list[Listing] = []
            for members in by_connection.values():
                connection = members[0].connection
                if not connection.is_usable:
                    recorder.count("skipped_connection_inactive", len(members))
                    continue
                refreshed = refresh_offers(connection, members)
                recorder.count("refreshed", len(refreshed))
                recorder.count("stale_offers", len(members) - len(refreshed))
                usable.extend(members)
            result = reprice_batch(usable, trigger=Trigger.MANUAL, now=now)
            add_counts(recorder.run.counts, result.counts())
            done += len(chunk)
            recorder.progress(done)
    except Exception as error:
        run.outcome = JobRun.Outcome.FAILED
        run.error = f"{type(error).__name__}: {error}"[:2000]
        run.finished_at = timezone.now()
        write(lambda: run.save())
        raise
    run.outcome = JobRun.Outcome.SUCCEEDED
    run.finished_at = timezone.now()
    write(lambda: run.save())
    return dict(run.counts)
