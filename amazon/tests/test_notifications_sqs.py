"""The SQS transport of the notifications intake (amazon/notifications_sqs.py, `manage.py
consume_notifications`) end to end over real HTTP: a competitor moves in the simulator, Amazon (the
simulator's Notifications API) puts the notification on the subscribed SQS queue, the consumer stores it
through the intake's one path (OfferChangeNotification + the repricing pending entry) in the right tenant
only, and deletes the message only once its rows are committed; poison is counted and moved aside, never
stored, never fatal; SIGTERM stops the command after the receive in flight."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, transaction
from django.test import override_settings

from accounts.roles import Role
from amazon.models import OfferChangeNotification, SellerConnection
from amazon.notifications import notification_counts, repricing_pending
from amazon.notifications_sqs import NotConfigured, NotificationsConsumer, sqs_client
from amazon.services import seller_route_sync
from amazon.simulator.market import DEMO_SELLER_ID, US, Market
from amazon.simulator.notifications import any_offer_changed
from amazon.simulator.sqs import DEFAULT_QUEUE_NAME
from amazon.tests.factories import make_connection
from amazon.tests.sqs_world import connect, queue_url, reload, sqs, sqs_settings, tasks_run_when_sent
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

DLQ = f"{DEFAULT_QUEUE_NAME}-dlq"
OTHER_SELLER = "A2OTHERSELLER9Z"


class Crash(BaseException):
    """The process dies (SIGKILL, OOM): nothing after this point runs."""


def _rows(tenant: Tenant) -> list[OfferChangeNotification]:
    with tenant_context(tenant):
        return list(OfferChangeNotification.objects.order_by("id"))


def _our_asin(market: Market) -> str:
    """An ASIN the demo seller lists in the US that has competitors."""
    for (seller, marketplace, _sku), listing in sorted(market.listings.items()):
        if seller == DEMO_SELLER_ID and marketplace == US and market.competitors.get((US, listing.asin)):
            return listing.asin
    raise AssertionError("the demo market has no contested ASIN")


def _consumer(**kwargs: Any) -> NotificationsConsumer:
    return NotificationsConsumer(wait_seconds=0, **kwargs)


def _on_queue(simulator: Any, name: str = DEFAULT_QUEUE_NAME) -> list[str]:
    return sqs(simulator).visible_bodies(name)


@pytest.fixture
def world(simulator: Any) -> Any:
    """Company Alpha connected to the simulator's demo seller, subscribed (our queue as destination)."""
    tenant = make_tenant("Alpha")
    owner = make_member(tenant, Role.OWNER)
    with sqs_settings(simulator), tasks_run_when_sent():
        connection = reload(tenant, connect(simulator, tenant, owner))
        assert set(connection.notifications_subscriptions) == {"ANY_OFFER_CHANGED", "PRICING_HEALTH"}
        yield simulator, tenant, connection


def test_a_competitor_move_reaches_the_intake_through_sqs(world: Any) -> None:
    simulator, tenant, connection = world
    market = simulator.market
    asin = _our_asin(market)

    market.competitor_move(US, asin, Decimal("0.93"))

    (body,) = _on_queue(simulator)
    message = json.loads(body)
    assert message["NotificationType"] == "ANY_OFFER_CHANGED"
    assert (
        message["NotificationMetadata"]["SubscriptionId"]
        == (connection.notifications_subscriptions["ANY_OFFER_CHANGED"])
    )
    counts = _consumer().run(max_polls=2)

    (row,) = _rows(tenant)
    assert (row.asin, row.marketplace_id, row.seller_id) == (asin, US, DEMO_SELLER_ID)
    assert row.connection_id == connection.pk
    assert row.notification_id == message["NotificationMetadata"]["NotificationId"]
    assert row.summary == message["Payload"]["AnyOfferChangedNotification"]["Summary"]
    entry = repricing_pending(tenant.pk)[f"{US}:{asin}"]
    assert entry["notification"] == str(row.public_id) and entry["kind"] == "ANY_OFFER_CHANGED"
    assert _on_queue(simulator) == []  # deleted
    assert (counts.received, counts.accepted, counts.deleted, counts.polls) == (1, 1, 1, 2)
    recorded = notification_counts()
    assert recorded["accepted"] == 1 and recorded["sqs_received"] == 1 and recorded["sqs_deleted"] == 1


