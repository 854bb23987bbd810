"""The repricing run (repricing/pipeline.py) on hand-made markets: what a decision records, the switches
(dry run, kill switch), guard state, alerts, submissions, all-or-nothing batches, query counts and
tenant isolation. Real PostgreSQL and Redis, the real engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.roles import Role
from amazon.models import Order, SyncCursor
from amazon.tests.data_factories import make_order, make_order_item
from repricing import pipeline
from repricing.models import PriceDecision, PriceSubmission, SkuPricing
from repricing.pipeline import reprice, reprice_batch
from repricing.services import company_settings_update, kill_switch_set, rule_update, sku_pricing_update
from repricing.tests.conftest import BEAT, Shop, make_shop, offer, task_names
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_member

pytestmark = pytest.mark.django_db(transaction=True)

Trigger = PriceDecision.Trigger
D = Decimal


def _decisions(shop: Shop) -> list[PriceDecision]:
    with tenant_context(shop.tenant):
        return list(PriceDecision.objects.order_by("decided_at", "id"))


def _submissions(shop: Shop) -> list[PriceSubmission]:
    with tenant_context(shop.tenant):
        return list(PriceSubmission.objects.order_by("queued_at", "id"))


def _pricing(shop: Shop, listing: Any) -> SkuPricing:
    with tenant_context(shop.tenant):
        return SkuPricing.objects.get(listing=listing)


def test_a_decision_records_its_inputs_rule_trace_and_timings_and_queues_one_submission(shop: Shop) -> None:
    listing = shop.listing("20.00")
    snapshot = shop.market(listing, offer("ACOMP1", "19.00", buy_box=True), offer("ACOMP2", "19.50"))
    with tenant_context(shop.tenant):
        (returned,) = reprice([listing], trigger=Trigger.SCHEDULE)
    (decision,) = _decisions(shop)
    assert decision.pk == returned.pk
    assert (decision.action, decision.reason, decision.submit) == ("change", "beat_buy_box", True)
    assert (decision.old_price, decision.target_price, decision.new_price) == (
        D("20.00"),
        D("18.99"),
        D("18.99"),
    )
    assert decision.currency == "USD" and decision.trigger == "schedule"
    assert (decision.rule_id, decision.rule_name, decision.rule_version) == (shop.rule.pk, shop.rule.name, 1)
    assert decision.rule_config == shop.rule.config
    assert decision.observed_at == snapshot.observed_at
    assert decision.notification_received_at is None
    assert 0 < decision.decide_ms < 1000
    assert not decision.dry_run and not decision.kill_switch

    inputs = decision.inputs
    assert inputs["source"] == {
        "kind": "snapshot",
        "id": str(snapshot.public_id),
        "observed_at": snapshot.observed_at.isoformat(),
    }
    assert [o["seller_id"] for o in inputs["offers"]] == ["AOURSELLER0001", "ACOMP1", "ACOMP2"]
    assert inputs["offers"][0]["is_ours"] is True and inputs["offers"][1]["price"] == "19.00"
    assert inputs["buy_box"] == {
        "seller_id": "ACOMP1",
        "price": "19.00",  # Amazon's JSON number 19.0, read in whole cents
        "shipping": "0.00",
        "landed": "19.00",
        "ours": False,
        "from": "offers",
    }
    assert inputs["listing"]["min_price"] == "10.00" and inputs["listing"]["max_price"] == "30.00"
    assert inputs["listing"]["current_price"] == "20.00" and inputs["listing"]["condition"] == "new"
    assert inputs["listing"]["units_sold_7d"] is None  # orders never synced: unknown, not zero
    assert inputs["market"] == {"lowest_competitor_landed": "19.00", "competitors": 2, "undercut": False}
    assert inputs["rule_source"] == "default"
    assert inputs["history"]["day_open_price"] is None and inputs["history"]["undercut_times"] == []
    codes = [step["code"] for step in decision.trace]
    assert "offers" in codes and codes[-1] == "price"
    assert all(set(step) == {"code", "message", "data"} for step in decision.trace)

    (submission,) = _submissions(shop)
    assert submission.decision_id == decision.pk and submission.listing_id == listing.pk
    assert (submission.status, submission.channel) == ("queued", "listings_patch")
    assert (submission.price, submission.currency) == (D("18.99"), "USD")
    assert submission.queued_at == decision.decided_at
    assert task_names() == ["repricing.send_submissions"]

    state = _pricing(shop, listing)
    assert state.last_changed_at == decision.decided_at
    assert (state.day_open_date, state.day_open_price) == (decision.decided_at.date(), D("20.00"))


def test_a_sku_without_bounds_is_decided_and_held(shop: Shop) -> None:
    listing = shop.listing("20.00", bounds=None)
    shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        (decision,) = reprice([listing], trigger=Trigger.SCHEDULE)
    assert (decision.action, decision.reason, decision.submit, decision.new_price) == (
        "hold",
        "no_bounds",
        False,
        None,
    )
    assert _submissions(shop) == []
    assert task_names() == []


@pytest.mark.parametrize("where", ["company", "rule"])
def test_dry_run_records_the_decision_and_queues_nothing(where: str) -> None:
    shop = make_shop(dry_run=True) if where == "company" else make_shop(config={**BEAT, "dry_run": True})
    listing = shop.listing("20.00")
    shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        (decision,) = reprice([listing], trigger=Trigger.SCHEDULE)
    assert (decision.action, decision.reason, decision.submit) == ("change", "dry_run", False)
    assert decision.new_price == D("18.99") and decision.dry_run is True
    assert decision.trace[-1]["code"] == "dry_run"
    assert decision.trace[-1]["data"] == {"scope": "tenant" if where == "company" else "rule"}
    assert _submissions(shop) == []
    assert task_names() == []
    assert _pricing(shop, listing).last_changed_at is None  # nothing changed on Amazon


def test_the_kill_switch_records_the_decision_and_queues_nothing(shop: Shop) -> None:
    listing = shop.listing("20.00")
    shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        kill_switch_set(on=True, reason="test", actor=shop.owner, actor_role=Role.OWNER)
        (decision,) = reprice([listing], trigger=Trigger.SCHEDULE)
    assert (decision.reason, decision.submit, decision.kill_switch) == ("kill_switch", False, True)
    assert decision.inputs["settings"] == {"kill_switch": True, "dry_run": False}
    assert _submissions(shop) == []


def test_no_rule_disabled_removed_or_never_observed_skus_are_not_decided(shop: Shop) -> None:
    observed, disabled, unseen, removed = (shop.listing("20.00") for _ in range(4))
    for listing in (observed, disabled, removed):
        shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        sku_pricing_update(
            listing=disabled, values={"enabled": False}, actor=shop.owner, actor_role=Role.OWNER
        )
        removed.status = "removed"
        removed.save()
        result = reprice_batch([observed, disabled, unseen, removed], trigger=Trigger.SCHEDULE)
        assert [d.listing_id for d in result.decisions] == [observed.pk]
        company_settings_update(clear_default_rule=True, actor=shop.owner, actor_role=Role.OWNER)
        nothing = reprice_batch([observed], trigger=Trigger.SCHEDULE)
    assert result.counts() == {
        "decided": 1,
        "changed": 1,
        "held": 0,
        "paused": 0,
        "submitted": 1,
        "skipped_disabled": 1,
        "skipped_no_offers": 1,
        "skipped_removed": 1,
    }
    assert nothing.decisions == [] and nothing.counts()["skipped_no_rule"] == 1
    assert len(_decisions(shop)) == 1


def test_a_sku_rule_and_a_tag_rule_win_over_the_default_and_the_decision_names_them(shop: Shop) -> None:
    from repricing.services import rule_create, tag_rule_set

    own, tagged = shop.listing("20.00"), shop.listing("20.00")
    for listing in (own, tagged):
        shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        match = rule_create(
            name="Match", config={"strategy": {"kind": "buy_box"}}, actor=shop.owner, actor_role=Role.OWNER
        )
        sku_pricing_update(listing=own, values={"rule": match}, actor=shop.owner, actor_role=Role.OWNER)
        sku_pricing_update(
            listing=tagged, values={"tags": ["clearance"]}, actor=shop.owner, actor_role=Role.OWNER
        )
        tag_rule_set(tag="clearance", rule=match, actor=shop.owner, actor_role=Role.OWNER)
        rule_update(
            rule=match,
            config={"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.05"}},
            actor=shop.owner,
            actor_role=Role.OWNER,
        )
        decisions = {d.listing_id: d for d in reprice([own, tagged], trigger=Trigger.MANUAL)}
    assert decisions[own.pk].inputs["rule_source"] == "sku"
    assert decisions[tagged.pk].inputs["rule_source"] == "tag:clearance"
    assert {(d.rule_name, d.rule_version, d.new_price) for d in decisions.values()} == {
        ("Match", 2, D("18.95"))
    }


def test_a_batch_takes_the_same_handful_of_queries_for_3_or_30_skus(shop: Shop) -> None:
    def run(count: int) -> int:
        listings = [shop.listing("20.00") for _ in range(count)]
        for listing in listings:
            shop.market(
                listing,
                offer("ACOMP1", "19.00", buy_box=True),
                observed_at=timezone.now() - timedelta(minutes=5),
            )
            shop.market(listing, offer("ACOMP1", "18.00", buy_box=True), offer("ACOMP2", "18.50"))
        with tenant_context(shop.tenant), CaptureQueriesContext(db_connection) as queries:
            decisions = reprice(listings, trigger=Trigger.SCHEDULE)
        assert len(decisions) == count and all(d.new_price == D("17.99") for d in decisions)
        return len(queries.captured_queries)

    few, many = run(3), run(30)
    assert few == many
    assert many <= 20


def test_a_newer_price_supersedes_the_skus_queued_submission(shop: Shop) -> None:
    listing, other = shop.listing("20.00"), shop.listing("20.00")
    for each in (listing, other):
        shop.market(each, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(shop.tenant):
        reprice([listing, other], trigger=Trigger.SCHEDULE)
    shop.market(listing, offer("ACOMP1", "18.50", buy_box=True))
    with tenant_context(shop.tenant):
        (newer,) = reprice([listing], trigger=Trigger.SCHEDULE)
    by_listing: dict[int, list[tuple[str, Decimal]]] = {}
    for submission in _submissions(shop):
        by_listing.setdefault(submission.listing_id, []).append((submission.status, submission.price))
    assert by_listing[listing.pk] == [("superseded", D("18.99")), ("queued", D("18.49"))]
    assert by_listing[other.pk] == [("queued", D("18.99"))]  # another SKU's submission is untouched
    assert newer.new_price == D("18.49")


def _war_shop() -> tuple[Shop, Any]:
    config = {
        **BEAT,
        "guards": {"price_war": {"undercuts": 2, "window_seconds": 3600, "pause_seconds": 7200}},
    }
    shop = make_shop(config=config)
    make_member(shop.tenant, Role.VIEWER, email="viewer@example.com")  # not told: cannot act on it
    make_member(
        shop.tenant,
        Role.OPERATOR,
        email="quiet@example.com",
        notification_preferences={"automation_alerts": False},
    )
    make_member(shop.tenant, Role.OPERATOR, email="ops@example.com")
    return shop, shop.listing("20.00")


def test_undercuts_trip_the_price_war_breaker_which_pauses_the_sku_and_alerts_once() -> None:
    shop, listing = _war_shop()
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def step(minute: int, ours: str, theirs: str) -> PriceDecision:
        shop.market(listing, offer("ACOMP1", theirs, buy_box=True), ours=ours)
        with tenant_context(shop.tenant):
            (decision,) = reprice(
                [listing], trigger=Trigger.NOTIFICATION, now=start + timedelta(minutes=minute)
            )
        return decision

    first = step(0, "20.00", "19.00")  # we beat them: no undercut (nothing to compare with yet)
    assert (first.action, first.new_price, first.inputs["market"]["undercut"]) == (
        "change",
        D("18.99"),
        False,
    )
    second = step(1, "18.99", "18.98")  # they went under us: undercut 1 of 2
    assert (second.action, second.new_price, second.inputs["market"]["undercut"]) == (
        "change",
        D("18.97"),
        True,
    )
    assert _pricing(shop, listing).undercut_times == [start + timedelta(minutes=1)]
    assert mail.outbox == []

    third = step(2, "18.97", "18.96")  # undercut 2 of 2: the breaker pauses the SKU
    assert (third.action, third.reason, third.alerts) == ("pause", "price_war", ["price_war"])
    state = _pricing(shop, listing)
    assert state.paused_until == start + timedelta(minutes=2, hours=2)
    assert state.paused_reason == "price_war"
    statuses = {s.decision_id: s.status for s in _submissions(shop)}
    assert statuses == {first.pk: "superseded", second.pk: "superseded"}  # the pause stops what was queued

    with tenant_context(shop.tenant):
        (alert,) = AuditEvent.objects.filter(action="repricing.alert.price_war")
    assert alert.target_id == str(listing.public_id) and alert.changes["decision"] == str(third.public_id)
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", shop.owner.email]
    assert listing.sku in message.body and "Price war" in message.body

    fourth = step(3, "18.97", "18.95")  # paused: held, no new alert, no new email
    assert (fourth.action, fourth.reason, fourth.alerts) == ("hold", "paused", [])
    assert len(mail.outbox) == 1


def test_an_anomaly_alert_is_audited_and_emailed_once_per_window() -> None:
    shop = make_shop(config={**BEAT, "guards": {"anomaly": {"percent": "10"}}})
    listing = shop.listing("20.00")
    shop.market(listing, offer("ACOMP1", "15.00", buy_box=True))
    with tenant_context(shop.tenant):
        first = reprice([listing], trigger=Trigger.SCHEDULE)[0]
        second = reprice([listing], trigger=Trigger.SCHEDULE)[0]
    assert (first.action, first.reason, first.alerts) == ("hold", "anomaly", ["anomaly"])
    assert second.alerts == ["anomaly"]  # every decision keeps its alert ...
    with tenant_context(shop.tenant):
        assert AuditEvent.objects.filter(action="repricing.alert.anomaly").count() == 1
    assert len(mail.outbox) == 1  # ... the seller hears of it once
    assert _submissions(shop) == []


def test_the_days_opening_price_follows_the_companys_timezone(shop: Shop) -> None:
    listing = shop.listing("20.00")
    with tenant_context(shop.tenant):
        company_settings_update(timezone_name="America/Los_Angeles", actor=shop.owner, actor_role=Role.OWNER)
    shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    late_evening = datetime(2026, 1, 2, 7, 30, tzinfo=UTC)  # 23:30 on 1 January in Los Angeles
    with tenant_context(shop.tenant):
        reprice([listing], trigger=Trigger.SCHEDULE, now=late_evening)
    state = _pricing(shop, listing)
    assert (state.day_open_date, state.day_open_price) == (date(2026, 1, 1), D("20.00"))

    shop.market(listing, offer("ACOMP1", "18.00", buy_box=True), ours="18.99")
    with tenant_context(shop.tenant):
        (same_day,) = reprice([listing], trigger=Trigger.SCHEDULE, now=late_evening + timedelta(minutes=20))
    assert same_day.inputs["history"]["day_open_price"] == "20.00"
    with tenant_context(shop.tenant):
        (next_day,) = reprice([listing], trigger=Trigger.SCHEDULE, now=late_evening + timedelta(minutes=40))
    assert next_day.inputs["history"]["day_open_price"] is None  # a new day opens at the current price
    state = _pricing(shop, listing)
    assert (state.day_open_date, state.day_open_price) == (date(2026, 1, 2), D("18.99"))


def test_units_sold_come_from_the_last_7_days_of_orders_once_orders_are_synced(shop: Shop) -> None:
    listing = shop.listing("20.00", quantity=30)
    shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    now = timezone.now()
    for days_ago, quantity, status in (
        (1, 4, Order.Status.SHIPPED),
        (3, 3, Order.Status.UNSHIPPED),
        (2, 9, Order.Status.CANCELED),
        (9, 5, Order.Status.SHIPPED),
    ):
        order = make_order(shop.connection, purchase_date=now - timedelta(days=days_ago), status=status)
        make_order_item(order, sku=listing.sku, quantity_ordered=quantity)
    with tenant_context(shop.tenant):
        (unknown,) = reprice([listing], trigger=Trigger.SCHEDULE)
        SyncCursor.objects.create(
            connection=shop.connection, kind=f"orders:{listing.marketplace_id}", updated_until=now
        )
        (known,) = reprice([listing], trigger=Trigger.SCHEDULE)
    assert unknown.inputs["listing"]["units_sold_7d"] is None
    assert unknown.inputs["listing"]["days_of_cover"] is None
    assert known.inputs["listing"]["units_sold_7d"] == 7
    assert known.inputs["listing"]["days_of_cover"] == 30.0


def test_a_failure_half_way_through_a_batch_writes_nothing(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings = [shop.listing("20.00") for _ in range(3)]
    for listing in listings:
        shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    real = pipeline.decide
    calls = []

    def dies_on_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decide", dies_on_the_second)
    with pytest.raises(SystemExit), tenant_context(shop.tenant):
        reprice(listings, trigger=Trigger.SCHEDULE)
    assert _decisions(shop) == [] and _submissions(shop) == []
    assert all(_pricing(shop, li).day_open_date is None for li in listings)
    assert task_names() == []

    monkeypatch.setattr(pipeline, "decide", real)
    with tenant_context(shop.tenant):
        assert len(reprice(listings, trigger=Trigger.SCHEDULE)) == 3
    assert len(_submissions(shop)) == 3


def test_one_companys_run_never_touches_anothers_rows(shop: Shop) -> None:
    other = make_shop("Other")
    ours, theirs = shop.listing("20.00", asin="B0SHARED01"), other.listing("20.00", asin="B0SHARED01")
    for s, listing in ((shop, ours), (other, theirs)):
        s.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    with tenant_context(other.tenant):
        reprice([theirs], trigger=Trigger.SCHEDULE)
    before = (_decisions(other), _submissions(other), _pricing(other, theirs).updated_at)

    with tenant_context(shop.tenant):
        # Even handed the other company's listing, a run sees none of its pricing, offers or history.
        result = reprice_batch([ours, theirs], trigger=Trigger.SCHEDULE)
    assert [d.listing_id for d in result.decisions] == [ours.pk]
    assert result.skipped == {"no_offers": 1}
    after = (_decisions(other), _submissions(other), _pricing(other, theirs).updated_at)
    assert [d.pk for d in before[0]] == [d.pk for d in after[0]]
    assert [(s.pk, s.status) for s in before[1]] == [(s.pk, s.status) for s in after[1]]
    assert before[2] == after[2]


def _notification(
    shop: Shop, listing: Any, *, kind: str = "ANY_OFFER_CHANGED", at: datetime, offers: list[Any]
) -> Any:
    from amazon.models import OfferChangeNotification

    with tenant_context(shop.tenant):
        return OfferChangeNotification.objects.create(
            connection=shop.connection,
            notification_id=f"n-{at.timestamp()}-{kind}",
            notification_type=kind,
            seller_id=shop.connection.selling_partner_id,
            marketplace_id=listing.marketplace_id,
            asin=listing.asin,
            item_condition="New",
            time_of_offer_change=at,
            offer_change_trigger={
                "MarketplaceId": listing.marketplace_id,
                "ASIN": listing.asin,
                "ItemCondition": "New",
            },
            offers=offers,
            received_at=at + timedelta(seconds=5),
        )


def test_a_late_notification_loses_to_a_newer_snapshot_and_pricing_health_uses_the_snapshot(
    shop: Shop,
) -> None:
    listing = shop.listing("20.00")
    snapshot = shop.market(listing, offer("ACOMP1", "19.00", buy_box=True))
    notified = [{k: v for k, v in offer("ACOMP9", "18.00", buy_box=True).items() if k != "MyOffer"}]
    fresh = _notification(shop, listing, at=snapshot.observed_at + timedelta(seconds=1), offers=notified)
    late = _notification(shop, listing, at=snapshot.observed_at - timedelta(minutes=5), offers=notified)
    health = _notification(
        shop, listing, kind="PRICING_HEALTH", at=snapshot.observed_at + timedelta(minutes=1), offers=[]
    )
    with tenant_context(shop.tenant):
        (from_fresh,) = reprice(
            [listing], trigger=Trigger.NOTIFICATION, notification_by_listing={listing.pk: fresh}
        )
        (from_late,) = reprice(
            [listing], trigger=Trigger.NOTIFICATION, notification_by_listing={listing.pk: late}
        )
        (from_health,) = reprice(
            [listing], trigger=Trigger.NOTIFICATION, notification_by_listing={listing.pk: health}
        )
    assert from_fresh.inputs["source"]["id"] == str(fresh.public_id) and from_fresh.new_price == D("17.99")
    assert from_fresh.observed_at == fresh.time_of_offer_change
    assert from_late.inputs["source"]["id"] == str(snapshot.public_id) and from_late.new_price == D("18.99")
    assert from_health.inputs["source"]["id"] == str(snapshot.public_id)
    assert [d.notification_received_at for d in (from_fresh, from_late, from_health)] == [
        fresh.received_at,
        late.received_at,
        health.received_at,
    ]
