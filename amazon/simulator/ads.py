"""The Amazon Ads API side of the simulated marketplace: advertising profiles, Sponsored Products
campaigns / ad groups / product ads / keywords / product targets, ad auctions that run as the market clock
advances, and async (v3) reports of the daily metrics they produce.

Pure Python (no Django). One ``AdsMarket`` per ``Market`` (``ads_for(market)``); it chains itself into
the market clock, so ``market.clock.advance(...)`` plays out the buyers *and* the auctions. With no
enabled keyword or target the market advances exactly as without ads (existing determinism untouched).

The auction model (per keyword / product target, per simulated hour, on its own random stream
``Random(f"{seed}-ads")``):

- An ad is eligible only when one of its ad group's enabled product ads is for a listing of the
  advertiser that currently **wins the Buy Box** (``market.buybox_winner``), as on Amazon.
- Traffic: searches per hour = the ASIN's ``demand_per_hour`` x 400 x a match-type factor (EXACT 1,
  PHRASE 1.8, BROAD 3) x a stable per-keyword draw (lognormal); a product target ``ASIN_SAME_AS``
  gets the targeted ASIN's demand x 250 (detail page views), other expressions the ad's own x 100.
- Competition: a stable per-keyword *competitive bid* ``m`` (about 2 % of the list price, lognormal,
  at least 0.15; EXACT x1.2, BROAD x0.85). With bid ``b`` the impression share is ``b^3 / (b^3 + m^3)``;
  impressions ~ Poisson(searches x share x 0.9).
- Clicks ~ Binomial(impressions, CTR) with CTR = 0.35 % x (0.6 + 0.8 share) x match factor.
- Cost per click (second-price-ish): ``min(b, max(0.02, 0.8 m sqrt(b/m)))`` - never above the bid.
- Daily budget (campaign ``budget``, in the profile's time zone): clicks stop when the next one would
  exceed it; the impressions of that hour are cut in the same proportion. Spend never exceeds budget.
- Conversions: Binomial(clicks, CVR) with CVR = 10 % x min(2, (list price / our price)^2) x (1.1 FBA,
  0.9 merchant). Each conversion is a real purchase in the market (``market._sell``): stock depletes,
  an order appears in Orders/Finances, ``market.sales`` records it; ``sales`` is what was actually sold.
- Metrics are kept per entity and day (profile time zone); every attribution window (1d/7d/14d/30d)
  reports the same same-day purchases.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import random
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .market import DEMO_CLIENT_ID, DEMO_SELLER_ID, MARKETPLACES, Listing, Market, Offer, RefreshToken

JSON = dict[str, Any]
CENT = Decimal("0.01")
DEMO_ADS_REFRESH_TOKEN = "Atzr|IwEBISimulatorDemoAdsRefreshToken0001"
ADS_SCOPE = "advertising::campaign_management"
#: The demo LWA app's "Allowed Return URLs" for the Ads consent page (ads_app.py, ``/ap/oa``):
#: SellerPilot's Ads callback on a loopback host, any port (RFC 8252 §7.3), so `make run` on any PORT and
#: tests' live servers can be sent back.
DEMO_ADS_RETURN_URLS = (
    "http://127.0.0.1/connections/ads/callback/",
    "http://localhost/connections/ads/callback/",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

TIMEZONES = {
    "US": "America/Los_Angeles",
    "CA": "America/Los_Angeles",
    "MX": "America/Los_Angeles",
    "GB": "Europe/London",
    "DE": "Europe/Paris",
    "FR": "Europe/Paris",
}
STATES = ("ENABLED", "PAUSED", "ARCHIVED")
MATCH_TYPES = ("EXACT", "PHRASE", "BROAD")
MATCH_TRAFFIC = {"EXACT": 1.0, "PHRASE": 1.8, "BROAD": 3.0}
MATCH_CTR = {"EXACT": 1.3, "PHRASE": 1.0, "BROAD": 0.7, "TARGETING_EXPRESSION": 0.9}
MATCH_PREMIUM = {"EXACT": 1.2, "PHRASE": 1.0, "BROAD": 0.85, "TARGETING_EXPRESSION": 1.0}
EXPRESSION_TYPES = (
    "ASIN_SAME_AS",
    "ASIN_CATEGORY_SAME_AS",
    "ASIN_BRAND_SAME_AS",
    "ASIN_PRICE_LESS_THAN",
    "ASIN_PRICE_BETWEEN",
    "ASIN_PRICE_GREATER_THAN",
    "ASIN_REVIEW_RATING_LESS_THAN",
    "ASIN_REVIEW_RATING_BETWEEN",
    "ASIN_REVIEW_RATING_GREATER_THAN",
    "ASIN_EXPANDED_FROM",
)
#: Searches for a keyword (page views of a targeted ASIN) per organic buyer of the advertised ASIN.
SEARCHES_PER_BUYER = 400
VIEWS_PER_BUYER = 250
MIN_BID, MAX_BID = Decimal("0.02"), Decimal("1000")
MIN_BUDGET, MAX_BUDGET = Decimal("1"), Decimal("1000000")
REPORT_RETENTION_DAYS = 95
REPORT_MAX_DAYS = 31


def money(value: Decimal | float | int | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _stable(*parts: object) -> random.Random:
    """A random stream that depends only on its key (the same keyword draws the same traffic forever)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))  # noqa: S311 - a simulation


