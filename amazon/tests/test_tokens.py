"""Access tokens: one shared encrypted Redis cache, one LWA call for N concurrent workers, refresh before
expiry, re-authorisation on a revoked grant. LWA is an injected fake here (counted), and the real
HTTP path is exercised against the simulator when its fixture is present."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sp_api.api
from django.db import transaction
from django.test import override_settings

from amazon import tokens
from amazon.models import SellerConnection
from amazon.tests.factories import make_connection
from amazon.tokens import LwaError, ReauthorizationRequired
from config.redis import redis_client
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_tenant


class FakeLwa:
    """Counts calls; answers like LWA (optionally slowly, or refusing the grant)."""

    def __init__(self, *, expires_in: int = 3600, delay: float = 0.0, error: str = "") -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.error = error
        self.forms: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.forms.append(dict(form))
            n = len(self.forms)
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            raise LwaError("refused", error=self.error, status=400)
        return {"access_token": f"Atza|token-{n}", "token_type": "bearer", "expires_in": self.expires_in}

    @property
    def calls(self) -> int:
        return len(self.forms)


@pytest.fixture
def connection(db: None) -> SellerConnection:
    return make_connection(make_tenant(), refresh_token="Atzr|the-refresh-token")


def test_a_cache_hit_makes_no_lwa_call(connection: SellerConnection) -> None:
    lwa = FakeLwa()
    first = tokens.access_token_for(connection, lwa_call=lwa)
    second = tokens.access_token_for(connection, lwa_call=lwa)
    assert first == second == "Atza|token-1"
    assert lwa.calls == 1
    assert lwa.forms[0]["grant_type"] == "refresh_token"
    assert lwa.forms[0]["refresh_token"] == "Atzr|the-refresh-token"


def test_the_redis_value_is_encrypted_and_bound_to_the_connection(connection: SellerConnection) -> None:
    token = tokens.access_token_for(connection, lwa_call=FakeLwa())
    key = tokens.TOKEN_KEY.format(connection.public_id)
    raw = redis_client().get(key)
    assert raw is not None and token.encode() not in raw and b"Atza" not in raw
    # Copied under another connection's key, it is not accepted (a miss, then a fresh LWA call).
    other = make_connection(connection.tenant)
    redis_client().set(tokens.TOKEN_KEY.format(other.public_id), raw)
    lwa = FakeLwa()
    assert tokens.access_token_for(other, lwa_call=lwa) == "Atza|token-1"
    assert lwa.calls == 1


def test_ttl_is_expires_in_minus_the_margin(connection: SellerConnection) -> None:
    key = tokens.TOKEN_KEY.format(connection.public_id)
    with override_settings(LWA_TOKEN_REFRESH_MARGIN_SECONDS=300):
        tokens.access_token_for(connection, lwa_call=FakeLwa(expires_in=3600))
        assert 3290 <= redis_client().ttl(key) <= 3300
    tokens.invalidate_access_token(connection)
    with override_settings(LWA_TOKEN_REFRESH_MARGIN_SECONDS=300, LWA_TOKEN_TTL_SECONDS=600):
        tokens.access_token_for(connection, lwa_call=FakeLwa(expires_in=3600))
        assert 590 <= redis_client().ttl(key) <= 600


def test_an_expired_token_is_refreshed(connection: SellerConnection) -> None:
    lwa = FakeLwa(expires_in=2)
    with override_settings(LWA_TOKEN_REFRESH_MARGIN_SECONDS=1):
        assert tokens.access_token_for(connection, lwa_call=lwa) == "Atza|token-1"  # cached for 1 s
        time.sleep(1.2)
        assert tokens.access_token_for(connection, lwa_call=lwa) == "Atza|token-2"
    assert lwa.calls == 2


def test_invalidation_forces_a_refresh(connection: SellerConnection) -> None:
    lwa = FakeLwa()
    tokens.access_token_for(connection, lwa_call=lwa)
    tokens.invalidate_access_token(connection)  # what the client does after a 401/403
    assert tokens.access_token_for(connection, lwa_call=lwa) == "Atza|token-2"


def _run_concurrently(n: int, work: Callable[[], str]) -> list[str | BaseException]:
    barrier = threading.Barrier(n)
    results: list[str | BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            value: str | BaseException = work()
        except BaseException as error:
            value = error
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_n_concurrent_workers_cause_one_lwa_call(connection: SellerConnection) -> None:
    lwa = FakeLwa(delay=0.3)  # a slow LWA: everyone misses the cache at the same moment
    results = _run_concurrently(16, lambda: tokens.access_token_for(connection, lwa_call=lwa))
    assert results == ["Atza|token-1"] * 16
    assert lwa.calls == 1


def test_waiting_workers_give_up_after_the_lock_wait(connection: SellerConnection) -> None:
    lwa = FakeLwa(delay=1.5)
    with override_settings(LWA_TOKEN_LOCK_WAIT_SECONDS=0.3):
        results = _run_concurrently(3, lambda: tokens.access_token_for(connection, lwa_call=lwa))
    assert results.count("Atza|token-1") == 1
    assert sum(isinstance(r, tokens.TokenRefreshTimeout) for r in results) == 2
    assert lwa.calls == 1


def test_grantless_tokens_are_cached_apart(connection: SellerConnection) -> None:
    lwa = FakeLwa()
    seller = tokens.access_token_for(connection, lwa_call=lwa)
    grantless = tokens.grantless_token_for("sellingpartnerapi::notifications", lwa_call=lwa)
    assert grantless != seller
    assert tokens.grantless_token_for("sellingpartnerapi::notifications", lwa_call=lwa) == grantless
    assert lwa.calls == 2
    assert lwa.forms[1] == {
        "grant_type": "client_credentials",
        "scope": "sellingpartnerapi::notifications",
        "client_id": lwa.forms[1]["client_id"],
        "client_secret": lwa.forms[1]["client_secret"],
    }


def test_own_app_connections_use_their_own_credentials(db: None) -> None:
    conn = make_connection(make_tenant(), client_id="amzn1.app.seller", client_secret="seller-secret")
    lwa = FakeLwa()
    tokens.access_token_for(conn, lwa_call=lwa)
    assert lwa.forms[0]["client_id"] == "amzn1.app.seller"
    assert lwa.forms[0]["client_secret"] == "seller-secret"


def test_other_lwa_failures_are_typed_and_do_not_touch_the_connection(connection: SellerConnection) -> None:
    with pytest.raises(LwaError):
        tokens.access_token_for(connection, lwa_call=FakeLwa(error="server_error"))
    assert connection.status == SellerConnection.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_revoked_grant_marks_the_connection_even_when_the_caller_rolls_back() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant)
    lwa = FakeLwa(error="invalid_grant")

    # A task's transaction: the token refresh fails and the whole task rolls back.
    with pytest.raises(ReauthorizationRequired), tenant_context(tenant):
        loaded = SellerConnection.objects.get(pk=conn.pk)
        tokens.access_token_for(loaded, lwa_call=lwa)
    with tenant_context(tenant):
        stored = SellerConnection.objects.get(pk=conn.pk)
        assert stored.status == SellerConnection.Status.NEEDS_REAUTHORIZATION
        assert "Connect the account again" in stored.status_detail
        events = list(AuditEvent.objects.filter(action="amazon.connection_needs_reauthorization"))
        assert [(e.actor_label, e.target_id) for e in events] == [("system", str(conn.public_id))]
    # Afterwards nobody calls LWA again for it, and other workers get the typed error at once.
    with pytest.raises(ReauthorizationRequired):
        tokens.access_token_for(conn, lwa_call=lwa)
    assert lwa.calls == 1
    with tenant_context(tenant), pytest.raises(ReauthorizationRequired):
        tokens.access_token_for(SellerConnection.objects.get(pk=conn.pk), lwa_call=lwa)
    assert lwa.calls == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_facing_a_revoked_grant_ask_lwa_once() -> None:
    tenant = make_tenant()
    conn = make_connection(tenant)
    lwa = FakeLwa(error="invalid_grant", delay=0.2)
    results = _run_concurrently(8, lambda: tokens.access_token_for(conn, lwa_call=lwa))
    assert all(isinstance(r, ReauthorizationRequired) for r in results)
    assert lwa.calls == 1


def test_a_disconnected_connection_gets_no_token(connection: SellerConnection) -> None:
    connection.status = SellerConnection.Status.DISCONNECTED
    lwa = FakeLwa()
    with pytest.raises(tokens.ConnectionUnavailable):
        tokens.access_token_for(connection, lwa_call=lwa)
    assert lwa.calls == 0


def test_sp_api_clients_take_the_token_from_our_cache(connection: SellerConnection) -> None:
    lwa = FakeLwa()
    client = sp_api.api.Sellers(
        credentials=tokens.SP_API_PLACEHOLDER_CREDENTIALS,
        auth_token_client_class=tokens.access_token_client_class(connection, lwa_call=lwa),
    )
    assert client.auth.access_token == "Atza|token-1"
    assert client.headers["x-amz-access-token"] == "Atza|token-1"
    other_client = sp_api.api.Sellers(
        credentials=tokens.SP_API_PLACEHOLDER_CREDENTIALS,
        auth_token_client_class=tokens.access_token_client_class(connection, lwa_call=lwa),
    )
    assert other_client.auth.access_token == "Atza|token-1"
    assert lwa.calls == 1


@pytest.mark.django_db(transaction=True)
def test_disconnect_forgets_secrets_and_the_cached_token() -> None:
    from amazon.services import seller_connection_disconnect

    tenant = make_tenant()
    conn = make_connection(tenant)
    tokens.access_token_for(conn, lwa_call=FakeLwa())
    with tenant_context(tenant):
        done = seller_connection_disconnect(connection=conn, actor=None, actor_role="owner")
    assert redis_client().get(tokens.TOKEN_KEY.format(conn.public_id)) is None
    assert done.status == SellerConnection.Status.DISCONNECTED
    assert done.purge_after is not None and done.disconnected_at is not None
    assert (done.purge_after - done.disconnected_at).days == 30
    with tenant_context(tenant):
        stored = SellerConnection.objects.get(pk=conn.pk)
        assert stored.get_secret("refresh_token") is None
        assert stored.refresh_token_encrypted == ""


def test_disconnect_requires_the_permission(connection: SellerConnection) -> None:
    from amazon.services import AmazonConnectionError, seller_connection_disconnect

    with tenant_context(connection.tenant), pytest.raises(AmazonConnectionError), transaction.atomic():
        seller_connection_disconnect(connection=connection, actor=None, actor_role="operator")


# --- against the simulator's LWA endpoint (real HTTP, python-amazon-sp-api) --------------------------


def _simulator_connection(simulator: Any) -> SellerConnection:
    creds = simulator.credentials
    return make_connection(
        make_tenant(),
        selling_partner_id=simulator.seller_id,
        refresh_token=creds["refresh_token"],
        client_id=creds["lwa_app_id"],
        client_secret=creds["lwa_client_secret"],
    )


def test_n_workers_cause_one_grant_at_the_simulator(db: None, simulator: Any) -> None:
    conn = _simulator_connection(simulator)
    with override_settings(LWA_TOKEN_URL=simulator.lwa_url):
        results = _run_concurrently(12, lambda: tokens.access_token_for(conn))
        assert len(set(results)) == 1 and str(results[0]).startswith("Atza|")
        assert simulator.market.stats.token_grants == 1
        tokens.access_token_for(conn)
        assert simulator.market.stats.token_grants == 1  # a hit


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_at_the_simulator_needs_reauthorization(simulator: Any) -> None:
    conn = _simulator_connection(simulator)
    simulator.market.revoke_refresh_token(simulator.credentials["refresh_token"])
    with override_settings(LWA_TOKEN_URL=simulator.lwa_url), pytest.raises(ReauthorizationRequired):
        tokens.access_token_for(conn)
    with tenant_context(conn.tenant):
        assert (
            SellerConnection.objects.get(pk=conn.pk).status == SellerConnection.Status.NEEDS_REAUTHORIZATION
        )


def test_wrong_own_app_secret_at_the_simulator_needs_reauthorization(db: None, simulator: Any) -> None:
    conn = make_connection(
        make_tenant(),
        refresh_token=simulator.credentials["refresh_token"],
        client_id=simulator.credentials["lwa_app_id"],
        client_secret="not-the-secret",
    )
    with override_settings(LWA_TOKEN_URL=simulator.lwa_url), pytest.raises(ReauthorizationRequired):
        tokens.access_token_for(conn)
    assert conn.status == SellerConnection.Status.NEEDS_REAUTHORIZATION


def test_an_unreachable_lwa_is_a_typed_error(connection: SellerConnection) -> None:
    with (
        override_settings(LWA_TOKEN_URL="http://127.0.0.1:9/auth/o2/token", LWA_HTTP_TIMEOUT_SECONDS=1),
        pytest.raises(LwaError),
    ):
        tokens.access_token_for(connection)
    assert connection.status == SellerConnection.Status.ACTIVE
