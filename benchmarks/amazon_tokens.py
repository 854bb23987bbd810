"""The Amazon gateway's costs: the LWA token cache per call (hit and miss) and listings sync throughput.

Runs in a scratch database (created through the owner connection, migrated with `manage.py migrate`,
dropped afterwards), against the in-process simulator (werkzeug on 127.0.0.1, one thread per request)
and the Redis that `make bench` provides. Everything goes through the product's own code paths.

token cache   `amazon.tokens.access_token_for(connection)`, interleaved in random order:
              hit  = Redis GET + Fernet decrypt (the token is cached)
              miss = the token was just dropped: single-flight lock (SET NX) + re-check + decrypt the
                     refresh token + LWA HTTP call to the simulator + encrypt + SET with TTL + unlock
              lwa  = the bare LWA HTTP round trip (`tokens.lwa_post`), to tell our overhead from HTTP's
listings sync `amazon.sync.sync_listings` through `sp_api_client` (token cache, Redis limiter, retries):
              5 seller accounts x 1,000 SKUs (searchListingsItems pages through at most 1,000 items
              per query, so a 5,000-SKU demo is 5 accounts), 20 per page, one upsert per page.
              Simulator throttling off; our limiter opened for searchListingsItems (the point is
              our pipeline's cost; Amazon's quota, 5 requests/s x 20 = 100 listings/s per account, is
              measured separately on one account at the published rate).
Orders sync throughput (100,000 orders) is benchmarks/amazon_orders.py.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from benchmarks.rls_cost import Series, _url, drop, machine_info

BASE_DIR = Path(__file__).resolve().parent.parent


def _scratch_env(scratch: str) -> dict[str, str]:
    env = {}
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_PLATFORM_URL"):
        env[name] = urlunsplit(urlsplit(_url(name))._replace(path=f"/{scratch}"))
    return env


def setup_database(scratch: str) -> float:
    started = time.perf_counter()
    owner_url = _url("DATABASE_OWNER_URL")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    env = {**os.environ, **_scratch_env(scratch)}
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--verbosity", "0"], env=env, check=True
    )
    os.environ.update(_scratch_env(scratch))
    return time.perf_counter() - started


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _pct(series: Series) -> str:
    return f"{series.median:>9.3f} {series.p95:>9.3f}"


def bench_tokens(connection: Any, sim: Any, reps: int, rng: random.Random) -> None:
    from django.conf import settings

    from amazon import tokens

    form = {
        "grant_type": "refresh_token",
        "refresh_token": sim.credentials["refresh_token"],
        "client_id": sim.credentials["lwa_app_id"],
        "client_secret": sim.credentials["lwa_client_secret"],
    }
    for _ in range(50):  # warm-up: connections, imports, Fernet
        tokens.invalidate_access_token(connection)
        tokens.access_token_for(connection)
        tokens.access_token_for(connection)
        tokens.lwa_post(form)
    series = {"hit": Series(), "miss": Series(), "lwa": Series()}
    for _ in range(reps):
        order = ["hit", "miss", "lwa"]
        rng.shuffle(order)
        for kind in order:
            if kind == "miss":
                tokens.invalidate_access_token(connection)
            elif kind == "hit":
                tokens.access_token_for(connection)  # make sure it is cached (untimed)
            start = time.perf_counter()
            if kind == "lwa":
                tokens.lwa_post(form)
            else:
                tokens.access_token_for(connection)
            series[kind].add(time.perf_counter() - start)
    print(f"\n  token cache: {reps} calls per kind, interleaved in random order; ms")
    print(f"  {'':<44} {'median':>9} {'p95':>9}")
    print(f"  {'hit  (Redis GET + decrypt)':<44} {_pct(series['hit'])}")
    print(f"  {'miss (lock + LWA call + encrypt + store)':<44} {_pct(series['miss'])}")
    print(f"  {'bare LWA round trip to the simulator':<44} {_pct(series['lwa'])}")
    overhead = series["miss"].median - series["lwa"].median
    print(
        f"  miss minus bare LWA (our side of a miss): {overhead:.3f} ms"
        f"; LWA endpoint {settings.LWA_TOKEN_URL}"
    )


def _add_sellers(market: Any, count: int) -> list[tuple[str, str]]:
    """Sellers 2..count listing the demo seller's ASINs under their own SKUs: (seller id, refresh token)."""
    from dataclasses import replace

    from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_REFRESH_TOKEN, DEMO_SELLER_ID, US

    accounts = [(DEMO_SELLER_ID, DEMO_REFRESH_TOKEN)]
    demo_listings = market.seller_listings(DEMO_SELLER_ID, US)
    for n in range(2, count + 1):
        seller_id = f"A3BENCHSELLER{n}"
        market.add_seller(seller_id, f"Bench seller {n}", [US])
        for listing in demo_listings:
            market.add_listing(replace(listing, seller_id=seller_id, sku=f"S{n}-{listing.sku}", issues=[]))
        accounts.append((seller_id, market.authorize(seller_id, DEMO_CLIENT_ID)))
    return accounts


