"""Amazon's Notifications API v1: where a connection's pricing notifications go (docs/amazon.md
"Notifications over SQS").

- The **destination** is our SQS queue (AMAZON_NOTIFICATIONS_SQS_QUEUE_URL / _ARN), registered once per
  LWA application and region with `createDestination` — a *grantless* operation (a client_credentials
  token with scope `sellingpartnerapi::notifications`, amazon/tokens.py `grantless_token_for`, cached
  apart from seller tokens): `getDestinations` finds it again, Redis remembers its id for a day.
- A **subscription** per connection and notification type (ANY_OFFER_CHANGED, PRICING_HEALTH) is made with
  the seller's own token (`createSubscription`); one that exists already (409: reconnected, or the same
  account connected by another company) is adopted when it points at our destination (`getSubscription`),
  else replaced. The ids are stored on the connection.
- On disconnect, `notifications_unsubscribe` deletes them (`deleteSubscriptionById`, grantless) unless
  another company still has the same seller account connected: a subscription belongs to (seller,
  application), so theirs is the same one.

`notifications_subscribe` runs as a task after a connection becomes active (connect or re-authorise), and
`notifications_unsubscribe` after disconnecting commits (amazon/tasks.py); neither slows those down.
Every call goes through the one client factory (`sp_api_client`: limiter, retries, typed errors). Amazon's
limit for grantless operations is per application, so they also take a token from an application-wide
bucket. python-amazon-sp-api sends `getSubscriptionById` / `deleteSubscriptionById` with the seller's
token although Amazon makes them grantless; we send them grantless ourselves.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sp_api.api import Notifications

from amazon import ratelimit, tokens
from amazon.clients import (
    AmazonAuthError,
    AmazonRequestError,
    AmazonThrottled,
    RetryPolicy,
    SpApiClient,
    sp_api_client,
)
from amazon.models import SellerConnection, SellerRoute
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.jobs import check_task_arguments
from tenants.models import Tenant

logger = logging.getLogger(__name__)

NOTIFICATION_TYPES = ("ANY_OFFER_CHANGED", "PRICING_HEALTH")
PAYLOAD_VERSION = "1.0"
GRANTLESS_SCOPE = "sellingpartnerapi::notifications"
DESTINATION_NAME = "sellerpilot-notifications"
#: Redis: destination id per (region, application, queue ARN).
DESTINATION_KEY = "amazon:notifications:destination:{}"
DESTINATION_TTL_SECONDS = 24 * 3600
#: The client factory needs a marketplace of the connection's region; the Notifications API ignores it.
REGION_MARKETPLACE = {"NA": "ATVPDKIKX0DER", "EU": "A1F83G8C2ARO7P", "FE": "A1VC38T7YXB528"}
SUBSCRIPTION_PATH = "/notifications/v1/subscriptions/{}/{}"


@dataclass
class SubscribeResult:
    """`subscribed` (ids stored; `errors` per type Amazon refused, e.g. a seller without the pricing
    role), `refused` (Amazon refused every type), `not_configured` (no SQS queue set), `inactive` (the
    connection is not active), or `disconnected_meanwhile` (disconnected while we subscribed: what was
    made is deleted again)."""

    status: str
    destination_id: str = ""
    subscriptions: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def sqs_configured() -> bool:
    return bool(settings.AMAZON_NOTIFICATIONS_SQS_QUEUE_URL)


def queue_arn() -> str:
    """AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN, else derived from the queue URL (`…/<account>/<name>`) and the
    region (`sqs.<region>.amazonaws.com` in the host, else AMAZON_NOTIFICATIONS_SQS_REGION)."""
    if settings.AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN:
        return str(settings.AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN)
    url = urlsplit(str(settings.AMAZON_NOTIFICATIONS_SQS_QUEUE_URL))
    parts = [p for p in url.path.split("/") if p]
    if len(parts) < 2 or not parts[-2].isdigit():
        raise ValueError("AMAZON_NOTIFICATIONS_SQS_QUEUE_URL must end in /<account id>/<queue name>")
    host = (url.hostname or "").split(".")
    region = (
        host[1]
        if len(host) >= 4 and host[0] == "sqs" and host[-2:] == ["amazonaws", "com"]
        else str(settings.AMAZON_NOTIFICATIONS_SQS_REGION)
    )
    return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"


def _app_hash(connection: SellerConnection) -> str:
    """The LWA application that owns the connection's subscriptions (tokens.py keys grantless tokens so)."""
    client_id, _ = tokens.lwa_app_credentials(connection)
    return hashlib.sha256(client_id.encode()).hexdigest()[:16]


