"""The Amazon Ads consent flow, clicked through against the simulator's Login with Amazon page (/ap/oa):
the Advertising page sends the seller to Amazon with scope advertising::campaign_management and a signed,
expiring, single-use state; Amazon sends them back with an authorization code, which is exchanged at the
LWA token endpoint, verified (the profiles must be this connection's seller) and stored. Cancelling,
another seller's account, a forged, foreign, expired or replayed state store nothing."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import signing
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon import services
from amazon.ads_tokens import AdsReauthorizationRequired, ads_access_token_for
from amazon.models import AdsProfile, SellerConnection
from amazon.services import ADS_SCOPE, AmazonConnectionError
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN, AdsMarket, ads_for
from amazon.simulator.market import CA, US
from amazon.tests.factories import make_connection
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_api_key, make_member, make_tenant

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/connections/ads/callback/"
OTHER_SELLER = "A2OTHERSELLER9"


@pytest.fixture
def sim(simulator: Any) -> Any:
    creds = simulator.credentials
    simulator.market.add_seller(OTHER_SELLER, "Someone Else's Store", [US])
    ads_for(simulator.market).allow_return_url(creds["lwa_app_id"], CALLBACK)
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        ADS_API_ENDPOINT=simulator.base_url,
        ADS_CONSENT_URLS=dict.fromkeys(("NA", "EU", "FE"), f"{simulator.base_url}/ap/oa"),
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
    ):
        yield simulator


@pytest.fixture
def world(sim: Any) -> tuple[SellerConnection, Any, Client]:
    connection = make_connection(make_tenant(), selling_partner_id=sim.seller_id, name="Demo Store")
    owner = make_member(connection.tenant, Role.OWNER)
    client = Client()
    client.force_login(owner)
    return connection, owner, client


def _start(client: Client, connection: SellerConnection) -> str:
    response = client.post(
        reverse("amazon:connection_ads_consent_start", kwargs={"public_id": connection.public_id})
    )
    assert response.status_code == 302
    return str(response["Location"])


def _amazon(sim: Any, location: str, *, account: str, action: str = "allow") -> str:
    """The person on Amazon's page: signed in as `account`, clicks `action`; where Amazon sends them."""
    page = httpx.get(location)
    assert page.status_code == 200, page.text
    consent_request = re.search(r'name="consent_request" value="([^"]+)"', page.text)
    assert consent_request and account in page.text
    answer = httpx.post(
        f"{sim.base_url}/ap/oa",
        data={"consent_request": consent_request.group(1), "account": account, "action": action},
    )
    assert answer.status_code == 302
    return str(answer.headers["Location"])


def _back(client: Client, location: str) -> Any:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return client.get(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})


def _stored(connection: SellerConnection) -> tuple[SellerConnection, set[str]]:
    with tenant_context(connection.tenant):
        stored = SellerConnection.objects.get(pk=connection.pk)
        profiles = set(AdsProfile.objects.filter(connection=connection).values_list("profile_id", flat=True))
    return stored, profiles


def test_authorising_through_amazon_stores_a_verified_grant(sim: Any, world: Any) -> None:
    connection, _owner, client = world
    location = _start(client, connection)
    sent = urlsplit(location)
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == f"{sim.base_url}/ap/oa"
    query = parse_qs(sent.query)
    assert query["client_id"] == [sim.credentials["lwa_app_id"]]
    assert query["scope"] == [ADS_SCOPE] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [CALLBACK] and query["state"][0]

    back = _amazon(sim, location, account=sim.seller_id)
    returned = parse_qs(urlsplit(back).query)
    assert returned["state"] == query["state"] and returned["scope"] == [ADS_SCOPE] and returned["code"]
    done = _back(client, back)
    assert done.status_code == 302
    assert done["Location"] == reverse("amazon:connection_ads", kwargs={"public_id": connection.public_id})

    stored, profiles = _stored(connection)
    assert stored.ads_state == "active" and stored.get_secret("ads_refresh_token")
    assert stored.get_secret("ads_refresh_token") in ads_for(sim.market).refresh_tokens
    assert profiles == {str(AdsMarket.profile_id_for(sim.seller_id, m)) for m in (US, CA)}
    grants = sim.market.stats.token_grants_by_type
    assert grants["authorization_code"] == 1
    assert grants["refresh_token"] == 0  # the access token issued with the grant answered the check
    assert ads_access_token_for(stored)
    with tenant_context(connection.tenant):
        event = AuditEvent.objects.get(action="amazon.ads_connect")
        assert AuditEvent.objects.filter(action="amazon.ads_consent_start").count() == 1
    assert event.changes["via"] == "consent" and event.changes["ads_status"] == ["not_connected", "active"]

    replay = _back(client, back)  # the same link again
    assert replay.status_code == 400 and "already used" in replay.content.decode()


