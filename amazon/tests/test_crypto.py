"""Credentials at rest: never plaintext in the database, bound to tenant/row/field, typed failures,
key rotation that leaves nothing on an old key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.sites import site
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection as db
from django.test import override_settings

from amazon import crypto
from amazon.crypto import CredentialDecryptionError
from amazon.models import SellerConnection
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db

REFRESH = "Atzr|IwEBIExample-refresh-token-value"
CLIENT_ID = "amzn1.application-oa2-client.exampleid"
CLIENT_SECRET = "amzn1.oa2-cs.v1.example-client-secret"


def _raw_row(conn: SellerConnection) -> tuple:
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM amazon_sellerconnection WHERE id = %s", [conn.pk])
        return cursor.fetchone()


def _load(conn: SellerConnection) -> SellerConnection:
    return SellerConnection.objects.get(pk=conn.pk)


def test_raw_columns_never_hold_the_secret() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=REFRESH, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with tenant_context(tenant):
        row = _raw_row(conn)
        assert row is not None
        text = " ".join(str(value) for value in row)
        for secret in (REFRESH, CLIENT_ID, CLIENT_SECRET, "IwEBIExample", "example-client-secret"):
            assert secret not in text
        assert conn.refresh_token_encrypted in text  # the ciphertext is what is stored
        loaded = _load(conn)
        assert loaded.get_secret("refresh_token") == REFRESH
        assert loaded.get_secret("lwa_client_id") == CLIENT_ID
        assert loaded.get_secret("lwa_client_secret") == CLIENT_SECRET
        assert loaded.get_secret("ads_refresh_token") is None


def test_ciphertext_copied_to_another_tenants_row_does_not_decrypt() -> None:
    a, b = make_tenant(), make_tenant()
    source = make_connection(a, refresh_token=REFRESH)
    target = make_connection(b, refresh_token="Atzr|b-own-token")
    with tenant_context(b):
        target.refresh_token_encrypted = source.refresh_token_encrypted
        target.save(update_fields=["refresh_token_encrypted"])
        with pytest.raises(CredentialDecryptionError):
            _load(target).get_secret("refresh_token")


def test_ciphertext_copied_to_another_row_of_the_same_tenant_does_not_decrypt() -> None:
    tenant = make_tenant()
    source = make_connection(tenant, refresh_token=REFRESH)
    target = make_connection(tenant)
    with tenant_context(tenant):
        target.refresh_token_encrypted = source.refresh_token_encrypted
        target.save(update_fields=["refresh_token_encrypted"])
        with pytest.raises(CredentialDecryptionError):
            _load(target).get_secret("refresh_token")


def test_ciphertext_copied_to_another_field_does_not_decrypt() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=REFRESH)
    with tenant_context(tenant):
        conn.ads_refresh_token_encrypted = conn.refresh_token_encrypted
        conn.save(update_fields=["ads_refresh_token_encrypted"])
        with pytest.raises(CredentialDecryptionError):
            _load(conn).get_secret("ads_refresh_token")


def test_wrong_key_is_a_typed_error_never_a_fallback() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=REFRESH)
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]), tenant_context(tenant):
        with pytest.raises(CredentialDecryptionError) as caught:
            _load(conn).get_secret("refresh_token")
        assert REFRESH not in str(caught.value)


def test_tampered_ciphertext_is_a_typed_error() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=REFRESH)
    token = conn.refresh_token_encrypted
    conn.refresh_token_encrypted = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(CredentialDecryptionError):
        conn.get_secret("refresh_token")
    conn.refresh_token_encrypted = REFRESH  # plaintext in the column is refused, not returned
    with pytest.raises(CredentialDecryptionError):
        conn.get_secret("refresh_token")


def test_missing_or_bad_keys_are_a_configuration_error() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[]), pytest.raises(ImproperlyConfigured):
        crypto.encrypt_bound("x", context="c")
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=["not-a-key"]),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        crypto.encrypt_bound("x", context="c")
    assert "not-a-key" not in str(caught.value)


def test_helpers_bind_tenant_row_and_field() -> None:
    token = crypto.encrypt_secret("v", tenant_id=1, field="refresh_token", row_key="r1", model="m")
    assert crypto.decrypt_secret(token, tenant_id=1, field="refresh_token", row_key="r1", model="m") == "v"
    for other in (
        {"tenant_id": 2, "field": "refresh_token", "row_key": "r1", "model": "m"},
        {"tenant_id": 1, "field": "lwa_client_secret", "row_key": "r1", "model": "m"},
        {"tenant_id": 1, "field": "refresh_token", "row_key": "r2", "model": "m"},
        {"tenant_id": 1, "field": "refresh_token", "row_key": "r1", "model": "other"},
    ):
        with pytest.raises(CredentialDecryptionError):
            crypto.decrypt_secret(token, **other)


@pytest.mark.django_db(transaction=True, databases=["default", "platform"])
def test_secrets_never_appear_in_the_admin(admin_client) -> None:
    tenant = make_tenant()
    conn = make_connection(tenant, refresh_token=REFRESH, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    model_admin = site._registry[SellerConnection]
    shown = {str(name) for name in (*(model_admin.fields or ()), *model_admin.list_display)}
    assert not {name for name in shown if "secret" in name or "token" in name or "encrypted" in name}
    for url in ("/admin/amazon/sellerconnection/", f"/admin/amazon/sellerconnection/{conn.pk}/change/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert conn.selling_partner_id in body
        for secret in (REFRESH, CLIENT_ID, CLIENT_SECRET, conn.refresh_token_encrypted):
            assert secret not in body


# --- rotation ---------------------------------------------------------------------------------------


def _rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True, databases=["default", "platform"])
def test_rotation_round_trips_and_leaves_nothing_on_the_old_key() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    tenants = [make_tenant(), make_tenant()]
    with override_settings(FIELD_ENCRYPTION_KEYS=[old_key]):
        connections = [
            make_connection(
                t, refresh_token=f"{REFRESH}-{i}", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            )
            for i, t in enumerate(tenants * 3)
        ]
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        report = _rotate("--check")
        assert "18 value(s) still use an old key" in report  # 6 connections x 3 secrets
        report = _rotate("--batch-size", "2")
        assert "0 value(s) still use an old key" in report
        again = _rotate()  # resumable/idempotent: nothing left to do
        assert "re-encrypted 0" in again
    # Only the new key is needed now, and every secret still decrypts where it belongs.
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        for i, conn in enumerate(connections):
            with tenant_context(conn.tenant):
                loaded = _load(conn)
                assert loaded.get_secret("refresh_token") == f"{REFRESH}-{i}"
                assert loaded.get_secret("lwa_client_secret") == CLIENT_SECRET
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[old_key]),
        tenant_context(connections[0].tenant),
        pytest.raises(CredentialDecryptionError),
    ):
        _load(connections[0]).get_secret("refresh_token")
