"""Account services: permission checks, audit in the same transaction, and clean refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm, get_objects_for_user

from accounts.models import ApiKey, Invitation, Membership
from accounts.roles import ROLE_PERMISSIONS, Permission, Role, can_assign, role_allows
from accounts.services import (
    AccountError,
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    invitation_find,
    membership_change_role,
    membership_remove,
    tenant_set_require_mfa,
    user_update_preferences,
)
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_member, make_tenant, make_user

pytestmark = pytest.mark.django_db


def test_permission_matrix_is_what_the_docs_say() -> None:
    assert ROLE_PERMISSIONS[Role.OWNER] == frozenset(Permission)
    assert not role_allows(Role.ADMIN, Permission.MANAGE_TENANT)
    assert role_allows(Role.ADMIN, Permission.MANAGE_MEMBERS)
    assert role_allows(Role.OPERATOR, Permission.CHANGE_AUTOMATION)
    assert not role_allows(Role.OPERATOR, Permission.MANAGE_API_KEYS)
    assert role_allows(Role.ANALYST, Permission.SEE_MONEY)
    assert not role_allows(Role.ANALYST, Permission.CHANGE_AUTOMATION)
    assert not role_allows(Role.VIEWER, Permission.SEE_MONEY)
    assert can_assign(Role.OWNER, Role.OWNER) and not can_assign(Role.ADMIN, Role.OWNER)
    assert not can_assign(Role.OPERATOR, Role.VIEWER)


def test_invitation_round_trip_is_audited_and_emailed(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    with tenant_context(tenant):
        with django_capture_on_commit_callbacks(execute=True):
            invitation, raw = invitation_create(
                tenant=tenant,
                actor=owner,
                actor_role=Role.OWNER,
                email="New.Person@Example.com",
                role=Role.ANALYST,
            )
        assert invitation.email == "new.person@example.com"
        assert raw not in invitation.token_hash
        assert len(mail.outbox) == 1 and raw in mail.outbox[0].body
        found = invitation_find(raw_token=raw)
        assert found == invitation
        newcomer = make_user(email="new.person@example.com")
        membership = invitation_accept(invitation=found, user=newcomer)
        assert membership.role == Role.ANALYST
        assert invitation_find(raw_token=raw) is None  # used
        actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
        assert actions == ["member.invite", "member.join"]


def test_invitation_for_someone_else_or_expired_is_refused() -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    with tenant_context(tenant):
        invitation, raw = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="a@example.com", role=Role.VIEWER
        )
        with pytest.raises(AccountError, match="another email"):
            invitation_accept(invitation=invitation, user=make_user(email="b@example.com"))
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert invitation_find(raw_token=raw) is None
        assert invitation_find(raw_token="forged") is None
    assert Membership.objects.filter(tenant=tenant).count() == 1


def test_roles_that_may_not_manage_members_are_refused_and_nothing_is_written() -> None:
    tenant = make_tenant()
    operator = make_member(tenant, Role.OPERATOR)
    with tenant_context(tenant):
        with pytest.raises(AccountError) as refused:
            invitation_create(
                tenant=tenant,
                actor=operator,
                actor_role=Role.OPERATOR,
                email="x@example.com",
                role=Role.VIEWER,
            )
        assert refused.value.status == 403
        assert Invitation.objects.count() == 0
        assert AuditEvent.objects.count() == 0


def test_admin_cannot_make_owners_and_last_owner_is_kept() -> None:
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    admin = make_member(tenant, Role.ADMIN)
    owner_membership = Membership.objects.get(user=owner)
    admin_membership = Membership.objects.get(user=admin)
    with tenant_context(tenant):
        with pytest.raises(AccountError):
            membership_change_role(
                membership=admin_membership, actor=admin, actor_role=Role.ADMIN, role=Role.OWNER
            )
        with pytest.raises(AccountError, match="at least one owner"):
            membership_change_role(
                membership=owner_membership, actor=owner, actor_role=Role.OWNER, role=Role.ADMIN
            )
        with pytest.raises(AccountError, match="at least one owner"):
            membership_remove(membership=owner_membership, actor=owner, actor_role=Role.OWNER)
        membership_change_role(
            membership=admin_membership, actor=owner, actor_role=Role.OWNER, role=Role.VIEWER
        )
        assert AuditEvent.objects.get(action="member.role_change").changes == {"role": ["admin", "viewer"]}
    assert Membership.objects.get(user=owner).role == Role.OWNER


def test_api_key_is_stored_hashed_and_audit_never_holds_it() -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    with tenant_context(tenant):
        key, raw = api_key_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, name="ERP", role=Role.VIEWER
        )
        assert raw.startswith("sp_key_") and raw not in key.key_hash
        assert not ApiKey.objects.filter(key_hash=raw).exists()
        api_key_revoke(key=key, actor=owner, actor_role=Role.OWNER)
        for event in AuditEvent.objects.all():
            assert raw not in str(event.changes)
    with pytest.raises(AccountError), tenant_context(tenant):
        api_key_create(
            tenant=tenant,
            actor=owner,
            actor_role=Role.OWNER,
            name="old",
            role=Role.VIEWER,
            expires_at=timezone.now() - timedelta(days=1),
        )


def test_preferences_are_validated() -> None:
    user = make_user()
    user_update_preferences(
        user=user,
        theme="dark",
        dashboard_layout={"density": "compact"},
        notification_preferences={"order_alerts": False},
    )
    user.refresh_from_db()
    assert (user.theme, user.dashboard_layout, user.notification_preferences["order_alerts"]) == (
        "dark",
        {"density": "compact"},
        False,
    )
    for bad in (
        {"theme": "neon"},
        {"dashboard_layout": {"density": "x"}},
        {"notification_preferences": {"spam": True}},
        {"notification_preferences": {"order_alerts": "yes"}},
    ):
        with pytest.raises(AccountError):
            user_update_preferences(user=user, **bad)


def test_only_owner_can_require_mfa() -> None:
    tenant = make_tenant()
    admin = make_member(tenant, Role.ADMIN)
    with tenant_context(tenant), pytest.raises(AccountError):
        tenant_set_require_mfa(tenant=tenant, actor=admin, actor_role=Role.ADMIN, require_mfa=True)
    owner = make_member(tenant, Role.OWNER)
    with tenant_context(tenant):
        tenant_set_require_mfa(tenant=tenant, actor=owner, actor_role=Role.OWNER, require_mfa=True)
    tenant.refresh_from_db()
    assert tenant.require_mfa


def test_guardian_grants_reach_single_objects() -> None:
    tenant = make_tenant()
    viewer = make_member(tenant, Role.VIEWER)
    owner = make_member(tenant)
    with tenant_context(tenant):
        first, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="1@example.com", role=Role.VIEWER
        )
        second, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="2@example.com", role=Role.VIEWER
        )
        assign_perm("accounts.view_invitation", viewer, first)
        assert viewer.has_perm("accounts.view_invitation", first)
        assert not viewer.has_perm("accounts.view_invitation", second)
        visible = get_objects_for_user(viewer, "accounts.view_invitation", klass=Invitation.objects.all())
        assert list(visible) == [first]


def test_reinviting_revokes_the_older_invitation_with_an_audit_event() -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    with tenant_context(tenant):
        first, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="p@example.com", role=Role.VIEWER
        )
        invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="p@example.com", role=Role.ANALYST
        )
        first.refresh_from_db()
        assert first.revoked_at is not None
        revoke = AuditEvent.objects.get(action="member.invite_revoke")
        assert revoke.target_id == str(first.public_id)


def test_user_create_refuses_a_taken_email() -> None:
    from accounts.services import user_create

    user_create(email="Taken@Example.com", password="long-enough-pass-1")
    with pytest.raises(AccountError) as refused:
        user_create(email="taken@example.com", password="long-enough-pass-2")
    assert refused.value.code == "email_taken"
