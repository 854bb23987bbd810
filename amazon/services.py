"""Writes about seller connections. Keyword-only, one transaction, permission checked, audited.

Secrets enter only as arguments of these functions and leave only through `SellerConnection.get_secret`;
they are never written to the audit log (only that they changed), logs or task arguments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Permission, role_allows
from amazon.models import SellerConnection
from tenants.audit import audit_record
from tenants.context import tenant_context

logger = logging.getLogger(__name__)


class AmazonConnectionError(Exception):
    """A refusal the user caused; `code` is stable for the API, the message is for people."""

    def __init__(self, message: str, *, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def _require(actor_role: str) -> None:
    if not role_allows(actor_role, Permission.CONNECT_AMAZON):
        raise AmazonConnectionError("Your role does not allow this.", code="permission_denied", status=403)


@transaction.atomic
def seller_connection_disconnect(
    *, connection: SellerConnection, actor: User | None, actor_role: str
) -> SellerConnection:
    """Disconnect: forget every secret at once, stop using the cached access token, and record when
    the account's Amazon data is to be purged (AMAZON_DATA_RETENTION_DAYS later)."""
    from amazon.tokens import invalidate_access_token

    _require(actor_role)
    locked = SellerConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
    if locked.status == SellerConnection.Status.DISCONNECTED:
        return locked
    now = timezone.now()
    previous = locked.status
    columns = locked.clear_secrets()
    locked.status = SellerConnection.Status.DISCONNECTED
    locked.status_detail = ""
    locked.disconnected_at = now
    locked.purge_after = now + timedelta(days=settings.AMAZON_DATA_RETENTION_DAYS)
    locked.save(
        update_fields=[*columns, "status", "status_detail", "disconnected_at", "purge_after", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="amazon.connection_disconnect",
        target=locked,
        changes={"status": [previous, locked.status], "purge_after": locked.purge_after.isoformat()},
    )
    public_id = locked.public_id
    transaction.on_commit(lambda: invalidate_access_token(public_id))
    return locked


def _in_own_transaction(write: Callable[[], None]) -> bool:
    """Run `write` on a separate database connection (its own thread), so it commits even when the
    caller's transaction later rolls back. Returns False when it could not (e.g. a lock held by the
    caller's own transaction), so the caller can fall back to writing in its transaction."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                # Never wait for a lock our caller holds: it is waiting for us.
                cursor.execute("SET LOCAL lock_timeout = '3s'")
                write()
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, name="amazon-own-transaction")
    worker.start()
    worker.join()
    if failures:
        if isinstance(failures[0], DatabaseError):
            logger.warning("own-transaction write failed: %s", type(failures[0]).__name__)
            return False
        raise failures[0]
    return True


def seller_connection_mark_needs_reauthorization(*, connection: SellerConnection, detail: str) -> None:
    """Amazon refused the connection's grant (revoked or expired refresh token). Recorded at once in
    its own transaction, audited as the system, whatever happens to the caller's transaction."""
    tenant = connection.tenant

    def write() -> None:
        with tenant_context(tenant):
            updated = SellerConnection.objects.filter(
                pk=connection.pk, status=SellerConnection.Status.ACTIVE
            ).update(
                status=SellerConnection.Status.NEEDS_REAUTHORIZATION,
                status_detail=detail[:500],
                updated_at=timezone.now(),
            )
            if updated:
                audit_record(
                    actor=None,
                    action="amazon.connection_needs_reauthorization",
                    target=connection,
                    changes={
                        "status": [SellerConnection.Status.ACTIVE, "needs_reauthorization"],
                        "reason": detail[:200],
                    },
                )

    if transaction.get_connection().in_atomic_block:
        _in_own_transaction(write)
    # Also in the caller's transaction: a no-op when the own transaction committed it (the status is
    # no longer active), and the record when that one could not see the row (not committed yet).
    write()
    connection.status = SellerConnection.Status.NEEDS_REAUTHORIZATION
    connection.status_detail = detail[:500]
