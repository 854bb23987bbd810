"""The one way to call the Amazon Ads API: `ads_api_client(api_class, connection, profile_id)`.

It builds a python-amazon-ad-api client (`CampaignsV3`, `KeywordsV3`, `TargetsV3`, `Reports`,
`Profiles`, ...) as production runs it, with our parts:

- the access token comes from our shared, encrypted Redis cache (amazon/ads_tokens.py) through an
  `AccessTokenClient` subclass placed in `client._auth` (ad_api has no token-client argument); ad_api
  never holds the seller's secrets (placeholders fill its credentials dict);
- `client.credentials` is set again after construction, because ad_api silently prefers the
  `AD_API_CLIENT_ID` / `AD_API_CLIENT_SECRET` / `AD_API_REFRESH_TOKEN` environment variables;
- the endpoint is settings.ADS_API_ENDPOINT when set, else the simulator outside production
  (settings.SIMULATOR_URL), else Amazon's regional Ads endpoint (advertising-api[-eu|-fe].amazon.com);
- every call passes the shared Redis token bucket of (connection, Ads operation) first
  (amazon/ratelimit.py; operations are named `ads.<Amazon operationId>`, e.g.
  `ads.listSponsoredProductsCampaigns`, seeded per family since Amazon publishes no Ads limits);
- a 401 drops the cached Ads token and retries once with a fresh one; a 429 holds the bucket until its
  `Retry-After`, halves the operation's rate for a while and is retried; a 5xx or a network failure only
  for reads (`GET`, `.../list`) or when the request surely never left (connection refused): a create or
  update may have been applied, and nothing reaches Amazon twice. Retries follow the SP-API policy
  (`RetryPolicy`: full jitter, SP_API_RETRY_BUDGET_SECONDS / SP_API_MAX_ATTEMPTS).
- failures surface as the SP-API client's typed errors (amazon/clients.py): `AmazonThrottled`,
  `AmazonUnavailable`, `AmazonAuthError`, `AmazonRequestError` (all `AmazonApiError`, with `operation`,
  `status` and Amazon's `code`); token problems stay `TokenError`s (`AdsReauthorizationRequired`,
  `AdsNotAuthorized`, `ConnectionUnavailable`) as with SP-API. ad_api's own exceptions never escape.

Report downloads (`Reports.download_report`) fetch a pre-signed URL outside the Ads API, not through
`_request`, so they pass neither the limiter nor these retries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from ad_api.base import Client, Marketplaces
from ad_api.base.exceptions import AdvertisingApiException
from django.conf import settings

from amazon import ratelimit
from amazon.ads_tokens import (
    AD_API_PLACEHOLDER_SECRET,
    ads_access_token_client,
    ads_lwa_credentials,
    invalidate_ads_access_token,
)
from amazon.clients import (
    AmazonApiError,
    AmazonAuthError,
    AmazonRequestError,
    AmazonThrottled,
    AmazonUnavailable,
    RetryPolicy,
)
from amazon.models import SellerConnection
from amazon.tokens import LwaCall

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=Client)

#: Our regions -> ad_api's marketplaces (which carry the regional Ads endpoints).
ADS_MARKETPLACES = {"NA": Marketplaces.NA, "EU": Marketplaces.EU, "FE": Marketplaces.JP}
#: When a 429 carries no usable Retry-After.
DEFAULT_RETRY_AFTER_SECONDS = 1.0

_SP_ENTITY = re.compile(r"^/sp/([a-zA-Z]+)(/list|/delete)?$")
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-fA-F-]{32,36}|amzn1\..+|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]{15,})$")
_NAMED = {
    ("GET", "/v2/profiles"): "listProfiles",
    ("PUT", "/v2/profiles"): "updateProfiles",
    ("GET", "/v2/profiles/{id}"): "getProfile",
    ("POST", "/reporting/reports"): "createAsyncReport",
    ("GET", "/reporting/reports/{id}"): "getAsyncReport",
    ("DELETE", "/reporting/reports/{id}"): "deleteAsyncReport",
}


def ads_endpoint(region: str) -> str:
    configured = settings.ADS_API_ENDPOINT
    return str(configured or ADS_MARKETPLACES[region].endpoint).rstrip("/")


def ads_operation(method: str, path: str) -> str:
    """The limiter's name of an Ads call: `ads.` + Amazon's operationId where we know it
    (`POST /sp/keywords/list` -> `ads.listSponsoredProductsKeywords`), else `ads.<method>:<path>` with ids
    replaced by `{id}` (`ads.get:/v2/sp/keywords/{id}`), so one operation is one bucket whatever its ids."""
    method = method.upper()
    template = "/".join(
        "{id}" if _ID_SEGMENT.match(part) else part for part in path.split("?", 1)[0].rstrip("/").split("/")
    )
    named = _NAMED.get((method, template))
    if named:
        return ratelimit.ADS_PREFIX + named
    entity = _SP_ENTITY.match(template)
    if entity:
        noun = entity.group(1)[0].upper() + entity.group(1)[1:]
        if noun.endswith("Targets"):  # Amazon calls /sp/targets entities targeting clauses
            noun = noun.removesuffix("Targets") + "TargetingClauses"
        verb = {"/list": "list", "/delete": "delete"}.get(entity.group(2) or "")
        verb = verb or {"POST": "create", "PUT": "update"}.get(method)
        if verb:
            return f"{ratelimit.ADS_PREFIX}{verb}SponsoredProducts{noun}"
    return f"{ratelimit.ADS_PREFIX}{method.lower()}:{template}"


def is_ads_read(method: str, path: str) -> bool:
    """Reads are safe to repeat after a 5xx or a timeout; writes are not (they may have been applied)."""
    return method.upper() == "GET" or path.rstrip("/").endswith("/list")


def ads_api_client(
    api_class: type[C],
    connection: SellerConnection,
    profile_id: int | str | None,
    *,
    policy: RetryPolicy | None = None,
    lwa_call: LwaCall | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    access_token: str | None = None,
) -> C:
    """An ad_api client of `api_class` for `connection`, scoped to the Ads profile `profile_id`
    (`Amazon-Advertising-API-Scope`; None for the profiles list itself). Its calls raise
    `AmazonApiError` subclasses (see the module docstring), never ad_api's exceptions.

    `access_token` fixes the token (verifying a grant that is not stored yet: the shared cache holds the
    stored grant's); a 401 is then final instead of renewing the cached token."""
    client_id, _ = ads_lwa_credentials(connection)
    credentials = {
        "client_id": client_id,
        "client_secret": AD_API_PLACEHOLDER_SECRET,
        "refresh_token": AD_API_PLACEHOLDER_SECRET,
    }
    if profile_id is not None:
        credentials["profile_id"] = str(profile_id)
    client = api_class(
        credentials=credentials,
        marketplace=ADS_MARKETPLACES[connection.region],
        timeout=int(settings.SP_API_HTTP_TIMEOUT_SECONDS),
        verify_additional_credentials=profile_id is not None,
    )
    client.credentials = credentials
    client._auth = ads_access_token_client(connection, lwa_call=lwa_call)
    client._access_token = access_token  # ad_api's own switch: `auth` answers it instead of `_auth`
    client.endpoint = ads_endpoint(connection.region)
    _guard(client, connection, policy or RetryPolicy.from_settings(), sleep, renew=access_token is None)
    return client


def _retry_after(error: AdvertisingApiException) -> float:
    headers = error.headers or {}
    try:
        value = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_RETRY_AFTER_SECONDS
    return value if 0 <= value <= 3600 else DEFAULT_RETRY_AFTER_SECONDS


def _failure(operation: str, error: AdvertisingApiException) -> AmazonApiError:
    status = int(error.code or 0) if str(error.code or "0").isdigit() else 0
    code = str(getattr(error, "amzn_code", "") or "")
    details = getattr(error, "message", "") or ""
    text = f"{operation}: {status} {code} {details}"[:500]
    if status == 429:
        return AmazonThrottled(text, operation=operation, status=status, code=code or "THROTTLED")
    if status >= 500:
        return AmazonUnavailable(text, operation=operation, status=status, code=code)
    if status in (401, 403):
        return AmazonAuthError(text, operation=operation, status=status, code=code)
    return AmazonRequestError(text, operation=operation, status=status, code=code)


def _never_sent(error: requests.RequestException) -> bool:
    """A connect timeout or a refused connection: the request cannot have reached Amazon."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectionError) and "NewConnectionError" in type(reason).__name__


def _guard(
    client: Client,
    connection: SellerConnection,
    policy: RetryPolicy,
    sleep: Callable[[float], Any],
    *,
    renew: bool = True,
) -> None:
    """Wrap the client's `_request` (every API method goes through it) with the limiter, token renewal,
    retries and typed errors."""
    request = client._request

    def guarded(
        path: str, data: str | None = None, params: dict[str, Any] | None = None, headers: Any = None
    ) -> Any:
        method = str((params or {}).get("method", "GET")).upper()
        operation = ads_operation(method, path)
        read = is_ads_read(method, path)
        deadline = time.monotonic() + policy.budget_seconds
        renewed = not renew
        attempt = 0
        while True:
            attempt += 1
            try:
                ratelimit.acquire(connection, operation, timeout=max(deadline - time.monotonic(), 0))
            except ratelimit.Throttled as throttled:
                raise AmazonThrottled(str(throttled), operation=operation, status=429) from None
            retry_after: float | None = None
            never_sent = False
            failure: AmazonApiError
            try:
                # ad_api pops "method" from params: hand it a copy each time
                return request(path, data=data, params=dict(params or {}), headers=headers)
            except AdvertisingApiException as error:
                failure = _failure(operation, error)
                if failure.status == 429:
                    retry_after = _retry_after(error)
            except requests.RequestException as error:
                failure = AmazonUnavailable(f"{operation}: {type(error).__name__}", operation=operation)
                never_sent = _never_sent(error)

            if isinstance(failure, AmazonAuthError) and failure.status == 401 and not renewed:
                renewed = True
                invalidate_ads_access_token(connection)
                continue
            if not isinstance(failure, AmazonThrottled | AmazonUnavailable):
                raise failure
            # A 429 or a refused connection never reached Amazon; anything else may have been applied.
            if failure.status != 429 and not read and not never_sent:
                raise failure
            if retry_after is not None:
                # Our bucket waits until Amazon's Retry-After (the next acquire sleeps until then).
                ratelimit.record_throttle(connection, operation, retry_after=retry_after)
                delay = policy.backoff(attempt) / 4  # spread the waiters a little, the bucket paces them
            else:
                delay = policy.backoff(attempt)
            soonest = time.monotonic() + delay + (retry_after or 0)
            if attempt >= policy.max_attempts or soonest > deadline:
                raise failure
            logger.info("%s: %s, retry %d in %.2fs", operation, failure.status or "network", attempt, delay)
            sleep(delay)

    client._request = guarded
