# Handlers are named after Amazon's operation ids and take its path parameters' names:
# ruff: noqa: N802, N803
"""The Notifications API v1 (../shared/spapi-models/models/notifications-api-model/notifications.json):
destinations and subscriptions, and delivery of the market's notifications to the subscribed SQS queues
(sqs.py) — the way Amazon delivers them in production.

- **Grantless** (an LWA ``client_credentials`` token with scope ``sellingpartnerapi::notifications``):
  ``createDestination``, ``getDestinations``, ``getDestination``, ``deleteDestination``,
  ``getSubscriptionById``, ``deleteSubscriptionById``. **Seller-authorised** (a seller's access token):
  ``createSubscription``, ``getSubscription``. Either kind of token on the other kind of operation → 403
  ``Unauthorized``, as Amazon answers.
- Destinations belong to the calling application (LWA client): an SQS destination names a queue by ARN,
  which must exist in the simulator's SQS (Amazon checks it can send to it; here: 400 otherwise); a second
  destination for the same ARN → 409. EventBridge destinations are refused (not simulated). Deleting a
  destination that subscriptions still use → 409 (the simulator's reading of "conflicts with the current
  state").
- One subscription per (seller, application, notification type): a second ``createSubscription`` → 409;
  its ``destinationId`` must be one of the application's destinations (else 400). ``processingDirective``
  is kept; its ``eventFilter.marketplaceIds`` filters delivery, aggregation is not simulated.
- Delivery: when the market notifies a seller (ANY_OFFER_CHANGED, market.py ``_offer_changed``), each
  matching subscription puts the notification JSON as the SQS message body on its destination's queue, with
  ``NotificationMetadata`` naming that subscription and application. HTTP subscribers (``market.subscribe``)
  still get their POSTs: both paths may be on at once. The simulator generates no PRICING_HEALTH events;
  subscribing to it works and delivers nothing.
- Usage plan 1/s burst 5 per operation (rates.py) per (seller or application, operation); ``fail_next``
  works on these operations too. Errors: ``{"errors": [{"code", "message", "details"}]}``.
"""

from __future__ import annotations

import json
import re
import uuid
import weakref
from collections import deque
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .market import AccessToken, Market
from .notifications import APPLICATION_ID
from .rates import USAGE_PLANS
from .sqs import SqsService, sqs_for

if TYPE_CHECKING:
    from .app import LoggedRequest

JSON = dict[str, Any]
PREFIX = "/notifications/v1/"
GRANTLESS_SCOPE = "sellingpartnerapi::notifications"
SQS_ARN = re.compile(r"^arn:aws:sqs:\S+:\S+:\S+")
#: Notification types the simulator lets you subscribe to, with their payload versions.
PAYLOAD_VERSIONS: dict[str, tuple[str, ...]] = {
    "ANY_OFFER_CHANGED": ("1.0",),
    "PRICING_HEALTH": ("1.0",),
    "FEED_PROCESSING_FINISHED": ("2020-09-04",),
    "REPORT_PROCESSING_FINISHED": ("2020-09-04",),
    "LISTINGS_ITEM_STATUS_CHANGE": ("1.0",),
    "ORDER_CHANGE": ("1.0",),
}
EVENT_FILTER_TYPES = {"ANY_OFFER_CHANGED": "ANY_OFFER_CHANGED", "ORDER_CHANGE": "ORDER_CHANGE"}
AGGREGATION_PERIODS = ("FiveMinutes", "TenMinutes")

ROUTES = Map(
    [
        Rule("/notifications/v1/destinations", endpoint="getDestinations", methods=["GET"]),
        Rule("/notifications/v1/destinations", endpoint="createDestination", methods=["POST"]),
        Rule("/notifications/v1/destinations/<destinationId>", endpoint="getDestination", methods=["GET"]),
        Rule(
            "/notifications/v1/destinations/<destinationId>", endpoint="deleteDestination", methods=["DELETE"]
        ),
        Rule(
            "/notifications/v1/subscriptions/<notificationType>", endpoint="getSubscription", methods=["GET"]
        ),
        Rule(
            "/notifications/v1/subscriptions/<notificationType>",
            endpoint="createSubscription",
            methods=["POST"],
        ),
        Rule(
            "/notifications/v1/subscriptions/<notificationType>/<subscriptionId>",
            endpoint="getSubscriptionById",
            methods=["GET"],
        ),
        Rule(
            "/notifications/v1/subscriptions/<notificationType>/<subscriptionId>",
            endpoint="deleteSubscriptionById",
            methods=["DELETE"],
        ),
    ]
)
GRANTLESS = frozenset(
    {
        "createDestination",
        "getDestinations",
        "getDestination",
        "deleteDestination",
        "getSubscriptionById",
        "deleteSubscriptionById",
    }
)


class NotificationsApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> JSON:
        return {"errors": [{"code": self.code, "message": self.message, "details": self.details}]}


def _invalid(message: str) -> NotificationsApiError:
    return NotificationsApiError(400, "InvalidInput", message)


def _not_found(what: str) -> NotificationsApiError:
    return NotificationsApiError(404, "NotFound", f"The requested {what} was not found.")


@dataclass
class Destination:
    destination_id: str
    client_id: str
    name: str
    arn: str

    def as_json(self) -> JSON:
        return {
            "destinationId": self.destination_id,
            "name": self.name,
            "resource": {"sqs": {"arn": self.arn}},
        }


@dataclass
class Subscription:
    subscription_id: str
    client_id: str
    seller_id: str
    notification_type: str
    payload_version: str
    destination_id: str
    processing_directive: JSON | None = None
    delivered: int = 0

    def as_json(self) -> JSON:
        out: JSON = {
            "subscriptionId": self.subscription_id,
            "payloadVersion": self.payload_version,
            "destinationId": self.destination_id,
        }
        if self.processing_directive is not None:
            out["processingDirective"] = self.processing_directive
        return out

    def marketplace_filter(self) -> set[str] | None:
        event_filter = (self.processing_directive or {}).get("eventFilter") or {}
        ids = event_filter.get("marketplaceIds")
        return set(ids) if ids else None


@dataclass
class NotificationsState:
    destinations: dict[str, Destination] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    delivered: int = 0


_REGISTRY: weakref.WeakKeyDictionary[Market, NotificationsState] = weakref.WeakKeyDictionary()


def notifications_for(market: Market) -> NotificationsState:
    """The market's destinations and subscriptions (created, and hooked into its notifications, on first
    use). Mutated under ``market.lock``."""
    with market.lock:
        state = _REGISTRY.get(market)
        if state is None:
            state = _REGISTRY[market] = NotificationsState()
            sqs = sqs_for(market)
            market.notification_sinks.append(
                lambda seller, payload: _deliver(market, state, sqs, seller, payload)
            )
        return state


def _application_id(market: Market, client_id: str) -> str:
    return next(
        (a.application_id for a in market.applications.values() if a.client_id == client_id), APPLICATION_ID
    )


def _deliver(
    market: Market, state: NotificationsState, sqs: SqsService, seller_id: str, payload: JSON
) -> None:
    """Called by the market (holding its lock) for each notification of ``seller_id``."""
    kind = payload.get("NotificationType") or payload.get("notificationType")
    trigger = (
        (payload.get("Payload") or {}).get("AnyOfferChangedNotification", {}).get("OfferChangeTrigger", {})
    )
    for subscription in list(state.subscriptions.values()):
        if subscription.seller_id != seller_id or subscription.notification_type != kind:
            continue
        marketplaces = subscription.marketplace_filter()
        if marketplaces is not None and trigger.get("MarketplaceId") not in marketplaces:
            continue
        destination = state.destinations.get(subscription.destination_id)
        queue = sqs.queue_by_arn(destination.arn) if destination else None
        if queue is None:
            continue  # Amazon would retry and eventually give up; the notification is lost
        message = deepcopy(payload)
        metadata = message.setdefault("NotificationMetadata", {})
        metadata["SubscriptionId"] = subscription.subscription_id
        metadata["ApplicationId"] = _application_id(market, subscription.client_id)
        sqs.send(queue, json.dumps(message))
        subscription.delivered += 1
        state.delivered += 1


