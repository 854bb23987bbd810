"""The simulator's Seller Central consent page (amazon/simulator/consent.py) over real HTTP: the page,
Authorize and Cancel redirects with Amazon's parameters, its refusals (unknown or draft application,
unregistered redirect URI, no state, a stale or replayed form), and the whole website authorisation
round trip through our own pages; settings point the consent URL at the simulator outside production
and at Seller Central in production."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from accounts.roles import Role
from amazon.models import SellerConnection
from amazon.simulator.consent import CONSENT_PATH, redirect_uri_allowed
from amazon.simulator.market import DEMO_APPLICATION_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tenants.context import tenant_context
from tests.factories import make_member, make_tenant

CALLBACK = "http://127.0.0.1:8000/connections/callback/"
SECOND_SELLER = "A2SECONDSELLR9"


@pytest.fixture
def sim(simulator: Any) -> Any:
    simulator.market.add_seller(SECOND_SELLER, "Second Store", ["ATVPDKIKX0DER"])
    return simulator


def _consent(sim: Any, **params: str) -> httpx.Response:
    query = {"application_id": DEMO_APPLICATION_ID, "state": "opaque-state-1", "version": "beta", **params}
    return httpx.get(sim.base_url + CONSENT_PATH, params={k: v for k, v in query.items() if v is not None})


def _form_id(page: httpx.Response) -> str:
    match = re.search(r'name="consent_request" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def _answer(sim: Any, form_id: str, action: str, seller: str = "") -> httpx.Response:
    data = {"consent_request": form_id, "action": action}
    if seller:
        data["selling_partner_id"] = seller
    return httpx.post(sim.base_url + CONSENT_PATH, data=data)


def _redirect(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    return f"{location.scheme}://{location.netloc}{location.path}", parse_qs(location.query)


def test_the_page_lists_the_seller_accounts_with_authorize_and_cancel(sim: Any) -> None:
    page = _consent(sim, redirect_uri=CALLBACK)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Authorize SellerPilot (development)" in page.text
    for seller_id in (sim.seller_id, SECOND_SELLER):
        assert f'name="selling_partner_id" value="{seller_id}"' in page.text
    assert "Demo Outfitters" in page.text and "Second Store" in page.text
    assert 'value="authorize"' in page.text and 'value="cancel"' in page.text
    assert "opaque-state-1" not in page.text  # the form carries a request id, not the state


def test_authorize_redirects_with_state_seller_and_a_code_lwa_exchanges_once(sim: Any) -> None:
    sim.market.applications[DEMO_APPLICATION_ID].redirect_uris.append(CALLBACK + "?from=consent")
    page = _consent(sim, redirect_uri=CALLBACK + "?from=consent")
    target, query = _redirect(_answer(sim, _form_id(page), "authorize", SECOND_SELLER))
    assert target == CALLBACK
    assert set(query) == {"from", "state", "selling_partner_id", "spapi_oauth_code"}
    assert query["state"] == ["opaque-state-1"] and query["selling_partner_id"] == [SECOND_SELLER]

    exchange = {
        "grant_type": "authorization_code",
        "code": query["spapi_oauth_code"][0],
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    granted = httpx.post(sim.lwa_url, data=exchange)
    assert granted.status_code == 200
    refresh_token = granted.json()["refresh_token"]
    assert sim.market.refresh_tokens[refresh_token].selling_partner_id == SECOND_SELLER
    again = httpx.post(sim.lwa_url, data=exchange)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_cancel_redirects_back_with_access_denied_and_the_state(sim: Any) -> None:
    before = dict(sim.market.auth_codes)
    target, query = _redirect(_answer(sim, _form_id(_consent(sim, redirect_uri=CALLBACK)), "cancel"))
    assert target == CALLBACK
    assert query["error"] == ["access_denied"] and query["state"] == ["opaque-state-1"]
    assert query["error_description"] and "spapi_oauth_code" not in query
    assert sim.market.auth_codes == before  # no code issued


def test_a_form_answers_once(sim: Any) -> None:
    form_id = _form_id(_consent(sim, redirect_uri=CALLBACK))
    assert _answer(sim, form_id, "authorize", sim.seller_id).status_code == 302
    for action in ("authorize", "cancel"):
        replay = _answer(sim, form_id, action, sim.seller_id)
        assert replay.status_code == 400 and "expired" in replay.text
    assert _answer(sim, "forged", "authorize", sim.seller_id).status_code == 400


def test_an_unknown_seller_gets_no_code(sim: Any) -> None:
    answer = _answer(sim, _form_id(_consent(sim, redirect_uri=CALLBACK)), "authorize", "A0NOSUCHSELLER")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert not sim.market.auth_codes


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"application_id": "amzn1.sp.solution.unknown"}, 404, "does not exist"),
        ({"version": None}, 400, "draft"),  # a draft app needs version=beta
        ({"state": None}, 400, "state"),
        ({"redirect_uri": "https://attacker.example/connections/callback/"}, 400, "not one of"),
        ({"redirect_uri": "http://127.0.0.1:8000/elsewhere/"}, 400, "not one of"),
    ],
)
def test_refusals_show_an_error_page_and_never_redirect(
    sim: Any, params: dict[str, str | None], status: int, says: str
) -> None:
    page = _consent(sim, **{"redirect_uri": CALLBACK, **params})  # type: ignore[arg-type]
    assert page.status_code == status
    assert says in page.text
    assert "location" not in page.headers and "consent_request" not in page.text


def test_without_redirect_uri_the_first_registered_one_is_used(sim: Any) -> None:
    sim.market.register_application(
        "amzn1.sp.solution.published", DEMO_CLIENT_ID, ["https://app.example/cb", "https://app.example/b"]
    )
    sim.market.applications["amzn1.sp.solution.published"].draft = False
    page = _consent(sim, application_id="amzn1.sp.solution.published", version=None)
    target, query = _redirect(_answer(sim, _form_id(page), "authorize", sim.seller_id))
    assert target == "https://app.example/cb" and query["selling_partner_id"] == [sim.seller_id]


def test_loopback_redirect_uris_match_any_port_others_exactly(sim: Any) -> None:
    app = sim.market.applications[DEMO_APPLICATION_ID]
    assert redirect_uri_allowed(app, "http://127.0.0.1:43117/connections/callback/")
    assert redirect_uri_allowed(app, "http://localhost:8001/connections/callback/")
    assert not redirect_uri_allowed(app, "https://127.0.0.1:8000/connections/callback/")  # scheme
    assert not redirect_uri_allowed(app, "http://127.0.0.1.example.com:80/connections/callback/")
    published = sim.market.register_application(
        "amzn1.sp.solution.p2", DEMO_CLIENT_ID, ["https://app.example/cb"], draft=False
    )
    assert redirect_uri_allowed(published, "https://app.example/cb")
    assert not redirect_uri_allowed(published, "https://app.example:444/cb")


# --- the round trip through our pages ----------------------------------------------------------------


@pytest.fixture
def wired(sim: Any) -> Any:
    """Our settings pointed at this simulator, the platform app being the simulator's demo app."""
    consent_url = sim.base_url + CONSENT_PATH
    with override_settings(
        LWA_TOKEN_URL=sim.lwa_url,
        SP_API_ENDPOINT=sim.base_url,
        LWA_CLIENT_ID=DEMO_CLIENT_ID,
        LWA_CLIENT_SECRET=DEMO_CLIENT_SECRET,
        SP_API_APP_ID=DEMO_APPLICATION_ID,
        SP_API_CONSENT_BETA=True,
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        SELLER_CENTRAL_CONSENT_URLS={"NA": consent_url, "EU": consent_url, "FE": consent_url},
    ):
        yield sim


