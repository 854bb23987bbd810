"""An Ads grant must belong to the connection's seller: on connecting Ads, the profiles listed with the new
token must include a seller profile (accountInfo.type "seller") whose accountInfo.id is the connection's
selling partner id, in one of its marketplaces. The simulator issues a grant for another seller; it is
refused with a clear error and nothing is stored (token, profiles, audit, cached Ads token)."""

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
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket, ads_for
from amazon.simulator.market import CA, DE, DEMO_CLIENT_ID, UK, US
from amazon.tests.factories import make_connection
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

OTHER_SELLER = "A2OTHERSELLER9"


@pytest.fixture
def sim(simulator: Any) -> Any:
    creds = simulator.credentials
    simulator.market.add_seller(OTHER_SELLER, "Someone Else's Store", [US, CA])
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
    ):
        yield simulator


def _connect(connection: SellerConnection, token: str) -> SellerConnection:
    with tenant_context(connection.tenant):
        return services.ads_connect(
            tenant=connection.tenant,
            actor=None,
            actor_role=Role.OWNER,
            connection=connection,
            ads_refresh_token=token,
        )


def _assert_nothing_stored(connection: SellerConnection) -> None:
    with tenant_context(connection.tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
        assert stored.ads_refresh_token_encrypted == "" and stored.ads_state == "not_connected"
        assert not AdsProfile.objects.filter(connection=connection).exists()
        assert not AuditEvent.objects.filter(action="amazon.ads_connect").exists()
    assert redis_client().get(ADS_TOKEN_KEY.format(connection.public_id)) is None


def test_a_grant_of_another_seller_is_refused_and_nothing_is_stored(sim: Any) -> None:
    connection = make_connection(make_tenant(), selling_partner_id=sim.seller_id, name="Mine")
    foreign = ads_for(sim.market).authorize(OTHER_SELLER, DEMO_CLIENT_ID)
    with pytest.raises(AmazonConnectionError) as caught:
        _connect(connection, foreign)
    error = caught.value
    assert error.code == "ads_account_mismatch" and error.status == 400
    assert sim.seller_id in error.message and "another Amazon account" in error.message
    assert foreign not in error.message
    _assert_nothing_stored(connection)
    # The profiles were listed with the foreign grant (the check is real), then refused.
    listed = [e for e in sim.app.ads.log if e.operation == "listProfiles"]
    assert [e.status for e in listed] == [200]


def test_the_api_and_the_page_say_so(sim: Any) -> None:
    connection = make_connection(make_tenant(), selling_partner_id=sim.seller_id)
    owner = make_member(connection.tenant, Role.OWNER)
    foreign = ads_for(sim.market).authorize(OTHER_SELLER, DEMO_CLIENT_ID)
    raw, _ = token_issue(user_id=owner.pk, tenant_id=connection.tenant.pk, session_key="ads-check")
    response = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        reverse("api:connection-ads", kwargs={"public_id": connection.public_id}),
        {"ads_refresh_token": foreign},
        format="json",
    )
    assert response.status_code == 400 and "ads_account_mismatch" in response.content.decode()
    assert foreign not in response.content.decode()
    page = Client()
    page.force_login(owner)
    answer = page.post(
        reverse("amazon:connection_ads_connect", kwargs={"public_id": connection.public_id}),
        {"ads_refresh_token": foreign},
    )
    assert answer.status_code == 400 and "another Amazon account" in answer.content.decode()
    _assert_nothing_stored(connection)


def test_the_connection_of_the_other_seller_takes_that_grant(sim: Any) -> None:
    connection = make_connection(make_tenant(), selling_partner_id=OTHER_SELLER)
    with pytest.raises(AmazonConnectionError) as caught:
        _connect(connection, DEMO_ADS_REFRESH_TOKEN)  # the demo seller's grant: not this account
    assert caught.value.code == "ads_account_mismatch"
    _connect(connection, ads_for(sim.market).authorize(OTHER_SELLER, DEMO_CLIENT_ID))
    with tenant_context(connection.tenant):
        profiles = set(AdsProfile.objects.filter(connection=connection).values_list("profile_id", flat=True))
    assert profiles == {str(AdsMarket.profile_id_for(OTHER_SELLER, m)) for m in (US, CA)}


def test_only_the_sellers_profiles_in_the_connections_region_are_stored(sim: Any) -> None:
    eu = make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        region="EU",
        marketplaces=[{"id": UK, "name": "Amazon.co.uk", "country_code": "GB"}],
    )
    _connect(eu, DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(eu.tenant):
        profiles = {p.profile_id: p.marketplace_id for p in AdsProfile.objects.filter(connection=eu)}
    assert profiles == {str(AdsMarket.profile_id_for(sim.seller_id, m)): m for m in (UK, DE)}


def test_a_seller_without_a_profile_in_the_connections_marketplaces_is_refused(sim: Any) -> None:
    # The demo seller advertises in US and CA; this connection sells in Mexico only.
    connection = make_connection(
        make_tenant(),
        selling_partner_id=sim.seller_id,
        marketplaces=[{"id": "A1AM78C64UM0Y8", "name": "Amazon.com.mx", "country_code": "MX"}],
    )
    with pytest.raises(AmazonConnectionError) as caught:
        _connect(connection, DEMO_ADS_REFRESH_TOKEN)
    assert caught.value.code == "ads_account_mismatch" and "MX" in caught.value.message
    _assert_nothing_stored(connection)


def test_verification_never_uses_the_shared_token_cache(sim: Any) -> None:
    """The stored grant's cached access token (a busy worker may refill it at any moment) neither answers
    for a candidate grant nor is disturbed by a refused one."""
    connection = make_connection(make_tenant(), selling_partner_id=sim.seller_id)
    _connect(connection, DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(connection.tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
    cached = ads_access_token_for(stored)
    foreign = ads_for(sim.market).authorize(OTHER_SELLER, DEMO_CLIENT_ID)
    with pytest.raises(AmazonConnectionError) as caught:
        _connect(stored, foreign)
    assert caught.value.code == "ads_account_mismatch"
    assert ads_access_token_for(stored) == cached  # still the stored grant's, still cached
    with tenant_context(connection.tenant):
        assert SellerConnection.objects.get(pk=connection.pk).get_secret("ads_refresh_token") == (
            DEMO_ADS_REFRESH_TOKEN
        )
