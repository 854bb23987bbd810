"""At most once, never lost: two senders at the same time, a worker killed between marking a price
`sending` and Amazon's answer, and a 429 storm from the simulator with its throttling on."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django import db
from django.test import override_settings

from amazon import ratelimit
from config.redis import redis_client
from repricing import submission
from repricing.models import PriceSubmission
from repricing.submission import UNKNOWN_APPLIED, UNKNOWN_WATCHING
from repricing.tests.test_submission import Shop, open_shop, sim, working_for
from repricing.tests.test_submission import simulator as simulator  # the fixture `sim` needs

pytestmark = pytest.mark.django_db(transaction=True)

S = PriceSubmission.Status
__all__ = ["sim", "simulator"]


@pytest.fixture
def shop(sim: Any) -> Shop:
    return open_shop(sim)


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: no `except Exception` of ours sees it."""


def _sent_skus(shop: Shop) -> Counter[str]:
    """SKU -> how many price changes for it reached Amazon (patches answered 200, feed messages)."""
    reached: Counter[str] = Counter(r.path.rsplit("/", 1)[1] for r in shop.patches())
    for feed in shop.market.feeds.values():
        document = json.loads(shop.market.documents[feed.input_document_id].content)
        reached.update(message["sku"] for message in document["messages"])
    return reached


@pytest.mark.parametrize("patch_max", [20, 3], ids=["patches", "feeds"])
def test_two_senders_at_once_send_each_decision_once(shop: Shop, patch_max: int) -> None:
    skus = shop.skus(12)
    rows = [shop.queue(sku, shop.reference_price(sku) + Decimal("0.13")) for sku in skus]
    start = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            with working_for(shop.tenant):
                start.wait()
                results.append(submission.send_submissions())
        except BaseException as error:
            errors.append(error)
        finally:
            db.connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    with override_settings(REPRICING_PATCH_MAX=patch_max):  # settings are process-wide: set once
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert sum(r.get("sent", 0) for r in results) == 12
    assert _sent_skus(shop) == Counter(dict.fromkeys(skus, 1))
    for row in rows:
        stored = shop.row(row.pk)
        assert stored.attempts == 1
        assert stored.status in (S.ACCEPTED, S.SENDING) and stored.amazon_reference


