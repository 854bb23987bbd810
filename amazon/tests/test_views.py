"""Dashboard pages for Amazon accounts, against the simulator: connect with own-app credentials, the
consent round trip through the callback URL, quota on the detail page, disconnect; roles; secrets never
in a page."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from accounts.roles import Role
from amazon import ratelimit
from amazon.models import SellerConnection
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import make_member, make_tenant

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


def _client(tenant: Tenant, role: str) -> Client:
    client = Client()
    client.force_login(make_member(tenant, role))
    return client


def _count(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return SellerConnection.objects.count()


def _own_app_form(sim: Any, **changes: str) -> dict[str, str]:
    creds = sim.credentials
    return {
        "name": "",
        "region": "NA",
        "selling_partner_id": sim.seller_id,
        "lwa_client_id": creds["lwa_app_id"],
        "lwa_client_secret": creds["lwa_client_secret"],
        "refresh_token": creds["refresh_token"],
        **changes,
    }


def test_empty_list_explains_how_to_connect() -> None:
    tenant = make_tenant()
    body = _client(tenant, Role.OWNER).get(reverse("amazon:connections")).content.decode()
    assert "No Amazon account connected yet" in body and reverse("amazon:connect") in body
    viewer_body = _client(tenant, Role.VIEWER).get(reverse("amazon:connections")).content.decode()
    assert "Only an owner or admin" in viewer_body and reverse("amazon:connect") not in viewer_body


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER])
def test_every_role_sees_the_list_and_the_detail(role: str) -> None:
    tenant = make_tenant()
    connection = make_connection(
        tenant, name="EU store", status="needs_reauthorization", status_detail="Amazon refused it."
    )
    client = _client(tenant, role)
    listing = client.get(reverse("amazon:connections"))
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "EU store" in body and "needs re-authorisation" in body
    assert ("Reconnect in Seller Central" in body) == (role in (Role.OWNER, Role.ADMIN))
    detail = client.get(reverse("amazon:connection_detail", args=[connection.public_id]))
    assert detail.status_code == 200
    assert "Atzr|refresh-token-secret" not in body + detail.content.decode()


def test_own_app_form_connects_and_never_echoes_secrets(sim: Any) -> None:
    tenant = make_tenant()
    client = _client(tenant, Role.ADMIN)
    page = client.get(reverse("amazon:connect")).content.decode()
    for name in ("lwa_client_id", "lwa_client_secret", "refresh_token"):
        assert f'type="password" name="{name}"' in page
    response = client.post(reverse("amazon:connect"), _own_app_form(sim))
    assert response.status_code == 302
    (connection,) = SellerConnection.all_tenants.filter(tenant=tenant)
    assert response["Location"] == reverse("amazon:connection_detail", args=[connection.public_id])
    detail = client.get(response["Location"]).content.decode()
    assert "Demo Outfitters" in detail and "getMarketplaceParticipations" in detail  # quota table
    assert "<svg" in detail and "quota-chart__bar" in detail
    for secret in sim.credentials.values():
        assert secret not in detail


def test_wrong_secret_is_a_form_error_and_stores_nothing(sim: Any) -> None:
    tenant = make_tenant()
    client = _client(tenant, Role.OWNER)
    response = client.post(reverse("amazon:connect"), _own_app_form(sim, lwa_client_secret="wrong-secret"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "did not accept the LWA client id and client secret" in body
    assert "wrong-secret" not in body and sim.credentials["refresh_token"] not in body
    assert _count(tenant) == 0


def test_consent_round_trip_through_the_pages(sim: Any) -> None:
    tenant = make_tenant()
    client = _client(tenant, Role.OWNER)
    response = client.post(reverse("amazon:consent_start"), {"region": "NA"})
    assert response.status_code == 302
    consent = urlsplit(response["Location"])
    # Seller Central's consent page (the simulator's outside production: test_consent_page.py).
    assert f"{consent.scheme}://{consent.netloc}{consent.path}" == settings.SELLER_CENTRAL_CONSENT_URLS["NA"]
    query = parse_qs(consent.query)
    assert query["redirect_uri"] == ["http://testserver" + reverse("amazon:consent_callback")]
    # The seller approves in Seller Central, which sends them back with a code:
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    callback = {"state": query["state"][0], "spapi_oauth_code": code, "selling_partner_id": sim.seller_id}
    done = client.get(reverse("amazon:consent_callback"), callback)
    assert done.status_code == 302
    assert _count(tenant) == 1
    # The same link again (a replay) shows an error and stores nothing more.
    again = client.get(reverse("amazon:consent_callback"), callback)
    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert code not in again.content.decode()
    assert _count(tenant) == 1


def test_a_forged_callback_shows_an_error_page(sim: Any) -> None:
    tenant = make_tenant()
    response = _client(tenant, Role.OWNER).get(
        reverse("amazon:consent_callback"),
        {"state": "forged:state", "spapi_oauth_code": "ANDaNx", "selling_partner_id": sim.seller_id},
    )
    assert response.status_code == 400
    assert "could not be verified" in response.content.decode()
    assert _count(tenant) == 0


def test_quota_page_shows_recent_throttling() -> None:
    tenant = make_tenant()
    connection = make_connection(tenant)
    ratelimit.acquire(connection, "getItemOffers")
    ratelimit.record_throttle(connection, "getItemOffers")
    body = (
        _client(tenant, Role.VIEWER)
        .get(reverse("amazon:connection_detail", args=[connection.public_id]))
        .content.decode()
    )
    assert "1 throttled in the last hour" in body
    assert "getItemOffers" in body and "quota-chart__bar--low" in body


def test_disconnect_asks_then_deletes_the_secrets() -> None:
    tenant = make_tenant()
    connection = make_connection(tenant, name="US store")
    client = _client(tenant, Role.OWNER)
    url = reverse("amazon:connection_disconnect", args=[connection.public_id])
    assert "Disconnect US store?" in client.get(url).content.decode()
    assert _count(tenant) == 1
    response = client.post(url)
    assert response.status_code == 302
    with tenant_context(tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
    assert stored.status == "disconnected" and stored.refresh_token_encrypted == ""
    assert stored.purge_after is not None
    listing = client.get(reverse("amazon:connections")).content.decode()
    assert "Disconnected" in listing and "purged after" in listing


def test_operators_cannot_connect_or_disconnect() -> None:
    tenant = make_tenant()
    connection = make_connection(tenant)
    client = _client(tenant, Role.OPERATOR)
    assert client.get(reverse("amazon:connect")).status_code == 403
    assert client.post(reverse("amazon:consent_start"), {"region": "NA"}).status_code == 403
    url = reverse("amazon:connection_disconnect", args=[connection.public_id])
    assert client.post(url).status_code == 403
    with tenant_context(tenant):
        assert SellerConnection.objects.get(pk=connection.pk).status == "active"
