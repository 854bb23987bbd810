"""Dashboard pages and API for the synchronised seller data: listings (with the Buy Box of the latest offers
snapshot, in one query) and orders (items, fees and refunds; money only for roles that see money)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon.models import FinancialEvent, Listing, Order
from amazon.tests.data_factories import (
    make_financial_event,
    make_listing,
    make_offer_snapshot,
    make_order,
    make_order_item,
)
from amazon.tests.factories import make_connection
from tenants.models import Tenant
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER)
MONEY = "4321.09"
FEE = "-987.65"


def _client(tenant: Tenant, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_member(tenant, role))
    return client


def _api(tenant: Tenant, role: str = Role.OWNER) -> Client:
    user = make_member(tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="pages")
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


@pytest.fixture
def shop() -> dict[str, object]:
    tenant = make_tenant("Shop")
    connection = make_connection(tenant, name="Main store")
    listing = make_listing(connection, sku="MUG-RED", asin="B0MUGRED01", title="Red coffee mug")
    make_offer_snapshot(
        listing, observed_at=timezone.now() - timedelta(hours=2), buy_box_price=Decimal("11.11")
    )
    make_offer_snapshot(listing, buy_box_price=Decimal("12.34"), we_hold_buy_box=True)
    make_listing(connection, sku="LAMP-1", title="Desk lamp", status=Listing.Status.INACTIVE)
    order = make_order(connection, amazon_order_id="111-0000001-0000001")
    make_order_item(order, sku="MUG-RED", title="Red coffee mug")
    make_financial_event(order, referral_fee=Decimal(FEE))
    make_financial_event(order, attach=False, kind=FinancialEvent.Kind.REFUND, principal=Decimal("-5.00"))
    make_order(connection, amazon_order_id="111-0000002-0000002", status=Order.Status.CANCELED)
    return {"tenant": tenant, "connection": connection, "listing": listing, "order": order}


# --- Listings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_listings_render_for_every_role(shop: dict, role: str) -> None:
    body = _client(shop["tenant"], role).get(reverse("amazon:listings")).content.decode()
    assert "MUG-RED" in body and "B0MUGRED01" in body and "Red coffee mug" in body
    assert "12.34" in body and "Ours" in body  # the newest snapshot, not the older one
    assert "11.11" not in body
    assert 'aria-current="page"' in body


def test_listings_filters(shop: dict) -> None:
    client = _client(shop["tenant"])
    body = client.get(reverse("amazon:listings"), {"q": "mug"}).content.decode()
    assert "MUG-RED" in body and "LAMP-1" not in body
    body = client.get(reverse("amazon:listings"), {"q": "b0mugred"}).content.decode()
    assert "MUG-RED" in body and "LAMP-1" not in body
    body = client.get(reverse("amazon:listings"), {"status": "inactive"}).content.decode()
    assert "LAMP-1" in body and "MUG-RED" not in body
    body = client.get(reverse("amazon:listings"), {"q": "nothing-like-this"}).content.decode()
    assert "No listing matches" in body
    response = client.get(reverse("amazon:listings"), {"status": "bogus"})
    assert response.status_code == 200 and "MUG-RED" not in response.content.decode()


def test_listings_no_n_plus_one(shop: dict, django_assert_max_num_queries: object) -> None:
    connection = shop["connection"]
    for n in range(40):
        listing = make_listing(connection, sku=f"BULK-{n:03d}")
        make_offer_snapshot(listing)
    client = _client(shop["tenant"])
    client.get(reverse("amazon:listings"))  # warm up session/user caches
    with django_assert_max_num_queries(14):  # type: ignore[operator]
        response = client.get(reverse("amazon:listings"))
    assert response.content.decode().count("<tr>") >= 43


def test_listings_paginated(shop: dict) -> None:
    for n in range(55):
        make_listing(shop["connection"], sku=f"ZZ-{n:03d}")
    client = _client(shop["tenant"])
    first = client.get(reverse("amazon:listings")).content.decode()
    assert "Page 1 of 2" in first and "ZZ-054" not in first
    second = client.get(reverse("amazon:listings"), {"page": 2}).content.decode()
    assert "ZZ-054" in second


def test_empty_states_link_to_connections() -> None:
    tenant = make_tenant("Empty")
    client = _client(tenant)
    for route in ("amazon:listings", "amazon:orders"):
        body = client.get(reverse(route)).content.decode()
        assert "No Amazon account connected yet" in body
        assert reverse("amazon:connections") in body
    make_connection(tenant)
    assert "No listings yet" in client.get(reverse("amazon:listings")).content.decode()
    assert "No orders yet" in client.get(reverse("amazon:orders")).content.decode()


# --- Orders -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_orders_money_only_for_roles_that_see_money(shop: dict, role: str) -> None:
    client = _client(shop["tenant"], role)
    listing = client.get(reverse("amazon:orders")).content.decode()
    detail = client.get(reverse("amazon:order_detail", args=[shop["order"].public_id])).content.decode()
    assert "111-0000001-0000001" in listing and "Red coffee mug" in detail
    if role == Role.VIEWER:
        assert MONEY not in listing and MONEY not in detail and FEE not in detail
    else:
        assert MONEY in listing and MONEY in detail and FEE in detail
        assert "Refund" in detail  # an event naming the order but not yet attached to it


def test_orders_newest_first_and_status_filter(shop: dict) -> None:
    client = _client(shop["tenant"])
    body = client.get(reverse("amazon:orders")).content.decode()
    assert body.index("111-0000001-0000001") < body.index("111-0000002-0000002")
    body = client.get(reverse("amazon:orders"), {"status": "Canceled"}).content.decode()
    assert "111-0000002-0000002" in body and "111-0000001-0000001" not in body
    body = client.get(reverse("amazon:orders"), {"status": "Pending"}).content.decode()
    assert "No order matches" in body


def test_order_of_another_company_is_404(shop: dict) -> None:
    other = make_tenant("Other")
    client = _client(other)
    assert client.get(reverse("amazon:order_detail", args=[shop["order"].public_id])).status_code == 404
    assert "MUG-RED" not in client.get(reverse("amazon:listings")).content.decode()
    api = _api(other)
    assert api.get(reverse("api:order-detail", args=[shop["order"].public_id])).status_code == 404
    assert api.get(reverse("api:listing-list")).json()["results"] == []


# --- API --------------------------------------------------------------------------------------------------


def test_api_listings_filters_and_buy_box(shop: dict) -> None:
    client = _api(shop["tenant"], Role.VIEWER)
    data = client.get(reverse("api:listing-list"), {"q": "mug"}).json()
    assert [row["sku"] for row in data["results"]] == ["MUG-RED"]
    row = data["results"][0]
    assert row["buy_box_price"] == "12.34" and row["we_hold_buy_box"] is True
    data = client.get(reverse("api:listing-list"), {"status": "inactive"}).json()
    assert [row["sku"] for row in data["results"]] == ["LAMP-1"]
    assert client.get(reverse("api:listing-list"), {"colour": "red"}).status_code == 400


def test_api_listings_cursor_pagination(shop: dict) -> None:
    for n in range(5):
        make_listing(shop["connection"], sku=f"P-{n}")
    client = _api(shop["tenant"])
    first = client.get(reverse("api:listing-list"), {"page_size": 3}).json()
    assert len(first["results"]) == 3 and first["next"]
    second = client.get(first["next"]).json()
    assert not {r["sku"] for r in first["results"]} & {r["sku"] for r in second["results"]}


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_api_orders_money_fields(shop: dict, role: str) -> None:
    client = _api(shop["tenant"], role)
    orders = client.get(reverse("api:order-list"), {"status": "Shipped"}).json()["results"]
    assert [o["amazon_order_id"] for o in orders] == ["111-0000001-0000001"]
    detail = client.get(reverse("api:order-detail", args=[shop["order"].public_id])).json()
    assert detail["items"][0]["sku"] == "MUG-RED"
    assert {e["kind"] for e in detail["financial_events"]} == {"shipment", "refund"}
    if role == Role.VIEWER:
        assert "order_total" not in orders[0] and "order_total" not in detail
        assert "item_price" not in detail["items"][0]
        assert all("referral_fee" not in e and "total" not in e for e in detail["financial_events"])
    else:
        assert orders[0]["order_total"] == MONEY
        shipment = next(e for e in detail["financial_events"] if e["kind"] == "shipment")
        assert shipment["referral_fee"] == FEE
