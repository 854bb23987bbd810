"""The dashboard in a real headless Chromium: sign-in (mouse and keyboard only), strict CSP without a
single violation, the bearer token in sessionStorage (never localStorage), themes, the tenant
switcher and logout.

Runs against pytest-django's live server (a thread sharing the test database, so these tests use
`transaction=True` and create tenant-owned rows inside `tenant_context`). Skipped when Chromium is
not installed at /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from accounts import tokens
from accounts.roles import Role
from tenants.context import tenant_context
from tenants.models import JobRun
from tests.factories import PASSWORD, make_member, make_tenant

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN_KEY = "sellerpilot.dashboardToken"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every CSP violation the page reports, in addition to console messages.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


class Browser:
    """One Chromium per test with helpers; console messages and page errors are collected."""

    def __init__(self, playwright: Any, base_url: str) -> None:
        self.base_url = base_url
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context: Any = None
        self.page: Any = None
        self.new_page()

    def new_page(self, **context_options: Any) -> Any:
        if self.context is not None:
            self.context.close()
        self.context = self.browser.new_context(base_url=self.base_url, **context_options)
        self.context.add_init_script(RECORD_CSP_VIOLATIONS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        return self.page

    def log_in(self, email: str, password: str = PASSWORD) -> None:
        page = self.page
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.base_url}/")

    def stored_token(self) -> dict[str, Any] | None:
        raw = self.page.evaluate(f"() => window.sessionStorage.getItem({json.dumps(TOKEN_KEY)})")
        return json.loads(raw) if raw else None

    def wait_for_token(self, different_from: str | None = None) -> str:
        self.page.wait_for_function(
            "([key, old]) => { const r = JSON.parse(sessionStorage.getItem(key) || 'null');"
            " return r && r.token && r.token !== old; }",
            arg=[TOKEN_KEY, different_from],
        )
        record = self.stored_token()
        assert record is not None
        return record["token"]

    def csp_violations(self) -> list[str]:
        from_console = [
            m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m
        ]
        from_events = self.page.evaluate("() => window.__cspViolations || []")
        return from_console + list(from_events)

    def close(self) -> None:
        self.browser.close()


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread; the test body still uses the ORM
    # synchronously (fixtures, assertions), which is safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        session = Browser(playwright, live_server.url)
        try:
            yield session
        finally:
            session.close()
            # While Playwright's loop runs, Django's connection storage (asgiref Local) is separate from
            # the plain thread's; close what was opened in here or it outlives the test database.
            connections.close_all()


@pytest.fixture
def acme() -> Any:
    tenant = make_tenant("Acme Sellers")
    make_member(tenant, Role.OWNER, email="owner@acme.test", full_name="Olivia Owner")
    return tenant


def test_login_page_loads_without_csp_violations_and_token_lands_in_session_storage(browser, acme):
    from django.utils import timezone

    with tenant_context(acme):
        JobRun.objects.create(
            kind="inventory.sync",
            started_at=timezone.now(),
            outcome="succeeded",
            progress_done=5,
            progress_total=5,
        )
    browser.log_in("owner@acme.test")
    page = browser.page
    assert page.get_by_role("heading", level=1).inner_text() == "Acme Sellers"
    assert page.get_by_text("inventory.sync").is_visible()

    token = browser.wait_for_token()
    assert token.startswith(tokens.PREFIX)
    assert tokens.token_check(token) is not None
    assert page.evaluate("() => window.localStorage.length") == 0
    assert token not in page.evaluate("() => document.cookie")

    # The token authenticates API calls from the page (Authorization: Bearer).
    status = page.evaluate("async () => (await window.SellerPilot.api('/api/v1/me')).status")
    assert status == 200
    page.wait_for_load_state("networkidle")
    assert browser.csp_violations() == []
    assert browser.errors == []


def test_dark_theme_applies(browser, acme):
    from accounts.models import User

    User.objects.filter(email="owner@acme.test").update(theme="dark")
    browser.log_in("owner@acme.test")
    page = browser.page
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(14, 19, 25)"

    # "system" follows the device: dark when the browser prefers dark, light otherwise.
    User.objects.filter(email="owner@acme.test").update(theme="system")
    browser.new_page(color_scheme="dark")
    browser.log_in("owner@acme.test")
    assert browser.page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(14, 19, 25)"
    browser.new_page(color_scheme="light")
    browser.log_in("owner@acme.test")
    assert (
        browser.page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(245, 247, 250)"
    )
    assert browser.csp_violations() == []


def test_tenant_switch(browser, acme):
    from accounts.models import User

    beta = make_tenant("Beta Goods")
    make_member(beta, Role.VIEWER, user=User.objects.get(email="owner@acme.test"))
    browser.log_in("owner@acme.test")
    page = browser.page
    first_token = browser.wait_for_token()
    assert tokens.token_check(first_token).tenant_id == acme.pk

    page.get_by_label("Company").select_option(label="Beta Goods")
    page.get_by_role("button", name="Switch").click()
    page.wait_for_url(f"{browser.base_url}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Beta Goods"
    assert page.get_by_text("You are now working in Beta Goods.").is_visible()

    second_token = browser.wait_for_token(different_from=first_token)
    assert tokens.token_check(second_token).tenant_id == beta.pk
    assert tokens.token_check(first_token) is None  # the other company's token was revoked
    assert browser.csp_violations() == []


def test_keyboard_only_login(browser, acme):
    page = browser.page
    page.goto("/accounts/login/")
    # The email field has autofocus; without it, Tab reaches it after the skip link and the logo.
    for _ in range(5):
        if page.evaluate("() => document.activeElement.id") == "id_username":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "id_username"
    page.keyboard.type("owner@acme.test")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "id_password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{browser.base_url}/")

    # On the dashboard the first Tab reaches the skip link (with a visible outline); Enter jumps to main.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Skip to main content"
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    # The account menu opens and the sign-out button is reachable with the keyboard alone.
    page.locator("summary.menu__button").focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("button", name="Sign out").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("button", name="Sign out").is_visible()
    page.keyboard.press("Enter")  # focus went back to the menu button
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Sign out"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{browser.base_url}/accounts/login/")
    assert browser.csp_violations() == []


def test_logout_clears_session_storage_and_revokes_the_token(browser, acme):
    browser.log_in("owner@acme.test")
    page = browser.page
    token = browser.wait_for_token()
    page.locator("summary.menu__button").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{browser.base_url}/accounts/login/")
    assert browser.stored_token() is None
    assert page.evaluate("() => window.sessionStorage.length") == 0
    assert tokens.token_check(token) is None
    # The old token no longer opens the API.
    status = page.evaluate(
        "async (t) => (await fetch('/api/v1/me', {headers: {Authorization: 'Bearer ' + t}})).status", token
    )
    assert status == 401
    assert browser.csp_violations() == []
