"""Who gets in: API keys (revoked, expired, unknown) and dashboard tokens (idle expiry, absolute expiry,
revocation at logout). Every refusal is a 401 in the API's error shape."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import ApiKey, Membership, User
from accounts.roles import Role
from config.redis import redis_client
from tenants.models import Tenant
from tests.factories import make_api_key, make_member, make_tenant


def get_me(authorization: str | None) -> Any:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get("/api/v1/me")


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


@pytest.fixture
def owner(tenant: Tenant) -> User:
    return make_member(tenant, Role.OWNER)


# --- No or unusable credentials -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Token sp_key_whatever",
        "Bearer sp_key_00000000_doesnotexist",
        "Bearer sp_dt_doesnotexist",
        "Bearer sp_key_" + "x" * 300,
    ],
)
def test_no_or_invalid_credentials_are_401(authorization: str | None) -> None:
    assert_401(get_me(authorization))


@pytest.mark.django_db
def test_a_session_cookie_alone_does_not_open_the_api(tenant: Tenant, owner: User) -> None:
    """The API takes bearer credentials only, so a browser's cookie cannot be ridden (no CSRF surface)."""
    client = APIClient()
    client.force_login(owner)
    assert_401(client.get("/api/v1/members"))


# --- API keys -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_live_api_key_works_and_its_use_is_recorded(tenant: Tenant) -> None:
    key, raw = make_api_key(tenant, Role.VIEWER)
    assert key.last_used_at is None
    assert get_me(f"Bearer {raw}").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.django_db
def test_a_revoked_api_key_is_401(tenant: Tenant) -> None:
    key, raw = make_api_key(tenant)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert_401(get_me(f"Bearer {raw}"))


@pytest.mark.django_db
def test_an_expired_api_key_is_401(tenant: Tenant) -> None:
    key, raw = make_api_key(tenant, expires_at=timezone.now() + timedelta(days=1))
    assert get_me(f"Bearer {raw}").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_401(get_me(f"Bearer {raw}"))


@pytest.mark.django_db
def test_a_key_of_a_deactivated_company_is_401(tenant: Tenant) -> None:
    _, raw = make_api_key(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    assert_401(get_me(f"Bearer {raw}"))


@pytest.mark.django_db
def test_a_tampered_api_key_is_401(tenant: Tenant) -> None:
    _, raw = make_api_key(tenant)
    assert_401(get_me(f"Bearer {raw[:-1]}{'A' if raw[-1] != 'A' else 'B'}"))


# --- Dashboard tokens -----------------------------------------------------------------------------------


def issue(user: User, tenant: Tenant, session_key: str = "browser-session") -> str:
    raw, _ = tokens.token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key=session_key)
    return f"Bearer {raw}"


@pytest.mark.django_db
def test_a_dashboard_token_works_and_is_stored_only_hashed(tenant: Tenant, owner: User) -> None:
    authorization = issue(owner, tenant)
    response = get_me(authorization)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == owner.email
    raw = authorization.removeprefix("Bearer ")
    client = redis_client()
    assert client.get(f"dashtoken:{raw}") is None
    assert client.get(f"dashtoken:{tokens._hash(raw)}") is not None
    assert not any(raw.encode() in (client.get(k) or b"") for k in client.keys("dashtoken:*"))


@pytest.mark.django_db
def test_a_dashboard_token_expires_when_idle_and_use_keeps_it_alive(
    tenant: Tenant, owner: User, settings: Any
) -> None:
    settings.DASHBOARD_TOKEN_IDLE_SECONDS = 1
    authorization = issue(owner, tenant)
    time.sleep(0.6)
    assert get_me(authorization).status_code == 200  # renews the idle expiry
    time.sleep(0.6)
    assert get_me(authorization).status_code == 200  # 1.2 s after issue, but used 0.6 s ago
    time.sleep(1.5)
    assert_401(get_me(authorization))


@pytest.mark.django_db
def test_a_dashboard_token_dies_at_its_absolute_expiry_even_when_in_use(
    tenant: Tenant, owner: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DASHBOARD_TOKEN_ABSOLUTE_SECONDS = 60
    now = [time.time()]
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: now[0]))
    authorization = issue(owner, tenant)
    for _ in range(5):  # used every 11 s of fake time, well inside the idle window
        now[0] += 11
        assert get_me(authorization).status_code == 200
    now[0] += 11  # 66 s after issue
    assert_401(get_me(authorization))
    assert_401(get_me(authorization))  # and it stays dead


@pytest.mark.django_db
def test_logout_revokes_every_token_of_that_browser_session_only(tenant: Tenant, owner: User) -> None:
    first = issue(owner, tenant, session_key="laptop")
    second = issue(owner, tenant, session_key="laptop")
    other_browser = issue(owner, tenant, session_key="phone")
    assert tokens.tokens_revoke_for_session("laptop") == 2
    assert_401(get_me(first))
    assert_401(get_me(second))
    assert get_me(other_browser).status_code == 200


@pytest.mark.django_db
def test_a_removed_member_token_stops_working(tenant: Tenant, owner: User) -> None:
    analyst = make_member(tenant, Role.ANALYST)
    authorization = issue(analyst, tenant)
    assert get_me(authorization).status_code == 200
    Membership.objects.filter(user=analyst, tenant=tenant).delete()
    assert_401(get_me(authorization))


@pytest.mark.django_db
def test_a_deactivated_user_token_stops_working(tenant: Tenant, owner: User) -> None:
    authorization = issue(owner, tenant)
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert_401(get_me(authorization))


@pytest.mark.django_db
def test_a_token_carries_its_company_and_role(tenant: Tenant, owner: User) -> None:
    """One person in two companies: each token acts in its own company with that company's role."""
    other = make_tenant()
    make_member(other, Role.VIEWER, user=owner)
    here = get_me(issue(owner, tenant)).json()
    there = get_me(issue(owner, other)).json()
    assert (here["tenant"], here["role"]) == (str(tenant.public_id), "owner")
    assert (there["tenant"], there["role"]) == (str(other.public_id), "viewer")
    response = APIClient(HTTP_AUTHORIZATION=issue(owner, other)).patch(
        "/api/v1/tenant", {"require_mfa": True}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_dashboard_token_without_mfa_is_refused_once_the_company_requires_it() -> None:
    from rest_framework.test import APIClient

    from accounts.tokens import token_issue
    from tests.factories import make_member, make_tenant

    tenant = make_tenant()
    user = make_member(tenant)
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="s1", mfa_verified=False)
    verified, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="s2", mfa_verified=True)
    client = APIClient()
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    tenant.require_mfa = True
    tenant.save(update_fields=["require_mfa"])
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {verified}").status_code == 200


@pytest.mark.django_db
def test_revoking_a_users_tokens_ends_every_browser_session() -> None:
    from rest_framework.test import APIClient

    from accounts.tokens import token_issue, tokens_revoke_for_user
    from tests.factories import make_member, make_tenant

    tenant = make_tenant()
    user = make_member(tenant)
    tokens = [token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key=f"s{i}")[0] for i in range(2)]
    assert tokens_revoke_for_user(user.pk) == 2
    client = APIClient()
    for raw in tokens:
        assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