def test_cancelling_on_amazon_stores_nothing(sim: Any, world: Any) -> None:
    connection, _owner, client = world
    back = _amazon(sim, _start(client, connection), account=sim.seller_id, action="cancel")
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    answer = _back(client, back)
    assert answer.status_code == 400 and "was not authorised" in answer.content.decode()
    stored, profiles = _stored(connection)
    assert stored.ads_state == "not_connected" and profiles == set()
    assert sim.market.stats.token_grants == 0


def test_consenting_as_another_seller_is_refused(sim: Any, world: Any) -> None:
    connection, _owner, client = world
    back = _amazon(sim, _start(client, connection), account=OTHER_SELLER)
    answer = _back(client, back)
    assert answer.status_code == 400 and "another Amazon account" in answer.content.decode()
    stored, profiles = _stored(connection)
    assert stored.ads_state == "not_connected" and profiles == set()


def test_the_consent_clears_a_needs_reauthorization_mark(sim: Any, world: Any) -> None:
    connection, _owner, client = world
    with tenant_context(connection.tenant):
        connection.set_secret("ads_refresh_token", DEMO_ADS_REFRESH_TOKEN)
        connection.save()
    sim.market.revoke_refresh_token(DEMO_ADS_REFRESH_TOKEN)
    with tenant_context(connection.tenant), pytest.raises(AdsReauthorizationRequired):
        ads_access_token_for(connection)
    assert _stored(connection)[0].ads_state == "needs_reauthorization"
    page = client.get(reverse("amazon:connection_ads", kwargs={"public_id": connection.public_id}))
    assert "Authorise Amazon Ads again" in page.content.decode()
    assert _back(client, _amazon(sim, _start(client, connection), account=sim.seller_id)).status_code == 302
    stored, _profiles = _stored(connection)
    assert stored.ads_state == "active" and stored.ads_reauthorization_required_at is None


def _state(connection: SellerConnection, user: Any) -> str:
    with tenant_context(connection.tenant):
        url = services.ads_consent_url_create(
            tenant=connection.tenant,
            actor=user,
            actor_role=Role.OWNER,
            connection=connection,
            redirect_uri=CALLBACK,
        )
    return parse_qs(urlsplit(url).query)["state"][0]


def _callback(connection: SellerConnection, user: Any, state: str, code: str) -> SellerConnection:
    with tenant_context(connection.tenant):
        return services.ads_consent_callback(
            tenant=connection.tenant,
            actor=user,
            actor_role=Role.OWNER,
            state=state,
            code=code,
            redirect_uri=CALLBACK,
        )


def _code(sim: Any) -> str:
    return ads_for(sim.market).issue_authorization_code(sim.seller_id, sim.credentials["lwa_app_id"])


