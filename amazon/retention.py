"""How long we keep history copied from Amazon: offer snapshots.

`sync_offers` stores one `OfferSnapshot` per listing every five minutes (288 a day per listing), the
repricer's input and its backtests' history. `offer_snapshots_purge` (task `amazon.purge_offer_snapshots`,
daily per tenant) deletes the tenant's snapshots observed more than `OFFER_SNAPSHOT_RETENTION_DAYS` ago
(default 90), except each listing's newest one, whatever its age: a listing whose offers we have not
seen for months still shows its last known Buy Box.

It works through the tenant's listings 200 at a time (`listing_id = ANY(…)`, so the (tenant, listing,
-observed_at) index leads straight to each listing's old snapshots, not through its recent ones) and
deletes in batches of `OFFER_RETENTION_BATCH_SIZE` rows, each in its own short transaction: no long lock,
and an interrupted run loses nothing (the next one starts over; what is left is simply older). A run stops
after `max_seconds` (counted as `incomplete`; the next run continues). Its `JobRun` counts what was
`deleted`, the `batches`, and `kept_newest` (snapshots past the cutoff kept as their listing's newest).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from amazon.models import Listing, OfferSnapshot
from tenants.context import require_tenant, tenant_context
from tenants.jobs import job_run

#: Rows deleted per transaction.
OFFER_RETENTION_BATCH_SIZE = 5000
#: Listings looked at together: `listing_id = ANY(…)` lets the index reach each one's old snapshots directly.
OFFER_RETENTION_LISTINGS_PER_CHUNK = 200
#: One run's time budget; a backlog larger than that is worked off by the following runs.
OFFER_RETENTION_MAX_SECONDS = 15 * 60


def offer_snapshot_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.OFFER_SNAPSHOT_RETENTION_DAYS)


def _newest_of(listing_ids: list[int]) -> list[int]:
    """The id of each listing's newest snapshot (latest observed; the higher id at the same moment): one
    index probe per listing. Tenant context."""
    newest = (
        OfferSnapshot.objects.filter(listing_id=OuterRef("pk"))
        .order_by("-observed_at", "-pk")
        .values("pk")[:1]
    )
    rows = Listing.objects.filter(pk__in=listing_ids).annotate(newest=Subquery(newest))
    return [pk for pk in rows.values_list("newest", flat=True) if pk is not None]


def _expired_batch(cutoff: datetime, listing_ids: list[int], keep: list[int], size: int) -> list[int]:
    """Up to `size` ids of snapshots of `listing_ids` observed before `cutoff`, except `keep`. Tenant
    context. `listing_id = ANY(…) AND observed_at < cutoff` is a range of the index per listing."""
    return list(
        OfferSnapshot.objects.filter(listing_id__in=listing_ids, observed_at__lt=cutoff)
        .exclude(pk__in=keep)
        .order_by()  # any rows will do: no sort of every candidate before the LIMIT
        .values_list("pk", flat=True)[:size]
    )


def offer_snapshots_purge(
    *,
    triggered_by: str = "schedule",
    now: datetime | None = None,
    batch_size: int = OFFER_RETENTION_BATCH_SIZE,
    listings_per_chunk: int = OFFER_RETENTION_LISTINGS_PER_CHUNK,
    max_seconds: float = OFFER_RETENTION_MAX_SECONDS,
) -> dict[str, Any]:
    """Delete the current tenant's offer snapshots past the retention period, keeping every listing's
    newest. Call in the tenant context, outside a transaction (each batch commits on its own). Returns
    the run's counts."""
    tenant = require_tenant()
    cutoff = offer_snapshot_cutoff(now)
    started = time.monotonic()
    with job_run("amazon.offer_snapshot_retention", triggered_by=triggered_by) as run:
        for name in ("deleted", "batches"):
            run.count(name, 0)
        after_listing = 0
        while "incomplete" not in run.run.counts:
            with tenant_context(tenant):
                chunk = list(
                    Listing.objects.filter(pk__gt=after_listing)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:listings_per_chunk]
                )
            if not chunk:
                break
            with tenant_context(tenant):
                keep = _newest_of(chunk)
            while True:
                with tenant_context(tenant):
                    doomed = _expired_batch(cutoff, chunk, keep, batch_size)
                    if doomed:
                        deleted, _ = OfferSnapshot.objects.filter(pk__in=doomed).delete()
                        run.count("deleted", deleted)
                        run.count("batches")
                if doomed:
                    run.progress(run.run.counts["deleted"])
                if len(doomed) < batch_size:
                    break
                if time.monotonic() - started >= max_seconds:
                    run.count("incomplete")
                    break
            after_listing = chunk[-1]
        if "incomplete" not in run.run.counts:
            with tenant_context(tenant):
                run.count("kept_newest", OfferSnapshot.objects.filter(observed_at__lt=cutoff).count())
    return dict(run.run.counts)
