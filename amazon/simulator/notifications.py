"""ANY_OFFER_CHANGED notifications: the payload exactly as Amazon's schema
(../shared/spapi-models/schemas/notifications/AnyOfferChangedNotification.json) lays it out, and the
dispatcher thread that POSTs queued notifications to the subscribers' URLs without ever holding up the
simulator's request handling.

Amazon delivers notifications through SQS; SellerPilot's intake takes them over HTTP and checks their
origin with a signature (docs/amazon.md "Notifications"). A subscriber given a secret
(``market.subscribe(url, secret=...)``) gets each POST signed that way: header ``X-SellerPilot-Timestamp``
(Unix seconds, wall clock) and ``X-SellerPilot-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." +
body)>``."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .market import Market, Offer

APPLICATION_ID = "amzn1.sellerapps.app.simulator-0000-0000-0000-000000000001"
SUBSCRIPTION_ID = "subscription-id-5e1e1a7c-0000-4000-8000-000000000001"
TIMESTAMP_HEADER = "X-SellerPilot-Timestamp"
SIGNATURE_HEADER = "X-SellerPilot-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-SellerPilot-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"Amount": float(amount), "CurrencyCode": currency}


def _iso_ms(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z")


def any_offer_changed(
    market: Market, seller_id: str, marketplace_id: str, asin: str, seq: int
) -> dict[str, Any]:
    """The notification Amazon would send ``seller_id`` now that an offer on ``asin`` changed."""
    from .market import CATEGORIES, MARKETPLACES

    mp = MARKETPLACES[marketplace_id]
    currency = mp.currency
    product = market.products[(marketplace_id, asin)]
    offers = market.offers(marketplace_id, asin, "New")
    winner = market.buybox_winner(marketplace_id, asin)
    now = market.clock.now()
    groups: dict[str, list[Offer]] = {}
    for o in offers:
        groups.setdefault(o.fulfillment, []).append(o)
    eligible = {f: [o for o in os if o.feedback_rating >= 80 or o.is_fba] for f, os in groups.items()}
    lowest = offers[0].landed if offers else product.list_price
    summary: dict[str, Any] = {
        "NumberOfOffers": [
            {"Condition": "new", "FulfillmentChannel": f, "OfferCount": len(os)} for f, os in groups.items()
        ],
        "LowestPrices": [
            {
                "Condition": "new",
                "FulfillmentChannel": f,
                "LandedPrice": _money(os[0].landed, currency),
                "ListingPrice": _money(os[0].price, currency),
                "Shipping": _money(os[0].shipping, currency),
            }
            for f, os in groups.items()
        ],
        "BuyBoxPrices": []
        if winner is None
        else [
            {
                "Condition": "new",
                "LandedPrice": _money(winner.landed, currency),
                "ListingPrice": _money(winner.price, currency),
                "Shipping": _money(winner.shipping, currency),
            }
        ],
        "ListPrice": _money(product.list_price, currency),
        "MinimumAdvertisedPrice": _money(product.list_price, currency),
        "SuggestedLowerPricePlusShipping": _money(max(lowest - Decimal("0.01"), Decimal("0.01")), currency),
        "TotalBuyBoxEligibleOffers": sum(len(os) for os in eligible.values()),
        "SalesRankings": [
            {"ProductCategoryId": str(CATEGORIES[product.category]["rank_id"]), "Rank": product.sales_rank}
        ],
        "NumberOfBuyBoxEligibleOffers": [
            {"Condition": "new", "FulfillmentChannel": f, "OfferCount": len(os)} for f, os in eligible.items()
        ],
        "CompetitivePriceThreshold": _money(winner.landed if winner else lowest, currency),
    }
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ANY_OFFER_CHANGED",
        "PayloadVersion": "1.0",
        "EventTime": _iso_ms(now),
        "NotificationMetadata": {
            "ApplicationId": APPLICATION_ID,
            "SubscriptionId": SUBSCRIPTION_ID,
            "PublishTime": _iso_ms(now),
            "NotificationId": str(uuid.UUID(int=(market.notification_namespace << 64) ^ seq, version=4)),
        },
        "Payload": {
            "AnyOfferChangedNotification": {
                "SellerId": seller_id,
                "OfferChangeTrigger": {
                    "MarketplaceId": marketplace_id,
                    "ASIN": asin,
                    "ItemCondition": "New",
                    "TimeOfOfferChange": _iso_ms(now),
                    "OfferChangeType": "External",
                },
                "Summary": summary,
                "Offers": [_offer(o, currency, winner, now) for o in offers[:20]],
            }
        },
    }


def _offer(offer: Offer, currency: str, winner: Offer | None, now: Any) -> dict[str, Any]:
    return {
        "SellerId": offer.seller_id,
        "SubCondition": offer.sub_condition,
        "SellerFeedbackRating": {
            "FeedbackCount": offer.feedback_count,
            "SellerPositiveFeedbackRating": offer.feedback_rating,
        },
        "ShippingTime": {
            "MinimumHours": offer.handling_hours[0],
            "MaximumHours": offer.handling_hours[1],
            "AvailabilityType": "NOW",
            "AvailableDate": _iso_ms(now),
        },
        "ListingPrice": _money(offer.price, currency),
        "Points": {"PointsNumber": 0},
        "Shipping": _money(offer.shipping, currency),
        "ShipsFrom": {"Country": offer.ships_from, "State": ""},
        "IsFulfilledByAmazon": offer.is_fba,
        "IsBuyBoxWinner": winner is not None
        and winner.seller_id == offer.seller_id
        and winner.sku == offer.sku,
        "PrimeInformation": {"IsOfferPrime": offer.is_fba, "IsOfferNationalPrime": offer.is_fba},
        "IsExpeditedShippingAvailable": offer.is_fba,
        "IsFeaturedMerchant": offer.feedback_rating >= 90 or offer.is_fba,
        "ShipsDomestically": True,
        "ShipsInternationally": False,
    }


class NotificationDispatcher:
    """Drains ``market.outbox`` on its own daemon thread: each notification is POSTed as JSON to its
    subscriber (timeout ``timeout`` s); the outcome goes to ``market.deliveries`` as (url, notification
    id, HTTP status or error text). ``flush()`` waits until everything queued so far was attempted."""

    def __init__(self, market: Market, timeout: float = 5.0, threads: int = 1) -> None:
        self.market = market
        self.timeout = timeout
        #: Deliveries in flight at once (Amazon's SQS feeds many consumers; one thread caps the rate at
        #: one round trip at a time).
        self.threads = max(1, threads)
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        if not self._workers:
            self._stop.clear()
            self._workers = [
                threading.Thread(target=self._run, name=f"simulator-notifications-{n}", daemon=True)
                for n in range(self.threads)
            ]
            for worker in self._workers:
                worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 1)
        self._workers = []

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification was attempted (True) or ``timeout`` passed (False)."""
        done = threading.Event()

        def wait() -> None:
            self.market.outbox.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        outbox = self.market.outbox
        while not self._stop.is_set():
            try:
                url, payload = outbox.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.market.deliveries.append(
                    (
                        url,
                        payload["NotificationMetadata"]["NotificationId"],
                        deliver(url, payload, self.timeout, secret=self.market.subscriber_secrets.get(url)),
                    )
                )
            finally:
                outbox.task_done()


def deliver(
    url: str, payload: dict[str, Any], timeout: float = 5.0, *, secret: str | None = None
) -> int | str:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        timestamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(body, secret, timestamp)
    request = urllib.request.Request(  # noqa: S310 - the subscriber URL is configured by the operator
        url, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return f"error: {exc}"
