"""Factories for the Amazon connection tests (plain functions, like tests/factories.py)."""

from __future__ import annotations

import itertools
from typing import Any

from amazon.models import SellerConnection
from tenants.context import tenant_context
from tenants.models import Tenant

_sequence = itertools.count(1)


def make_connection(
    tenant: Tenant,
    *,
    refresh_token: str | None = "Atzr|refresh-token-secret",
    client_id: str | None = None,
    client_secret: str | None = None,
    **fields: Any,
) -> SellerConnection:
    """A saved active connection with an encrypted refresh token (own-app secrets when given)."""
    n = next(_sequence)
    with tenant_context(tenant):
        connection = SellerConnection(
            tenant=tenant,
            region=fields.pop("region", "NA"),
            selling_partner_id=fields.pop("selling_partner_id", f"A{n:013d}"),
            auth_kind=SellerConnection.AuthKind.OWN_APP
            if client_id
            else SellerConnection.AuthKind.PLATFORM_APP,
            **fields,
        )
        connection.set_secret("refresh_token", refresh_token)
        connection.set_secret("lwa_client_id", client_id)
        connection.set_secret("lwa_client_secret", client_secret)
        connection.save()
    return connection
