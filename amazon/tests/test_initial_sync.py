"""A new or re-authorised connection queues its first listings, orders and financial events syncs, and only
once the connecting transaction has committed."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import override_settings

from accounts.roles import Role
from amazon import services, tasks
from tenants.context import tenant_context
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

EXPECTED = {"amazon.sync_listings", "amazon.sync_orders", "amazon.sync_financial_events"}


def _connect(simulator: Any, tenant: Any, actor: Any) -> Any:
    creds = simulator.credentials
    with tenant_context(tenant):
        return services.seller_connection_create_own_app(
            tenant=tenant,
            actor=actor,
            actor_role=Role.OWNER,
            region="NA",
            selling_partner_id=simulator.seller_id,
            lwa_client_id=creds["lwa_app_id"],
            lwa_client_secret=creds["lwa_client_secret"],
            refresh_token=creds["refresh_token"],
        )


@pytest.mark.parametrize("times", [1, 2], ids=["create", "reauthorize"])
def test_initial_sync_enqueued_after_commit(
    simulator: Any, django_capture_on_commit_callbacks: Any, times: int
) -> None:
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    sent: list[tuple[str, dict[str, Any]]] = []

    def fake_apply_async(self: Any, *args: Any, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        sent.append((self.name, kwargs or {}))

    with (
        override_settings(LWA_TOKEN_URL=simulator.lwa_url, SP_API_ENDPOINT=simulator.base_url),
        mock.patch("celery.app.task.Task.apply_async", autospec=True, side_effect=fake_apply_async),
    ):
        for _ in range(times - 1):
            with django_capture_on_commit_callbacks(execute=False):
                _connect(simulator, tenant, owner)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            connection = _connect(simulator, tenant, owner)
            assert sent == []  # nothing leaves before the commit
        assert sent == []
        for callback in callbacks:
            callback()
    assert {name for name, _ in sent} >= EXPECTED
    synced = [kwargs for name, kwargs in sent if name in EXPECTED]
    assert len(synced) == 3
    assert all(
        k["connection_id"] == str(connection.public_id) and k["tenant_id"] == tenant.pk for k in synced
    )
    assert tasks.sync_listings_task.name == "amazon.sync_listings"


def test_the_first_listings_sync_queues_the_first_offers_snapshot(
    simulator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tenant = make_tenant()
    owner = make_member(tenant, Role.OWNER)
    simulator.market.throttling = False
    sent: list[tuple[str, dict[str, Any]]] = []

    def fake_apply_async(self: Any, *args: Any, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        sent.append((self.name, kwargs or {}))

    with (
        override_settings(LWA_TOKEN_URL=simulator.lwa_url, SP_API_ENDPOINT=simulator.base_url),
        mock.patch("celery.app.task.Task.apply_async", autospec=True, side_effect=fake_apply_async),
    ):
        with django_capture_on_commit_callbacks(execute=False):
            connection = _connect(simulator, tenant, owner)
        with django_capture_on_commit_callbacks(execute=True):
            tasks.sync_listings_task.apply(
                kwargs={
                    "tenant_id": tenant.pk,
                    "connection_id": str(connection.public_id),
                    "triggered_by": "connect",
                }
            )
        with django_capture_on_commit_callbacks(execute=True):
            tasks.sync_listings_task.apply(
                kwargs={"tenant_id": tenant.pk, "connection_id": str(connection.public_id)}
            )
    offers = [kwargs for name, kwargs in sent if name == "amazon.sync_offers"]
    assert offers == [
        {"tenant_id": tenant.pk, "connection_id": str(connection.public_id), "triggered_by": "connect"}
    ]  # once: the scheduled listings run leaves offers to their own schedule