class NotificationsApi:
    """The werkzeug face; ``SimulatorApp`` hands it every request whose path it ``handles``."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.state = notifications_for(market)

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(PREFIX)

    def dispatch(self, request: Request, host_log: deque[LoggedRequest] | None = None) -> Response:
        from .app import LoggedRequest

        request_id = str(uuid.uuid4())
        operation, body = "unknown", None
        try:
            try:
                operation, args = ROUTES.bind("simulator").match(request.path, method=request.method)
            except NotFound:
                raise NotificationsApiError(404, "NotFound", "Resource not found.") from None
            except MethodNotAllowed:
                raise NotificationsApiError(405, "MethodNotAllowed", "Method not allowed.") from None
            if request.method == "POST":
                try:
                    body = json.loads(request.get_data() or b"null")
                except ValueError:
                    raise _invalid("The request body is not valid JSON.") from None
            token = self._authenticate(request, operation)
            self._admit(token, operation)
            with self.market.lock:
                payload = getattr(self, operation)(token, body, **args)
            response = self._json(payload, 200, request_id)
            response.headers["x-amzn-RateLimit-Limit"] = str(USAGE_PLANS[operation][0])
        except NotificationsApiError as error:
            response = self._json(error.body(), error.status, request_id)
        if host_log is not None:
            host_log.append(
                LoggedRequest(
                    operation,
                    request.method,
                    request.path,
                    request.args.to_dict(flat=False),
                    body,
                    response.status_code,
                )
            )
        return response

    @staticmethod
    def _json(payload: Any, status: int, request_id: str) -> Response:
        response = Response(json.dumps(payload), status=status, content_type="application/json")
        response.headers["x-amzn-RequestId"] = request_id
        return response

    def _authenticate(self, request: Request, operation: str) -> AccessToken:
        denied = "Access to requested resource is denied."
        raw = request.headers.get("x-amz-access-token")
        if not raw:
            raise NotificationsApiError(
                403, "Unauthorized", denied, "Access token is missing in the request header."
            )
        token, detail = self.market.check_access_token(raw)
        if token is None:
            raise NotificationsApiError(403, "Unauthorized", denied, detail)
        grantless = token.selling_partner_id is None
        if operation in GRANTLESS and not (grantless and token.scope == GRANTLESS_SCOPE):
            raise NotificationsApiError(
                403,
                "Unauthorized",
                denied,
                f"{operation} is a grantless operation: use a {GRANTLESS_SCOPE} token.",
            )
        if operation not in GRANTLESS and grantless:
            raise NotificationsApiError(403, "Unauthorized", denied, "")
        return token

    def _admit(self, token: AccessToken, operation: str) -> None:
        market = self.market
        with market.lock:
            market.stats.calls[operation] += 1
        fault = market.take_fault(operation)
        if fault == 429:
            raise NotificationsApiError(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource."
            )
        if fault is not None:
            raise NotificationsApiError(
                fault, "InternalFailure", "We encountered an internal error. Please try again."
            )
        principal = token.selling_partner_id or f"app:{token.client_id}"
        if not market.take_token(principal, token.client_id, operation):
            raise NotificationsApiError(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource."
            )

    # ---------------------------------------------------------------- destinations (grantless)

    def _destination(self, token: AccessToken, destination_id: str) -> Destination:
        destination = self.state.destinations.get(destination_id)
        if destination is None or destination.client_id != token.client_id:
            raise _not_found("destination")
        return destination

    def getDestinations(self, token: AccessToken, body: Any) -> JSON:
        mine = [d.as_json() for d in self.state.destinations.values() if d.client_id == token.client_id]
        return {"payload": mine}

    def createDestination(self, token: AccessToken, body: Any) -> JSON:
        if not isinstance(body, dict):
            raise _invalid("The request body must be a CreateDestinationRequest object.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise _invalid("name is required (a string of at most 256 characters).")
        spec = body.get("resourceSpecification")
        if not isinstance(spec, dict) or len({"sqs", "eventBridge"} & set(spec)) != 1:
            raise _invalid("resourceSpecification must name exactly one of sqs or eventBridge.")
        if "eventBridge" in spec:
            raise _invalid("EventBridge destinations are not simulated; use an SQS queue.")
        sqs_spec = spec["sqs"]
        arn = sqs_spec.get("arn") if isinstance(sqs_spec, dict) else None
        if not isinstance(arn, str) or len(arn) > 1000 or not SQS_ARN.match(arn):
            raise _invalid("resourceSpecification.sqs.arn must be an SQS queue ARN (arn:aws:sqs:...).")
        if sqs_for(self.market).queue_by_arn(arn) is None:
            raise _invalid(
                f"Amazon could not send a message to the SQS queue {arn}: check it exists and its policy."
            )
        if any(d.client_id == token.client_id and d.arn == arn for d in self.state.destinations.values()):
            raise NotificationsApiError(409, "Conflict", "A destination for this resource already exists.")
        destination = Destination(str(uuid.uuid4()), token.client_id, name.strip(), arn)
        self.state.destinations[destination.destination_id] = destination
        return {"payload": destination.as_json()}

    def getDestination(self, token: AccessToken, body: Any, destinationId: str) -> JSON:
        return {"payload": self._destination(token, destinationId).as_json()}

    def deleteDestination(self, token: AccessToken, body: Any, destinationId: str) -> JSON:
        destination = self._destination(token, destinationId)
        if any(s.destination_id == destination.destination_id for s in self.state.subscriptions.values()):
            raise NotificationsApiError(409, "Conflict", "The destination is used by subscriptions.")
        del self.state.destinations[destination.destination_id]
        return {}

    # ---------------------------------------------------------------- subscriptions

    @staticmethod
    def _type(notificationType: str) -> str:
        if notificationType not in PAYLOAD_VERSIONS:
            raise _invalid(f"{notificationType[:60]} is not a valid notificationType.")
        return notificationType

    def _of_seller(self, token: AccessToken, kind: str) -> Subscription | None:
        return next(
            (
                s
                for s in self.state.subscriptions.values()
                if s.seller_id == token.selling_partner_id
                and s.client_id == token.client_id
                and s.notification_type == kind
            ),
            None,
        )

    def _processing_directive(self, kind: str, value: Any) -> JSON | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _invalid("processingDirective must be an object.")
        event_filter = value.get("eventFilter")
        if event_filter is None:
            return value
        if not isinstance(event_filter, dict) or EVENT_FILTER_TYPES.get(kind) != event_filter.get(
            "eventFilterType"
        ):
            raise _invalid(f"eventFilter.eventFilterType is required and must suit {kind}.")
        ids = event_filter.get("marketplaceIds")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise _invalid("eventFilter.marketplaceIds must be a list of marketplace ids.")
        aggregation = event_filter.get("aggregationSettings")
        if aggregation is not None and (
            not isinstance(aggregation, dict)
            or aggregation.get("aggregationTimePeriod") not in AGGREGATION_PERIODS
        ):
            raise _invalid(f"aggregationSettings.aggregationTimePeriod must be one of {AGGREGATION_PERIODS}.")
        return value

    def createSubscription(self, token: AccessToken, body: Any, notificationType: str) -> JSON:
        kind = self._type(notificationType)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a CreateSubscriptionRequest object.")
        version, destination_id = body.get("payloadVersion"), body.get("destinationId")
        if not isinstance(version, str) or version not in PAYLOAD_VERSIONS[kind]:
            raise _invalid(f"payloadVersion must be one of {PAYLOAD_VERSIONS[kind]} for {kind}.")
        if not isinstance(destination_id, str) or not destination_id:
            raise _invalid("destinationId is required.")
        destination = self.state.destinations.get(destination_id)
        if destination is None or destination.client_id != token.client_id:
            raise _invalid(f"Destination {destination_id[:60]} does not exist for this application.")
        if self._of_seller(token, kind) is not None:
            raise NotificationsApiError(
                409, "Conflict", f"A subscription for {kind} already exists for this selling partner."
            )
        assert token.selling_partner_id is not None
        subscription = Subscription(
            subscription_id=str(uuid.uuid4()),
            client_id=token.client_id,
            seller_id=token.selling_partner_id,
            notification_type=kind,
            payload_version=version,
            destination_id=destination_id,
            processing_directive=self._processing_directive(kind, body.get("processingDirective")),
        )
        self.state.subscriptions[subscription.subscription_id] = subscription
        self.market.notifications_enabled = True  # the market now generates notifications
        return {"payload": subscription.as_json()}

    def getSubscription(self, token: AccessToken, body: Any, notificationType: str) -> JSON:
        subscription = self._of_seller(token, self._type(notificationType))
        if subscription is None:
            raise _not_found("subscription")
        return {"payload": subscription.as_json()}

    def _by_id(self, token: AccessToken, kind: str, subscription_id: str) -> Subscription:
        subscription = self.state.subscriptions.get(subscription_id)
        if (
            subscription is None
            or subscription.client_id != token.client_id
            or subscription.notification_type != kind
        ):
            raise _not_found("subscription")
        return subscription

    def getSubscriptionById(
        self, token: AccessToken, body: Any, notificationType: str, subscriptionId: str
    ) -> JSON:
        return {"payload": self._by_id(token, self._type(notificationType), subscriptionId).as_json()}

    def deleteSubscriptionById(
        self, token: AccessToken, body: Any, notificationType: str, subscriptionId: str
    ) -> JSON:
        subscription = self._by_id(token, self._type(notificationType), subscriptionId)
        del self.state.subscriptions[subscription.subscription_id]
        return {}