def test_forged_foreign_and_expired_states_are_refused_before_lwa(
    sim: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, owner, _client = world
    state = _state(connection, owner)
    forged = state[:-3] + ("aaa" if not state.endswith("aaa") else "bbb")
    colleague = make_member(connection.tenant, Role.ADMIN)
    elsewhere = make_connection(make_tenant(), selling_partner_id=sim.seller_id)
    outsider = make_member(elsewhere.tenant, Role.OWNER)
    cases = [
        (connection, owner, forged, "invalid_state"),
        (connection, colleague, state, "invalid_state"),  # started by another person
        (elsewhere, outsider, state, "invalid_state"),  # for another company
    ]
    for target, user, candidate, code in cases:
        with pytest.raises(AmazonConnectionError) as caught:
            _callback(target, user, candidate, _code(sim))
        assert caught.value.code == code
    later = time.time() + 600 + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(connection, owner, state, _code(sim))
    assert caught.value.code == "consent_expired"
    assert sim.market.stats.token_grants == 0  # no code reached LWA
    assert _stored(connection)[0].ads_state == "not_connected"


def test_a_used_code_is_refused(sim: Any, world: Any) -> None:
    connection, owner, _client = world
    code = _code(sim)
    _callback(connection, owner, _state(connection, owner), code)
    with pytest.raises(AmazonConnectionError) as caught:
        _callback(connection, owner, _state(connection, owner), code)
    assert caught.value.code == "authorization_refused"


def test_the_api_gives_the_link_to_people_only(sim: Any, world: Any) -> None:
    connection, owner, _client = world
    url = reverse("api:connection-ads-consent-url", kwargs={"public_id": connection.public_id})
    raw, _ = token_issue(user_id=owner.pk, tenant_id=connection.tenant.pk, session_key="ads-consent")
    answer = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").post(url, {}, format="json")
    assert answer.status_code == 200, answer.content
    link = parse_qs(urlsplit(answer.json()["url"]).query)
    assert link["redirect_uri"] == [CALLBACK] and link["scope"] == [ADS_SCOPE]
    assert answer.json()["expires_in"] == 600
    _key, raw_key = make_api_key(connection.tenant, Role.ADMIN)
    refused = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}").post(url, {}, format="json")
    assert refused.status_code == 403 and "person_required" in refused.content.decode()
    own_app = make_connection(
        connection.tenant, selling_partner_id="A3OWNAPPSELLER", client_id="amzn1.own", client_secret="s"
    )
    conflict = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        reverse("api:connection-ads-consent-url", kwargs={"public_id": own_app.public_id}), {}, format="json"
    )
    assert conflict.status_code == 409 and "own_app_connection" in conflict.content.decode()


# --- the simulator's consent page ---------------------------------------------------------------------------


def _page(sim: Any, **params: str) -> httpx.Response:
    query = {
        "client_id": sim.credentials["lwa_app_id"],
        "scope": ADS_SCOPE,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "state": "s1",
        **params,
    }
    return httpx.get(f"{sim.base_url}/ap/oa", params=query)


def test_the_simulators_consent_page_checks_the_request(sim: Any) -> None:
    unknown = _page(sim, client_id="amzn1.application-oa2-client.unknown")
    assert unknown.status_code == 400 and "location" not in unknown.headers
    foreign = _page(sim, redirect_uri="https://evil.example/connections/ads/callback/")
    assert foreign.status_code == 400 and "location" not in foreign.headers
    scope = _page(sim, scope="profile")
    assert scope.status_code == 302
    assert parse_qs(urlsplit(scope.headers["location"]).query)["error"] == ["invalid_scope"]
    response_type = _page(sim, response_type="token")
    assert parse_qs(urlsplit(response_type.headers["location"]).query)["error"] == [
        "unsupported_response_type"
    ]
    loopback = _page(sim, redirect_uri="http://127.0.0.1:8123/connections/ads/callback/")
    assert loopback.status_code == 200  # a registered loopback return URL matches any port
    assert _page(sim, redirect_uri="http://127.0.0.1:8123/elsewhere/").status_code == 400
    forged = httpx.post(f"{sim.base_url}/ap/oa", data={"consent_request": "forged", "action": "allow"})
    assert forged.status_code == 400 and "location" not in forged.headers
    assert [e.operation for e in sim.app.log].count("adsConsent") == 7
