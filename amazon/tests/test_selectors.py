"""Connection selectors: tenant scope, 404 across tenants, guardian grants narrow a member's view."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from amazon.models import SellerConnection
from amazon.selectors import seller_connection_get, seller_connection_list
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db


def test_a_grant_restricts_a_member_to_the_granted_connection() -> None:
    tenant = make_tenant()
    na, eu = make_connection(tenant), make_connection(tenant, region="EU")
    owner, assistant = make_member(tenant), make_member(tenant, role="operator")
    assign_perm("amazon.view_sellerconnection", assistant, eu)
    with tenant_context(tenant):
        assert list(seller_connection_list(tenant=tenant, user=owner)) == [na, eu]
        assert list(seller_connection_list(tenant=tenant, user=assistant)) == [eu]
        assert seller_connection_get(tenant=tenant, public_id=eu.public_id, user=assistant) == eu
        with pytest.raises(SellerConnection.DoesNotExist):
            seller_connection_get(tenant=tenant, public_id=na.public_id, user=assistant)


def test_another_companys_connection_is_not_found() -> None:
    a, b = make_tenant(), make_tenant()
    foreign = make_connection(b)
    with tenant_context(a), pytest.raises(SellerConnection.DoesNotExist):
        seller_connection_get(tenant=a, public_id=foreign.public_id)


def test_disconnected_connections_are_left_out_of_the_list() -> None:
    tenant = make_tenant()
    live, gone = make_connection(tenant), make_connection(tenant, status="disconnected")
    with tenant_context(tenant):
        assert list(seller_connection_list(tenant=tenant)) == [live]
        assert seller_connection_get(tenant=tenant, public_id=gone.public_id) == gone