def _signed_in_owner() -> tuple[Any, Client]:
    tenant = make_tenant()
    client = Client()
    client.force_login(make_member(tenant, Role.OWNER))
    return tenant, client


def _start(client: Client) -> str:
    started = client.post(reverse("amazon:consent_start"), {"region": "NA"})
    assert started.status_code == 302
    return started["Location"]


def _our_path(location: str) -> str:
    parts = urlsplit(location)
    assert parts.netloc == "testserver"  # consent_start named our own callback as redirect_uri
    return f"{parts.path}?{parts.query}"


@pytest.mark.django_db
def test_connecting_through_the_consent_page_saves_an_active_connection(wired: Any) -> None:
    tenant, client = _signed_in_owner()
    # Django's test client is "testserver"; the simulator's app is told about that host like any app.
    wired.market.applications[DEMO_APPLICATION_ID].redirect_uris.append(
        "http://testserver/connections/callback/"
    )
    page = httpx.get(_start(client))
    assert page.status_code == 200 and "Demo Outfitters" in page.text
    location = _answer(wired, _form_id(page), "authorize", wired.seller_id).headers["location"]

    landed = client.get(_our_path(location))
    with tenant_context(tenant):
        connection = SellerConnection.objects.get()
    assert landed.status_code == 302
    assert landed["Location"] == reverse("amazon:connection_detail", args=[connection.public_id])
    assert connection.status == SellerConnection.Status.ACTIVE
    assert connection.auth_kind == SellerConnection.AuthKind.PLATFORM_APP
    assert connection.selling_partner_id == wired.seller_id and connection.name == "Demo Outfitters"
    detail = client.get(landed["Location"]).content.decode()
    assert "Connected Demo Outfitters." in detail


