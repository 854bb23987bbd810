"""Reads about users, memberships and keys."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiKey, Invitation, Membership, User
from tenants.middleware import SESSION_KEY
from tenants.models import Tenant


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, tenant__is_active=True).select_related("tenant")


def membership_for_session(request: HttpRequest) -> Membership | None:
    """The membership the signed-in user is working in: the tenant chosen in the session, if the user
    still belongs to it, else their first tenant. None for anonymous users or users without one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = memberships_of(user)
    chosen = request.session.get(SESSION_KEY)
    if chosen:
        membership = memberships.filter(tenant__public_id=chosen).first()
        if membership is not None:
            return membership
    membership = memberships.order_by("created_at").first()
    if membership is not None:
        request.session[SESSION_KEY] = str(membership.tenant.public_id)
    return membership


# --- Tenant-scoped look-ups for the API -------------------------------------------------------------------
# Membership and ApiKey are platform tables without row-level security, so every query here filters by
# the tenant in the query itself; another tenant's id is simply "not found".


def members_of_tenant(tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user")


def membership_by_public_id(*, tenant: Tenant, public_id: UUID) -> Membership | None:
    return members_of_tenant(tenant).filter(public_id=public_id).first()


def api_keys_of_tenant(tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by")


def api_key_by_public_id(*, tenant: Tenant, public_id: UUID) -> ApiKey | None:
    return api_keys_of_tenant(tenant).filter(public_id=public_id).first()


def invitations_pending(tenant: Tenant) -> QuerySet[Invitation]:
    """Invitations not yet accepted, revoked or expired (tenant-owned: RLS applies as well)."""
    return Invitation.objects.filter(
        tenant=tenant, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_by_public_id(*, tenant: Tenant, public_id: UUID) -> Invitation | None:
    return Invitation.objects.filter(tenant=tenant, public_id=public_id).first()
