"""Secrets stay out of logs, task arguments and API responses."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from config.logging import RedactSecretsFilter, redact
from tenants.jobs import check_task_arguments
from tests.factories import make_api_key, make_member, make_tenant


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /api/v1/me Authorization: Bearer sp_key_ab12cd34_SECRETSECRET", "SECRETSECRET"),
        ("refreshing with refresh_token=Atzr|IwEBIFAKEFAKEFAKE", "IwEBIFAKEFAKEFAKE"),
        ('{"client_secret": "amzn1.oa2-cs.v1.abcdef123"}', "amzn1.oa2-cs.v1.abcdef123"),
        ("access token Atza|IwEBIaccess12345 expired", "IwEBIaccess12345"),
        ("password=hunter2hunter2 for user", "hunter2hunter2"),
    ],
)
def test_log_lines_are_redacted(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_the_filter_rewrites_records_built_from_arguments() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token refresh_token=%s", ("Atzr|abcdef",), None
    )
    RedactSecretsFilter().filter(record)
    assert "abcdef" not in record.getMessage()


def test_the_filter_is_installed_on_the_console_handler() -> None:
    from django.conf import settings

    assert "redact" in settings.LOGGING["handlers"]["console"]["filters"]


def test_task_arguments_refuse_secrets() -> None:
    for name in ("refresh_token", "client_secret", "password", "api_key"):
        with pytest.raises(ValueError, match="secret"):
            check_task_arguments({name: "value"})
    check_task_arguments({"connection_id": 5, "api_key_id": 3})  # ids are fine


@pytest.mark.django_db
def test_api_responses_never_carry_key_hashes_or_password_hashes() -> None:
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    key, raw = make_api_key(tenant, Role.ADMIN)
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    urls = ("/api/v1/me", "/api/v1/members", "/api/v1/api-keys", "/api/v1/audit-events", "/api/v1/tenant")
    for url in urls:
        body = client.get(url).content.decode()
        assert key.key_hash not in body, url
        assert raw not in body, url
        assert owner.password not in body, url
