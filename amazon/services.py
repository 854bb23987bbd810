"""Writes about seller connections. Keyword-only, one transaction, permission checked, audited.

Secrets enter only as arguments of these functions and leave only through `SellerConnection.get_secret`;
they are never written to the audit log (only that they changed), logs or task arguments.

Connecting (docs/amazon.md "Connecting"):

- `consent_url_create` gives the Seller Central consent URL for the platform's app with a signed,
  expiring, single-use `state` (tenant + user + region + nonce);
- `consent_callback` checks that `state` (forged, expired, replayed, another user's → refused), exchanges
  `spapi_oauth_code` at LWA, and
- `seller_connection_create_own_app` takes a seller's own developer app credentials;

both then *verify* with a real SP-API call (Sellers getMarketplaceParticipations, through the one client
factory) before anything is stored, and store the connection as active with its marketplaces. A live
connection for the same seller account and region is re-authorised in place (new secrets, active again).
Any failure stores nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Permission, role_allows
from amazon.initial_sync import initial_sync_enqueue
from amazon.models import Region, SellerConnection
from amazon.notifications_subscribe import notifications_subscribe_enqueue, notifications_unsubscribe_enqueue
from amazon.reauthorization import reauthorization_notice_on_commit
from config.redis import redis_client
from tenants.audit import audit_record
from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)


class AmazonConnectionError(Exception):
    """A refusal the user caused; `code` is stable for the API, the message is for people."""

    def __init__(self, message: str, *, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def _require(actor_role: str) -> None:
    if not role_allows(actor_role, Permission.CONNECT_AMAZON):
        raise AmazonConnectionError("Your role does not allow this.", code="permission_denied", status=403)


@transaction.atomic
def seller_connection_disconnect(
    *, connection: SellerConnection, actor: User | None, actor_role: str
) -> SellerConnection:
    """Disconnect: forget every secret at once, stop using the cached access token, and record when
    the account's Amazon data is to be purged (AMAZON_DATA_RETENTION_DAYS later)."""
    from amazon.ads_tokens import invalidate_ads_access_token
    from amazon.tokens import invalidate_access_token

    _require(actor_role)
    locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
    if locked.status == SellerConnection.Status.DISCONNECTED:
        return locked
    now = timezone.now()
    previous = locked.status
    columns = locked.clear_secrets()
    locked.status = SellerConnection.Status.DISCONNECTED
    locked.status_detail = ""
    locked.disconnected_at = now
    locked.purge_after = now + timedelta(days=settings.AMAZON_DATA_RETENTION_DAYS)
    locked.save(
        update_fields=[*columns, "status", "status_detail", "disconnected_at", "purge_after", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="amazon.connection_disconnect",
        target=locked,
        changes={"status": [previous, locked.status], "purge_after": locked.purge_after.isoformat()},
    )
    seller_route_sync(locked)  # no more notifications for this tenant
    notifications_unsubscribe_enqueue(locked)  # after commit, in a task: Amazon stops sending them
    public_id = locked.public_id
    transaction.on_commit(lambda: invalidate_access_token(public_id))
    transaction.on_commit(lambda: invalidate_ads_access_token(public_id))
    return locked


def _in_own_transaction(write: Callable[[], None]) -> bool:
    """Run `write` on a separate database connection (its own thread), so it commits even when the
    caller's transaction later rolls back. Returns False when it could not (e.g. a lock held by the
    caller's own transaction), so the caller can fall back to writing in its transaction."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                # Never wait for a lock our caller holds: it is waiting for us.
                cursor.execute("SET LOCAL lock_timeout = '3s'")
                write()
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, name="amazon-own-transaction")
    worker.start()
    worker.join()
    if failures:
        if isinstance(failures[0], DatabaseError):
            logger.warning("own-transaction write failed: %s", type(failures[0]).__name__)
            return False
        raise failures[0]
    return True


def seller_connection_mark_needs_reauthorization(*, connection: SellerConnection, detail: str) -> None:
    """Amazon refused the connection's grant (revoked or expired refresh token). Recorded at once in
    its own transaction, audited as the system, whatever happens to the caller's transaction."""
    tenant = connection.tenant

    def write() -> None:
        with tenant_context(tenant):
            updated = SellerConnection.objects.filter(
                pk=connection.pk, status=SellerConnection.Status.ACTIVE
            ).update(
                status=SellerConnection.Status.NEEDS_REAUTHORIZATION,
                status_detail=detail[:500],
                updated_at=timezone.now(),
            )
            if updated:
                reauthorization_notice_on_commit(connection, "sp_api")
                audit_record(
                    actor=None,
                    action="amazon.connection_needs_reauthorization",
                    target=connection,
                    changes={
                        "status": [SellerConnection.Status.ACTIVE, "needs_reauthorization"],
                        "reason": detail[:200],
                    },
                )

    if transaction.get_connection().in_atomic_block:
        _in_own_transaction(write)
    # Also in the caller's transaction: a no-op when the own transaction committed it (the status is
    # no longer active), and the record when that one could not see the row (not committed yet).
    write()
    connection.status = SellerConnection.Status.NEEDS_REAUTHORIZATION
    connection.status_detail = detail[:500]


# --- Connecting -------------------------------------------------------------------------------------------

CONSENT_SALT = "amazon.consent-state"
#: Redis key remembering a consumed consent nonce (SET NX), so a callback cannot be replayed.
CONSENT_NONCE_KEY = "amazon:consent-nonce:{}"
#: A marketplace of each region, to address the verification call (getMarketplaceParticipations lists all).
REGION_MARKETPLACE = {"NA": "ATVPDKIKX0DER", "EU": "A1F83G8C2ARO7P", "FE": "A1VC38T7YXB528"}
_SELLING_PARTNER_ID = re.compile(r"^[A-Z0-9]{8,32}$")
#: The verification runs while a person waits: a short retry budget.
VERIFY_RETRY_BUDGET_SECONDS = 10.0
VERIFY_MAX_ATTEMPTS = 3
SP_API_SECRET_FIELDS = ("lwa_client_id", "lwa_client_secret", "refresh_token")


def _require_region(region: str) -> str:
    if region not in Region.values:
        raise AmazonConnectionError(
            f"Choose a region: {', '.join(Region.values)}.", code="invalid_region", status=400
        )
    return region


def _require_selling_partner_id(selling_partner_id: str) -> str:
    value = (selling_partner_id or "").strip()
    if not _SELLING_PARTNER_ID.match(value):
        raise AmazonConnectionError(
            "That is not a selling partner id (Seller Central → Settings → Account Info → Merchant Token, "
            "e.g. A1B2C3D4E5F6G7).",
            code="invalid_selling_partner_id",
        )
    return value


def consent_url_create(
    *, tenant: Tenant, actor: User | None, actor_role: str, region: str, redirect_uri: str = ""
) -> str:
    """The Seller Central URL where the seller authorises the platform's app for `region`. Its `state`
    is signed, names this company and this person, holds a one-time nonce and expires after
    SP_API_CONSENT_MAX_AGE_SECONDS. `redirect_uri` (optional) must be one registered for the app."""
    _require(actor_role)
    _require_region(region)
    if actor is None:
        raise AmazonConnectionError(
            "Authorising in Seller Central needs a person signed in to the dashboard, not an API key.",
            code="person_required",
            status=403,
        )
    if not settings.SP_API_APP_ID:
        raise AmazonConnectionError(
            "Connecting through Seller Central is not configured here (SP_API_APP_ID). "
            "Connect with your own developer app instead.",
            code="not_configured",
            status=400,
        )
    state = signing.TimestampSigner(salt=CONSENT_SALT).sign_object(
        {
            "t": str(tenant.public_id),
            "u": str(actor.public_id),
            "r": region,
            "n": secrets.token_urlsafe(18),
        },
        compress=True,
    )
    params = {"application_id": settings.SP_API_APP_ID, "state": state}
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    if settings.SP_API_CONSENT_BETA:
        params["version"] = "beta"  # a draft app (development only)
    with transaction.atomic():
        audit_record(actor=actor, action="amazon.connection_consent_start", target_label=f"region {region}")
    return f"{settings.SELLER_CENTRAL_CONSENT_URLS[region]}?{urlencode(params)}"


def _consume_signed_state(
    *,
    tenant: Tenant,
    actor: User | None,
    state: str,
    salt: str,
    nonce_key: str,
    key: str,
    what: str,
    again: str,
) -> str:
    """The value under `key` of a verified consent `state` (signed with `salt`, single use through
    `nonce_key`); AmazonConnectionError when it is forged, expired, another company's or person's, or
    already used. `what` names the authorisation and `again` where to start over, for the messages."""
    signer = signing.TimestampSigner(salt=salt)
    try:
        data = signer.unsign_object(state or "", max_age=settings.SP_API_CONSENT_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise AmazonConnectionError(
            f"This {what} link has expired. {again}", code="consent_expired"
        ) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise AmazonConnectionError(
            f"This {what} could not be verified. {again}", code="invalid_state"
        ) from None
    if (
        not isinstance(data, dict)
        or actor is None
        or data.get("t") != str(tenant.public_id)
        or data.get("u") != str(actor.public_id)
        or not data.get(key)
        or not data.get("n")
    ):
        raise AmazonConnectionError(
            f"This {what} was started by another person or for another company. "
            "Switch to that company, or start again.",
            code="invalid_state",
        )
    fresh = redis_client().set(
        nonce_key.format(data["n"]), "1", nx=True, ex=settings.SP_API_CONSENT_MAX_AGE_SECONDS + 60
    )
    if not fresh:
        raise AmazonConnectionError(f"This {what} was already used. {again}", code="consent_replayed")
    return str(data[key])


def _consume_state(*, tenant: Tenant, actor: User | None, state: str) -> str:
    """The region the verified Seller Central consent `state` names (see _consume_signed_state)."""
    region = _consume_signed_state(
        tenant=tenant,
        actor=actor,
        state=state,
        salt=CONSENT_SALT,
        nonce_key=CONSENT_NONCE_KEY,
        key="r",
        what="Amazon authorisation",
        again="Start connecting again from SellerPilot.",
    )
    if region not in Region.values:
        raise AmazonConnectionError("This Amazon authorisation names no known region.", code="invalid_state")
    return region


def _exchange_authorization_code(form: dict[str, str], *, again: str) -> tuple[dict[str, Any], str]:
    """LWA's answer to an authorization_code grant and its refresh token; AmazonConnectionError when
    Amazon refuses the code (used already or expired) or answers without a refresh token."""
    from amazon.tokens import LwaError, lwa_post

    try:
        answer = lwa_post(form)
    except LwaError as error:
        if error.error in ("invalid_grant", "invalid_request"):
            raise AmazonConnectionError(
                f"Amazon did not accept the authorisation (it was used already or has expired). {again}",
                code="authorization_refused",
            ) from None
        raise _lwa_unavailable(error) from None
    refresh_token = str(answer.get("refresh_token") or "")
    if not refresh_token:
        raise AmazonConnectionError(
            f"Amazon answered without a refresh token. {again}", code="authorization_refused"
        )
    return answer, refresh_token


def consent_callback(
    *,
    tenant: Tenant,
    actor: User | None,
    actor_role: str,
    state: str,
    spapi_oauth_code: str,
    selling_partner_id: str,
    name: str = "",
) -> SellerConnection:
    """Seller Central sent the seller back: verify `state`, exchange the code for a refresh token at LWA
    (the platform app's credentials), verify with a real call, then save the connection as active."""

    _require(actor_role)
    region = _consume_state(tenant=tenant, actor=actor, state=state)
    selling_partner_id = _require_selling_partner_id(selling_partner_id)
    if not spapi_oauth_code:
        raise AmazonConnectionError("Amazon sent no authorisation code. Start connecting again.")
    answer, refresh_token = _exchange_authorization_code(
        {
            "grant_type": "authorization_code",
            "code": spapi_oauth_code,
            "client_id": settings.LWA_CLIENT_ID,
            "client_secret": settings.LWA_CLIENT_SECRET,
        },
        again="Start connecting again.",
    )
    return _verify_and_save(
        tenant=tenant,
        actor=actor,
        region=region,
        selling_partner_id=selling_partner_id,
        auth_kind=SellerConnection.AuthKind.PLATFORM_APP,
        secret_values={"refresh_token": refresh_token},
        first_token=answer,
        name=name,
    )


def seller_connection_create_own_app(
    *,
    tenant: Tenant,
    actor: User | None,
    actor_role: str,
    region: str,
    selling_partner_id: str,
    lwa_client_id: str,
    lwa_client_secret: str,
    refresh_token: str,
    name: str = "",
) -> SellerConnection:
    """Connect with the seller's own developer app: the credentials must obtain an access token and
    answer a real SP-API call before anything is stored."""
    from amazon.tokens import LwaError, lwa_post

    _require(actor_role)
    _require_region(region)
    selling_partner_id = _require_selling_partner_id(selling_partner_id)
    values = {
        "lwa_client_id": (lwa_client_id or "").strip(),
        "lwa_client_secret": (lwa_client_secret or "").strip(),
        "refresh_token": (refresh_token or "").strip(),
    }
    if not all(values.values()):
        raise AmazonConnectionError(
            "Enter the LWA client id, the client secret and the refresh token.", code="missing_credentials"
        )
    try:
        answer = lwa_post(
            {
                "grant_type": "refresh_token",
                "refresh_token": values["refresh_token"],
                "client_id": values["lwa_client_id"],
                "client_secret": values["lwa_client_secret"],
            }
        )
    except LwaError as error:
        if error.error == "invalid_client":
            raise AmazonConnectionError(
                "Amazon did not accept the LWA client id and client secret. Copy both again from "
                "Developer Central (the secret may have been rotated).",
                code="invalid_credentials",
            ) from None
        if error.error in ("invalid_grant", "invalid_request"):
            raise AmazonConnectionError(
                "Amazon did not accept the refresh token for this app (revoked, expired or issued to "
                "another app). Authorise the app again in Seller Central and paste the new token.",
                code="invalid_credentials",
            ) from None
        raise _lwa_unavailable(error) from None
    return _verify_and_save(
        tenant=tenant,
        actor=actor,
        region=region,
        selling_partner_id=selling_partner_id,
        auth_kind=SellerConnection.AuthKind.OWN_APP,
        secret_values=values,
        first_token=answer,
        name=name,
    )


def _lwa_unavailable(error: Exception) -> AmazonConnectionError:
    logger.warning("LWA token endpoint failed while connecting: %s", type(error).__name__)
    return AmazonConnectionError(
        "Amazon's sign-in service did not answer. Nothing was saved; try again in a few minutes.",
        code="amazon_unavailable",
        status=503,
    )


def _verify(probe: SellerConnection, first_token: Mapping[str, Any]) -> tuple[list[dict[str, str]], str]:
    """A real call with the new credentials: the account's marketplaces and store name, or a clear
    AmazonConnectionError. The access token LWA just issued is used (no second LWA call)."""
    from sp_api.api import Sellers

    from amazon.clients import (
        AmazonApiError,
        AmazonAuthError,
        AmazonRequestError,
        RetryPolicy,
        sp_api_client,
    )
    from amazon.tokens import TokenError

    token = dict(first_token)
    policy = RetryPolicy(
        budget_seconds=min(VERIFY_RETRY_BUDGET_SECONDS, RetryPolicy.from_settings().budget_seconds),
        max_attempts=VERIFY_MAX_ATTEMPTS,
        base_delay=RetryPolicy.from_settings().base_delay,
    )
    try:
        client = sp_api_client(
            Sellers, probe, REGION_MARKETPLACE[probe.region], policy=policy, lwa_call=lambda form: token
        )
        payload = client.get_marketplace_participation().payload
    except AmazonAuthError:
        raise AmazonConnectionError(
            "Amazon refused access to this seller account with these credentials. Check that the app "
            "has the Selling Partner API roles it needs and that the account is the one you authorised.",
            code="verification_failed",
        ) from None
    except AmazonRequestError as error:
        raise AmazonConnectionError(
            f"Amazon refused the check call ({error.status} {error.code}).",
            code="verification_failed",
        ) from None
    except (AmazonApiError, TokenError) as error:
        logger.warning("verifying a new connection failed: %s", type(error).__name__)
        raise AmazonConnectionError(
            "Amazon did not answer the check call. Nothing was saved; try again in a few minutes.",
            code="amazon_unavailable",
            status=503,
        ) from None
    marketplaces: list[dict[str, str]] = []
    store_name = ""
    for entry in payload if isinstance(payload, list) else []:
        marketplace = entry.get("marketplace") or {}
        participation = entry.get("participation") or {}
        if not marketplace.get("id") or participation.get("isParticipating") is False:
            continue
        marketplaces.append(
            {
                "id": str(marketplace["id"]),
                "name": str(marketplace.get("name", "")),
                "country_code": str(marketplace.get("countryCode", "")),
            }
        )
        store_name = store_name or str(entry.get("storeName") or "")
    return marketplaces, store_name


def _verify_and_save(
    *,
    tenant: Tenant,
    actor: User | None,
    region: str,
    selling_partner_id: str,
    auth_kind: str,
    secret_values: dict[str, str],
    first_token: Mapping[str, Any],
    name: str,
) -> SellerConnection:
    from amazon.tokens import invalidate_access_token

    existing = (
        SellerConnection.objects.filter(tenant=tenant, region=region, selling_partner_id=selling_partner_id)
        .exclude(status=SellerConnection.Status.DISCONNECTED)
        .first()
    )
    # The verification runs on an unsaved copy (the secrets are bound to the row's public id, so an
    # existing connection's id is reused); nothing reaches the database unless Amazon answers.
    probe = SellerConnection(
        tenant=tenant,
        region=region,
        selling_partner_id=selling_partner_id,
        auth_kind=auth_kind,
        status=SellerConnection.Status.ACTIVE,
        name=(name or "").strip()[:200],
    )
    if existing is not None:
        probe.public_id = existing.public_id
    for field, value in secret_values.items():
        probe.set_secret(field, value)
    invalidate_access_token(probe.public_id)
    try:
        marketplaces, store_name = _verify(probe, first_token)
    except AmazonConnectionError:
        invalidate_access_token(probe.public_id)
        raise
    try:
        with transaction.atomic():
            if existing is None:
                return _create(
                    probe,
                    actor=actor,
                    secret_values=secret_values,
                    marketplaces=marketplaces,
                    store_name=store_name,
                )
            return _reauthorize(
                existing, actor=actor, probe=probe, secret_values=secret_values, marketplaces=marketplaces
            )
    except IntegrityError:
        invalidate_access_token(probe.public_id)
        raise AmazonConnectionError(
            "This seller account was connected at the same moment by someone else.",
            code="already_connected",
            status=409,
        ) from None


def _create(
    connection: SellerConnection,
    *,
    actor: User | None,
    secret_values: dict[str, str],
    marketplaces: list[dict[str, str]],
    store_name: str,
) -> SellerConnection:
    connection.marketplaces = marketplaces  # the secrets were set on it for the verification
    connection.name = connection.name or store_name[:200]
    connection.save()
    audit_record(
        actor=actor,
        action="amazon.connection_create",
        target=connection,
        changes={
            "auth_kind": connection.auth_kind,
            "region": connection.region,
            "selling_partner_id": connection.selling_partner_id,
            "marketplaces": [m["id"] for m in marketplaces],
            "credentials": "(set)",
        },
    )
    seller_route_sync(connection)  # its notifications now reach this tenant
    initial_sync_enqueue(connection)  # after commit: its data shows within a minute
    notifications_subscribe_enqueue(connection)  # after commit: Amazon's notifications to our SQS queue
    return connection


def _reauthorize(
    existing: SellerConnection,
    *,
    actor: User | None,
    probe: SellerConnection,
    secret_values: dict[str, str],
    marketplaces: list[dict[str, str]],
) -> SellerConnection:
    locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=existing.pk)
    previous = locked.status
    # The SP-API credentials are replaced as a set (a platform-app grant drops an own app's id and
    # secret); the Ads API token is another authorisation and stays.
    for field in SP_API_SECRET_FIELDS:
        locked.set_secret(field, secret_values.get(field))
    columns = [SellerConnection.SECRET_FIELDS[field] for field in SP_API_SECRET_FIELDS]
    locked.auth_kind = probe.auth_kind
    locked.status = SellerConnection.Status.ACTIVE
    locked.status_detail = ""
    locked.marketplaces = marketplaces
    if probe.name:
        locked.name = probe.name
    locked.save(
        update_fields=[*columns, "auth_kind", "status", "status_detail", "marketplaces", "name", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="amazon.connection_reauthorize",
        target=locked,
        changes={
            "status": [previous, locked.status],
            "auth_kind": locked.auth_kind,
            "marketplaces": [m["id"] for m in marketplaces],
            "credentials": "(changed)",
        },
    )
    seller_route_sync(locked)
    initial_sync_enqueue(locked)
    notifications_subscribe_enqueue(locked)
    return locked


# --- the notifications routing table ------------------------------------------------------------------


def seller_route_sync(connection: SellerConnection) -> None:
    """Bring the notifications routing table (`SellerRoute`) in line with `connection`: a live connection
    (active or needing re-authorisation: Amazon still notifies) is routed to its tenant, a disconnected one
    is not. Call it in the same transaction as every write that creates a connection, changes its status
    or disconnects it; it is idempotent. Only ids are stored: the table is platform-wide (no RLS)."""
    from amazon.models import SellerRoute

    if connection.status == SellerConnection.Status.DISCONNECTED:
        SellerRoute.objects.filter(connection_public_id=connection.public_id).delete()
        return
    # One live connection per (tenant, region, account): a route left by an earlier connection row of
    # the same account (reconnected after a disconnect) gives way to this one.
    SellerRoute.objects.filter(
        selling_partner_id=connection.selling_partner_id,
        region=connection.region,
        tenant_id=connection.tenant_id,
    ).exclude(connection_public_id=connection.public_id).delete()
    SellerRoute.objects.update_or_create(
        connection_public_id=connection.public_id,
        defaults={
            "selling_partner_id": connection.selling_partner_id,
            "region": connection.region,
            "tenant_id": connection.tenant_id,
        },
    )


# --- Amazon Ads API authorisation ---------------------------------------------------------------------
#
# Two ways in, one check: the seller authorises SellerPilot on Amazon's Login with Amazon consent page
# (`ads_consent_url_create` -> LWA /ap/oa with scope advertising::campaign_management and a signed,
# expiring, single-use state -> `ads_consent_callback` exchanges the authorization code at the LWA token
# endpoint), or pastes an Ads refresh token obtained elsewhere (`ads_connect`). Either way the grant is
# verified before anything is stored: the advertising profiles it reaches are listed with it, and one of
# them must be the connection's own seller account (accountInfo.type "seller", accountInfo.id = the
# selling partner id) in one of its marketplaces; a grant of another Amazon account is refused.

ADS_SCOPE = "advertising::campaign_management"
ADS_CONSENT_SALT = "amazon.ads-consent-state"
ADS_CONSENT_NONCE_KEY = "amazon:ads-consent-nonce:{}"
ADS_SECRET_COLUMNS = ("ads_refresh_token_encrypted",)


def _require_ads_connection(tenant: Tenant, connection: SellerConnection) -> None:
    if connection.tenant_id != tenant.pk:
        raise AmazonConnectionError("No such connection.", code="not_found", status=404)
    if connection.status == SellerConnection.Status.DISCONNECTED:
        raise AmazonConnectionError(
            "This connection is disconnected. Connect the seller account again first.",
            code="connection_disconnected",
            status=409,
        )


def _region_marketplaces(region: str) -> set[str]:
    from sp_api.base import Marketplaces

    from amazon.clients import AWS_REGIONS

    return {m.marketplace_id for m in Marketplaces if AWS_REGIONS.get(m.region) == region}


def _ads_unavailable() -> AmazonConnectionError:
    return AmazonConnectionError(
        "Amazon Ads did not answer the check call. Nothing was saved; try again in a few minutes.",
        code="amazon_unavailable",
        status=503,
    )


def _ads_grant_access_token(connection: SellerConnection, token: str) -> str:
    """An access token for the candidate Ads grant `token`, straight from LWA: never through the shared
    cache, which may hold (or be refilled by a busy worker with) the stored grant's token, and never
    marking the stored grant when LWA refuses the candidate."""
    from amazon.ads_tokens import ads_lwa_credentials
    from amazon.tokens import LwaError, ReauthorizationRequired, lwa_refresh_grant

    try:
        client_id, client_secret = ads_lwa_credentials(connection)
        return lwa_refresh_grant(
            refresh_token=token, client_id=client_id, client_secret=client_secret
        ).access_token
    except ReauthorizationRequired:
        raise AmazonConnectionError(
            "This connection's developer app credentials are missing: connect the seller account again "
            "first.",
            code="connection_needs_reauthorization",
            status=409,
        ) from None
    except LwaError as error:
        if error.error in ("invalid_grant", "invalid_client", "invalid_request", "unauthorized_client"):
            raise AmazonConnectionError(
                "Amazon did not accept this Ads refresh token (revoked, expired, or issued to another app). "
                "Authorise SellerPilot for Amazon Ads again.",
                code="invalid_ads_token",
            ) from None
        raise _lwa_unavailable(error) from None


def _ads_profiles_of(connection: SellerConnection, access_token: str) -> list[dict[str, Any]]:
    """The connection's own advertising profiles reached by the Ads grant of `access_token`, through the
    one Ads client factory: the verification call. AmazonConnectionError with a stable code on any
    refusal, `ads_account_mismatch` when the grant belongs to another Amazon account."""
    from ad_api.api import Profiles

    from amazon.ads_clients import ads_api_client
    from amazon.clients import AmazonApiError, AmazonAuthError, AmazonRequestError, RetryPolicy
    from amazon.tokens import TokenError

    policy = RetryPolicy(budget_seconds=VERIFY_RETRY_BUDGET_SECONDS, max_attempts=VERIFY_MAX_ATTEMPTS)
    try:
        client = ads_api_client(Profiles, connection, None, policy=policy, access_token=access_token)
        payload = client.list_profiles().payload
    except AmazonAuthError:
        raise AmazonConnectionError(
            "Amazon Ads refused access with this token. Check that it was issued for the Advertising "
            f"API (scope {ADS_SCOPE}).",
            code="verification_failed",
        ) from None
    except AmazonRequestError as error:
        raise AmazonConnectionError(
            f"Amazon Ads refused the check call ({error.status}).", code="verification_failed"
        ) from None
    except (AmazonApiError, TokenError) as error:  # throttled, unavailable, network
        logger.warning("verifying an Ads authorisation failed: %s", type(error).__name__)
        raise _ads_unavailable() from None
    region_marketplaces = _region_marketplaces(connection.region)
    profiles: list[dict[str, Any]] = []
    for entry in payload if isinstance(payload, list) else []:
        if not isinstance(entry, dict) or entry.get("profileId") in (None, ""):
            continue
        account = entry.get("accountInfo") or {}
        if not isinstance(account, dict):
            continue
        marketplace_id = str(account.get("marketplaceStringId") or "")
        # Only the connection's own seller account, in its region: not a vendor, not another seller the
        # same Amazon login can advertise for (those would need connections of their own).
        if (
            account.get("type") != "seller"
            or str(account.get("id") or "") != connection.selling_partner_id
            or marketplace_id not in region_marketplaces
        ):
            continue
        profiles.append(
            {
                "profile_id": str(entry["profileId"])[:32],
                "marketplace_id": marketplace_id[:20],
                "country_code": str(entry.get("countryCode") or "")[:2],
                "currency_code": str(entry.get("currencyCode") or "")[:3],
                "name": str(account.get("name") or "")[:200],
            }
        )
    connected = {str(m.get("id")) for m in connection.marketplaces or [] if isinstance(m, dict)}
    wanted = connected or region_marketplaces
    if not any(p["marketplace_id"] in wanted for p in profiles):
        names = ", ".join(
            sorted(str(m.get("country_code") or m.get("id")) for m in connection.marketplaces or [])
        )
        raise AmazonConnectionError(
            "This Amazon Ads authorisation is for another Amazon account: none of its advertising profiles "
            f"is the seller account {connection.selling_partner_id}"
            + (f" in {names}" if names else f" in region {connection.region}")
            + ". Sign in to Amazon with the account of this connection and authorise Amazon Ads again.",
            code="ads_account_mismatch",
        )
    return profiles


def _ads_verify_and_store(
    *,
    tenant: Tenant,
    actor: User | None,
    connection: SellerConnection,
    token: str,
    via: str,
    first_token: Mapping[str, Any] | None = None,
) -> SellerConnection:
    """Verify `token` (the profiles it reaches must include this connection's seller), then store it, its
    profiles and the audit record in one transaction; the Ads "needs re-authorisation" mark is cleared.
    Stores nothing on failure. `first_token`: LWA's answer that issued the grant (its access token answers
    the check, no second LWA call)."""
    from amazon.ads_tokens import invalidate_ads_access_token
    from amazon.models import AdsProfile

    if first_token and first_token.get("access_token"):
        access_token = str(first_token["access_token"])
    else:
        access_token = _ads_grant_access_token(connection, token)
    profiles = _ads_profiles_of(connection, access_token)
    with transaction.atomic():
        locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
        if locked.status == SellerConnection.Status.DISCONNECTED:
            raise AmazonConnectionError(
                "This connection was disconnected meanwhile.", code="connection_disconnected", status=409
            )
        previous = locked.ads_state
        locked.set_secret("ads_refresh_token", token)
        locked.ads_reauthorization_required_at = None
        locked.ads_status_detail = ""
        locked.save(
            update_fields=[
                *ADS_SECRET_COLUMNS,
                "ads_reauthorization_required_at",
                "ads_status_detail",
                "updated_at",
            ]
        )
        listed = []
        for values in profiles:
            profile_id = values.pop("profile_id")
            AdsProfile.objects.update_or_create(
                tenant=locked.tenant,
                connection=locked,
                profile_id=profile_id,
                defaults={**values, "is_enabled": True},
            )
            listed.append(profile_id)
        disabled = (
            AdsProfile.objects.filter(connection=locked, is_enabled=True)
            .exclude(profile_id__in=listed)
            .update(is_enabled=False, updated_at=timezone.now())
        )
        audit_record(
            actor=actor,
            action="amazon.ads_connect",
            target=locked,
            changes={
                "ads_credentials": "(set)" if previous == "not_connected" else "(changed)",
                "ads_status": [previous, locked.ads_state],
                "via": via,
                "ads_profiles": listed,
                "ads_profiles_disabled": disabled,
            },
        )
    # The cached token (if any) and the refusal marker are the earlier grant's: the next Ads call asks LWA
    # with the new one (again after commit, should a busy worker have cached the old one meanwhile).
    public_id = locked.public_id
    invalidate_ads_access_token(public_id)
    transaction.on_commit(lambda: invalidate_ads_access_token(public_id))
    return locked


def ads_connect(
    *,
    tenant: Tenant,
    actor: User | None,
    actor_role: str,
    connection: SellerConnection,
    ads_refresh_token: str,
) -> SellerConnection:
    """Authorise the Amazon Ads API for `connection` with a pasted Ads refresh token: verified with a real
    call (the seller's advertising profiles, one of them this connection's seller account) before anything
    is stored; then, in one transaction, the token is stored encrypted, the profiles are upserted (those no
    longer listed are disabled), a "needs re-authorisation" mark is cleared and the change is audited. A
    wrong token, or one of another Amazon account, raises AmazonConnectionError and stores nothing."""
    _require(actor_role)
    _require_ads_connection(tenant, connection)
    token = (ads_refresh_token or "").strip()
    if not token:
        raise AmazonConnectionError("Enter the Ads refresh token.", code="missing_credentials")
    return _ads_verify_and_store(tenant=tenant, actor=actor, connection=connection, token=token, via="token")


def ads_consent_url_create(
    *, tenant: Tenant, actor: User | None, actor_role: str, connection: SellerConnection, redirect_uri: str
) -> str:
    """The Login with Amazon page (`ADS_CONSENT_URLS[region]`, /ap/oa) where the seller grants SellerPilot
    `advertising::campaign_management` for `connection`. Its `state` is signed, names this company, this
    person and this connection, holds a one-time nonce and expires after SP_API_CONSENT_MAX_AGE_SECONDS.
    `redirect_uri` (our callback) must be an allowed return URL of the LWA app."""
    from amazon.ads_tokens import ads_lwa_credentials

    _require(actor_role)
    _require_ads_connection(tenant, connection)
    if actor is None:
        raise AmazonConnectionError(
            "Authorising Amazon Ads needs a person signed in to the dashboard, not an API key.",
            code="person_required",
            status=403,
        )
    if connection.auth_kind == SellerConnection.AuthKind.OWN_APP:
        # Its Ads grant must belong to the seller's own app (that app refreshes it): no consent for ours.
        raise AmazonConnectionError(
            "This account is connected with your own developer app: paste an Ads refresh token granted to "
            "that app instead.",
            code="own_app_connection",
            status=409,
        )
    if not redirect_uri:
        raise AmazonConnectionError("A return address (redirect_uri) is required.", code="invalid_request")
    client_id, _ = ads_lwa_credentials(connection)
    if not client_id:
        raise AmazonConnectionError(
            "Authorising Amazon Ads through Amazon is not configured here (ADS_CLIENT_ID). "
            "Paste an Ads refresh token instead.",
            code="not_configured",
        )
    state = signing.TimestampSigner(salt=ADS_CONSENT_SALT).sign_object(
        {
            "t": str(tenant.public_id),
            "u": str(actor.public_id),
            "c": str(connection.public_id),
            "n": secrets.token_urlsafe(18),
        },
        compress=True,
    )
    params = {
        "client_id": client_id,
        "scope": ADS_SCOPE,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
    }
    with transaction.atomic():
        audit_record(actor=actor, action="amazon.ads_consent_start", target=connection)
    return f"{settings.ADS_CONSENT_URLS[connection.region]}?{urlencode(params)}"


def _consume_ads_state(*, tenant: Tenant, actor: User | None, state: str) -> str:
    """The connection public id the verified Ads consent `state` names (see _consume_signed_state)."""
    return _consume_signed_state(
        tenant=tenant,
        actor=actor,
        state=state,
        salt=ADS_CONSENT_SALT,
        nonce_key=ADS_CONSENT_NONCE_KEY,
        key="c",
        what="Amazon Ads authorisation",
        again="Start again from the Advertising page.",
    )


def ads_consent_callback(
    *,
    tenant: Tenant,
    actor: User | None,
    actor_role: str,
    state: str,
    code: str,
    redirect_uri: str,
    scope: str = ADS_SCOPE,
) -> SellerConnection:
    """Amazon sent the seller back from the Ads consent page: verify `state`, exchange the authorization
    `code` at LWA (`grant_type=authorization_code`, the same `redirect_uri`, the app that holds Ads grants
    for this connection), then verify and store the grant like `ads_connect`."""
    from amazon.ads_tokens import ads_lwa_credentials

    _require(actor_role)
    public_id = _consume_ads_state(tenant=tenant, actor=actor, state=state)
    connection = SellerConnection.objects.filter(tenant=tenant, public_id=public_id).first()
    if connection is None:
        raise AmazonConnectionError("This connection no longer exists.", code="not_found", status=404)
    _require_ads_connection(tenant, connection)
    if not code:
        raise AmazonConnectionError("Amazon sent no authorisation code. Start again.")
    if scope and ADS_SCOPE not in scope.split():
        raise AmazonConnectionError(
            f"Amazon granted another scope than {ADS_SCOPE}. Start again.", code="authorization_refused"
        )
    client_id, client_secret = ads_lwa_credentials(connection)
    answer, refresh_token = _exchange_authorization_code(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        again="Start again.",
    )
    return _ads_verify_and_store(
        tenant=tenant,
        actor=actor,
        connection=connection,
        token=refresh_token,
        via="consent",
        first_token=answer,
    )


def ads_mark_needs_reauthorization(
    *, connection: SellerConnection, refused_ciphertext: str, detail: str
) -> None:
    """Amazon refused the connection's Ads grant (revoked or expired). Recorded at once in its own
    transaction, audited as the system, whatever happens to the caller's transaction; the SP-API side is
    untouched. Only the grant that was refused is marked: a copy under verification (ads_connect) or a grant
    replaced meanwhile has another ciphertext and stays as it is."""
    if not refused_ciphertext or connection.pk is None:
        return
    tenant = connection.tenant
    now = timezone.now()

    def write() -> None:
        with tenant_context(tenant):
            updated = SellerConnection.objects.filter(
                pk=connection.pk,
                ads_refresh_token_encrypted=refused_ciphertext,
                ads_reauthorization_required_at=None,
            ).update(ads_reauthorization_required_at=now, ads_status_detail=detail[:500], updated_at=now)
            if updated:
                reauthorization_notice_on_commit(connection, "ads")
                audit_record(
                    actor=None,
                    action="amazon.ads_needs_reauthorization",
                    target=connection,
                    changes={"ads_status": ["active", "needs_reauthorization"], "reason": detail[:200]},
                )

    if transaction.get_connection().in_atomic_block:
        _in_own_transaction(write)
    # Also in the caller's transaction (a no-op when the own transaction committed it), for a row that one
    # could not see yet.
    write()
    if connection.ads_refresh_token_encrypted == refused_ciphertext:
        connection.ads_reauthorization_required_at = connection.ads_reauthorization_required_at or now
        connection.ads_status_detail = detail[:500]


@transaction.atomic
def ads_disconnect(
    *, tenant: Tenant, actor: User | None, actor_role: str, connection: SellerConnection
) -> SellerConnection:
    """Withdraw the Ads API authorisation: the Ads refresh token is deleted at once, the connection's
    Ads profiles are disabled (kept for history) and the cached Ads access token is dropped on commit.
    The SP-API side is untouched. Harmless when Ads is not connected."""
    from amazon.ads_tokens import invalidate_ads_access_token
    from amazon.models import AdsProfile

    _require(actor_role)
    if connection.tenant_id != tenant.pk:
        raise AmazonConnectionError("No such connection.", code="not_found", status=404)
    locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
    disabled = AdsProfile.objects.filter(connection=locked, is_enabled=True).update(
        is_enabled=False, updated_at=timezone.now()
    )
    if locked.ads_refresh_token_encrypted or disabled or locked.ads_reauthorization_required_at:
        previous = locked.ads_state
        locked.set_secret("ads_refresh_token", None)
        locked.ads_reauthorization_required_at = None
        locked.ads_status_detail = ""
        locked.save(
            update_fields=[
                *ADS_SECRET_COLUMNS,
                "ads_reauthorization_required_at",
                "ads_status_detail",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action="amazon.ads_disconnect",
            target=locked,
            changes={
                "ads_credentials": "(deleted)",
                "ads_status": [previous, locked.ads_state],
                "ads_profiles_disabled": disabled,
            },
        )
    public_id = locked.public_id
    transaction.on_commit(lambda: invalidate_ads_access_token(public_id))
    return locked
