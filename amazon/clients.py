"""The one way to call SP-API: `sp_api_client(api_class, connection, marketplace)`.

It builds the python-amazon-sp-api client as production runs it, with three things of ours:

- the access token comes from our shared, encrypted Redis cache (amazon/tokens.py), never from
  sp_api's per-process cache, and sp_api never holds the seller's LWA secrets;
- the endpoint is settings.SP_API_ENDPOINT when set (the simulator in development, tests and demo
  mode), else Amazon's regional endpoint for the marketplace;
- every call passes the shared token bucket for (connection, operation) first (amazon/ratelimit.py),
  adopts `x-amzn-RateLimit-Limit`, and is retried with full-jitter exponential backoff on 429, 5xx
  and network timeouts while the retry budget lasts; a write (create/patch/put/delete...) only when it
  cannot have arrived (429, connection refused), so nothing reaches Amazon twice. A 401/403 drops
  the cached access token and is retried once with a fresh one. Everything else becomes a typed
  `AmazonApiError`.

sp_api raises only when the body carries `errors` (a bare 429 would come back as an empty success),
so we look at the HTTP status ourselves by wrapping the client's transport.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from django.conf import settings
from sp_api.base import ApiResponse, Client, Marketplaces
from sp_api.base.exceptions import SellingApiException

from amazon import ratelimit, tokens
from amazon.models import SellerConnection

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=Client)

#: sp_api method names whose operation id is not their camelCase form.
OPERATION_NAMES = {"get_marketplace_participation": "getMarketplaceParticipations"}
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: sp_api names the SP-API regions by their AWS region.
AWS_REGIONS = {"us-east-1": "NA", "eu-west-1": "EU", "us-west-2": "FE"}


class AmazonApiError(Exception):
    """An SP-API call failed for good. `status`/`code` as Amazon answered (0/"" for network errors)."""

    def __init__(self, message: str, *, operation: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.code = code


class AmazonThrottled(AmazonApiError):
    """Still throttled (by Amazon or our own bucket) when the retry budget ran out."""


class AmazonUnavailable(AmazonApiError):
    """5xx or network failures until the retry budget ran out."""


class AmazonAuthError(AmazonApiError):
    """Amazon refused the access token even after a fresh one (permissions, role, revoked app)."""


class AmazonRequestError(AmazonApiError):
    """Amazon refused the request itself (400 invalid input, 404 not found, 409...): not retried."""


@dataclass(frozen=True)
class RetryPolicy:
    budget_seconds: float
    max_attempts: int
    base_delay: float = 0.5
    max_delay: float = 20.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            budget_seconds=float(getattr(settings, "SP_API_RETRY_BUDGET_SECONDS", 60)),
            max_attempts=int(getattr(settings, "SP_API_MAX_ATTEMPTS", 6)),
            base_delay=float(getattr(settings, "SP_API_RETRY_BASE_DELAY_SECONDS", 0.5)),
        )

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


WRITE_PREFIXES = ("create", "patch", "put", "delete", "update", "submit", "cancel", "confirm", "post")


def is_write(operation: str) -> bool:
    """Operations that change something at Amazon (retried only when they surely did not arrive)."""
    return operation.startswith(WRITE_PREFIXES)


def operation_name(method_name: str) -> str:
    known = OPERATION_NAMES.get(method_name)
    if known:
        return known
    head, *rest = method_name.split("_")
    return head + "".join(part.title() for part in rest)


def marketplace_for(marketplace_id: str) -> Marketplaces:
    for member in Marketplaces:
        if member.marketplace_id == marketplace_id:
            return member
    raise ValueError(f"unknown marketplace id {marketplace_id!r}")


class _LastResponse:
    """Status and headers of the client's most recent HTTP response (sp_api hides them)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: httpx.Headers | dict[str, str] = {}


def _error_code(error: SellingApiException) -> str:
    errors = error.error if isinstance(error.error, list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("code", ""))


