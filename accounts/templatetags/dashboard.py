"""Template helpers for dashboard pages: `{% if current_membership|allows:"manage_members" %}`."""

from __future__ import annotations

from django import template

from accounts.roles import Permission, role_allows

register = template.Library()


@register.filter
def allows(membership: object, permission: str) -> bool:
    role = getattr(membership, "role", None)
    return bool(role) and role_allows(role, Permission(permission))  # type: ignore[arg-type]