# --------------------------------------------------------------------------------------------------
# Entities (kept close to their v3 wire shape; Decimal money; "_" keys are internal)


@dataclass(frozen=True)
class Kind:
    """One Sponsored Products v3 entity type: its path, id field, media type and editable fields."""

    name: str  # campaign
    path: str  # campaigns
    id_field: str  # campaignId
    media: str  # application/vnd.spCampaign.v3+json
    required: tuple[str, ...]
    editable: tuple[str, ...]
    parents: tuple[str, ...] = ()  # campaignId, adGroupId

    @property
    def collection(self) -> str:
        """The JSON key of request and response lists (``targetingClauses`` for ``/sp/targets``)."""
        return "targetingClauses" if self.path == "targets" else self.path


KINDS: dict[str, Kind] = {
    k.path: k
    for k in (
        Kind(
            "campaign",
            "campaigns",
            "campaignId",
            "application/vnd.spCampaign.v3+json",
            ("name", "targetingType", "state", "budget"),
            ("name", "state", "budget", "startDate", "endDate", "dynamicBidding", "portfolioId", "tags"),
        ),
        Kind(
            "adGroup",
            "adGroups",
            "adGroupId",
            "application/vnd.spAdGroup.v3+json",
            ("campaignId", "name", "state", "defaultBid"),
            ("name", "state", "defaultBid"),
            ("campaignId",),
        ),
        Kind(
            "productAd",
            "productAds",
            "adId",
            "application/vnd.spProductAd.v3+json",
            ("campaignId", "adGroupId", "state"),
            ("state",),
            ("campaignId", "adGroupId"),
        ),
        Kind(
            "keyword",
            "keywords",
            "keywordId",
            "application/vnd.spKeyword.v3+json",
            ("campaignId", "adGroupId", "state", "keywordText", "matchType"),
            ("state", "bid"),
            ("campaignId", "adGroupId"),
        ),
        Kind(
            "targetingClause",
            "targets",
            "targetId",
            "application/vnd.spTargetingClause.v3+json",
            ("campaignId", "adGroupId", "state", "expression", "expressionType"),
            ("state", "bid", "expression", "expressionType"),
            ("campaignId", "adGroupId"),
        ),
    )
}


@dataclass(frozen=True)
class Profile:
    profile_id: int
    seller_id: str
    marketplace_id: str

    @property
    def country_code(self) -> str:
        return MARKETPLACES[self.marketplace_id].country_code

    @property
    def currency(self) -> str:
        return MARKETPLACES[self.marketplace_id].currency

    @property
    def timezone(self) -> str:
        return TIMEZONES.get(self.country_code, "UTC")


@dataclass
class Metrics:
    impressions: int = 0
    clicks: int = 0
    cost: Decimal = Decimal("0.00")
    purchases: int = 0
    units: int = 0
    sales: Decimal = Decimal("0.00")

    def add(self, other: Metrics) -> None:
        self.impressions += other.impressions
        self.clicks += other.clicks
        self.cost += other.cost
        self.purchases += other.purchases
        self.units += other.units
        self.sales += other.sales


@dataclass
class AdsReport:
    report_id: str
    profile_id: int
    name: str
    start_date: date
    end_date: date
    configuration: JSON
    created: datetime
    started: datetime
    finished: datetime
    content: bytes | None = None  # gzip JSON, made when it completes
    failure: str | None = None

    def status_at(self, now: datetime) -> str:
        if now < self.started:
            return "PENDING"
        if now < self.finished or (self.content is None and self.failure is None):
            return "PROCESSING"
        return "FAILED" if self.failure else "COMPLETED"


@dataclass
class AdsStats:
    auctions: int = 0
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    budget_capped: int = 0  # (campaign, day) pairs that ran out of budget
    throttled: int = 0


class EntityError(Exception):
    """One item of a multi-status request failed: ``error_type`` and the v3 error value."""

    def __init__(self, error_type: str, reason: str, message: str, location: str = "") -> None:
        super().__init__(message)
        self.error_type, self.reason, self.message, self.location = error_type, reason, message, location

    def body(self) -> JSON:
        value: JSON = {"reason": self.reason, "message": self.message}
        if self.location:
            value["cause"] = {"location": self.location}
        return {"errorType": self.error_type, "errorValue": {self.error_type: value}}


@dataclass
class _Bucket:
    tokens: float
    last: float


# --------------------------------------------------------------------------------------------------
# The model

_REGISTRY: weakref.WeakKeyDictionary[Market, AdsMarket] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def ads_for(market: Market) -> AdsMarket:
    """The market's Ads side (created, and hooked into its clock, on first use)."""
    with _REGISTRY_LOCK:
        ads = _REGISTRY.get(market)
        if ads is None:
            ads = _REGISTRY[market] = AdsMarket(market)
        return ads