class _Calls:
    """The Notifications API for one connection, through the client factory."""

    def __init__(self, connection: SellerConnection) -> None:
        self.connection = connection
        self.client: SpApiClient = sp_api_client(
            Notifications, connection, REGION_MARKETPLACE[connection.region]
        )
        self.app = _app_hash(connection)

    def grantless(self, operation: str, send: Any) -> Any:
        # Amazon limits grantless operations per application: an app-wide bucket first, then the
        # factory's own (per connection) with its retries and typed errors.
        try:
            ratelimit.acquire(
                f"lwa-app:{self.app}", operation, timeout=RetryPolicy.from_settings().budget_seconds
            )
        except ratelimit.Throttled as throttled:
            raise AmazonThrottled(str(throttled), operation=operation, status=429) from None
        try:
            return self.client.call(operation, send)
        except AmazonAuthError:
            # The factory renewed the seller token, not this one: drop the grantless token for next time.
            redis_client().delete(tokens.GRANTLESS_KEY.format(f"{self.app}:{GRANTLESS_SCOPE}"))
            raise

    def destinations(self) -> list[dict[str, Any]]:
        payload = self.grantless("getDestinations", lambda: self.client.api.get_destinations()).payload
        return payload if isinstance(payload, list) else []

    def create_destination(self, arn: str) -> str:
        answer = self.grantless(
            "createDestination", lambda: self.client.api.create_destination(name=DESTINATION_NAME, arn=arn)
        )
        return str(answer.payload["destinationId"])

    def create_subscription(self, kind: str, destination_id: str) -> dict[str, Any]:
        answer = self.client.create_subscription(
            kind, destination_id=destination_id, payload_version=PAYLOAD_VERSION
        )
        return dict(answer.payload)

    def subscription(self, kind: str) -> dict[str, Any]:
        return dict(self.client.get_subscription(kind).payload)

    def delete_subscription(self, kind: str, subscription_id: str) -> None:
        # sp_api's delete_notification_subscription sends the seller's token; Amazon wants a grantless one.
        path = SUBSCRIPTION_PATH.format(kind, quote(subscription_id, safe=""))
        self.grantless(
            "deleteSubscriptionById",
            lambda: self.client.api._request_grantless_operation(path, params={"method": "DELETE"}),
        )


def _destination_key(connection: SellerConnection, app: str, arn: str) -> str:
    return DESTINATION_KEY.format(
        f"{connection.region}:{app}:{hashlib.sha256(arn.encode()).hexdigest()[:16]}"
    )


def _destination_id(calls: _Calls, *, fresh: bool = False) -> str:
    """Our queue's destination id for this application and region: cached, found, or created."""
    arn = queue_arn()
    key = _destination_key(calls.connection, calls.app, arn)
    if not fresh:
        cached = redis_client().get(key)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)

    def find() -> str | None:
        for destination in calls.destinations():
            if ((destination.get("resource") or {}).get("sqs") or {}).get("arn") == arn:
                return str(destination["destinationId"])
        return None

    found = find()
    if found is None:
        try:
            found = calls.create_destination(arn)
        except AmazonRequestError as error:
            if error.status != 409:
                raise
            found = find()  # another worker created it a moment ago
            if found is None:
                raise
    redis_client().set(key, found, ex=DESTINATION_TTL_SECONDS)
    return found


def _subscribe_one(calls: _Calls, kind: str, destination_id: str) -> str:
    try:
        return str(calls.create_subscription(kind, destination_id)["subscriptionId"])
    except AmazonRequestError as error:
        if error.status != 409:
            raise
    existing = calls.subscription(kind)  # this seller already has one for our application
    if existing.get("destinationId") == destination_id:
        return str(existing["subscriptionId"])
    logger.info("notifications: replacing a %s subscription that points at another destination", kind)
    calls.delete_subscription(kind, str(existing["subscriptionId"]))
    return str(calls.create_subscription(kind, destination_id)["subscriptionId"])


def notifications_subscribe(connection: SellerConnection) -> SubscribeResult:
    """Make sure `connection`'s ANY_OFFER_CHANGED and PRICING_HEALTH notifications go to our SQS queue and
    store the ids on it. Idempotent. Raises the client's AmazonThrottled/AmazonUnavailable (the task
    retries) and token errors; a type Amazon refuses is reported in `errors`, the others still
    subscribed. Call it inside the connection's tenant, outside a transaction (it calls Amazon)."""
    if not sqs_configured():
        return SubscribeResult(status="not_configured")
    if not connection.is_usable:
        return SubscribeResult(status="inactive")
    calls = _Calls(connection)
    destination_id = _destination_id(calls)
    result = SubscribeResult(status="subscribed", destination_id=destination_id)
    looked_again = False
    for kind in NOTIFICATION_TYPES:
        try:
            try:
                result.subscriptions[kind] = _subscribe_one(calls, kind, destination_id)
            except AmazonRequestError as error:
                if error.status not in (400, 404) or result.subscriptions or looked_again:
                    raise
                # The remembered destination may be gone at Amazon: look it up again, once.
                looked_again = True
                destination_id = result.destination_id = _destination_id(calls, fresh=True)
                result.subscriptions[kind] = _subscribe_one(calls, kind, destination_id)
        except (AmazonRequestError, AmazonAuthError) as error:
            result.errors[kind] = f"{error.status} {error.code}".strip()
            logger.warning(
                "notifications: Amazon refused the %s subscription of connection %s (%s)",
                kind,
                connection.public_id,
                result.errors[kind],
            )
    with tenant_context(connection.tenant):
        locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
        if locked.status == SellerConnection.Status.DISCONNECTED:
            still_connected = False
        else:
            still_connected = True
            # A type refused this time keeps the id an earlier run stored (it may well still exist).
            kept = {k: v for k, v in locked.notifications_subscriptions.items() if k in result.errors}
            locked.notifications_destination_id = destination_id
            locked.notifications_subscriptions = {**kept, **result.subscriptions}
            locked.notifications_subscribed_at = timezone.now()
            locked.save(
                update_fields=[
                    "notifications_destination_id",
                    "notifications_subscriptions",
                    "notifications_subscribed_at",
                    "updated_at",
                ]
            )
    if not result.subscriptions:
        result.status = "refused"
    if not still_connected:
        # Disconnected while we were at Amazon: its unsubscribe task found no ids, so undo it here.
        locked.notifications_subscriptions = dict(result.subscriptions)
        _delete_subscriptions(locked, calls)
        result.status = "disconnected_meanwhile"
    return result


