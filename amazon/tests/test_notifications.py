"""The notifications intake (amazon/notifications.py, POST /amazon/notifications): origin, shape,
de-duplication, routing across tenants, hand-off to repricing, and the simulator end to end."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.test import Client, override_settings

from accounts.roles import Role
from amazon.models import OfferChangeNotification, SellerConnection, SellerRoute
from amazon.notifications import (
    COUNTS_KEY,
    PENDING_TENANTS_KEY,
    notification_counts,
    notification_sign,
    repricing_pending,
    repricing_pending_take,
)
from amazon.services import seller_connection_disconnect, seller_route_sync
from amazon.simulator.market import DEMO_SELLER_ID
from amazon.simulator.models_dir import spapi_models_path
from amazon.simulator.notifications import deliver
from amazon.tests.factories import make_connection
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import make_tenant

SPAPI_MODELS = spapi_models_path()
EXAMPLES = sorted((SPAPI_MODELS / "notification-examples").glob("*.json"))
URL = "/amazon/notifications"


def _example(name: str) -> dict[str, Any]:
    if not EXAMPLES:
        pytest.skip(f"Amazon's notification examples are not at {SPAPI_MODELS} (set SPAPI_MODELS_DIR)")
    path = next(p for p in EXAMPLES if p.name.startswith(name))
    return json.loads(path.read_text())


def _secret() -> str:
    return str(settings.AMAZON_NOTIFICATIONS_SECRET).split(",")[0]


def _post(
    client: Client,
    payload: dict[str, Any] | bytes,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    signed: bool = True,
    content_type: str = "application/json",
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers: dict[str, str] = {}
    if signed:
        ts = int(time.time()) if timestamp is None else timestamp
        headers["HTTP_X_SELLERPILOT_TIMESTAMP"] = str(ts)
        headers["HTTP_X_SELLERPILOT_SIGNATURE"] = signature or notification_sign(body, timestamp=ts)
    return client.generic("POST", URL, body, content_type=content_type, **headers)


def _routed(tenant: Tenant, seller_id: str, region: str = "NA") -> SellerConnection:
    connection = make_connection(tenant, selling_partner_id=seller_id, region=region)
    seller_route_sync(connection)
    return connection


def _rows(tenant: Tenant) -> list[OfferChangeNotification]:
    with tenant_context(tenant):
        return list(OfferChangeNotification.objects.order_by("id"))


def _aoc(seller_id: str, asin: str = "B00TEST001", notification_id: str = "n-1", **trigger: Any) -> dict:
    """Amazon's schema example, for `seller_id` / `asin` / `notification_id`."""
    document = copy.deepcopy(_example("aoc-01"))
    document["NotificationMetadata"]["NotificationId"] = notification_id
    body = document["Payload"]["AnyOfferChangedNotification"]
    body["SellerId"] = seller_id
    body["OfferChangeTrigger"]["ASIN"] = asin
    body["OfferChangeTrigger"].update(trigger)
    return document


@pytest.fixture
def tenant(db: None) -> Tenant:
    return make_tenant("Alpha")


# --- Amazon's own examples ------------------------------------------------------------------------------


def test_the_five_official_examples_are_here() -> None:
    assert len(EXAMPLES) == 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name[:6])
def test_every_official_example_is_accepted_once(
    path: Path, tenant: Tenant, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    document = json.loads(path.read_text())
    body = document["Payload"]["AnyOfferChangedNotification"]
    connection = _routed(tenant, body["SellerId"])
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, document)
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "accepted"}
    (row,) = _rows(tenant)
    assert row.connection_id == connection.pk
    assert row.notification_type == "ANY_OFFER_CHANGED"
    assert row.seller_id == body["SellerId"]
    assert row.asin == body["OfferChangeTrigger"]["ASIN"]
    assert row.marketplace_id == body["OfferChangeTrigger"]["MarketplaceId"]
    assert row.offers == body["Offers"]
    assert row.summary == body.get("Summary", {})
    assert row.processed_at is None
    amazon_id = document.get("NotificationMetadata", {}).get("NotificationId")
    assert row.notification_id == (amazon_id.strip() if amazon_id else row.notification_id)
    assert amazon_id or row.notification_id.startswith("sha256:")

    # Redelivered: answered as a duplicate by the Redis fast path, and by the database without it.
    assert _post(client, document).status_code == 200
    redis_client().flushdb()
    assert _post(client, document).json() == {"status": "duplicate"}
    assert len(_rows(tenant)) == 1