class AdsMarket:
    """Profiles, Sponsored Products entities, auctions, metrics and reports of one ``Market``.
    All mutation happens under ``market.lock``."""

    #: Ads API throttling (not published per operation; Amazon throttles dynamically): a token bucket
    #: per (client id, profile) over every Ads call, on the market's throttle clock.
    rate: float = 10.0
    burst: int = 20

    def __init__(self, market: Market) -> None:
        self.market = market
        self.lock = market.lock
        self.rng = random.Random(f"{market.seed}-ads")  # noqa: S311 - a simulation
        self.stats = AdsStats()
        self.entities: dict[str, dict[str, JSON]] = {k: {} for k in KINDS}
        self._ids = itertools.count(1)
        self.metrics: dict[tuple[str, str, date], Metrics] = {}  # (kind path, entity id, day)
        self.spend: dict[tuple[str, date], Decimal] = {}  # (campaign id, day) -> cost
        self.reports: dict[str, AdsReport] = {}
        self.report_delays = (30.0, 60.0)  # seconds PENDING, then PROCESSING
        self.refresh_tokens: set[str] = set()  # LWA refresh tokens granted for the Ads API
        self.access_tokens: set[str] = set()  # access tokens issued for one of them
        self._codes: set[str] = set()
        self._buckets: dict[tuple[str, int | str], _Bucket] = {}
        #: LWA client id -> its security profile's Allowed Return URLs (the Ads consent page checks them)
        self.return_urls: dict[str, list[str]] = {}
        if DEMO_SELLER_ID in market.sellers and DEMO_CLIENT_ID in market.apps:
            self._register_refresh_token(DEMO_ADS_REFRESH_TOKEN, DEMO_CLIENT_ID, DEMO_SELLER_ID)
        if DEMO_CLIENT_ID in market.apps:
            self.return_urls[DEMO_CLIENT_ID] = list(DEMO_ADS_RETURN_URLS)
        self._inner: Callable[[datetime, datetime], None] | None = market.clock._on_advance
        market.clock._on_advance = self._run_until

    # ---------------------------------------------------------------- authorisation (LWA)

    def _register_refresh_token(self, token: str, client_id: str, seller_id: str) -> None:
        self.market.refresh_tokens[token] = RefreshToken(token, client_id, seller_id)
        self.refresh_tokens.add(token)

    def authorize(self, seller_id: str, client_id: str) -> str:
        """The advertiser grants ``advertising::campaign_management`` to the app: an Ads refresh token."""
        with self.lock:
            token = self.market.authorize(seller_id, client_id)
            self.refresh_tokens.add(token)
            return token

    def issue_authorization_code(self, seller_id: str, client_id: str) -> str:
        """The Ads consent step: a code whose exchange (LWA authorization_code) yields an Ads token."""
        with self.lock:
            code = self.market.issue_authorization_code(seller_id, client_id)
            self._codes.add(code)
            return code

    def allow_return_url(self, client_id: str, url: str) -> None:
        """Add an Allowed Return URL to the LWA app's security profile (for the Ads consent page)."""
        with self.lock:
            if client_id not in self.market.apps:
                raise KeyError("unknown LWA app")
            self.return_urls.setdefault(client_id, []).append(url)

    def return_url_allowed(self, client_id: str, url: str) -> bool:
        """Whether `url` is an Allowed Return URL of the app; a registered loopback URL without a port
        matches any port (RFC 8252 §7.3)."""
        registered = self.return_urls.get(client_id, [])
        if url in registered:
            return True
        asked = urlsplit(url)
        if asked.hostname not in LOOPBACK_HOSTS:
            return False
        return any(
            known.hostname == asked.hostname
            and known.port is None
            and (known.scheme, known.path, known.query) == (asked.scheme, asked.path, asked.query)
            for known in map(urlsplit, registered)
        )

    def note_grant(self, form: dict[str, str], answer: dict[str, Any]) -> None:
        """Called by the LWA endpoint after a successful grant: remembers Ads-scoped access tokens."""
        with self.lock:
            grant = form.get("grant_type")
            if grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
                self.access_tokens.add(str(answer["access_token"]))
            elif grant == "authorization_code" and form.get("code") in self._codes:
                self._codes.discard(form["code"])
                self.refresh_tokens.add(str(answer["refresh_token"]))
                self.access_tokens.add(str(answer["access_token"]))

    # ---------------------------------------------------------------- profiles

    @staticmethod
    def profile_id_for(seller_id: str, marketplace_id: str) -> int:
        digest = hashlib.sha256(f"{seller_id}/{marketplace_id}".encode()).hexdigest()
        return 1_000_000_000_000 + int(digest[:12], 16) % 9_000_000_000_000

    def profiles(self, seller_id: str) -> list[Profile]:
        seller = self.market.sellers.get(seller_id)
        if seller is None:
            return []
        return [Profile(self.profile_id_for(seller_id, m), seller_id, m) for m in seller.marketplace_ids]

    def profile(self, profile_id: int) -> Profile | None:
        for seller_id in self.market.sellers:
            for p in self.profiles(seller_id):
                if p.profile_id == profile_id:
                    return p
        return None

    def day(self, profile: Profile, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(profile.timezone)).date()

    # ---------------------------------------------------------------- throttling

    def take_token(self, client_id: str, scope: int | str) -> float:
        """0 when admitted, else the seconds to wait (Retry-After)."""
        with self.lock:
            if not self.market.throttling:
                return 0.0
            now = self.market._now_for_throttle()
            key = (client_id, scope)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.last) * self.rate)
            bucket.last = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            self.stats.throttled += 1
            return (1 - bucket.tokens) / self.rate

    # ---------------------------------------------------------------- entities

    def _new_id(self) -> str:
        return str(100_000_000_000_000 + next(self._ids) * 7_919)

    def entity(self, kind: str, entity_id: str) -> JSON | None:
        return self.entities[kind].get(str(entity_id))

    def create(self, kind: Kind, profile: Profile, item: Any) -> JSON:
        """Create one entity from its v3 JSON; raises EntityError."""
        if not isinstance(item, dict):
            raise EntityError("malformedValueError", "MALFORMED_VALUE", "The item must be an object.")
        for name in kind.required:
            if item.get(name) in (None, ""):
                raise EntityError("missingValueError", "MISSING_VALUE", f"'{name}' is required.", f"$.{name}")
        now = self.market.clock.now()
        entity: JSON = {kind.id_field: self._new_id(), "_profile": profile.profile_id, "_created": now}
        for name in kind.parents:
            self._parent(kind, profile, name, item[name])
            entity[name] = str(item[name])
        if kind.path == "campaigns":
            if item["targetingType"] not in ("AUTO", "MANUAL"):
                raise EntityError(
                    "invalidArgumentError",
                    "INVALID_ARGUMENT",
                    "targetingType is AUTO or MANUAL.",
                    "$.targetingType",
                )
            entity["targetingType"] = item["targetingType"]
            entity["startDate"] = str(item.get("startDate") or self.day(profile, now).isoformat())
            entity["dynamicBidding"] = {"strategy": "LEGACY_FOR_SALES", "placementBidding": []}
            entity["tags"] = {}
        elif kind.path == "keywords":
            if item["matchType"] not in MATCH_TYPES:
                raise EntityError(
                    "invalidArgumentError",
                    "INVALID_ARGUMENT",
                    "matchType is EXACT, PHRASE or BROAD.",
                    "$.matchType",
                )
            text = str(item["keywordText"]).strip()
            if not text or len(text) > 80 or len(text.split()) > 10:
                raise EntityError(
                    "invalidArgumentError",
                    "INVALID_ARGUMENT",
                    "keywordText has 1-10 words and at most 80 characters.",
                    "$.keywordText",
                )
            duplicate = any(
                k["adGroupId"] == entity["adGroupId"]
                and k["keywordText"].lower() == text.lower()
                and k["matchType"] == item["matchType"]
                and k["state"] != "ARCHIVED"
                for k in self.entities["keywords"].values()
            )
            if duplicate:
                raise EntityError(
                    "duplicateValueError", "DUPLICATE_VALUE", "The keyword already exists.", "$.keywordText"
                )
            entity["keywordText"], entity["matchType"] = text, item["matchType"]
            entity["nativeLanguageKeyword"] = item.get("nativeLanguageKeyword", text)
        elif kind.path == "productAds":
            entity.update(self._advertised(profile, item))
        self._apply(kind, profile, entity, item, kind.required + kind.editable, creating=True)
        self.entities[kind.path][entity[kind.id_field]] = entity
        return entity

    def update(self, kind: Kind, profile: Profile, item: Any) -> JSON:
        if not isinstance(item, dict) or not item.get(kind.id_field):
            raise EntityError(
                "missingValueError", "MISSING_VALUE", f"'{kind.id_field}' is required.", f"$.{kind.id_field}"
            )
        entity = self._owned(kind, profile, str(item[kind.id_field]))
        if entity["state"] == "ARCHIVED":
            raise EntityError(
                "entityStateError", "ENTITY_STATE", "An archived entity cannot be changed.", "$.state"
            )
        unknown = [k for k in item if k != kind.id_field and k not in kind.editable]
        if unknown:
            raise EntityError(
                "invalidArgumentError",
                "INVALID_ARGUMENT",
                f"'{unknown[0]}' cannot be changed.",
                f"$.{unknown[0]}",
            )
        self._apply(kind, profile, dict(entity), item, kind.editable, creating=False)  # validate first
        self._apply(kind, profile, entity, item, kind.editable, creating=False)
        return entity

    def archive(self, kind: Kind, profile: Profile, entity_id: str) -> JSON:
        entity = self._owned(kind, profile, str(entity_id))
        entity["state"] = "ARCHIVED"
        entity["_updated"] = self.market.clock.now()
        return entity

    def _owned(self, kind: Kind, profile: Profile, entity_id: str) -> JSON:
        entity = self.entities[kind.path].get(entity_id)
        if entity is None or entity["_profile"] != profile.profile_id:
            raise EntityError(
                "entityNotFoundError",
                "ENTITY_NOT_FOUND",
                f"{kind.name} {entity_id} was not found.",
                f"$.{kind.id_field}",
            )
        return entity

    def _parent(self, kind: Kind, profile: Profile, name: str, value: Any) -> JSON:
        parent_kind = KINDS["campaigns" if name == "campaignId" else "adGroups"]
        parent = self.entities[parent_kind.path].get(str(value))
        if parent is None or parent["_profile"] != profile.profile_id:
            raise EntityError(
                "parentEntityError", "PARENT_ENTITY_NOT_FOUND", f"{name} {value} was not found.", f"$.{name}"
            )
        if parent["state"] == "ARCHIVED":
            raise EntityError(
                "parentEntityError", "PARENT_ENTITY_ARCHIVED", f"{name} {value} is archived.", f"$.{name}"
            )
        return parent

    def _advertised(self, profile: Profile, item: JSON) -> JSON:
        ad_group = self.entities["adGroups"][str(item["adGroupId"])]
        if ad_group["campaignId"] != str(item["campaignId"]):
            raise EntityError(
                "parentEntityError",
                "PARENT_ENTITY_MISMATCH",
                "The ad group is not in that campaign.",
                "$.adGroupId",
            )
        sku, asin = item.get("sku"), item.get("asin")
        if not sku:
            raise EntityError("missingValueError", "MISSING_VALUE", "Sellers advertise a 'sku'.", "$.sku")
        li = self.market.listing(profile.seller_id, str(sku), profile.marketplace_id)
        if li is None or (asin and asin != li.asin):
            raise EntityError(
                "invalidArgumentError",
                "INVALID_ARGUMENT",
                f"SKU {sku} is not a listing of the advertiser in this marketplace.",
                "$.sku",
            )
        return {"sku": li.sku, "asin": li.asin}

    def _apply(
        self,
        kind: Kind,
        profile: Profile,
        entity: JSON,
        item: JSON,
        fields: tuple[str, ...],
        *,
        creating: bool,
    ) -> None:
        allowed_states = ("ENABLED", "PAUSED") if creating else STATES
        for name in fields:
            if name not in item or name in kind.parents or name == kind.id_field:
                continue
            value = item[name]
            where = f"$.{name}"
            if name == "state":
                if value not in allowed_states:
                    raise EntityError(
                        "invalidArgumentError",
                        "INVALID_ARGUMENT",
                        f"state is one of {allowed_states}.",
                        where,
                    )
                entity["state"] = value
            elif name in ("bid", "defaultBid"):
                entity[name] = self._bid(value, where)
            elif name == "budget":
                entity["budget"] = self._budget(value)
            elif name == "name":
                text = str(value).strip()
                if not text or len(text) > 128:
                    raise EntityError(
                        "invalidArgumentError", "INVALID_ARGUMENT", "name: 1-128 characters.", where
                    )
                if kind.path == "campaigns" and any(
                    c["name"] == text
                    and c["_profile"] == profile.profile_id
                    and c is not entity
                    and c.get("campaignId") != entity.get("campaignId")
                    for c in self.entities["campaigns"].values()
                ):
                    raise EntityError(
                        "duplicateValueError", "DUPLICATE_VALUE", "A campaign has that name already.", where
                    )
                entity["name"] = text
            elif name in ("startDate", "endDate"):
                if value is None and name == "endDate":
                    entity.pop("endDate", None)
                    continue
                try:
                    date.fromisoformat(str(value))
                except ValueError:
                    raise EntityError(
                        "invalidArgumentError", "INVALID_ARGUMENT", f"{name} is YYYY-MM-DD.", where
                    ) from None
                entity[name] = str(value)
            elif name == "expression":
                entity["expression"] = self._expression(value)
            elif name == "expressionType":
                if value not in ("MANUAL", "AUTO"):
                    raise EntityError(
                        "invalidArgumentError", "INVALID_ARGUMENT", "expressionType is MANUAL or AUTO.", where
                    )
                entity["expressionType"] = value
            elif name == "dynamicBidding":
                if not isinstance(value, dict):
                    raise EntityError(
                        "invalidArgumentError", "INVALID_ARGUMENT", "dynamicBidding is an object.", where
                    )
                entity["dynamicBidding"] = value
            elif name == "tags":
                entity["tags"] = dict(value or {})
            elif name == "portfolioId":
                entity["portfolioId"] = str(value)
        if kind.path in ("keywords", "targets") and "bid" not in entity:
            ad_group = self.entities["adGroups"].get(entity.get("adGroupId", ""))
            if ad_group is not None:
                entity["bid"] = ad_group["defaultBid"]
        if kind.path == "targets":
            entity["resolvedExpression"] = entity.get("expression", [])
        entity["_updated"] = self.market.clock.now()

    @staticmethod
    def _bid(value: Any, where: str) -> Decimal:
        try:
            bid = Decimal(str(value))
        except ArithmeticError:
            bid = Decimal(-1)
        if not bid.is_finite() or bid < MIN_BID or bid > MAX_BID or bid != bid.quantize(CENT):
            raise EntityError(
                "rangeError",
                "TOO_LOW" if bid.is_finite() and bid < MIN_BID else "TOO_HIGH",
                f"The bid must be between {MIN_BID} and {MAX_BID}, in cents.",
                where,
            )
        return bid

    @staticmethod
    def _budget(value: Any) -> JSON:
        if not isinstance(value, dict) or value.get("budgetType") != "DAILY":
            raise EntityError(
                "invalidArgumentError",
                "INVALID_ARGUMENT",
                "budget is {budgetType: DAILY, budget}.",
                "$.budget",
            )
        try:
            amount = Decimal(str(value.get("budget")))
        except ArithmeticError:
            amount = Decimal(-1)
        if not amount.is_finite() or amount < MIN_BUDGET or amount > MAX_BUDGET:
            raise EntityError(
                "rangeError",
                "TOO_LOW" if amount.is_finite() and amount < MIN_BUDGET else "TOO_HIGH",
                f"The daily budget must be between {MIN_BUDGET} and {MAX_BUDGET}.",
                "$.budget.budget",
            )
        return {"budgetType": "DAILY", "budget": money(amount)}

    @staticmethod
    def _expression(value: Any) -> list[JSON]:
        ok = (
            isinstance(value, list)
            and value
            and all(isinstance(e, dict) and e.get("type") in EXPRESSION_TYPES for e in value)
        )
        if not ok:
            raise EntityError(
                "invalidArgumentError",
                "INVALID_ARGUMENT",
                "expression is a non-empty list of {type, value} (e.g. ASIN_SAME_AS).",
                "$.expression",
            )
        return [{"type": e["type"], **({"value": str(e["value"])} if "value" in e else {})} for e in value]

    # ---------------------------------------------------------------- time passing: auctions

    def _serving(self) -> list[tuple[str, JSON]]:
        """(kind path, entity) of every enabled keyword / target whose ad group and campaign run."""
        result = []
        for path in ("keywords", "targets"):
            for entity in self.entities[path].values():
                if entity["state"] != "ENABLED":
                    continue
                ad_group = self.entities["adGroups"].get(entity["adGroupId"])
                campaign = self.entities["campaigns"].get(entity["campaignId"])
                if ad_group is None or campaign is None:
                    continue
                if ad_group["state"] == "ENABLED" and campaign["state"] == "ENABLED":
                    result.append((path, entity))
        return result

    def _run_until(self, start: datetime, target: datetime) -> None:
        inner = self._inner
        with self.lock:
            if not self._serving():
                if inner is not None:
                    inner(start, target)
                return
            now = start
            while now < target:
                hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
                step_end = min(target, hour)
                if inner is not None:
                    inner(now, step_end)
                self._auctions(now, step_end)
                now = step_end

    def _eligible(self, profile: Profile, ad_group_id: str) -> tuple[Listing, Offer] | None:
        """The ad group's first enabled product ad whose listing holds the Buy Box (ads need it)."""
        market = self.market
        ads = sorted(
            (a for a in self.entities["productAds"].values() if a["adGroupId"] == ad_group_id),
            key=lambda a: int(a["adId"]),
        )
        for ad in ads:
            if ad["state"] != "ENABLED":
                continue
            li = market.listing(profile.seller_id, ad["sku"], profile.marketplace_id)
            if li is None or "BUYABLE" not in li.status:
                continue
            winner = market.buybox_winner(li.marketplace_id, li.asin)
            if winner is not None and winner.seller_id == li.seller_id and winner.sku == li.sku:
                return li, winner
        return None

    def _auctions(self, start: datetime, end: datetime) -> None:
        hours = (end - start).total_seconds() / 3600
        if hours <= 0:
            return
        market = self.market
        for path, entity in sorted(self._serving(), key=lambda e: (e[0], int(e[1][KINDS[e[0]].id_field]))):
            campaign = self.entities["campaigns"][entity["campaignId"]]
            profile = self.profile(int(campaign["_profile"]))
            if profile is None:
                continue
            today = self.day(profile, start)
            if (
                campaign["startDate"] > today.isoformat()
                or campaign.get("endDate", "9999") < today.isoformat()
            ):
                continue
            eligible = self._eligible(profile, entity["adGroupId"])
            if eligible is None:
                continue
            li, offer = eligible
            product = market.products[(li.marketplace_id, li.asin)]
            entity_id = entity[KINDS[path].id_field]
            match = entity["matchType"] if path == "keywords" else "TARGETING_EXPRESSION"
            searches, competitive = self._demand(path, entity, product.asin, li.marketplace_id, match)
            bid = float(entity["bid"])
            share = bid**3 / (bid**3 + competitive**3)
            self.stats.auctions += 1
            impressions = self._poisson(searches * hours * share * 0.9)
            ctr = 0.0035 * (0.6 + 0.8 * share) * MATCH_CTR[match]
            clicks = self._binomial(impressions, ctr)
            cpc = min(entity["bid"], max(MIN_BID, money(0.8 * competitive * math.sqrt(bid / competitive))))
            spent = self.spend.get((campaign["campaignId"], today), Decimal("0.00"))
            remaining = campaign["budget"]["budget"] - spent
            affordable = int((remaining / cpc).to_integral_value(rounding=ROUND_DOWN)) if remaining > 0 else 0
            if clicks > affordable:
                impressions = impressions * affordable // clicks if clicks else 0
                clicks = affordable
                self.stats.budget_capped += 1
            cost = cpc * clicks
            cvr = 0.10 * min(2.0, float(product.list_price / max(li.price, CENT)) ** 2)
            cvr *= 1.1 if li.is_fba else 0.9
            buyers = self._binomial(clicks, cvr)
            purchases, units_sold, sales = 0, 0, Decimal("0.00")
            for _ in range(buyers):
                units = 1 if self.rng.random() < 0.85 else 2
                before = li.quantity
                market._sell(end, product, offer, units)
                sold = before - li.quantity
                if sold > 0:
                    purchases += 1
                    units_sold += sold
                    sales += li.price * sold
            self.spend[(campaign["campaignId"], today)] = spent + cost
            m = self.metrics.setdefault((path, entity_id, today), Metrics())
            m.add(Metrics(impressions, clicks, cost, purchases, units_sold, sales))
            self.stats.impressions += impressions
            self.stats.clicks += clicks
            self.stats.purchases += purchases

    def _demand(
        self, path: str, entity: JSON, asin: str, marketplace_id: str, match: str
    ) -> tuple[float, float]:
        """(searches or page views per hour, competitive bid) of a keyword / target: stable draws."""
        market = self.market
        product = market.products[(marketplace_id, asin)]
        if path == "keywords":
            key = f"{entity['keywordText'].lower()}|{match}|{asin}"
            base = product.demand_per_hour * SEARCHES_PER_BUYER * MATCH_TRAFFIC[match]
        else:
            key = json.dumps(entity["expression"], sort_keys=True) + f"|{asin}"
            targeted = next(
                (e.get("value") for e in entity["expression"] if e["type"] == "ASIN_SAME_AS"), None
            )
            other = market.products.get((marketplace_id, str(targeted))) if targeted else None
            base = (other.demand_per_hour * VIEWS_PER_BUYER) if other else product.demand_per_hour * 100
        rng = _stable(market.seed, "ads-demand", key)
        searches = base * rng.lognormvariate(0, 0.5)
        competitive = max(0.15, float(product.list_price) * 0.02 * rng.lognormvariate(0, 0.35))
        return searches, competitive * MATCH_PREMIUM[match]

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 50:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _binomial(self, n: int, p: float) -> int:
        p = min(max(p, 0.0), 1.0)
        if n <= 0 or p <= 0:
            return 0
        if n < 100:
            return sum(1 for _ in range(n) if self.rng.random() < p)
        mean = n * p
        return min(n, max(0, round(self.rng.gauss(mean, math.sqrt(mean * (1 - p))))))

    # ---------------------------------------------------------------- metrics

    def daily(self, path: str, entity_id: str, day: date) -> Metrics:
        return self.metrics.get((path, str(entity_id), day), Metrics())

    def totals(self, *, campaign_id: str | None = None, keyword_id: str | None = None) -> Metrics:
        """Everything so far, for one campaign or keyword (test convenience)."""
        total = Metrics()
        for (path, entity_id, _), m in self.metrics.items():
            entity = self.entities[path][entity_id]
            if campaign_id is not None and entity["campaignId"] != str(campaign_id):
                continue
            if keyword_id is not None and entity_id != str(keyword_id):
                continue
            total.add(m)
        return total

    # ---------------------------------------------------------------- reports (v3)

    def create_report(
        self, profile: Profile, name: str, start: date, end: date, configuration: JSON
    ) -> AdsReport:
        with self.lock:
            now = self.market.clock.now()
            report = AdsReport(
                report_id=str(
                    uuid.UUID(
                        bytes=hashlib.sha256(f"{profile.profile_id}-{len(self.reports)}".encode()).digest()[
                            :16
                        ]
                    )
                ),
                profile_id=profile.profile_id,
                name=name,
                start_date=start,
                end_date=end,
                configuration=configuration,
                created=now,
                started=now + timedelta(seconds=self.report_delays[0]),
                finished=now + timedelta(seconds=sum(self.report_delays)),
            )
            self.reports[report.report_id] = report
            self.market._schedule(
                f"ads-report:{report.report_id}", report.finished, lambda: self._finish(report)
            )
            return report

    def _finish(self, report: AdsReport) -> None:
        rows = report_rows(self, report)
        report.content = gzip.compress(json.dumps(rows, default=_json_default).encode(), mtime=0)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


