"""The marketplace model behind the simulator: sellers and their LWA apps, marketplaces, ASINs with
competing offers that react over time, our sellers' listings, a Buy Box winner, buyers, stock and fees.

Pure Python (no Django). Deterministic under a seed: every random draw comes from a ``random.Random``
owned by the market, and time only moves when ``market.clock.advance(seconds)`` is called (the
standalone server advances it from a ticker). Money is ``Decimal``; JSON serialisation happens in
``app.py``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import queue
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .documents import Document, Feed, Report, merchant_listings_report, process_listings_feed, stored
from .notifications import any_offer_changed
from .orders import TAX_RATES, Order, OrderItem, decimal_to_cents, order_id_for, timeline
from .rates import USAGE_PLANS

CENT = Decimal("0.01")
DEFAULT_START = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------------
# Clock


class Clock:
    """Simulated time. ``advance`` moves it forward and lets the market play out what happens meanwhile
    (competitors reprice, buyers buy, accepted listing changes take effect)."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start
        self._on_advance: Callable[[datetime, datetime], None] | None = None

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        target = self._now + timedelta(seconds=seconds)
        if self._on_advance is not None:
            self._on_advance(self._now, target)
        self._now = target

    def _set(self, moment: datetime) -> None:
        self._now = moment


# --------------------------------------------------------------------------------------------------
# Static reference data


@dataclass(frozen=True)
class Marketplace:
    id: str
    country_code: str
    name: str
    currency: str
    language: str
    domain: str
    region: str  # NA / EU / FE
    fulfillment_channel: str  # AFN channel code for the region


MARKETPLACES: dict[str, Marketplace] = {
    m.id: m
    for m in [
        Marketplace("ATVPDKIKX0DER", "US", "Amazon.com", "USD", "en_US", "www.amazon.com", "NA", "AMAZON_NA"),
        Marketplace("A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "CAD", "en_CA", "www.amazon.ca", "NA", "AMAZON_NA"),
        Marketplace(
            "A1AM78C64UM0Y8", "MX", "Amazon.com.mx", "MXN", "es_MX", "www.amazon.com.mx", "NA", "AMAZON_NA"
        ),
        Marketplace(
            "A1F83G8C2ARO7P", "GB", "Amazon.co.uk", "GBP", "en_GB", "www.amazon.co.uk", "EU", "AMAZON_EU"
        ),
        Marketplace("A1PA6795UKMFR9", "DE", "Amazon.de", "EUR", "de_DE", "www.amazon.de", "EU", "AMAZON_EU"),
        Marketplace("A13V1IB3VIYZZH", "FR", "Amazon.fr", "EUR", "fr_FR", "www.amazon.fr", "EU", "AMAZON_EU"),
    ]
}
US, CA, UK, DE = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P", "A1PA6795UKMFR9"

# Referral fee percentage and minimum per category (simplified from Amazon's US fee schedule).
CATEGORIES: dict[str, dict[str, Any]] = {
    "Home & Kitchen": {
        "product_type": "HOME",
        "referral": Decimal("0.15"),
        "rank_id": "home_garden_display_on_website",
    },
    "Toys & Games": {
        "product_type": "TOY_FIGURE",
        "referral": Decimal("0.15"),
        "rank_id": "toy_display_on_website",
    },
    "Sports & Outdoors": {
        "product_type": "SPORTING_GOODS",
        "referral": Decimal("0.15"),
        "rank_id": "sports_display_on_website",
    },
    "Electronics": {
        "product_type": "CONSUMER_ELECTRONICS",
        "referral": Decimal("0.08"),
        "rank_id": "ce_display_on_website",
    },
    "Beauty": {"product_type": "BEAUTY", "referral": Decimal("0.15"), "rank_id": "beauty_display_on_website"},
    "Pet Supplies": {
        "product_type": "PET_SUPPLIES",
        "referral": Decimal("0.15"),
        "rank_id": "pet_products_display_on_website",
    },
}
MIN_REFERRAL_FEE = Decimal("0.30")
# FBA fulfilment fee per unit by size tier (simplified, USD-equivalent in every marketplace).
FBA_FEES: dict[str, Decimal] = {
    "small_standard": Decimal("3.22"),
    "large_standard": Decimal("4.75"),
    "small_oversize": Decimal("9.73"),
}

STRATEGIES = ("static", "undercut", "follow_buybox", "random_walk")


# --------------------------------------------------------------------------------------------------
# Entities


@dataclass
class LwaApp:
    client_id: str
    client_secret: str


@dataclass
class SpApplication:
    """An SP-API application as registered in the Solution Provider Portal: the id the website
    authorisation workflow names (``application_id``, ``amzn1.sp.solution.…``), its LWA client, its OAuth
    redirect URIs (the first is the default) and whether it is still a draft (consent needs
    ``version=beta`` then)."""

    application_id: str
    client_id: str
    name: str
    redirect_uris: list[str]
    draft: bool = True


@dataclass
class Seller:
    selling_partner_id: str
    store_name: str
    marketplace_ids: list[str]
    suspended_marketplaces: set[str] = field(default_factory=set)


@dataclass
class RefreshToken:
    token: str
    client_id: str
    selling_partner_id: str
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    selling_partner_id: str | None  # None for grantless tokens
    scope: str | None
    expires_at: datetime


@dataclass
class Product:
    asin: str
    title: str
    category: str
    size_tier: str
    list_price: Decimal  # reference price, also the list price shown in Summary.ListPrice
    demand_per_hour: float  # buyers per simulated hour at the reference price
    sales_rank: int
    marketplace_id: str = US

    @property
    def product_type(self) -> str:
        return str(CATEGORIES[self.category]["product_type"])


@dataclass
class Offer:
    """A competitor's offer, or (``sku`` set) the view of one of our sellers' listings."""

    seller_id: str
    asin: str
    marketplace_id: str
    condition: str  # New / Used
    sub_condition: str  # new, mint, very_good, good, acceptable
    price: Decimal
    shipping: Decimal
    fulfillment: str  # Amazon / Merchant
    feedback_rating: int  # percent positive, 0..100
    feedback_count: int
    handling_hours: tuple[int, int]
    quantity: int
    strategy: str = "static"
    floor: Decimal = Decimal("0.01")
    ceiling: Decimal = Decimal("999999")
    reprice_every: int = 3600  # seconds
    next_reprice_at: datetime = DEFAULT_START
    ships_from: str = "US"
    sku: str | None = None

    @property
    def landed(self) -> Decimal:
        return self.price + self.shipping

    @property
    def is_fba(self) -> bool:
        return self.fulfillment == "Amazon"


@dataclass
class Listing:
    seller_id: str
    sku: str
    asin: str
    marketplace_id: str
    price: Decimal
    quantity: int
    fulfillment_channel: str  # DEFAULT (merchant) or AMAZON_NA / AMAZON_EU
    condition_type: str  # new_new, used_good, ...
    item_name: str
    product_type: str
    created: datetime
    updated: datetime
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    handling_hours: tuple[int, int] = (24, 48)
    shipping: Decimal = Decimal("0.00")
    issues: list[dict[str, Any]] = field(default_factory=list)
    active: bool = True

    @property
    def is_fba(self) -> bool:
        return self.fulfillment_channel.startswith("AMAZON_")

    @property
    def status(self) -> list[str]:
        if not self.active:
            return []
        blocked = any(i.get("severity") == "ERROR" for i in self.issues)
        if blocked or self.quantity <= 0:
            return ["DISCOVERABLE"]
        return ["BUYABLE", "DISCOVERABLE"]

    @property
    def condition(self) -> str:
        return "New" if self.condition_type.startswith("new") else "Used"


@dataclass
class PendingChange:
    submission_id: str
    seller_id: str
    sku: str
    effective_at: datetime
    price: Decimal | None = None
    quantity: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    reject_with: dict[str, Any] | None = None  # an issue: the change is rejected when it comes due
    state: str = "PENDING"  # PENDING / APPLIED / REJECTED


@dataclass
class Sale:
    order_id: str
    at: datetime
    seller_id: str
    asin: str
    marketplace_id: str
    sku: str | None
    quantity: int
    item_price: Decimal
    shipping: Decimal
    referral_fee: Decimal
    fba_fee: Decimal


@dataclass(frozen=True)
class Fees:
    referral: Decimal
    fba: Decimal

    @property
    def total(self) -> Decimal:
        return self.referral + self.fba


@dataclass
class Stats:
    token_grants: int = 0
    token_grants_by_type: Counter[str] = field(default_factory=Counter)
    token_errors: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)


