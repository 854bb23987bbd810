"""Repricing a whole catalog: our time for 100,000 SKUs against the floor Amazon's rate limits set.

Setup (not timed): a scratch database (migrated, dropped afterwards, as amazon_orders.py) with one tenant,
one connection and N listings (default 100,000), each with its newest offers snapshot (20 offers in
the Product Pricing API's wire shape: ours plus 19 competitors around our price), bounds, and the
company's default rule (beat the Buy Box by a cent with probe, step/daily limits, price-war breaker);
company dry run off, so every change is queued for Amazon.

Timed: `repricing.pipeline.reprice` over the catalog in chunks of REPRICE_CHUNK, exactly as the
scheduled run does once offers are in: per chunk one transaction that reads listings' pricing settings,
snapshots, sales and history, runs the engine, writes the decisions (input snapshot + trace), updates
the guard state and queues the submissions; then the JSON_LISTINGS_FEED documents for every queued
price are built (what `send_submissions` uploads). Runtime role under row-level security.

Not timed: talking to Amazon. Its floor is computed from the published usage plans (spapi-models
README): refreshing offers needs ceil(N/20) getListingOffersBatch calls at 0.5/s (burst 1); sending
prices needs ceil(changes/feed size) createFeed calls at 0.0083/s (burst 15), or changes/5 s through
patchListingsItem (5/s, burst 5). Amazon then takes minutes to process a feed, which no client can
shorten.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg

from benchmarks.amazon_orders import _drop
from benchmarks.amazon_tokens import _django, setup_database
from benchmarks.rls_cost import _url, machine_info

OUR_SELLER = "A1BENCHSELLER00"
MARKETPLACE = "ATVPDKIKX0DER"
RULE = {
    "strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01", "when_no_buy_box": "lowest"},
    "buy_box_probe": {"amount": "0.25", "when_sharing": "hold"},
    "guards": {
        "max_step": {"percent": "10"},
        "max_daily": {"percent": "25"},
        "cooldown_seconds": 300,
        "price_war": {"undercuts": 5, "window_seconds": 3600, "pause_seconds": 21600},
        "anomaly": {"percent": "45"},
    },
}


def _offer(
    seller: str, price: Decimal, *, fba: bool, winner: bool, ours: bool, rng: random.Random
) -> dict[str, Any]:
    """One item of getListingOffersBatch's Offers list (Amazon's PascalCase shape)."""
    return {
        "SellerId": seller,
        "SubCondition": "new",
        "SellerFeedbackRating": {
            "SellerPositiveFeedbackRating": rng.choice([82.0, 91.0, 95.0, 99.0]),
            "FeedbackCount": rng.randint(10, 90_000),
        },
        "ShippingTime": {
            "minimumHours": 24,
            "maximumHours": rng.choice([24, 48, 72]),
            "availabilityType": "NOW",
        },
        "ListingPrice": {"Amount": float(price), "CurrencyCode": "USD"},
        "Shipping": {"Amount": 0.0 if fba else 3.99, "CurrencyCode": "USD"},
        "ShipsFrom": {"Country": "US"},
        "IsFulfilledByAmazon": fba,
        "IsBuyBoxWinner": winner,
        "IsFeaturedMerchant": True,
        "MyOffer": ours,
    }


def build_catalog(tenant: Any, connection: Any, skus: int, rng: random.Random) -> None:
    from django.utils import timezone

    from amazon.models import Listing, OfferSnapshot
    from repricing.models import RepricingRule, RepricingSettings, SkuPricing
    from tenants.context import tenant_context

    now = timezone.now()
    with tenant_context(tenant):
        rule = RepricingRule.objects.create(name="bench", config=RULE)
        RepricingSettings.objects.create(dry_run=False, default_rule=rule)
        for start in range(0, skus, 5000):
            count = min(5000, skus - start)
            listings = Listing.objects.bulk_create(
                [
                    Listing(
                        tenant=tenant,
                        connection=connection,
                        marketplace_id=MARKETPLACE,
                        sku=f"BENCH-{start + i:06d}",
                        asin=f"B0{start + i:08d}",
                        price=Decimal(rng.randint(1500, 6000)) / 100,
                        currency="USD",
                        quantity=rng.randint(0, 200),
                        fulfillment_channel="AFN",
                        condition="new_new",
                        status=Listing.Status.BUYABLE,
                        last_synced_at=now,
                    )
                    for i in range(count)
                ]
            )
            snapshots, pricing = [], []
            for listing in listings:
                ours = listing.price
                assert ours is not None
                offers = [_offer(OUR_SELLER, ours, fba=True, winner=False, ours=True, rng=rng)]
                for c in range(19):
                    price = (ours * Decimal(str(rng.uniform(0.9, 1.15)))).quantize(Decimal("0.01"))
                    offers.append(
                        _offer(
                            f"A2COMP{c:09d}", price, fba=rng.random() < 0.6, winner=False, ours=False, rng=rng
                        )
                    )
                offers.sort(key=lambda o: o["ListingPrice"]["Amount"] + o["Shipping"]["Amount"])
                winner = offers[0] if rng.random() < 0.9 else None
                if winner is not None:
                    winner["IsBuyBoxWinner"] = True
                snapshots.append(
                    OfferSnapshot(
                        tenant=tenant,
                        listing=listing,
                        observed_at=now - timedelta(seconds=rng.randint(0, 600)),
                        currency="USD",
                        number_of_offers=len(offers),
                        offers=offers,
                    )
                )
                pricing.append(
                    SkuPricing(
                        tenant=tenant,
                        listing=listing,
                        min_price=(ours * Decimal("0.85")).quantize(Decimal("0.01")),
                        max_price=(ours * Decimal("1.40")).quantize(Decimal("0.01")),
                    )
                )
            OfferSnapshot.objects.bulk_create(snapshots)
            SkuPricing.objects.bulk_create(pricing)


def floors(skus: int, changes: int, feed_size: int) -> dict[str, float]:
    """Seconds Amazon's published usage plans need at the least (rate r/s after a burst b)."""

    def calls_time(calls: int, rate: float, burst: int) -> float:
        return max(0, calls - burst) / rate

    return {
        "offers refresh (getListingOffersBatch, 20 SKUs a call)": calls_time(math.ceil(skus / 20), 0.5, 1),
        "prices via JSON_LISTINGS_FEED (createFeed)": calls_time(math.ceil(changes / feed_size), 0.0083, 15),
        "prices via patchListingsItem": calls_time(changes, 5, 5),
    }


