"""Writes about members, invitations, API keys, preferences and company settings.

Every function here: keyword-only, runs in one transaction, takes the acting user (None for an API
key, whose identity comes from the request context), checks the actor's right to do it, and writes
an audit event in the same transaction. Errors a user can cause raise `AccountError` with a message
meant for them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey, Invitation, Membership, User
from accounts.roles import Permission, Role, can_assign, role_allows
from tenants.audit import audit_record
from tenants.models import Tenant


class AccountError(Exception):
    """A refusal the user caused; `code` is stable for the API, the message is for people."""

    def __init__(self, message: str, *, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def hash_secret(raw: str) -> str:
    """SHA-256 of a high-entropy random secret (API keys, invitation tokens); fine without a salt."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _require(actor_role: str, permission: Permission) -> None:
    if not role_allows(actor_role, permission):
        raise AccountError("Your role does not allow this.", code="permission_denied", status=403)


def _lock_owners(tenant: Tenant) -> int:
    """Lock every owner membership of the company (in one order, so two concurrent changes queue up
    instead of both seeing two owners) and return how many there are."""
    return len(Membership.objects.filter(tenant=tenant, role=Role.OWNER).order_by("pk").select_for_update())


# --- Invitations ----------------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, actor: User | None, actor_role: str, email: str, role: str, accept_url_base: str = ""
) -> tuple[Invitation, str]:
    """Invite `email` as `role`. Returns the invitation and its raw token (emailed, never stored)."""
    _require(actor_role, Permission.MANAGE_MEMBERS)
    if role not in Role.values:
        raise AccountError(f"Unknown role {role!r}.", code="invalid_role")
    if not can_assign(actor_role, role):
        raise AccountError("Only an owner can invite another owner.", code="permission_denied", status=403)
    email = email.strip().lower()
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise AccountError("This person is already a member.", code="already_member", status=409)
    now = timezone.now()
    for pending in Invitation.objects.filter(email__iexact=email, accepted_at=None, revoked_at=None):
        pending.revoked_at = now
        pending.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=actor,
            action="member.invite_revoke",
            target=pending,
            changes={"reason": "replaced by a new invitation"},
        )
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=hash_secret(raw),
        invited_by=actor,
        expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    audit_record(
        actor=actor, action="member.invite", target=invitation, changes={"email": email, "role": role}
    )
    link = f"{accept_url_base}/invitations/{tenant.public_id}/{raw}/"
    inviter = actor.display_name if actor else "Your team"
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You are invited to {tenant.name} on SellerPilot",
            message=(
                f"{inviter} invited you to join {tenant.name} as {Role(role).label}.\n\n"
                f"Accept the invitation (valid for {settings.INVITATION_VALID_DAYS} days):\n{link}\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    )
    return invitation, raw


def invitation_find(*, raw_token: str) -> Invitation | None:
    """The pending invitation for a token, in the current tenant (the link names the tenant)."""
    invitation = Invitation.objects.filter(token_hash=hash_secret(raw_token)).first()
    if invitation is None or not invitation.is_pending:
        return None
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if not invitation.is_pending:
        raise AccountError("This invitation has expired or was already used.", code="invitation_invalid")
    if user.email.lower() != invitation.email.lower():
        raise AccountError(
            "This invitation was sent to another email address.", code="invitation_wrong_user", status=403
        )
    membership, _ = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at", "updated_at"])
    audit_record(
        actor=user,
        action="member.join",
        target=membership,
        target_label=user.email,
        changes={"role": membership.role},
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User | None, actor_role: str) -> None:
    _require(actor_role, Permission.MANAGE_MEMBERS)
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at", "updated_at"])
        audit_record(actor=actor, action="member.invite_revoke", target=invitation)


# --- Members --------------------------------------------------------------------------------------------


@transaction.atomic
def membership_change_role(
    *, membership: Membership, actor: User | None, actor_role: str, role: str
) -> Membership:
    _require(actor_role, Permission.MANAGE_MEMBERS)
    if role not in Role.values:
        raise AccountError(f"Unknown role {role!r}.", code="invalid_role")
    if not can_assign(actor_role, role) or not can_assign(actor_role, membership.role):
        raise AccountError("Only an owner can make or change an owner.", code="permission_denied", status=403)
    owners = _lock_owners(membership.tenant)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and role != Role.OWNER and owners <= 1:
        raise AccountError("A company needs at least one owner.", code="last_owner", status=409)
    before = locked.role
    locked.role = role
    locked.save(update_fields=["role", "updated_at"])
    audit_record(
        actor=actor,
        action="member.role_change",
        target=locked,
        target_label=locked.user.email,
        changes={"role": [before, role]},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User | None, actor_role: str) -> None:
    _require(actor_role, Permission.MANAGE_MEMBERS)
    if not can_assign(actor_role, membership.role):
        raise AccountError("Only an owner can remove an owner.", code="permission_denied", status=403)
    owners = _lock_owners(membership.tenant)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and owners <= 1:
        raise AccountError("A company needs at least one owner.", code="last_owner", status=409)
    audit_record(
        actor=actor,
        action="member.remove",
        target=locked,
        target_label=locked.user.email,
        changes={"role": locked.role},
    )
    locked.delete()


# --- API keys -------------------------------------------------------------------------------------------

API_KEY_PREFIX = "sp_key_"


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    actor: User | None,
    name: str,
    role: str,
    actor_role: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the raw value, which is shown once and never stored."""
    _require(actor_role, Permission.MANAGE_API_KEYS)
    if role not in Role.values:
        raise AccountError(f"Unknown role {role!r}.", code="invalid_role")
    if not can_assign(actor_role, role):
        raise AccountError("Only an owner can create an owner key.", code="permission_denied", status=403)
    if expires_at is not None and expires_at <= timezone.now():
        raise AccountError("The expiry date must be in the future.", code="invalid_expiry")
    name = name.strip()
    if not name:
        raise AccountError("Give the key a name.", code="invalid_name")
    prefix = secrets.token_hex(4)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name[:100],
        prefix=prefix,
        key_hash=hash_secret(raw),
        role=role,
        created_by=actor,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="api_key.create",
        target=key,
        changes={
            "name": key.name,
            "role": role,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: User | None, actor_role: str) -> ApiKey:
    _require(actor_role, Permission.MANAGE_API_KEYS)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoke", target=key)
    return key


# --- Preferences and company settings -------------------------------------------------------------------

NOTIFICATION_KINDS = ("order_alerts", "account_notifications", "report_delivery", "automation_alerts")
DASHBOARD_LAYOUTS = ("comfortable", "compact")


@transaction.atomic
def user_update_preferences(
    *,
    user: User,
    full_name: str | None = None,
    theme: str | None = None,
    dashboard_layout: dict[str, Any] | None = None,
    notification_preferences: dict[str, bool] | None = None,
) -> User:
    """Profile and preferences belong to the person (no tenant); audited in the current tenant if any."""
    changes: dict[str, Any] = {}
    if full_name is not None and full_name.strip() != user.full_name:
        user.full_name = full_name.strip()[:200]
        changes["full_name"] = user.full_name
    if theme is not None:
        if theme not in User.Theme.values:
            raise AccountError(f"Unknown theme {theme!r}.", code="invalid_theme")
        if theme != user.theme:
            user.theme = theme
            changes["theme"] = theme
    if dashboard_layout is not None:
        density = dashboard_layout.get("density", "comfortable")
        if density not in DASHBOARD_LAYOUTS or set(dashboard_layout) - {"density"}:
            raise AccountError(
                "Dashboard layout takes only density: comfortable or compact.", code="invalid_layout"
            )
        if dashboard_layout != user.dashboard_layout:
            user.dashboard_layout = dict(dashboard_layout)
            changes["dashboard_layout"] = user.dashboard_layout
    if notification_preferences is not None:
        unknown = set(notification_preferences) - set(NOTIFICATION_KINDS)
        if unknown or not all(isinstance(v, bool) for v in notification_preferences.values()):
            raise AccountError(
                f"Notification preferences are on/off for: {', '.join(NOTIFICATION_KINDS)}.",
                code="invalid_notifications",
            )
        merged = {**user.notification_preferences, **notification_preferences}
        if merged != user.notification_preferences:
            user.notification_preferences = merged
            changes["notification_preferences"] = merged
    if changes:
        user.save(
            update_fields=[
                f
                for f in ("full_name", "theme", "dashboard_layout", "notification_preferences")
                if f in changes
            ]
        )
        from tenants.context import current_tenant

        if current_tenant() is not None:
            audit_record(
                actor=user, action="user.preferences", target=user, target_label=user.email, changes=changes
            )
    return user


@transaction.atomic
def tenant_set_require_mfa(
    *, tenant: Tenant, actor: User | None, actor_role: str, require_mfa: bool
) -> Tenant:
    _require(actor_role, Permission.MANAGE_TENANT)
    if tenant.require_mfa != require_mfa:
        tenant.require_mfa = require_mfa
        tenant.save(update_fields=["require_mfa", "updated_at"])
        audit_record(
            actor=actor, action="tenant.require_mfa", target=tenant, changes={"require_mfa": require_mfa}
        )
    return tenant


def user_create(*, email: str, password: str, full_name: str = "") -> User:
    """A new person (invitation sign-up, demo seed). Raises AccountError if the email is taken."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError(
            "An account with this email address already exists; sign in instead.",
            code="email_taken",
            status=409,
        )
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, full_name=full_name.strip()[:200])
    except IntegrityError as error:  # a concurrent sign-up with the same address won the race
        raise AccountError(
            "An account with this email address already exists; sign in instead.",
            code="email_taken",
            status=409,
        ) from error


@transaction.atomic
def tenant_create(*, name: str, slug: str, owner: User) -> Tenant:
    """A new company with `owner` as its first owner (signup, demo seed, staff)."""
    from tenants.context import tenant_context

    tenant = Tenant.objects.create(name=name, slug=slug)
    Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
    with tenant_context(tenant):
        audit_record(actor=owner, action="tenant.create", target=tenant)
    return tenant