@dataclass
class TokenBucket:
    rate: Decimal
    burst: int
    tokens: float
    last: float


class LwaError(Exception):
    """An LWA token endpoint error: ``status``, ``error`` and ``description`` as LWA answers them."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class PatchError(Exception):
    """A listings submission the simulator cannot take at all (400 InvalidInput)."""


# --------------------------------------------------------------------------------------------------
# Market


class Market:
    """The whole simulated marketplace. All mutation happens under ``self.lock`` (the HTTP server runs in
    another thread than the test that advances the clock)."""

    ACCESS_TOKEN_TTL = 3600
    AUTH_CODE_TTL = 300

    def __init__(
        self,
        seed: int = 7,
        *,
        start: datetime = DEFAULT_START,
        patch_delay_seconds: float = 300,
        tick_seconds: float = 300,
        throttle_clock: str = "simulated",
        throttling: bool = True,
    ) -> None:
        if throttle_clock not in ("simulated", "wall"):
            raise ValueError("throttle_clock is 'simulated' or 'wall'")
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self._token_rng = random.Random(f"{seed}-tokens")  # noqa: S311 - tokens need not be secret here
        self.lock = threading.RLock()
        self.clock = Clock(start)
        self.clock._on_advance = self._run_until
        self.patch_delay_seconds = patch_delay_seconds
        self.tick_seconds = tick_seconds
        self.throttle_clock = throttle_clock
        self.throttling = throttling
        self.stats = Stats()

        self.apps: dict[str, LwaApp] = {}
        self.applications: dict[str, SpApplication] = {}  # application_id -> app (consent.py)
        self.sellers: dict[str, Seller] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.auth_codes: dict[str, tuple[str, str, datetime]] = {}  # code -> (spid, client_id, expiry)

        self.products: dict[tuple[str, str], Product] = {}  # (marketplace, asin)
        self.competitors: dict[tuple[str, str], list[Offer]] = {}  # (marketplace, asin)
        self.listings: dict[tuple[str, str, str], Listing] = {}  # (seller, marketplace, sku)
        self._listings_by_asin: dict[tuple[str, str], list[Listing]] = {}  # (marketplace, asin)
        self.pending: dict[str, PendingChange] = {}
        self.sales: list[Sale] = []
        self._events: list[tuple[datetime, int, str]] = []  # (due, seq, submission id)
        self._seq = itertools.count()
        self._order_seq = itertools.count(1)
        self._forced_rejections: dict[tuple[str, str], dict[str, Any]] = {}

        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self.faults: dict[str, list[int]] = {}  # operation -> statuses to answer next

        # orders and money (orders.py): their own random stream, so that generating orders does not
        # change how the rest of the market plays out
        self.orders: dict[str, Order] = {}
        self._orders_by_seller: dict[str, list[Order]] = {}
        self._orders_rng = random.Random(f"{seed}-orders")  # noqa: S311 - a simulation
        self._item_seq = itertools.count(1)
        self._bulk_seq = itertools.count(5_000_000)  # bulk order ids apart from the live buyers' ones
        self._finance_index: list[tuple[datetime, str, str]] | None = None  # (posted, order id, list)

        # reports and feeds (documents.py)
        self.reports: dict[str, Report] = {}
        self.feeds: dict[str, Feed] = {}
        self.documents: dict[str, Document] = {}
        self._jobs: dict[str, Callable[[], None]] = {}  # event key -> work due then
        self._doc_seq = itertools.count(1)
        self.report_delays = (30.0, 60.0)  # seconds IN_QUEUE, then IN_PROGRESS
        self.feed_delays = (30.0, 90.0)
        self.gzip_documents = False  # report documents served gzip (compressionAlgorithm GZIP)
        self.feed_schema_dir: str | None = None  # where listings-feed-schema-v2.json lives, if known

        # notifications (notifications.py): ANY_OFFER_CHANGED when a competitor reprices an ASIN that
        # one of our sellers lists; kept in pending_notifications and queued for delivery to every
        # subscriber URL (the server's dispatcher thread posts them)
        self.notifications_enabled = False
        self.subscribers: list[str] = []
        self.subscriber_secrets: dict[str, str] = {}  # url -> shared secret that signs its deliveries
        self.pending_notifications: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.outbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.deliveries: deque[tuple[str, str, int | str]] = deque(maxlen=10_000)  # (url, id, status)
        self._notification_seq = itertools.count(1)
        #: Notification ids are unique per market instance, not per seed: a restarted simulator (make run)
        #: must not resend the ids of the last run, which our intake rightly drops as replays. Drawn
        #: outside `self.rng`, so the seeded market behaves the same.
        self.notification_namespace = uuid.uuid4().int >> 64
        # (seller id, notification) callbacks: the Notifications API's SQS deliveries (notifications_api.py)
        self.notification_sinks: list[Callable[[str, dict[str, Any]], None]] = []

    # ---------------------------------------------------------------- identities and LWA

    def _token(self, prefix: str, length: int = 64) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(self._token_rng.choice(alphabet) for _ in range(length))

    def add_app(self, client_id: str, client_secret: str) -> LwaApp:
        with self.lock:
            app = LwaApp(client_id, client_secret)
            self.apps[client_id] = app
            return app

    def register_application(
        self,
        application_id: str,
        client_id: str,
        redirect_uris: Iterable[str],
        *,
        name: str = "",
        draft: bool = True,
    ) -> SpApplication:
        """Register an SP-API application of the LWA app `client_id` for the website authorisation
        workflow (Seller Central's consent page, consent.py)."""
        with self.lock:
            if client_id not in self.apps:
                raise KeyError("unknown LWA app")
            uris = list(redirect_uris)
            if not uris:
                raise ValueError("an application needs at least one OAuth redirect URI")
            app = SpApplication(application_id, client_id, name or application_id, uris, draft)
            self.applications[application_id] = app
            return app

    def add_seller(
        self, selling_partner_id: str, store_name: str, marketplace_ids: Iterable[str] = (US,)
    ) -> Seller:
        with self.lock:
            ids = list(marketplace_ids)
            unknown = [m for m in ids if m not in MARKETPLACES]
            if unknown:
                raise ValueError(f"unknown marketplaces {unknown}")
            seller = Seller(selling_partner_id, store_name, ids)
            self.sellers[selling_partner_id] = seller
            return seller

    def authorize(self, selling_partner_id: str, client_id: str) -> str:
        """The seller authorises the app (self-authorisation): returns a refresh token."""
        with self.lock:
            if selling_partner_id not in self.sellers or client_id not in self.apps:
                raise KeyError("unknown seller or app")
            token = self._token("Atzr|IwEB")
            self.refresh_tokens[token] = RefreshToken(token, client_id, selling_partner_id)
            return token

    def issue_authorization_code(self, selling_partner_id: str, client_id: str) -> str:
        """The consent step of the website authorisation flow: what Seller Central passes to the
        callback as ``spapi_oauth_code``. Single use, valid for five minutes."""
        with self.lock:
            if selling_partner_id not in self.sellers or client_id not in self.apps:
                raise KeyError("unknown seller or app")
            code = self._token("ANDaN", 20)
            expiry = self.clock.now() + timedelta(seconds=self.AUTH_CODE_TTL)
            self.auth_codes[code] = (selling_partner_id, client_id, expiry)
            return code

    def revoke_refresh_token(self, token: str) -> None:
        with self.lock:
            self.refresh_tokens[token].revoked = True

    def _client(self, client_id: str | None, client_secret: str | None) -> LwaApp:
        if not client_id or not client_secret:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : client_id")
        app = self.apps.get(client_id)
        if app is None or app.client_secret != client_secret:
            raise LwaError(401, "invalid_client", "Client authentication failed")
        return app

    def grant_token(self, form: dict[str, str]) -> dict[str, Any]:
        """LWA ``POST /auth/o2/token``; raises LwaError with LWA's error codes."""
        with self.lock:
            try:
                return self._grant_token(form)
            except LwaError as exc:
                self.stats.token_errors[exc.error] += 1
                raise

    def _grant_token(self, form: dict[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type not in ("refresh_token", "client_credentials", "authorization_code"):
            raise LwaError(400, "unsupported_grant_type", "The authorization grant type is not supported")
        app = self._client(form.get("client_id"), form.get("client_secret"))
        answer: dict[str, Any]
        if grant_type == "refresh_token":
            value = form.get("refresh_token")
            if not value:
                raise LwaError(
                    400, "invalid_request", "The request is missing a required parameter : refresh_token"
                )
            rt = self.refresh_tokens.get(value)
            if rt is None or rt.revoked or rt.client_id != app.client_id:
                raise LwaError(
                    400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
                )
            answer = {"access_token": self._issue_access(app.client_id, rt.selling_partner_id, None)}
        elif grant_type == "client_credentials":
            scope = form.get("scope")
            if scope not in (
                "sellingpartnerapi::notifications",
                "sellingpartnerapi::migration",
                "sellingpartnerapi::client_credential:rotation",
            ):
                raise LwaError(400, "invalid_scope", "The request has an invalid parameter : scope")
            answer = {"access_token": self._issue_access(app.client_id, None, scope), "scope": scope}
        else:
            code = form.get("code")
            if not code:
                raise LwaError(400, "invalid_request", "The request is missing a required parameter : code")
            entry = self.auth_codes.pop(code, None)
            if entry is None or entry[1] != app.client_id or entry[2] <= self.clock.now():
                raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : code")
            spid = entry[0]
            refresh = self._token("Atzr|IwEB")
            self.refresh_tokens[refresh] = RefreshToken(refresh, app.client_id, spid)
            answer = {"access_token": self._issue_access(app.client_id, spid, None), "refresh_token": refresh}
        self.stats.token_grants += 1
        self.stats.token_grants_by_type[grant_type] += 1
        answer.update(token_type="bearer", expires_in=self.ACCESS_TOKEN_TTL)
        return answer

    def _issue_access(self, client_id: str, spid: str | None, scope: str | None) -> str:
        token = self._token("Atza|IwEB")
        expires = self.clock.now() + timedelta(seconds=self.ACCESS_TOKEN_TTL)
        self.access_tokens[token] = AccessToken(token, client_id, spid, scope, expires)
        return token

    def check_access_token(self, token: str | None) -> tuple[AccessToken | None, str]:
        """(token, "") when valid, else (None, the detail Amazon gives)."""
        with self.lock:
            at = self.access_tokens.get(token or "")
            if at is None:
                return None, "The access token you provided is revoked, malformed or invalid."
            if at.expires_at <= self.clock.now():
                return None, "The access token you provided has expired."
            return at, ""

    # ---------------------------------------------------------------- throttling and faults

    def _now_for_throttle(self) -> float:
        return self.clock.timestamp() if self.throttle_clock == "simulated" else time.monotonic()

    def take_token(self, principal: str, client_id: str, operation: str) -> bool:
        """One request against the (selling partner, application, operation) token bucket."""
        with self.lock:
            if not self.throttling:
                return True
            rate, burst = USAGE_PLANS[operation]
            now = self._now_for_throttle()
            key = (principal, client_id, operation)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(rate, burst, float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.last) * float(rate))
            bucket.last = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return True
            self.stats.throttled[operation] += 1
            return False

    def fail_next(self, operation: str, count: int = 1, status: int = 429) -> None:
        """Test hook: the next ``count`` calls of ``operation`` answer ``status`` (429, 500, 503)."""
        with self.lock:
            self.faults.setdefault(operation, []).extend([status] * count)

    def take_fault(self, operation: str) -> int | None:
        with self.lock:
            queue = self.faults.get(operation)
            if queue:
                self.stats.faults[operation] += 1
                return queue.pop(0)
            return None

    # ---------------------------------------------------------------- catalogue

    def add_product(self, product: Product) -> Product:
        with self.lock:
            self.products[(product.marketplace_id, product.asin)] = product
            self.competitors.setdefault((product.marketplace_id, product.asin), [])
            return product

    def add_competitor(self, offer: Offer) -> Offer:
        with self.lock:
            if (offer.marketplace_id, offer.asin) not in self.products:
                raise KeyError(f"unknown ASIN {offer.asin} in {offer.marketplace_id}")
            offer.next_reprice_at = self.clock.now() + timedelta(seconds=offer.reprice_every)
            self.competitors[(offer.marketplace_id, offer.asin)].append(offer)
            return offer

    def add_listing(self, listing: Listing) -> Listing:
        with self.lock:
            if (listing.marketplace_id, listing.asin) not in self.products:
                raise KeyError(f"unknown ASIN {listing.asin} in {listing.marketplace_id}")
            key = (listing.seller_id, listing.marketplace_id, listing.sku)
            old = self.listings.get(key)
            by_asin = self._listings_by_asin
            if old is not None:
                by_asin[(old.marketplace_id, old.asin)].remove(old)
            self.listings[key] = listing
            by_asin.setdefault((listing.marketplace_id, listing.asin), []).append(listing)
            return listing

    def listing(self, seller_id: str, sku: str, marketplace_id: str = US) -> Listing | None:
        return self.listings.get((seller_id, marketplace_id, sku))

    def seller_listings(self, seller_id: str, marketplace_id: str) -> list[Listing]:
        return [li for (s, m, _), li in self.listings.items() if s == seller_id and m == marketplace_id]

    def listing_offer(self, li: Listing) -> Offer:
        return Offer(
            seller_id=li.seller_id,
            asin=li.asin,
            marketplace_id=li.marketplace_id,
            condition=li.condition,
            sub_condition=li.condition_type.split("_", 1)[1] if li.condition == "Used" else "new",
            price=li.price,
            shipping=li.shipping,
            fulfillment="Amazon" if li.is_fba else "Merchant",
            feedback_rating=97,
            feedback_count=1250,
            handling_hours=(0, 0) if li.is_fba else li.handling_hours,
            quantity=li.quantity,
            ships_from=MARKETPLACES[li.marketplace_id].country_code,
            sku=li.sku,
        )

    def offers(self, marketplace_id: str, asin: str, condition: str | None = None) -> list[Offer]:
        """Every live offer on the ASIN (competitors and our sellers' buyable listings), cheapest first."""
        result = [o for o in self.competitors.get((marketplace_id, asin), []) if o.quantity > 0]
        for li in self._listings_by_asin.get((marketplace_id, asin), []):
            if "BUYABLE" in li.status:
                result.append(self.listing_offer(li))
        if condition is not None:
            result = [o for o in result if o.condition == condition]
        result.sort(key=lambda o: (o.landed, o.seller_id))
        return result

    # ---------------------------------------------------------------- Buy Box and fees

    @staticmethod
    def buybox_score(offer: Offer) -> Decimal:
        """Lower wins: landed price, weighted up for merchant fulfilment, weak feedback and slow handling."""
        weight = Decimal(1)
        if not offer.is_fba:
            weight += Decimal("0.05")
        weight += Decimal(100 - offer.feedback_rating) / Decimal(500)
        if offer.feedback_count < 100:
            weight += Decimal("0.03")
        if offer.handling_hours[1] > 48:
            weight += Decimal("0.03")
        return offer.landed * weight

    def buybox_winner(self, marketplace_id: str, asin: str) -> Offer | None:
        eligible = [
            o
            for o in self.offers(marketplace_id, asin, "New")
            if o.feedback_rating >= 80 or o.is_fba  # new sellers with poor feedback are not eligible
        ]
        if not eligible:
            return None
        return min(eligible, key=lambda o: (self.buybox_score(o), not o.is_fba, o.seller_id))

    def fees(self, marketplace_id: str, asin: str, price: Decimal, fba: bool) -> Fees:
        product = self.products[(marketplace_id, asin)]
        pct = CATEGORIES[product.category]["referral"]
        referral = max(money(price * pct), MIN_REFERRAL_FEE)
        return Fees(referral=referral, fba=FBA_FEES[product.size_tier] if fba else Decimal("0.00"))

    # ---------------------------------------------------------------- listings submissions

    def submit_patch(
        self, seller_id: str, sku: str, marketplace_ids: list[str], body: dict[str, Any]
    ) -> dict[str, Any]:
        """patchListingsItem. Returns the ListingsItemSubmissionResponse (ACCEPTED or INVALID). Price
        and quantity changes are applied ``patch_delay_seconds`` later on the simulated clock, and may
        be rejected then (a price far from the reference price; or a rejection forced by a test)."""
        with self.lock:
            li = self.listing(seller_id, sku, marketplace_ids[0]) if marketplace_ids else None
            submission_id = self._token("", 32).lower()
            submission_id = "-".join(
                [
                    submission_id[:8],
                    submission_id[8:12],
                    submission_id[12:16],
                    submission_id[16:20],
                    submission_id[20:32],
                ]
            )
            if li is None:
                raise KeyError(sku)
            issues: list[dict[str, Any]] = []
            change = PendingChange(
                submission_id,
                seller_id,
                sku,
                self.clock.now() + timedelta(seconds=self.patch_delay_seconds),
            )
            for patch in body.get("patches") or []:
                self._apply_patch_op(li, patch, change, issues)
            if not body.get("productType"):
                issues.append(
                    _issue("4000001", "'productType' is required but not supplied.", [], "MISSING_ATTRIBUTE")
                )
            if not body.get("patches"):
                issues.append(
                    _issue("4000001", "'patches' is required but not supplied.", [], "MISSING_ATTRIBUTE")
                )
            if issues:
                return {"sku": sku, "status": "INVALID", "submissionId": submission_id, "issues": issues}
            forced = self._forced_rejections.pop((seller_id, sku), None)
            if forced is not None:
                change.reject_with = forced
            elif change.price is not None:
                ref = self.products[(li.marketplace_id, li.asin)].list_price
                if change.price < ref * Decimal("0.3") or change.price > ref * Decimal("3"):
                    change.reject_with = _issue(
                        "18208",
                        "Potential pricing error: the price is significantly different from the "
                        "reference price for this item. The price change was not applied.",
                        ["purchasable_offer"],
                        "INVALID_PRICE",
                    )
            self.pending[submission_id] = change
            heapq.heappush(self._events, (change.effective_at, next(self._seq), submission_id))
            return {"sku": sku, "status": "ACCEPTED", "submissionId": submission_id, "issues": []}

    def withdraw(self, submission_id: str) -> None:
        """Forget a pending change (a VALIDATION_PREVIEW submission never applies)."""
        with self.lock:
            self.pending.pop(submission_id, None)
            self._events = [e for e in self._events if e[2] != submission_id]
            heapq.heapify(self._events)

    def reject_next_patch(
        self, seller_id: str, sku: str, message: str = "The submission was rejected."
    ) -> None:
        """Test hook: the next accepted patch of this SKU is rejected when it comes due."""
        with self.lock:
            self._forced_rejections[(seller_id, sku)] = _issue(
                "99022", message, ["purchasable_offer"], "INVALID_ATTRIBUTE"
            )

    def _apply_patch_op(
        self, li: Listing, patch: dict[str, Any], change: PendingChange, issues: list[dict[str, Any]]
    ) -> None:
        op, path, value = patch.get("op"), patch.get("path", ""), patch.get("value")
        attribute = path.removeprefix("/attributes/")
        if op not in ("add", "replace", "merge", "delete"):
            issues.append(
                _issue(
                    "4000003", f"Unsupported JSON Patch operation '{op}'.", [attribute], "INVALID_ATTRIBUTE"
                )
            )
            return
        if attribute not in ("purchasable_offer", "fulfillment_availability"):
            issues.append(
                _issue(
                    "90000900",
                    f"The simulator does not support changing '{attribute}'.",
                    [attribute],
                    "INVALID_ATTRIBUTE",
                )
            )
            return
        if op == "delete" or not isinstance(value, list) or not value:
            issues.append(
                _issue("4000003", f"'{attribute}' needs a non-empty value.", [attribute], "INVALID_ATTRIBUTE")
            )
            return
        entry = value[0]
        try:
            if attribute == "purchasable_offer":
                if entry.get("marketplace_id", li.marketplace_id) != li.marketplace_id:
                    raise ValueError("marketplace_id does not match the request")
                currency = entry.get("currency", MARKETPLACES[li.marketplace_id].currency)
                if currency != MARKETPLACES[li.marketplace_id].currency:
                    raise ValueError(f"currency {currency} is not the marketplace currency")
                for key, target in (
                    ("our_price", "price"),
                    ("minimum_seller_allowed_price", "min_price"),
                    ("maximum_seller_allowed_price", "max_price"),
                ):
                    if key in entry:
                        amount = money(Decimal(str(entry[key][0]["schedule"][0]["value_with_tax"])))
                        if amount <= 0:
                            raise ValueError(f"{key} must be greater than 0")
                        setattr(change, target, amount)
            else:
                channel = entry.get("fulfillment_channel_code", "DEFAULT")
                if li.is_fba or channel != "DEFAULT":
                    raise ValueError("the quantity of Amazon-fulfilled listings is managed by Amazon")
                quantity = int(entry["quantity"])
                if quantity < 0:
                    raise ValueError("quantity must not be negative")
                change.quantity = quantity
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else f"'{attribute}' is malformed."
            issues.append(_issue("90244", message, [attribute], "INVALID_ATTRIBUTE"))

    def _apply_change(self, change: PendingChange) -> None:
        li = self.listing_for_change(change)
        if li is None:
            change.state = "REJECTED"
            return
        if change.reject_with is not None:
            change.state = "REJECTED"
            li.issues.append(dict(change.reject_with, marketplaceIds=[li.marketplace_id]))
            return
        if change.price is not None:
            li.price = change.price
        if change.min_price is not None:
            li.min_price = change.min_price
        if change.max_price is not None:
            li.max_price = change.max_price
        if change.quantity is not None:
            li.quantity = change.quantity
        li.issues = [i for i in li.issues if i.get("code") != "18208"]
        li.updated = self.clock.now()
        change.state = "APPLIED"

    def listing_for_change(self, change: PendingChange) -> Listing | None:
        for (s, _, sku), li in self.listings.items():
            if s == change.seller_id and sku == change.sku:
                return li
        return None

    # ---------------------------------------------------------------- time passing

    def _run_until(self, start: datetime, target: datetime) -> None:
        with self.lock:
            now = start
            while now < target:
                step_end = min(target, now + timedelta(seconds=self.tick_seconds))
                if self._events and self._events[0][0] < step_end:
                    step_end = max(self._events[0][0], now)
                dt = (step_end - now).total_seconds()
                self.clock._set(step_end)
                while self._events and self._events[0][0] <= step_end:
                    _, _, sid = heapq.heappop(self._events)
                    job = self._jobs.pop(sid, None)
                    if job is not None:
                        job()
                    elif sid in self.pending:
                        self._apply_change(self.pending[sid])
                if dt > 0:
                    self._competitors_react(step_end)
                    self._buyers_arrive(step_end, dt)
                now = step_end

    def _competitors_react(self, now: datetime) -> None:
        for (marketplace_id, asin), offers in self.competitors.items():
            for offer in offers:
                if now < offer.next_reprice_at:
                    continue
                offer.next_reprice_at = now + timedelta(seconds=offer.reprice_every)
                if offer.quantity <= 0 and self.rng.random() < 0.5:
                    offer.quantity = self.rng.randint(5, 60)  # restocked
                self._reprice(marketplace_id, asin, offer)

    def _reprice(self, marketplace_id: str, asin: str, offer: Offer) -> None:
        if offer.strategy == "static":
            return
        new_price = offer.price
        if offer.strategy == "random_walk":
            step = Decimal(str(round(self.rng.gauss(0, 0.02), 4)))
            new_price = offer.price * (1 + step)
        else:
            others = [
                o
                for o in self.offers(marketplace_id, asin, offer.condition)
                if o.seller_id != offer.seller_id
            ]
            if not others:
                return
            if offer.strategy == "undercut":
                new_price = min(o.landed for o in others) - CENT - offer.shipping
            elif offer.strategy == "follow_buybox":
                winner = self.buybox_winner(marketplace_id, asin)
                if winner is None or winner.seller_id == offer.seller_id:
                    return
                new_price = winner.landed - offer.shipping
        old_price = offer.price
        offer.price = money(min(max(new_price, offer.floor), offer.ceiling))
        if offer.price != old_price and self.notifications_enabled:
            self._offer_changed(marketplace_id, asin)

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _buyers_arrive(self, now: datetime, dt: float) -> None:
        for (marketplace_id, asin), product in self.products.items():
            winner = self.buybox_winner(marketplace_id, asin)
            if winner is None:
                continue
            elasticity = float(product.list_price / max(winner.landed, CENT)) ** 2
            buyers = self._poisson(product.demand_per_hour * dt / 3600 * min(elasticity, 4.0))
            for _ in range(buyers):
                winner = self.buybox_winner(marketplace_id, asin)
                if winner is None:
                    break
                units = 1 if self.rng.random() < 0.85 else 2
                self._sell(now, product, winner, units)

    def _sell(self, now: datetime, product: Product, offer: Offer, units: int) -> None:
        if offer.sku is not None:
            li = self.listings[(offer.seller_id, offer.marketplace_id, offer.sku)]
            units = min(units, li.quantity)
            li.quantity -= units
        else:
            units = min(units, offer.quantity)
            offer.quantity -= units
        if units <= 0:
            return
        fees = self.fees(product.marketplace_id, product.asin, offer.price, offer.is_fba)
        seq = next(self._order_seq)
        order_id = order_id_for(seq)
        if offer.sku is not None and offer.seller_id in self.sellers:
            self._record_order(
                order_id, now, offer.seller_id, product, offer.sku, units, offer.price, offer.shipping, fees
            )
        self.sales.append(
            Sale(
                order_id=order_id,
                at=now,
                seller_id=offer.seller_id,
                asin=product.asin,
                marketplace_id=product.marketplace_id,
                sku=offer.sku,
                quantity=units,
                item_price=offer.price * units,
                shipping=offer.shipping * units,
                referral_fee=fees.referral * units,
                fba_fee=fees.fba * units,
            )
        )

    # ---------------------------------------------------------------- orders (Orders v0, Finances v0)

    def _add_order(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self._orders_by_seller.setdefault(order.seller_id, []).append(order)
        self._finance_index = None

    def _record_order(
        self,
        order_id: str,
        now: datetime,
        seller_id: str,
        product: Product,
        sku: str,
        units: int,
        unit_price: Decimal,
        unit_shipping: Decimal,
        fees: Fees,
    ) -> Order:
        """A buyer's purchase from one of our sellers becomes an order with a life ahead of it."""
        rng = self._orders_rng
        mp = MARKETPLACES[product.marketplace_id]
        afn = fees.fba > 0
        unshipped, shipped, canceled, refunded, reimbursed = timeline(rng, now, afn)
        price = decimal_to_cents(unit_price) * units
        order = Order(
            order_id=order_id,
            seller_id=seller_id,
            marketplace_id=mp.id,
            currency=mp.currency,
            sales_channel=mp.name,
            afn=afn,
            purchased=now,
            unshipped_at=unshipped,
            shipped_at=shipped,
            canceled_at=canceled,
            refunded_at=refunded,
            reimbursed_at=reimbursed,
            items=[
                OrderItem(
                    order_item_id=f"{(next(self._item_seq) * 7919) % 10**14:014d}",
                    sku=sku,
                    asin=product.asin,
                    title=product.title,
                    quantity=units,
                    price_cents=price,
                    tax_cents=price * TAX_RATES[mp.id] // 10_000,
                    shipping_cents=decimal_to_cents(unit_shipping) * units,
                    referral_cents=decimal_to_cents(fees.referral) * units,
                    fba_fee_cents=decimal_to_cents(fees.fba) * units,
                )
            ],
            prime=afn,
        )
        self._add_order(order)
        return order

    def generate_orders(
        self,
        count: int,
        *,
        seller_id: str | None = None,
        marketplace_id: str = US,
        days: float = 30,
        until: datetime | None = None,
        seed: int | str | None = None,
    ) -> list[Order]:
        """Bulk history: ``count`` orders of the seller's listings in ``marketplace_id``, purchased
        uniformly over the ``days`` before ``until`` (default: now), popular ASINs more often, each with
        its own timeline (so the recent ones are still Pending / Unshipped, ~3 % Canceled, ~5 % refunded,
        some FBA refunds reimbursed). Deterministic under the market seed (and ``seed``, if given: use
        it to make several batches differ). Stock is not touched, nor the market's own random stream.
        100,000 orders take about a second (at most 5,000,000 in all)."""
        with self.lock:
            seller_id = seller_id or next(iter(self.sellers))
            listings = [li for li in self.seller_listings(seller_id, marketplace_id) if li.active]
            if not listings:
                raise ValueError(f"{seller_id} has no listings in {marketplace_id}")
            rng = random.Random(f"{self.seed}-bulk-{seed}-{len(self.orders)}")  # noqa: S311 - a simulation
            mp = MARKETPLACES[marketplace_id]
            tax_bp = TAX_RATES[marketplace_id]
            pools: dict[bool, tuple[list[tuple[Any, ...]], list[float]]] = {}
            for afn in (True, False):
                rows, weights = [], []
                for li in listings:
                    if li.is_fba != afn:
                        continue
                    product = self.products[(li.marketplace_id, li.asin)]
                    fees = self.fees(li.marketplace_id, li.asin, li.price, li.is_fba)
                    rows.append(
                        (
                            li.sku,
                            li.asin,
                            product.title,
                            decimal_to_cents(li.price),
                            decimal_to_cents(fees.referral),
                            decimal_to_cents(fees.fba),
                            decimal_to_cents(li.shipping),
                        )
                    )
                    weights.append(max(product.demand_per_hour, 0.01))
                if rows:
                    pools[afn] = (rows, list(itertools.accumulate(weights)))
            afn_share = pools[True][1][-1] / sum(p[1][-1] for p in pools.values()) if True in pools else 0.0
            end = until or self.clock.now()
            span = days * 86400
            start = end - timedelta(seconds=span)
            offsets = sorted(rng.random() * span for _ in range(count))
            created: list[Order] = []
            item_seq = self._item_seq
            for offset in offsets:
                purchased = start + timedelta(seconds=offset)
                afn = (rng.random() < afn_share) if len(pools) == 2 else (True in pools)
                rows, cum = pools[afn]
                lines = 1 if (r := rng.random()) < 0.85 else (2 if r < 0.97 else 3)
                items = []
                for row in rng.choices(rows, cum_weights=cum, k=lines):
                    sku, asin, title, price, referral, fba_fee, shipping = row
                    qty = 1 if rng.random() < 0.9 else 2
                    items.append(
                        OrderItem(
                            f"{(next(item_seq) * 7919) % 10**14:014d}",
                            sku,
                            asin,
                            title,
                            qty,
                            price * qty,
                            price * qty * tax_bp // 10_000,
                            shipping * qty,
                            referral * qty,
                            fba_fee * qty,
                        )
                    )
                unshipped, shipped, canceled, refunded, reimbursed = timeline(rng, purchased, afn)
                order = Order(
                    order_id_for(next(self._bulk_seq)),
                    seller_id,
                    marketplace_id,
                    mp.currency,
                    mp.name,
                    afn,
                    purchased,
                    unshipped,
                    shipped,
                    canceled,
                    refunded,
                    reimbursed,
                    items,
                    rng.random() < 0.04,
                    afn,
                )
                self.orders[order.order_id] = order
                created.append(order)
            self._orders_by_seller.setdefault(seller_id, []).extend(created)
            self._finance_index = None
            return created

    def seller_orders(self, seller_id: str) -> list[Order]:
        return self._orders_by_seller.get(seller_id, [])

    def finance_index(self) -> list[tuple[datetime, str, str]]:
        """Every financial event any order will ever post, as (posted, order id, list name), sorted."""
        with self.lock:
            if self._finance_index is None:
                index = []
                for order in self.orders.values():
                    for posted, kind, _ in order.financial_events():
                        index.append((posted, order.order_id, kind))
                index.sort()
                self._finance_index = index
            return self._finance_index

    def financial_events_between(
        self, seller_id: str, after: datetime, before: datetime
    ) -> list[tuple[datetime, str, str]]:
        index = self.finance_index()
        lo = bisect.bisect_left(index, (after, "", ""))
        hi = bisect.bisect_right(index, (before, "\uffff", "\uffff"))
        return [e for e in index[lo:hi] if self.orders[e[1]].seller_id == seller_id]

    # ---------------------------------------------------------------- FBA inventory

    def fba_inventory(self, li: Listing) -> dict[str, int]:
        """The quantities of an FBA listing beyond what is fulfillable (stable per SKU: a hash-seeded
        draw, so they are the same whenever asked)."""
        rng = random.Random(f"{self.seed}-fba-{li.seller_id}-{li.sku}")  # noqa: S311 - a simulation
        inbound = rng.choice([0, 0, 0, 12, 24, 48])
        return {
            "inboundWorkingQuantity": inbound if rng.random() < 0.3 else 0,
            "inboundShippedQuantity": inbound,
            "inboundReceivingQuantity": rng.choice([0, 0, 2, 6]) if inbound else 0,
            "pendingCustomerOrderQuantity": rng.choice([0, 0, 1, 2, 3]) if li.quantity else 0,
            "fcProcessingQuantity": rng.choice([0, 0, 0, 1, 4]),
            "researchingQuantity": rng.choice([0, 0, 0, 0, 1]),
            "customerDamagedQuantity": rng.choice([0, 0, 0, 1]),
            "warehouseDamagedQuantity": rng.choice([0, 0, 0, 0, 1]),
            "defectiveQuantity": rng.choice([0, 0, 0, 1]),
        }

    # ---------------------------------------------------------------- reports and feeds

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._doc_seq):011d}"

    def _schedule(self, key: str, due: datetime, job: Callable[[], None]) -> None:
        self._jobs[key] = job
        heapq.heappush(self._events, (due, next(self._seq), key))

    def add_document(self, content: bytes, content_type: str, compressed: bool = False) -> Document:
        with self.lock:
            doc = Document(
                self._new_id("amzn1.tortuga.4."), content_type, stored(content, compressed), compressed
            )
            self.documents[doc.document_id] = doc
            return doc

    def create_report(
        self, seller_id: str, report_type: str, marketplace_ids: list[str], options: dict[str, Any] | None
    ) -> Report:
        """createReport. IN_QUEUE for ``report_delays[0]`` seconds, IN_PROGRESS for ``report_delays[1]``,
        then DONE with a document reflecting the market at that moment."""
        with self.lock:
            now = self.clock.now()
            report = Report(
                report_id=str(50_000 + len(self.reports) + 1),
                seller_id=seller_id,
                report_type=report_type,
                marketplace_ids=marketplace_ids,
                created=now,
                started=now + timedelta(seconds=self.report_delays[0]),
                finished=now + timedelta(seconds=sum(self.report_delays)),
                options=options or {},
            )
            self.reports[report.report_id] = report
            self._schedule(f"report:{report.report_id}", report.finished, lambda: self._finish_report(report))
            return report

    def _finish_report(self, report: Report) -> None:
        listings = [
            li
            for mid in report.marketplace_ids
            for li in sorted(self.seller_listings(report.seller_id, mid), key=lambda x: x.sku)
        ]
        content = merchant_listings_report(
            listings, {k: p.title for k, p in self.products.items()}, report.marketplace_ids
        )
        doc = self.add_document(content, "text/tab-separated-values; charset=UTF-8", self.gzip_documents)
        report.document_id = doc.document_id

    def create_feed_document(self, content_type: str) -> Document:
        with self.lock:
            doc = Document(self._new_id("amzn1.tortuga.3."), content_type, None, False, upload=True)
            self.documents[doc.document_id] = doc
            return doc

    def create_feed(
        self, seller_id: str, feed_type: str, marketplace_ids: list[str], document_id: str
    ) -> Feed:
        """createFeed. Processed ``feed_delays[0]`` seconds later (IN_PROGRESS), DONE after
        ``feed_delays[1]`` more; its price/quantity changes then go through ``submit_patch`` (so they
        apply ``patch_delay_seconds`` after processing, and can still be rejected)."""
        with self.lock:
            now = self.clock.now()
            feed = Feed(
                feed_id=str(60_000 + len(self.feeds) + 1),
                seller_id=seller_id,
                feed_type=feed_type,
                marketplace_ids=marketplace_ids,
                input_document_id=document_id,
                created=now,
                started=now + timedelta(seconds=self.feed_delays[0]),
                finished=now + timedelta(seconds=sum(self.feed_delays)),
            )
            self.feeds[feed.feed_id] = feed
            self._schedule(f"feed:{feed.feed_id}", feed.started, lambda: self._process_feed(feed))
            return feed

    def _process_feed(self, feed: Feed) -> None:
        doc = self.documents.get(feed.input_document_id)
        report, fatal = process_listings_feed(self, feed, doc.content if doc else None)
        feed.fatal = fatal
        result = self.add_document(report, "application/json; charset=UTF-8")
        feed.result_document_id = result.document_id

    # ---------------------------------------------------------------- notifications

    def subscribe(self, url: str, secret: str | None = None) -> None:
        """Deliver ANY_OFFER_CHANGED notifications to ``url`` (JSON POST from the server's thread). With
        ``secret``, each POST is signed as SellerPilot's intake expects (``notifications.sign``)."""
        with self.lock:
            if url not in self.subscribers:
                self.subscribers.append(url)
            if secret:
                self.subscriber_secrets[url] = secret
            else:
                self.subscriber_secrets.pop(url, None)
            self.notifications_enabled = True

    def competitor_move(self, marketplace_id: str, asin: str, factor: Decimal) -> Offer | None:
        """Move one competitor's price on ``asin`` by ``factor`` (within its floor and ceiling), as a
        competitor's repricer would, and notify the subscribers; None when the ASIN has no competitor.
        For load tests and benchmarks (competitors also move on their own as the clock runs)."""
        with self.lock:
            offers = self.competitors.get((marketplace_id, asin)) or []
            if not offers:
                return None
            offer = self.rng.choice(offers)
            old_price = offer.price
            offer.price = money(min(max(offer.price * factor, offer.floor), offer.ceiling))
            if offer.price == old_price:
                offer.price = money(min(max(old_price - CENT, offer.floor), offer.ceiling))
            if self.notifications_enabled:
                self._offer_changed(marketplace_id, asin)
            return offer

    def _offer_changed(self, marketplace_id: str, asin: str) -> None:
        ours = {
            li.seller_id
            for li in self._listings_by_asin.get((marketplace_id, asin), [])
            if li.seller_id in self.sellers
        }
        for seller_id in sorted(ours):
            seq = next(self._notification_seq)
            payload = any_offer_changed(self, seller_id, marketplace_id, asin, seq)
            self.pending_notifications.append(payload)
            for url in self.subscribers:
                self.outbox.put((url, payload))
            for sink in self.notification_sinks:
                sink(seller_id, payload)

    # ---------------------------------------------------------------- inspection

    def snapshot(self) -> dict[str, Any]:
        """A plain, comparable picture of the market state (for determinism checks and debugging)."""
        with self.lock:
            return {
                "now": self.clock.now().isoformat(),
                "competitors": {
                    f"{m}/{a}": [(o.seller_id, str(o.price), o.quantity) for o in offers]
                    for (m, a), offers in self.competitors.items()
                },
                "listings": {
                    f"{s}/{m}/{k}": (str(li.price), li.quantity) for (s, m, k), li in self.listings.items()
                },
                "sales": [
                    (s.order_id, s.seller_id, s.asin, s.quantity, str(s.item_price)) for s in self.sales
                ],
            }

    # ---------------------------------------------------------------- factory

    @classmethod
    def demo(cls, seed: int = 7, skus: int = 200, **kwargs: Any) -> Market:
        """A realistic catalogue for one seller (see DEMO_* constants for its credentials): ``skus``
        listings in the US marketplace (a few also in CA), each ASIN with 2-8 competitors."""
        market = cls(seed, **kwargs)
        rng = market.rng
        market.add_app(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        market.register_application(
            DEMO_APPLICATION_ID, DEMO_CLIENT_ID, DEMO_REDIRECT_URIS, name="SellerPilot (development)"
        )
        market.add_seller(DEMO_SELLER_ID, "Demo Outfitters", [US, CA, UK, DE])
        rt = RefreshToken(DEMO_REFRESH_TOKEN, DEMO_CLIENT_ID, DEMO_SELLER_ID)
        market.refresh_tokens[DEMO_REFRESH_TOKEN] = rt
        competitor_ids = [_seller_id(rng) for _ in range(40)]
        feedback = {
            sid: (rng.choice([72, 85, 90, 93, 95, 97, 98, 99, 100]), rng.choice([12, 80, 450, 2300, 18000]))
            for sid in competitor_ids
        }
        categories = list(CATEGORIES)
        for i in range(skus):
            category = categories[i % len(categories)]
            asin = "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
            ref = money(Decimal(rng.randint(799, 8999)) / 100)
            product = market.add_product(
                Product(
                    asin=asin,
                    title=f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}",
                    category=category,
                    size_tier=rng.choice(
                        ["small_standard", "large_standard", "large_standard", "small_oversize"]
                    ),
                    list_price=ref,
                    demand_per_hour=round(rng.lognormvariate(-1.5, 0.8), 4),
                    sales_rank=rng.randint(200, 250_000),
                )
            )
            for sid in rng.sample(competitor_ids, rng.randint(2, 8)):
                fba = rng.random() < 0.55
                used = rng.random() < 0.15
                rating, count = feedback[sid]
                price = money(ref * Decimal(str(round(rng.uniform(0.82, 1.12), 3))))
                market.add_competitor(
                    Offer(
                        seller_id=sid,
                        asin=asin,
                        marketplace_id=US,
                        condition="Used" if used else "New",
                        sub_condition=rng.choice(["very_good", "good", "acceptable"]) if used else "new",
                        price=money(price * Decimal("0.8")) if used else price,
                        shipping=Decimal("0.00")
                        if fba or rng.random() < 0.5
                        else money(Decimal(rng.choice([399, 499, 599])) / 100),
                        fulfillment="Amazon" if fba else "Merchant",
                        feedback_rating=rating,
                        feedback_count=count,
                        handling_hours=(0, 0) if fba else rng.choice([(24, 48), (48, 72), (72, 96)]),
                        quantity=rng.randint(0, 80),
                        strategy=rng.choice(STRATEGIES),
                        floor=money(ref * Decimal("0.7")),
                        ceiling=money(ref * Decimal("1.5")),
                        reprice_every=rng.choice([900, 1800, 3600, 7200]),
                    )
                )
            fba = rng.random() < 0.6
            sku = f"DM-{i:04d}-{asin[-4:]}"
            created = DEFAULT_START - timedelta(days=rng.randint(30, 900))
            market.add_listing(
                Listing(
                    seller_id=DEMO_SELLER_ID,
                    sku=sku,
                    asin=asin,
                    marketplace_id=US,
                    price=money(ref * Decimal(str(round(rng.uniform(0.9, 1.1), 3)))),
                    quantity=rng.randint(0, 120) if rng.random() > 0.05 else 0,
                    fulfillment_channel="AMAZON_NA" if fba else "DEFAULT",
                    condition_type="new_new",
                    item_name=product.title,
                    product_type=product.product_type,
                    created=created,
                    updated=created + timedelta(days=rng.randint(0, 29)),
                    min_price=money(ref * Decimal("0.75")),
                    max_price=money(ref * Decimal("1.4")),
                )
            )
        return market


def _issue(code: str, message: str, attributes: list[str], category: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "severity": "ERROR",
        "attributeNames": attributes,
        "categories": [category],
    }


def _seller_id(rng: random.Random) -> str:
    return "A" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))


