"""Thin Celery tasks for the Amazon sync (they carry ids, never secrets; the work is in amazon/sync.py).

The dispatcher (tenants.jobs) fans the periodic jobs registered in `AmazonConfig.ready()` out per
tenant: `amazon.sync_listings_all` / `amazon.sync_offers_all` then enqueue one task per active
connection of that tenant, on the "sync" queue (config/celery.py routes amazon.*);
`amazon.purge_offer_snapshots` (retention, amazon/retention.py) is itself the per-tenant task. These
tasks are non-atomic: each page or batch commits in its own transaction so progress is visible and an
interruption loses at most the page in flight (the next run resumes from the saved cursor).
"""

from __future__ import annotations

import logging
from typing import Any

from amazon import notifications_subscribe, retention, sync, sync_orders
from amazon.clients import AmazonThrottled, AmazonUnavailable
from amazon.models import SellerConnection
from amazon.tokens import ConnectionUnavailable, ReauthorizationRequired, TokenRefreshTimeout
from config.celery import app
from tenants.context import require_tenant, tenant_context
from tenants.jobs import TenantTask, enqueue

logger = logging.getLogger(__name__)

#: A full listings pass of 1,000 SKUs takes ~10 s at Amazon's 5 requests/s; offers for 1,000 SKUs take
#: ~100 s at 0.5 batches/s. Far larger catalogues resume on the next run after the soft limit.
SYNC_SOFT_TIME_LIMIT = 20 * 60
SYNC_TIME_LIMIT = SYNC_SOFT_TIME_LIMIT + 60


class SyncTask(TenantTask):
    abstract = True
    atomic = False


def _active_connection(connection_id: str) -> SellerConnection | None:
    with tenant_context(require_tenant()):
        connection = SellerConnection.objects.filter(public_id=connection_id).first()
    if connection is None or not connection.is_usable:
        logger.info("sync skipped: connection %s is gone or not active", connection_id)
        return None
    return connection


def _run_sync(what: str, run: Any, connection_id: str, triggered_by: str) -> dict[str, Any] | None:
    """The body every sync task shares: an active connection, one run at a time per connection."""
    connection = _active_connection(connection_id)
    if connection is None:
        return None
    try:
        result: dict[str, Any] = run(connection=connection, triggered_by=triggered_by)
    except sync.SyncAlreadyRunning:
        logger.info("%s sync of %s is already running", what, connection_id)
        return None
    return result


@app.task(
    base=SyncTask,
    name="amazon.sync_listings",
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_listings_task(*, connection_id: str, triggered_by: str = "schedule") -> dict[str, Any] | None:
    result = _run_sync("listings", sync.sync_listings, connection_id, triggered_by)
    if result is not None and triggered_by == "connect":
        # A new account's first offers snapshot needs its listings: take it right after them.
        enqueue(
            sync_offers_task, tenant=require_tenant(), connection_id=connection_id, triggered_by="connect"
        )
    return result


@app.task(
    base=SyncTask,
    name="amazon.sync_offers",
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_offers_task(*, connection_id: str, triggered_by: str = "schedule") -> dict[str, Any] | None:
    return _run_sync("offers", sync.sync_offers, connection_id, triggered_by)


@app.task(
    base=SyncTask,
    name="amazon.sync_orders",
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_orders_task(*, connection_id: str, triggered_by: str = "schedule") -> dict[str, Any] | None:
    return _run_sync("orders", sync_orders.sync_orders, connection_id, triggered_by)


@app.task(
    base=SyncTask,
    name="amazon.sync_financial_events",
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_financial_events_task(
    *, connection_id: str, triggered_by: str = "schedule"
) -> dict[str, Any] | None:
    return _run_sync("financial events", sync_orders.sync_financial_events, connection_id, triggered_by)


def _fan_out(task: Any) -> int:
    tenant = require_tenant()
    connections = SellerConnection.objects.filter(status=SellerConnection.Status.ACTIVE).order_by("pk")
    count = 0
    for public_id in connections.values_list("public_id", flat=True):
        enqueue(task, tenant=tenant, connection_id=str(public_id))
        count += 1
    return count


@app.task(base=TenantTask, name="amazon.sync_listings_all", ignore_result=True)
def sync_listings_all() -> int:
    """Periodic: one listings sync per active connection of the tenant."""
    return _fan_out(sync_listings_task)


@app.task(base=TenantTask, name="amazon.sync_offers_all", ignore_result=True)
def sync_offers_all() -> int:
    """Periodic: one offers snapshot run per active connection of the tenant."""
    return _fan_out(sync_offers_task)


@app.task(base=TenantTask, name="amazon.sync_orders_all", ignore_result=True)
def sync_orders_all() -> int:
    """Periodic: one orders sync per active connection of the tenant."""
    return _fan_out(sync_orders_task)


@app.task(base=TenantTask, name="amazon.sync_financial_events_all", ignore_result=True)
def sync_financial_events_all() -> int:
    """Periodic: one financial events sync per active connection of the tenant."""
    return _fan_out(sync_financial_events_task)


# Amazon's Notifications API (amazon/notifications_subscribe.py): after connecting and after disconnecting.
# Throttling or Amazon being down is retried with backoff (about 30 s, 1, 2, 4... up to 10 minutes).
_NOTIFICATIONS_RETRY: dict[str, Any] = {
    "autoretry_for": (AmazonThrottled, AmazonUnavailable, TokenRefreshTimeout),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@app.task(base=SyncTask, name="amazon.notifications_subscribe", ignore_result=True, **_NOTIFICATIONS_RETRY)
def notifications_subscribe_task(*, connection_id: str) -> dict[str, Any] | None:
    connection = _active_connection(connection_id)
    if connection is None:
        return None
    try:
        result = notifications_subscribe.notifications_subscribe(connection)
    except (ReauthorizationRequired, ConnectionUnavailable):
        logger.info("notifications subscription of %s skipped: it needs re-authorisation", connection_id)
        return None
    return {"status": result.status, "subscriptions": result.subscriptions, "errors": result.errors}


@app.task(base=SyncTask, name="amazon.notifications_unsubscribe", ignore_result=True, **_NOTIFICATIONS_RETRY)
def notifications_unsubscribe_task(*, connection_id: str) -> dict[str, str] | None:
    with tenant_context(require_tenant()):
        connection = SellerConnection.objects.filter(public_id=connection_id).first()
    if connection is None or connection.status != SellerConnection.Status.DISCONNECTED:
        return None  # gone, or connected again meanwhile: its subscriptions are in use
    return notifications_subscribe.notifications_unsubscribe(connection)


@app.task(
    base=SyncTask,
    name="amazon.purge_offer_snapshots",
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def purge_offer_snapshots_task(*, triggered_by: str = "schedule") -> dict[str, Any]:
    """Periodic, per tenant: offer snapshots past OFFER_SNAPSHOT_RETENTION_DAYS, each listing's newest
    kept (amazon/retention.py). Batches commit on their own, within the sync time limits."""
    return retention.offer_snapshots_purge(triggered_by=triggered_by)
