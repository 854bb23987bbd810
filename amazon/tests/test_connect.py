"""Connecting a seller account, against the simulator (real HTTP to its LWA and SP-API, real PostgreSQL
and Redis): the Seller Central consent round trip, the signed `state` (forged, expired, replayed,
someone else's), own-app credentials, verification before anything is saved, and disconnecting."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection as db_connection
from django.test import override_settings

from accounts.models import User
from accounts.roles import Role
from amazon import services
from amazon.models import SellerConnection
from amazon.services import AmazonConnectionError
from amazon.simulator import market as simulator_market
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.factories import make_member, make_tenant


@pytest.fixture
def sim(simulator: Any) -> Any:
    creds = simulator.credentials
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_APP_ID="amzn1.sp.solution.test",
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
    ):
        yield simulator


@pytest.fixture
def owner_world(db: None) -> tuple[Tenant, User]:
    tenant = make_tenant()
    return tenant, make_member(tenant, Role.OWNER)


def _connections(tenant: Tenant) -> list[SellerConnection]:
    with tenant_context(tenant):
        return list(SellerConnection.objects.all())


def _consent_state(tenant: Tenant, user: User, region: str = "NA") -> str:
    with tenant_context(tenant):
        url = services.consent_url_create(tenant=tenant, actor=user, actor_role=Role.OWNER, region=region)
    return parse_qs(urlsplit(url).query)["state"][0]


def _callback(tenant: Tenant, user: User, state: str, code: str, spid: str) -> SellerConnection:
    with tenant_context(tenant):
        return services.consent_callback(
            tenant=tenant,
            actor=user,
            actor_role=Role.OWNER,
            state=state,
            spapi_oauth_code=code,
            selling_partner_id=spid,
        )


def test_settings_name_the_simulators_demo_app_outside_production() -> None:
    # config/settings.py cannot import the simulator; its development defaults must match it.
    from config import settings as settings_module

    assert settings_module._SIMULATOR_APP == (
        simulator_market.DEMO_CLIENT_ID,
        simulator_market.DEMO_CLIENT_SECRET,
    )


def test_consent_url_names_our_app_region_and_a_signed_state(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    with tenant_context(tenant):
        url = services.consent_url_create(tenant=tenant, actor=user, actor_role=Role.OWNER, region="EU")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == settings.SELLER_CENTRAL_CONSENT_URLS["EU"]
    assert query["application_id"] == ["amzn1.sp.solution.test"]
    assert query["version"] == ["beta"]  # development: the app is a draft
    signed = signing.TimestampSigner(salt=services.CONSENT_SALT).unsign_object(query["state"][0])
    assert signed["t"] == str(tenant.public_id) and signed["u"] == str(user.public_id)
    assert signed["r"] == "EU" and len(signed["n"]) >= 16
    with override_settings(SP_API_CONSENT_BETA=False):
        with tenant_context(tenant):
            url = services.consent_url_create(tenant=tenant, actor=user, actor_role=Role.OWNER, region="NA")
        assert "version" not in parse_qs(urlsplit(url).query)


def test_only_owners_and_admins_may_start_connecting(sim: Any, owner_world: Any) -> None:
    tenant, _ = owner_world
    operator = make_member(tenant, Role.OPERATOR)
    with tenant_context(tenant), pytest.raises(AmazonConnectionError) as caught:
        services.consent_url_create(tenant=tenant, actor=operator, actor_role=Role.OPERATOR, region="NA")
    assert caught.value.status == 403


def test_consent_round_trip_saves_a_verified_active_connection(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    state = _consent_state(tenant, user)
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    connection = _callback(tenant, user, state, code, sim.seller_id)

    assert connection.status == SellerConnection.Status.ACTIVE
    assert connection.auth_kind == SellerConnection.AuthKind.PLATFORM_APP
    assert connection.selling_partner_id == sim.seller_id and connection.region == "NA"
    assert {m["id"] for m in connection.marketplaces} == {
        "ATVPDKIKX0DER",
        "A2EUQ1WTGCTBG2",
        "A1F83G8C2ARO7P",
        "A1PA6795UKMFR9",
    }
    assert connection.name == "Demo Outfitters"  # the store name Amazon reported
    # Verified with a real call, and the code was exchanged exactly once.
    assert sim.market.stats.token_grants_by_type["authorization_code"] == 1
    assert any(entry.operation == "getMarketplaceParticipations" for entry in sim.app.log)
    with tenant_context(tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
        refresh_token = stored.get_secret("refresh_token")
        assert refresh_token and refresh_token.startswith("Atzr|")
        assert stored.get_secret("lwa_client_id") is None  # the platform app's id is never stored
        assert AuditEvent.objects.filter(action="amazon.connection_create", target_id=str(stored.public_id))
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT refresh_token_encrypted FROM amazon_sellerconnection WHERE id = %s", [stored.pk]
            )
            assert refresh_token not in cursor.fetchone()[0]

    # The stored refresh token works for the next call (platform-app credentials from settings).
    from sp_api.api import Sellers

    from amazon.clients import sp_api_client

    assert sp_api_client(Sellers, stored, "ATVPDKIKX0DER").get_marketplace_participation().payload


def test_a_forged_state_is_refused_and_nothing_is_stored(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    state = _consent_state(tenant, user)
    forged = state[:-3] + ("AAA" if not state.endswith("AAA") else "BBB")
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(tenant, user, forged, code, sim.seller_id)
    assert caught.value.code == "invalid_state"
    # A state signed with another key (someone else's server) too.
    other = signing.TimestampSigner(key="not-our-secret", salt=services.CONSENT_SALT).sign_object(
        {"t": str(tenant.public_id), "u": str(user.public_id), "r": "NA", "n": "x" * 24}
    )
    with pytest.raises(AmazonConnectionError):
        _callback(tenant, user, other, code, sim.seller_id)
    assert _connections(tenant) == []
    assert sim.market.stats.token_grants == 0  # the code never reached LWA


def test_an_expired_state_is_refused(sim: Any, owner_world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant, user = owner_world
    state = _consent_state(tenant, user)
    later = time.time() + settings.SP_API_CONSENT_MAX_AGE_SECONDS + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(tenant, user, state, code, sim.seller_id)
    assert caught.value.code == "consent_expired"
    assert _connections(tenant) == []


def test_a_replayed_callback_is_refused(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    state = _consent_state(tenant, user)
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    _callback(tenant, user, state, code, sim.seller_id)
    second_code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(tenant, user, state, second_code, sim.seller_id)
    assert caught.value.code == "consent_replayed"
    assert len(_connections(tenant)) == 1
    assert sim.market.stats.token_grants_by_type["authorization_code"] == 1


def test_a_state_started_by_someone_else_or_for_another_company_is_refused(
    sim: Any, owner_world: Any
) -> None:
    tenant, user = owner_world
    state = _consent_state(tenant, user)
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    admin = make_member(tenant, Role.ADMIN)
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(tenant, admin, state, code, sim.seller_id)
    assert caught.value.code == "invalid_state"
    other = make_tenant()
    make_member(other, Role.OWNER, user=user)
    with pytest.raises(AmazonConnectionError):
        _callback(other, user, state, code, sim.seller_id)
    assert _connections(tenant) == [] and _connections(other) == []


def test_a_used_or_unknown_code_is_refused_and_nothing_is_stored(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(tenant, user, _consent_state(tenant, user), "ANDaNnot-a-real-code", sim.seller_id)
    assert caught.value.code == "authorization_refused"
    assert _connections(tenant) == []


def test_own_app_credentials_are_verified_then_stored(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    creds = sim.credentials
    with tenant_context(tenant):
        connection = services.seller_connection_create_own_app(
            tenant=tenant,
            actor=user,
            actor_role=Role.ADMIN,
            region="NA",
            selling_partner_id=sim.seller_id,
            lwa_client_id=creds["lwa_app_id"],
            lwa_client_secret=creds["lwa_client_secret"],
            refresh_token=creds["refresh_token"],
            name="Main US account",
        )
        stored = SellerConnection.objects.get(pk=connection.pk)
        assert stored.auth_kind == SellerConnection.AuthKind.OWN_APP
        assert stored.name == "Main US account" and stored.status == "active"
        assert stored.get_secret("lwa_client_secret") == creds["lwa_client_secret"]
        assert len(stored.marketplaces) == 4
        event = AuditEvent.objects.get(action="amazon.connection_create")
        assert creds["lwa_client_secret"] not in str(event.changes)
        assert creds["refresh_token"] not in str(event.changes)
    assert sim.market.stats.token_grants == 1  # one LWA call: verification reused its token


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"lwa_client_secret": "amzn1.oa2-cs.v1.wrong"}, "invalid_credentials"),
        ({"lwa_client_id": "amzn1.application-oa2-client.unknown"}, "invalid_credentials"),
        ({"refresh_token": "Atzr|not-a-real-token"}, "invalid_credentials"),
    ],
)
def test_wrong_own_app_credentials_store_nothing(
    sim: Any, owner_world: Any, change: dict[str, str], code: str
) -> None:
    tenant, user = owner_world
    creds = sim.credentials
    values = {
        "lwa_client_id": creds["lwa_app_id"],
        "lwa_client_secret": creds["lwa_client_secret"],
        "refresh_token": creds["refresh_token"],
        **change,
    }
    with tenant_context(tenant):
        before = SellerConnection.objects.count(), AuditEvent.objects.count()
        with pytest.raises(AmazonConnectionError) as caught:
            services.seller_connection_create_own_app(
                tenant=tenant,
                actor=user,
                actor_role=Role.OWNER,
                region="NA",
                selling_partner_id=sim.seller_id,
                **values,
            )
        assert (SellerConnection.objects.count(), AuditEvent.objects.count()) == before
    assert caught.value.code == code
    assert "Amazon did not accept" in caught.value.message
    for secret in values.values():
        assert secret not in caught.value.message


def test_nothing_is_saved_when_the_verification_call_fails(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    sim.market.fail_next("getMarketplaceParticipations", 10, 403)
    creds = sim.credentials
    with tenant_context(tenant), pytest.raises(AmazonConnectionError) as caught:
        services.seller_connection_create_own_app(
            tenant=tenant,
            actor=user,
            actor_role=Role.OWNER,
            region="NA",
            selling_partner_id=sim.seller_id,
            lwa_client_id=creds["lwa_app_id"],
            lwa_client_secret=creds["lwa_client_secret"],
            refresh_token=creds["refresh_token"],
        )
    assert caught.value.code == "verification_failed"
    assert _connections(tenant) == []


def test_amazon_down_during_verification_is_a_503_and_stores_nothing(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    sim.market.fail_next("getMarketplaceParticipations", 10, 503)
    creds = sim.credentials
    with tenant_context(tenant), pytest.raises(AmazonConnectionError) as caught:
        services.seller_connection_create_own_app(
            tenant=tenant,
            actor=user,
            actor_role=Role.OWNER,
            region="NA",
            selling_partner_id=sim.seller_id,
            lwa_client_id=creds["lwa_app_id"],
            lwa_client_secret=creds["lwa_client_secret"],
            refresh_token=creds["refresh_token"],
        )
    assert caught.value.status == 503
    assert _connections(tenant) == []


def test_connecting_again_reauthorises_the_connection_in_place(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    connection = make_connection(
        tenant,
        selling_partner_id=sim.seller_id,
        status=SellerConnection.Status.NEEDS_REAUTHORIZATION,
        status_detail="Amazon refused the stored authorisation.",
    )
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    again = _callback(tenant, user, _consent_state(tenant, user), code, sim.seller_id)
    assert again.pk == connection.pk
    assert again.status == "active" and again.status_detail == ""
    assert len(_connections(tenant)) == 1
    with tenant_context(tenant):
        assert AuditEvent.objects.filter(action="amazon.connection_reauthorize").count() == 1


def test_disconnect_deletes_the_secrets_at_once_and_sets_purge_after(sim: Any, owner_world: Any) -> None:
    tenant, user = owner_world
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    connection = _callback(tenant, user, _consent_state(tenant, user), code, sim.seller_id)
    with tenant_context(tenant):
        services.seller_connection_disconnect(connection=connection, actor=user, actor_role=Role.OWNER)
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT lwa_client_id_encrypted, lwa_client_secret_encrypted, refresh_token_encrypted, "
                "ads_refresh_token_encrypted, status, disconnected_at, purge_after "
                "FROM amazon_sellerconnection WHERE id = %s",
                [connection.pk],
            )
            *columns, status, disconnected_at, purge_after = cursor.fetchone()
    assert columns == ["", "", "", ""]
    assert status == "disconnected"
    assert (purge_after - disconnected_at).days == settings.AMAZON_DATA_RETENTION_DAYS


def test_connecting_routes_the_accounts_notifications_and_disconnecting_stops_them(
    sim: Any, owner_world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from amazon.ads_tokens import ADS_TOKEN_KEY
    from amazon.models import SellerRoute
    from config.redis import redis_client

    tenant, user = owner_world
    code = sim.market.issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])
    connection = _callback(tenant, user, _consent_state(tenant, user), code, sim.seller_id)
    route = SellerRoute.objects.get(connection_public_id=connection.public_id)
    assert (route.selling_partner_id, route.tenant_id) == (sim.seller_id, tenant.pk)
    redis_client().set(ADS_TOKEN_KEY.format(connection.public_id), "cached")
    with tenant_context(tenant), django_capture_on_commit_callbacks(execute=True):
        services.seller_connection_disconnect(connection=connection, actor=user, actor_role=Role.OWNER)
    assert not SellerRoute.objects.filter(connection_public_id=connection.public_id).exists()
    assert redis_client().get(ADS_TOKEN_KEY.format(connection.public_id)) is None


def test_demo_seed_connects_the_demo_company_once(sim: Any, db: None) -> None:
    from accounts.management.commands.seed_demo import DEMO_TENANTS, seed_demo, seed_demo_connection

    seed_demo()
    with override_settings(SIMULATOR_URL=sim.base_url):
        assert "made" in seed_demo_connection()
        assert "already there" in seed_demo_connection()
    tenant = Tenant.objects.get(slug=DEMO_TENANTS[0][1])
    (connection,) = _connections(tenant)
    assert connection.status == "active" and connection.auth_kind == "own_app"
    assert connection.selling_partner_id == sim.seller_id


def test_demo_seed_says_so_when_the_simulator_is_down(db: None) -> None:
    from accounts.management.commands.seed_demo import seed_demo, seed_demo_connection

    seed_demo()
    with override_settings(SIMULATOR_URL="http://127.0.0.1:9"):
        assert "not reachable" in seed_demo_connection()
