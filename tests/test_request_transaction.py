"""The tenant setting is in force inside the transaction that runs the view, and gone after it.

Django middleware runs outside ATOMIC_REQUESTS, so tenants.middleware owns the request transaction.
These tests run without pytest-django's wrapping transaction, as the product does.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.roles import Role
from tenants.context import tenant_context
from tenants.models import JobRun
from tests.factories import make_api_key, make_member, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


def _setting_on_this_connection() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('app.tenant_id', true), '')")
        return str(cursor.fetchone()[0])


def _run_for(tenant_kind: str) -> tuple:  # type: ignore[type-arg]
    tenant = make_tenant()
    with tenant_context(tenant):
        JobRun.objects.create(kind=tenant_kind, started_at=timezone.now())
    return tenant, make_member(tenant, Role.OWNER)


def test_a_page_sees_its_tenants_rows_and_the_setting_ends_with_the_request() -> None:
    _tenant, owner = _run_for("pricing.cycle.alpha")
    _run_for("pricing.cycle.bravo")
    client = Client()
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    body = client.get("/").content.decode()
    assert "pricing.cycle.alpha" in body
    assert "pricing.cycle.bravo" not in body
    assert _setting_on_this_connection() == ""  # nothing left on the (same, persistent) connection
    assert not connection.in_atomic_block


def test_an_api_call_sees_its_tenants_rows_and_the_setting_ends_with_the_request() -> None:
    tenant, _ = _run_for("sync.alpha")
    _run_for("sync.bravo")
    _, raw = make_api_key(tenant, Role.VIEWER)
    results = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/job-runs").json()["results"]
    assert [run["kind"] for run in results] == ["sync.alpha"]
    assert _setting_on_this_connection() == ""


def test_a_server_error_rolls_the_request_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from accounts import api as accounts_api

    tenant, _owner = _run_for("x")
    _, raw = make_api_key(tenant, Role.OWNER)

    def explode(*args: object, **kwargs: object) -> None:
        from tenants.audit import audit_record

        audit_record(actor=None, action="half.written")  # written first...
        raise RuntimeError("bug after a write")  # ...then the view fails

    monkeypatch.setattr(accounts_api.services, "tenant_set_require_mfa", explode)
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raise_request_exception = False
    response = client.patch("/api/v1/tenant", {"require_mfa": True}, format="json")
    assert response.status_code == 500
    with tenant_context(tenant):
        from tenants.models import AuditEvent

        assert not AuditEvent.objects.filter(action="half.written").exists()