# --------------------------------------------------------------------------------------------------
# Report rows

REPORT_TYPES: dict[str, JSON] = {
    "spCampaigns": {
        "groupBy": ("campaign", "adGroup"),
        "columns": {
            "campaignId",
            "campaignName",
            "campaignStatus",
            "campaignBudgetAmount",
            "campaignBudgetType",
            "campaignBudgetCurrencyCode",
            "adGroupId",
            "adGroupName",
        },
    },
    "spTargeting": {
        "groupBy": ("targeting",),
        "columns": {
            "campaignId",
            "campaignName",
            "campaignStatus",
            "campaignBudgetAmount",
            "campaignBudgetType",
            "campaignBudgetCurrencyCode",
            "adGroupId",
            "adGroupName",
            "keywordId",
            "keyword",
            "keywordBid",
            "keywordType",
            "matchType",
            "targeting",
            "adKeywordStatus",
        },
    },
}
METRIC_COLUMNS = {
    "impressions",
    "clicks",
    "cost",
    "spend",
    "costPerClick",
    "clickThroughRate",
    "acosClicks7d",
    "acosClicks14d",
    "roasClicks7d",
    "roasClicks14d",
    *(
        f"{m}{w}"
        for m in ("purchases", "purchasesSameSku", "unitsSoldClicks", "sales", "attributedSalesSameSku")
        for w in ("1d", "7d", "14d", "30d")
    ),
}
TIME_COLUMNS = {"date", "startDate", "endDate"}


