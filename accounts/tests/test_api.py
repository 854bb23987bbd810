"""The accounts REST API: what each role may do, what every change leaves in the audit log, and that
another company's ids are simply not found."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Invitation, Membership, User
from accounts.roles import Role
from accounts.services import invitation_create
from accounts.tokens import token_issue
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.factories import make_api_key, make_member, make_tenant, make_user

ROLES = [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER]
MANAGERS = {Role.OWNER, Role.ADMIN}  # roles with manage_members and manage_api_keys


def user_client(user: User, tenant: Tenant, session_key: str = "session-1") -> APIClient:
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key=session_key)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def key_client(raw: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def actions(tenant: Tenant) -> list[str]:
    with tenant_context(tenant):
        return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def invitations(tenant: Tenant) -> list[Invitation]:
    with tenant_context(tenant):
        return list(Invitation.objects.order_by("id"))


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant(name="Acme Sellers")


@pytest.fixture
def owner(tenant: Tenant) -> User:
    return make_member(tenant, Role.OWNER, full_name="Olivia Owner")


@pytest.fixture
def outsider_tenant() -> Tenant:
    other = make_tenant(name="Other Co")
    make_member(other, Role.OWNER)
    return other


# --- /me ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_me_shows_the_signed_in_person(tenant: Tenant, owner: User) -> None:
    response = user_client(owner, tenant).get("/api/v1/me")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == owner.email
    assert body["user"]["public_id"] == str(owner.public_id)
    assert body["user"]["full_name"] == "Olivia Owner"
    assert body["user"]["theme"] == "system"
    assert body["api_key"] is None
    assert body["role"] == "owner"
    assert body["tenant"] == str(tenant.public_id)


@pytest.mark.django_db
def test_me_for_an_api_key_shows_the_key_and_no_person(tenant: Tenant) -> None:
    key, raw = make_api_key(tenant, Role.ANALYST, name="Warehouse sync")
    body = key_client(raw).get("/api/v1/me").json()
    assert body["user"] is None
    assert body["api_key"]["name"] == "Warehouse sync"
    assert body["api_key"]["role"] == "analyst"
    assert body["api_key"]["public_id"] == str(key.public_id)
    assert body["role"] == "analyst"
    assert raw not in str(body)


@pytest.mark.django_db
def test_me_patch_changes_preferences_and_is_audited(tenant: Tenant, owner: User) -> None:
    response = user_client(owner, tenant).patch(
        "/api/v1/me",
        {
            "full_name": "Olivia O.",
            "theme": "dark",
            "dashboard_layout": {"density": "compact"},
            "notification_preferences": {"order_alerts": False, "report_delivery": True},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["user"]["theme"] == "dark"
    owner.refresh_from_db()
    assert owner.full_name == "Olivia O."
    assert owner.theme == "dark"
    assert owner.dashboard_layout == {"density": "compact"}
    assert owner.notification_preferences == {"order_alerts": False, "report_delivery": True}
    assert actions(tenant)[-1] == "user.preferences"


@pytest.mark.django_db
def test_me_patch_is_refused_to_an_api_key(tenant: Tenant) -> None:
    _, raw = make_api_key(tenant, Role.OWNER)
    before = actions(tenant)
    response = key_client(raw).patch("/api/v1/me", {"theme": "dark"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert actions(tenant) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"theme": "pink"},
        {"theme": "dark", "is_staff": True},
        {"email": "new@example.com"},
        {"full_name": 42},
        {"notification_preferences": {"order_alerts": "yes"}},
        {"notification_preferences": {"sms_alerts": True}},
        {"notification_preferences": ["order_alerts"]},
        {"dashboard_layout": {"density": "tiny"}},
        {"dashboard_layout": {"density": "compact", "widgets": []}},
        ["theme", "dark"],
    ],
)
def test_me_patch_refuses_bad_input_and_changes_nothing(tenant: Tenant, owner: User, body: Any) -> None:
    before = actions(tenant)
    response = user_client(owner, tenant).patch("/api/v1/me", body, format="json")
    assert_error(response, 400, "validation_error")
    owner.refresh_from_db()
    assert (owner.theme, owner.full_name, owner.email, owner.is_staff) == (
        "system",
        "Olivia Owner",
        owner.email,
        False,
    )
    assert owner.notification_preferences == {}
    assert owner.dashboard_layout == {}
    assert actions(tenant) == before


# --- /tenant --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tenant_shows_the_company_and_what_my_role_allows(tenant: Tenant) -> None:
    viewer = make_member(tenant, Role.VIEWER)
    body = user_client(viewer, tenant).get("/api/v1/tenant").json()
    assert body == {
        "public_id": str(tenant.public_id),
        "name": "Acme Sellers",
        "slug": tenant.slug,
        "require_mfa": False,
        "role": "viewer",
        "permissions": ["view_dashboard"],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_only_an_owner_may_require_mfa(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).patch("/api/v1/tenant", {"require_mfa": True}, format="json")
    tenant.refresh_from_db()
    if role == Role.OWNER:
        assert response.status_code == 200
        assert response.json()["require_mfa"] is True
        assert tenant.require_mfa is True
        assert actions(tenant)[-1] == "tenant.require_mfa"
    else:
        assert_error(response, 403, "permission_denied")
        assert tenant.require_mfa is False
        assert "tenant.require_mfa" not in actions(tenant)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", [{"require_mfa": "yes"}, {"require_mfa": 1}, {"require_mfa": True, "name": "X"}]
)
def test_tenant_patch_refuses_bad_input(tenant: Tenant, owner: User, body: dict[str, Any]) -> None:
    response = user_client(owner, tenant).patch("/api/v1/tenant", body, format="json")
    assert_error(response, 400, "validation_error")
    tenant.refresh_from_db()
    assert (tenant.require_mfa, tenant.name) == (False, "Acme Sellers")


# --- /members -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_any_member_lists_the_members_of_their_company_only(
    tenant: Tenant, owner: User, outsider_tenant: Tenant, role: str
) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).get("/api/v1/members")
    assert response.status_code == 200
    emails = {m["user"]["email"] for m in response.json()["results"]}
    assert emails == set(Membership.objects.filter(tenant=tenant).values_list("user__email", flat=True))
    assert owner.email in emails
    assert not emails & set(
        Membership.objects.filter(tenant=outsider_tenant).values_list("user__email", flat=True)
    )


@pytest.mark.django_db
def test_member_list_does_not_query_per_member(tenant: Tenant, owner: User) -> None:
    client = user_client(owner, tenant)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/members").status_code == 200
        return len(captured)

    few = queries()
    for _ in range(5):
        make_member(tenant, Role.VIEWER)
    assert queries() == few


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_role_change_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    target = make_member(tenant, Role.VIEWER)
    membership = Membership.objects.get(user=target, tenant=tenant)
    response = user_client(actor, tenant).patch(
        f"/api/v1/members/{membership.public_id}", {"role": "analyst"}, format="json"
    )
    membership.refresh_from_db()
    if role in MANAGERS:
        assert response.status_code == 200, response.content
        assert response.json()["role"] == "analyst"
        assert membership.role == Role.ANALYST
        with tenant_context(tenant):
            event = AuditEvent.objects.get(action="member.role_change")
        assert event.target_id == str(membership.public_id)
        assert event.changes == {"role": ["viewer", "analyst"]}
        assert event.actor == actor
    else:
        assert_error(response, 403, "permission_denied")
        assert membership.role == Role.VIEWER
        assert "member.role_change" not in actions(tenant)


@pytest.mark.django_db
def test_an_admin_cannot_make_or_change_owners(tenant: Tenant, owner: User) -> None:
    admin = make_member(tenant, Role.ADMIN)
    viewer = Membership.objects.get(user=make_member(tenant, Role.VIEWER), tenant=tenant)
    owner_membership = Membership.objects.get(user=owner, tenant=tenant)
    client = user_client(admin, tenant)
    assert_error(
        client.patch(f"/api/v1/members/{viewer.public_id}", {"role": "owner"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(
        client.patch(f"/api/v1/members/{owner_membership.public_id}", {"role": "viewer"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(client.delete(f"/api/v1/members/{owner_membership.public_id}"), 403, "permission_denied")
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER
    assert Membership.objects.get(pk=viewer.pk).role == Role.VIEWER


@pytest.mark.django_db
def test_the_last_owner_can_be_neither_demoted_nor_removed(tenant: Tenant, owner: User) -> None:
    membership = Membership.objects.get(user=owner, tenant=tenant)
    client = user_client(owner, tenant)
    assert_error(
        client.patch(f"/api/v1/members/{membership.public_id}", {"role": "admin"}, format="json"),
        409,
        "last_owner",
    )
    assert_error(client.delete(f"/api/v1/members/{membership.public_id}"), 409, "last_owner")
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert actions(tenant) == []

    # With a second owner, the first may step down.
    make_member(tenant, Role.OWNER)
    response = client.patch(f"/api/v1/members/{membership.public_id}", {"role": "admin"}, format="json")
    assert response.status_code == 200
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_remove_member_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    target = make_member(tenant, Role.OPERATOR)
    membership = Membership.objects.get(user=target, tenant=tenant)
    response = user_client(actor, tenant).delete(f"/api/v1/members/{membership.public_id}")
    if role in MANAGERS:
        assert response.status_code == 204
        assert not Membership.objects.filter(pk=membership.pk).exists()
        with tenant_context(tenant):
            event = AuditEvent.objects.get(action="member.remove")
        assert event.target_label == target.email
    else:
        assert_error(response, 403, "permission_denied")
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert "member.remove" not in actions(tenant)


@pytest.mark.django_db
def test_another_companys_member_is_not_found(tenant: Tenant, owner: User, outsider_tenant: Tenant) -> None:
    foreign = Membership.objects.get(tenant=outsider_tenant)
    client = user_client(owner, tenant)
    for response in (
        client.patch(f"/api/v1/members/{foreign.public_id}", {"role": "viewer"}, format="json"),
        client.delete(f"/api/v1/members/{foreign.public_id}"),
        client.delete(f"/api/v1/members/{uuid.uuid4()}"),
        client.delete("/api/v1/members/not-a-uuid"),
        client.delete("/api/v1/members/1"),
    ):
        assert_error(response, 404, "not_found")
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER
    assert actions(tenant) == []


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"role": "king"}, {}, {"role": None}, {"role": "viewer", "user": "x"}])
def test_role_change_refuses_bad_input(tenant: Tenant, owner: User, body: dict[str, Any]) -> None:
    membership = Membership.objects.get(user=make_member(tenant, Role.VIEWER), tenant=tenant)
    response = user_client(owner, tenant).patch(
        f"/api/v1/members/{membership.public_id}", body, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER


# --- /invitations ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_invite_sends_the_link_by_email_never_in_the_response(
    tenant: Tenant, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client(owner, tenant).post(
            "/api/v1/invitations", {"email": "New.Person@Example.com", "role": "analyst"}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "analyst"
    assert body["invited_by"]["email"] == owner.email
    [invitation] = invitations(tenant)
    assert str(invitation.public_id) == body["public_id"]
    assert actions(tenant) == ["member.invite"]
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert f"http://testserver/invitations/{tenant.public_id}/" in message.body
    token = message.body.split(f"/invitations/{tenant.public_id}/")[1].split("/")[0]
    assert token not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_invite_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).post(
        "/api/v1/invitations", {"email": "someone@example.com", "role": "viewer"}, format="json"
    )
    if role in MANAGERS:
        assert response.status_code == 201
        assert len(invitations(tenant)) == 1
        assert actions(tenant) == ["member.invite"]
    else:
        assert_error(response, 403, "permission_denied")
        assert invitations(tenant) == []
        assert actions(tenant) == []


@pytest.mark.django_db
def test_invite_refusals(tenant: Tenant, owner: User) -> None:
    admin = make_member(tenant, Role.ADMIN)
    assert_error(
        user_client(admin, tenant).post(
            "/api/v1/invitations", {"email": "boss@example.com", "role": "owner"}, format="json"
        ),
        403,
        "permission_denied",
    )
    assert_error(
        user_client(owner, tenant).post(
            "/api/v1/invitations", {"email": admin.email, "role": "viewer"}, format="json"
        ),
        409,
        "already_member",
    )
    assert invitations(tenant) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "role": "viewer"},
        {"email": "a@example.com", "role": "king"},
        {"email": "a@example.com"},
        {"role": "viewer"},
        {"email": 12, "role": "viewer"},
        {"email": "a@example.com", "role": "viewer", "expires_at": "2030-01-01T00:00:00Z"},
        "a@example.com",
    ],
)
def test_invite_refuses_bad_input_and_writes_nothing(tenant: Tenant, owner: User, body: Any) -> None:
    response = user_client(owner, tenant).post("/api/v1/invitations", body, format="json")
    assert_error(response, 400, "validation_error")
    assert invitations(tenant) == []
    assert actions(tenant) == []


@pytest.mark.django_db
def test_invitation_list_shows_pending_ones_of_my_company(
    tenant: Tenant, owner: User, outsider_tenant: Tenant
) -> None:
    with tenant_context(tenant):
        pending, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="p@x.com", role="viewer"
        )
        revoked, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="r@x.com", role="viewer"
        )
        Invitation.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    with tenant_context(outsider_tenant):
        invitation_create(
            tenant=outsider_tenant, actor=None, actor_role=Role.OWNER, email="o@x.com", role="viewer"
        )
    response = user_client(owner, tenant).get("/api/v1/invitations")
    assert response.status_code == 200
    assert [i["public_id"] for i in response.json()["results"]] == [str(pending.public_id)]
    # Invitee emails are member-management data.
    viewer = make_member(tenant, Role.VIEWER)
    assert_error(user_client(viewer, tenant).get("/api/v1/invitations"), 403, "permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_revoke_invitation_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    with tenant_context(tenant):
        invitation, _ = invitation_create(
            tenant=tenant, actor=owner, actor_role=Role.OWNER, email="p@x.com", role="viewer"
        )
    response = user_client(actor, tenant).delete(f"/api/v1/invitations/{invitation.public_id}")
    [stored] = invitations(tenant)
    if role in MANAGERS:
        assert response.status_code == 204
        assert stored.revoked_at is not None
        assert actions(tenant) == ["member.invite", "member.invite_revoke"]
    else:
        assert_error(response, 403, "permission_denied")
        assert stored.revoked_at is None
        assert actions(tenant) == ["member.invite"]


@pytest.mark.django_db
def test_another_companys_invitation_is_not_found(
    tenant: Tenant, owner: User, outsider_tenant: Tenant
) -> None:
    with tenant_context(outsider_tenant):
        foreign, _ = invitation_create(
            tenant=outsider_tenant, actor=None, actor_role=Role.OWNER, email="o@x.com", role="viewer"
        )
    client = user_client(owner, tenant)
    assert_error(client.delete(f"/api/v1/invitations/{foreign.public_id}"), 404, "not_found")
    assert_error(client.delete(f"/api/v1/invitations/{uuid.uuid4()}"), 404, "not_found")
    [stored] = invitations(outsider_tenant)
    assert stored.revoked_at is None


# --- /api-keys ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_key_shows_the_secret_once_and_it_works(tenant: Tenant, owner: User) -> None:
    client = user_client(owner, tenant)
    response = client.post(
        "/api/v1/api-keys",
        {"name": "Warehouse sync", "role": "analyst", "expires_at": "2099-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["key"]
    assert raw.startswith("sp_key_")
    assert body["role"] == "analyst"
    assert body["is_active"] is True
    assert body["created_by"]["email"] == owner.email
    key = ApiKey.objects.get(public_id=body["public_id"])
    assert key.tenant == tenant
    assert raw not in (key.key_hash, key.prefix)
    assert actions(tenant) == ["api_key.create"]

    listing = client.get("/api/v1/api-keys").json()["results"]
    assert [k["public_id"] for k in listing] == [body["public_id"]]
    assert "key" not in listing[0]
    assert raw not in str(listing)

    me = key_client(raw).get("/api/v1/me").json()
    assert me["api_key"]["public_id"] == body["public_id"]
    assert me["role"] == "analyst"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_create_api_key_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).post(
        "/api/v1/api-keys", {"name": "k", "role": "viewer"}, format="json"
    )
    listing = user_client(actor, tenant).get("/api/v1/api-keys")
    if role in MANAGERS:
        assert response.status_code == 201
        assert listing.status_code == 200
        assert ApiKey.objects.filter(tenant=tenant).count() == 1
    else:
        assert_error(response, 403, "permission_denied")
        assert_error(listing, 403, "permission_denied")
        assert ApiKey.objects.filter(tenant=tenant).count() == 0
        assert actions(tenant) == []


@pytest.mark.django_db
def test_an_api_key_acts_with_its_own_role(tenant: Tenant) -> None:
    _, admin_raw = make_api_key(tenant, Role.ADMIN)
    _, viewer_raw = make_api_key(tenant, Role.VIEWER)
    assert_error(
        key_client(admin_raw).post("/api/v1/api-keys", {"name": "x", "role": "owner"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(
        key_client(viewer_raw).post("/api/v1/api-keys", {"name": "x", "role": "viewer"}, format="json"),
        403,
        "permission_denied",
    )
    response = key_client(admin_raw).post(
        "/api/v1/api-keys", {"name": "child", "role": "viewer"}, format="json"
    )
    assert response.status_code == 201
    with tenant_context(tenant):
        event = AuditEvent.objects.filter(action="api_key.create").latest("id")
    assert event.actor is None
    assert event.actor_label.startswith("API key test key")
    assert ApiKey.objects.filter(tenant=tenant).count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "k", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, "invalid_expiry"),
        ({"name": "   ", "role": "viewer"}, "validation_error"),
        ({"name": "k", "role": "viewer", "expires_at": "tomorrow"}, "validation_error"),
        ({"name": 7, "role": "viewer"}, "validation_error"),
        ({"name": "k" * 101, "role": "viewer"}, "validation_error"),
        ({"name": "k", "role": "viewer", "key": "sp_key_mine"}, "validation_error"),
        ({"name": "k"}, "validation_error"),
    ],
)
def test_create_api_key_refuses_bad_input(
    tenant: Tenant, owner: User, body: dict[str, Any], code: str
) -> None:
    response = user_client(owner, tenant).post("/api/v1/api-keys", body, format="json")
    assert_error(response, 400, code)
    assert ApiKey.objects.filter(tenant=tenant).count() == 0
    assert actions(tenant) == []


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_revoke_api_key_matrix(tenant: Tenant, owner: User, role: str) -> None:
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    key, raw = make_api_key(tenant, Role.VIEWER)
    response = user_client(actor, tenant).delete(f"/api/v1/api-keys/{key.public_id}")
    key.refresh_from_db()
    if role in MANAGERS:
        assert response.status_code == 204
        assert key.revoked_at is not None
        assert actions(tenant)[-1] == "api_key.revoke"
        assert_error(key_client(raw).get("/api/v1/me"), 401, "not_authenticated")
    else:
        assert_error(response, 403, "permission_denied")
        assert key.revoked_at is None
        assert key_client(raw).get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_another_companys_api_key_is_not_found(tenant: Tenant, owner: User, outsider_tenant: Tenant) -> None:
    foreign, foreign_raw = make_api_key(outsider_tenant, Role.ADMIN)
    client = user_client(owner, tenant)
    assert_error(client.delete(f"/api/v1/api-keys/{foreign.public_id}"), 404, "not_found")
    assert foreign.public_id not in {k["public_id"] for k in client.get("/api/v1/api-keys").json()["results"]}
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert key_client(foreign_raw).get("/api/v1/me").status_code == 200
    # ...and the other company's key cannot reach this company's objects either.
    mine = Membership.objects.get(tenant=tenant, user=owner)
    assert_error(key_client(foreign_raw).delete(f"/api/v1/members/{mine.public_id}"), 404, "not_found")
    assert Membership.objects.filter(pk=mine.pk).exists()


# --- Idempotency-Key ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_idempotent_retry_replays_without_creating_twice(
    tenant: Tenant, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    client = user_client(owner, tenant)
    body = {"name": "Retry me", "role": "viewer"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == 201
    replay = client.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["public_id"] == first.json()["public_id"]
    # The secret is shown once: it is not kept for replays.
    assert first.json()["key"].startswith("sp_key_")
    assert replay.json()["key"] is None
    assert ApiKey.objects.filter(tenant=tenant).count() == 1
    assert actions(tenant) == ["api_key.create"]

    reused = client.post(
        "/api/v1/api-keys", {"name": "Other", "role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1"
    )
    assert_error(reused, 422, "idempotency_key_reused")
    assert ApiKey.objects.filter(tenant=tenant).count() == 1

    # Keys are per caller: another member's identical key is a different request.
    admin = make_member(tenant, Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        other = user_client(admin, tenant).post(
            "/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1"
        )
    assert other.status_code == 201
    assert other.json()["public_id"] != first.json()["public_id"]


@pytest.mark.django_db
def test_idempotent_invitation_replay(
    tenant: Tenant, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    client = user_client(owner, tenant)
    body = {"email": "once@example.com", "role": "viewer"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/invitations", body, format="json", HTTP_IDEMPOTENCY_KEY="inv-1")
    replay = client.post("/api/v1/invitations", body, format="json", HTTP_IDEMPOTENCY_KEY="inv-1")
    assert replay.json() == first.json()
    assert len(invitations(tenant)) == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_retry_while_the_first_request_is_uncommitted_is_refused(tenant: Tenant, owner: User) -> None:
    # Without on-commit callbacks running, the first request never "finishes" as far as the key is concerned.
    client = user_client(owner, tenant)
    body = {"name": "k", "role": "viewer"}
    assert (
        client.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="slow").status_code == 201
    )
    second = client.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert_error(second, 409, "idempotency_in_progress")
    assert ApiKey.objects.filter(tenant=tenant).count() == 1


@pytest.mark.django_db
def test_a_refused_request_frees_its_idempotency_key(
    tenant: Tenant, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    client = user_client(owner, tenant)
    bad = client.post(
        "/api/v1/api-keys", {"name": "k", "role": "king"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert_error(bad, 400, "validation_error")
    with django_capture_on_commit_callbacks(execute=True):
        good = client.post(
            "/api/v1/api-keys", {"name": "k", "role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
    assert good.status_code == 201
    assert ApiKey.objects.filter(tenant=tenant).count() == 1


@pytest.mark.django_db
def test_an_overlong_idempotency_key_is_refused(tenant: Tenant, owner: User) -> None:
    response = user_client(owner, tenant).post(
        "/api/v1/api-keys", {"name": "k", "role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="x" * 201
    )
    assert_error(response, 400, "invalid_idempotency_key")
    assert ApiKey.objects.filter(tenant=tenant).count() == 0


@pytest.mark.django_db
def test_an_outsider_user_has_no_access(tenant: Tenant, owner: User, outsider_tenant: Tenant) -> None:
    """A person with no membership here cannot get a working token for this company."""
    stranger = make_user()
    raw, _ = token_issue(user_id=stranger.pk, tenant_id=tenant.pk, session_key="s")
    assert_error(
        APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/members"), 401, "not_authenticated"
    )
