"""Roles and what each may do: the permission matrix (documented in docs/roles.md).

One place decides; views, the API and services ask `role_allows(role, permission)`.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


class Permission(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"  # listings, automation status, job runs
    SEE_MONEY = "see_money"  # profit, costs, fees, revenue
    CHANGE_AUTOMATION = "change_automation"  # repricing/inventory/ads rules, kill switch, reprice now
    CONNECT_AMAZON = "connect_amazon"  # add/disconnect Seller Central and Ads accounts
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    MANAGE_API_KEYS = "manage_api_keys"  # create and revoke API keys
    VIEW_AUDIT_LOG = "view_audit_log"
    HANDLE_PRIVACY = "handle_privacy"  # data-subject requests, exports, erasure
    MANAGE_TENANT = "manage_tenant"  # company settings such as "require MFA"


P = Permission
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.OWNER: frozenset(P),
    Role.ADMIN: frozenset(P) - {P.MANAGE_TENANT},
    Role.OPERATOR: frozenset({P.VIEW_DASHBOARD, P.SEE_MONEY, P.CHANGE_AUTOMATION}),
    Role.ANALYST: frozenset({P.VIEW_DASHBOARD, P.SEE_MONEY}),
    Role.VIEWER: frozenset({P.VIEW_DASHBOARD}),
}

# An admin may grant any role but owner; only an owner makes owners.
ASSIGNABLE_ROLES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Role.values),
    Role.ADMIN: frozenset(Role.values) - {Role.OWNER},
}


def role_allows(role: str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def can_assign(actor_role: str, role: str) -> bool:
    return role in ASSIGNABLE_ROLES.get(actor_role, frozenset())
