"""What starts a repricing run (repricing/triggers.py, repricing/tasks.py) against the simulator: Amazon's
notifications through the real intake (wake-up, coalescing, duplicates, unknown ASINs, a worker killed
mid-batch, Redis lost), the scheduled poll (rate budget, priority, a 429 storm), "reprice now", and
tenant isolation. Real PostgreSQL, Redis, sp_api client over HTTP and the real engine."""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.roles import Role
from amazon.models import Listing, OfferChangeNotification, OfferSnapshot, SyncCursor
from amazon.notifications import repricing_pending
from amazon.simulator.market import US
from amazon.tests.data_factories import make_offer_snapshot, make_order, make_order_item
from config.redis import redis_client
from repricing import pipeline, triggers
from repricing.models import PriceDecision, PriceSubmission
from repricing.pipeline import reprice_now
from repricing.services import RepricingError
from repricing.tasks import consume_notifications_task, poll_task, reprice_now_task, sweep_notifications_task
from repricing.tests.conftest import (
    World,
    broker_messages,
    make_world,
    set_bounds,
    setup_repricing,
    task_names,
    working_for,
)
from tenants.context import tenant_context
from tenants.jobs import PERIODIC_JOBS
from tenants.models import AuditEvent, JobRun

pytestmark = pytest.mark.django_db(transaction=True)

Trigger = PriceDecision.Trigger


def _decisions(world: World) -> list[PriceDecision]:
    with tenant_context(world.tenant):
        return list(PriceDecision.objects.order_by("decided_at", "id"))


def _rows(world: World) -> list[OfferChangeNotification]:
    with tenant_context(world.tenant):
        return list(OfferChangeNotification.objects.order_by("id"))


def _runs(world: World, kind: str) -> list[JobRun]:
    with tenant_context(world.tenant):
        return list(JobRun.objects.filter(kind=kind).order_by("id"))


def _consume(world: World) -> Any:
    return consume_notifications_task.apply(kwargs={"tenant_id": world.tenant.pk}, throw=True).result


def _batch_requests(sim: Any) -> list[list[str]]:
    """The SKUs asked for in each getListingOffersBatch call, in order."""
    calls = [r for r in sim.app.log if r.operation == "getListingOffersBatch" and r.status == 200]
    return [
        [
            unquote(request["uri"].split("/listings/")[1].split("/offers")[0])
            for request in call.body["requests"]
        ]
        for call in calls
    ]


def test_the_periodic_jobs_are_registered() -> None:
    assert PERIODIC_JOBS["repricing.sweep_notifications"].every == timedelta(minutes=1)
    assert PERIODIC_JOBS["repricing.poll"].task_name == "repricing.poll"


# --- notifications ---------------------------------------------------------------------------------------


def test_a_notification_wakes_the_consumer_which_reprices_the_sku_from_its_offers(world: World) -> None:
    listing = world.listings[0]
    document = world.notify(listing.asin)
    (row,) = _rows(world)
    assert task_names() == ["repricing.consume_notifications"]  # woken at once, not at the next minute
    (wake,) = broker_messages()
    assert wake["headers"]["eta"] is not None  # a short countdown lets a burst ride along

    counts = _consume(world)
    (decision,) = _decisions(world)
    assert decision.listing_id == listing.pk and decision.trigger == "notification"
    assert decision.notification_received_at == row.received_at
    assert decision.inputs["source"]["kind"] == "notification"
    assert decision.inputs["source"]["id"] == str(row.public_id)
    sent = document["Payload"]["AnyOfferChangedNotification"]["Offers"]
    assert len(decision.inputs["offers"]) == len(sent) > 0
    assert decision.trace and decision.rule_name == "Beat the Buy Box"
    assert counts["decided"] == 1 and counts["notifications"] == 1
    (row,) = _rows(world)
    assert row.processed_at is not None
    (run,) = _runs(world, "repricing.notifications")
    assert run.outcome == "succeeded" and run.counts["decided"] == 1
    assert ("repricing.send_submissions" in task_names()) == decision.submit

    assert _consume(world) is None  # nothing left: no run recorded
    assert len(_runs(world, "repricing.notifications")) == 1


def test_a_duplicated_notification_makes_one_decision(world: World) -> None:
    document = world.notify(world.listings[1].asin)
    world.notify(world.listings[1].asin, payload=document)  # Amazon delivers it again (Redis knows it)
    client = redis_client()
    for key in client.scan_iter("amazon:notification:seen:*"):
        client.delete(key)
    world.notify(world.listings[1].asin, payload=copy.deepcopy(document))  # ... and again (the database)
    assert len(_rows(world)) == 1
    _consume(world)
    sweep_notifications_task.apply(kwargs={"tenant_id": world.tenant.pk}, throw=True)
    assert len(_decisions(world)) == 1


