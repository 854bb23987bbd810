"""Bad input on every API write: a clear 4xx in the one error shape, and nothing written.

The operations come from the access matrix, so a new endpoint is checked here as soon as it is listed
there (and the matrix's meta-tests make sure it is).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey, Invitation, Membership, User
from accounts.tokens import token_issue
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.test_access_matrix import MATRIX, World, build_world

WRITES = [
    (route, method, rule)
    for route, methods in MATRIX.items()
    if route.startswith("api:")
    for method, rule in methods.items()
    if method in {"POST", "PATCH", "PUT"} and rule.body is not None
]
OBJECT_ROUTES = [
    (route, method, rule)
    for route, methods in MATRIX.items()
    if route.startswith("api:")
    for method, rule in methods.items()
    if rule.obj is not None
]


def _snapshot(world: World) -> dict[str, Any]:
    """Everything an API write could change, for both companies."""
    state: dict[str, Any] = {
        "members": sorted(Membership.objects.values_list("tenant_id", "user_id", "role")),
        "keys": sorted(ApiKey.objects.values_list("public_id", "revoked_at")),
        "users": sorted(User.objects.values_list("email", "full_name", "theme")),
        "tenants": sorted(Tenant.objects.values_list("pk", "require_mfa")),
    }
    for side, tenant in (("a", world.a), ("b", world.b)):
        with tenant_context(tenant):
            state[f"audit_{side}"] = AuditEvent.objects.count()
            state[f"invitations_{side}"] = sorted(
                (str(i.public_id), str(i.revoked_at)) for i in Invitation.objects.all()
            )
    return state


def _owner_client(world: World) -> APIClient:
    raw, _ = token_issue(user_id=world.users["owner"].pk, tenant_id=world.a.pk, session_key="bad-input")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _url(route: str, rule: Any, world: World) -> str:
    if rule.obj is None:
        return reverse(route)
    return reverse(route, kwargs={"public_id": world.objects[rule.obj]["a"].public_id})


def _wrong_types(body: dict[str, Any]) -> dict[str, Any]:
    swapped: dict[str, Any] = {}
    for name, value in body.items():
        swapped[name] = {"nested": [1, 2]} if isinstance(value, str) else "not-a-boolean-or-number"
    return swapped


BAD_BODIES = {
    "malformed JSON": lambda body: ('{"email": "x@example.com",', "application/json"),
    "JSON that is not an object": lambda body: (json.dumps([body]), "application/json"),
    "unknown field": lambda body: (json.dumps({**body, "is_superuser": True}), "application/json"),
    "wrong types": lambda body: (json.dumps(_wrong_types(body)), "application/json"),
    "empty object": lambda body: ("{}", "application/json"),
    "form encoding": lambda body: ("a=1&b=2", "application/x-www-form-urlencoded"),
    "oversized": lambda body: (
        json.dumps({**body, "padding": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}),
        "application/json",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize(("route", "method", "rule"), WRITES, ids=[f"{m} {r}" for r, m, _ in WRITES])
def test_bad_bodies_are_refused_and_nothing_is_written(route: str, method: str, rule: Any, kind: str) -> None:
    world = build_world()
    client = _owner_client(world)
    body = rule.body(world)
    if kind == "empty object" and method == "PATCH":
        pytest.skip("an empty PATCH is a valid no-op")
    payload, content_type = BAD_BODIES[kind](body)
    before = _snapshot(world)
    response = getattr(client, method.lower())(
        _url(route, rule, world), data=payload, content_type=content_type
    )
    assert 400 <= response.status_code < 500, f"{kind}: {response.status_code} {response.content[:200]!r}"
    error = response.json()["error"]
    assert error["code"] and error["message"], error
    assert _snapshot(world) == before, f"{kind} on {method} {route} changed data"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "method", "rule"), OBJECT_ROUTES, ids=[f"{m} {r}" for r, m, _ in OBJECT_ROUTES]
)
@pytest.mark.parametrize("whose", ["unknown", "other company"])
def test_unknown_and_foreign_ids_are_404_and_nothing_is_written(
    route: str, method: str, rule: Any, whose: str
) -> None:
    world = build_world()
    client = _owner_client(world)
    public_id = uuid.uuid4() if whose == "unknown" else world.objects[rule.obj]["b"].public_id
    body = rule.body(world) if rule.body else None
    before = _snapshot(world)
    response = getattr(client, method.lower())(
        reverse(route, kwargs={"public_id": public_id}), data=body, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _snapshot(world) == before


@pytest.mark.django_db
def test_a_malformed_id_in_the_path_is_404_in_the_error_shape() -> None:
    world = build_world()
    response = _owner_client(world).delete("/api/v1/api-keys/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_every_api_write_is_covered() -> None:
    assert {r for r, _, _ in WRITES} >= {
        "api:me",
        "api:tenant",
        "api:member-detail",
        "api:invitation-list",
        "api:api-key-list",
    }
