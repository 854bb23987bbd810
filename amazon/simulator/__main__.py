"""Standalone simulator: ``python -m amazon.simulator --port 8100 --seed 7``.

Simulated time follows the wall clock (``--speed`` simulated seconds per real second); throttling uses
the wall clock. Demo credentials are printed at start-up."""

from __future__ import annotations

import argparse
import os
import threading
import time
from datetime import UTC, datetime

from werkzeug.serving import run_simple

from .app import SimulatorApp
from .consent import CONSENT_PATH
from .market import (
    DEMO_APPLICATION_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URIS,
    DEMO_REFRESH_TOKEN,
    DEMO_SELLER_ID,
    Market,
)
from .notifications import NotificationDispatcher


def _ticker(market: Market, speed: float, stop: threading.Event) -> None:
    last = time.monotonic()
    while not stop.wait(1.0):
        now = time.monotonic()
        market.clock.advance((now - last) * speed)
        last = now


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m amazon.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "--patch-delay", type=float, default=300, help="seconds until a listings patch applies"
    )
    parser.add_argument(
        "--notify", action="append", default=[], help="POST ANY_OFFER_CHANGED notifications to this URL"
    )
    parser.add_argument(
        "--notify-secret",
        default=os.environ.get("AMAZON_NOTIFICATIONS_SECRET", "").split(",")[0],
        help="sign notifications with this shared secret (default: $AMAZON_NOTIFICATIONS_SECRET)",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="another OAuth redirect URI of the demo app for the consent page (loopback ones are registered)",
    )
    parser.add_argument(
        "--notify-threads", type=int, default=4, help="notifications delivered at once (default 4)"
    )
    parser.add_argument("--orders", type=int, default=0, help="bulk order history to generate (30 days)")
    parser.add_argument(
        "--start",
        default="now",
        help="simulated start time, ISO 8601 or 'now' (default: now, so our sync's first look-back, taken "
        "from the real clock, lands in the simulated past; tests build markets with a fixed start instead)",
    )
    args = parser.parse_args(argv)

    start = datetime.now(UTC) if args.start == "now" else datetime.fromisoformat(args.start)
    market = Market.demo(
        seed=args.seed,
        skus=args.skus,
        throttle_clock="wall",
        patch_delay_seconds=args.patch_delay,
        start=start,
    )
    if args.orders:
        market.generate_orders(args.orders)
    if args.redirect_uri:
        market.register_application(
            DEMO_APPLICATION_ID,
            DEMO_CLIENT_ID,
            [*DEMO_REDIRECT_URIS, *args.redirect_uri],
            name=market.applications[DEMO_APPLICATION_ID].name,
        )
    stop = threading.Event()
    threading.Thread(target=_ticker, args=(market, args.speed, stop), daemon=True).start()
    base = f"http://{args.host}:{args.port}"
    print(f"Amazon SP-API simulator on {base} (seed {args.seed}, {args.skus} SKUs)")
    print(f"  LWA token URL   {base}/auth/o2/token")
    print(f"  consent page    {base}{CONSENT_PATH} (application {DEMO_APPLICATION_ID})")
    print(f"  seller id       {DEMO_SELLER_ID}")
    print(f"  lwa_app_id      {DEMO_CLIENT_ID}")
    print(f"  client secret   {DEMO_CLIENT_SECRET}")
    print(f"  refresh token   {DEMO_REFRESH_TOKEN}")
    for url in args.notify:
        market.subscribe(url, secret=args.notify_secret or None)
    dispatcher = NotificationDispatcher(market, threads=args.notify_threads)
    dispatcher.start()
    app = SimulatorApp(market)
    app.public_url = base
    try:
        run_simple(args.host, args.port, app, threaded=True)
    finally:
        stop.set()
        dispatcher.stop()


if __name__ == "__main__":
    main()