def test_a_burst_on_one_sku_wakes_once_and_makes_one_decision_from_the_newest(world: World) -> None:
    listing = world.listings[2]
    for _ in range(5):
        world.sim.market.clock.advance(60)  # Amazon's time of change moves on each time
        world.notify(listing.asin)
    rows = _rows(world)
    assert len(rows) == 5
    assert task_names() == ["repricing.consume_notifications"]

    counts = _consume(world)
    (decision,) = _decisions(world)
    newest = max(rows, key=lambda r: r.time_of_offer_change or r.received_at)
    assert decision.inputs["source"]["id"] == str(newest.public_id)
    assert decision.observed_at == newest.time_of_offer_change
    assert counts["notifications"] == 5 and counts["decided"] == 1
    assert all(r.processed_at is not None for r in _rows(world))


def test_a_notification_arriving_after_the_take_wakes_a_new_consumer(world: World) -> None:
    world.notify(world.listings[0].asin)
    _consume(world)
    world.notify(world.listings[3].asin)
    wakes = [name for name in task_names() if name == "repricing.consume_notifications"]
    assert len(wakes) == 2
    _consume(world)
    assert {d.listing_id for d in _decisions(world)} == {world.listings[0].pk, world.listings[3].pk}


def test_a_notification_for_an_asin_the_company_does_not_list_decides_nothing(world: World) -> None:
    from amazon.simulator.notifications import any_offer_changed

    document = any_offer_changed(world.sim.market, world.sim.seller_id, US, world.listings[0].asin, seq=99)
    document["Payload"]["AnyOfferChangedNotification"]["OfferChangeTrigger"]["ASIN"] = "B0NOTOURS1"
    world.notify("B0NOTOURS1", payload=document)
    counts = _consume(world)
    assert _decisions(world) == []
    assert counts["unlisted"] == 1 and counts["decided"] == 0
    (row,) = _rows(world)
    assert row.processed_at is not None  # handled: the sweep will not try it again


def test_a_worker_killed_mid_batch_loses_no_notification_and_decides_each_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for listing in world.listings[:3]:
        world.notify(listing.asin)
    real = pipeline.decide
    calls: list[int] = []

    def killed_on_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decide", killed_on_the_second)
    with pytest.raises(RuntimeError):
        _consume(world)
    assert _decisions(world) == []  # no half-written batch
    assert all(r.processed_at is None for r in _rows(world))
    assert len(repricing_pending(world.tenant.pk)) == 3  # put back for the next consumer
    (failed,) = _runs(world, "repricing.notifications")
    assert failed.outcome == "failed" and "worker killed" in failed.error

    monkeypatch.setattr(pipeline, "decide", real)
    _consume(world)
    _consume(world)
    sweep_notifications_task.apply(kwargs={"tenant_id": world.tenant.pk}, throw=True)
    assert sorted(d.listing_id for d in _decisions(world)) == sorted(li.pk for li in world.listings[:3])
    with tenant_context(world.tenant):
        decided = PriceDecision.objects.values_list("pk", flat=True)
        assert PriceSubmission.objects.filter(decision__in=decided).count() <= 3


def test_the_sweep_finds_notifications_whose_redis_hand_off_was_lost(world: World) -> None:
    world.notify(world.listings[4].asin)
    redis_client().flushdb()  # Redis lost the pending entry and the wake-up
    with working_for(world.tenant):
        assert triggers.notifications_sweep() is None  # too recent: the fast path may still come
        counts = triggers.notifications_sweep(now=timezone.now() + timedelta(minutes=2))
    assert counts is not None and counts["decided"] == 1
    (decision,) = _decisions(world)
    assert decision.listing_id == world.listings[4].pk
    (run,) = _runs(world, "repricing.notifications")
    assert run.triggered_by == "sweep"


def test_a_notification_reaches_every_company_that_connected_the_account_and_each_decides_only_its_own(
    world: World,
) -> None:
    other = make_world(world.sim, "Beta")
    setup_repricing(other.tenant, other.owner)
    theirs = other.listing(world.listings[0].sku)
    set_bounds(theirs, other.owner, "1.00", "999.00")
    world.notify(world.listings[0].asin)
    assert len(_rows(world)) == len(_rows(other)) == 1

    _consume(world)
    assert len(_decisions(world)) == 1
    assert _decisions(other) == [] and _rows(other)[0].processed_at is None
    _consume(other)
    (their_decision,) = _decisions(other)
    assert their_decision.listing_id == theirs.pk
    assert len(_decisions(world)) == 1


