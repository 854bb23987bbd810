"""The simulator's LWA token endpoint and SP-API authentication, over HTTP."""

from __future__ import annotations

import httpx

from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_SELLER_ID


def _grant(sim, **form):
    return httpx.post(sim.lwa_url, data=form)


def _refresh(sim, refresh_token=DEMO_REFRESH_TOKEN, secret=DEMO_CLIENT_SECRET):
    return _grant(
        sim,
        grant_type="refresh_token",
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
        refresh_token=refresh_token,
    )


def _participations(sim, token):
    return httpx.get(
        sim.base_url + "/sellers/v1/marketplaceParticipations",
        headers={"x-amz-access-token": token, "host": "nonsense"},
    )


def test_refresh_token_grant_answers_like_lwa(simulator):
    r = _refresh(simulator)
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    assert simulator.market.stats.token_grants == 1
    assert simulator.market.stats.token_grants_by_type["refresh_token"] == 1


def test_bad_client_secret_is_401_invalid_client(simulator):
    r = _refresh(simulator, secret="wrong")
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert simulator.market.stats.token_grants == 0


def test_unknown_and_revoked_refresh_tokens_are_400_invalid_grant(simulator):
    r = _refresh(simulator, refresh_token="Atzr|nope")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    assert r.json()["error_description"]
    simulator.market.revoke_refresh_token(DEMO_REFRESH_TOKEN)
    r = _refresh(simulator)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_missing_parameter_and_unsupported_grant(simulator):
    r = _grant(
        simulator, grant_type="refresh_token", client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = _grant(simulator, grant_type="password", client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")


def test_authorization_code_is_exchanged_once_for_a_refresh_token(simulator):
    code = simulator.market.issue_authorization_code(DEMO_SELLER_ID, DEMO_CLIENT_ID)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    r = _grant(simulator, **form)
    assert r.status_code == 200
    body = r.json()
    assert body["refresh_token"].startswith("Atzr|")
    assert body["access_token"].startswith("Atza|")
    # the new refresh token works; the code cannot be replayed
    assert _refresh(simulator, refresh_token=body["refresh_token"]).status_code == 200
    r = _grant(simulator, **form)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_authorization_code_expires(simulator):
    code = simulator.market.issue_authorization_code(DEMO_SELLER_ID, DEMO_CLIENT_ID)
    simulator.market.clock.advance(301)
    r = _grant(
        simulator,
        grant_type="authorization_code",
        code=code,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_grantless_token_is_issued_for_a_known_scope_but_not_accepted_by_seller_operations(simulator):
    r = _grant(
        simulator,
        grant_type="client_credentials",
        scope="sellingpartnerapi::notifications",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
    )
    assert r.status_code == 200
    assert _participations(simulator, r.json()["access_token"]).status_code == 403
    r = _grant(
        simulator,
        grant_type="client_credentials",
        scope="bogus",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


def test_access_token_works_until_it_expires_on_the_simulated_clock(simulator):
    token = _refresh(simulator).json()["access_token"]
    r = _participations(simulator, token)
    assert r.status_code == 200, r.text
    assert r.headers["x-amzn-RateLimit-Limit"] == "0.016"
    assert r.headers["x-amzn-RequestId"]
    simulator.market.clock.advance(3600)
    r = _participations(simulator, token)
    assert r.status_code == 403
    error = r.json()["errors"][0]
    assert error["code"] == "Unauthorized"
    assert "expired" in error["details"]


def test_unknown_or_missing_access_token_is_403(simulator):
    assert _participations(simulator, "Atza|forged").json()["errors"][0]["code"] == "Unauthorized"
    r = httpx.get(simulator.base_url + "/sellers/v1/marketplaceParticipations")
    assert r.status_code == 403


def test_server_restarts_on_a_fresh_port(simulator):
    from amazon.simulator import SimulatorServer

    with SimulatorServer(simulator.market) as other:
        assert other.base_url != simulator.base_url
        assert _refresh(simulator).status_code == 200
        assert httpx.post(other.lwa_url, data={"grant_type": "x"}).status_code in (400, 401)