def bench_sync(tenant: Any, sim: Any, accounts: int, skus: int) -> None:
    from amazon import ratelimit, sync
    from amazon.models import Listing, SellerConnection
    from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, US
    from tenants import context
    from tenants.context import tenant_context

    credentials = _add_sellers(sim.market, accounts)
    connections = []
    with tenant_context(tenant):
        for seller_id, refresh_token in credentials:
            connection = SellerConnection(
                tenant=tenant,
                region="NA",
                selling_partner_id=seller_id,
                auth_kind=SellerConnection.AuthKind.OWN_APP,
                marketplaces=[{"id": US}],
            )
            connection.set_secret("refresh_token", refresh_token)
            connection.set_secret("lwa_client_id", DEMO_CLIENT_ID)
            connection.set_secret("lwa_client_secret", DEMO_CLIENT_SECRET)
            connection.save()
            connections.append(connection)
    total = accounts * skus
    token = context._current.set(tenant)
    published = ratelimit.OPERATION_LIMITS["searchListingsItems"]
    observe = ratelimit.observe_rate_limit
    try:
        print(f"\n  listings sync: {accounts} accounts x {skus:,} SKUs = {total:,} listings, 20 per page")
        print("  (simulator throttling off; our limiter opened for searchListingsItems)")
        ratelimit.OPERATION_LIMITS["searchListingsItems"] = (1000.0, 1000)
        ratelimit.observe_rate_limit = lambda *args, **kwargs: None
        for label in ("first pass (all created)", "second pass (all unchanged)"):
            started = time.perf_counter()
            counts: dict[str, int] = {}
            for connection in connections[1:]:
                for name, value in sync.sync_listings(
                    connection=connection, triggered_by="bench", use_report=False
                ).items():
                    counts[name] = counts.get(name, 0) + value
            seconds = time.perf_counter() - started
            synced = (accounts - 1) * skus
            print(
                f"  {label:<28} {synced:>6,} listings in {seconds:6.2f} s = "
                f"{synced / seconds:8.0f} listings/s  {counts}"
            )
        ratelimit.OPERATION_LIMITS["searchListingsItems"] = published
        ratelimit.observe_rate_limit = observe
        started = time.perf_counter()
        sync.sync_listings(connection=connections[0], triggered_by="bench", use_report=False)
        seconds = time.perf_counter() - started
        print(
            f"  {'at Amazon quota (5 req/s)':<28} {skus:>6,} listings in {seconds:6.2f} s = "
            f"{skus / seconds:8.0f} listings/s  (one account, our limiter at the published rate)"
        )
        with tenant_context(tenant):
            stored = Listing.objects.count()
        print(f"  stored listings: {stored:,} (expected {total:,})")
    finally:
        ratelimit.OPERATION_LIMITS["searchListingsItems"] = published
        ratelimit.observe_rate_limit = observe
        context._current.reset(token)


def run(args: argparse.Namespace) -> None:
    scratch = args.amazon_database
    owner_url = _url("DATABASE_OWNER_URL")  # before the environment is pointed at the scratch database
    print("\nAmazon gateway benchmark (token cache, listings sync)")
    with psycopg.connect(_url("DATABASE_OWNER_URL")) as conn:
        for line in machine_info(conn):
            print("  " + line)
    print(f"  setup        scratch database {scratch!r} migrated in {setup_database(scratch):.1f} s")
    try:
        _django()
        from django.test.utils import override_settings

        from amazon.models import SellerConnection
        from amazon.simulator.market import Market
        from amazon.simulator.testing import start_simulator
        from tenants.context import tenant_context
        from tenants.models import Tenant

        market = Market.demo(seed=7, skus=args.skus_per_account, throttling=False)
        sim = start_simulator(market)
        try:
            with override_settings(
                LWA_TOKEN_URL=sim.lwa_url, SP_API_ENDPOINT=sim.base_url, LWA_TOKEN_LOCK_WAIT_SECONDS=15
            ):
                tenant = Tenant.objects.create(name="Bench", slug=f"bench-{random.randrange(10**9)}")
                with tenant_context(tenant):
                    connection = SellerConnection(
                        tenant=tenant, region="NA", selling_partner_id=sim.seller_id, marketplaces=[]
                    )
                    connection.auth_kind = SellerConnection.AuthKind.OWN_APP
                    connection.set_secret("refresh_token", sim.credentials["refresh_token"])
                    connection.set_secret("lwa_client_id", sim.credentials["lwa_app_id"])
                    connection.set_secret("lwa_client_secret", sim.credentials["lwa_client_secret"])
                    connection.save()
                print(f"  simulator    {sim.base_url} (in-process, threaded werkzeug)")
                bench_tokens(connection, sim, args.token_reps, random.Random(args.seed))
                other = Tenant.objects.create(name="Bench sync", slug=f"bench-sync-{random.randrange(10**9)}")
                bench_sync(other, sim, args.accounts, args.skus_per_account)
        finally:
            sim.server.stop()
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop(owner_url, scratch)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-reps", type=int, default=1000, help="timed token-cache calls per kind")
    parser.add_argument(
        "--accounts", type=int, default=6, help="seller accounts (1 at quota + the rest open)"
    )
    parser.add_argument(
        "--skus-per-account",
        type=int,
        default=1000,
        help="at most 1,000 (search limit; the bench measures the search path)",
    )
    parser.add_argument(
        "--amazon-database", default="sellerpilot_bench_amazon", help="scratch database (dropped)"
    )
