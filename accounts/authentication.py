"""API authentication: dashboard bearer tokens and integrators' API keys.

Both arrive as `Authorization: Bearer <token>`; the prefix tells them apart. On success the tenant is
activated inside the request transaction (tenants.middleware opened it), and `request.auth` is an
`AuthContext` carrying tenant, role and who acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import tokens
from accounts.models import ApiKey, Membership, User
from accounts.services import API_KEY_PREFIX, hash_secret
from tenants import context
from tenants.audit import RequestInfo, request_info
from tenants.models import Tenant

LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class AuthContext:
    tenant: Tenant
    role: str
    user: User | None = None
    api_key: ApiKey | None = None


def _bearer(request: Request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


class DashboardTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, AuthContext] | None:
        raw = _bearer(request)
        if raw is None or not raw.startswith(tokens.PREFIX):
            return None
        record = tokens.token_check(raw)
        if record is None:
            raise exceptions.AuthenticationFailed(
                "This session token has expired or was revoked; sign in again."
            )
        membership = (
            Membership.objects.select_related("user", "tenant")
            .filter(
                user_id=record.user_id,
                tenant_id=record.tenant_id,
                user__is_active=True,
                tenant__is_active=True,
            )
            .first()
        )
        if membership is None:
            raise exceptions.AuthenticationFailed("You are no longer a member of this company.")
        if membership.tenant.require_mfa and not record.mfa_verified:
            raise exceptions.AuthenticationFailed(
                "This company requires two-factor authentication; sign in again with your code."
            )
        context.activate(membership.tenant)
        return membership.user, AuthContext(
            tenant=membership.tenant, role=membership.role, user=membership.user
        )

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AnonymousUser, AuthContext] | None:
        raw = _bearer(request)
        if raw is None or not raw.startswith(API_KEY_PREFIX):
            return None
        if len(raw) > 200:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = ApiKey.objects.select_related("tenant").filter(key_hash=hash_secret(raw)).first()
        if key is None or not key.tenant.is_active:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        if key.expires_at is not None and key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        context.activate(key.tenant)
        info = request_info.get()
        request_info.set(RequestInfo(ip_address=info.ip_address, user_agent=info.user_agent, api_key=key))
        return AnonymousUser(), AuthContext(tenant=key.tenant, role=key.role, api_key=key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