def test_a_worker_killed_after_its_patch_left_never_resends_and_finds_the_outcome(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = shop.skus(2)
    row = shop.queue(first, shop.reference_price(first) + Decimal("0.42"))
    other = shop.queue(second, shop.reference_price(second) + Decimal("0.43"))
    original = submission.SpApiClient.call

    def killed_after_sending(self: Any, operation: str, send: Any) -> Any:
        answer = original(self, operation, send)
        if operation == "patchListingsItem":
            raise WorkerKilled  # Amazon accepted it; we never learnt so
        return answer

    monkeypatch.setattr(submission.SpApiClient, "call", killed_after_sending)
    with pytest.raises(WorkerKilled):
        shop.send()
    monkeypatch.undo()
    in_doubt = shop.row(row.pk)
    assert (in_doubt.status, in_doubt.amazon_reference, in_doubt.attempts) == (S.SENDING, "", 1)
    assert shop.row(other.pk).status == S.QUEUED  # not claimed before the kill: not lost

    # The task is redelivered (acks_late) and runs again: the row in doubt is not sent a second time.
    assert shop.send() == {"sent": 1, "accepted": 1}
    assert len(shop.patches(first)) == 1
    assert shop.row(other.pk).status == S.ACCEPTED

    assert shop.follow_up() == {"waiting": 1}  # too fresh to be in doubt: a worker may still be on it
    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up(later=timedelta(minutes=11)) == {"applied": 2}
    found = shop.row(row.pk)
    assert found.status == S.APPLIED and found.error == UNKNOWN_APPLIED and found.finished_at is not None
    assert shop.on_amazon(first).price == row.price
    assert len(shop.patches(first, status=None)) == 1


def test_a_worker_killed_before_its_patch_left_ends_failed_and_is_never_sent(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sku,) = shop.skus(1)
    before = shop.on_amazon(sku).price
    row = shop.queue(sku, before + Decimal("0.77"))
    original = submission.SpApiClient.call

    def killed_before_sending(self: Any, operation: str, send: Any) -> Any:
        if operation == "patchListingsItem":
            raise WorkerKilled  # marked sending (committed), the request never left
        return original(self, operation, send)

    monkeypatch.setattr(submission.SpApiClient, "call", killed_before_sending)
    with pytest.raises(WorkerKilled):
        shop.send()
    monkeypatch.undo()
    assert shop.row(row.pk).status == S.SENDING
    assert shop.send() == {}

    shop.advance(shop.market.patch_delay_seconds + 1)
    assert shop.follow_up(later=timedelta(minutes=11)) == {"waiting": 1}
    watched = shop.row(row.pk)
    assert watched.status == S.SENDING and watched.error == UNKNOWN_WATCHING
    assert shop.follow_up(later=timedelta(minutes=75)) == {"failed": 1}
    failed = shop.row(row.pk)
    assert failed.status == S.FAILED and failed.finished_at is not None
    assert "Outcome unknown" in failed.error and "not sent again" in failed.error
    assert shop.patches(status=None) == []
    assert shop.on_amazon(sku).price == before


def test_amazon_unavailable_after_the_patch_may_have_arrived_is_not_retried(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sku,) = shop.skus(1)
    row = shop.queue(sku, shop.reference_price(sku))
    shop.market.fail_next("patchListingsItem", 1, status=503)
    assert shop.send() == {"unknown": 1}
    doubtful = shop.row(row.pk)
    assert doubtful.status == S.SENDING and doubtful.error.startswith(UNKNOWN_WATCHING)
    assert len(shop.patches(sku, status=None)) == 1  # the client did not send a write twice
    assert shop.send() == {}


@override_settings(SP_API_RETRY_BUDGET_SECONDS=1.5, SP_API_MAX_ATTEMPTS=3)
def test_a_429_storm_leaves_prices_queued_and_each_is_sent_once(sim: Any) -> None:
    shop = open_shop(sim)
    market = shop.market
    market.throttling = True  # Amazon's buckets, on the simulator's clock: frozen until advanced
    skus = shop.skus(8)
    rows = [shop.queue(sku, shop.reference_price(sku) + Decimal("0.25")) for sku in skus]

    counts = shop.send()
    burst = 5  # patchListingsItem: 5/s, burst 5
    assert counts == {"sent": burst, "accepted": burst, "deferred": len(skus) - burst}
    assert market.stats.throttled["patchListingsItem"] >= 1
    for row in rows[burst:]:
        waiting = shop.row(row.pk)
        assert waiting.status == S.QUEUED and waiting.sent_at is None  # not failed
    throttled = shop.row(rows[burst].pk)
    assert throttled.attempts == 1 and "quota" in throttled.error
    assert ratelimit.quota_state(shop.connection).throttled_recently >= 1

    market.clock.advance(2)  # Amazon's bucket refills
    assert shop.send() == {"sent": 3, "accepted": 3}
    assert all(shop.row(r.pk).status == S.ACCEPTED for r in rows)
    assert _sent_skus(shop) == Counter(dict.fromkeys(skus, 1))
    assert len(shop.patches(status=429)) >= 1


@override_settings(REPRICING_PATCH_MAX=2, SP_API_RETRY_BUDGET_SECONDS=1.5, SP_API_MAX_ATTEMPTS=2)
def test_a_429_on_create_feed_leaves_the_feed_queued(shop: Shop) -> None:
    skus = shop.skus(4)
    rows = [shop.queue(sku, shop.reference_price(sku)) for sku in skus]
    shop.market.fail_next("createFeed", 1, status=429)
    counts = shop.send()
    assert counts == {"deferred": 4}
    assert all(shop.row(r.pk).status == S.QUEUED for r in rows)
    assert shop.market.feeds == {}
    calls = shop.market.stats.calls["createFeed"]
    # Our bucket now holds createFeed back for Amazon's 1 per 2 minutes: no call, still queued.
    assert shop.send() == {"deferred": 4}
    assert shop.market.stats.calls["createFeed"] == calls
    redis_client().delete(f"rl:{{{shop.connection.public_id}}}:bucket:createFeed")  # two minutes later
    assert shop.send() == {"sent": 4}
    assert len(shop.market.feeds) == 1
    assert _sent_skus(shop) == Counter(dict.fromkeys(skus, 1))
