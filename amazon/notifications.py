"""Amazon pricing notifications intake (docs/amazon.md "Notifications").

One path for every transport: `notification_intake(body)` does steps 2-5 below; the transport checks the
origin first. `notification_receive` is the HTTP transport behind `POST /amazon/notifications`;
amazon/notifications_sqs.py is the SQS transport (production: Amazon delivers to an SQS queue).

1. **origin**, per transport: over HTTP an HMAC-SHA256 signature over ``"<timestamp>." + body`` with
   AMAZON_NOTIFICATIONS_SECRET (headers `X-SellerPilot-Timestamp`, `X-SellerPilot-Signature: v1=<hex>`); a
   timestamp further than AMAZON_NOTIFICATIONS_MAX_AGE_SECONDS from now is refused (replay). Over SQS the
   queue's access policy is the check (only Amazon's SP-API account may send, only our AWS credentials
   may receive);
2. **shape**: ANY_OFFER_CHANGED (Amazon's PascalCase schema) or PRICING_HEALTH (camelCase) checked field
   by field for what we use (`notification_parse`). Amazon's own published examples leave out fields
   its schema calls required (NotificationMetadata, Summary, ItemCondition...), so only the routing keys
   are required; everything else is type-checked when present and kept verbatim;
3. **de-duplication** by Amazon's NotificationId with surrounding spaces stripped (one of Amazon's
   examples has a leading space), or a hash of the body when Amazon sent none: a Redis fast path, and a
   unique (tenant, notification_id) constraint that is the truth;
4. **routing** through the platform-wide `SellerRoute` table (SellerId, region of the marketplace → every
   tenant that connected the account), then one `OfferChangeNotification` row per tenant, each inside
   that tenant's context (row-level security applies);
5. **hand-off to repricing**: after commit, the newest notification per (tenant, marketplace, ASIN) is
   recorded in the Redis hash ``repricing:pending:<tenant_id>`` (a burst coalesces into one entry) and
   the tenant is added to the sorted set ``repricing:pending:tenants``; `repricing_pending_take` is how
   the Repricing issue consumes it.

A notification for a seller account nobody connected is accepted and dropped (202, counted, logged):
the answer never tells which seller accounts exist here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from amazon.models import OfferChangeNotification, Region, SellerConnection, SellerRoute
from config.redis import redis_client
from tenants.context import tenant_context

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-SellerPilot-Timestamp"
SIGNATURE_HEADER = "X-SellerPilot-Signature"
SIGNATURE_VERSION = "v1"

ANY_OFFER_CHANGED = OfferChangeNotification.Kind.ANY_OFFER_CHANGED.value
PRICING_HEALTH = OfferChangeNotification.Kind.PRICING_HEALTH.value

#: Redis: a notification id seen (and committed) recently; the database constraint is the truth.
SEEN_KEY = "amazon:notification:seen:{}"
SEEN_TTL_SECONDS = 2 * 24 * 3600
#: Redis hash of outcome counters (accepted, duplicate, unrouted, refused_signature, invalid...).
COUNTS_KEY = "amazon:notifications:counts"
#: Redis hash per tenant: "<marketplace_id>:<asin>" -> JSON of the newest notification (the contract
#: with repricing, docs/amazon.md "Notifications").
PENDING_KEY = "repricing:pending:{}"
#: Redis sorted set: tenant ids with pending entries, scored by when the oldest entry arrived (ms).
PENDING_TENANTS_KEY = "repricing:pending:tenants"

MAX_OFFERS = 100  # Amazon sends at most 20
_LIMITS = {"notification_id": 100, "seller_id": 64, "marketplace_id": 32, "asin": 40, "item_condition": 40}

#: Marketplace id -> region (Amazon's published marketplaces; an unknown id routes to every region).
MARKETPLACE_REGIONS: dict[str, str] = {
    **dict.fromkeys(("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A2Q3Y263D00KWC"), Region.NA),
    **dict.fromkeys(
        (
            "A1F83G8C2ARO7P",
            "A1PA6795UKMFR9",
            "A13V1IB3VIYZZH",
            "APJ6JRA9NG5V4",
            "A1RKKUPIHCS9HS",
            "A1805IZSGTT6HS",
            "A2NODRKZP88ZB9",
            "A1C3SOZRARQ6R3",
            "AMEN7PMS3EDWL",
            "A28R8C7NBKEWEA",
            "ARBP9OOSHTCHU",
            "A33AVAJ2PDY3EV",
            "A17E79C6D8DWNP",
            "A2VIGQ35RCS4UG",
            "A21TJRUUN4KGV",
            "AE08WJ6YKNBMC",
        ),
        Region.EU,
    ),
    **dict.fromkeys(("A1VC38T7YXB528", "A39IBJ37TRP1C6", "A19VAU5U5O7RUS"), Region.FE),
}


class NotificationRefused(Exception):
    """A notification we do not take; nothing was stored. `code`/`status` feed the API error shape."""

    def __init__(
        self, message: str, *, code: str, status: int, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.fields = fields or {}


@dataclass(frozen=True)
class ParsedNotification:
    kind: str
    notification_id: str
    seller_id: str
    marketplace_id: str
    asin: str
    item_condition: str
    time_of_offer_change: datetime | None
    event_time: datetime | None
    issue_type: str
    offer_change_trigger: dict[str, Any]
    summary: dict[str, Any]
    offers: list[Any]


@dataclass
class IntakeResult:
    """`duplicate`: every tenant already had it; `accepted` otherwise (also when dropped, unrouted)."""

    outcome: str  # "accepted" | "duplicate"
    stored: list[OfferChangeNotification] = field(default_factory=list)
    duplicates: int = 0
    routed_tenants: int = 0


# --- 1. origin ---------------------------------------------------------------------------------------


def _secrets() -> list[str]:
    return [s.strip() for s in str(settings.AMAZON_NOTIFICATIONS_SECRET or "").split(",") if s.strip()]


def notification_sign(body: bytes, *, timestamp: int, secret: str | None = None) -> str:
    """The `X-SellerPilot-Signature` value for `body` sent at `timestamp` (Unix seconds); what a sender to
    the HTTP intake (the simulator, in its own Django-free copy) sends. Signs with the newest secret."""
    key = secret if secret is not None else (_secrets() or [""])[0]
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signature_verify(
    *, body: bytes, timestamp: str | None, signature: str | None, now: float | None = None
) -> None:
    """Refuse (401) unless `signature` is a valid signature of `body` at `timestamp` with one of the
    configured secrets and the timestamp is within AMAZON_NOTIFICATIONS_MAX_AGE_SECONDS of now."""
    keys = _secrets()
    if not keys:
        logger.error("notifications intake: AMAZON_NOTIFICATIONS_SECRET is not set; refusing everything")
        raise NotificationRefused(
            "The notifications intake is not configured.", code="not_configured", status=503
        )
    if not timestamp or not signature:
        raise NotificationRefused(
            f"Sign the request ({TIMESTAMP_HEADER} and {SIGNATURE_HEADER}).",
            code="not_authenticated",
            status=401,
        )
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise NotificationRefused(
            f"{TIMESTAMP_HEADER} must be Unix seconds.", code="not_authenticated", status=401
        )
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > settings.AMAZON_NOTIFICATIONS_MAX_AGE_SECONDS:
        raise NotificationRefused(
            "The request's timestamp is too old or in the future (replay refused).",
            code="stale_request",
            status=401,
        )
    offered = [part.strip() for part in signature.split(",")]
    for key in keys:
        expected = notification_sign(body, timestamp=int(timestamp), secret=key)
        if any(hmac.compare_digest(expected.encode(), part.encode()) for part in offered):
            return
    raise NotificationRefused("The request's signature is not valid.", code="not_authenticated", status=401)


# --- 2. shape ----------------------------------------------------------------------------------------


class _Checker:
    """Collects "path: message" errors while reading the fields we use."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def obj(self, value: Any, path: str, *, required: bool) -> dict[str, Any] | None:
        """The object, or None when it is missing (an error if required) or not an object (an error)."""
        if value is None:
            if required:
                self.fail(path, "This field is required.")
            return None
        if not isinstance(value, dict):
            self.fail(path, "Must be an object.")
            return None
        return value

    def array(self, value: Any, path: str, *, limit: int = 1000) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, "Must be a list.")
            return []
        if len(value) > limit:
            self.fail(path, f"At most {limit} entries.")
            return []
        return value

    def string(
        self, container: Mapping[str, Any], key: str, path: str, *, required: bool, max_length: int = 200
    ) -> str:
        value = container.get(key)
        if value is None:
            if required:
                self.fail(path, "This field is required.")
            return ""
        if not isinstance(value, str):
            self.fail(path, "Must be a string.")
            return ""
        value = value.strip()
        if required and not value:
            self.fail(path, "Must not be blank.")
        if len(value) > max_length:
            self.fail(path, f"At most {max_length} characters.")
        return value

    def boolean(self, container: Mapping[str, Any], key: str, path: str) -> None:
        if key in container and not isinstance(container[key], bool):
            self.fail(path, "Must be true or false.")

    def integer(self, container: Mapping[str, Any], key: str, path: str) -> None:
        value = container.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(path, "Must be an integer.")

    def money(self, value: Any, path: str, *, amount: str, currency: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.fail(path, "Must be an object.")
            return
        number = value.get(amount)
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            self.fail(f"{path}.{amount}", "Must be a number.")
        if currency in value and not isinstance(value[currency], str):
            self.fail(f"{path}.{currency}", "Must be a string.")

    def moment(self, container: Mapping[str, Any], key: str, path: str) -> datetime | None:
        text = self.string(container, key, path, required=False, max_length=40)
        if not text:
            return None
        try:
            moment = parse_datetime(text)
        except ValueError:
            moment = None
        if moment is None:
            self.fail(path, "Must be an ISO 8601 date and time.")
            return None
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _content_id(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _parse_any_offer_changed(document: dict[str, Any], check: _Checker) -> ParsedNotification:
    metadata = check.obj(document.get("NotificationMetadata"), "NotificationMetadata", required=False) or {}
    notification_id = check.string(
        metadata,
        "NotificationId",
        "NotificationMetadata.NotificationId",
        required=False,
        max_length=_LIMITS["notification_id"],
    )
    event_time = check.moment(document, "EventTime", "EventTime")
    payload = check.obj(document.get("Payload"), "Payload", required=True)
    base = "Payload.AnyOfferChangedNotification"
    # Below a missing or broken object, its own error is enough: its fields are not reported again.
    body_or_none = check.obj(
        (payload or {}).get("AnyOfferChangedNotification"), base, required=payload is not None
    )
    body = body_or_none or {}
    seller_id = check.string(
        body,
        "SellerId",
        f"{base}.SellerId",
        required=body_or_none is not None,
        max_length=_LIMITS["seller_id"],
    )
    trigger_path = f"{base}.OfferChangeTrigger"
    trigger_or_none = check.obj(
        body.get("OfferChangeTrigger"), trigger_path, required=body_or_none is not None
    )
    trigger = trigger_or_none or {}
    marketplace_id = check.string(
        trigger,
        "MarketplaceId",
        f"{trigger_path}.MarketplaceId",
        required=trigger_or_none is not None,
        max_length=_LIMITS["marketplace_id"],
    )
    asin = check.string(
        trigger,
        "ASIN",
        f"{trigger_path}.ASIN",
        required=trigger_or_none is not None,
        max_length=_LIMITS["asin"],
    )
    item_condition = check.string(
        trigger,
        "ItemCondition",
        f"{trigger_path}.ItemCondition",
        required=False,
        max_length=_LIMITS["item_condition"],
    )
    changed_at = check.moment(trigger, "TimeOfOfferChange", f"{trigger_path}.TimeOfOfferChange")
    check.string(trigger, "OfferChangeType", f"{trigger_path}.OfferChangeType", required=False)

    summary = check.obj(body.get("Summary"), f"{base}.Summary", required=False) or {}
    for name in ("BuyBoxPrices", "LowestPrices"):
        for i, price in enumerate(check.array(summary.get(name), f"{base}.Summary.{name}")):
            path = f"{base}.Summary.{name}[{i}]"
            entry = check.obj(price, path, required=True) or {}
            check.string(entry, "Condition", f"{path}.Condition", required=False)
            for money in ("LandedPrice", "ListingPrice", "Shipping"):
                check.money(entry.get(money), f"{path}.{money}", amount="Amount", currency="CurrencyCode")
    for name in ("NumberOfOffers", "NumberOfBuyBoxEligibleOffers"):
        for i, count in enumerate(check.array(summary.get(name), f"{base}.Summary.{name}")):
            path = f"{base}.Summary.{name}[{i}]"
            check.integer(check.obj(count, path, required=True) or {}, "OfferCount", f"{path}.OfferCount")
    check.integer(summary, "TotalBuyBoxEligibleOffers", f"{base}.Summary.TotalBuyBoxEligibleOffers")
    for name in ("ListPrice", "CompetitivePriceThreshold", "SuggestedLowerPricePlusShipping"):
        check.money(summary.get(name), f"{base}.Summary.{name}", amount="Amount", currency="CurrencyCode")

    offers = check.array(body.get("Offers"), f"{base}.Offers", limit=MAX_OFFERS)
    for i, raw in enumerate(offers):
        path = f"{base}.Offers[{i}]"
        offer = check.obj(raw, path, required=True) or {}
        check.string(offer, "SellerId", f"{path}.SellerId", required=False, max_length=64)
        for money in ("ListingPrice", "Shipping"):
            check.money(offer.get(money), f"{path}.{money}", amount="Amount", currency="CurrencyCode")
        for flag in ("IsFulfilledByAmazon", "IsBuyBoxWinner", "IsFeaturedMerchant"):
            check.boolean(offer, flag, f"{path}.{flag}")
    return ParsedNotification(
        kind=ANY_OFFER_CHANGED,
        notification_id=notification_id,
        seller_id=seller_id,
        marketplace_id=marketplace_id,
        asin=asin,
        item_condition=item_condition,
        time_of_offer_change=changed_at,
        event_time=event_time,
        issue_type="",
        offer_change_trigger=trigger,
        summary=summary,
        offers=offers,
    )


def _parse_pricing_health(document: dict[str, Any], check: _Checker) -> ParsedNotification:
    metadata = check.obj(document.get("notificationMetadata"), "notificationMetadata", required=False) or {}
    notification_id = check.string(
        metadata,
        "notificationId",
        "notificationMetadata.notificationId",
        required=False,
        max_length=_LIMITS["notification_id"],
    )
    event_time = check.moment(document, "eventTime", "eventTime")
    payload_or_none = check.obj(document.get("payload"), "payload", required=True)
    payload = payload_or_none or {}
    seller_id = check.string(
        payload,
        "sellerId",
        "payload.sellerId",
        required=payload_or_none is not None,
        max_length=_LIMITS["seller_id"],
    )
    issue_type = check.string(payload, "issueType", "payload.issueType", required=False, max_length=100)
    path = "payload.offerChangeTrigger"
    trigger_or_none = check.obj(payload.get("offerChangeTrigger"), path, required=payload_or_none is not None)
    trigger = trigger_or_none or {}
    marketplace_id = check.string(
        trigger,
        "marketplaceId",
        f"{path}.marketplaceId",
        required=trigger_or_none is not None,
        max_length=_LIMITS["marketplace_id"],
    )
    asin = check.string(
        trigger, "asin", f"{path}.asin", required=trigger_or_none is not None, max_length=_LIMITS["asin"]
    )
    item_condition = check.string(
        trigger,
        "itemCondition",
        f"{path}.itemCondition",
        required=False,
        max_length=_LIMITS["item_condition"],
    )
    changed_at = check.moment(trigger, "timeOfOfferChange", f"{path}.timeOfOfferChange")
    merchant_offer = check.obj(payload.get("merchantOffer"), "payload.merchantOffer", required=False) or {}
    for money in ("listingPrice", "shipping", "landedPrice"):
        check.money(
            merchant_offer.get(money),
            f"payload.merchantOffer.{money}",
            amount="amount",
            currency="currencyCode",
        )
    summary = check.obj(payload.get("summary"), "payload.summary", required=False) or {}
    for i, price in enumerate(check.array(summary.get("buyBoxPrices"), "payload.summary.buyBoxPrices")):
        entry_path = f"payload.summary.buyBoxPrices[{i}]"
        entry = check.obj(price, entry_path, required=True) or {}
        for money in ("listingPrice", "shipping", "landedPrice"):
            check.money(entry.get(money), f"{entry_path}.{money}", amount="amount", currency="currencyCode")
    return ParsedNotification(
        kind=PRICING_HEALTH,
        notification_id=notification_id,
        seller_id=seller_id,
        marketplace_id=marketplace_id,
        asin=asin,
        item_condition=item_condition,
        time_of_offer_change=changed_at,
        event_time=event_time,
        issue_type=issue_type,
        offer_change_trigger=trigger,
        summary=summary,
        offers=[merchant_offer] if merchant_offer else [],
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def notification_parse(body: bytes) -> ParsedNotification:
    """The notification in `body`, or NotificationRefused: 400 (not JSON, wrong types, missing routing
    fields) or 422 (a notification type we do not handle)."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise NotificationRefused(
            "The body is not valid JSON.", code="malformed_request", status=400
        ) from None
    if not isinstance(document, dict):
        raise NotificationRefused("The body must be a JSON object.", code="malformed_request", status=400)
    kind = document.get("NotificationType", document.get("notificationType"))
    if not isinstance(kind, str) or not kind.strip():
        raise NotificationRefused(
            "The notification is not valid.",
            code="validation_error",
            status=400,
            fields={"NotificationType": ["This field is required (a string)."]},
        )
    kind = kind.strip()
    check = _Checker()
    if kind == ANY_OFFER_CHANGED:
        parsed = _parse_any_offer_changed(document, check)
    elif kind == PRICING_HEALTH:
        parsed = _parse_pricing_health(document, check)
    else:
        raise NotificationRefused(
            f"Notifications of type {kind[:60]} are not handled.", code="unsupported_notification", status=422
        )
    if check.errors:
        raise NotificationRefused(
            "The notification is not valid.", code="validation_error", status=400, fields=check.errors
        )
    if not parsed.notification_id:
        # Amazon's own test messages come without NotificationMetadata: the content identifies them.
        parsed = dataclasses.replace(parsed, notification_id=_content_id(document))
    return parsed


# --- 3-5. de-duplicate, route, store, hand on ----------------------------------------------------------


def _seen_key(notification_id: str) -> str:
    return SEEN_KEY.format(hashlib.sha256(notification_id.encode()).hexdigest())


def _count(outcome: str, amount: int = 1) -> None:
    try:
        redis_client().hincrby(COUNTS_KEY, outcome, amount)
    except redis.RedisError:
        logger.warning("notifications intake: could not count %s (Redis)", outcome)


def notification_counts() -> dict[str, int]:
    """How many notifications ended how (accepted, duplicate, unrouted, stale_route, refused_*)."""
    raw: Any = redis_client().hgetall(COUNTS_KEY)
    return {key.decode(): int(value) for key, value in raw.items()}


def _already_seen(notification_id: str) -> bool:
    try:
        return bool(redis_client().exists(_seen_key(notification_id)))
    except redis.RedisError:
        logger.warning("notifications intake: Redis unavailable for the duplicate check; using the database")
        return False


def _routes(parsed: ParsedNotification) -> list[SellerRoute]:
    routes = SellerRoute.objects.filter(selling_partner_id=parsed.seller_id).select_related("tenant")
    region = MARKETPLACE_REGIONS.get(parsed.marketplace_id)
    if region is not None:
        routes = routes.filter(region=region)
    return [route for route in routes.order_by("tenant_id", "region") if route.tenant.is_active]


def _store(
    route: SellerRoute, parsed: ParsedNotification, received_at: datetime
) -> OfferChangeNotification | str:
    """The new row in the route's tenant; "duplicate" when that tenant already has this notification,
    "stale_route" when the routed connection is gone."""
    with tenant_context(route.tenant):
        connection = (
            SellerConnection.objects.filter(public_id=route.connection_public_id)
            .exclude(status=SellerConnection.Status.DISCONNECTED)
            .first()
        )
        if connection is None:
            logger.warning("notifications intake: stale route for connection %s", route.connection_public_id)
            _count("stale_route")
            return "stale_route"
        try:
            with transaction.atomic():
                return OfferChangeNotification.objects.create(
                    tenant=route.tenant,
                    connection=connection,
                    notification_id=parsed.notification_id,
                    notification_type=parsed.kind,
                    seller_id=parsed.seller_id,
                    marketplace_id=parsed.marketplace_id,
                    asin=parsed.asin,
                    item_condition=parsed.item_condition,
                    time_of_offer_change=parsed.time_of_offer_change,
                    issue_type=parsed.issue_type,
                    offer_change_trigger=parsed.offer_change_trigger,
                    summary=parsed.summary,
                    offers=parsed.offers,
                    received_at=received_at,
                )
        except IntegrityError:
            return "duplicate"  # (tenant, notification_id) exists: a redelivery


# Newest wins: an older notification delivered late does not replace a newer pending one.
_COALESCE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['event_ms'])
     and tonumber(decoded['event_ms']) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', ARGV[5], ARGV[4])
return 1
"""


def _pending_entry(row: OfferChangeNotification, event_ms: int) -> dict[str, Any]:
    return {
        "notification": str(row.public_id),
        "notification_id": row.notification_id,
        "kind": row.notification_type,
        "connection": str(row.connection.public_id),
        "marketplace_id": row.marketplace_id,
        "asin": row.asin,
        "event_ms": event_ms,
        "received_at": row.received_at.isoformat(),
    }


def _hand_on(rows: list[OfferChangeNotification], parsed: ParsedNotification) -> None:
    """After commit: mark the id seen, coalesce each stored row into its tenant's pending hash and wake
    each tenant's repricing consumer (debounced there)."""
    moment = parsed.time_of_offer_change or parsed.event_time
    client = redis_client()
    now_ms = int(time.time() * 1000)
    try:
        client.set(_seen_key(parsed.notification_id), "1", ex=SEEN_TTL_SECONDS)
        script = client.register_script(_COALESCE)
        for row in rows:
            event_ms = int(moment.timestamp() * 1000) if moment else int(row.received_at.timestamp() * 1000)
            script(
                keys=[PENDING_KEY.format(row.tenant_id), PENDING_TENANTS_KEY],
                args=[
                    f"{row.marketplace_id}:{row.asin}",
                    json.dumps(_pending_entry(row, event_ms)),
                    event_ms,
                    row.tenant_id,
                    now_ms,
                ],
            )
    except redis.RedisError:
        # The rows are committed with processed_at NULL: repricing's sweep still finds them.
        logger.warning("notifications intake: Redis unavailable; %d notification(s) not queued", len(rows))
        return
    from repricing.triggers import notifications_wake  # repricing builds on amazon, not the reverse

    notifications_wake(row.tenant_id for row in rows)


def notification_receive(
    *, body: bytes, timestamp: str | None, signature: str | None, content_type: str | None = None
) -> IntakeResult:
    """The HTTP transport (`POST /amazon/notifications`): the origin is the HMAC signature, then
    `notification_intake`. Raises NotificationRefused (nothing stored) for a request we do not take.
    `content_type` (the request's media type, when known) must be JSON; it is checked after the
    signature."""
    try:
        signature_verify(body=body, timestamp=timestamp, signature=signature)
        if content_type is not None and content_type != "application/json":
            raise NotificationRefused(
                "Send the notification as application/json.", code="unsupported_media_type", status=415
            )
    except NotificationRefused as refused:
        _count(f"refused_{refused.code}")
        raise
    return notification_intake(body)


def notification_intake(body: bytes) -> IntakeResult:
    """Parse, de-duplicate, route, store and hand on one notification whose origin its transport has
    already established: the HMAC signature over HTTP (`notification_receive`), SQS itself for the queue
    consumer (amazon/notifications_sqs.py: only Amazon may send to the queue, only we may read it).
    Raises NotificationRefused (nothing stored) for a body we do not take. Outside an enclosing
    transaction the rows are committed when this returns."""
    try:
        parsed = notification_parse(body)
    except NotificationRefused as refused:
        _count(f"refused_{refused.code}")
        raise
    if _already_seen(parsed.notification_id):
        _count("duplicate")
        return IntakeResult(outcome="duplicate")
    received_at = timezone.now()
    result = IntakeResult(outcome="accepted")
    with transaction.atomic():
        routes = _routes(parsed)
        result.routed_tenants = len({route.tenant_id for route in routes})
        for route in routes:
            row = _store(route, parsed, received_at)
            if isinstance(row, OfferChangeNotification):
                result.stored.append(row)
            elif row == "duplicate":
                result.duplicates += 1
        if result.duplicates and not result.stored:
            result.outcome = "duplicate"
        stored = list(result.stored)
        if routes:
            transaction.on_commit(lambda: _hand_on(stored, parsed))
    if not routes:
        logger.info(
            "notifications intake: %s for unrouted seller %s (%s) dropped",
            parsed.notification_id,
            parsed.seller_id,
            parsed.marketplace_id,
        )
        _count("unrouted")
    else:
        _count(result.outcome)
    return result


def repricing_pending(tenant_id: int) -> dict[str, dict[str, Any]]:
    """The pending entries of a tenant without taking them: "<marketplace_id>:<asin>" -> entry."""
    raw: Any = redis_client().hgetall(PENDING_KEY.format(tenant_id))
    return {key.decode(): json.loads(value) for key, value in raw.items()}


def repricing_pending_take(tenant_id: int) -> dict[str, dict[str, Any]]:
    """Take (atomically read and clear) a tenant's pending entries: the Repricing issue's consumer calls
    this, then reprices each (marketplace, ASIN) once from the newest notification and the rule. A
    notification arriving after the take starts a new pending entry (and re-lists the tenant)."""
    key = PENDING_KEY.format(tenant_id)
    pipe = redis_client().pipeline(transaction=True)
    pipe.hgetall(key)
    pipe.delete(key)
    pipe.zrem(PENDING_TENANTS_KEY, tenant_id)
    raw, _, _ = pipe.execute()
    return {k.decode(): json.loads(v) for k, v in raw.items()}