# --- scheduled polling -----------------------------------------------------------------------------------


def test_the_poll_budget_follows_the_offers_batch_rate_limit() -> None:
    # getListingOffersBatch: 0.5 requests/s; half of 5 minutes' worth, 20 SKUs a request.
    assert triggers.poll_budget() == 75 * 20
    with override_settings(REPRICING_POLL_QUOTA_SHARE=0.1):
        assert triggers.poll_budget() == 15 * 20


def test_poll_priority_puts_recent_changes_then_lost_buy_boxes_then_sellers_first() -> None:
    base = {"held_now": True, "held_before": True, "units_7d": 0, "minutes_since_observed": 5}
    changed = triggers.poll_priority(**{**base, "recent_change": True})
    lost = triggers.poll_priority(**{**base, "recent_change": False, "held_now": False})
    seller = triggers.poll_priority(**{**base, "recent_change": False, "units_7d": 40})
    stale = triggers.poll_priority(**{**base, "recent_change": False, "minutes_since_observed": 50})
    quiet = triggers.poll_priority(**{**base, "recent_change": False})
    assert changed > lost > stale > seller > quiet
    assert triggers.poll_priority(**{**base, "recent_change": False, "minutes_since_observed": None}) == 60


def _prioritised(world: World) -> tuple[Listing, Listing, Listing]:
    """Every SKU observed just now; then one with a competitor change, one that lost the Buy Box, one
    that sells fast."""
    world.snapshot_offers()
    buyable = [li for li in world.listings if li.status == Listing.Status.BUYABLE]
    changed, lost, seller = buyable[3], buyable[12], buyable[21]
    world.notify(changed.asin)
    redis_client().flushdb()  # only the notification's row matters here (not its consumer)
    now = timezone.now()
    make_offer_snapshot(lost, we_hold_buy_box=True, observed_at=now)
    make_offer_snapshot(lost, we_hold_buy_box=False, observed_at=now + timedelta(seconds=1), offers=[])
    with tenant_context(world.tenant):
        SyncCursor.objects.create(
            connection=world.connection, kind=f"orders:{US}", updated_until=timezone.now()
        )
    order = make_order(world.connection, purchase_date=timezone.now() - timedelta(days=1))
    make_order_item(order, sku=seller.sku, quantity_ordered=40)
    return changed, lost, seller


def test_the_poll_refreshes_the_most_urgent_skus_first_within_its_budget(world: World) -> None:
    changed, lost, seller = _prioritised(world)
    with tenant_context(world.tenant):
        ranked = triggers.poll_candidates(world.connection, 3, timezone.now())
    assert [li.pk for li in ranked] == [changed.pk, lost.pk, seller.pk]

    before = len(_batch_requests(world.sim))
    with working_for(world.tenant):
        counts = triggers.poll(budget=2)
    requests = _batch_requests(world.sim)[before:]
    assert requests == [sorted([changed.sku, lost.sku])]  # one call, the two most urgent SKUs
    assert counts is not None
    assert (counts["selected"], counts["refreshed"], counts["not_refreshed"]) == (2, 2, 0)
    assert {d.listing_id for d in _decisions(world)} == {changed.pk, lost.pk}
    assert all(d.trigger == "schedule" for d in _decisions(world))
    (run,) = _runs(world, "repricing.poll")
    assert (run.outcome, run.progress_done, run.progress_total) == ("succeeded", 2, 2)
    assert run.counts["decided"] == 2


def test_the_poll_task_uses_at_most_its_share_of_the_offers_rate(world: World) -> None:
    world.snapshot_offers()
    before = len(_batch_requests(world.sim))
    with override_settings(REPRICING_POLL_QUOTA_SHARE=1 / 150):  # one request's worth per period
        poll_task.apply(kwargs={"tenant_id": world.tenant.pk}, throw=True)
    (request,) = _batch_requests(world.sim)[before:]
    assert len(request) == 20
    assert len(_decisions(world)) == 20


def test_paused_disabled_and_rule_less_skus_are_not_polled(world: World) -> None:
    from repricing.services import sku_pricing_update

    world.snapshot_offers()
    paused, disabled = [li for li in world.listings if li.status == Listing.Status.BUYABLE][:2]
    with tenant_context(world.tenant):
        sku_pricing_update(
            listing=disabled, values={"enabled": False}, actor=world.owner, actor_role=Role.OWNER
        )
        from repricing.models import SkuPricing

        SkuPricing.objects.filter(listing=paused).update(paused_until=timezone.now() + timedelta(hours=1))
    with working_for(world.tenant):
        triggers.poll(budget=100)
    polled = {d.listing_id for d in _decisions(world)}
    buyable = {li.pk for li in world.listings if li.status == Listing.Status.BUYABLE}
    assert polled == buyable - {paused.pk, disabled.pk}


