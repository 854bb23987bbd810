"""A refused grant tells the seller: one email to the members who may connect Amazon, no secret in it."""

from __future__ import annotations

from typing import Any

import pytest
from ad_api.api import Profiles
from django.core import mail
from django.test import override_settings

from accounts.roles import Role
from amazon import tokens
from amazon.ads_clients import ads_api_client
from amazon.ads_tokens import AdsReauthorizationRequired
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN
from amazon.tests.factories import make_connection
from amazon.tokens import ReauthorizationRequired
from tenants.context import tenant_context
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(simulator: Any) -> Any:
    creds = simulator.credentials
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    admin = make_member(tenant, Role.ADMIN)
    quiet_admin = make_member(tenant, Role.ADMIN)
    quiet_admin.notification_preferences = {"account_notifications": False}
    quiet_admin.save(update_fields=["notification_preferences"])
    make_member(tenant, Role.OPERATOR)
    make_member(make_tenant(), Role.OWNER)  # another company's owner hears nothing
    connection = make_connection(
        tenant,
        selling_partner_id=simulator.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
        name="Demo Store",
    )
    with tenant_context(tenant):
        connection.set_secret("ads_refresh_token", DEMO_ADS_REFRESH_TOKEN)
        connection.save()
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        ADS_API_ENDPOINT=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
    ):
        yield simulator, connection, sorted([owner.email, admin.email])


def test_a_revoked_seller_central_grant_emails_owners_and_admins_once(world: Any) -> None:
    simulator, connection, expected = world
    simulator.market.revoke_refresh_token(simulator.credentials["refresh_token"])
    for _ in range(3):
        with pytest.raises(ReauthorizationRequired):
            tokens.access_token_for(connection)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == expected
    assert "Seller Central" in message.subject and "Demo Store" in message.subject
    assert str(connection.public_id) in message.body
    assert simulator.credentials["refresh_token"] not in message.body
    assert simulator.credentials["lwa_client_secret"] not in message.body


def test_a_revoked_ads_grant_emails_owners_and_admins_once(world: Any) -> None:
    simulator, connection, expected = world
    simulator.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    for _ in range(2):
        with tenant_context(connection.tenant), pytest.raises(AdsReauthorizationRequired):
            ads_api_client(Profiles, connection, None).list_profiles()
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == expected
    assert "Amazon Ads" in mail.outbox[0].subject
    assert DEMO_ADS_REFRESH_TOKEN not in mail.outbox[0].body