DEMO_SELLER_ID = "A3SIMDEMOSELL1"
DEMO_CLIENT_ID = "amzn1.application-oa2-client.simulatordemo0000000000000001"
DEMO_CLIENT_SECRET = "amzn1.oa2-cs.v1.simulatordemosecret"
DEMO_REFRESH_TOKEN = "Atzr|IwEBISimulatorDemoRefreshToken0001"
#: The demo app's SP-API application id (config/settings.py SP_API_APP_ID outside production) and its
#: OAuth redirect URIs: SellerPilot's consent callback on a loopback host, any port (as RFC 8252 §7.3 has
#: it for loopback redirects), so `make run` on any PORT and tests' live servers can be sent back.
DEMO_APPLICATION_ID = "amzn1.sp.solution.sellerpilot-development"
DEMO_REDIRECT_URIS = ("http://127.0.0.1/connections/callback/", "http://localhost/connections/callback/")

_ADJECTIVES = [
    "Premium",
    "Compact",
    "Deluxe",
    "Eco",
    "Pro",
    "Classic",
    "Ultra",
    "Portable",
    "Smart",
    "Heavy-Duty",
]
_NOUNS = {
    "Home & Kitchen": ["Chef Knife", "Cutting Board", "French Press", "Spice Rack", "Cast Iron Skillet"],
    "Toys & Games": [
        "Building Blocks Set",
        "Puzzle 1000 Pieces",
        "Action Figure",
        "Board Game",
        "Plush Bear",
    ],
    "Sports & Outdoors": ["Yoga Mat", "Water Bottle", "Resistance Bands", "Camping Lantern", "Jump Rope"],
    "Electronics": ["USB-C Charger", "Bluetooth Speaker", "HDMI Cable", "Wireless Mouse", "Power Bank"],
    "Beauty": ["Face Serum", "Hair Dryer", "Makeup Brush Set", "Nail Kit", "Body Lotion"],
    "Pet Supplies": ["Dog Leash", "Cat Scratcher", "Pet Bed", "Chew Toy", "Grooming Brush"],
}