def test_a_429_storm_during_the_poll_loses_nothing_and_the_next_poll_catches_up(world: World) -> None:
    world.snapshot_offers()
    world.sim.market.fail_next("getListingOffersBatch", 3, 429)  # every attempt of the call
    with working_for(world.tenant):
        counts = triggers.poll(budget=5)
    assert counts is not None and (counts["refreshed"], counts["not_refreshed"]) == (0, 5)
    assert _decisions(world) == []  # not repriced from an observation the poll could not refresh
    client = redis_client()
    for key in client.scan_iter(f"rl:{{{world.connection.public_id}}}:*"):
        client.delete(key)  # the storm has passed and the bucket refilled (saves the test the wait)
    with working_for(world.tenant):
        counts = triggers.poll(budget=5)
    assert counts is not None and counts["refreshed"] == 5
    assert len(_decisions(world)) == 5


def test_a_poll_already_running_for_the_company_is_not_doubled(world: World) -> None:
    redis_client().set(triggers.POLL_LOCK.format(world.tenant.pk), "someone", ex=60)
    with working_for(world.tenant):
        assert triggers.poll(budget=5) is None
    assert _runs(world, "repricing.poll") == []


# --- reprice now -----------------------------------------------------------------------------------------


def test_reprice_now_refreshes_and_reprices_the_selection_with_progress(world: World) -> None:
    chosen = world.listings[5:8]
    with tenant_context(world.tenant):
        run = reprice_now(chosen, actor=world.owner, actor_role=Role.OPERATOR)
        assert (run.outcome, run.progress_total, run.triggered_by) == ("running", 3, "user")
        (audit,) = AuditEvent.objects.filter(action="repricing.reprice_now")
    assert audit.changes == {"skus": [li.sku for li in chosen], "count": 3}
    (message,) = [m for m in broker_messages() if m["headers"]["task"] == "repricing.reprice_now"]
    kwargs = _message_kwargs(message)
    assert kwargs["run_id"] == str(run.public_id)
    assert kwargs["listing_ids"] == ",".join(str(li.public_id) for li in chosen)

    before = len(_batch_requests(world.sim))
    reprice_now_task.apply(kwargs=kwargs, throw=True)
    assert _batch_requests(world.sim)[before:] == [[li.sku for li in chosen]]
    with tenant_context(world.tenant):
        run.refresh_from_db()
    assert (run.outcome, run.progress_done, run.progress_total) == ("succeeded", 3, 3)
    assert run.counts["decided"] == 3 and run.counts["refreshed"] == 3
    decisions = _decisions(world)
    assert {d.listing_id for d in decisions} == {li.pk for li in chosen}
    assert all(d.trigger == "manual" for d in decisions)
    with tenant_context(world.tenant):
        snapshots = {s.listing_id: s.observed_at for s in OfferSnapshot.objects.filter(listing__in=chosen)}
    assert all(d.observed_at == snapshots[d.listing_id] for d in decisions)

    reprice_now_task.apply(kwargs=kwargs, throw=True)  # delivered again: the run is over, nothing redone
    assert len(_decisions(world)) == 3


def _message_kwargs(message: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a task message carries (Celery protocol 2: [args, kwargs, embed])."""
    body = json.loads(base64.b64decode(message["body"]))
    return dict(body[1])


def test_reprice_now_is_refused_to_read_only_roles_and_for_an_empty_or_huge_selection(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "REPRICE_NOW_MAX_SKUS", 5)
    with tenant_context(world.tenant):
        with pytest.raises(RepricingError) as refused:
            reprice_now(world.listings[:1], actor=world.owner, actor_role=Role.ANALYST)
        assert refused.value.status == 403
        with pytest.raises(RepricingError):
            reprice_now([], actor=world.owner, actor_role=Role.OWNER)
        with pytest.raises(RepricingError):
            reprice_now(world.listings[:6], actor=world.owner, actor_role=Role.OWNER)
        assert not JobRun.objects.filter(kind="repricing.reprice_now").exists()
        assert not AuditEvent.objects.filter(action="repricing.reprice_now").exists()


def test_a_company_with_nothing_to_poll_records_no_run(shop: Any) -> None:
    from repricing.tests.conftest import working_for as as_task

    with as_task(shop.tenant):
        assert triggers.poll() is None
        assert triggers.notifications_sweep() is None
    with tenant_context(shop.tenant):
        assert not JobRun.objects.exists()
