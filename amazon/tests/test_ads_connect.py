"""Authorising the Amazon Ads API on a connection, against the simulator (real ad_api client, Redis,
PostgreSQL): the token is verified by listing the advertising profiles before anything is stored, stored
encrypted, never echoed; a wrong token stores nothing; disconnecting Ads deletes the token and disables
the profiles; another company's connection is 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon import services
from amazon.ads_tokens import ADS_TOKEN_KEY, ads_access_token_for
from amazon.models import AdsProfile, SellerConnection
from amazon.services import AmazonConnectionError
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, ads_for
from amazon.simulator.market import CA, US
from amazon.tests.factories import make_connection
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(simulator: Any) -> Any:
    creds = simulator.credentials
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
    ):
        yield simulator


def _connection(sim: Any, tenant: Tenant | None = None) -> SellerConnection:
    return make_connection(tenant or make_tenant(), selling_partner_id=sim.seller_id, name="Store")


def _api(tenant: Tenant, role: str = Role.OWNER) -> APIClient:
    user = make_member(tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="ads-test")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _url(connection: SellerConnection) -> str:
    return reverse("api:connection-ads", kwargs={"public_id": connection.public_id})


def _profiles(connection: SellerConnection) -> list[AdsProfile]:
    with tenant_context(connection.tenant):
        return list(AdsProfile.objects.filter(connection=connection).order_by("profile_id"))


def _reload(connection: SellerConnection) -> SellerConnection:
    with tenant_context(connection.tenant):
        return SellerConnection.objects.get(pk=connection.pk)


def test_connect_verifies_stores_the_token_encrypted_and_the_profiles(sim: Any) -> None:
    connection = _connection(sim)
    tenant = connection.tenant
    user = make_member(tenant, Role.ADMIN)
    with tenant_context(tenant):
        services.ads_connect(
            tenant=tenant,
            actor=user,
            actor_role=Role.ADMIN,
            connection=connection,
            ads_refresh_token=DEMO_ADS_REFRESH_TOKEN,
        )
    stored = _reload(connection)
    assert stored.get_secret("ads_refresh_token") == DEMO_ADS_REFRESH_TOKEN
    assert DEMO_ADS_REFRESH_TOKEN not in stored.ads_refresh_token_encrypted
    # The seller's profiles in the connection's region (NA: US and CA, not its UK and DE ones)
    expected = [p for p in ads_for(sim.market).profiles(sim.seller_id) if p.marketplace_id in (US, CA)]
    assert len(expected) == 2
    profiles = _profiles(connection)
    assert {p.profile_id for p in profiles} == {str(p.profile_id) for p in expected}
    assert all(p.is_enabled and p.country_code and p.currency_code and p.marketplace_id for p in profiles)
    with tenant_context(tenant):
        event = AuditEvent.objects.get(action="amazon.ads_connect")
    assert DEMO_ADS_REFRESH_TOKEN not in str(event.changes)
    # the stored grant works for later Ads calls
    assert ads_access_token_for(stored)
    # connecting again is an upsert: no duplicates
    with tenant_context(tenant):
        services.ads_connect(
            tenant=tenant,
            actor=user,
            actor_role=Role.ADMIN,
            connection=stored,
            ads_refresh_token=DEMO_ADS_REFRESH_TOKEN,
        )
    assert len(_profiles(connection)) == len(expected)


def test_a_wrong_token_is_a_clear_error_and_stores_nothing(sim: Any) -> None:
    connection = _connection(sim)
    tenant = connection.tenant
    with tenant_context(tenant), pytest.raises(AmazonConnectionError) as caught:
        services.ads_connect(
            tenant=tenant,
            actor=None,
            actor_role=Role.OWNER,
            connection=connection,
            ads_refresh_token="Atzr|not-a-real-ads-token",
        )
    assert caught.value.code == "invalid_ads_token" and caught.value.status == 400
    stored = _reload(connection)
    assert stored.ads_refresh_token_encrypted == ""
    assert _profiles(connection) == []
    assert redis_client().get(ADS_TOKEN_KEY.format(connection.public_id)) is None
    with tenant_context(tenant):
        assert not AuditEvent.objects.filter(action="amazon.ads_connect").exists()
    # An SP-API refresh token is not an Ads grant either
    with tenant_context(tenant), pytest.raises(AmazonConnectionError) as caught:
        services.ads_connect(
            tenant=tenant,
            actor=None,
            actor_role=Role.OWNER,
            connection=connection,
            ads_refresh_token=sim.credentials["refresh_token"],
        )
    assert caught.value.code in {"invalid_ads_token", "verification_failed"}
    assert _reload(connection).ads_refresh_token_encrypted == ""


def test_roles_without_connect_permission_are_refused(sim: Any) -> None:
    connection = _connection(sim)
    response = _api(connection.tenant, Role.OPERATOR).post(
        _url(connection), {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN}, format="json"
    )
    assert response.status_code == 403
    assert _reload(connection).ads_refresh_token_encrypted == ""


def test_api_connect_never_echoes_the_token_and_disconnect_clears_it(
    sim: Any, django_capture_on_commit_callbacks: Any
) -> None:
    connection = _connection(sim)
    client = _api(connection.tenant)
    response = client.post(_url(connection), {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN}, format="json")
    assert response.status_code == 200, response.content
    body = response.content.decode()
    assert DEMO_ADS_REFRESH_TOKEN not in body and "Atzr" not in body and "Atza" not in body
    data = response.json()
    assert data["status"] == "active" and len(data["profiles"]) >= 1
    assert set(data["profiles"][0]) == {
        "profile_id",
        "marketplace_id",
        "country_code",
        "currency_code",
        "name",
        "is_enabled",
    }
    shown = client.get(_url(connection))
    assert shown.status_code == 200 and "Atzr" not in shown.content.decode()
    detail = client.get(reverse("api:connection-detail", kwargs={"public_id": connection.public_id}))
    assert "Atzr" not in detail.content.decode()
    ads_access_token_for(_reload(connection))  # cached now
    assert redis_client().get(ADS_TOKEN_KEY.format(connection.public_id)) is not None

    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.delete(_url(connection))
    assert deleted.status_code == 204
    stored = _reload(connection)
    assert stored.ads_refresh_token_encrypted == "" and stored.status == SellerConnection.Status.ACTIVE
    assert stored.get_secret("refresh_token")  # the SP-API side stays
    assert _profiles(connection) and not any(p.is_enabled for p in _profiles(connection))
    assert redis_client().get(ADS_TOKEN_KEY.format(connection.public_id)) is None
    assert client.get(_url(connection)).json()["status"] == "not_connected"
    assert client.delete(_url(connection)).status_code == 204  # twice is harmless


def test_api_wrong_token_answers_400_with_code(sim: Any) -> None:
    connection = _connection(sim)
    response = _api(connection.tenant).post(
        _url(connection), {"ads_refresh_token": "Atzr|wrong"}, format="json"
    )
    assert response.status_code == 400
    assert "invalid_ads_token" in response.content.decode() and "Atzr|wrong" not in response.content.decode()
    assert _reload(connection).ads_refresh_token_encrypted == ""


def test_another_companys_connection_is_404(sim: Any) -> None:
    theirs = _connection(sim)
    mine = make_tenant()
    client = _api(mine)
    assert client.get(_url(theirs)).status_code == 404
    assert (
        client.post(_url(theirs), {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN}, format="json").status_code
        == 404
    )
    assert client.delete(_url(theirs)).status_code == 404
    assert _reload(theirs).ads_refresh_token_encrypted == ""
    # the service refuses a connection of another tenant too
    with tenant_context(mine), pytest.raises(AmazonConnectionError) as caught:
        services.ads_connect(
            tenant=mine,
            actor=None,
            actor_role=Role.OWNER,
            connection=theirs,
            ads_refresh_token=DEMO_ADS_REFRESH_TOKEN,
        )
    assert caught.value.status == 404


def test_the_page_connects_without_echoing_the_token(sim: Any) -> None:
    connection = _connection(sim)
    user = make_member(connection.tenant, Role.OWNER)
    client = Client()
    client.force_login(user)
    page_url = reverse("amazon:connection_ads", kwargs={"public_id": connection.public_id})
    connect_url = reverse("amazon:connection_ads_connect", kwargs={"public_id": connection.public_id})
    wrong = client.post(connect_url, {"ads_refresh_token": "Atzr|wrong-page-token"})
    assert wrong.status_code == 400 and "Atzr|wrong-page-token" not in wrong.content.decode()
    done = client.post(connect_url, {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN}, follow=True)
    assert done.status_code == 200
    body = done.content.decode()
    assert DEMO_ADS_REFRESH_TOKEN not in body and "Connected" in body
    profile = _profiles(connection)[0]
    assert profile.profile_id in client.get(page_url).content.decode()
    client.post(reverse("amazon:connection_ads_disconnect", kwargs={"public_id": connection.public_id}))
    assert _reload(connection).ads_refresh_token_encrypted == ""


def test_demo_seed_connects_ads_once(sim: Any) -> None:
    from accounts.management.commands.seed_demo import (
        seed_demo,
        seed_demo_ads_connection,
        seed_demo_connection,
    )

    seed_demo()
    with override_settings(SIMULATOR_URL=sim.base_url):
        assert "made" in seed_demo_connection()
        assert "connected" in seed_demo_ads_connection()
        assert "already there" in seed_demo_ads_connection()
