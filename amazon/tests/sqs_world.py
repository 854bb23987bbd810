"""Shared set-up of the SQS notifications tests: settings that point the Notifications API client and
boto3 at the running simulator, a real connect through the services, and Celery tasks run in-process
when they are sent (after commit, as in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

from django.test import override_settings

from accounts.roles import Role
from amazon import services
from amazon.models import SellerConnection
from amazon.simulator.sqs import ACCOUNT_ID, DEFAULT_QUEUE_NAME, SqsService, sqs_for
from tenants.context import tenant_context
from tenants.models import Tenant

#: Tasks run in-process when sent; the rest are only recorded.
RUN_TASKS = {"amazon.notifications_subscribe", "amazon.notifications_unsubscribe"}


def queue_url(simulator: Any, name: str = DEFAULT_QUEUE_NAME) -> str:
    return f"{simulator.base_url}/{ACCOUNT_ID}/{name}"


def sqs(simulator: Any) -> SqsService:
    return sqs_for(simulator.market)


@contextmanager
def sqs_settings(simulator: Any, **extra: Any) -> Iterator[None]:
    creds = simulator.credentials
    values: dict[str, Any] = {
        "LWA_TOKEN_URL": simulator.lwa_url,
        "SP_API_ENDPOINT": simulator.base_url,
        "LWA_CLIENT_ID": creds["lwa_app_id"],
        "LWA_CLIENT_SECRET": creds["lwa_client_secret"],
        "SP_API_APP_ID": "amzn1.sp.solution.test",
        "SP_API_RETRY_BASE_DELAY_SECONDS": 0.01,
        "SP_API_RETRY_BUDGET_SECONDS": 20,
        "AMAZON_NOTIFICATIONS_SQS_QUEUE_URL": queue_url(simulator),
        "AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN": "",
        "AMAZON_NOTIFICATIONS_SQS_ENDPOINT_URL": simulator.base_url,
        "AMAZON_NOTIFICATIONS_SQS_REGION": "us-east-1",
        "AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS": 1,
        "AMAZON_NOTIFICATIONS_SQS_VISIBILITY_TIMEOUT": 30,
    }
    with override_settings(**{**values, **extra}):
        yield


@contextmanager
def tasks_run_when_sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Record every task sent; run the notifications ones at once (throw: a failure fails the test)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def fake_apply_async(
        self: Any, args: Any = None, kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        sent.append((self.name, dict(kwargs or {})))
        if self.name in RUN_TASKS:
            return self.apply(kwargs=kwargs, throw=True)
        return None

    with mock.patch("celery.app.task.Task.apply_async", autospec=True, side_effect=fake_apply_async):
        yield sent


def connect(simulator: Any, tenant: Tenant, actor: Any, *, own_app: bool = False) -> SellerConnection:
    """Connect `tenant` to the simulator's demo seller as a person would: through the Seller Central consent
    flow for our (platform) app, or with the seller's own developer app. Verified, saved, tasks sent."""
    creds = simulator.credentials
    with tenant_context(tenant):
        if own_app:
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
        url = services.consent_url_create(tenant=tenant, actor=actor, actor_role=Role.OWNER, region="NA")
    state = parse_qs(urlsplit(url).query)["state"][0]
    code = simulator.market.issue_authorization_code(simulator.seller_id, creds["lwa_app_id"])
    with tenant_context(tenant):
        return services.consent_callback(
            tenant=tenant,
            actor=actor,
            actor_role=Role.OWNER,
            state=state,
            spapi_oauth_code=code,
            selling_partner_id=simulator.seller_id,
        )


def disconnect(tenant: Tenant, connection: SellerConnection, actor: Any) -> SellerConnection:
    with tenant_context(tenant):
        return services.seller_connection_disconnect(
            connection=connection, actor=actor, actor_role=Role.OWNER
        )


def reload(tenant: Tenant, connection: SellerConnection) -> SellerConnection:
    with tenant_context(tenant):
        return SellerConnection.objects.get(pk=connection.pk)
