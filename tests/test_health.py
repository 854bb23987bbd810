"""/healthz answers while the process lives; /readyz answers 200 only when the database, Redis and the
Celery broker all answer, and 503 (with the failing check named) otherwise."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

DEAD_SOCKET = "/nonexistent-sellerpilot/dead.sock"


def test_healthz_is_ok_without_touching_services(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_every_dependency_answers(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
@override_settings(
    REDIS_URL=f"unix://{DEAD_SOCKET}?db=0", CELERY_BROKER_URL=f"redis+socket://{DEAD_SOCKET}?virtual_host=0"
)
def test_readyz_is_unavailable_when_redis_is_dead(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed")
    assert body["checks"]["broker"].startswith("failed")


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_readyz_is_unavailable_when_only_the_cache_redis_is_dead(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("failed")
    assert response.json()["checks"]["broker"] == "ok"


def test_health_endpoints_only_answer_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db(transaction=True)  # no test transaction around it: the connection is closed
def test_probes_still_answer_when_the_database_is_down(client: Client) -> None:
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    saved = settings_dict["HOST"], settings_dict["PORT"]
    connections["default"].close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"  # nothing listens there
    try:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("failed")
        assert response.json()["checks"]["redis"] == "ok"
    finally:
        connections["default"].close()
        settings_dict["HOST"], settings_dict["PORT"] = saved