def test_the_examples_fields_are_stored_as_the_repricer_needs_them(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    assert _post(client, _example("aoc-01")).status_code == 202
    (row,) = _rows(tenant)
    assert row.item_condition == "New"
    assert row.time_of_offer_change is not None and row.time_of_offer_change.isoformat().startswith(
        "2020-07-13T19:42:04.284"
    )
    assert row.offer_change_trigger["OfferChangeType"] == "Internal"
    assert row.summary["BuyBoxPrices"][0]["LandedPrice"] == {"Amount": 10.0, "CurrencyCode": "USD"}
    assert row.summary["NumberOfOffers"][0]["OfferCount"] == 10


def test_a_leading_space_in_the_notification_id_is_the_same_notification(
    tenant: Tenant, client: Client
) -> None:
    document = _example("aoc-02")
    _routed(tenant, "merchantId")
    assert document["NotificationMetadata"]["NotificationId"].startswith(" ")
    assert _post(client, document).status_code == 202
    again = copy.deepcopy(document)
    again["NotificationMetadata"]["NotificationId"] = document["NotificationMetadata"][
        "NotificationId"
    ].strip()
    again["EventTime"] = "2020-01-11T00:10:00.000Z"  # a different body: only the id makes it the same
    assert _post(client, again).status_code == 200
    (row,) = _rows(tenant)
    assert row.notification_id == "2012e8e5-b365-4cb1-9fd8-be9dfc6d5eaf"


def test_pricing_health_is_accepted_and_stored_with_its_kind(tenant: Tenant, client: Client) -> None:
    schema_path = SPAPI_MODELS / "schemas/notifications/PricingHealthNotification.json"
    if not schema_path.is_file():
        pytest.skip(f"Amazon's schemas are not at {SPAPI_MODELS} (set SPAPI_MODELS_DIR)")
    schema = json.loads(schema_path.read_text())
    document = schema["examples"][0]
    _routed(tenant, document["payload"]["sellerId"])
    assert _post(client, document).status_code == 202
    (row,) = _rows(tenant)
    assert row.notification_type == "PRICING_HEALTH"
    assert row.issue_type == "BuyBoxDisqualification"
    assert (row.asin, row.marketplace_id, row.item_condition) == ("B007IBIWZY", "ATVPDKIKX0DER", "new")
    assert row.offers[0]["fulfillmentType"] == "MFN"
    assert row.summary["buyBoxPrices"][0]["landedPrice"]["amount"] == 8188.72


# --- origin -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["unsigned", "forged", "other_secret", "stale", "future", "not_a_number", "body_changed"],
)
def test_a_request_we_cannot_trust_is_refused_and_nothing_is_stored(
    how: str, tenant: Tenant, client: Client
) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    document = _example("aoc-01")
    body = json.dumps(document).encode()
    now = int(time.time())
    if how == "unsigned":
        response = _post(client, body, signed=False)
    elif how == "forged":
        response = _post(client, body, signature="v1=" + "0" * 64)
    elif how == "other_secret":
        response = _post(client, body, signature=notification_sign(body, timestamp=now, secret="guess"))
    elif how == "stale":
        response = _post(client, body, timestamp=now - 330)
    elif how == "future":
        response = _post(client, body, timestamp=now + 330)  # margin: the clock moves on meanwhile
    elif how == "not_a_number":
        response = client.generic(
            "POST",
            URL,
            body,
            content_type="application/json",
            HTTP_X_SELLERPILOT_TIMESTAMP="yesterday",
            HTTP_X_SELLERPILOT_SIGNATURE=notification_sign(body, timestamp=now),
        )
    else:
        signature = notification_sign(body, timestamp=now)
        tampered = body.replace(b"A3TH9S8BH6GOGM", b"A3TH9S8BH6GOGX")
        response = _post(client, tampered, timestamp=now, signature=signature)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] in {"not_authenticated", "stale_request"}
    assert "WWW-Authenticate" in response
    assert _rows(tenant) == []


