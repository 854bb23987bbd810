"""The shared Redis token bucket: burst then refusal, refill, one bucket for many workers, header
adjustment, 429 bookkeeping. Real Redis; no database needed."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from amazon import ratelimit
from amazon.ratelimit import Throttled, acquire, observe_rate_limit, quota_state, record_throttle


@pytest.fixture
def conn() -> str:
    return str(uuid.uuid4())


def _drain(conn: str, operation: str) -> int:
    taken = 0
    while True:
        try:
            acquire(conn, operation, timeout=0)
        except Throttled:
            return taken
        taken += 1


def test_burst_then_refusal(conn: str) -> None:
    assert _drain(conn, "getListingsItem") == 10  # published burst 10
    with pytest.raises(Throttled) as caught:
        acquire(conn, "getListingsItem", timeout=0)
    assert 0 < caught.value.retry_after <= 0.2 + 0.01  # 5/s: the next token within 0.2 s


def test_buckets_are_per_connection_and_operation(conn: str) -> None:
    _drain(conn, "getItemOffers")
    acquire(conn, "getListingOffers", timeout=0)  # another operation: its own bucket
    acquire(str(uuid.uuid4()), "getItemOffers", timeout=0)  # another seller: its own bucket


def test_refill_over_time(conn: str) -> None:
    _drain(conn, "getListingsItem")
    time.sleep(0.45)  # 5/s -> two tokens
    assert _drain(conn, "getListingsItem") == 2


def test_acquire_waits_for_its_token(conn: str) -> None:
    _drain(conn, "getListingsItem")
    started = time.monotonic()
    waited = acquire(conn, "getListingsItem", timeout=1)
    elapsed = time.monotonic() - started
    assert 0.1 < waited <= 0.21
    assert 0.1 < elapsed < 0.5


def test_refused_waits_take_nothing(conn: str) -> None:
    _drain(conn, "getItemOffers")  # 0.5/s: the next token in 2 s
    with pytest.raises(Throttled):
        acquire(conn, "getItemOffers", timeout=0.5)
    with pytest.raises(Throttled) as caught:
        acquire(conn, "getItemOffers", timeout=0)
    assert caught.value.retry_after > 1.5  # the refused attempt did not push the next token later


def test_many_workers_share_one_bucket(conn: str) -> None:
    operation = "getListingOffers"  # 1/s, burst 2
    barrier = threading.Barrier(20)
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            acquire(conn, operation, timeout=0)
        except Throttled:
            return
        with lock:
            granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 2


def test_waiting_workers_are_spaced_at_the_rate(conn: str) -> None:
    operation = "getListingsItem"  # 5/s, burst 10
    _drain(conn, operation)
    times: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()

    def worker() -> None:
        acquire(conn, operation, timeout=5)
        with lock:
            times.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    # 5 tokens at 5/s after an empty bucket: due at 0.2, 0.4, ... 1.0 s, never faster than the rate.
    assert times[-1] >= 0.95
    assert all(b - a > 0.1 for a, b in itertools.pairwise(times))


def test_the_rate_limit_header_adjusts_the_refill(conn: str) -> None:
    operation = "getItemOffers"  # published 0.5/s
    _drain(conn, operation)
    observe_rate_limit(conn, operation, "10.0")
    time.sleep(0.15)  # at 10/s a token is back after 0.1 s (at 0.5/s it would take 2 s)
    acquire(conn, operation, timeout=0)
    state = {q.operation: q for q in quota_state(conn).operations}
    assert state[operation].rate == 10.0 and state[operation].published_rate == 0.5
    observe_rate_limit(conn, operation, "garbage")  # ignored
    observe_rate_limit(conn, operation, None)
    assert {q.operation: q for q in quota_state(conn).operations}[operation].rate == 10.0


def test_a_429_empties_the_bucket_and_is_counted(conn: str) -> None:
    operation = "getListingsItem"
    acquire(conn, operation, timeout=0)
    record_throttle(conn, operation)
    record_throttle(conn, "getItemOffers")
    with pytest.raises(Throttled):
        acquire(conn, operation, timeout=0)
    state = quota_state(conn)
    assert state.throttled_recently == 2
    by_op = {q.operation: q for q in state.operations}
    assert by_op[operation].throttled_recently == 1 and by_op[operation].burst == 10
    assert by_op[operation].tokens < 1
    assert quota_state(str(uuid.uuid4())).throttled_recently == 0


def test_quota_state_reads_without_taking(conn: str) -> None:
    acquire(conn, "getListingsItem", timeout=0)
    before = quota_state(conn).operations[0].tokens
    after = quota_state(conn).operations[0].tokens
    assert 9 <= before <= after <= 10


def test_the_table_matches_the_simulators_usage_plans() -> None:
    from amazon.simulator.rates import USAGE_PLANS

    for operation, (rate, burst) in USAGE_PLANS.items():
        assert ratelimit.OPERATION_LIMITS[operation] == (float(rate), burst), operation