def test_a_message_is_deleted_only_after_its_rows_are_committed(world: Any) -> None:
    simulator, tenant, _ = world
    simulator.market.competitor_move(US, _our_asin(simulator.market), Decimal("0.9"))
    seen_at_delete: dict[str, Any] = {}
    consumer = _consumer()

    def die_before_deleting(messages: list[dict[str, Any]]) -> None:
        seen_at_delete["in_transaction"] = transaction.get_connection().in_atomic_block
        seen_at_delete["rows"] = len(_rows(tenant))
        raise Crash

    consumer.delete = die_before_deleting  # type: ignore[method-assign]
    with pytest.raises(Crash):
        consumer.run(max_polls=1)
    assert seen_at_delete == {"in_transaction": False, "rows": 1}  # committed before any delete
    assert len(_on_queue(simulator)) == 1  # in flight, not deleted

    assert _consumer().run(max_polls=1).received == 0  # invisible until its visibility timeout ends
    redis_client().flushdb()  # even without the Redis fast path: the database constraint de-duplicates
    sqs(simulator).advance(31)
    counts = _consumer().run(max_polls=1)

    assert (counts.received, counts.duplicate, counts.accepted, counts.deleted) == (1, 1, 0, 1)
    assert len(_rows(tenant)) == 1
    assert _on_queue(simulator) == []


def test_poison_is_counted_never_stored_and_goes_to_the_dead_letter_queue(world: Any) -> None:
    simulator, tenant, _ = world
    client = sqs_client()
    url = queue_url(simulator)
    client.send_message(QueueUrl=url, MessageBody="this is not JSON {")
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"NotificationType": "ANY_OFFER_CHANGED"}))
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"NotificationType": "ORDER_CHANGE"}))
    simulator.market.competitor_move(US, _our_asin(simulator.market), Decimal("0.9"))

    consumer = _consumer()
    counts = consumer.run(max_polls=1)

    assert consumer.dead_letter_queue is True  # the default queue has a redrive policy
    assert (counts.received, counts.accepted, counts.poison_left, counts.deleted) == (4, 1, 3, 1)
    assert len(_rows(tenant)) == 1
    recorded = notification_counts()
    assert recorded["refused_malformed_request"] == 1
    assert recorded["refused_validation_error"] == 1
    assert recorded["refused_unsupported_notification"] == 1
    assert recorded["sqs_poison_left"] == 3

    # Left alone, they come back until SQS's redrive policy (5 receives) moves them aside.
    for _ in range(10):
        if not _on_queue(simulator):
            break
        sqs(simulator).advance(31)
        consumer.poll_once()
    assert _on_queue(simulator) == []
    assert len(_on_queue(simulator, DLQ)) == 3
    assert consumer.counts.poison_left == 3 * 5 and consumer.counts.poison_deleted == 0
    assert len(_rows(tenant)) == 1


def test_without_a_dead_letter_queue_poison_is_deleted_after_n_receives(world: Any) -> None:
    simulator, tenant, _ = world
    client = sqs_client()
    url = client.create_queue(QueueName="plain-notifications")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="[1, 2, 3]")
    consumer = _consumer(queue_url=url, max_receives=3)

    consumer.run(max_polls=1)
    assert consumer.dead_letter_queue is False
    for _ in range(2):
        sqs(simulator).advance(31)
        consumer.poll_once()

    assert (consumer.counts.poison_left, consumer.counts.poison_deleted, consumer.counts.deleted) == (2, 1, 1)
    assert _on_queue(simulator, "plain-notifications") == []
    assert _rows(tenant) == []


def test_a_notification_for_another_companys_seller_reaches_only_that_company(world: Any) -> None:
    simulator, tenant, _ = world
    other = make_tenant("Beta")
    theirs = make_connection(other, selling_partner_id=OTHER_SELLER)
    seller_route_sync(theirs)
    market = simulator.market
    asin = _our_asin(market)
    with market.lock:
        for_them = any_offer_changed(market, OTHER_SELLER, US, asin, 10_001)
        for_us = any_offer_changed(market, DEMO_SELLER_ID, US, asin, 10_002)
    client = sqs_client()
    for payload in (for_them, for_us):
        client.send_message(QueueUrl=queue_url(simulator), MessageBody=json.dumps(payload))

    counts = _consumer().run(max_polls=1)

    assert counts.accepted == 2
    (their_row,) = _rows(other)
    assert their_row.seller_id == OTHER_SELLER and their_row.connection_id == theirs.pk
    (our_row,) = _rows(tenant)
    assert our_row.seller_id == DEMO_SELLER_ID
    assert our_row.notification_id != their_row.notification_id
    assert set(repricing_pending(other.pk)) == {f"{US}:{asin}"}
    assert set(repricing_pending(tenant.pk)) == {f"{US}:{asin}"}