def test_a_timestamp_just_inside_five_minutes_is_accepted(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    assert _post(client, _example("aoc-01"), timestamp=int(time.time()) - 290).status_code == 202


def test_a_rotated_secret_verifies_with_either_key(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    body = json.dumps(_example("aoc-01")).encode()
    now = int(time.time())
    old_signature = notification_sign(body, timestamp=now, secret="old-secret")
    with override_settings(AMAZON_NOTIFICATIONS_SECRET="new-secret,old-secret"):
        assert _post(client, body, timestamp=now, signature=old_signature).status_code == 202
    with override_settings(AMAZON_NOTIFICATIONS_SECRET="new-secret"):
        assert _post(client, body, timestamp=now, signature=old_signature).status_code == 401


def test_without_a_configured_secret_everything_is_refused(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    body = json.dumps(_example("aoc-01")).encode()
    now = int(time.time())
    signature = notification_sign(body, timestamp=now, secret="")
    with override_settings(AMAZON_NOTIFICATIONS_SECRET=""):
        response = _post(client, body, timestamp=now, signature=signature)
    assert response.status_code == 503
    assert _rows(tenant) == []


# --- bad input ----------------------------------------------------------------------------------------------


def _broken(change: str) -> dict[str, Any] | bytes:
    document = _aoc("A3TH9S8BH6GOGM")
    body = document["Payload"]["AnyOfferChangedNotification"]
    if change == "not_json":
        return b'{"NotificationType": "ANY_OFFER_CHANGED", '
    if change == "not_an_object":
        return b'["ANY_OFFER_CHANGED"]'
    if change == "nan":
        return json.dumps(document).replace('"Rank": 1', '"Rank": NaN').encode()
    if change == "latin1":
        return '{"NotificationType": "ANY_OFFER_CHANGED", "x": "\xe9"}'.encode("latin-1")
    if change == "no_type":
        del document["NotificationType"]
    elif change == "no_payload":
        del document["Payload"]
    elif change == "empty_payload":
        document["Payload"] = {}
    elif change == "no_seller":
        del body["SellerId"]
    elif change == "blank_seller":
        body["SellerId"] = "  "
    elif change == "seller_is_a_number":
        body["SellerId"] = 42
    elif change == "no_asin":
        del body["OfferChangeTrigger"]["ASIN"]
    elif change == "trigger_is_a_list":
        body["OfferChangeTrigger"] = []
    elif change == "offers_not_a_list":
        body["Offers"] = "none"
    elif change == "offer_not_an_object":
        body["Offers"] = ["x"]
    elif change == "amount_is_a_string":
        body["Offers"][0]["ListingPrice"]["Amount"] = "23.00"
    elif change == "amount_is_a_bool":
        body["Summary"]["BuyBoxPrices"][0]["LandedPrice"]["Amount"] = True
    elif change == "flag_is_a_string":
        body["Offers"][0]["IsFulfilledByAmazon"] = "true"
    elif change == "count_is_a_float":
        body["Summary"]["NumberOfOffers"][0]["OfferCount"] = 1.5
    elif change == "bad_time":
        body["OfferChangeTrigger"]["TimeOfOfferChange"] = "yesterday"
    elif change == "id_too_long":
        document["NotificationMetadata"]["NotificationId"] = "x" * 101
    elif change == "asin_too_long":
        body["OfferChangeTrigger"]["ASIN"] = "B" * 41
    elif change == "too_many_offers":
        body["Offers"] = body["Offers"] * 101
    else:
        raise AssertionError(change)
    return document


BROKEN = [
    "not_json",
    "not_an_object",
    "nan",
    "latin1",
    "no_type",
    "no_payload",
    "empty_payload",
    "no_seller",
    "blank_seller",
    "seller_is_a_number",
    "no_asin",
    "trigger_is_a_list",
    "offers_not_a_list",
    "offer_not_an_object",
    "amount_is_a_string",
    "amount_is_a_bool",
    "flag_is_a_string",
    "count_is_a_float",
    "bad_time",
    "id_too_long",
    "asin_too_long",
    "too_many_offers",
]


@pytest.mark.parametrize("change", BROKEN)
def test_a_malformed_notification_is_refused_with_the_error_shape(
    change: str, tenant: Tenant, client: Client
) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    response = _post(client, _broken(change))
    assert response.status_code == 400, (change, response.content)
    error = response.json()["error"]
    assert error["code"] in {"malformed_request", "validation_error"} and error["message"]
    if error["code"] == "validation_error":
        assert error["fields"]
    assert _rows(tenant) == []


def test_the_field_errors_name_the_field(tenant: Tenant, client: Client) -> None:
    response = _post(client, _broken("seller_is_a_number"))
    assert response.json()["error"]["fields"] == {
        "Payload.AnyOfferChangedNotification.SellerId": ["Must be a string."]
    }


def test_another_notification_type_is_not_handled(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    document = _aoc("A3TH9S8BH6GOGM")
    document["NotificationType"] = "FEED_PROCESSING_FINISHED"
    response = _post(client, document)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_notification"
    assert _rows(tenant) == []


def test_json_only_size_limited_post_only(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    document = _aoc("A3TH9S8BH6GOGM")
    assert _post(client, document, content_type="text/plain").status_code == 415
    with override_settings(AMAZON_NOTIFICATIONS_MAX_BYTES=1000):
        response = _post(client, document)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert client.get(URL).status_code == 405
    assert _rows(tenant) == []


# --- routing ----------------------------------------------------------------------------------------------


def test_a_seller_nobody_connected_is_accepted_and_dropped(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    response = _post(client, _aoc("AUNKNOWNSELLER1"))
    # The same answer as for a connected seller: the intake never tells which accounts exist.
    assert response.status_code == 202 and response.json() == {"status": "accepted"}
    assert _rows(tenant) == []
    assert notification_counts()["unrouted"] == 1


def test_a_notification_for_tenant_bs_seller_never_appears_in_tenant_a(
    tenant: Tenant, client: Client
) -> None:
    other = make_tenant("Bravo")
    _routed(tenant, "ASELLERALPHA01")
    _routed(other, "ASELLERBRAVO01")
    assert _post(client, _aoc("ASELLERBRAVO01", notification_id="for-b")).status_code == 202
    assert _rows(tenant) == []
    assert [row.seller_id for row in _rows(other)] == ["ASELLERBRAVO01"]
    # ... and without a tenant, the database shows none (row-level security).
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM amazon_offerchangenotification")
        assert cursor.fetchone()[0] == 0


def test_one_account_connected_by_two_tenants_fans_out_to_each(
    tenant: Tenant, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    other = make_tenant("Bravo")
    first, second = _routed(tenant, "ASHAREDSELLER1"), _routed(other, "ASHAREDSELLER1")
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, _aoc("ASHAREDSELLER1")).status_code == 202
    assert [row.connection_id for row in _rows(tenant)] == [first.pk]
    assert [row.connection_id for row in _rows(other)] == [second.pk]
    assert set(repricing_pending(tenant.pk)) == {"ATVPDKIKX0DER:B00TEST001"}
    assert set(repricing_pending(other.pk)) == {"ATVPDKIKX0DER:B00TEST001"}
    assert _post(client, _aoc("ASHAREDSELLER1")).status_code == 200


def test_the_marketplace_picks_the_region(tenant: Tenant, client: Client) -> None:
    europe = _routed(tenant, "ASELLERBOTH001", region="EU")
    _routed(make_tenant("Bravo"), "ASELLERBOTH001", region="NA")
    document = _aoc("ASELLERBOTH001", MarketplaceId="A1PA6795UKMFR9")  # Amazon.de
    assert _post(client, document).status_code == 202
    assert [row.connection_id for row in _rows(tenant)] == [europe.pk]


def test_disconnecting_stops_the_notifications(tenant: Tenant, client: Client) -> None:
    from tests.factories import make_member

    connection = _routed(tenant, "A3TH9S8BH6GOGM")
    assert SellerRoute.objects.filter(connection_public_id=connection.public_id).exists()
    owner = make_member(tenant, Role.OWNER)
    with tenant_context(tenant):
        seller_connection_disconnect(connection=connection, actor=owner, actor_role=Role.OWNER)
    assert not SellerRoute.objects.exists()
    assert _post(client, _aoc("A3TH9S8BH6GOGM")).status_code == 202
    assert _rows(tenant) == []


def test_the_route_follows_a_reconnected_account(tenant: Tenant) -> None:
    old = _routed(tenant, "A3TH9S8BH6GOGM")
    with tenant_context(tenant):
        SellerConnection.objects.filter(pk=old.pk).update(status=SellerConnection.Status.DISCONNECTED)
    new = _routed(tenant, "A3TH9S8BH6GOGM")
    assert list(SellerRoute.objects.values_list("connection_public_id", flat=True)) == [new.public_id]
    seller_route_sync(new)  # idempotent
    assert SellerRoute.objects.count() == 1


# --- hand-off to repricing ----------------------------------------------------------------------------


def test_a_burst_for_one_asin_leaves_one_pending_entry_the_newest(
    tenant: Tenant, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    for i in range(10):
        document = _aoc(
            "A3TH9S8BH6GOGM", notification_id=f"burst-{i}", TimeOfOfferChange=f"2024-05-01T10:00:{i:02d}.000Z"
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert _post(client, document).status_code == 202
    # A late delivery of an older change does not replace the newest.
    late = _aoc("A3TH9S8BH6GOGM", notification_id="late", TimeOfOfferChange="2024-05-01T09:59:00.000Z")
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, late).status_code == 202
    assert len(_rows(tenant)) == 11
    pending = repricing_pending(tenant.pk)
    assert list(pending) == ["ATVPDKIKX0DER:B00TEST001"]
    entry = pending["ATVPDKIKX0DER:B00TEST001"]
    newest = next(row for row in _rows(tenant) if row.notification_id == "burst-9")
    assert entry["notification_id"] == "burst-9" and entry["notification"] == str(newest.public_id)
    assert entry["kind"] == "ANY_OFFER_CHANGED" and entry["asin"] == "B00TEST001"
    assert redis_client().zscore(PENDING_TENANTS_KEY, tenant.pk) is not None

    taken = repricing_pending_take(tenant.pk)
    assert list(taken) == ["ATVPDKIKX0DER:B00TEST001"]
    assert repricing_pending(tenant.pk) == {}
    assert redis_client().zscore(PENDING_TENANTS_KEY, tenant.pk) is None


def test_nothing_is_handed_on_before_commit_or_for_a_refusal(tenant: Tenant, client: Client) -> None:
    _routed(tenant, "A3TH9S8BH6GOGM")
    assert _post(client, _aoc("A3TH9S8BH6GOGM")).status_code == 202  # the test transaction never commits
    assert repricing_pending(tenant.pk) == {}
    assert _post(client, _broken("no_asin")).status_code == 400
    assert repricing_pending(tenant.pk) == {}
    assert int(redis_client().hget(COUNTS_KEY, "refused_validation_error") or 0) == 1


# --- the simulator, end to end over HTTP --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_simulators_notifications_arrive_once_over_http(simulator: Any, live_server: Any) -> None:
    tenant = make_tenant("Demo")
    other = make_tenant("Bystander")
    _routed(tenant, DEMO_SELLER_ID)
    url = live_server.url + URL
    market = simulator.market
    market.subscribe(url, secret=_secret())
    market.clock.advance(2 * 3600)  # competitors reprice; Amazon notifies
    assert simulator.server.notifications.flush(timeout=60)
    sent = list(market.pending_notifications)
    ours = [n for n in sent if n["Payload"]["AnyOfferChangedNotification"]["SellerId"] == DEMO_SELLER_ID]
    assert ours, "the simulator sent no notification for the demo seller"
    assert {status for _, _, status in market.deliveries} == {202}

    rows = _rows(tenant)
    assert sorted(row.notification_id for row in rows) == sorted(
        n["NotificationMetadata"]["NotificationId"] for n in ours
    )
    assert _rows(other) == []
    pending = repricing_pending(tenant.pk)
    assert set(pending) == {
        f"{row.marketplace_id}:{row.asin}" for row in rows
    }  # one entry per ASIN however many changes

    # SQS delivers at least once: the same notifications again are duplicates, stored once.
    for payload in ours[:5]:
        assert deliver(url, payload, secret=_secret()) == 200
    assert len(_rows(tenant)) == len(rows)
    # A subscriber without the secret (or with another) gets nowhere.
    assert deliver(url, ours[0]) == 401
    assert deliver(url, ours[0], secret="not-the-secret") == 401
