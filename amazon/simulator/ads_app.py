"""The simulator's Amazon Ads API face (werkzeug): profiles, Sponsored Products v3 entities and async
reports v3, answered from ``amazon.simulator.ads.AdsMarket``. ``SimulatorApp`` hands it every request
whose path it ``handles``.

Wire format, as python-amazon-ad-api 1.2.x sends it and Amazon documents it:

- ``Authorization: Bearer <LWA access token>`` (granted for an *Ads* refresh token), header
  ``Amazon-Advertising-API-ClientId`` (the token's LWA client id) and, except for ``/v2/profiles``,
  ``Amazon-Advertising-API-Scope`` (a profile id of the token's advertiser).
- ``/sp/*``: ``Content-Type`` must be the entity's vendor media type (``application/vnd.spKeyword.v3+json``
  ...), answered with the same Content-Type; creates, updates and deletes answer 207 with
  ``{"<collection>": {"success": [{"<id>", "index"[, "<entity>"]}], "error": [{"index", "errors"}]}}``
  (the entity itself only with ``Prefer: return=representation``).
- Errors: ``{"code": ..., "details": ...}`` (what ad_api's exceptions read); 429 carries ``Retry-After``.

The Ads **consent page** (Login with Amazon's authorisation request, ``/ap/oa``), so that authorising
Amazon Ads can be clicked through in demo mode and driven by tests:

- ``GET /ap/oa?client_id=…&scope=advertising::campaign_management&response_type=code&redirect_uri=…
  [&state=…]``: an unknown ``client_id``, or a ``redirect_uri`` missing or not among the app's Allowed
  Return URLs (``AdsMarket.return_urls``; a loopback one matches any port) get an error page and **no
  redirect**. Another ``response_type`` redirects with ``error=unsupported_response_type``, a scope
  without ``advertising::campaign_management`` with ``error=invalid_scope``. Otherwise a page asks the
  person (choosing which Amazon account they are signed in as: every seller of the market) to allow
  SellerPilot to manage their Amazon Ads campaigns.
- **Allow** (a form POST): an authorization code for that account and the app
  (``AdsMarket.issue_authorization_code``: single use, five minutes; its exchange at ``/auth/o2/token``
  yields an *Ads* refresh token), then a redirect to ``redirect_uri?code=…&scope=…&state=…``.
  **Cancel**: ``redirect_uri?error=access_denied&error_description=…&state=…``.
- The form carries only the id of a single-use pending request the GET remembered (30 minutes, wall
  clock), never the redirect URI, so a forged POST cannot choose where the code goes. Not modelled:
  Amazon's sign-in itself, LWA's check that the token exchange repeats the same ``redirect_uri``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import secrets
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .ads import (
    ADS_SCOPE,
    KINDS,
    REPORT_MAX_DAYS,
    REPORT_RETENTION_DAYS,
    REPORT_TYPES,
    AdsMarket,
    AdsReport,
    EntityError,
    Kind,
    Profile,
    ads_for,
    allowed_columns,
)
from .html_pages import html_page, redirect
from .market import AccessToken, Market

if TYPE_CHECKING:
    from .app import LoggedRequest

JSON = dict[str, Any]
PREFIXES = ("/v2/profiles", "/sp/", "/reporting/", "/_ads_reports/")
CONSENT_PATH = "/ap/oa"
#: How long the consent page's form stays good, in real seconds (a person is reading).
CONSENT_REQUEST_TTL = 30 * 60
MAX_CONSENT_REQUESTS = 1000
REPORT_MEDIA = ("application/json", "application/vnd.createasyncreportrequest.v3+json")
MAX_ITEMS = 1000
MAX_RESULTS = 5000
ID_FILTERS = ("campaignIdFilter", "adGroupIdFilter", "adIdFilter", "keywordIdFilter", "targetIdFilter")

ROUTES = Map(
    [
        Rule("/v2/profiles", endpoint="listProfiles", methods=["GET"]),
        Rule("/v2/profiles/<int:profileId>", endpoint="getProfile", methods=["GET"]),
        Rule("/sp/<kind>/list", endpoint="list", methods=["POST"]),
        Rule("/sp/<kind>/delete", endpoint="delete", methods=["POST"]),
        Rule("/sp/<kind>", endpoint="create", methods=["POST"]),
        Rule("/sp/<kind>", endpoint="update", methods=["PUT"]),
        Rule("/reporting/reports", endpoint="createAsyncReport", methods=["POST"]),
        Rule("/reporting/reports/<reportId>", endpoint="getAsyncReport", methods=["GET"]),
        Rule("/_ads_reports/<reportId>", endpoint="_downloadReport", methods=["GET"]),
    ]
)


class AdsError(Exception):
    def __init__(self, status: int, code: str, details: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(details)
        self.status, self.code, self.details, self.headers = status, code, details, headers or {}


@dataclass
class AdsConsentRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    expires: float  # time.monotonic()


class ConsentError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _with_query(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


@dataclass
class AdsLoggedRequest:
    """One Ads request as received (Authorization redacted) and the status / media type answered."""

    operation: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    content_type: str


def _dumps(body: Any) -> str:
    return json.dumps(body, default=lambda o: float(o) if isinstance(o, Decimal) else str(o))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class AdsApp:
    """Answers the Ads API paths; ``log`` keeps what clients sent (headers included)."""

    def __init__(self, market: Market, public_base: Callable[[Request], str] | None = None) -> None:
        self.market = market
        self.ads: AdsMarket = ads_for(market)
        self.log: deque[AdsLoggedRequest] = deque(maxlen=2000)
        self._public_base = public_base
        self._consents: OrderedDict[str, AdsConsentRequest] = OrderedDict()

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(PREFIXES) or path.rstrip("/") == CONSENT_PATH

    # ------------------------------------------------------------------ plumbing

    def dispatch(self, request: Request, host_log: deque[LoggedRequest] | None = None) -> Response:
        if request.path.rstrip("/") == CONSENT_PATH:
            return self.consent(request, host_log)
        operation, body, content_type = "unknown", None, "application/json"
        try:
            try:
                endpoint, matched = ROUTES.bind("simulator").match(request.path, method=request.method)
                args = dict(matched)
            except NotFound:
                raise AdsError(404, "NOT_FOUND", "Resource not found.") from None
            except MethodNotAllowed:
                raise AdsError(405, "METHOD_NOT_ALLOWED", "Method not allowed.") from None
            if endpoint == "_downloadReport":
                return self._download(args["reportId"])
            kind: Kind | None = None
            if "kind" in args:
                kind = KINDS.get(args.pop("kind"))
                if kind is None:
                    raise AdsError(404, "NOT_FOUND", "Resource not found.")
                operation = self._operation(endpoint, kind)
                content_type = kind.media
            else:
                operation = endpoint
            token = self._authenticate(request)
            profile = None if endpoint.endswith(("Profiles", "Profile")) else self._profile(request, token)
            self._admit(token, profile, operation)
            if kind is not None:
                self._media(request, (kind.media,))
            elif endpoint == "createAsyncReport":
                self._media(request, REPORT_MEDIA)
            if request.method in ("POST", "PUT") and request.get_data():
                try:
                    body = json.loads(request.get_data(), parse_float=Decimal)
                except ValueError:
                    raise AdsError(400, "BAD_REQUEST", "The request body is not valid JSON.") from None
            with self.market.lock:
                if kind is not None:
                    status, payload = getattr(self, f"_{endpoint}")(request, kind, profile, body)
                else:
                    status, payload = getattr(self, endpoint)(request, token, profile, body, **args)
            response = Response(_dumps(payload), status=status, content_type=content_type)
        except AdsError as exc:
            response = Response(
                _dumps({"code": exc.code, "details": exc.details}),
                status=exc.status,
                content_type=content_type,
            )
            response.headers.update(exc.headers)
        response.headers["x-amz-request-id"] = str(uuid.uuid4())
        headers = {
            k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in request.headers.items()
        }
        self.log.append(
            AdsLoggedRequest(
                operation, request.method, request.path, headers, body, response.status_code, content_type
            )
        )
        if host_log is not None:
            from .app import LoggedRequest

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
    def _operation(endpoint: str, kind: Kind) -> str:
        noun = kind.collection[0].upper() + kind.collection[1:]
        return f"{endpoint}SponsoredProducts{noun}"

    def _authenticate(self, request: Request) -> AccessToken:
        raw = request.headers.get("Authorization", "")
        if not raw.lower().startswith("bearer "):
            raise AdsError(401, "UNAUTHORIZED", "Missing or malformed Authorization header (Bearer token).")
        value = raw[7:].strip()
        token, detail = self.market.check_access_token(value)
        if token is None:
            raise AdsError(401, "UNAUTHORIZED", detail)
        if value not in self.ads.access_tokens or token.selling_partner_id is None:
            raise AdsError(
                401,
                "UNAUTHORIZED",
                "The access token was not granted for the Advertising API "
                "(advertising::campaign_management).",
            )
        client_id = request.headers.get("Amazon-Advertising-API-ClientId")
        if not client_id:
            raise AdsError(400, "BAD_REQUEST", "Missing header Amazon-Advertising-API-ClientId.")
        if client_id != token.client_id:
            raise AdsError(401, "UNAUTHORIZED", "Amazon-Advertising-API-ClientId does not match the token.")
        return token

    def _profile(self, request: Request, token: AccessToken) -> Profile:
        scope = request.headers.get("Amazon-Advertising-API-Scope")
        if not scope:
            raise AdsError(400, "BAD_REQUEST", "Missing header Amazon-Advertising-API-Scope.")
        profile = self.ads.profile(int(scope)) if scope.isdigit() else None
        if profile is None or profile.seller_id != token.selling_partner_id:
            raise AdsError(401, "UNAUTHORIZED", f"Not authorized to access scope {scope}.")
        return profile

    def _admit(self, token: AccessToken, profile: Profile | None, operation: str) -> None:
        self.market.stats.calls[operation] += 1
        fault = self.market.take_fault(operation)
        if fault == 429:
            raise AdsError(429, "THROTTLED", "Request was throttled.", {"Retry-After": "1"})
        if fault is not None:
            raise AdsError(fault, "INTERNAL_ERROR", "Internal error. Please try again.")
        scope: int | str = profile.profile_id if profile else token.selling_partner_id or ""
        wait = self.ads.take_token(token.client_id, scope)
        if wait > 0:
            self.market.stats.throttled[operation] += 1
            raise AdsError(429, "THROTTLED", "Request was throttled.", {"Retry-After": str(math.ceil(wait))})

    @staticmethod
    def _media(request: Request, accepted: tuple[str, ...]) -> None:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in {a.lower() for a in accepted}:
            raise AdsError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"Content-Type {content_type or '(none)'} is not supported; use {accepted[-1]}.",
            )

    # ------------------------------------------------------------------ profiles

    @staticmethod
    def _profile_json(ads: AdsMarket, profile: Profile) -> JSON:
        seller = ads.market.sellers[profile.seller_id]
        return {
            "profileId": profile.profile_id,
            "countryCode": profile.country_code,
            "currencyCode": profile.currency,
            "dailyBudget": 999999999.0,
            "timezone": profile.timezone,
            "accountInfo": {
                "marketplaceStringId": profile.marketplace_id,
                "id": profile.seller_id,
                "type": "seller",
                "name": seller.store_name,
                "validPaymentMethod": True,
            },
        }

    def listProfiles(self, request: Request, token: AccessToken, profile: None, body: Any) -> tuple[int, Any]:  # noqa: N802
        profiles = self.ads.profiles(token.selling_partner_id or "")
        return 200, [self._profile_json(self.ads, p) for p in profiles]

    def getProfile(  # noqa: N802
        self,
        request: Request,
        token: AccessToken,
        profile: None,
        body: Any,
        profileId: int,  # noqa: N803
    ) -> tuple[int, Any]:
        for p in self.ads.profiles(token.selling_partner_id or ""):
            if p.profile_id == profileId:
                return 200, self._profile_json(self.ads, p)
        raise AdsError(404, "NOT_FOUND", f"Profile {profileId} not found.")

    # ------------------------------------------------------------------ Sponsored Products v3

    @staticmethod
    def _entity_json(kind: Kind, entity: JSON, extended: bool = False) -> JSON:
        out = {k: v for k, v in entity.items() if not k.startswith("_")}
        if extended:
            out["extendedData"] = {
                "creationDateTime": _iso(entity["_created"]),
                "lastUpdateDateTime": _iso(entity["_updated"]),
                "servingStatus": {
                    "ENABLED": f"{kind.name.upper()}_STATUS_ENABLED",
                    "PAUSED": f"{kind.name.upper()}_PAUSED",
                    "ARCHIVED": f"{kind.name.upper()}_ARCHIVED",
                }[entity["state"]],
            }
        return out

    @staticmethod
    def _filter_values(body: JSON, name: str) -> list[str] | None:
        value = body.get(name)
        if value is None:
            return None
        include = value.get("include") if isinstance(value, dict) else value
        if not isinstance(include, list):
            raise AdsError(400, "BAD_REQUEST", f"{name} must be {{'include': [...]}}.")
        return [str(v) for v in include]

    @staticmethod
    def _text_match(filter_: Any, text: str) -> bool:
        if not isinstance(filter_, dict):
            raise AdsError(400, "BAD_REQUEST", "A text filter is {queryTermMatchType, include}.")
        wanted = [str(v).lower() for v in filter_.get("include", [])]
        if filter_.get("queryTermMatchType", "EXACT_MATCH") == "BROAD_MATCH":
            return any(all(word in text.lower() for word in w.split()) for w in wanted)
        return text.lower() in wanted

    def _list(self, request: Request, kind: Kind, profile: Profile, body: Any) -> tuple[int, JSON]:
        body = body if isinstance(body, dict) else {}
        try:
            size = int(body.get("maxResults") or MAX_RESULTS)
        except (TypeError, ValueError):
            size = 0
        if not 1 <= size <= MAX_RESULTS:
            raise AdsError(400, "BAD_REQUEST", f"maxResults is between 1 and {MAX_RESULTS}.")
        criteria = {k: v for k, v in body.items() if k not in ("maxResults", "nextToken")}
        fingerprint = hashlib.sha256(_dumps(sorted(criteria.items())).encode()).hexdigest()[:16]
        offset = 0
        if body.get("nextToken"):
            try:
                decoded = json.loads(base64.urlsafe_b64decode(str(body["nextToken"]).encode()))
                offset, mark = int(decoded["o"]), decoded["f"]
            except (ValueError, KeyError, TypeError):
                raise AdsError(400, "BAD_REQUEST", "Invalid nextToken.") from None
            if mark != fingerprint:
                raise AdsError(400, "BAD_REQUEST", "nextToken does not belong to these filters.")
        states = self._filter_values(body, "stateFilter")
        ids = {name: self._filter_values(body, name) for name in ID_FILTERS}
        match_types = body.get("matchTypeFilter")
        rows = []
        for entity in sorted(self.ads.entities[kind.path].values(), key=lambda e: int(e[kind.id_field])):
            if entity["_profile"] != profile.profile_id:
                continue
            if states is not None and entity["state"] not in [s.upper() for s in states]:
                continue
            if any(
                values is not None and entity.get(name.removesuffix("Filter")) not in values
                for name, values in ids.items()
            ):
                continue
            if "nameFilter" in body and not self._text_match(body["nameFilter"], entity.get("name", "")):
                continue
            if "keywordTextFilter" in body and not self._text_match(
                body["keywordTextFilter"], entity.get("keywordText", "")
            ):
                continue
            if isinstance(match_types, list) and entity.get("matchType") not in match_types:
                continue
            rows.append(entity)
        page = rows[offset : offset + size]
        extended = bool(body.get("includeExtendedDataFields"))
        answer: JSON = {
            kind.collection: [self._entity_json(kind, e, extended) for e in page],
            "totalResults": len(rows),
        }
        if offset + size < len(rows):
            answer["nextToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + size, "f": fingerprint}).encode()
            ).decode()
        return 200, answer

    def _multi(
        self, request: Request, kind: Kind, items: list[Any], apply: Callable[[Any], JSON]
    ) -> tuple[int, JSON]:
        if len(items) > MAX_ITEMS:
            raise AdsError(400, "BAD_REQUEST", f"At most {MAX_ITEMS} items per request.")
        represent = "return=representation" in (request.headers.get("Prefer") or "")
        success, error = [], []
        for index, item in enumerate(items):
            try:
                entity = apply(item)
            except EntityError as exc:
                error.append({"index": index, "errors": [exc.body()]})
                continue
            entry: JSON = {kind.id_field: entity[kind.id_field], "index": index}
            if represent:
                entry[kind.name] = self._entity_json(kind, entity)
            success.append(entry)
        return 207, {kind.collection: {"success": success, "error": error}}

    def _items(self, kind: Kind, body: Any) -> list[Any]:
        items = body.get(kind.collection) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise AdsError(400, "BAD_REQUEST", f"The body is {{'{kind.collection}': [...]}}.")
        return items

    def _create(self, request: Request, kind: Kind, profile: Profile, body: Any) -> tuple[int, JSON]:
        return self._multi(
            request, kind, self._items(kind, body), lambda i: self.ads.create(kind, profile, i)
        )

    def _update(self, request: Request, kind: Kind, profile: Profile, body: Any) -> tuple[int, JSON]:
        return self._multi(
            request, kind, self._items(kind, body), lambda i: self.ads.update(kind, profile, i)
        )

    def _delete(self, request: Request, kind: Kind, profile: Profile, body: Any) -> tuple[int, JSON]:
        name = kind.id_field + "Filter"
        ids = self._filter_values(body if isinstance(body, dict) else {}, name)
        if ids is None:
            raise AdsError(400, "BAD_REQUEST", f"The body is {{'{name}': {{'include': [...]}}}}.")
        return self._multi(request, kind, ids, lambda i: self.ads.archive(kind, profile, str(i)))

    # ------------------------------------------------------------------ reports v3

    def _report_json(self, request: Request, report: AdsReport) -> JSON:
        now = self.market.clock.now()
        status = report.status_at(now)
        done = status == "COMPLETED"
        base = self._public_base(request) if self._public_base else request.host_url.rstrip("/")
        return {
            "reportId": report.report_id,
            "name": report.name,
            "status": status,
            "configuration": report.configuration,
            "createdAt": _iso(report.created),
            "updatedAt": _iso(min(now, report.finished) if status != "PENDING" else report.created),
            "startDate": report.start_date.isoformat(),
            "endDate": report.end_date.isoformat(),
            "url": f"{base}/_ads_reports/{report.report_id}" if done else None,
            "urlExpiresAt": _iso(report.finished + timedelta(hours=1)) if done else None,
            "fileSize": len(report.content or b"") if done else None,
            "failureReason": report.failure,
            "generatedAt": _iso(report.finished) if done else None,
        }

    def createAsyncReport(  # noqa: N802
        self, request: Request, token: AccessToken, profile: Profile, body: Any
    ) -> tuple[int, JSON]:
        if not isinstance(body, dict) or not isinstance(body.get("configuration"), dict):
            raise AdsError(400, "BAD_REQUEST", "The body needs startDate, endDate and configuration.")
        config = body["configuration"]
        if config.get("adProduct") != "SPONSORED_PRODUCTS":
            raise AdsError(400, "BAD_REQUEST", "configuration.adProduct must be SPONSORED_PRODUCTS.")
        report_type = config.get("reportTypeId")
        if report_type not in REPORT_TYPES:
            raise AdsError(
                400,
                "BAD_REQUEST",
                f"reportTypeId {report_type} is not supported; use one of {list(REPORT_TYPES)}.",
            )
        group_by = config.get("groupBy")
        allowed_groups = REPORT_TYPES[report_type]["groupBy"]
        if not isinstance(group_by, list) or not group_by or any(g not in allowed_groups for g in group_by):
            raise AdsError(
                400, "BAD_REQUEST", f"groupBy for {report_type} is a list of {list(allowed_groups)}."
            )
        time_unit = config.get("timeUnit")
        if time_unit not in ("DAILY", "SUMMARY"):
            raise AdsError(400, "BAD_REQUEST", "timeUnit is DAILY or SUMMARY.")
        columns = config.get("columns")
        allowed = allowed_columns(report_type) - (
            {"startDate", "endDate"} if time_unit == "DAILY" else {"date"}
        )
        if not isinstance(columns, list) or not columns or any(c not in allowed for c in columns):
            bad = [c for c in columns or [] if c not in allowed] if isinstance(columns, list) else columns
            raise AdsError(400, "BAD_REQUEST", f"Invalid columns for {report_type}/{time_unit}: {bad}.")
        if config.get("format", "GZIP_JSON") != "GZIP_JSON":
            raise AdsError(400, "BAD_REQUEST", "format must be GZIP_JSON.")
        try:
            start, end = date.fromisoformat(body["startDate"]), date.fromisoformat(body["endDate"])
        except (KeyError, TypeError, ValueError):
            raise AdsError(400, "BAD_REQUEST", "startDate and endDate are YYYY-MM-DD.") from None
        today = self.ads.day(profile, self.market.clock.now())
        if start > end or (end - start).days >= REPORT_MAX_DAYS:
            raise AdsError(400, "BAD_REQUEST", f"startDate..endDate spans 1 to {REPORT_MAX_DAYS} days.")
        if start < today - timedelta(days=REPORT_RETENTION_DAYS) or end > today:
            raise AdsError(400, "BAD_REQUEST", f"Dates are within the last {REPORT_RETENTION_DAYS} days.")
        now = self.market.clock.now()
        for other in self.ads.reports.values():
            if (
                other.profile_id == profile.profile_id
                and other.status_at(now) in ("PENDING", "PROCESSING")
                and (other.start_date, other.end_date, other.configuration) == (start, end, config)
            ):
                raise AdsError(425, "425", f"The Request is a duplicate of : {other.report_id}")
        name = str(body.get("name") or f"{report_type} {start}..{end}")
        report = self.ads.create_report(profile, name, start, end, config)
        return 200, self._report_json(request, report)

    def getAsyncReport(  # noqa: N802
        self,
        request: Request,
        token: AccessToken,
        profile: Profile,
        body: Any,
        reportId: str,  # noqa: N803
    ) -> tuple[int, JSON]:
        report = self.ads.reports.get(reportId)
        if report is None or report.profile_id != profile.profile_id:
            raise AdsError(404, "NOT_FOUND", f"Report {reportId} not found.")
        return 200, self._report_json(request, report)

    def _download(self, report_id: str) -> Response:
        report = self.ads.reports.get(report_id)
        if report is None or report.content is None:
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, content_type="application/xml")
        return Response(report.content, 200, content_type="application/x-gzip")

    # ------------------------------------------------------------------ the consent page (/ap/oa)

    def consent(self, request: Request, host_log: deque[LoggedRequest] | None = None) -> Response:
        try:
            if request.method == "GET":
                response = self._consent_show(request)
            elif request.method == "POST":
                response = self._consent_answer(request)
            else:
                raise ConsentError(405, "Method not allowed", "Open this page from the application.")
        except ConsentError as error:
            body = f"<h1>{html.escape(error.title)}</h1><p>{html.escape(error.message)}</p>"
            response = self._consent_page(error.title, body, error.status)
        if host_log is not None:
            from .app import LoggedRequest

            query = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "state"}
            form = {k: v for k, v in request.form.items() if k in ("account", "action")}
            host_log.append(
                LoggedRequest(
                    "adsConsent", request.method, request.path, query, form or None, response.status_code
                )
            )
        return response

    def _consent_show(self, request: Request) -> Response:
        client_id = request.args.get("client_id", "")
        if client_id not in self.market.apps:
            raise ConsentError(400, "An error occurred", "Unknown client_id: this application is not known.")
        redirect_uri = request.args.get("redirect_uri", "")
        if not redirect_uri or not self.ads.return_url_allowed(client_id, redirect_uri):
            raise ConsentError(
                400,
                "An error occurred",
                "The redirect_uri is missing or is not an Allowed Return URL of this application.",
            )
        state = request.args.get("state")
        if request.args.get("response_type") != "code":
            return self._redirect(
                _with_query(redirect_uri, {"error": "unsupported_response_type", "state": state})
            )
        scope = request.args.get("scope", "")
        if ADS_SCOPE not in scope.split():
            return self._redirect(
                _with_query(
                    redirect_uri,
                    {
                        "error": "invalid_scope",
                        "error_description": f"The scope must include {ADS_SCOPE}.",
                        "state": state,
                    },
                )
            )
        consent_id = secrets.token_urlsafe(16)
        with self.market.lock:
            now = time.monotonic()
            for key in [k for k, v in self._consents.items() if v.expires <= now]:
                del self._consents[key]
            while len(self._consents) >= MAX_CONSENT_REQUESTS:
                self._consents.popitem(last=False)
            self._consents[consent_id] = AdsConsentRequest(
                client_id, redirect_uri, ADS_SCOPE, state, now + CONSENT_REQUEST_TTL
            )
            sellers = list(self.market.sellers.values())
        choices = "".join(
            f'<label class="account"><input type="radio" name="account" '
            f'value="{html.escape(seller.selling_partner_id)}"{" checked" if index == 0 else ""}> '
            f"<strong>{html.escape(seller.store_name)}</strong> "
            f"<code>{html.escape(seller.selling_partner_id)}</code></label>"
            for index, seller in enumerate(sellers)
        )
        if not sellers:
            choices = "<p>There is no Amazon account in this simulated marketplace.</p>"
        disabled = "" if sellers else " disabled"
        body = f"""
