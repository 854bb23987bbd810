"""SellerConnection and AdsProfile: constraints, tenant binding, nothing secret in their text."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from amazon.models import AdsProfile, SellerConnection
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db

SECRET = "Atzr|very-secret-refresh-token"


def test_one_live_connection_per_seller_account_and_region() -> None:
    tenant = make_tenant()
    make_connection(tenant, selling_partner_id="A1SELLER")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_connection(tenant, selling_partner_id="A1SELLER")
    # Another region of the same account, and the same account in another company, are fine.
    make_connection(tenant, selling_partner_id="A1SELLER", region="EU")
    make_connection(make_tenant(), selling_partner_id="A1SELLER")


def test_a_disconnected_account_can_be_connected_again() -> None:
    tenant = make_tenant()
    old = make_connection(tenant, selling_partner_id="A1SELLER")
    with tenant_context(tenant):
        old.status = SellerConnection.Status.DISCONNECTED
        old.save(update_fields=["status"])
    make_connection(tenant, selling_partner_id="A1SELLER")


def test_str_and_repr_never_show_a_secret() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=SECRET, client_id="amzn1.app.id", client_secret="s3cr3t-val")
    for text in (str(conn), repr(conn)):
        assert SECRET not in text and "s3cr3t-val" not in text and "amzn1.app.id" not in text
        assert conn.refresh_token_encrypted not in text


def test_an_ads_profile_cannot_point_at_another_tenants_connection() -> None:
    a, b = make_tenant(), make_tenant()
    foreign = make_connection(b)
    with tenant_context(a), pytest.raises(ValueError):
        AdsProfile.objects.create(tenant=a, connection=foreign, profile_id="42")
    # The database refuses it as well (composite foreign key), even from raw SQL.
    with (
        tenant_context(a),
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO amazon_adsprofile (tenant_id, public_id, created_at, updated_at, connection_id,"
            " profile_id, marketplace_id, country_code, currency_code, name, is_enabled)"
            " VALUES (%s, gen_random_uuid(), now(), now(), %s, '42', '', '', '', '', true)",
            [a.pk, foreign.pk],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_ads_profiles_of_a_connection() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant)
    with tenant_context(tenant):
        AdsProfile.objects.create(connection=conn, profile_id="111", country_code="US")
        AdsProfile.objects.create(connection=conn, profile_id="222", country_code="CA")
        assert sorted(conn.ads_profiles.values_list("profile_id", flat=True)) == ["111", "222"]
        with pytest.raises(IntegrityError), transaction.atomic():
            AdsProfile.objects.create(connection=conn, profile_id="111")
