"""The audit log and job runs through the API: who may read them, that a company sees only its own,
filters, and cursor pagination."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from accounts.tokens import token_issue
from tenants.audit import audit_record
from tenants.context import tenant_context
from tenants.models import AuditEvent, JobRun, Tenant
from tests.factories import make_api_key, make_member, make_tenant

ROLES = [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER]


def user_client(user: User, tenant: Tenant) -> APIClient:
    # As if the session had passed two-factor authentication (the company may start requiring it).
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="s", mfa_verified=True)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def record(tenant: Tenant, action: str) -> AuditEvent:
    with tenant_context(tenant):
        return audit_record(actor=None, action=action)


def job_run(tenant: Tenant, kind: str, outcome: str, started_minutes_ago: int = 0) -> JobRun:
    with tenant_context(tenant):
        return JobRun.objects.create(
            tenant=tenant,
            kind=kind,
            outcome=outcome,
            started_at=timezone.now() - timedelta(minutes=started_minutes_ago),
        )


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


@pytest.fixture
def owner(tenant: Tenant) -> User:
    return make_member(tenant, Role.OWNER)


@pytest.fixture
def other_tenant() -> Tenant:
    return make_tenant()


# --- Audit events ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_the_audit_log(tenant: Tenant, owner: User, role: str) -> None:
    record(tenant, "member.invite")
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).get("/api/v1/audit-events")
    if role in {Role.OWNER, Role.ADMIN}:
        assert response.status_code == 200
        assert [e["action"] for e in response.json()["results"]] == ["member.invite"]
    else:
        assert response.status_code == 403
        assert error_code(response) == "permission_denied"


@pytest.mark.django_db
def test_the_audit_log_shows_only_my_companys_events(
    tenant: Tenant, owner: User, other_tenant: Tenant
) -> None:
    mine = record(tenant, "member.invite")
    record(other_tenant, "member.remove")
    _, other_key = make_api_key(other_tenant, Role.ADMIN)  # writes api_key.create in the other company
    results = user_client(owner, tenant).get("/api/v1/audit-events").json()["results"]
    assert [e["public_id"] for e in results] == [str(mine.public_id)]
    other_results = APIClient(HTTP_AUTHORIZATION=f"Bearer {other_key}").get("/api/v1/audit-events").json()
    assert str(mine.public_id) not in {e["public_id"] for e in other_results["results"]}
    assert {e["action"] for e in other_results["results"]} == {"member.remove", "api_key.create"}


@pytest.mark.django_db
def test_an_api_change_is_in_the_audit_log_with_who_and_from_where(tenant: Tenant, owner: User) -> None:
    client = user_client(owner, tenant)
    client.patch(
        "/api/v1/tenant", {"require_mfa": True}, format="json", HTTP_USER_AGENT="integration-test/1.0"
    )
    [event] = client.get("/api/v1/audit-events").json()["results"]
    assert event["action"] == "tenant.require_mfa"
    assert event["actor"] == str(owner.public_id)
    assert event["actor_label"] == owner.email
    assert event["api_key"] is None
    assert event["changes"] == {"require_mfa": True}
    assert event["target_id"] == str(tenant.public_id)
    assert event["ip_address"] == "127.0.0.1"
    assert event["user_agent"] == "integration-test/1.0"


@pytest.mark.django_db
def test_audit_log_filters(tenant: Tenant, owner: User) -> None:
    invite = record(tenant, "member.invite")
    remove = record(tenant, "member.remove")
    record(tenant, "api_key.create")
    client = user_client(owner, tenant)

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/v1/audit-events?{query}")
        assert response.status_code == 200, response.content
        return [e["public_id"] for e in response.json()["results"]]

    assert ids("action=member.remove") == [str(remove.public_id)]
    assert ids("action=member.invite,member.remove") == [str(remove.public_id), str(invite.public_id)]
    assert ids("action=nothing.like.this") == []
    # `since` is inclusive; the future holds nothing.
    since = quote(remove.created_at.isoformat())
    assert str(invite.public_id) not in ids(f"since={since}")
    assert str(remove.public_id) in ids(f"since={since}")
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"since={future}") == []


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["since=yesterday", "since=", "acton=member.invite", "ordering=created_at"])
def test_audit_log_refuses_bad_or_unknown_filters(tenant: Tenant, owner: User, query: str) -> None:
    record(tenant, "member.invite")
    response = user_client(owner, tenant).get(f"/api/v1/audit-events?{query}")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


@pytest.mark.django_db
def test_audit_log_cursor_pagination_walks_every_event_once(tenant: Tenant, owner: User) -> None:
    created = [record(tenant, f"test.step{n}") for n in range(7)]
    client = user_client(owner, tenant)
    seen: list[str] = []
    url: str | None = "/api/v1/audit-events?page_size=3"
    pages = 0
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 3
        seen += [e["public_id"] for e in page["results"]]
        url = page["next"]
        pages += 1
    assert pages == 3
    assert seen == [str(e.public_id) for e in reversed(created)]


@pytest.mark.django_db
def test_a_bad_cursor_is_an_error_not_a_crash(tenant: Tenant, owner: User) -> None:
    response = user_client(owner, tenant).get("/api/v1/audit-events?cursor=garbage")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# --- Job runs -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_job_runs(tenant: Tenant, owner: User, role: str) -> None:
    run = job_run(tenant, "repricing.cycle", JobRun.Outcome.SUCCEEDED)
    actor = owner if role == Role.OWNER else make_member(tenant, role)
    response = user_client(actor, tenant).get("/api/v1/job-runs")
    assert response.status_code == 200
    [shown] = response.json()["results"]
    assert shown["public_id"] == str(run.public_id)
    assert shown["kind"] == "repricing.cycle"
    assert shown["outcome"] == "succeeded"


@pytest.mark.django_db
def test_job_runs_of_another_company_are_invisible(tenant: Tenant, owner: User, other_tenant: Tenant) -> None:
    job_run(other_tenant, "sync.orders", JobRun.Outcome.FAILED)
    assert user_client(owner, tenant).get("/api/v1/job-runs").json()["results"] == []


@pytest.mark.django_db
def test_job_runs_newest_first_with_filters(tenant: Tenant, owner: User) -> None:
    old = job_run(tenant, "sync.orders", JobRun.Outcome.FAILED, started_minutes_ago=30)
    new = job_run(tenant, "sync.orders", JobRun.Outcome.SUCCEEDED, started_minutes_ago=1)
    mid = job_run(tenant, "repricing.cycle", JobRun.Outcome.SUCCEEDED, started_minutes_ago=10)
    client = user_client(owner, tenant)

    def ids(query: str = "") -> list[str]:
        response = client.get(f"/api/v1/job-runs?{query}")
        assert response.status_code == 200, response.content
        return [r["public_id"] for r in response.json()["results"]]

    assert ids() == [str(new.public_id), str(mid.public_id), str(old.public_id)]
    assert ids("kind=sync.orders") == [str(new.public_id), str(old.public_id)]
    assert ids("outcome=failed") == [str(old.public_id)]
    assert ids("kind=sync.orders&outcome=succeeded") == [str(new.public_id)]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["outcome=exploded", "state=failed"])
def test_job_runs_refuse_bad_filters(tenant: Tenant, owner: User, query: str) -> None:
    response = user_client(owner, tenant).get(f"/api/v1/job-runs?{query}")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
