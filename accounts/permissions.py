"""API permissions: a member of the tenant (by token or key) whose role allows what the view needs.

A view names what it needs per method in `required_permissions`, e.g.
`{"GET": Permission.VIEW_AUDIT_LOG}`; methods not listed need only membership.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authentication import AuthContext
from accounts.roles import Permission, role_allows


def auth_context(request: Request) -> AuthContext:
    assert isinstance(request.auth, AuthContext)
    return request.auth


class IsTenantMember(BasePermission):
    message = "You do not have permission to do this in this company."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, AuthContext):
            return False
        needed: Permission | None = getattr(view, "required_permissions", {}).get(request.method)
        return needed is None or role_allows(request.auth.role, needed)
