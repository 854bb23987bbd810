"""The first sync of a newly connected (or re-authorised) account, so its listings, orders and fees show
within a minute instead of at the next periodic run."""

from __future__ import annotations

from amazon.models import SellerConnection
from tenants.jobs import enqueue


def initial_sync_enqueue(connection: SellerConnection) -> None:
    """Queue the listings, orders and financial events syncs of `connection` once the current transaction
    commits (tenants.jobs.enqueue): a rolled-back connect queues nothing. The listings sync queues the
    first offers snapshot when it is done (offers need the listings)."""
    from amazon import tasks

    for task in (tasks.sync_listings_task, tasks.sync_orders_task, tasks.sync_financial_events_task):
        enqueue(
            task, tenant=connection.tenant, connection_id=str(connection.public_id), triggered_by="connect"
        )
