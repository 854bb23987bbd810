"""Test setup: the test database is created and migrated as the owner role; tests then run as the
runtime role (not superuser, not owner, not BYPASSRLS), exactly like the product."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("APP_TESTING", "1")


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker,
    django_db_modify_db_settings: None,  # pytest-xdist: one test database per worker (test_<name>_gw0...)
):
    from django.test.utils import setup_databases, teardown_databases

    from tenants.db import as_owner

    with django_db_blocker.unblock(), as_owner("default"):
        db_cfg = setup_databases(
            verbosity=0, interactive=False, keepdb=False, aliases={"default", "platform"}
        )
    yield
    with django_db_blocker.unblock(), as_owner("default"):
        from django.db import connections

        for alias in connections:
            connections[alias].close()
        teardown_databases(db_cfg, verbosity=0)


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    """Each test starts with an empty Redis (tests own the embedded/CI Redis database)."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def _flush_as_owner() -> None:
    """Transactional tests end with TRUNCATE, which the runtime role must never hold (TRUNCATE ignores
    row-level security). The owner does that clean-up instead."""
    from django.test import TransactionTestCase

    from tenants.db import as_owner

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self: TransactionTestCase) -> None:
        with as_owner("default"), as_owner("platform"):
            original(self)

    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


_flush_as_owner()


@pytest.fixture(autouse=True)
def _no_tenant_leaks_between_tests() -> Iterator[None]:
    """Each test starts without a tenant, and one left active (e.g. by `activate()`) does not leak on."""
    from tenants import context

    token = context._current.set(None)
    yield
    context._current.reset(token)
