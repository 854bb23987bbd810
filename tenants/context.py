"""The tenant context: which company the current code works for.

Entered in exactly three places: the web request (tenants.middleware and accounts.authentication for
the API), the Celery base task (tenants.tasks.TenantTask) and management commands (`--tenant`).

Two locks are set together: a context variable that the `TenantOwned` manager reads (fail closed: no
tenant, no query), and the PostgreSQL setting `app.tenant_id` that the row-level security policies
read. The setting is transaction-local (`set_config(..., true)`), so it disappears when the transaction
ends and a pooled connection can never carry it into someone else's work.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connections, transaction

if TYPE_CHECKING:
    from tenants.models import Tenant

SETTING = "app.tenant_id"

_current: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar("current_tenant", default=None)


class TenantContextMissing(RuntimeError):
    """Tenant-owned data was touched without a tenant: a bug, never a reason to show all rows."""


def current_tenant() -> Tenant | None:
    return _current.get()


def require_tenant() -> Tenant:
    tenant = _current.get()
    if tenant is None:
        raise TenantContextMissing("No tenant is active; tenant-owned data is out of reach.")
    return tenant


def _set_database_tenant(tenant_id: int | None, using: str = "default") -> None:
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TenantContextMissing("The tenant can only be set inside a transaction (transaction-local).")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true)", [SETTING, "" if tenant_id is None else str(tenant_id)]
        )


def activate(tenant: Tenant) -> None:
    """Set the tenant for the rest of the current transaction (used where a `with` block cannot wrap
    the work, i.e. DRF authentication inside the request transaction)."""
    _set_database_tenant(tenant.pk)
    _current.set(tenant)


@contextlib.contextmanager
def tenant_context(tenant: Tenant) -> Iterator[Tenant]:
    """Work for `tenant` inside one transaction; both locks are released on exit."""
    previous = _current.get()
    with transaction.atomic():
        _set_database_tenant(tenant.pk)
        token = _current.set(tenant)
        try:
            yield tenant
        except BaseException:
            # The atomic block rolls back (a savepoint when nested), taking the setting with it. No
            # query here: the transaction may be aborted, and a second error would hide the first.
            _current.reset(token)
            raise
        _current.reset(token)
        # A released savepoint keeps SET LOCAL values: put back the outer tenant (or none) explicitly.
        _set_database_tenant(previous.pk if previous else None)


@contextlib.contextmanager
def no_tenant() -> Iterator[None]:
    """Explicitly leave any tenant (for code that must only touch platform-wide tables)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)
