"""Notification-to-submission latency: competitors move, Amazon notifies, we decide and send.

The whole path runs for real, in one process on this machine: the simulator (threaded werkzeug,
Amazon's throttling on, its clock following the wall clock) with S of our SKUs (default 500); its
dispatcher POSTs signed ANY_OFFER_CHANGED notifications to our intake, served by Django's WSGI
application on a threaded werkzeug server; the intake stores, de-duplicates and coalesces them and
wakes the tenant's consumer; a real Celery worker (thread pool, the Redis broker from settings) runs
the consumer (`repricing.consume_notifications`: engine decision per SKU, recorded), then
`repricing.send_submissions` (patchListingsItem, or a JSON_LISTINGS_FEED for a backlog), under our
Redis rate limiter, over HTTP to the simulator.

Load: for D seconds (default 300) a driver moves one competitor's price on a random one of our ASINs
R times a second (default 50), each move making the simulator send one notification. After the load,
up to 120 s of drain. Measured from our own records: notifications received (stored rows), decided
(rows processed; several notifications for one SKU within the coalescing window make one decision),
decisions, changes submitted; latency = submission sent - notification received at our intake
(p50/p99), and notification received -> decision recorded. "Lost" = received rows never processed.

The rule is the demo's (beat the Buy Box by a cent, 60 s cooldown, step and daily limits), so most
notifications end in a decision and a fair share in a price change; Amazon's rate limits (patch 5/s,
createFeed one per 2 minutes after a burst of 15) bound how fast changes can leave.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from decimal import Decimal
from typing import Any

import psycopg

from benchmarks.amazon_orders import _connection, _drop
from benchmarks.amazon_tokens import _django, setup_database
from benchmarks.rls_cost import _url, machine_info

SECRET = "bench-notifications-secret"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ticker(market: Any, stop: threading.Event) -> None:
    last = time.monotonic()
    while not stop.wait(0.2):
        now = time.monotonic()
        market.clock.advance(now - last)
        last = now


def _driver(market: Any, asins: list[tuple[str, str]], rate: float, seconds: float, sent: list[int]) -> None:
    rng = random.Random(5)
    started = time.monotonic()
    n = 0
    while True:
        due = started + n / rate
        now = time.monotonic()
        if now - started >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        marketplace_id, asin = rng.choice(asins)
        if market.competitor_move(marketplace_id, asin, Decimal(str(round(rng.uniform(0.96, 1.03), 3)))):
            sent[0] += 1
        n += 1


def bench(skus: int, rate: float, seconds: float, workers: int) -> None:
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.test.utils import override_settings
    from werkzeug.serving import make_server

    from accounts.models import User
    from amazon.models import Listing, OfferChangeNotification
    from amazon.services import seller_route_sync
    from amazon.simulator.market import Market
    from amazon.simulator.notifications import NotificationDispatcher
    from amazon.simulator.testing import start_simulator
    from amazon.sync import sync_listings
    from config.celery import app
    from repricing.demo import seed_demo_repricing
    from repricing.models import PriceSubmission
    from tenants.context import tenant_context
    from tenants.models import Tenant

    market = Market.demo(seed=7, skus=skus, throttling=True)
    sim = start_simulator(market)
    intake = make_server("127.0.0.1", 0, WSGIHandler(), threaded=True)
    threading.Thread(target=intake.serve_forever, daemon=True).start()
    intake_url = f"http://127.0.0.1:{intake.server_port}/amazon/notifications"
    stop = threading.Event()
    threading.Thread(target=_ticker, args=(market, stop), daemon=True).start()
    dispatcher = NotificationDispatcher(market)

    def close_connections(**_: Any) -> None:
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with override_settings(
            LWA_TOKEN_URL=sim.lwa_url,
            SP_API_ENDPOINT=sim.base_url,
            AMAZON_NOTIFICATIONS_SECRET=SECRET,
            ALLOWED_HOSTS=["*"],
        ):
            tenant = Tenant.objects.create(
                name="bench latency", slug=f"bench-latency-{random.randint(0, 10**9)}"
            )
            user = User.objects.create_user(email=f"bench-{tenant.slug}@example.com", password=None)
            connection = _connection(tenant, sim)
            with tenant_context(tenant):
                seller_route_sync(connection)
                sync_listings(connection=connection, triggered_by="bench")
                print(f"  setup        {seed_demo_repricing(connection=connection, user=user)}")
                asins = sorted(set(Listing.objects.values_list("marketplace_id", "asin")))
            market.subscribe(intake_url, secret=SECRET)
            dispatcher.start()
            sent = [0]
            with start_worker(
                app,
                pool="threads",
                concurrency=workers,
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=60,
            ):
                print(
                    f"  load         {rate:g} competitor moves/s on {len(asins)} ASINs for {seconds:g} s ..."
                )
                started = time.monotonic()
                _driver(market, asins, rate, seconds, sent)
                load_seconds = time.monotonic() - started
                dispatcher.flush(timeout=30)
                drain_started = time.monotonic()
                while time.monotonic() - drain_started < 120:
                    with tenant_context(tenant):
                        open_rows = OfferChangeNotification.objects.filter(processed_at__isnull=True).count()
                        queued = PriceSubmission.objects.filter(
                            status__in=[PriceSubmission.Status.QUEUED, PriceSubmission.Status.SENDING]
                        ).count()
                    if not open_rows and not queued:
                        break
                    time.sleep(1)
                drain_seconds = time.monotonic() - drain_started
            report(tenant, sent[0], load_seconds, drain_seconds)
    finally:
        task_postrun.disconnect(close_connections)
        stop.set()
        dispatcher.stop()
        intake.shutdown()
        sim.server.stop()


def report(tenant: Any, moves: int, load_seconds: float, drain_seconds: float) -> None:
    from amazon.models import OfferChangeNotification
    from repricing.models import PriceDecision, PriceSubmission
    from tenants.context import tenant_context

    with tenant_context(tenant):
        received = OfferChangeNotification.objects.count()
        processed = OfferChangeNotification.objects.filter(processed_at__isnull=False).count()
        decisions = list(
            PriceDecision.objects.filter(trigger=PriceDecision.Trigger.NOTIFICATION).values_list(
                "notification_received_at", "decided_at", "action", "submit"
            )
        )
        submissions = list(
            PriceSubmission.objects.filter(decision__trigger=PriceDecision.Trigger.NOTIFICATION).values_list(
                "decision__notification_received_at", "sent_at", "status", "channel"
            )
        )
    decide_ms = [(d - r).total_seconds() * 1000 for r, d, _, _ in decisions if r]
    send_ms = [(s - r).total_seconds() * 1000 for r, s, _, _ in submissions if r and s]
    changes = sum(1 for _, _, action, submit in decisions if action == "change" and submit)
    statuses: dict[str, int] = {}
    channels: dict[str, int] = {}
    for _, _, status, channel in submissions:
        statuses[status] = statuses.get(status, 0) + 1
        channels[channel] = channels.get(channel, 0) + 1
    print(f"  moves        {moves:,} competitor moves in {load_seconds:.0f} s ({moves / load_seconds:.1f}/s)")
    print(f"  received     {received:,} notifications stored by the intake")
    lost = received - processed
    print(f"  decided      {processed:,} processed ({lost:,} lost), {len(decisions):,} decisions")
    print(
        f"  submitted    {len(send_ms):,} prices sent of {changes:,} changes decided; {statuses}; {channels}"
    )
    print(f"  drain        {drain_seconds:.0f} s after the load stopped")
    for label, values in (("received -> decided", decide_ms), ("received -> sent   ", send_ms)):
        print(f"  latency      {label}  p50 {_pct(values, 0.5):,.0f} ms  p99 {_pct(values, 0.99):,.0f} ms")


def run(args: argparse.Namespace) -> None:
    for name in ("werkzeug", "amazon", "repricing", "celery"):
        logging.getLogger(name).setLevel(logging.WARNING)  # a line per request or task otherwise
    scratch = args.latency_database
    owner_url = _url("DATABASE_OWNER_URL")
    print("\nNotification-to-submission latency")
    with psycopg.connect(owner_url) as conn:
        for line in machine_info(conn):
            print("  " + line)
    print(f"  setup        scratch database {scratch!r} migrated in {setup_database(scratch):.1f} s")
    try:
        _django()
        bench(args.latency_skus, args.latency_rate, args.latency_seconds, args.latency_workers)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _drop(owner_url, scratch)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency-seconds", type=float, default=300, help="load duration (default 300)")
    parser.add_argument("--latency-rate", type=float, default=50, help="competitor moves per second")
    parser.add_argument("--latency-skus", type=int, default=500, help="our SKUs in the simulator")
    parser.add_argument("--latency-workers", type=int, default=4, help="Celery worker threads")
    parser.add_argument(
        "--latency-database", default="sellerpilot_bench_latency", help="scratch database (dropped)"
    )