def run(args: argparse.Namespace) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    scratch = args.catalog_database
    owner_url = _url("DATABASE_OWNER_URL")
    print("\nRepricing a whole catalog")
    with psycopg.connect(owner_url) as conn:
        for line in machine_info(conn):
            print("  " + line)
    print(f"  setup        scratch database {scratch!r} migrated in {setup_database(scratch):.1f} s")
    try:
        _django()
        bench(args.catalog_skus)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _drop(owner_url, scratch)


def bench(skus: int) -> None:
    from django.conf import settings

    from amazon.models import Listing, SellerConnection
    from repricing import submission
    from repricing.models import PriceDecision, PriceSubmission
    from repricing.pipeline import reprice
    from repricing.triggers import REPRICE_CHUNK
    from tenants.context import tenant_context
    from tenants.models import Tenant

    rng = random.Random(11)
    tenant = Tenant.objects.create(name="bench catalog", slug=f"bench-catalog-{rng.randint(0, 10**9)}")
    with tenant_context(tenant):
        connection = SellerConnection.objects.create(
            tenant=tenant, region="NA", selling_partner_id=OUR_SELLER, marketplaces=[{"id": MARKETPLACE}]
        )
    started = time.perf_counter()
    build_catalog(tenant, connection, skus, rng)
    print(
        f"  catalog      {skus:,} SKUs x 20 offers built in {time.perf_counter() - started:.1f} s (not timed)"
    )

    chunk_times: list[float] = []
    with tenant_context(tenant):
        ids = list(Listing.objects.order_by("pk").values_list("pk", flat=True))
    total_started = time.perf_counter()
    for start in range(0, len(ids), REPRICE_CHUNK):
        chunk_started = time.perf_counter()
        with tenant_context(tenant):
            listings = list(
                Listing.objects.filter(pk__in=ids[start : start + REPRICE_CHUNK]).select_related("connection")
            )
            reprice(listings, trigger=PriceDecision.Trigger.SCHEDULE)
        chunk_times.append(time.perf_counter() - chunk_started)
    decide_seconds = time.perf_counter() - total_started

    with tenant_context(tenant):
        actions = Counter(PriceDecision.objects.values_list("action", flat=True))
        queued = list(
            PriceSubmission.objects.filter(status=PriceSubmission.Status.QUEUED).select_related("listing")
        )
    feed_size = int(getattr(settings, "REPRICING_FEED_MAX_MESSAGES", 5000))
    feed_started = time.perf_counter()
    documents = 0
    for start in range(0, len(queued), feed_size):
        messages = [
            submission.feed_message(
                n + 1,
                row.listing.sku,
                "PRODUCT",
                submission.price_patch(
                    marketplace_id=row.listing.marketplace_id, currency=row.currency, price=row.price
                ),
            )
            for n, row in enumerate(queued[start : start + feed_size])
        ]
        json.dumps(submission.listings_feed_document(OUR_SELLER, messages))  # the uploaded body
        documents += 1
    feed_seconds = time.perf_counter() - feed_started

    ours = decide_seconds + feed_seconds
    print(
        f"  decided      {sum(actions.values()):,} decisions ({dict(actions)}), {len(queued):,} prices queued"
    )
    print(
        f"  our time     {ours:.1f} s in all: reprice {decide_seconds:.1f} s "
        f"({sum(actions.values()) / decide_seconds:,.0f} SKUs/s; chunk of {REPRICE_CHUNK}: median "
        f"{statistics.median(chunk_times) * 1000:.0f} ms), "
        f"{documents} feed document(s) built in {feed_seconds:.1f} s"
    )
    print("  Amazon's floor (published rate limits; Amazon's own feed processing time not included):")
    for what, seconds in floors(skus, len(queued), feed_size).items():
        ratio = f"{ours / seconds:.3f}x of it" if seconds else "n/a"
        print(f"    {what:<56} {seconds:>9,.0f} s  (our time is {ratio})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog-skus", type=int, default=100_000, help="SKUs repriced (default 100,000)")
    parser.add_argument(
        "--catalog-database", default="sellerpilot_bench_catalog", help="scratch database (dropped)"
    )
