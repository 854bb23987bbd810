"""Login with Amazon access tokens: one shared, encrypted Redis cache for every worker.

- `access_token_for(connection)` returns a valid access token for a seller connection. The token is
  cached in Redis under `lwa:token:<connection public id>`, Fernet-encrypted with the credential keys
  and bound to that connection, for `expires_in - LWA_TOKEN_REFRESH_MARGIN_SECONDS` (capped by
  LWA_TOKEN_TTL_SECONDS when set), so it is replaced before Amazon expires it.
- A miss is refreshed under a single-flight Redis lock (SET NX PX): N workers missing at once cause
  one LWA call; the others poll the cache until the token appears (or LWA_TOKEN_LOCK_WAIT_SECONDS).
- `invalidate_access_token` drops it (after a 401/403 from Amazon, on disconnect, on new secrets).
- An `invalid_grant` answer means the seller revoked us or the refresh token expired: the connection
  is marked "needs re-authorisation" (own transaction, audited as the system) and
  `ReauthorizationRequired` is raised. Waiting workers see that too, without calling LWA again.
- Grantless tokens (client_credentials + scope) are cached apart: `grantless_token_for(scope)`.
- `access_token_client_class(connection)` plugs all this into python-amazon-sp-api.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from django.conf import settings
from sp_api.auth import AccessTokenClient, AccessTokenResponse

from amazon import crypto
from amazon.crypto import CredentialDecryptionError
from amazon.models import SellerConnection
from config.redis import redis_client

#: POSTs a form to the LWA token endpoint and returns the decoded JSON answer (raises LwaError).
LwaCall = Callable[[dict[str, str]], dict[str, Any]]

TOKEN_KEY = "lwa:token:{}"
LOCK_KEY = "lwa:lock:{}"
REFUSED_KEY = "lwa:refused:{}"
GRANTLESS_KEY = "lwa:grantless:{}"
#: How long waiting workers keep answering "re-authorisation required" without asking LWA again.
REFUSED_SECONDS = 60
POLL_SECONDS = 0.025

#: The sp_api client insists on LWA credentials; ours never leave the database, so it gets these.
SP_API_PLACEHOLDER_CREDENTIALS = {
    "lwa_app_id": "managed-by-sellerpilot",
    "lwa_client_secret": "managed-by-sellerpilot",
    "refresh_token": "managed-by-sellerpilot",
}

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenError(Exception):
    """An access token could not be obtained."""


class LwaError(TokenError):
    """The LWA endpoint refused or failed. `error` is LWA's code (e.g. invalid_grant), if any."""

    def __init__(self, message: str, *, error: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


class ReauthorizationRequired(TokenError):
    """The seller must authorise the connection again (revoked or expired grant)."""

    def __init__(self, connection_public_id: UUID | str, detail: str) -> None:
        super().__init__(detail)
        self.connection_public_id = str(connection_public_id)
        self.detail = detail


class ConnectionUnavailable(TokenError):
    """The connection is disconnected (its secrets are gone)."""


class TokenRefreshTimeout(TokenError):
    """Another worker's refresh did not finish in time."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


# --- the LWA call -----------------------------------------------------------------------------------


def lwa_post(form: dict[str, str]) -> dict[str, Any]:
    """POST `form` to settings.LWA_TOKEN_URL (form-encoded, with timeouts); the JSON answer or LwaError.
    Neither the form nor the answer is ever logged."""
    timeout = httpx.Timeout(settings.LWA_HTTP_TIMEOUT_SECONDS)
    try:
        response = httpx.post(settings.LWA_TOKEN_URL, data=form, timeout=timeout)
    except httpx.HTTPError as error:
        raise LwaError(f"LWA token endpoint unreachable: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        code = str(body.get("error", "")) if isinstance(body, dict) else ""
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        raise LwaError(
            f"LWA refused the token request ({response.status_code} {code}): {description}"[:300],
            error=code,
            status=response.status_code,
        )
    return body


def lwa_refresh_grant(
    *, refresh_token: str, client_id: str, client_secret: str, lwa_call: LwaCall | None = None
) -> IssuedToken:
    """Exchange a refresh token for an access token at LWA (SP-API and Ads grants alike)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    return _issued((lwa_call or lwa_post)(form))


def _issued(body: dict[str, Any]) -> IssuedToken:
    try:
        return IssuedToken(
            access_token=str(body["access_token"]), expires_in=int(body.get("expires_in", 3600))
        )
    except (KeyError, TypeError, ValueError):
        raise LwaError("LWA answered without a usable access token") from None


def cache_seconds(expires_in: int) -> int:
    """How long a token with `expires_in` seconds of life is served from the cache."""
    margin = settings.LWA_TOKEN_REFRESH_MARGIN_SECONDS
    # A token that lives less than twice the margin is kept for half its life instead.
    seconds = expires_in - margin if expires_in > 2 * margin else expires_in // 2
    cap = settings.LWA_TOKEN_TTL_SECONDS
    if cap:
        seconds = min(seconds, cap)
    return max(seconds, 1)


# --- the cache --------------------------------------------------------------------------------------


def _context(key: str) -> str:
    return f"redis:{key}"


def cached_token(key: str) -> str | None:
    raw = redis_client().get(key)
    if raw is None:
        return None
    text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(crypto.decrypt_bound(text, context=_context(key)))["access_token"]
    except (CredentialDecryptionError, ValueError, KeyError, TypeError):
        # Unreadable (e.g. made with a key since removed): a miss, never an error for the caller.
        redis_client().delete(key)
        return None


def _store(key: str, token: IssuedToken) -> None:
    payload = json.dumps({"access_token": token.access_token, "expires_at": time.time() + token.expires_in})
    redis_client().set(
        key, crypto.encrypt_bound(payload, context=_context(key)), ex=cache_seconds(token.expires_in)
    )


def single_flight_refresh(
    key: str,
    fetch: Callable[[], IssuedToken],
    *,
    refused_key: str | None = None,
    refused: Callable[[], Exception] | None = None,
) -> str:
    client = redis_client()
    lock_key = LOCK_KEY.format(key)
    # The lock outlives a refresh that hangs until its HTTP timeout, then frees itself.
    lock_ms = int((settings.LWA_HTTP_TIMEOUT_SECONDS + 5) * 1000)
    deadline = time.monotonic() + settings.LWA_TOKEN_LOCK_WAIT_SECONDS
    while True:
        if refused_key and refused and client.exists(refused_key):
            raise refused()
        owner = secrets.token_hex(16)
        if client.set(lock_key, owner, nx=True, px=lock_ms):
            try:
                cached = cached_token(key)  # another worker may have stored it just before we got the lock
                if cached is not None:
                    return cached
                token = fetch()
                _store(key, token)
                return token.access_token
            finally:
                client.eval(_RELEASE_LOCK, 1, lock_key, owner)
        time.sleep(POLL_SECONDS)
        cached = cached_token(key)
        if cached is not None:
            return cached
        if time.monotonic() > deadline:
            raise TokenRefreshTimeout("another worker's access token refresh did not finish in time")


# --- seller connections -----------------------------------------------------------------------------


def lwa_app_credentials(connection: SellerConnection) -> tuple[str, str]:
    if connection.auth_kind == SellerConnection.AuthKind.OWN_APP:
        client_id = connection.get_secret("lwa_client_id")
        client_secret = connection.get_secret("lwa_client_secret")
        if not client_id or not client_secret:
            raise ReauthorizationRequired(connection.public_id, "The connection has no app credentials.")
        return client_id, client_secret
    return settings.LWA_CLIENT_ID, settings.LWA_CLIENT_SECRET


def _reauthorization(connection: SellerConnection) -> ReauthorizationRequired:
    return ReauthorizationRequired(
        connection.public_id, "Amazon no longer accepts this connection's authorisation: connect it again."
    )


def access_token_for(connection: SellerConnection, *, lwa_call: LwaCall | None = None) -> str:
    """A valid access token for `connection` (cached, shared, refreshed before it expires)."""
    if connection.status == SellerConnection.Status.DISCONNECTED:
        raise ConnectionUnavailable("The connection is disconnected.")
    if connection.status == SellerConnection.Status.NEEDS_REAUTHORIZATION:
        raise _reauthorization(connection)
    key = TOKEN_KEY.format(connection.public_id)
    cached = cached_token(key)
    if cached is not None:
        return cached
    refused_key = REFUSED_KEY.format(connection.public_id)

    def fetch() -> IssuedToken:
        refresh_token = connection.get_secret("refresh_token")
        if not refresh_token:
            raise ConnectionUnavailable("The connection has no refresh token.")
        client_id, client_secret = lwa_app_credentials(connection)
        try:
            return lwa_refresh_grant(
                refresh_token=refresh_token,
                client_id=client_id,
                client_secret=client_secret,
                lwa_call=lwa_call,
            )
        except LwaError as error:
            grant_refused = error.error == "invalid_grant" or (
                error.error == "invalid_client" and connection.auth_kind == SellerConnection.AuthKind.OWN_APP
            )
            if not grant_refused:
                raise
        from amazon.services import seller_connection_mark_needs_reauthorization

        redis_client().set(refused_key, "1", ex=REFUSED_SECONDS)
        seller_connection_mark_needs_reauthorization(
            connection=connection,
            detail="Amazon refused the stored authorisation (revoked or expired). Connect the account again.",
        )
        raise _reauthorization(connection)

    return single_flight_refresh(
        key, fetch, refused_key=refused_key, refused=lambda: _reauthorization(connection)
    )


def invalidate_access_token(connection: SellerConnection | UUID | str) -> None:
    """Forget the cached token (after a 401/403, on disconnect, when secrets change)."""
    public_id = connection.public_id if isinstance(connection, SellerConnection) else connection
    redis_client().delete(TOKEN_KEY.format(public_id), REFUSED_KEY.format(public_id))


# --- grantless operations ---------------------------------------------------------------------------


def grantless_token_for(
    scope: str, *, connection: SellerConnection | None = None, lwa_call: LwaCall | None = None
) -> str:
    """A client_credentials token for `scope` (notifications, migration), of the platform app or,
    given an own-app connection, of the seller's app. Cached apart from seller tokens."""
    if connection is not None:
        client_id, client_secret = lwa_app_credentials(connection)
    else:
        client_id, client_secret = settings.LWA_CLIENT_ID, settings.LWA_CLIENT_SECRET
    app = hashlib.sha256(client_id.encode()).hexdigest()[:16]
    key = GRANTLESS_KEY.format(f"{app}:{scope}")

    def fetch() -> IssuedToken:
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        return _issued((lwa_call or lwa_post)(form))

    return cached_token(key) or single_flight_refresh(key, fetch)


# --- python-amazon-sp-api ---------------------------------------------------------------------------


def access_token_client_class(
    connection: SellerConnection, *, lwa_call: LwaCall | None = None
) -> type[AccessTokenClient]:
    """An `AccessTokenClient` subclass bound to `connection`, for sp_api's `auth_token_client_class=`:
    every sp_api client then takes its token from our shared cache, never from sp_api's per-process one."""

    class SellerPilotAccessTokenClient(AccessTokenClient):
        def get_auth(self) -> AccessTokenResponse:
            return AccessTokenResponse(
                access_token=access_token_for(connection, lwa_call=lwa_call), token_type="bearer"
            )

        def get_grantless_auth(self, scope: str = "sellingpartnerapi::notifications") -> AccessTokenResponse:
            own = connection if connection.auth_kind == SellerConnection.AuthKind.OWN_APP else None
            return AccessTokenResponse(
                access_token=grantless_token_for(scope, connection=own, lwa_call=lwa_call),
                token_type="bearer",
            )

        def authorize_auth_code(self, auth_code: str) -> Any:
            raise NotImplementedError("the consent flow exchanges codes itself (amazon.services)")

    return SellerPilotAccessTokenClient
