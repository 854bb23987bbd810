"""The API's edges: one error shape for every refusal (malformed JSON, wrong media type, oversized body,
unknown paths and methods, throttling), nothing written by a refused request, and the published
OpenAPI schema and docs page (same-origin assets under the strict nonce CSP)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey, Invitation
from accounts.roles import Role
from tenants.context import tenant_context
from tenants.models import AuditEvent, Tenant
from tests.factories import make_api_key, make_tenant


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


@pytest.fixture
def client(tenant: Tenant) -> APIClient:
    _, raw = make_api_key(tenant, Role.ADMIN)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def nothing_written(tenant: Tenant) -> bool:
    with tenant_context(tenant):
        audit = AuditEvent.objects.exclude(action="api_key.create").count()  # the fixture's own key
    return ApiKey.objects.filter(tenant=tenant).count() == 1 and audit == 0


# --- Bodies ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", ['{"name": "k", "role": ', "{'name': 'k'}", '{"name": NaN, "role": "viewer"}', "\xff"]
)
def test_malformed_json_is_400_and_writes_nothing(tenant: Tenant, client: APIClient, body: str) -> None:
    raw: Any = body.encode("latin-1")  # bytes: "\xff" is not valid UTF-8
    response = client.generic("POST", "/api/v1/api-keys", raw, content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert nothing_written(tenant)


@pytest.mark.django_db
def test_a_validation_error_names_the_fields(tenant: Tenant, client: APIClient) -> None:
    response = client.post("/api/v1/api-keys", {"name": ["k"], "role": 3, "colour": "red"}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert error["fields"] == {"colour": ["Unknown field."]}
    response = client.post("/api/v1/api-keys", {"name": ["k"], "role": 3}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"name", "role"}
    assert nothing_written(tenant)


@pytest.mark.django_db
def test_a_body_that_is_not_an_object_is_400(tenant: Tenant, client: APIClient) -> None:
    for body in ("[]", '"text"', "42", "null"):
        response = client.generic("POST", "/api/v1/api-keys", body, content_type="application/json")
        assert response.status_code == 400, body
    assert nothing_written(tenant)


@pytest.mark.django_db
def test_an_oversized_body_is_413_and_writes_nothing(
    tenant: Tenant, client: APIClient, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    body = json.dumps({"name": "k" * 5_000, "role": "viewer"})
    response = client.generic("POST", "/api/v1/api-keys", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    body = json.dumps({"email": "a@example.com", "role": "viewer", "padding": "x" * 5_000})
    response = client.generic("POST", "/api/v1/invitations", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    with tenant_context(tenant):
        assert not Invitation.objects.exists()
    assert nothing_written(tenant)
    # Just under the limit is parsed normally (and refused for its content, not its size).
    response = client.post("/api/v1/api-keys", {"name": "k" * 1_000, "role": "viewer"}, format="json")
    assert_error(response, 400, "validation_error")


@pytest.mark.django_db
def test_only_json_is_accepted(tenant: Tenant, client: APIClient) -> None:
    response = client.post("/api/v1/api-keys", {"name": "k", "role": "viewer"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")
    response = client.generic(
        "POST", "/api/v1/api-keys", "name=k&role=viewer", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")
    assert nothing_written(tenant)


# --- Paths and methods ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing-here", "/api/v2/me", "/api/v1/me/", "/api/v1/api-keys/123", "/api/v1/members/%00"],
)
def test_unknown_api_paths_answer_in_the_error_shape(client: APIClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.django_db
def test_the_docs_are_easy_to_find(client: APIClient) -> None:
    assert client.get("/api/docs")["Location"] == "/api/docs/"
    assert client.get("/api/")["Location"] == "/api/docs/"


@pytest.mark.django_db
def test_an_unsupported_method_is_405(client: APIClient) -> None:
    assert_error(client.put("/api/v1/me", {}, format="json"), 405, "method_not_allowed")
    assert_error(client.delete("/api/v1/members"), 405, "method_not_allowed")
    assert_error(client.post("/api/v1/audit-events", {}, format="json"), 405, "method_not_allowed")


# --- Throttling -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_company_over_its_rate_gets_429_with_retry_after(
    tenant: Tenant, client: APIClient, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"tenant": "3/day"}}
    _, second_key = make_api_key(tenant, Role.VIEWER)
    same_company = APIClient(HTTP_AUTHORIZATION=f"Bearer {second_key}")
    other = make_tenant()
    _, other_key = make_api_key(other, Role.VIEWER)
    other_company = APIClient(HTTP_AUTHORIZATION=f"Bearer {other_key}")

    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    assert same_company.get("/api/v1/me").status_code == 200  # the budget is the company's, not the key's
    response = client.get("/api/v1/me")
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 86_400
    assert_error(same_company.get("/api/v1/me"), 429, "throttled")
    assert other_company.get("/api/v1/me").status_code == 200


# --- Schema and docs ------------------------------------------------------------------------------------

V1_OPERATIONS = {
    ("/api/v1/me", "get"),
    ("/api/v1/me", "patch"),
    ("/api/v1/tenant", "get"),
    ("/api/v1/tenant", "patch"),
    ("/api/v1/members", "get"),
    ("/api/v1/members/{public_id}", "patch"),
    ("/api/v1/members/{public_id}", "delete"),
    ("/api/v1/invitations", "get"),
    ("/api/v1/invitations", "post"),
    ("/api/v1/invitations/{public_id}", "delete"),
    ("/api/v1/api-keys", "get"),
    ("/api/v1/api-keys", "post"),
    ("/api/v1/api-keys/{public_id}", "delete"),
    ("/api/v1/audit-events", "get"),
    ("/api/v1/job-runs", "get"),
}


@pytest.mark.django_db
def test_the_schema_is_public_and_describes_every_operation() -> None:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= V1_OPERATIONS
    assert all(path.startswith("/api/v1/") for path, _ in operations)
    for path, method in operations:
        operation = schema["paths"][path][method]
        assert operation["operationId"]
        assert {"dashboardToken": []} in operation["security"] and {"apiKey": []} in operation["security"]
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }
        assert "401" in operation["responses"] and "429" in operation["responses"]
    assert "Idempotency-Key" in {p["name"] for p in schema["paths"]["/api/v1/api-keys"]["post"]["parameters"]}


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 1_000


@pytest.mark.django_db
def test_the_docs_page_loads_only_same_origin_assets_under_the_nonce_csp() -> None:
    client = APIClient()
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    script_src = directives["script-src"].split()
    assert script_src[0] == "'self'"
    assert all(s == "'self'" or s.startswith("'nonce-") for s in script_src)
    nonce = re.search(r"'nonce-([^']+)'", directives["style-src"]).group(1)  # type: ignore[union-attr]

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 3
    for attributes, inline in scripts:
        assert not inline.strip(), "inline script would need 'unsafe-inline'"
        assert re.search(r'src="/[^/]', attributes), attributes
    for tag in re.findall(r"<style\b[^>]*>", html):
        assert f'nonce="{nonce}"' in tag
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html)), "no third-party or CDN asset"
    assert "fonts.googleapis" not in html

    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert finders.find(url.removeprefix("/static/")), url
        assert client.get(url).status_code == 200, url
    [script_url] = [u for u in re.findall(r'src="([^"]+)"', html) if not u.startswith("/static/")]
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
    assert "SwaggerUIBundle" in script.content.decode()
    assert '"/api/schema/"' in script.content.decode()


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}")
def test_the_docs_page_renders_in_a_real_browser_without_csp_violations(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    console: list[str] = []
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation',"
                " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".opblock", timeout=15_000)
            assert page.locator(".opblock").count() >= len(V1_OPERATIONS)
            violations = page.evaluate("() => window.__csp")
            local_storage = page.evaluate("() => window.localStorage.length")
        finally:
            browser.close()
    assert violations == []
    assert not [m for m in console if "Content Security Policy" in m or m.startswith("error")]
    assert all(url.startswith((live_server.url, "data:")) for url in requested), requested
    assert local_storage == 0
