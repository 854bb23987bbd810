# Handlers are named after Amazon's operation ids and take its path parameters' names:
# ruff: noqa: N802, N803
"""The simulator's HTTP face: a WSGI app (werkzeug) speaking Amazon's wire format for LWA and the SP-API
operations listed in ``OPERATIONS``. Everything is answered from a ``Market``.

The Host header is ignored (python-amazon-sp-api derives it as ``endpoint[8:]``, which is garbage for an
``http://`` endpoint). Paths, query parameters, JSON bodies and error shapes follow the official models.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .ads_app import AdsApp
from .consent import ConsentPage
from .documents import REPORT_TYPES
from .market import CATEGORIES, MARKETPLACES, US, AccessToken, Listing, LwaError, Market, Offer
from .notifications_api import NotificationsApi
from .orders import Order, iso
from .rates import MAX_BATCH_REQUESTS, USAGE_PLANS
from .sqs import SqsEndpoint

JSON = dict[str, Any]

ROUTES = Map(
    [
        Rule("/auth/o2/token", endpoint="lwaToken", methods=["POST"]),
        Rule(
            "/sellers/v1/marketplaceParticipations", endpoint="getMarketplaceParticipations", methods=["GET"]
        ),
        Rule("/listings/2021-08-01/items/<sellerId>", endpoint="searchListingsItems", methods=["GET"]),
        Rule("/listings/2021-08-01/items/<sellerId>/<path:sku>", endpoint="getListingsItem", methods=["GET"]),
        Rule(
            "/listings/2021-08-01/items/<sellerId>/<path:sku>",
            endpoint="patchListingsItem",
            methods=["PATCH"],
        ),
        Rule("/products/pricing/v0/items/<Asin>/offers", endpoint="getItemOffers", methods=["GET"]),
        Rule(
            "/products/pricing/v0/listings/<path:SellerSKU>/offers",
            endpoint="getListingOffers",
            methods=["GET"],
        ),
        Rule("/batches/products/pricing/v0/itemOffers", endpoint="getItemOffersBatch", methods=["POST"]),
        Rule(
            "/batches/products/pricing/v0/listingOffers", endpoint="getListingOffersBatch", methods=["POST"]
        ),
        Rule("/orders/v0/orders", endpoint="getOrders", methods=["GET"]),
        Rule("/orders/v0/orders/<orderId>", endpoint="getOrder", methods=["GET"]),
        Rule("/orders/v0/orders/<orderId>/orderItems", endpoint="getOrderItems", methods=["GET"]),
        Rule("/finances/v0/financialEvents", endpoint="listFinancialEvents", methods=["GET"]),
        Rule(
            "/finances/v0/orders/<orderId>/financialEvents",
            endpoint="listFinancialEventsByOrderId",
            methods=["GET"],
        ),
        Rule("/fba/inventory/v1/summaries", endpoint="getInventorySummaries", methods=["GET"]),
        Rule("/reports/2021-06-30/reports", endpoint="createReport", methods=["POST"]),
        Rule("/reports/2021-06-30/reports/<reportId>", endpoint="getReport", methods=["GET"]),
        Rule(
            "/reports/2021-06-30/documents/<path:reportDocumentId>",
            endpoint="getReportDocument",
            methods=["GET"],
        ),
        Rule("/feeds/2021-06-30/documents", endpoint="createFeedDocument", methods=["POST"]),
        Rule(
            "/feeds/2021-06-30/documents/<path:feedDocumentId>", endpoint="getFeedDocument", methods=["GET"]
        ),
        Rule("/feeds/2021-06-30/feeds", endpoint="createFeed", methods=["POST"]),
        Rule("/feeds/2021-06-30/feeds/<feedId>", endpoint="getFeed", methods=["GET"]),
        Rule("/_documents/<path:documentId>", endpoint="_download", methods=["GET"]),
        Rule("/_documents/<path:documentId>", endpoint="_upload", methods=["PUT"]),
        Rule("/_simulator/advance", endpoint="_advance", methods=["POST"]),
        Rule("/_simulator/competitor-move", endpoint="_competitor_move", methods=["POST"]),
        Rule("/_simulator/state", endpoint="_state", methods=["GET"]),
    ]
)
OPERATIONS = tuple(USAGE_PLANS)
SUCCESS_STATUS = {"createReport": 202, "createFeed": 202, "createFeedDocument": 201}
ORDER_STATUSES = (
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "Canceled",
    "Unfulfillable",
    "InvoiceUnconfirmed",
    "PendingAvailability",
)
CLOCK_SKEW = timedelta(minutes=2)  # Amazon's "no later than two minutes before now"

ITEM_OFFERS_URI = re.compile(r"^/products/pricing/v0/items/([^/?]+)/offers$")
LISTING_OFFERS_URI = re.compile(r"^/products/pricing/v0/listings/([^?]+)/offers$")
ITEM_CONDITIONS = ("New", "Used", "Collectible", "Refurbished", "Club")
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> JSON:
        return {"errors": [{"code": self.code, "message": self.message, "details": self.details}]}


def _num(value: Decimal) -> float:
    """JSON numbers for the pricing API (``"Amount": 19.99``). A 2-decimal Decimal converts to the float
    whose shortest repr is the same digits, so the wire text is exact."""
    return float(value)


def money_type(amount: Decimal, currency: str) -> JSON:
    return {"CurrencyCode": currency, "Amount": _num(amount)}


def _dumps(body: Any) -> str:
    return json.dumps(body, default=lambda o: _num(o) if isinstance(o, Decimal) else str(o))


def _iso(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass
class LoggedRequest:
    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


class SimulatorApp:
    """WSGI application. ``log`` keeps the last requests (operation, query, parsed body, status) so tests
    can validate what clients actually sent."""

    def __init__(self, market: Market, log_size: int = 2000) -> None:
        self.market = market
        self.log: deque[LoggedRequest] = deque(maxlen=log_size)
        self.public_url: str | None = None  # where document URLs point (set by SimulatorServer)
        self._cursors: OrderedDict[str, tuple[list[Any], int, JSON]] = OrderedDict()
        self.ads = AdsApp(market, self.public_base)  # the Ads API (ads_app.py)
        self.consent = ConsentPage(market)  # Seller Central's consent page (consent.py)
        self.notifications_api = NotificationsApi(
            market
        )  # destinations, subscriptions (notifications_api.py)
        self.sqs = SqsEndpoint(market, self.public_base)  # the queue they deliver to (sqs.py)

    # ------------------------------------------------------------------ plumbing

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if self.consent.handles(request.path):
            return self.consent.dispatch(request, self.log)
        if self.ads.handles(request.path):
            return self.ads.dispatch(request, self.log)
        if self.sqs.handles(request):
            return self.sqs.dispatch(request, self.log)
        if self.notifications_api.handles(request.path):
            return self.notifications_api.dispatch(request, self.log)
        adapter = ROUTES.bind("simulator")  # the Host header is deliberately ignored
        request_id = str(uuid.uuid4())
        body: Any = None
        operation = "unknown"
        try:
            try:
                operation, args = adapter.match(request.path, method=request.method)
            except NotFound:
                raise ApiError(404, "NotFound", "Resource not found.") from None
            except MethodNotAllowed:
                raise ApiError(405, "MethodNotAllowed", "Method not allowed.") from None
            if operation == "lwaToken":
                return self.lwa_token(request)
            if operation in ("_download", "_upload"):
                return getattr(self, operation)(request, **args)  # presigned URLs: no token, raw bytes
            if request.method in ("POST", "PATCH", "PUT") and request.get_data():
                try:
                    body = json.loads(request.get_data(), parse_float=Decimal)
                except ValueError:
                    raise ApiError(400, "InvalidInput", "The request body is not valid JSON.") from None
            if operation.startswith("_"):
                return self._json(getattr(self, operation)(request, body), 200, request_id)
            token = self.authenticate(request)
            self.admit(token, operation)
            payload = getattr(self, operation)(request, token, body, **args)
            response = self._json(payload, SUCCESS_STATUS.get(operation, 200), request_id)
            response.headers["x-amzn-RateLimit-Limit"] = str(USAGE_PLANS[operation][0])
        except ApiError as exc:
            response = self._json(exc.body(), exc.status, request_id)
        except HTTPException as exc:  # pragma: no cover - werkzeug's own (e.g. request too large)
            response = self._json(
                ApiError(exc.code or 400, "InvalidInput", str(exc)).body(), exc.code or 400, request_id
            )
        self.log.append(
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
        response = Response(_dumps(payload), status=status, content_type="application/json")
        response.headers["x-amzn-RequestId"] = request_id
        return response

    def authenticate(self, request: Request) -> AccessToken:
        raw = request.headers.get("x-amz-access-token")
        if not raw:
            raise ApiError(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "Access token is missing in the request header.",
            )
        token, detail = self.market.check_access_token(raw)
        if token is None:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.", detail)
        if token.selling_partner_id is None:  # grantless tokens only serve grantless operations
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.", "")
        return token

    def admit(self, token: AccessToken, operation: str) -> None:
        self.market.stats.calls[operation] += 1
        fault = self.market.take_fault(operation)
        if fault == 429:
            raise ApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "")
        if fault == 503:
            raise ApiError(
                503, "ServiceUnavailable", "Service temporarily unavailable. Please try again.", ""
            )
        if fault is not None:
            raise ApiError(
                fault, "InternalFailure", "We encountered an internal error. Please try again.", ""
            )
        assert token.selling_partner_id is not None
        if not self.market.take_token(token.selling_partner_id, token.client_id, operation):
            raise ApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "")

    @staticmethod
    def _list_param(request: Request, name: str) -> list[str]:
        """Amazon's array query parameters are comma-delimited; some clients repeat the parameter."""
        return [v for raw in request.args.getlist(name) for v in raw.split(",") if v]

    def _marketplace(self, request: Request, name: str) -> str:
        values = self._list_param(request, name)
        if not values:
            raise ApiError(400, "InvalidInput", f"Missing required parameter '{name}'.")
        if values[0] not in MARKETPLACES:
            raise ApiError(400, "InvalidInput", f"Invalid marketplace identifier '{values[0]}'.")
        return values[0]

    def _own_seller(self, token: AccessToken, seller_id: str) -> None:
        if seller_id != token.selling_partner_id:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.", "")

    # ------------------------------------------------------------------ LWA

    def lwa_token(self, request: Request) -> Response:
        form = dict(request.form.items())
        try:
            answer = self.market.grant_token(form)
            self.ads.ads.note_grant(form, answer)
            status = 200
        except LwaError as exc:
            answer, status = {"error": exc.error, "error_description": exc.description}, exc.status
        response = Response(json.dumps(answer), status=status, content_type="application/json;charset=UTF-8")
        response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        self.log.append(
            LoggedRequest(
                "lwaToken",
                "POST",
                request.path,
                {},
                {k: ("***" if "secret" in k or "token" in k or k == "code" else v) for k, v in form.items()},
                status,
            )
        )
        return response

    # ------------------------------------------------------------------ Sellers

    def getMarketplaceParticipations(self, request: Request, token: AccessToken, body: Any) -> JSON:
        seller = self.market.sellers[token.selling_partner_id or ""]
        payload = []
        for mid in seller.marketplace_ids:
            m = MARKETPLACES[mid]
            payload.append(
                {
                    "marketplace": {
                        "id": m.id,
                        "countryCode": m.country_code,
                        "name": m.name,
                        "defaultCurrencyCode": m.currency,
                        "defaultLanguageCode": m.language,
                        "domainName": m.domain,
                    },
                    "storeName": seller.store_name,
                    "participation": {
                        "isParticipating": True,
                        "hasSuspendedListings": mid in seller.suspended_marketplaces,
                    },
                }
            )
        return {"payload": payload}

    # ------------------------------------------------------------------ Listings Items 2021-08-01

    def _item(self, li: Listing, included: list[str]) -> JSON:
        m = MARKETPLACES[li.marketplace_id]
        item: JSON = {"sku": li.sku}
        if "summaries" in included:
            summary: JSON = {
                "marketplaceId": li.marketplace_id,
                "asin": li.asin,
                "productType": li.product_type,
                "conditionType": li.condition_type,
                "status": li.status,
                "itemName": li.item_name,
                "createdDate": _iso(li.created),
                "lastUpdatedDate": _iso(li.updated),
                "mainImage": {
                    "link": f"https://m.media-amazon.com/images/I/{li.asin}.jpg",
                    "height": 500,
                    "width": 500,
                },
            }
            if li.is_fba:
                summary["fnSku"] = "X00" + li.asin[-7:]
            item["summaries"] = [summary]
        if "attributes" in included:
            offer: JSON = {
                "marketplace_id": li.marketplace_id,
                "currency": m.currency,
                "audience": "ALL",
                "our_price": [{"schedule": [{"value_with_tax": li.price}]}],
            }
            if li.min_price is not None:
                offer["minimum_seller_allowed_price"] = [{"schedule": [{"value_with_tax": li.min_price}]}]
            if li.max_price is not None:
                offer["maximum_seller_allowed_price"] = [{"schedule": [{"value_with_tax": li.max_price}]}]
            availability: JSON = {
                "fulfillment_channel_code": li.fulfillment_channel,
                "marketplace_id": li.marketplace_id,
            }
            if not li.is_fba:
                availability["quantity"] = li.quantity
                availability["lead_time_to_ship_max_days"] = max(1, li.handling_hours[1] // 24)
            item["attributes"] = {
                "item_name": [
                    {"value": li.item_name, "language_tag": m.language, "marketplace_id": li.marketplace_id}
                ],
                "condition_type": [{"value": li.condition_type, "marketplace_id": li.marketplace_id}],
                "purchasable_offer": [offer],
                "fulfillment_availability": [availability],
            }
        if "issues" in included:
            item["issues"] = [
                dict(i, marketplaceIds=i.get("marketplaceIds", [li.marketplace_id])) for i in li.issues
            ]
        if "offers" in included:
            item["offers"] = [
                {
                    "marketplaceId": li.marketplace_id,
                    "offerType": "B2C",
                    "price": {"currencyCode": m.currency, "amount": str(li.price)},
                    "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
                }
            ]
        if "fulfillmentAvailability" in included:
            item["fulfillmentAvailability"] = [
                {"fulfillmentChannelCode": li.fulfillment_channel, "quantity": max(li.quantity, 0)}
            ]
        if "productTypes" in included:
            item["productTypes"] = [{"marketplaceId": li.marketplace_id, "productType": li.product_type}]
        return item

    def _included(self, request: Request, default: list[str]) -> list[str]:
        return self._list_param(request, "includedData") or default

    def getListingsItem(
        self, request: Request, token: AccessToken, body: Any, sellerId: str, sku: str
    ) -> JSON:
        self._own_seller(token, sellerId)
        marketplace_id = self._marketplace(request, "marketplaceIds")
        with self.market.lock:
            li = self.market.listing(sellerId, sku, marketplace_id)
            if li is None:
                raise ApiError(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {marketplace_id}")
            return self._item(li, self._included(request, ["summaries"]))

    def searchListingsItems(self, request: Request, token: AccessToken, body: Any, sellerId: str) -> JSON:
        self._own_seller(token, sellerId)
        marketplace_id = self._marketplace(request, "marketplaceIds")
        try:
            page_size = int(request.args.get("pageSize", "10"))
        except ValueError:
            raise ApiError(400, "InvalidInput", "'pageSize' must be an integer.") from None
        if not 1 <= page_size <= 20:
            raise ApiError(400, "InvalidInput", "'pageSize' must be between 1 and 20.")
        offset = 0
        if request.args.get("pageToken"):
            try:
                offset = int(
                    base64.urlsafe_b64decode(request.args["pageToken"].encode()).decode().removeprefix("o:")
                )
            except (ValueError, binascii.Error):
                raise ApiError(400, "InvalidInput", "Invalid 'pageToken'.") from None
        identifiers = set(self._list_param(request, "identifiers"))
        id_type = request.args.get("identifiersType", "SKU")
        if identifiers and id_type not in ("SKU", "ASIN"):
            raise ApiError(400, "InvalidInput", f"Unsupported identifiersType '{id_type}'.")
        with_status = set(self._list_param(request, "withStatus"))
        without_status = set(self._list_param(request, "withoutStatus"))
        sort_by = request.args.get("sortBy", "lastUpdatedDate")
        descending = request.args.get("sortOrder", "DESC") == "DESC"
        with self.market.lock:
            rows = self.market.seller_listings(sellerId, marketplace_id)
            if identifiers:
                rows = [li for li in rows if (li.sku if id_type == "SKU" else li.asin) in identifiers]
            if with_status:
                rows = [li for li in rows if with_status & set(li.status)]
            if without_status:
                rows = [li for li in rows if not without_status & set(li.status)]
            keys: dict[str, Callable[[Listing], Any]] = {
                "sku": lambda li: li.sku,
                "createdDate": lambda li: (li.created, li.sku),
                "lastUpdatedDate": lambda li: (li.updated, li.sku),
            }
            if sort_by not in keys:
                raise ApiError(400, "InvalidInput", f"Unsupported sortBy '{sort_by}'.")
            rows = sorted(rows, key=keys[sort_by], reverse=descending)[:1000]
            included = self._included(request, ["summaries"])
            items = [self._item(li, included) for li in rows[offset : offset + page_size]]
        result: JSON = {"numberOfResults": len(rows), "items": items}
        pagination: JSON = {}
        if offset + page_size < len(rows):
            pagination["nextToken"] = base64.urlsafe_b64encode(f"o:{offset + page_size}".encode()).decode()
        if offset > 0:
            pagination["previousToken"] = base64.urlsafe_b64encode(
                f"o:{max(offset - page_size, 0)}".encode()
            ).decode()
        if pagination:
            result["pagination"] = pagination
        return result

    def patchListingsItem(
        self, request: Request, token: AccessToken, body: Any, sellerId: str, sku: str
    ) -> JSON:
        self._own_seller(token, sellerId)
        marketplace_id = self._marketplace(request, "marketplaceIds")
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidInput", "The request body is required.")
        market = self.market
        with market.lock:
            li = market.listing(sellerId, sku, marketplace_id)
            if li is None:
                return {
                    "sku": sku,
                    "status": "INVALID",
                    "submissionId": str(uuid.uuid4()),
                    "issues": [
                        {
                            "code": "4000004",
                            "message": f"SKU '{sku}' does not exist in marketplace {marketplace_id}.",
                            "severity": "ERROR",
                            "categories": ["INVALID_ATTRIBUTE"],
                        }
                    ],
                }
            result = market.submit_patch(sellerId, sku, [marketplace_id], body)
            if request.args.get("mode") == "VALIDATION_PREVIEW" and result["status"] == "ACCEPTED":
                market.withdraw(result["submissionId"])  # a preview changes nothing
                result["status"] = "VALID"
            if "identifiers" in self._list_param(request, "includedData"):
                result["identifiers"] = [{"marketplaceId": marketplace_id, "asin": li.asin}]
            return result

    # ------------------------------------------------------------------ Product Pricing v0

    def _offer_detail(self, offer: Offer, currency: str, winner: Offer | None, my_seller: str | None) -> JSON:
        detail: JSON = {
            "Shipping": money_type(offer.shipping, currency),
            "ListingPrice": money_type(offer.price, currency),
            "ShippingTime": {
                "minimumHours": offer.handling_hours[0],
                "maximumHours": offer.handling_hours[1],
                "availabilityType": "NOW",
            },
            "SellerFeedbackRating": {
                "SellerPositiveFeedbackRating": float(offer.feedback_rating),
                "FeedbackCount": offer.feedback_count,
            },
            "ShipsFrom": {"Country": offer.ships_from},
            "SubCondition": offer.sub_condition,
            "SellerId": offer.seller_id,
            "IsFeaturedMerchant": offer.feedback_rating >= 90 or offer.is_fba,
            "IsBuyBoxWinner": winner is not None
            and winner.seller_id == offer.seller_id
            and winner.sku == offer.sku,
            "IsFulfilledByAmazon": offer.is_fba,
            "PrimeInformation": {"IsPrime": offer.is_fba, "IsNationalPrime": offer.is_fba},
        }
        if my_seller is not None:
            detail["MyOffer"] = offer.seller_id == my_seller
        return detail

    def _offers_result(
        self, marketplace_id: str, asin: str, condition: str, my_seller: str | None, sku: str | None = None
    ) -> JSON:
        market = self.market
        currency = MARKETPLACES[marketplace_id].currency
        product = market.products[(marketplace_id, asin)]
        every = market.offers(marketplace_id, asin)
        chosen = [o for o in every if o.condition == condition][:20]
        winner = market.buybox_winner(marketplace_id, asin)
        groups: dict[tuple[str, str], list[Offer]] = {}
        for o in every:
            groups.setdefault((o.condition.lower(), o.fulfillment), []).append(o)
        summary: JSON = {
            "TotalOfferCount": len(every),
            "NumberOfOffers": [
                {"condition": c, "fulfillmentChannel": f, "OfferCount": len(os)}
                for (c, f), os in groups.items()
            ],
            "LowestPrices": [
                {
                    "condition": c,
                    "fulfillmentChannel": f,
                    "LandedPrice": money_type(os[0].landed, currency),
                    "ListingPrice": money_type(os[0].price, currency),
                    "Shipping": money_type(os[0].shipping, currency),
                }
                for (c, f), os in groups.items()
            ],
            "BuyBoxEligibleOffers": [
                {
                    "condition": c,
                    "fulfillmentChannel": f,
                    "OfferCount": sum(
                        1 for o in os if o.condition == "New" and (o.feedback_rating >= 80 or o.is_fba)
                    ),
                }
                for (c, f), os in groups.items()
            ],
            "ListPrice": money_type(product.list_price, currency),
            "SalesRankings": [
                {"ProductCategoryId": CATEGORIES[product.category]["rank_id"], "Rank": product.sales_rank}
            ],
        }
        if winner is not None:
            summary["BuyBoxPrices"] = [
                {
                    "condition": "new",
                    "LandedPrice": money_type(winner.landed, currency),
                    "ListingPrice": money_type(winner.price, currency),
                    "Shipping": money_type(winner.shipping, currency),
                }
            ]
        result: JSON = {
            "marketplaceId": marketplace_id,
            "status": "Success" if chosen else "NoBuyableOffers",
            "ItemCondition": condition,
            "Summary": summary,
            "Offers": [self._offer_detail(o, currency, winner, my_seller) for o in chosen],
        }
        if sku is None:
            result["ASIN"] = asin
            result["Identifier"] = {"MarketplaceId": marketplace_id, "ItemCondition": condition, "ASIN": asin}
        else:
            result["SKU"] = sku
            result["Identifier"] = {
                "MarketplaceId": marketplace_id,
                "ItemCondition": condition,
                "SellerSKU": sku,
            }
        return result

    @staticmethod
    def _pricing_params(params: dict[str, Any]) -> tuple[str, str]:
        marketplace_id = params.get("MarketplaceId")
        if not marketplace_id:
            raise ApiError(400, "InvalidInput", "Missing required parameter MarketplaceId.")
        if marketplace_id not in MARKETPLACES:
            raise ApiError(400, "InvalidInput", f"Invalid MarketplaceId '{marketplace_id}'.")
        condition = params.get("ItemCondition")
        if condition not in ITEM_CONDITIONS:
            raise ApiError(400, "InvalidInput", "Missing or invalid required parameter ItemCondition.")
        if params.get("CustomerType") not in (None, "Consumer", "Business"):
            raise ApiError(400, "InvalidInput", "Invalid CustomerType.")
        return str(marketplace_id), str(condition)

    def _item_offers(self, asin: str, params: dict[str, Any], token: AccessToken) -> JSON:
        marketplace_id, condition = self._pricing_params(params)
        with self.market.lock:
            if (marketplace_id, asin) not in self.market.products:
                raise ApiError(
                    400, "InvalidInput", f"Invalid ASIN '{asin}' for marketplace {marketplace_id}."
                )
            return self._offers_result(marketplace_id, asin, condition, token.selling_partner_id)

    def _listing_offers(self, sku: str, params: dict[str, Any], token: AccessToken) -> JSON:
        marketplace_id, condition = self._pricing_params(params)
        with self.market.lock:
            li = self.market.listing(token.selling_partner_id or "", sku, marketplace_id)
            if li is None:
                raise ApiError(
                    400, "InvalidInput", f"Invalid SellerSKU '{sku}' for marketplace {marketplace_id}."
                )
            return self._offers_result(marketplace_id, li.asin, condition, token.selling_partner_id, sku=sku)

    def getItemOffers(self, request: Request, token: AccessToken, body: Any, Asin: str) -> JSON:
        return {"payload": self._item_offers(Asin, request.args.to_dict(), token)}

    def getListingOffers(self, request: Request, token: AccessToken, body: Any, SellerSKU: str) -> JSON:
        return {"payload": self._listing_offers(SellerSKU, request.args.to_dict(), token)}

    def _batch(self, body: Any, token: AccessToken, pattern: re.Pattern[str], by_sku: bool) -> JSON:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "InvalidInput", "The request body must contain a non-empty 'requests' list.")
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ApiError(400, "InvalidInput", f"A batch holds at most {MAX_BATCH_REQUESTS} requests.")
        responses = []
        now = format_datetime(self.market.clock.now(), usegmt=True)
        for entry in requests:
            if not isinstance(entry, dict):
                raise ApiError(400, "InvalidInput", "Each batch request must be an object.")
            echo = {k: entry[k] for k in ("MarketplaceId", "ItemCondition", "CustomerType") if k in entry}
            match = pattern.match(str(entry.get("uri", "")))
            key = "SellerSKU" if by_sku else "Asin"
            if match is not None:
                echo[key] = match.group(1)
            try:
                if match is None:
                    raise ApiError(400, "InvalidInput", f"Invalid uri '{entry.get('uri')}'.")
                if entry.get("method") != "GET":
                    raise ApiError(400, "InvalidInput", "Invalid method; only GET is supported.")
                if by_sku:
                    payload = self._listing_offers(match.group(1), entry, token)
                else:
                    payload = self._item_offers(match.group(1), entry, token)
                status, body_out = 200, {"payload": payload}
            except ApiError as exc:
                status, body_out = exc.status, exc.body()
            responses.append(
                {
                    "status": {"statusCode": status, "reasonPhrase": REASONS.get(status, "Error")},
                    "body": body_out,
                    "headers": {"x-amzn-RequestId": str(uuid.uuid4()), "Date": now},
                    "request": echo,
                }
            )
        return {"responses": responses}

    def getItemOffersBatch(self, request: Request, token: AccessToken, body: Any) -> JSON:
        return self._batch(body, token, ITEM_OFFERS_URI, by_sku=False)

    def getListingOffersBatch(self, request: Request, token: AccessToken, body: Any) -> JSON:
        return self._batch(body, token, LISTING_OFFERS_URI, by_sku=True)

    # ------------------------------------------------------------------ shared helpers (new APIs)

    def _date(self, request: Request, name: str) -> datetime | None:
        raw = request.args.get(name)
        if not raw:
            return None
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "InvalidInput", f"Invalid {name}: '{raw}' is not an ISO 8601 date.") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _int(self, request: Request, name: str, default: int, low: int, high: int) -> int:
        try:
            value = int(request.args.get(name, default))
        except ValueError:
            raise ApiError(400, "InvalidInput", f"'{name}' must be an integer.") from None
        if not low <= value <= high:
            raise ApiError(400, "InvalidInput", f"'{name}' must be between {low} and {high}.")
        return value

    def _save_cursor(self, rows: list[Any], offset: int, extra: JSON) -> str:
        token = base64.urlsafe_b64encode(uuid.uuid4().bytes + offset.to_bytes(4, "big")).decode()
        self._cursors[token] = (rows, offset, extra)
        while len(self._cursors) > 1000:
            self._cursors.popitem(last=False)
        return token

    def _cursor(self, token: str, name: str) -> tuple[list[Any], int, JSON]:
        entry = self._cursors.get(token)
        if entry is None:
            raise ApiError(400, "InvalidInput", f"Invalid {name}.")
        return entry

    def _page(self, rows: list[Any], offset: int, size: int, extra: JSON) -> tuple[list[Any], str | None]:
        page = rows[offset : offset + size]
        more = offset + size < len(rows)
        return page, self._save_cursor(rows, offset + size, extra) if more else None

    def public_base(self, request: Request) -> str:
        if self.public_url:
            return self.public_url
        env = request.environ
        return f"http://{env.get('SERVER_NAME', '127.0.0.1')}:{env.get('SERVER_PORT', '80')}"

    # ------------------------------------------------------------------ Orders v0

    def getOrders(self, request: Request, token: AccessToken, body: Any) -> JSON:
        seller = token.selling_partner_id or ""
        market = self.market
        size = self._int(request, "MaxResultsPerPage", 100, 1, 100)
        with market.lock:
            now = market.clock.now()
            if request.args.get("NextToken"):
                rows, offset, extra = self._cursor(request.args["NextToken"], "NextToken")
            else:
                rows, extra = self._select_orders(request, seller, now)
                offset = 0
            page, next_token = self._page(rows, offset, size, extra)
            orders = [market.orders[oid].to_order(now) for oid in page]
        payload: JSON = {"Orders": orders, **extra}
        if next_token:
            payload["NextToken"] = next_token
        return {"payload": payload}

    def _select_orders(self, request: Request, seller: str, now: datetime) -> tuple[list[str], JSON]:
        marketplaces = self._list_param(request, "MarketplaceIds")
        if not marketplaces:
            raise ApiError(400, "InvalidInput", "Missing required parameter 'MarketplaceIds'.")
        if len(marketplaces) > 50 or any(m not in MARKETPLACES for m in marketplaces):
            raise ApiError(400, "InvalidInput", "Invalid 'MarketplaceIds'.")
        created_after, created_before = (
            self._date(request, "CreatedAfter"),
            self._date(request, "CreatedBefore"),
        )
        updated_after = self._date(request, "LastUpdatedAfter")
        updated_before = self._date(request, "LastUpdatedBefore")
        order_ids = set(self._list_param(request, "AmazonOrderIds"))
        if len(order_ids) > 50:
            raise ApiError(400, "InvalidInput", "At most 50 AmazonOrderIds.")
        if created_after and updated_after:
            raise ApiError(400, "InvalidInput", "Specify either CreatedAfter or LastUpdatedAfter, not both.")
        if not (created_after or updated_after or order_ids):
            raise ApiError(400, "InvalidInput", "Either CreatedAfter or LastUpdatedAfter must be specified.")
        if (created_before and not created_after) or (updated_before and not updated_after):
            raise ApiError(400, "InvalidInput", "A ...Before date needs its ...After date.")
        latest = now - CLOCK_SKEW
        for name, value in (
            ("CreatedAfter", created_after),
            ("CreatedBefore", created_before),
            ("LastUpdatedAfter", updated_after),
            ("LastUpdatedBefore", updated_before),
        ):
            if value is not None and value > latest:
                raise ApiError(
                    400, "InvalidInput", f"{name} must be no later than two minutes before the request time."
                )
        statuses = set(self._list_param(request, "OrderStatuses"))
        if statuses - set(ORDER_STATUSES):
            raise ApiError(400, "InvalidInput", f"Invalid OrderStatuses {sorted(statuses)}.")
        channels = set(self._list_param(request, "FulfillmentChannels"))
        if channels - {"AFN", "MFN"}:
            raise ApiError(400, "InvalidInput", f"Invalid FulfillmentChannels {sorted(channels)}.")
        wanted_afn = {c == "AFN" for c in channels}
        mps = set(marketplaces)

        def keep(o: Order) -> bool:
            return (
                o.marketplace_id in mps
                and o.purchased <= now
                and (not order_ids or o.order_id in order_ids)
                and (not channels or o.afn in wanted_afn)
                and (not statuses or o.status_at(now) in statuses)
            )

        candidates = [o for o in self.market.seller_orders(seller) if keep(o)]
        if updated_after is not None:
            before = updated_before or latest
            bounds: JSON = {"LastUpdatedBefore": iso(before)}
            keyed = [(o.last_update_at(now), o.order_id) for o in candidates]
            rows = sorted(k for k in keyed if updated_after <= k[0] <= before)
        else:
            before = created_before or latest
            start = created_after or datetime.min.replace(tzinfo=UTC)
            bounds = {"CreatedBefore": iso(before)}
            rows = sorted((o.purchased, o.order_id) for o in candidates if start <= o.purchased <= before)
        return [oid for _, oid in rows], bounds

    def _order(self, token: AccessToken, order_id: str) -> Order:
        order = self.market.orders.get(order_id)
        if (
            order is None
            or order.seller_id != token.selling_partner_id
            or order.purchased > self.market.clock.now()
        ):
            raise ApiError(404, "NotFound", f"Order {order_id} not found.")
        return order

    def getOrder(self, request: Request, token: AccessToken, body: Any, orderId: str) -> JSON:
        with self.market.lock:
            return {"payload": self._order(token, orderId).to_order(self.market.clock.now())}

    def getOrderItems(self, request: Request, token: AccessToken, body: Any, orderId: str) -> JSON:
        with self.market.lock:
            if request.args.get("NextToken"):
                rows, offset, _ = self._cursor(request.args["NextToken"], "NextToken")
            else:
                rows, offset = self._order(token, orderId).to_items(self.market.clock.now()), 0
            page, next_token = self._page(rows, offset, 100, {})
        payload: JSON = {"AmazonOrderId": orderId, "OrderItems": page}
        if next_token:
            payload["NextToken"] = next_token
        return {"payload": payload}

    # ------------------------------------------------------------------ Finances v0

    @staticmethod
    def _financial_events(events: list[tuple[Order, str, JSON]]) -> JSON:
        lists: JSON = {"ShipmentEventList": [], "RefundEventList": [], "AdjustmentEventList": []}
        for _, kind, event in events:
            lists[kind].append(event)
        return lists

    def listFinancialEvents(self, request: Request, token: AccessToken, body: Any) -> JSON:
        market = self.market
        size = self._int(request, "MaxResultsPerPage", 100, 1, 100)
        with market.lock:
            now = market.clock.now()
            if request.args.get("NextToken"):
                rows, offset, _ = self._cursor(request.args["NextToken"], "NextToken")
            else:
                latest = now - CLOCK_SKEW
                before = self._date(request, "PostedBefore") or latest
                after = self._date(request, "PostedAfter") or before - timedelta(hours=48)
                if before > latest or after > latest:
                    raise ApiError(
                        400,
                        "InvalidInput",
                        "Dates must be no later than two minutes before the request time.",
                    )
                if after > before:
                    raise ApiError(400, "InvalidInput", "PostedAfter must be before PostedBefore.")
                rows = market.financial_events_between(token.selling_partner_id or "", after, before)
                offset = 0
            page, next_token = self._page(rows, offset, size, {})
            events: list[tuple[Order, str, JSON]] = []
            for posted, oid, kind in page:
                order = market.orders[oid]
                events.extend(
                    (order, k, e) for p, k, e in order.financial_events() if k == kind and p == posted
                )
        payload: JSON = {"FinancialEvents": self._financial_events(events)}
        if next_token:
            payload["NextToken"] = next_token
        return {"payload": payload}

    def listFinancialEventsByOrderId(
        self, request: Request, token: AccessToken, body: Any, orderId: str
    ) -> JSON:
        self._int(request, "MaxResultsPerPage", 100, 1, 100)
        market = self.market
        with market.lock:
            now = market.clock.now()
            order = market.orders.get(orderId)
            events: list[tuple[Order, str, JSON]] = []
            if order is not None and order.seller_id == token.selling_partner_id:
                events = [(order, k, e) for p, k, e in order.financial_events() if p <= now]
        return {"payload": {"FinancialEvents": self._financial_events(events)}}

    # ------------------------------------------------------------------ FBA Inventory v1

    def getInventorySummaries(self, request: Request, token: AccessToken, body: Any) -> JSON:
        if request.args.get("granularityType") != "Marketplace":
            raise ApiError(400, "InvalidInput", "granularityType must be 'Marketplace'.")
        granularity_id = request.args.get("granularityId", "")
        marketplaces = self._list_param(request, "marketplaceIds")
        if len(marketplaces) != 1 or marketplaces[0] not in MARKETPLACES or granularity_id != marketplaces[0]:
            raise ApiError(400, "InvalidInput", "Exactly one valid marketplaceIds, equal to granularityId.")
        skus = self._list_param(request, "sellerSkus")
        if len(skus) > 50:
            raise ApiError(400, "InvalidInput", "At most 50 sellerSkus.")
        details = request.args.get("details", "false").lower() == "true"
        start = self._date(request, "startDateTime")
        market = self.market
        with market.lock:
            if request.args.get("nextToken"):
                rows, offset, _ = self._cursor(request.args["nextToken"], "nextToken")
            else:
                rows = sorted(
                    (
                        li
                        for li in market.seller_listings(token.selling_partner_id or "", marketplaces[0])
                        if li.is_fba
                    ),
                    key=lambda li: li.sku,
                )
                if start is not None:
                    rows = [li for li in rows if li.updated >= start]
                elif skus:
                    rows = [li for li in rows if li.sku in set(skus)]
                elif request.args.get("sellerSku"):
                    rows = [li for li in rows if li.sku == request.args["sellerSku"]]
                offset = 0
            page, next_token = self._page(rows, offset, 50, {})
            summaries = [self._inventory_summary(li, details) for li in page]
        result: JSON = {
            "payload": {
                "granularity": {"granularityType": "Marketplace", "granularityId": marketplaces[0]},
                "inventorySummaries": summaries,
            }
        }
        if next_token:
            result["pagination"] = {"nextToken": next_token}
        return result

    def _inventory_summary(self, li: Listing, details: bool) -> JSON:
        extra = self.market.fba_inventory(li)
        fulfillable = max(li.quantity, 0)
        reserved = extra["pendingCustomerOrderQuantity"] + extra["fcProcessingQuantity"]
        unfulfillable = (
            extra["customerDamagedQuantity"] + extra["warehouseDamagedQuantity"] + extra["defectiveQuantity"]
        )
        inbound = (
            extra["inboundWorkingQuantity"]
            + extra["inboundShippedQuantity"]
            + extra["inboundReceivingQuantity"]
        )
        summary: JSON = {
            "asin": li.asin,
            "fnSku": "X00" + li.asin[-7:],
            "sellerSku": li.sku,
            "condition": "NewItem" if li.condition == "New" else "UsedGood",
            "lastUpdatedTime": iso(li.updated),
            "productName": li.item_name,
            "totalQuantity": fulfillable + reserved + unfulfillable + inbound + extra["researchingQuantity"],
            "stores": [],
        }
        if details:
            summary["inventoryDetails"] = {
                "fulfillableQuantity": fulfillable,
                "inboundWorkingQuantity": extra["inboundWorkingQuantity"],
                "inboundShippedQuantity": extra["inboundShippedQuantity"],
                "inboundReceivingQuantity": extra["inboundReceivingQuantity"],
                "reservedQuantity": {
                    "totalReservedQuantity": reserved,
                    "pendingCustomerOrderQuantity": extra["pendingCustomerOrderQuantity"],
                    "pendingTransshipmentQuantity": 0,
                    "fcProcessingQuantity": extra["fcProcessingQuantity"],
                },
                "researchingQuantity": {
                    "totalResearchingQuantity": extra["researchingQuantity"],
                    "researchingQuantityBreakdown": [
                        {"name": "researchingQuantityInShortTerm", "quantity": extra["researchingQuantity"]}
                    ],
                },
                "unfulfillableQuantity": {
                    "totalUnfulfillableQuantity": unfulfillable,
                    "customerDamagedQuantity": extra["customerDamagedQuantity"],
                    "warehouseDamagedQuantity": extra["warehouseDamagedQuantity"],
                    "distributorDamagedQuantity": 0,
                    "carrierDamagedQuantity": 0,
                    "defectiveQuantity": extra["defectiveQuantity"],
                    "expiredQuantity": 0,
                },
            }
        return summary

    # ------------------------------------------------------------------ Reports 2021-06-30

    def _marketplace_list(self, body: Any) -> list[str]:
        ids = body.get("marketplaceIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or any(m not in MARKETPLACES for m in ids):
            raise ApiError(400, "InvalidInput", "marketplaceIds must list valid marketplace identifiers.")
        return [str(m) for m in ids]

    def createReport(self, request: Request, token: AccessToken, body: Any) -> JSON:
        marketplaces = self._marketplace_list(body)
        report_type = body.get("reportType")
        if report_type not in REPORT_TYPES:
            raise ApiError(400, "InvalidInput", f"Report type {report_type} is not supported.")
        options = body.get("reportOptions") if isinstance(body.get("reportOptions"), dict) else None
        report = self.market.create_report(token.selling_partner_id or "", report_type, marketplaces, options)
        return {"reportId": report.report_id}

    def getReport(self, request: Request, token: AccessToken, body: Any, reportId: str) -> JSON:
        market = self.market
        with market.lock:
            report = market.reports.get(reportId)
            if report is None or report.seller_id != token.selling_partner_id:
                raise ApiError(404, "NotFound", f"Report {reportId} not found.")
            now = market.clock.now()
            status = report.status_at(now)
            answer: JSON = {
                "reportId": report.report_id,
                "reportType": report.report_type,
                "marketplaceIds": report.marketplace_ids,
                "createdTime": iso(report.created),
                "dataStartTime": iso(report.created),
                "dataEndTime": iso(report.created),
                "processingStatus": status,
            }
            if status != "IN_QUEUE":
                answer["processingStartTime"] = iso(report.started)
            if status == "DONE" and report.document_id:
                answer["processingEndTime"] = iso(report.finished)
                answer["reportDocumentId"] = report.document_id
            return answer

    def _document_answer(self, request: Request, document_id: str, key: str) -> JSON:
        doc = self.market.documents.get(document_id)
        if doc is None or doc.content is None:
            raise ApiError(404, "NotFound", f"Document {document_id} not found.")
        answer: JSON = {
            key: doc.document_id,
            "url": f"{self.public_base(request)}/_documents/{doc.document_id}",
        }
        if doc.compressed:
            answer["compressionAlgorithm"] = "GZIP"
        return answer

    def getReportDocument(
        self, request: Request, token: AccessToken, body: Any, reportDocumentId: str
    ) -> JSON:
        return self._document_answer(request, reportDocumentId, "reportDocumentId")

    # ------------------------------------------------------------------ Feeds 2021-06-30

    def createFeedDocument(self, request: Request, token: AccessToken, body: Any) -> JSON:
        content_type = body.get("contentType") if isinstance(body, dict) else None
        if not isinstance(content_type, str) or not content_type:
            raise ApiError(400, "InvalidInput", "contentType is required.")
        doc = self.market.create_feed_document(content_type)
        return {
            "feedDocumentId": doc.document_id,
            "url": f"{self.public_base(request)}/_documents/{doc.document_id}",
        }

    def getFeedDocument(self, request: Request, token: AccessToken, body: Any, feedDocumentId: str) -> JSON:
        return self._document_answer(request, feedDocumentId, "feedDocumentId")

    def createFeed(self, request: Request, token: AccessToken, body: Any) -> JSON:
        marketplaces = self._marketplace_list(body)
        feed_type = body.get("feedType")
        if feed_type != "JSON_LISTINGS_FEED":
            raise ApiError(400, "InvalidInput", f"Feed type {feed_type} is not supported.")
        doc = self.market.documents.get(str(body.get("inputFeedDocumentId")))
        if doc is None or not doc.upload:
            raise ApiError(400, "InvalidInput", "Invalid inputFeedDocumentId.")
        feed = self.market.create_feed(
            token.selling_partner_id or "", feed_type, marketplaces, doc.document_id
        )
        return {"feedId": feed.feed_id}

    def getFeed(self, request: Request, token: AccessToken, body: Any, feedId: str) -> JSON:
        market = self.market
        with market.lock:
            feed = market.feeds.get(feedId)
            if feed is None or feed.seller_id != token.selling_partner_id:
                raise ApiError(404, "NotFound", f"Feed {feedId} not found.")
            status = feed.status_at(market.clock.now())
            answer: JSON = {
                "feedId": feed.feed_id,
                "feedType": feed.feed_type,
                "marketplaceIds": feed.marketplace_ids,
                "createdTime": iso(feed.created),
                "processingStatus": status,
            }
            if status != "IN_QUEUE":
                answer["processingStartTime"] = iso(feed.started)
            if status in ("DONE", "FATAL"):
                answer["processingEndTime"] = iso(feed.finished)
                if feed.result_document_id:
                    answer["resultFeedDocumentId"] = feed.result_document_id
            return answer

    # ------------------------------------------------------------------ documents (presigned URLs)

    def _download(self, request: Request, documentId: str) -> Response:
        doc = self.market.documents.get(documentId)
        if doc is None or doc.content is None:
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, content_type="application/xml")
        content_type = "application/octet-stream" if doc.compressed else doc.content_type
        return Response(doc.content, 200, content_type=content_type)

    def _upload(self, request: Request, documentId: str) -> Response:
        doc = self.market.documents.get(documentId)
        if doc is None or not doc.upload:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, content_type="application/xml")
        with self.market.lock:
            doc.content = request.get_data()
            doc.content_type = request.headers.get("Content-Type", doc.content_type)
        self.log.append(LoggedRequest("_upload", "PUT", request.path, {}, None, 200))
        return Response(b"", 200)

    # ------------------------------------------------------------------ simulator controls (demo)

    def _advance(self, request: Request, body: Any) -> JSON:
        seconds = float((body or {}).get("seconds", request.args.get("seconds", 0)))
        self.market.clock.advance(seconds)
        return self._state(request, body)

    def _competitor_move(self, request: Request, body: Any) -> JSON:
        """Load tests: one competitor on ``asin`` moves its price by ``factor`` (and notifies)."""
        body = body or {}
        offer = self.market.competitor_move(
            str(body.get("marketplace_id", US)),
            str(body.get("asin", "")),
            Decimal(str(body.get("factor", 1))),
        )
        return {"moved": offer is not None, "price": None if offer is None else str(offer.price)}

    def _state(self, request: Request, body: Any) -> JSON:
        m = self.market
        with m.lock:
            return {
                "now": m.clock.now().isoformat(),
                "sellers": list(m.sellers),
                "listings": len(m.listings),
                "sales": len(m.sales),
                "token_grants": m.stats.token_grants,
                "calls": dict(m.stats.calls),
                "throttled": dict(m.stats.throttled),
            }
