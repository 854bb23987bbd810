"""A lasting "needs re-authorisation" Ads status, against the simulator with real Redis and PostgreSQL:
Amazon refusing the stored Ads grant (invalid_grant) marks the connection's Ads side in the database, in
its own transaction (it survives the rollback of the task that hit it), audited as the system; later calls
fail fast without asking LWA; the page, the connections list and the API show it; the SP-API side keeps
working; authorising Ads again clears it. A refusal of a token under verification, or of a grant replaced
meanwhile, marks nothing."""

from __future__ import annotations

from typing import Any

import pytest
from ad_api.api import Profiles
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon import services, tokens
from amazon.ads_clients import ads_api_client
from amazon.ads_tokens import ADS_REFUSED_KEY, AdsReauthorizationRequired, ads_access_token_for
from amazon.models import SellerConnection
from amazon.services import AmazonConnectionError
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, ads_for
from amazon.simulator.market import DEMO_CLIENT_ID
from amazon.tests.factories import make_connection
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.factories import make_member, make_tenant

ACTION = "amazon.ads_needs_reauthorization"


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
    """A platform-app connection of the demo seller with the demo Ads grant stored."""
    connection = make_connection(
        tenant or make_tenant(),
        selling_partner_id=sim.seller_id,
        refresh_token=sim.credentials["refresh_token"],
        name="Demo Store",
    )
    with tenant_context(connection.tenant):
        connection.set_secret("ads_refresh_token", DEMO_ADS_REFRESH_TOKEN)
        connection.save()
    return connection


def _reload(connection: SellerConnection) -> SellerConnection:
    with tenant_context(connection.tenant):
        return SellerConnection.objects.get(pk=connection.pk)


def _events(connection: SellerConnection, action: str = ACTION) -> list[AuditEvent]:
    with tenant_context(connection.tenant):
        return list(AuditEvent.objects.filter(action=action))


def _invalid_grants(sim: Any) -> int:
    return int(sim.market.stats.token_errors["invalid_grant"])


@pytest.mark.django_db(transaction=True)
def test_a_refused_ads_grant_is_marked_lasting_even_when_the_caller_rolls_back(sim: Any) -> None:
    connection = _connection(sim)
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)

    class TaskFailed(Exception):
        pass

    with pytest.raises(TaskFailed), tenant_context(connection.tenant), transaction.atomic():
        with pytest.raises(AdsReauthorizationRequired):
            ads_api_client(Profiles, _reload(connection), None).list_profiles()
        raise TaskFailed  # the task that hit the refusal fails: its transaction rolls back

    stored = _reload(connection)
    assert stored.ads_reauthorization_required_at is not None
    assert (
        stored.ads_state == "needs_reauthorization"
        and "authorise Amazon Ads again" in stored.ads_status_detail
    )
    assert stored.status == SellerConnection.Status.ACTIVE  # the SP-API side is another grant
    assert tokens.access_token_for(stored)  # ... and keeps working
    [event] = _events(connection)
    assert event.actor is None and event.changes["ads_status"] == ["active", "needs_reauthorization"]
    # Later calls fail fast on the mark, without asking LWA again, also once the Redis marker is gone.
    redis_client().delete(ADS_REFUSED_KEY.format(connection.public_id))
    with pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(stored)
    assert _invalid_grants(sim) == 1
    assert len(_events(connection)) == 1