@pytest.mark.django_db
def test_cancelling_on_the_consent_page_saves_nothing(wired: Any) -> None:
    tenant, client = _signed_in_owner()
    wired.market.applications[DEMO_APPLICATION_ID].redirect_uris.append(
        "http://testserver/connections/callback/"
    )
    page = httpx.get(_start(client))
    location = _answer(wired, _form_id(page), "cancel").headers["location"]
    failed = client.get(_our_path(location))
    assert failed.status_code == 400
    assert "authorisation was not given" in failed.content.decode()
    with tenant_context(tenant):
        assert not SellerConnection.objects.exists()


@pytest.mark.django_db
def test_pages_with_a_consent_form_allow_its_redirect_in_form_action(wired: Any) -> None:
    _, client = _signed_in_owner()
    for name in ("amazon:connect", "amazon:connections"):
        policy = client.get(reverse(name))["Content-Security-Policy"]
        form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
        assert form_action.split()[1:] == ["'self'", wired.base_url]
    # Other pages keep form-action to our own origin.
    policy = client.get(reverse("amazon:listings"))["Content-Security-Policy"]
    assert "form-action 'self';" in policy + ";"


# --- where the consent URL points ---------------------------------------------------------------------


def test_outside_production_the_consent_urls_are_the_simulators() -> None:
    from config import settings as settings_module

    assert settings_module.SP_API_APP_ID == DEMO_APPLICATION_ID or "SP_API_APP_ID" in os.environ
    if not any(k.startswith("SELLER_CENTRAL_CONSENT_URL_") for k in os.environ):
        urls = settings.SELLER_CENTRAL_CONSENT_URLS
        assert urls == dict.fromkeys(("NA", "EU", "FE"), f"{settings.SIMULATOR_URL}{CONSENT_PATH}")


def test_production_points_at_seller_central() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "APP_TESTING"))}
    env = {k: v for k, v in env.items() if not k.startswith(("SELLER_CENTRAL_", "SIMULATOR_"))}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="x" * 64,
        DJANGO_ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgresql://app_runtime:pw@db.example.com:5432/sellerpilot",
        REDIS_URL="redis://redis.example.com:6379/0",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.SELLER_CENTRAL_CONSENT_URLS, settings.SIMULATOR_URL]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    urls, simulator_url = json.loads(result.stdout.strip().splitlines()[-1])
    assert simulator_url == ""
    assert urls == {
        "NA": "https://sellercentral.amazon.com/apps/authorize/consent",
        "EU": "https://sellercentral-europe.amazon.com/apps/authorize/consent",
        "FE": "https://sellercentral.amazon.co.jp/apps/authorize/consent",
    }
