"""Test factories shared by every suite. Plain functions: explicit and easy to read."""

from __future__ import annotations

import itertools
from typing import Any

from accounts.models import ApiKey, Membership, User
from accounts.roles import Role
from tenants.models import Tenant

_sequence = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


def make_tenant(name: str | None = None, **fields: Any) -> Tenant:
    n = next(_sequence)
    return Tenant.objects.create(
        name=name or f"Company {n}", slug=fields.pop("slug", f"company-{n}"), **fields
    )


def make_user(email: str | None = None, password: str = PASSWORD, **fields: Any) -> User:
    n = next(_sequence)
    return User.objects.create_user(email=email or f"user{n}@example.com", password=password, **fields)


def make_member(tenant: Tenant, role: str = Role.OWNER, user: User | None = None, **user_fields: Any) -> User:
    user = user or make_user(**user_fields)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def make_api_key(tenant: Tenant, role: str = Role.ADMIN, **fields: Any) -> tuple[ApiKey, str]:
    """An API key and its raw value (what the integrator would have been shown once)."""
    from accounts.services import api_key_create
    from tenants.context import tenant_context

    with tenant_context(tenant):
        return api_key_create(
            tenant=tenant,
            actor=None,
            actor_role=Role.OWNER,
            name=fields.pop("name", "test key"),
            role=role,
            **fields,
        )
