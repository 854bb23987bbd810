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
- a 401 drops the cached Ads token and retries once with a fresh one; a 429 is retried after its
  `Retry-After` (jittered, within SP_API_RETRY_BUDGET_SECONDS / SP_API_MAX_ATTEMPTS); a 5xx only for
  reads (`GET`, `.../list`), since a create or update may have been applied.

Not yet here (see docs/amazon.md): the shared Redis token bucket per (connection, operation) that
SP-API calls pass (amazon/ratelimit.py has no Ads usage plans; Amazon publishes none per operation).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, TypeVar

from ad_api.base import Client, Marketplaces
from ad_api.base.exceptions import AdvertisingApiException
from django.conf import settings

from amazon.ads_tokens import (
    AD_API_PLACEHOLDER_SECRET,
    ads_access_token_client,
    ads_lwa_credentials,
    invalidate_ads_access_token,
)
from amazon.models import SellerConnection
from amazon.tokens import LwaCall

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=Client)

#: Our regions -> ad_api's marketplaces (which carry the regional Ads endpoints).
ADS_MARKETPLACES = {"NA": Marketplaces.NA, "EU": Marketplaces.EU, "FE": Marketplaces.JP}


def ads_endpoint(region: str) -> str:
    configured = settings.ADS_API_ENDPOINT
    return str(configured or ADS_MARKETPLACES[region].endpoint).rstrip("/")


def ads_api_client(
    api_class: type[C],
    connection: SellerConnection,
    profile_id: int | str | None,
    *,
    lwa_call: LwaCall | None = None,
    sleep: Any = time.sleep,
) -> C:
    """An ad_api client of `api_class` for `connection`, scoped to the Ads profile `profile_id`
    (`Amazon-Advertising-API-Scope`; None for the profiles list itself)."""
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
    client.endpoint = ads_endpoint(connection.region)
    _guard(client, connection, sleep)
    return client


def _retryable_server_error(path: str, method: str) -> bool:
    return method == "GET" or path.endswith("/list")


def _guard(client: Client, connection: SellerConnection, sleep: Any) -> None:
    """Wrap the client's `_request` (every API method goes through it) with token renewal and retries."""
    request = client._request
    budget = float(settings.SP_API_RETRY_BUDGET_SECONDS)
    attempts = int(settings.SP_API_MAX_ATTEMPTS)

    def guarded(
        path: str, data: str | None = None, params: dict[str, Any] | None = None, headers: Any = None
    ) -> Any:
        deadline = time.monotonic() + budget
        renewed = False
        for attempt in range(1, attempts + 1):
            try:
                # ad_api pops "method" from params: hand it a copy each time
                return request(path, data=data, params=dict(params or {}), headers=headers)
            except AdvertisingApiException as error:
                status = int(error.code or 0)
                method = str((params or {}).get("method", "GET"))
                if status == 401 and not renewed:
                    renewed = True
                    invalidate_ads_access_token(connection)
                    continue
                retry = status == 429 or (status >= 500 and _retryable_server_error(path, method))
                if not retry or attempt == attempts:
                    raise
                headers_seen = error.headers or {}
                try:
                    wait = float(headers_seen.get("Retry-After", 0))
                except (TypeError, ValueError):
                    wait = 0.0
                wait = max(wait, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() / 4)  # noqa: S311
                if time.monotonic() + wait > deadline:
                    raise
                logger.info("Ads API %s %s answered %s; retrying in %.1fs", method, path, status, wait)
                sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    client._request = guarded
