"""Reads about users, memberships and keys."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Membership, User
from tenants.middleware import SESSION_KEY


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
