"""Amazon Ads API access tokens: the same shared, encrypted, single-flight Redis cache as the SP-API
tokens (amazon/tokens.py), under keys of their own.

- `ads_access_token_for(connection)` returns a valid LWA access token granted for the connection's
  **Ads** refresh token (the `ads_refresh_token` secret, scope advertising::campaign_management). It is
  cached under `lwa:ads-token:<connection public id>`, Fernet-encrypted and bound to that key, for
  `expires_in - LWA_TOKEN_REFRESH_MARGIN_SECONDS`; N workers missing at once cause one LWA call.
- The LWA app is the platform app (settings.ADS_CLIENT_ID / ADS_CLIENT_SECRET when set, else
  LWA_CLIENT_ID / LWA_CLIENT_SECRET) or, for own-app connections, the seller's app.
- `invalid_grant` marks the connection's **Ads side** "needs re-authorisation" in the database
  (`SellerConnection.ads_reauthorization_required_at`, in its own transaction, audited as the system:
  amazon.services.ads_mark_needs_reauthorization) and raises `AdsReauthorizationRequired`; later calls
  fail fast on that mark without asking LWA, and a Redis marker for a minute answers the workers that were
  waiting. The SP-API side of the connection keeps working: its `status` is not touched. Connecting Ads
  again (amazon.services.ads_connect) clears the mark.
- `ads_access_token_client(connection)` plugs this into python-amazon-ad-api (see amazon/ads_clients.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import ad_api.base  # noqa: F401 - first: importing ad_api.auth on its own hits a circular import in ad_api
from ad_api.auth import AccessTokenClient, AccessTokenResponse
from django.conf import settings

from amazon import tokens
from amazon.models import SellerConnection
from amazon.tokens import (
    ConnectionUnavailable,
    IssuedToken,
    LwaCall,
    LwaError,
    ReauthorizationRequired,
    TokenError,
)
from config.redis import redis_client

ADS_TOKEN_KEY = "lwa:ads-token:{}"
ADS_REFUSED_KEY = "lwa:ads-refused:{}"

#: ad_api insists on LWA credentials; ours never leave the database.
AD_API_PLACEHOLDER_SECRET = "managed-by-sellerpilot"


class AdsNotAuthorized(TokenError):
    """The connection has no Ads API authorisation (no Ads refresh token stored)."""


class AdsReauthorizationRequired(ReauthorizationRequired):
    """Amazon refused the stored Ads authorisation (revoked or expired): authorise Ads again."""


def ads_lwa_credentials(connection: SellerConnection) -> tuple[str, str]:
    """(client id, client secret) of the LWA app holding the connection's Ads grant."""
    if connection.auth_kind == SellerConnection.AuthKind.OWN_APP:
        return tokens.lwa_app_credentials(connection)
    client_id = settings.ADS_CLIENT_ID or settings.LWA_CLIENT_ID
    client_secret = settings.ADS_CLIENT_SECRET or settings.LWA_CLIENT_SECRET
    return client_id, client_secret


def _refused(connection: SellerConnection) -> AdsReauthorizationRequired:
    return AdsReauthorizationRequired(
        connection.public_id,
        "Amazon no longer accepts this connection's Ads API authorisation: authorise Ads again.",
    )


def ads_access_token_for(connection: SellerConnection, *, lwa_call: LwaCall | None = None) -> str:
    """A valid Ads API access token for `connection` (cached, shared, refreshed before it expires)."""
    if connection.status == SellerConnection.Status.DISCONNECTED:
        raise ConnectionUnavailable("The connection is disconnected.")
    if connection.ads_reauthorization_required_at is not None:
        raise _refused(connection)
    key = ADS_TOKEN_KEY.format(connection.public_id)
    cached = tokens.cached_token(key)
    if cached is not None:
        return cached
    refused_key = ADS_REFUSED_KEY.format(connection.public_id)

    def fetch() -> IssuedToken:
        # The ciphertext read here is the grant the mark below is about (a grant replaced meanwhile is not).
        refused_ciphertext = connection.ads_refresh_token_encrypted
        refresh_token = connection.get_secret("ads_refresh_token")
        if not refresh_token:
            raise AdsNotAuthorized("The connection has no Ads API authorisation.")
        client_id, client_secret = ads_lwa_credentials(connection)
        try:
            return tokens.lwa_refresh_grant(
                refresh_token=refresh_token,
                client_id=client_id,
                client_secret=client_secret,
                lwa_call=lwa_call,
            )
        except LwaError as error:
            if error.error != "invalid_grant":
                raise
        from amazon.services import ads_mark_needs_reauthorization

        redis_client().set(refused_key, "1", ex=tokens.REFUSED_SECONDS)
        ads_mark_needs_reauthorization(
            connection=connection,
            refused_ciphertext=refused_ciphertext,
            detail="Amazon no longer accepts this Ads API authorisation (revoked or expired): "
            "authorise Amazon Ads again.",
        )
        raise _refused(connection)

    return tokens.single_flight_refresh(
        key, fetch, refused_key=refused_key, refused=lambda: _refused(connection)
    )


def invalidate_ads_access_token(connection: SellerConnection | UUID | str) -> None:
    """Forget the cached Ads token (after a 401, on disconnect, when the Ads grant changes)."""
    public_id = connection.public_id if isinstance(connection, SellerConnection) else connection
    redis_client().delete(ADS_TOKEN_KEY.format(public_id), ADS_REFUSED_KEY.format(public_id))


class SellerPilotAdsAccessTokenClient(AccessTokenClient):
    """ad_api's token source, answering from our cache. ad_api builds its own `AccessTokenClient` in
    `Client.__init__` (no class argument as in sp_api), so amazon.ads_clients puts an instance of this
    one in `client._auth`; every request then reads `client.auth` -> `get_auth()` -> our cache."""

    def __init__(self, connection: SellerConnection, *, lwa_call: LwaCall | None = None) -> None:
        client_id, _ = ads_lwa_credentials(connection)
        super().__init__(
            credentials={
                "client_id": client_id,
                "client_secret": AD_API_PLACEHOLDER_SECRET,
                "refresh_token": AD_API_PLACEHOLDER_SECRET,
            }
        )
        self.connection = connection
        self.lwa_call = lwa_call

    def get_auth(self) -> AccessTokenResponse:
        return AccessTokenResponse(
            access_token=ads_access_token_for(self.connection, lwa_call=self.lwa_call), token_type="bearer"
        )

    def authorize_auth_code(self, auth_code: str) -> Any:
        raise NotImplementedError("the Ads consent flow exchanges codes itself")


def ads_access_token_client(
    connection: SellerConnection, *, lwa_call: LwaCall | None = None
) -> SellerPilotAdsAccessTokenClient:
    return SellerPilotAdsAccessTokenClient(connection, lwa_call=lwa_call)
