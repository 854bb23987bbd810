"""The audited cross-tenant connection.

The `platform` database alias connects as a role with BYPASSRLS. Code may use it only through
`platform_queryset()`, which records who used it, why and when (PlatformAccess) before handing out
the queryset. Allowed callers are listed in tests/test_escape_hatch.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db.models import Model, QuerySet

from tenants.models import PlatformAccess

if TYPE_CHECKING:
    from accounts.models import User

ALIAS = "platform"
M = TypeVar("M", bound=Model)


def platform_access_record(
    *, actor: User | None, reason: str, detail: str = "", ip_address: str | None = None
) -> None:
    PlatformAccess.objects.using(ALIAS).create(
        actor=actor,
        actor_label=actor.email if actor is not None else "system",
        reason=reason[:200],
        detail=detail[:500],
        ip_address=ip_address,
    )


def platform_queryset(
    model: type[M], *, actor: User | None, reason: str, detail: str = "", ip_address: str | None = None
) -> QuerySet[M]:
    """All tenants' rows of `model`, read through the BYPASSRLS role; the access is recorded first."""
    platform_access_record(actor=actor, reason=reason, detail=detail, ip_address=ip_address)
    return model.all_tenants.using(ALIAS)  # type: ignore[attr-defined]