class SpApiClient:
    """Proxy around an sp_api client: `client.get_item_offers(...)` runs through limiter and retries."""

    def __init__(self, api: Client, connection: SellerConnection, last: _LastResponse, policy: RetryPolicy):
        self.api = api
        self.connection = connection
        self._last = last
        self._policy = policy

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.api, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> ApiResponse:
            return self.call(operation_name(name), lambda: getattr(self.api, name)(*args, **kwargs))

        return call

    def call(self, operation: str, send: Callable[[], ApiResponse]) -> ApiResponse:
        policy = self._policy
        deadline = time.monotonic() + policy.budget_seconds
        refreshed_token = False
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                ratelimit.acquire(self.connection, operation, timeout=max(remaining, 0))
            except ratelimit.Throttled as throttled:
                raise AmazonThrottled(str(throttled), operation=operation, status=429) from None
            self._last.status, self._last.headers = 0, {}
            failure: AmazonApiError
            never_sent = False
            try:
                response = send()
            except SellingApiException as error:
                status, code = self._last.status or 0, _error_code(error)
                failure = self._failure(operation, status, code, str(error))
            except (httpx.TimeoutException, httpx.TransportError) as error:
                failure = AmazonUnavailable(
                    f"{operation}: {type(error).__name__}", operation=operation, status=0
                )
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                status = self._last.status
                ratelimit.observe_rate_limit(
                    self.connection, operation, self._last.headers.get("x-amzn-RateLimit-Limit")
                )
                if status not in RETRYABLE_STATUSES and status < 400:
                    return response
                failure = self._failure(operation, status, "", f"{operation}: HTTP {status}")

            if isinstance(failure, AmazonAuthError) and not refreshed_token:
                tokens.invalidate_access_token(self.connection)
                refreshed_token = True
                continue
            if not isinstance(failure, AmazonThrottled | AmazonUnavailable):
                raise failure
            # A write that may have reached Amazon (5xx, a timeout after sending) is not sent twice: the
            # caller decides after checking. A 429 or a refused connection never reached it.
            if is_write(operation) and failure.status != 429 and not never_sent:
                raise failure
            if failure.status == 429:
                ratelimit.record_throttle(self.connection, operation)
            delay = policy.backoff(attempt)
            if attempt >= policy.max_attempts or time.monotonic() + delay > deadline:
                raise failure
            logger.info("%s: %s, retry %d in %.2fs", operation, failure.status or "network", attempt, delay)
            time.sleep(delay)

    @staticmethod
    def _failure(operation: str, status: int, code: str, message: str) -> AmazonApiError:
        text = f"{operation}: {status} {code} {message}"[:500]
        if status == 429:
            return AmazonThrottled(text, operation=operation, status=status, code=code or "QuotaExceeded")
        if status in RETRYABLE_STATUSES:
            return AmazonUnavailable(text, operation=operation, status=status, code=code)
        if status in (401, 403):
            return AmazonAuthError(text, operation=operation, status=status, code=code)
        return AmazonRequestError(text, operation=operation, status=status, code=code)


def sp_api_client(
    api_class: type[C],
    connection: SellerConnection,
    marketplace: str | Marketplaces,
    *,
    policy: RetryPolicy | None = None,
    lwa_call: tokens.LwaCall | None = None,
    **kwargs: Any,
) -> SpApiClient:
    """An SP-API client of `api_class` (e.g. `sp_api.api.Products`) for `connection` in `marketplace`
    (a marketplace id such as "ATVPDKIKX0DER", or an sp_api `Marketplaces` member)."""
    member = marketplace if isinstance(marketplace, Marketplaces) else marketplace_for(marketplace)
    if AWS_REGIONS.get(member.region) != connection.region:
        raise ValueError(f"marketplace {member.name} is not in the connection's region {connection.region}")
    api = api_class(
        marketplace=member,
        credentials=tokens.SP_API_PLACEHOLDER_CREDENTIALS,
        auth_token_client_class=tokens.access_token_client_class(connection, lwa_call=lwa_call),
        timeout=kwargs.pop("timeout", getattr(settings, "SP_API_HTTP_TIMEOUT_SECONDS", 30)),
        **kwargs,
    )
    endpoint = getattr(settings, "SP_API_ENDPOINT", "")
    if endpoint:
        api.endpoint = endpoint.rstrip("/")
    last = _LastResponse()
    transport = api._transport
    original = transport.request

    def request(*args: Any, **kw: Any) -> Any:
        response = original(*args, **kw)
        last.status, last.headers = response.status_code, response.headers
        return response

    transport.request = request
    return SpApiClient(api, connection, last, policy or RetryPolicy.from_settings())