def _shared(connection: SellerConnection) -> bool:
    """Another company's live connection of the same seller account and region: its notifications come
    through the same subscription (one per seller and application)."""
    return (
        SellerRoute.objects.filter(selling_partner_id=connection.selling_partner_id, region=connection.region)
        .exclude(connection_public_id=connection.public_id)
        .exists()
    )


def _delete_subscriptions(connection: SellerConnection, calls: _Calls | None = None) -> dict[str, str]:
    """Delete the connection's stored subscriptions at Amazon; returns type -> outcome."""
    outcomes: dict[str, str] = {}
    if _shared(connection):
        return dict.fromkeys(connection.notifications_subscriptions, "kept_shared")
    calls = calls or _Calls(connection)
    for kind, subscription_id in connection.notifications_subscriptions.items():
        try:
            calls.delete_subscription(kind, subscription_id)
            outcomes[kind] = "deleted"
        except AmazonRequestError as error:
            if error.status != 404:
                raise
            outcomes[kind] = "already_gone"
    return outcomes


def notifications_unsubscribe(connection: SellerConnection) -> dict[str, str]:
    """After disconnecting: delete the connection's subscriptions at Amazon (kept when another company
    still has the account connected) and clear the stored ids. Returns type -> outcome (`deleted`,
    `already_gone`, `kept_shared`, `no_credentials`). Raises the client's throttled/unavailable errors
    (the task retries). An own-app connection's app credentials are deleted on disconnect, so its
    subscriptions cannot be deleted with them any more (`no_credentials`; its notifications are then
    dropped as unrouted, and the seller's app owns that subscription)."""
    stored = dict(connection.notifications_subscriptions)
    if not stored:
        return {}
    try:
        outcomes = _delete_subscriptions(connection)
    except tokens.TokenError as error:
        logger.warning(
            "notifications: cannot delete the subscriptions of connection %s (%s)",
            connection.public_id,
            type(error).__name__,
        )
        return dict.fromkeys(stored, "no_credentials")
    with tenant_context(connection.tenant), transaction.atomic():
        SellerConnection.objects.filter(pk=connection.pk).update(
            notifications_subscriptions={}, updated_at=timezone.now()
        )
    connection.notifications_subscriptions = {}
    logger.info("notifications: connection %s unsubscribed: %s", connection.public_id, outcomes)
    return outcomes


# --- enqueueing (connect, re-authorise, disconnect call these inside their transaction) -----------------


def _send_on_commit(task: Any, *, tenant: Tenant, **kwargs: Any) -> None:
    """Like tenants.jobs.enqueue, but a broker that is down when the transaction commits is logged, never
    raised: connecting or disconnecting has already happened and must not look failed."""
    check_task_arguments(kwargs)
    transaction.on_commit(lambda: task.apply_async(kwargs={"tenant_id": tenant.pk, **kwargs}), robust=True)


def notifications_subscribe_enqueue(connection: SellerConnection) -> None:
    """Queue `notifications_subscribe` for `connection` once the transaction commits (when SQS is set)."""
    if not sqs_configured():
        return
    from amazon import tasks

    _send_on_commit(
        tasks.notifications_subscribe_task, tenant=connection.tenant, connection_id=str(connection.public_id)
    )


def notifications_unsubscribe_enqueue(connection: SellerConnection) -> None:
    """Queue `notifications_unsubscribe` for a connection being disconnected, after the commit, when it
    has subscriptions stored (one still being made undoes itself, see `notifications_subscribe`)."""
    if not connection.notifications_subscriptions:
        return
    from amazon import tasks

    _send_on_commit(
        tasks.notifications_unsubscribe_task,
        tenant=connection.tenant,
        connection_id=str(connection.public_id),
    )
