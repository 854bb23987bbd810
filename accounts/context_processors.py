"""What every dashboard page needs: the current tenant, the user's other tenants, the theme."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def dashboard(request: HttpRequest) -> dict[str, Any]:
    from accounts.selectors import memberships_of

    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)
    if user is None or not user.is_authenticated:
        return {"current_membership": None, "current_tenant": None, "theme": "system"}
    return {
        "current_membership": membership,
        "current_tenant": membership.tenant if membership else None,
        "user_memberships": memberships_of(user),
        "theme": user.theme,
    }
