"""Amazon's Notifications API (amazon/notifications_subscribe.py) against the simulator over real HTTP: a
connection that becomes active is subscribed (our SQS queue as the destination, ANY_OFFER_CHANGED and
PRICING_HEALTH), the ids are stored, subscribing again adopts what exists, and disconnecting deletes the
subscriptions (after commit, in a task) unless another company still has the account connected. The
simulator's answers validate against Amazon's model."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from unittest import mock

import httpx
import jsonschema
import pytest
from django.test import override_settings

from accounts.roles import Role
from amazon.models import SellerConnection
from amazon.notifications_subscribe import (
    NOTIFICATION_TYPES,
    notifications_subscribe,
    notifications_unsubscribe,
    queue_arn,
)
from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from amazon.simulator.models_dir import spapi_models_path
from amazon.simulator.notifications_api import notifications_for
from amazon.tests.sqs_world import connect, disconnect, reload, sqs, sqs_settings, tasks_run_when_sent
from config.redis import redis_client
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = spapi_models_path("models") / "notifications-api-model" / "notifications.json"


def _calls(simulator: Any, *operations: str) -> list[tuple[str, int]]:
    wanted = set(operations)
    return [(r.operation, r.status) for r in simulator.app.log if not wanted or r.operation in wanted]


def _subscriptions_at_amazon(simulator: Any) -> dict[str, str]:
    state = notifications_for(simulator.market)
    return {s.notification_type: s.subscription_id for s in state.subscriptions.values()}


@pytest.fixture
def world(simulator: Any) -> Any:
    tenant = make_tenant("Alpha")
    owner = make_member(tenant, Role.OWNER)
    with sqs_settings(simulator), tasks_run_when_sent() as sent:
        yield simulator, tenant, owner, sent


def test_connecting_subscribes_the_account_to_our_queue(world: Any) -> None:
    simulator, tenant, owner, sent = world
    connection = connect(simulator, tenant, owner)

    assert (
        "amazon.notifications_subscribe",
        {"tenant_id": tenant.pk, "connection_id": str(connection.public_id)},
    ) in sent
    row = reload(tenant, connection)
    at_amazon = _subscriptions_at_amazon(simulator)
    assert set(at_amazon) == set(NOTIFICATION_TYPES)
    assert row.notifications_subscriptions == at_amazon
    assert row.notifications_subscribed_at is not None
    state = notifications_for(simulator.market)
    (destination,) = state.destinations.values()
    assert row.notifications_destination_id == destination.destination_id
    assert destination.arn == queue_arn() == "arn:aws:sqs:us-east-1:000000000000:sellerpilot-notifications"
    assert destination.client_id == DEMO_CLIENT_ID  # our (platform) app owns the destination
    assert all(s.seller_id == simulator.seller_id for s in state.subscriptions.values())
    # Destinations are grantless (the simulator refuses a seller token there), subscriptions the seller's.
    assert _calls(simulator, "getDestinations", "createDestination", "createSubscription") == [
        ("getDestinations", 200),
        ("createDestination", 200),
        ("createSubscription", 200),
        ("createSubscription", 200),
    ]
    assert simulator.market.stats.token_grants_by_type["client_credentials"] == 1
    body = next(r.body for r in simulator.app.log if r.operation == "createSubscription")
    assert body["destinationId"] == destination.destination_id and body["payloadVersion"] == "1.0"


def test_subscribing_again_adopts_what_exists(world: Any) -> None:
    simulator, tenant, owner, _ = world
    connection = connect(simulator, tenant, owner)
    first = reload(tenant, connection).notifications_subscriptions
    redis_client().flushdb()  # the remembered destination id too: it is found again, not created twice

    connect(simulator, tenant, owner)  # re-authorised in place: subscribes again

    assert reload(tenant, connection).notifications_subscriptions == first
    assert len(notifications_for(simulator.market).destinations) == 1
    assert _calls(simulator, "createDestination") == [("createDestination", 200)]
    assert _calls(simulator, "createSubscription", "getSubscription")[2:] == [
        ("createSubscription", 409),
        ("getSubscription", 200),
        ("createSubscription", 409),
        ("getSubscription", 200),
    ]


def test_a_subscription_to_another_destination_is_replaced(world: Any) -> None:
    simulator, tenant, owner, _ = world
    connection = connect(simulator, tenant, owner)
    old = reload(tenant, connection).notifications_subscriptions["ANY_OFFER_CHANGED"]
    # The queue moved: a new ARN (another queue of the simulator) means another destination.
    simulator.market.throttling = False  # six createSubscription calls in a frozen simulated second
    other = sqs(simulator).create_queue("sellerpilot-notifications-2")
    with override_settings(AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN=other.arn):
        result = notifications_subscribe(reload(tenant, connection))
    assert result.status == "subscribed" and not result.errors
    new = result.subscriptions["ANY_OFFER_CHANGED"]
    assert new != old
    state = notifications_for(simulator.market)
    assert state.subscriptions[new].destination_id == state.destinations[result.destination_id].destination_id
    assert state.destinations[result.destination_id].arn == other.arn
    assert old not in state.subscriptions
    assert ("deleteSubscriptionById", 200) in _calls(simulator, "deleteSubscriptionById")


def test_without_a_queue_nothing_is_subscribed(simulator: Any) -> None:
    tenant = make_tenant("Alpha")
    owner = make_member(tenant, Role.OWNER)
    with sqs_settings(simulator, AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""), tasks_run_when_sent() as sent:
        connection = connect(simulator, tenant, owner)
        assert notifications_subscribe(connection).status == "not_configured"
    assert not [name for name, _ in sent if name.startswith("amazon.notifications")]
    assert _calls(simulator, "getDestinations", "createDestination", "createSubscription") == []
    assert reload(tenant, connection).notifications_subscriptions == {}


def test_disconnecting_deletes_the_subscriptions_after_commit(world: Any) -> None:
    simulator, tenant, owner, sent = world
    connection = connect(simulator, tenant, owner)
    assert len(_subscriptions_at_amazon(simulator)) == 2

    disconnect(tenant, reload(tenant, connection), owner)

    assert (
        "amazon.notifications_unsubscribe",
        {"tenant_id": tenant.pk, "connection_id": str(connection.public_id)},
    ) in sent
    assert _subscriptions_at_amazon(simulator) == {}
    # deleteSubscriptionById is grantless: the simulator answers a seller token with 403, as Amazon does.
    assert _calls(simulator, "deleteSubscriptionById") == [("deleteSubscriptionById", 200)] * 2
    row = reload(tenant, connection)
    assert row.status == SellerConnection.Status.DISCONNECTED
    assert row.notifications_subscriptions == {}


def test_disconnecting_never_waits_for_or_fails_with_the_unsubscribe(world: Any) -> None:
    simulator, tenant, owner, _ = world
    connection = connect(simulator, tenant, owner)

    def broker_down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker unreachable")

    with mock.patch("celery.app.task.Task.apply_async", side_effect=broker_down):
        row = disconnect(tenant, reload(tenant, connection), owner)
    assert row.status == SellerConnection.Status.DISCONNECTED
    assert reload(tenant, connection).status == SellerConnection.Status.DISCONNECTED
    assert len(_subscriptions_at_amazon(simulator)) == 2  # left for a later run, the disconnect stands


def test_an_account_another_company_still_has_connected_keeps_its_subscription(world: Any) -> None:
    simulator, tenant, owner, _ = world
    other = make_tenant("Beta")
    other_owner = make_member(other, Role.OWNER)
    mine = connect(simulator, tenant, owner)
    theirs = connect(simulator, other, other_owner)
    # One subscription per seller and application: the second company adopted the first one's.
    assert (
        reload(other, theirs).notifications_subscriptions == reload(tenant, mine).notifications_subscriptions
    )

    disconnect(tenant, reload(tenant, mine), owner)
    assert len(_subscriptions_at_amazon(simulator)) == 2  # still delivering to Beta
    assert reload(tenant, mine).notifications_subscriptions == {}

    disconnect(other, reload(other, theirs), other_owner)
    assert _subscriptions_at_amazon(simulator) == {}


def test_a_connection_disconnected_while_subscribing_is_unsubscribed_again(world: Any) -> None:
    simulator, tenant, owner, _ = world
    with override_settings(AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""):
        connection = connect(simulator, tenant, owner)  # not subscribed yet
    stale = reload(tenant, connection)  # what a worker that started subscribing holds in memory
    disconnect(tenant, reload(tenant, connection), owner)  # nothing stored: no unsubscribe task

    result = notifications_subscribe(stale)

    assert result.status == "disconnected_meanwhile"
    assert _calls(simulator, "createSubscription") == [("createSubscription", 200)] * 2
    assert _subscriptions_at_amazon(simulator) == {}
    assert reload(tenant, connection).notifications_subscriptions == {}


def test_a_type_amazon_refuses_is_reported_and_an_earlier_id_kept(world: Any) -> None:
    simulator, tenant, owner, _ = world
    with override_settings(AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""):
        connection = connect(simulator, tenant, owner)
    # ANY_OFFER_CHANGED: refused twice (the destination is looked up again, once); PRICING_HEALTH: fine.
    simulator.market.fail_next("createSubscription", 2, status=400)
    result = notifications_subscribe(reload(tenant, connection))
    assert result.status == "subscribed"
    assert set(result.errors) == {"ANY_OFFER_CHANGED"}
    assert result.errors["ANY_OFFER_CHANGED"].startswith("400")
    assert set(result.subscriptions) == {"PRICING_HEALTH"}
    assert _calls(simulator, "getDestinations") == [("getDestinations", 200)] * 2
    stored = reload(tenant, connection).notifications_subscriptions
    assert stored == result.subscriptions

    # Next time ANY_OFFER_CHANGED works, but Amazon refuses to show the existing PRICING_HEALTH one.
    simulator.market.fail_next("getSubscription", 2, status=403)
    again = notifications_subscribe(reload(tenant, connection))
    assert set(again.subscriptions) == {"ANY_OFFER_CHANGED"} and set(again.errors) == {"PRICING_HEALTH"}
    row = reload(tenant, connection).notifications_subscriptions
    assert row == {**again.subscriptions, "PRICING_HEALTH": stored["PRICING_HEALTH"]}  # the known id stays


def test_every_type_refused_is_reported_as_refused(world: Any) -> None:
    simulator, tenant, owner, _ = world
    with override_settings(AMAZON_NOTIFICATIONS_SQS_QUEUE_URL=""):
        connection = connect(simulator, tenant, owner)
    simulator.market.fail_next("createSubscription", 3, status=400)
    result = notifications_subscribe(reload(tenant, connection))
    assert result.status == "refused" and result.subscriptions == {}
    assert set(result.errors) == set(NOTIFICATION_TYPES)
    assert _calls(simulator, "getDestinations") == [("getDestinations", 200)] * 2  # looked again once only
    assert reload(tenant, connection).notifications_subscriptions == {}


def test_amazon_throttling_is_retried_by_the_client(world: Any) -> None:
    simulator, tenant, owner, _ = world
    simulator.market.fail_next("createSubscription", 1, status=429)
    connection = connect(simulator, tenant, owner)
    assert set(reload(tenant, connection).notifications_subscriptions) == set(NOTIFICATION_TYPES)
    assert _calls(simulator, "createSubscription")[0] == ("createSubscription", 429)


def test_an_own_app_connections_subscriptions_outlive_its_deleted_credentials(world: Any) -> None:
    simulator, tenant, owner, _ = world
    connection = connect(simulator, tenant, owner, own_app=True)
    stored = reload(tenant, connection).notifications_subscriptions
    assert set(stored) == set(NOTIFICATION_TYPES)
    assert notifications_for(simulator.market).destinations  # made with the seller's own app

    # Disconnecting deletes the seller's app credentials at once: deleting its subscriptions needs them.
    disconnect(tenant, reload(tenant, connection), owner)

    assert _subscriptions_at_amazon(simulator) == stored
    assert _calls(simulator, "deleteSubscriptionById") == []
    assert reload(tenant, connection).notifications_subscriptions == stored  # what is left at Amazon
    assert notifications_unsubscribe(reload(tenant, connection)) == dict.fromkeys(stored, "no_credentials")


# --- the simulator's Notifications API against Amazon's model ----------------------------------------


@cache
def _model() -> dict[str, Any]:
    return json.loads(MODEL.read_text())


def _validate(operation: str, status: int, body: Any) -> None:
    model = _model()
    for path_item in model["paths"].values():
        for op in path_item.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                schema = op["responses"][str(status)]["schema"]
                validator = jsonschema.Draft4Validator({**schema, "definitions": model["definitions"]})
                errors = [e.message for e in validator.iter_errors(body)]
                assert not errors, f"{operation} {status}: {errors}"
                return
    raise AssertionError(f"{operation} is not in the model")


@pytest.mark.skipif(not MODEL.is_file(), reason="Amazon's notifications model is not available")
def test_the_simulators_answers_follow_amazons_model(simulator: Any) -> None:
    base = simulator.base_url + "/notifications/v1"
    token = httpx.post(
        simulator.lwa_url,
        data={
            "grant_type": "client_credentials",
            "scope": "sellingpartnerapi::notifications",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    ).json()["access_token"]
    seller = httpx.post(
        simulator.lwa_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": simulator.credentials["refresh_token"],
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    ).json()["access_token"]
    grantless = {"x-amz-access-token": token}
    as_seller = {"x-amz-access-token": seller}
    arn = "arn:aws:sqs:us-east-1:000000000000:sellerpilot-notifications"

    def call(method: str, path: str, operation: str, headers: dict[str, str], body: Any = None) -> Any:
        response = httpx.request(method, base + path, headers=headers, json=body)
        _validate(operation, response.status_code, response.json())
        return response

    created = call(
        "POST",
        "/destinations",
        "createDestination",
        grantless,
        {"name": "q", "resourceSpecification": {"sqs": {"arn": arn}}},
    )
    assert created.status_code == 200
    destination_id = created.json()["payload"]["destinationId"]
    assert (
        call(
            "POST",
            "/destinations",
            "createDestination",
            grantless,
            {"name": "q", "resourceSpecification": {"sqs": {"arn": arn}}},
        ).status_code
        == 409
    )
    assert (
        call(
            "POST",
            "/destinations",
            "createDestination",
            grantless,
            {"name": "q", "resourceSpecification": {"sqs": {"arn": arn + "-missing"}}},
        ).status_code
        == 400
    )
    assert (
        call("GET", "/destinations", "getDestinations", grantless).json()["payload"][0]["destinationId"]
        == destination_id
    )
    assert call("GET", f"/destinations/{destination_id}", "getDestination", grantless).status_code == 200
    assert call("GET", "/destinations", "getDestinations", as_seller).status_code == 403  # grantless only

    subscription = call(
        "POST",
        "/subscriptions/ANY_OFFER_CHANGED",
        "createSubscription",
        as_seller,
        {"payloadVersion": "1.0", "destinationId": destination_id},
    )
    assert subscription.status_code == 200
    subscription_id = subscription.json()["payload"]["subscriptionId"]
    again = {"payloadVersion": "1.0", "destinationId": destination_id}
    assert (
        call("POST", "/subscriptions/ANY_OFFER_CHANGED", "createSubscription", as_seller, again).status_code
        == 409
    )
    assert (
        call("POST", "/subscriptions/ANY_OFFER_CHANGED", "createSubscription", grantless, again).status_code
        == 403
    )
    assert (
        call(
            "POST",
            "/subscriptions/PRICING_HEALTH",
            "createSubscription",
            as_seller,
            {"payloadVersion": "9", "destinationId": destination_id},
        ).status_code
        == 400
    )
    assert (
        call("GET", "/subscriptions/ANY_OFFER_CHANGED", "getSubscription", as_seller).json()["payload"][
            "subscriptionId"
        ]
        == subscription_id
    )
    assert call("GET", "/subscriptions/PRICING_HEALTH", "getSubscription", as_seller).status_code == 404
    path = f"/subscriptions/ANY_OFFER_CHANGED/{subscription_id}"
    assert call("GET", path, "getSubscriptionById", grantless).status_code == 200
    assert (
        call("DELETE", f"/destinations/{destination_id}", "deleteDestination", grantless).status_code == 409
    )
    assert call("DELETE", path, "deleteSubscriptionById", as_seller).status_code == 403
    assert call("DELETE", path, "deleteSubscriptionById", grantless).status_code == 200
    assert call("DELETE", path, "deleteSubscriptionById", grantless).status_code == 404
    assert (
        call("DELETE", f"/destinations/{destination_id}", "deleteDestination", grantless).status_code == 200
    )