@pytest.mark.django_db
def test_the_mark_is_shown_on_the_ads_page_the_connections_list_and_the_api(sim: Any) -> None:
    connection = _connection(sim)
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(connection.tenant), pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(connection)
    tenant = connection.tenant
    viewer = make_member(tenant, Role.VIEWER)
    raw, _ = token_issue(user_id=viewer.pk, tenant_id=tenant.pk, session_key="ads-reauth")
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    data = api.get(reverse("api:connection-ads", kwargs={"public_id": connection.public_id})).json()
    assert data["status"] == "needs_reauthorization"
    assert "authorise Amazon Ads again" in data["status_detail"]
    assert data["reauthorization_required_since"]
    detail = api.get(reverse("api:connection-detail", kwargs={"public_id": connection.public_id})).json()
    assert detail["status"] == "active"

    page = Client()
    page.force_login(viewer)
    ads_page = page.get(reverse("amazon:connection_ads", kwargs={"public_id": connection.public_id}))
    body = ads_page.content.decode()
    assert "Needs re-authorisation" in body and "authorise Amazon Ads again" in body
    assert "Ask an owner or admin" in body  # a viewer cannot reconnect it
    listing = page.get(reverse("amazon:connections")).content.decode()
    assert "Amazon Ads of Demo Store needs re-authorisation" in listing


@pytest.mark.django_db
def test_authorising_ads_again_clears_the_mark(sim: Any) -> None:
    connection = _connection(sim)
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(connection.tenant), pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(connection)
    assert _reload(connection).ads_state == "needs_reauthorization"
    new_grant = ads_for(sim.market).authorize(sim.seller_id, DEMO_CLIENT_ID)
    owner = make_member(connection.tenant, Role.OWNER)
    with tenant_context(connection.tenant):
        services.ads_connect(
            tenant=connection.tenant,
            actor=owner,
            actor_role=Role.OWNER,
            connection=_reload(connection),
            ads_refresh_token=new_grant,
        )
    stored = _reload(connection)
    assert stored.ads_state == "active"
    assert stored.ads_reauthorization_required_at is None and stored.ads_status_detail == ""
    assert ads_access_token_for(stored)
    [event] = _events(connection, "amazon.ads_connect")
    assert event.changes["ads_status"] == ["needs_reauthorization", "active"]
    assert new_grant not in str(event.changes)


@pytest.mark.django_db
def test_disconnecting_ads_clears_the_mark(sim: Any) -> None:
    connection = _connection(sim)
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(connection.tenant), pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(connection)
    with tenant_context(connection.tenant):
        services.ads_disconnect(
            tenant=connection.tenant, actor=None, actor_role=Role.OWNER, connection=_reload(connection)
        )
    stored = _reload(connection)
    assert stored.ads_state == "not_connected" and stored.ads_reauthorization_required_at is None


@pytest.mark.django_db
def test_a_wrong_token_under_verification_does_not_mark_the_stored_grant(sim: Any) -> None:
    connection = _connection(sim)
    with tenant_context(connection.tenant), pytest.raises(AmazonConnectionError) as caught:
        services.ads_connect(
            tenant=connection.tenant,
            actor=None,
            actor_role=Role.OWNER,
            connection=connection,
            ads_refresh_token="Atzr|revoked-or-never-issued",
        )
    assert caught.value.code == "invalid_ads_token"
    assert _invalid_grants(sim) == 1  # LWA refused the candidate...
    stored = _reload(connection)
    assert stored.ads_state == "active" and stored.get_secret("ads_refresh_token") == DEMO_ADS_REFRESH_TOKEN
    assert _events(connection) == []  # ... and the stored grant is untouched
    assert ads_access_token_for(stored)


@pytest.mark.django_db
def test_a_grant_replaced_meanwhile_is_not_marked(sim: Any) -> None:
    connection = _connection(sim)
    refused = connection.ads_refresh_token_encrypted
    with tenant_context(connection.tenant):
        connection.set_secret(
            "ads_refresh_token", ads_for(sim.market).authorize(sim.seller_id, DEMO_CLIENT_ID)
        )
        connection.save()
        # A worker that read the old grant learns that Amazon refused it, after the seller replaced it.
        services.ads_mark_needs_reauthorization(
            connection=_reload(connection), refused_ciphertext=refused, detail="refused"
        )
    assert _reload(connection).ads_state == "active" and _events(connection) == []
