"""How many repricing decisions one core makes per second: `repricing.engine.decide` over a catalog.

Setup (in memory, seeded, no database): N listings (default 100,000) x M offers each (default 20: ours
plus competitors with random landed prices around ours, fulfillment, feedback, ships-from, handling
time; one Buy Box winner in most listings, sometimes us; now and then an offer in another currency or
condition), each listing with a min/max, inventory figures and a history (some in cooldown, some under
repeated undercutting). The rules are a realistic mix: beat the Buy Box with probe, step/daily limits,
cooldown, price-war breaker and anomaly alert; lowest offer with feedback/handling/Amazon filters and
percent beat; lowest FBA; named competitors with velocity, inventory and a schedule.

Measured: every listing decided once per pass, single-threaded in this process (one core); several
passes; the median pass gives decisions per second and microseconds per decision. Building the data is
not timed (and is frozen out of the garbage collector's scans, see run()). The spread of actions and
reasons is printed so that a run deciding nothing (all holds) is seen for what it is.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from repricing.engine import History, ListingState, Offer, Rule, decide

NOW = datetime(2025, 6, 4, 15, 30, tzinfo=UTC)

RULES = [
    {
        "strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01", "when_alone": "max"},
        "buy_box_probe": {"amount": "0.25", "when_sharing": "hold"},
        "guards": {
            "max_step": {"amount": "2.00", "percent": "10"},
            "max_daily": {"percent": "20"},
            "cooldown_seconds": 600,
            "price_war": {"undercuts": 4, "window_seconds": 3600, "pause_seconds": 21600},
            "anomaly": {"percent": "45"},
        },
    },
    {
        "strategy": {"kind": "lowest", "mode": "beat", "percent": "0.5"},
        "filters": {
            "min_feedback_rating": 90, "min_feedback_count": 50, "max_handling_hours": 72,
            "exclude_amazon": True,
        },
        "bounds": {"out_of_bounds": "hold"},
        "guards": {"max_step": {"percent": "5"}},
    },
    {
        "strategy": {"kind": "lowest_fba", "mode": "match", "when_alone": "hold"},
        "filters": {"ships_from": ["US"]},
        "guards": {"max_daily": {"amount": "5.00"}, "cooldown_seconds": 300},
    },
    {
        "strategy": {
            "kind": "named_competitors", "mode": "above", "amount": "0.50",
            "competitors": ["S0001", "S0002", "S0003"],
        },
        "velocity": {
            "target_units_7d": 10, "raise_percent": "2", "lower_percent": "2", "tolerance_percent": "20",
        },
        "inventory": {
            "low_days_of_cover": 10, "raise_percent": "3", "aged_units_min": 5, "aged_lower_percent": "4",
        },
        "schedule": {
            "timezone": "America/New_York",
            "entries": [{"days": ["sat", "sun"], "start": "00:00", "end": "24:00", "adjust_percent": "2"}],
        },
    },
]  # fmt: skip


def build(skus: int, offers_per_sku: int, seed: int) -> list[tuple[ListingState, list[Offer], Rule, History]]:
    rng = random.Random(seed)
    rules = [Rule.from_dict(r) for r in RULES]
    cents = [Decimal(c) / 100 for c in range(20001)]  # shared Decimal objects keep the catalog small
    sellers = [f"S{n:04d}" for n in range(500)]
    catalog = []
    for n in range(skus):
        base = rng.randint(800, 12000)  # our price in cents
        current = cents[base]
        fba = rng.random() < 0.6
        listing = ListingState(
            sku=f"SKU-{n:06d}",
            asin=f"B0{n:08d}",
            marketplace_id="ATVPDKIKX0DER",
            currency="USD",
            condition="new",
            fulfillment="FBA" if fba else "FBM",
            current_price=current,
            our_shipping=cents[0] if fba else cents[rng.choice((0, 399, 499))],
            min_price=cents[int(base * 0.7)],
            max_price=cents[int(base * 1.5)],
            quantity=rng.randint(0, 500),
            units_sold_7d=rng.randint(0, 40) if rng.random() < 0.9 else None,
            days_of_cover=rng.uniform(0, 200) if rng.random() < 0.9 else None,
            aged_units=rng.randint(0, 20) if rng.random() < 0.9 else None,
        )
        we_hold = rng.random() < 0.2
        offers = [
            Offer(
                "OURS", current, listing.our_shipping, fulfillment=listing.fulfillment,
                is_buy_box_winner=we_hold, is_ours=True,
            )
        ]  # fmt: skip
        winner = -1 if we_hold or rng.random() < 0.1 else rng.randrange(1, offers_per_sku)
        for i in range(1, offers_per_sku):
            price = max(1, base + rng.randint(-int(base * 0.2), int(base * 0.25)))
            competitor_fba = rng.random() < 0.5
            offers.append(
                Offer(
                    seller_id="ATVPDKIKX0DER" if rng.random() < 0.03 else rng.choice(sellers),
                    price=cents[min(price, 20000)],
                    shipping=cents[0] if competitor_fba else cents[rng.choice((0, 0, 299, 499))],
                    currency="EUR" if rng.random() < 0.01 else "USD",
                    condition="used" if rng.random() < 0.05 else "new",
                    fulfillment="FBA" if competitor_fba else "FBM",
                    is_buy_box_winner=i == winner,
                    feedback_rating=rng.choice((None, 70.0, 85.0, 92.0, 97.0, 99.0)),
                    feedback_count=rng.choice((None, 10, 120, 5000)),
                    ships_from=rng.choice(("US", "US", "US", "CN", None)),
                    handling_hours_max=rng.choice((24, 48, 96, None)),
                    is_amazon=False,
                )
            )
        history = History(
            now=NOW,
            last_change_at=NOW - timedelta(seconds=rng.randint(60, 7200)) if rng.random() < 0.5 else None,
            day_open_price=cents[base + rng.randint(-200, 200)] if rng.random() < 0.5 else None,
            undercut_times=tuple(
                NOW - timedelta(minutes=rng.randint(1, 120)) for _ in range(rng.randint(0, 6))
            ),
            buy_box_share=rng.random() if rng.random() < 0.7 else None,
        )
        catalog.append((listing, offers, rules[n % len(rules)], history))
    return catalog


def _machine() -> list[str]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine      {platform.node()}  {platform.system()} {platform.release()}  {platform.machine()}",
        f"cpu          {cpu}  (cores usable {usable}, os.cpu_count {os.cpu_count()})",
        f"python       {platform.python_implementation()} {platform.python_version()}",
    ]


def run(args: argparse.Namespace) -> None:
    skus, per_sku, passes = args.repricing_skus, args.repricing_offers, args.repricing_passes
    print("Repricing engine benchmark (decide, one core)")
    for line in _machine():
        print("  " + line)
    started = time.perf_counter()
    catalog = build(skus, per_sku, getattr(args, "seed", 20250101))
    built = time.perf_counter() - started
    print(f"  data         {skus:,} listings x {per_sku} offers, {len(RULES)} rules; built in {built:.1f} s")

    outcomes: Counter[str] = Counter()
    for listing, offers, rule, history in catalog:  # warm-up pass, also the spread of outcomes
        decision = decide(listing, offers, rule, history)
        outcomes[f"{decision.action}:{decision.reason}"] += 1
    # The catalog is held in memory for the whole run (a worker would stream it in batches): frozen
    # out of the collector's sight, so that collections time the engine's garbage, not the catalog.
    gc.collect()
    gc.freeze()
    wall, cpu = [], []
    for _ in range(passes):
        start, start_cpu = time.perf_counter(), time.process_time()
        for listing, offers, rule, history in catalog:
            decide(listing, offers, rule, history)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    print(f"\n  {passes} timed passes (wall): " + ", ".join(f"{s:.2f} s" for s in wall))
    # CPU time of this process is what one core spent; wall time also counts other processes' turns.
    for label, series in (("per CPU second", cpu), ("per wall second", wall)):
        median = statistics.median(series)
        print(
            f"  median {label:<16} {skus / median:>9,.0f} decisions/s   "
            f"{median / skus * 1e6:5.1f} µs per decision   (best pass {skus / min(series):,.0f}/s)"
        )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print(f"  (single-threaded; one worker process per core scales it by up to {usable} on this machine)")
    print("\n  outcomes (action:reason, share of listings)")
    for key, count in outcomes.most_common():
        print(f"    {key:<34} {count / skus:6.1%}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repricing-skus", type=int, default=100_000, help="listings to decide per pass")
    parser.add_argument("--repricing-offers", type=int, default=20, help="offers per listing (ours included)")
    parser.add_argument(
        "--repricing-passes", type=int, default=5, help="timed passes (the median is reported)"
    )
