"""/healthz: the process answers. /readyz: database, Redis and the Celery broker answer."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return type(error).__name__
    return None


def _check_redis(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
    except Exception as error:
        return type(error).__name__
    return None


def _check_broker(url: str) -> str | None:
    """Through kombu, which understands the broker URL as Celery does (`redis+socket://` included)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2, transport_options={"socket_timeout": 2}) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as error:  # reported, not raised
        return type(error).__name__
    return None


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "redis": _check_redis(settings.REDIS_URL),
        "broker": _check_broker(settings.CELERY_BROKER_URL),
    }
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if error is None else f"failed ({error})" for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
