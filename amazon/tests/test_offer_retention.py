"""Offer snapshot retention (amazon/retention.py): snapshots older than OFFER_SNAPSHOT_RETENTION_DAYS go,
in batches, each listing's newest always stays, another tenant's rows are never touched, and the run is a
JobRun with counts. Real PostgreSQL (row-level security on), each batch committed on its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from amazon.models import Listing, OfferSnapshot, SellerConnection
from amazon.retention import offer_snapshots_purge
from amazon.tasks import purge_offer_snapshots_task
from amazon.tests.factories import make_connection
from tenants import context
from tenants.context import tenant_context
from tenants.jobs import PERIODIC_JOBS, is_due
from tenants.models import JobRun, Tenant
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()


@contextlib.contextmanager
def working_for(tenant: Tenant) -> Iterator[None]:
    """What the non-atomic task does around its body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


class Catalogue:
    def __init__(self, tenant: Tenant | None = None) -> None:
        self.tenant = tenant or make_tenant()
        self.connection: SellerConnection = make_connection(self.tenant)
        self.listings: dict[str, Listing] = {}

    def snapshots(self, sku: str, *days_ago: float, at: datetime | None = None) -> list[int]:
        """Snapshots of `sku` observed `days_ago` before NOW (or all `at` one moment); their ids."""
        with tenant_context(self.tenant):
            if sku not in self.listings:
                self.listings[sku] = Listing.objects.create(
                    tenant=self.tenant,
                    connection=self.connection,
                    marketplace_id="ATVPDKIKX0DER",
                    sku=sku,
                    last_synced_at=NOW,
                )
            moments = [at] * len(days_ago) if at else [NOW - timedelta(days=d) for d in days_ago]
            created = OfferSnapshot.objects.bulk_create(
                OfferSnapshot(tenant=self.tenant, listing=self.listings[sku], observed_at=moment)
                for moment in moments
            )
        return [s.pk for s in created]

    def left(self) -> dict[str, list[int]]:
        with tenant_context(self.tenant):
            rows = OfferSnapshot.objects.order_by("listing__sku", "-observed_at", "-id")
            kept: dict[str, list[int]] = {}
            for sku, pk in rows.values_list("listing__sku", "pk"):
                kept.setdefault(sku, []).append(pk)
        return kept

    def purge(self, **kwargs: Any) -> dict[str, Any]:
        with working_for(self.tenant):
            return offer_snapshots_purge(now=NOW, **kwargs)

    def run(self) -> JobRun:
        with tenant_context(self.tenant):
            return JobRun.objects.get(kind="amazon.offer_snapshot_retention")


def test_old_snapshots_go_each_listings_newest_stays() -> None:
    shop = Catalogue()
    a_old = shop.snapshots("A", 200, 120, 91)
    a_recent = shop.snapshots("A", 89, 10, 0)
    _, b_newest = shop.snapshots("B", 150, 100)  # nothing recent: its newest stays, however old
    (c_only,) = shop.snapshots("C", 400)

    counts = shop.purge(batch_size=2)

    assert shop.left() == {"A": a_recent[::-1], "B": [b_newest], "C": [c_only]}
    assert counts == {"deleted": len(a_old) + 1, "batches": 2, "kept_newest": 2}
    run = shop.run()
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.counts == counts
    assert run.progress_done == 4

    # Nothing left to do: a second run deletes nothing.
    assert shop.purge()["deleted"] == 0


def test_equal_timestamps_keep_the_later_row() -> None:
    shop = Catalogue()
    moment = NOW - timedelta(days=100)
    first, second = shop.snapshots("A", 1, 1, at=moment)
    shop.purge()
    assert shop.left() == {"A": [second]}
    assert first < second


def test_the_retention_period_comes_from_settings() -> None:
    shop = Catalogue()
    shop.snapshots("A", 40, 20, 3)
    with override_settings(OFFER_SNAPSHOT_RETENTION_DAYS=30):
        assert shop.purge()["deleted"] == 1
    with override_settings(OFFER_SNAPSHOT_RETENTION_DAYS=5):
        assert shop.purge()["deleted"] == 1
    assert len(shop.left()["A"]) == 1


def test_another_tenants_snapshots_are_never_touched() -> None:
    ours, theirs = Catalogue(), Catalogue()
    ours.snapshots("A", 200, 100, 1)
    kept = theirs.snapshots("A", 300, 200, 100, 1)
    assert ours.purge()["deleted"] == 2
    assert theirs.left() == {"A": kept[::-1]}


def test_a_run_out_of_time_stops_after_a_batch_and_the_next_continues() -> None:
    shop = Catalogue()
    for sku in ("A", "B", "C"):
        shop.snapshots(sku, 300, 200, 100, 1)
    counts = shop.purge(batch_size=4, max_seconds=0)
    assert counts == {"deleted": 4, "batches": 1, "incomplete": 1}
    assert shop.purge(batch_size=4)["deleted"] == 5  # 9 expired in all
    left = shop.left()
    assert sorted(left) == ["A", "B", "C"] and all(len(ids) == 1 for ids in left.values())


def test_the_daily_task_runs_it_for_its_tenant() -> None:
    shop = Catalogue()
    shop.snapshots("A", 365, 1)
    purge_offer_snapshots_task.apply(kwargs={"tenant_id": shop.tenant.pk}, throw=True)
    assert len(shop.left()["A"]) == 1
    assert shop.run().counts["deleted"] == 1

    job = PERIODIC_JOBS["amazon.offer_snapshot_retention"]
    assert job.task_name == "amazon.purge_offer_snapshots"
    assert job.every == timedelta(days=1)
    assert is_due(job, 0) and not is_due(job, 60)  # once a day, at 00:00 UTC
