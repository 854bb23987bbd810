"""Notification-to-submission latency: competitors move, Amazon notifies, we decide and send.

The whole product runs as `make run` runs it, each part its own process on this 2-core machine: the
simulator (`python -m amazon.simulator`, Amazon's throttling on, its clock on the wall clock, S of our
SKUs, default 500), gunicorn serving the intake (2 workers), one Celery worker (prefork, concurrency
2) and one beat, all on the scratch database and the Redis from settings. The simulator POSTs signed
ANY_OFFER_CHANGED notifications to our intake (8 deliveries at once, as SQS feeds several consumers);
the intake stores, de-duplicates and coalesces them and wakes the tenant's consumer
(`repricing.consume_notifications`: an engine decision per SKU, recorded), which queues prices for
`repricing.send_submissions` (patchListingsItem, or a JSON_LISTINGS_FEED for a backlog) under our Redis
rate limiter.

Load: for D seconds (default 300) a driver asks the simulator R times a second (default 50) to move one
competitor's price on a random one of our ASINs; each move makes the simulator send one notification.
Then up to 180 s of drain. Counted from our own records: notifications the simulator sent, stored by
the intake, processed (several for one SKU within the coalescing window make one decision), decisions,
changes, prices sent; "left over" = stored rows never processed. Latency: notification received at our
intake -> decision recorded, and -> price sent to Amazon (p50/p99).

The rule is the demo's (beat the Buy Box by a cent, 60 s cooldown, step and daily limits). Amazon's rate
limits (patch 5/s; createFeed one per 2 minutes after a burst of 15) bound how fast changes can leave.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _driver(sim_url: str, asins: list[tuple[str, str]], rate: float, seconds: float) -> int:
    import httpx

    rng = random.Random(5)
    moved = 0
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            due = started + n / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            marketplace_id, asin = rng.choice(asins)
            factor = round(rng.uniform(0.96, 1.03), 3)
            answer = client.post(
                "/_simulator/competitor-move",
                json={"marketplace_id": marketplace_id, "asin": asin, "factor": factor},
            )
            moved += bool(answer.json().get("moved"))
            n += 1
    return moved


def bench(skus: int, rate: float, seconds: float, workers: int) -> None:
    from types import SimpleNamespace

    from django.conf import settings
    from django.db.models import Q
    from django.test.utils import override_settings

    from accounts.models import User
    from amazon.models import Listing, OfferChangeNotification
    from amazon.services import seller_route_sync
    from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_SELLER_ID
    from amazon.sync import sync_listings
    from repricing.demo import seed_demo_repricing
    from repricing.models import PriceSubmission
    from tenants.context import tenant_context
    from tenants.models import Tenant

    sim_port, web_port = _free_port(), _free_port()
    sim_url, web_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{web_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SIMULATOR_URL": sim_url,
        "SP_API_ENDPOINT": sim_url,
        "LWA_TOKEN_URL": f"{sim_url}/auth/o2/token",
        "AMAZON_NOTIFICATIONS_SECRET": SECRET,
    }
    python = sys.executable
    seed = 7
    queues = ",".join(settings.CELERY_TASK_QUEUES_NAMES)
    schedule = tempfile.mkdtemp(prefix="bench-beat-")
    commands = {
        "simulator": [
            python, "-m", "amazon.simulator", f"--port={sim_port}", f"--seed={seed}", f"--skus={skus}",
            f"--notify={web_url}/amazon/notifications", f"--notify-secret={SECRET}", "--notify-threads=8",
        ],
        "web": [
            python, "-m", "gunicorn", "config.wsgi:application", f"--bind=127.0.0.1:{web_port}",
            "--workers=2", "--no-control-socket", "--log-level=warning",
        ],
        "worker": [
            python, "-m", "celery", "--app=config", "worker", f"--queues={queues}",
            f"--concurrency={workers}", "--loglevel=WARNING", f"--hostname=bench-{web_port}@localhost",
        ],
        "beat": [
            python, "-m", "celery", "--app=config", "beat", f"--schedule={schedule}/schedule",
            f"--pidfile={schedule}/beat.pid", "--loglevel=WARNING",
        ],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        processes["simulator"] = subprocess.Popen(
            commands["simulator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(f"{sim_url}/_simulator/state")
        creds = {"lwa_app_id": DEMO_CLIENT_ID, "lwa_client_secret": DEMO_CLIENT_SECRET}
        sim = SimpleNamespace(
            seller_id=DEMO_SELLER_ID, credentials={**creds, "refresh_token": DEMO_REFRESH_TOKEN}
        )
        with override_settings(LWA_TOKEN_URL=env["LWA_TOKEN_URL"], SP_API_ENDPOINT=sim_url):
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
        for name in ("web", "worker", "beat"):
            processes[name] = subprocess.Popen(commands[name], env=env)
        _wait_for(f"{web_url}/healthz")
        time.sleep(3)  # the worker's pool up
        print(
            f"  processes    simulator (seed {seed}), gunicorn (2 workers), "
            f"Celery worker (concurrency {workers}), beat"
        )
        print(f"  load         {rate:g} competitor moves/s on {len(asins)} ASINs for {seconds:g} s ...")
        started = time.monotonic()
        moves = _driver(sim_url, asins, rate, seconds)
        load_seconds = time.monotonic() - started
        drain_started = time.monotonic()
        while time.monotonic() - drain_started < 180:
            with tenant_context(tenant):
                open_rows = OfferChangeNotification.objects.filter(processed_at__isnull=True).count()
                # Not yet at Amazon: queued, or sending without Amazon's answer (a sent feed waits in
                # `sending` with its feed id until Amazon has processed it).
                queued = PriceSubmission.objects.filter(
                    Q(status=PriceSubmission.Status.QUEUED)
                    | Q(status=PriceSubmission.Status.SENDING, amazon_reference="")
                ).count()
            if not open_rows and not queued:
                break
            time.sleep(2)
        drain_seconds = time.monotonic() - drain_started
        report(tenant, moves, load_seconds, drain_seconds)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


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
    print(
        f"  moves        {moves:,} competitor moves in {load_seconds:.0f} s ({moves / load_seconds:.1f}/s), "
        f"each one notification"
    )
    print(f"  received     {received:,} notifications stored by the intake")
    left = received - processed
    print(f"  decided      {processed:,} processed ({left:,} left over), {len(decisions):,} decisions")
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
    parser.add_argument("--latency-workers", type=int, default=2, help="Celery worker concurrency (prefork)")
    parser.add_argument(
        "--latency-database", default="sellerpilot_bench_latency", help="scratch database (dropped)"
    )
