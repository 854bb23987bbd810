"""The one Redis client the product shares (bearer tokens, throttling, idempotency, the Amazon token
cache, locks and rate limiter): one connection pool per process and URL, not a new pool per call."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def redis_client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)
