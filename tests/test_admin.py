"""Staff admin: cross-tenant reads go through the audited platform connection; secrets never shown."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import api_key_create
from tenants.context import tenant_context
from tenants.models import JobRun, PlatformAccess
from tests.factories import make_member, make_tenant, make_user
from tests.isolation_rows import ROW_MAKERS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "platform"])


@pytest.fixture
def staff_client() -> Client:
    staff = make_user(email="staff@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def test_staff_sees_all_tenants_job_runs_and_the_read_is_audited(staff_client: Client) -> None:
    a, b = make_tenant("Alpha"), make_tenant("Bravo")
    for tenant, canary in ((a, "CANARY_A"), (b, "CANARY_B")):
        with tenant_context(tenant):
            ROW_MAKERS["tenants.jobrun"](tenant, canary)
    response = staff_client.get("/admin/tenants/jobrun/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "CANARY_A" in body and "CANARY_B" in body
    records = list(PlatformAccess.objects.using("platform").values_list("actor_label", "reason"))
    assert records == [("staff@platform.test", "admin:tenants.jobrun")]


def test_non_staff_cannot_use_admin() -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    client = Client()
    client.force_login(owner)
    response = client.get("/admin/tenants/jobrun/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    with tenant_context(tenant):
        assert JobRun.objects.count() == 0


def test_admin_never_displays_secrets(staff_client: Client) -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    with tenant_context(tenant):
        key, raw = api_key_create(
            tenant=tenant, actor=owner, actor_role="owner", name="integration", role="viewer"
        )
    secret_part = raw.split("_", 3)[-1]
    for url in (
        "/admin/accounts/apikey/",
        f"/admin/accounts/apikey/{key.pk}/change/",
        f"/admin/accounts/user/{owner.pk}/change/",
        "/admin/accounts/user/",
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert key.key_hash not in body and secret_part not in body, url
        assert owner.password not in body, url
        assert "pbkdf2" not in body.lower() and "md5$" not in body.lower(), url
