"""/api/v1/connections against the simulator: list, detail with quota, own-app create (verified, secrets
write-only), consent URL, disconnect; API keys and roles."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon.models import SellerConnection
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import make_api_key, make_member, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(simulator: Any) -> Any:
    creds = simulator.credentials
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_APP_ID="amzn1.sp.solution.test",
    ):
        yield simulator


def _client(tenant: Tenant, role: str = Role.OWNER) -> APIClient:
    user = make_member(tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="api-test")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _body(sim: Any, **changes: str) -> dict[str, str]:
    creds = sim.credentials
    return {
        "region": "NA",
        "selling_partner_id": sim.seller_id,
        "lwa_client_id": creds["lwa_app_id"],
        "lwa_client_secret": creds["lwa_client_secret"],
        "refresh_token": creds["refresh_token"],
        **changes,
    }


def _no_secret(response: Any, sim: Any) -> None:
    text = response.content.decode()
    for secret in sim.credentials.values():
        assert secret not in text


def test_create_verifies_and_never_echoes_secrets(sim: Any) -> None:
    tenant = make_tenant()
    client = _client(tenant)
    response = client.post(reverse("api:connection-list"), _body(sim, name="Main"), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "active" and data["auth_kind"] == "own_app" and data["name"] == "Main"
    assert {m["country_code"] for m in data["marketplaces"]} == {"US", "CA", "GB", "DE"}
    _no_secret(response, sim)
    detail = client.get(reverse("api:connection-detail", args=[data["public_id"]]))
    assert detail.status_code == 200
    assert "getMarketplaceParticipations" in {q["operation"] for q in detail.json()["quota"]["operations"]}
    _no_secret(detail, sim)
    listing = client.get(reverse("api:connection-list"))
    assert [c["public_id"] for c in listing.json()["results"]] == [data["public_id"]]
    _no_secret(listing, sim)
    # Connecting the same account again re-authorises it in place.
    again = client.post(reverse("api:connection-list"), _body(sim), format="json")
    assert again.status_code == 200 and again.json()["public_id"] == data["public_id"]


def test_wrong_credentials_are_a_clear_error_and_nothing_is_stored(sim: Any) -> None:
    tenant = make_tenant()
    response = _client(tenant).post(
        reverse("api:connection-list"), _body(sim, lwa_client_secret="nope-secret"), format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_credentials" and "client secret" in error["message"]
    assert "nope-secret" not in response.content.decode()
    with tenant_context(tenant):
        assert SellerConnection.objects.count() == 0


def test_consent_url_for_people_not_api_keys(sim: Any) -> None:
    tenant = make_tenant()
    response = _client(tenant).post(reverse("api:connection-consent-url"), {"region": "FE"}, format="json")
    assert response.status_code == 200
    url = urlsplit(response.json()["url"])
    # Seller Central's Japan consent page (the simulator's outside production: test_consent_page.py).
    assert f"{url.scheme}://{url.netloc}{url.path}" == settings.SELLER_CENTRAL_CONSENT_URLS["FE"]
    assert parse_qs(url.query)["application_id"] == ["amzn1.sp.solution.test"]
    _key, raw = make_api_key(tenant, role=Role.ADMIN)
    keyed = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    refused = keyed.post(reverse("api:connection-consent-url"), {"region": "NA"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "person_required"


def test_disconnect_deletes_secrets_and_answers_204() -> None:
    tenant = make_tenant()
    connection = make_connection(tenant)
    client = _client(tenant, Role.ADMIN)
    url = reverse("api:connection-detail", args=[connection.public_id])
    assert client.delete(url).status_code == 204
    detail = client.get(url).json()
    assert detail["status"] == "disconnected" and detail["purge_after"]
    with tenant_context(tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
    assert stored.get_secret("refresh_token") is None
    assert client.delete(url).status_code == 204  # twice is harmless
    assert "disconnected" in json.dumps(client.get(reverse("api:connection-list")).json())


def test_viewers_read_but_cannot_write() -> None:
    tenant = make_tenant()
    connection = make_connection(tenant)
    client = _client(tenant, Role.VIEWER)
    assert client.get(reverse("api:connection-list")).status_code == 200
    assert client.delete(reverse("api:connection-detail", args=[connection.public_id])).status_code == 403
    assert (
        client.post(reverse("api:connection-consent-url"), {"region": "NA"}, format="json").status_code == 403
    )


def test_unknown_filter_is_refused() -> None:
    tenant = make_tenant()
    response = _client(tenant).get(reverse("api:connection-list"), {"stauts": "active"})
    assert response.status_code == 400
