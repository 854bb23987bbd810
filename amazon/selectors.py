"""Reads about seller connections, scoped to the active tenant (the manager fails closed without one).

Narrowing with django-guardian: a member who holds `amazon.view_sellerconnection` on one or more of
the company's connections (an object grant) sees only those; a member without any grant sees every
connection their role allows. Granting a connection therefore *restricts* a member to it, which is
what the seller asks for ("this VA handles only our EU account").
"""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.models import User
from amazon.models import SellerConnection
from amazon.ratelimit import QuotaState, quota_state
from tenants.models import Tenant

VIEW_PERMISSION = "amazon.view_sellerconnection"


def seller_connection_list(
    *, tenant: Tenant, user: User | None = None, include_disconnected: bool = False
) -> QuerySet[SellerConnection]:
    connections = SellerConnection.objects.filter(tenant=tenant)
    if not include_disconnected:
        connections = connections.exclude(status=SellerConnection.Status.DISCONNECTED)
    if user is not None:
        granted = get_objects_for_user(
            user,
            VIEW_PERMISSION,
            klass=SellerConnection.objects.filter(tenant=tenant),
            accept_global_perms=False,
        )
        if granted.exists():
            connections = connections.filter(pk__in=granted.values("pk"))
    return connections.order_by("created_at", "id")


def seller_connection_get(
    *, tenant: Tenant, public_id: UUID | str, user: User | None = None
) -> SellerConnection:
    """The connection, or SellerConnection.DoesNotExist (a 404 for the caller) when it belongs to
    another company or the member is restricted to other connections."""
    return seller_connection_list(tenant=tenant, user=user, include_disconnected=True).get(
        public_id=public_id
    )


def seller_connection_quota(*, connection: SellerConnection) -> QuotaState:
    """Tokens left, rates and recent throttling per operation, for the dashboard."""
    return quota_state(connection)