def test_a_failure_on_our_side_leaves_the_message_for_redelivery(world: Any) -> None:
    simulator, tenant, _ = world
    simulator.market.competitor_move(US, _our_asin(simulator.market), Decimal("0.9"))
    with mock.patch(
        "amazon.notifications_sqs.notification_intake", side_effect=OperationalError("the database is down")
    ):
        counts = _consumer().run(max_polls=1)
    assert (counts.received, counts.failed, counts.deleted) == (1, 1, 0)
    assert _rows(tenant) == []
    assert len(_on_queue(simulator)) == 1

    sqs(simulator).advance(31)
    assert _consumer().run(max_polls=1).accepted == 1
    assert len(_rows(tenant)) == 1 and _on_queue(simulator) == []


def test_an_unreadable_queue_is_counted_and_backed_off_not_fatal(world: Any) -> None:
    simulator, _, _ = world
    consumer = _consumer(queue_url=queue_url(simulator, "no-such-queue"))
    started = time.monotonic()
    counts = consumer.run(max_polls=2)
    assert counts.receive_failed == 2 and counts.received == 0
    assert time.monotonic() - started >= 1.0  # backed off between the failures
    assert notification_counts()["sqs_receive_failed"] == 2


def test_sigterm_stops_the_command_after_the_receive_in_flight(world: Any) -> None:
    simulator, tenant, _ = world
    market = simulator.market
    asin = _our_asin(market)

    def amazon_meanwhile() -> None:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # while the command waits in its long poll
        time.sleep(0.3)
        market.competitor_move(US, asin, Decimal("0.9"))  # arrives in that same long poll

    out = io.StringIO()
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=amazon_meanwhile)
    with override_settings(AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS=5):
        thread.start()
        started = time.monotonic()
        call_command("consume_notifications", stdout=out)
    thread.join()

    assert time.monotonic() - started < 5  # the poll ended with the message, then it stopped
    assert "SIGTERM" in out.getvalue() and "stopped (" in out.getvalue()
    assert len(_rows(tenant)) == 1  # the message in flight was stored...
    assert _on_queue(simulator) == []  # ... and deleted
    assert signal.getsignal(signal.SIGTERM) is before  # the command put the handler back


def test_the_command_refuses_to_start_without_a_queue(simulator: Any) -> None:
    with sqs_settings(simulator, AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""):
        with pytest.raises(CommandError, match="AMAZON_NOTIFICATIONS_SQS_QUEUE_URL"):
            call_command("consume_notifications", "--max-polls", "1")
        with pytest.raises(NotConfigured):
            NotificationsConsumer()


def test_the_consumer_refuses_to_run_inside_a_transaction(world: Any) -> None:
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a transaction"):
        _consumer().run(max_polls=1)


def test_a_disconnected_accounts_notifications_are_dropped(world: Any) -> None:
    simulator, tenant, connection = world
    with tenant_context(tenant):
        SellerConnection.objects.filter(pk=connection.pk).update(status=SellerConnection.Status.DISCONNECTED)
    seller_route_sync(reload(tenant, connection))  # what disconnecting does (its unsubscribe may lag)
    simulator.market.competitor_move(US, _our_asin(simulator.market), Decimal("0.9"))

    counts = _consumer().run(max_polls=1)

    assert (counts.received, counts.deleted) == (1, 1)  # accepted and dropped, not left to circulate
    assert _rows(tenant) == []
    assert notification_counts()["unrouted"] == 1


def test_unconfigured_the_compose_service_idles_until_sigterm(simulator: Any) -> None:
    out = io.StringIO()
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with sqs_settings(simulator, AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""):
        timer.start()
        call_command("consume_notifications", "--idle-if-unconfigured", stdout=out)
    timer.join()
    assert "idle until stopped" in out.getvalue() and "SIGTERM" in out.getvalue()
