"""Writing the audit log. Every service that changes tenant data calls `audit_record` in its transaction."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models

from tenants.context import require_tenant
from tenants.models import AuditEvent

if TYPE_CHECKING:
    from accounts.models import ApiKey, User


@dataclass(frozen=True)
class RequestInfo:
    ip_address: str | None = None
    user_agent: str = ""
    api_key: ApiKey | None = None


request_info: contextvars.ContextVar[RequestInfo] = contextvars.ContextVar(
    "request_info",
    default=RequestInfo(),  # noqa: B039 - a frozen dataclass, never mutated
)

# Field names whose values are never written to the audit log, only the fact that they changed.
_SECRET_MARKERS = ("password", "secret", "token", "key_hash", "refresh")


def _redact(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: "(changed)" if any(marker in name.lower() for marker in _SECRET_MARKERS) else value
        for name, value in changes.items()
    }


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    target_label: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    info = request_info.get()
    api_key = info.api_key
    if actor is not None:
        actor_label = actor.email
    elif api_key is not None:
        actor_label = f"API key {api_key.name} ({api_key.prefix})"
    else:
        actor_label = "system"
    target_id = ""
    if target is not None:
        target_id = str(getattr(target, "public_id", None) or target.pk)
    return AuditEvent.objects.create(
        tenant=require_tenant(),
        actor=actor,
        actor_label=actor_label,
        api_key=api_key,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=target_id,
        target_label=target_label or (str(target) if target is not None else ""),
        changes=_redact(changes or {}),
        ip_address=info.ip_address,
        user_agent=info.user_agent[:500],
    )