<p class=muted>Login with Amazon (simulator)</p>
<h1>Allow access to Amazon Ads</h1>
<p>The application <code>{html.escape(client_id)}</code> would like to <strong>manage your Amazon Ads
campaigns</strong> ({ADS_SCOPE}): read your advertising profiles, campaigns, keywords and reports, and
change bids, budgets and states. You can remove this access at any time in your Amazon account.</p>
<form method="post" action="{CONSENT_PATH}">
  <input type="hidden" name="consent_request" value="{consent_id}">
  <fieldset><legend>Signed in as</legend>{choices}</fieldset>
  <p><button type="submit" name="action" value="allow"{disabled}>Allow</button>
     <button type="submit" name="action" value="cancel" class=secondary>Cancel</button></p>
</form>"""
        return self._consent_page("Allow access to Amazon Ads", body, 200)

    def _consent_answer(self, request: Request) -> Response:
        with self.market.lock:
            pending = self._consents.pop(request.form.get("consent_request", ""), None)
        if pending is None or pending.expires <= time.monotonic():
            raise ConsentError(
                400, "This page has expired", "Go back to the application and start the authorization again."
            )
        if request.form.get("action") == "cancel":
            return self._redirect(
                _with_query(
                    pending.redirect_uri,
                    {
                        "error": "access_denied",
                        "error_description": "The user denied access to Amazon Ads.",
                        "state": pending.state,
                    },
                )
            )
        if request.form.get("action") != "allow":
            raise ConsentError(400, "Unknown answer", "Choose Allow or Cancel.")
        try:
            code = self.ads.issue_authorization_code(request.form.get("account", ""), pending.client_id)
        except KeyError:
            raise ConsentError(400, "Unknown account", "Choose one of the accounts listed.") from None
        return self._redirect(
            _with_query(pending.redirect_uri, {"code": code, "scope": pending.scope, "state": pending.state})
        )

    _redirect = staticmethod(redirect)
    _consent_page = staticmethod(html_page)