def allowed_columns(report_type: str) -> set[str]:
    return set(REPORT_TYPES[report_type]["columns"]) | METRIC_COLUMNS | TIME_COLUMNS


def _metric(m: Metrics, column: str) -> Any:
    if column == "impressions":
        return m.impressions
    if column == "clicks":
        return m.clicks
    if column in ("cost", "spend"):
        return float(m.cost)
    if column == "costPerClick":
        return float(money(m.cost / m.clicks)) if m.clicks else 0.0
    if column == "clickThroughRate":
        return round(m.clicks / m.impressions, 4) if m.impressions else 0.0
    if column.startswith("acos"):
        return round(float(m.cost / m.sales), 4) if m.sales else None
    if column.startswith("roas"):
        return round(float(m.sales / m.cost), 4) if m.cost else None
    if column.startswith(("purchases", "purchasesSameSku")):
        return m.purchases
    if column.startswith("unitsSold"):
        return m.units
    return float(m.sales)  # sales*, attributedSalesSameSku*


def report_rows(ads: AdsMarket, report: AdsReport) -> list[JSON]:
    """The report document: one object per (entity, day) with activity (DAILY) or per entity
    (SUMMARY), with the requested columns."""
    config = report.configuration
    report_type = config["reportTypeId"]
    columns: list[str] = list(config["columns"])
    daily = config.get("timeUnit", "SUMMARY") == "DAILY"
    group_by = list(config.get("groupBy") or [])
    profile = ads.profile(report.profile_id)
    currency = profile.currency if profile else "USD"
    filters = {
        f["field"]: set(f.get("values", [])) for f in config.get("filters") or [] if isinstance(f, dict)
    }
    # (row key) -> (descriptive entity, metrics)
    grouped: dict[tuple[Any, ...], tuple[JSON, JSON | None, JSON | None, Metrics]] = {}
    for (path, entity_id, day), m in sorted(
        ads.metrics.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])
    ):
        if not report.start_date <= day <= report.end_date:
            continue
        entity = ads.entities[path][entity_id]
        campaign = ads.entities["campaigns"][entity["campaignId"]]
        if campaign["_profile"] != report.profile_id:
            continue
        ad_group = ads.entities["adGroups"].get(entity["adGroupId"])
        if report_type == "spTargeting":
            keyword_type = entity["matchType"] if path == "keywords" else "TARGETING_EXPRESSION"
            if "keywordType" in filters and keyword_type not in filters["keywordType"]:
                continue
            key: tuple[Any, ...] = (path, entity_id)
            row_entity: JSON | None = entity
        elif "adGroup" in group_by:
            key, row_entity = ("adGroup", entity["adGroupId"]), None
        else:
            key, row_entity = ("campaign", entity["campaignId"]), None
        if "campaignStatus" in filters and campaign["state"] not in filters["campaignStatus"]:
            continue
        if daily:
            key = (*key, day)
        if key not in grouped:
            grouped[key] = (
                campaign,
                ad_group if "adGroup" in group_by or row_entity else None,
                row_entity,
                Metrics(),
            )
        grouped[key][3].add(m)
    rows = []
    for key, (campaign, ad_group, target, m) in grouped.items():
        row: JSON = {}
        for column in columns:
            if column in METRIC_COLUMNS:
                row[column] = _metric(m, column)
            elif column == "date":
                row[column] = key[-1].isoformat() if daily else report.start_date.isoformat()
            elif column == "startDate":
                row[column] = (key[-1] if daily else report.start_date).isoformat()
            elif column == "endDate":
                row[column] = (key[-1] if daily else report.end_date).isoformat()
            elif column.startswith("campaign"):
                row[column] = {
                    "campaignId": int(campaign["campaignId"]),
                    "campaignName": campaign["name"],
                    "campaignStatus": campaign["state"],
                    "campaignBudgetAmount": float(campaign["budget"]["budget"]),
                    "campaignBudgetType": "DAILY_BUDGET",
                    "campaignBudgetCurrencyCode": currency,
                }[column]
            elif column in ("adGroupId", "adGroupName"):
                if ad_group is not None:
                    row[column] = int(ad_group["adGroupId"]) if column == "adGroupId" else ad_group["name"]
            elif target is not None:
                is_keyword = "keywordId" in target
                text = target["keywordText"] if is_keyword else _expression_text(target["expression"])
                row[column] = {
                    "keywordId": int(target.get("keywordId") or target["targetId"]),
                    "keyword": text,
                    "targeting": text,
                    "keywordBid": float(target["bid"]),
                    "keywordType": target["matchType"] if is_keyword else "TARGETING_EXPRESSION",
                    "matchType": target["matchType"] if is_keyword else "TARGETING_EXPRESSION",
                    "adKeywordStatus": target["state"],
                }[column]
        rows.append(row)
    return rows


def _expression_text(expression: list[JSON]) -> str:
    """Amazon's text form of a targeting expression, e.g. ``asin="B0ABC12345"``."""
    parts = []
    for e in expression:
        name = {
            "ASIN_SAME_AS": "asin",
            "ASIN_CATEGORY_SAME_AS": "category",
            "ASIN_BRAND_SAME_AS": "brand",
        }.get(e["type"], e["type"].lower().replace("_", "-"))
        parts.append(f'{name}="{e["value"]}"' if "value" in e else name)
    return " ".join(parts)
