"""The Amazon pages in a real headless Chromium, against pytest-django's live server and the Amazon
simulator: connecting through the simulated Seller Central consent page (Authorize and Cancel), the
Amazon accounts page, listings and orders after a real sync (rows, search and filters, empty states),
the Advertising page, keyboard-only use and the dark theme. No page may break the strict CSP.

Like tests/browser/test_dashboard.py (whose `Browser` helper this uses): `transaction=True`, since the
live server is another thread; skipped when Chromium is not installed at /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings

from accounts.models import User
from accounts.roles import Role
from amazon.models import Listing, Order, SellerConnection
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN
from amazon.simulator.consent import CONSENT_PATH
from amazon.simulator.market import (
    DEMO_APPLICATION_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_SELLER_ID,
    US,
    Market,
)
from amazon.simulator.testing import RunningSimulator, start_simulator
from amazon.sync import sync_listings, sync_offers
from amazon.sync_orders import sync_orders
from amazon.tests.factories import make_connection
from tenants import context
from tenants.context import tenant_context
from tests.browser.test_dashboard import Browser, sync_api
from tests.factories import make_member, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OWNER = "owner@acme.test"
SECOND_SELLER = "A2SECONDSELLR9"
SKUS = 30
ORDERS = 60
DARK_BACKGROUND = "rgb(14, 19, 25)"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A demo market whose clock starts now (as in demo mode: the orders lookback lands in its past),
    with a second seller account to choose on the consent page; our settings point at it."""
    market = Market.demo(seed=7, skus=SKUS, start=datetime.now(UTC))
    market.throttling = False
    market.add_seller(SECOND_SELLER, "Second Store", [US])
    running = start_simulator(market)
    consent_url = running.base_url + CONSENT_PATH
    try:
        with override_settings(
            LWA_TOKEN_URL=running.lwa_url,
            SP_API_ENDPOINT=running.base_url,
            ADS_API_ENDPOINT=running.base_url,
            LWA_CLIENT_ID=DEMO_CLIENT_ID,
            LWA_CLIENT_SECRET=DEMO_CLIENT_SECRET,
            SP_API_APP_ID=DEMO_APPLICATION_ID,
            SP_API_CONSENT_BETA=True,
            SELLER_CENTRAL_CONSENT_URLS=dict.fromkeys(("NA", "EU", "FE"), consent_url),
            SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
        ):
            yield running
    finally:
        running.server.stop()


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        session = Browser(playwright, live_server.url)
        try:
            yield session
        finally:
            session.close()
            connections.close_all()


@pytest.fixture
def acme() -> Any:
    tenant = make_tenant("Acme Sellers")
    make_member(tenant, Role.OWNER, email=OWNER, full_name="Olivia Owner")
    return tenant


@contextlib.contextmanager
def working_for(tenant: Any) -> Iterator[None]:
    """What the non-atomic sync task does around its body: the tenant is set, no transaction is open."""
    token = context._current.set(tenant)
    try:
        yield
    finally:
        context._current.reset(token)


def _connected(tenant: Any) -> SellerConnection:
    """The demo seller connected with the simulator's demo app (own-app credentials), as seed_demo does."""
    return make_connection(
        tenant,
        name="Demo Outfitters",
        selling_partner_id=DEMO_SELLER_ID,
        refresh_token=DEMO_REFRESH_TOKEN,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )


def _synced(sim: RunningSimulator, tenant: Any) -> SellerConnection:
    connection = _connected(tenant)
    sim.market.generate_orders(ORDERS)
    with working_for(tenant):
        sync_listings(connection=connection)
        sync_offers(connection=connection)
        sync_orders(connection=connection, items_limit=5)
    return connection


def _rows(page: Any, table_label: str) -> Any:
    return page.get_by_role("region", name=table_label).locator("tbody tr")


def _assert_clean(browser: Browser) -> None:
    browser.page.wait_for_load_state("networkidle")
    assert browser.csp_violations() == []
    assert browser.errors == []


# --- connecting through Seller Central ------------------------------------------------------------------


def test_connecting_through_the_seller_central_consent_page(browser: Browser, acme: Any, sim: Any) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.get_by_role("link", name="Amazon accounts").first.click()
    page.wait_for_url(re.compile(r"/connections/$"))
    assert page.get_by_role("heading", name="No Amazon account connected yet").is_visible()

    page.get_by_role("link", name="Connect an Amazon account").click()
    page.wait_for_url(re.compile(r"/connections/connect/$"))
    assert page.get_by_label("Region").input_value() == "NA"
    page.get_by_role("button", name="Continue to Seller Central").click()

    # Seller Central (the simulator) asks which account authorises SellerPilot.
    page.wait_for_url(f"{sim.base_url}{CONSENT_PATH}?*")
    assert page.get_by_role("heading", level=1).inner_text() == "Authorize SellerPilot (development)"
    assert page.get_by_role("radio", name=re.compile("Demo Outfitters")).is_checked()
    page.get_by_role("radio", name=re.compile("Second Store")).check()
    page.get_by_role("button", name="Authorize").click()

    # Back at SellerPilot: connected, verified with Amazon, active.
    page.wait_for_url(re.compile(rf"^{re.escape(browser.base_url)}/connections/[0-9a-f-]{{36}}/$"))
    assert page.get_by_text("Connected Second Store.").is_visible()
    assert page.get_by_role("heading", level=1).inner_text() == "Second Store"
    assert page.locator(".page-header .badge").inner_text() == "Active"
    with tenant_context(acme):
        connection = SellerConnection.objects.get()
    assert connection.status == SellerConnection.Status.ACTIVE
    assert connection.selling_partner_id == SECOND_SELLER
    assert connection.auth_kind == SellerConnection.AuthKind.PLATFORM_APP

    page.get_by_role("link", name="← Amazon accounts").click()
    row = _rows(page, "Connected accounts").filter(has_text="Second Store")
    assert row.count() == 1 and "Active" in row.inner_text() and "Seller Central" in row.inner_text()
    _assert_clean(browser)


def test_cancelling_on_the_consent_page_connects_nothing(browser: Browser, acme: Any, sim: Any) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/connections/connect/")
    page.get_by_role("button", name="Continue to Seller Central").click()
    page.wait_for_url(f"{sim.base_url}{CONSENT_PATH}?*")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(re.compile(r"/connections/callback/\?"))
    assert "error=access_denied" in page.url
    assert page.get_by_text("the authorisation was not given").is_visible()
    with tenant_context(acme):
        assert not SellerConnection.objects.exists()
    _assert_clean(browser)


# --- listings and orders ----------------------------------------------------------------------------------


def test_listings_and_orders_explain_what_to_do_before_anything_is_synced(
    browser: Browser, acme: Any, sim: Any
) -> None:
    browser.log_in(OWNER)
    page = browser.page
    for path in ("/listings/", "/orders/"):
        page.goto(path)
        assert page.get_by_role("heading", name="No Amazon account connected yet").is_visible()
        page.get_by_role("link", name="Go to Amazon accounts").click()
        page.wait_for_url(re.compile(r"/connections/$"))

    _connected(acme)  # connected, not synced yet
    page.goto("/listings/")
    assert page.get_by_role("heading", name="No listings yet").is_visible()
    page.goto("/orders/")
    assert page.get_by_role("heading", name="No orders yet").is_visible()
    _assert_clean(browser)


def test_listings_after_a_sync_with_search_and_status_filter(browser: Browser, acme: Any, sim: Any) -> None:
    _synced(sim, acme)
    with tenant_context(acme):
        listings = list(Listing.objects.order_by("sku"))
    assert len(listings) == SKUS
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/listings/")
    rows = _rows(page, "Listings")
    assert rows.count() == SKUS
    assert page.get_by_text(f"{SKUS} listings").is_visible()
    first = rows.filter(has_text=listings[0].sku)
    assert listings[0].asin in first.inner_text()
    assert "Not checked yet" not in page.locator("tbody").inner_text()  # the offers snapshot is in

    page.get_by_label("Search").fill(listings[3].sku)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"\?q="))
    assert rows.count() == 1 and listings[3].sku in rows.inner_text()

    page.get_by_label("Search").fill("no such listing anywhere")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("heading", name="No listing matches").is_visible()
    page.get_by_role("link", name="Show all listings").click()
    assert rows.count() == SKUS

    buyable = sum(1 for li in listings if li.status == Listing.Status.BUYABLE)
    page.get_by_label("Status").select_option("buyable")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=buyable"))
    assert rows.count() == buyable
    _assert_clean(browser)


def test_orders_after_a_sync_with_status_filter_and_detail(browser: Browser, acme: Any, sim: Any) -> None:
    _synced(sim, acme)
    with tenant_context(acme):
        orders = list(Order.objects.order_by("-purchase_date", "-id"))
        shipped = sum(1 for o in orders if o.status == Order.Status.SHIPPED)
    assert len(orders) > 10 and 0 < shipped < len(orders)
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/orders/")
    rows = _rows(page, "Orders")
    assert rows.count() == min(len(orders), 50)
    assert orders[0].amazon_order_id in rows.first.inner_text()  # newest first

    page.get_by_label("Status").select_option("Shipped")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=Shipped"))
    assert rows.count() == min(shipped, 50)
    assert set(rows.locator(".badge").all_inner_texts()) == {"Shipped"}

    rows.first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/orders/[0-9a-f-]{36}/$"))
    assert page.get_by_role("heading", level=1).is_visible()

    # 60 orders: two pages, newest first.
    page.goto("/orders/")
    page.get_by_role("link", name="Older").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert rows.count() == len(orders) - 50
    assert orders[-1].amazon_order_id in rows.last.inner_text()
    assert page.get_by_text("Page 2 of 2").is_visible()
    _assert_clean(browser)


# --- Advertising ------------------------------------------------------------------------------------------


def test_the_advertising_page_connects_amazon_ads(browser: Browser, acme: Any, sim: Any) -> None:
    connection = _connected(acme)
    browser.log_in(OWNER)
    page = browser.page
    page.goto(f"/connections/{connection.public_id}/")
    page.get_by_role("link", name="Open Advertising").click()
    page.wait_for_url(re.compile(r"/ads/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Advertising"
    assert page.get_by_text("No advertising profiles yet").is_visible()

    page.get_by_label("Ads API refresh token").fill(DEMO_ADS_REFRESH_TOKEN)
    page.get_by_role("button", name="Verify and save").click()
    profiles = page.get_by_role("region", name="Advertising profiles").locator("tbody tr")
    profiles.first.wait_for()
    # One profile per marketplace of the seller that the North America Ads endpoint serves: US and CA.
    assert profiles.count() == 2
    assert {"US", "CA"} <= set(" ".join(profiles.all_inner_texts()).split())
    assert DEMO_ADS_REFRESH_TOKEN not in page.content()  # write-only
    _assert_clean(browser)


def test_authorising_amazon_ads_through_amazons_consent_page(browser: Browser, acme: Any, sim: Any) -> None:
    """The "Authorise with Amazon" form posts to us and is redirected to Amazon's Ads consent page: the
    page's CSP must allow that redirect (form-action), or Chromium silently blocks it."""
    connection = make_connection(
        acme,
        name="Demo Outfitters",
        selling_partner_id=DEMO_SELLER_ID,
        refresh_token=DEMO_REFRESH_TOKEN,  # the platform app's grant: Ads consent is offered
        marketplaces=[{"id": US, "name": "Amazon.com", "country_code": "US"}],
    )
    browser.log_in(OWNER)
    page = browser.page
    with override_settings(ADS_CONSENT_URLS=dict.fromkeys(("NA", "EU", "FE"), f"{sim.base_url}/ap/oa")):
        page.goto(f"/connections/{connection.public_id}/ads/")
        page.get_by_role("button", name="Authorise with Amazon").click()
        page.wait_for_url(f"{sim.base_url}/ap/oa*")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(
            re.compile(rf"^{re.escape(browser.base_url)}/connections/{connection.public_id}/ads/$")
        )
    profiles = page.get_by_role("region", name="Advertising profiles").locator("tbody tr")
    profiles.first.wait_for()
    assert profiles.count() == 2
    _assert_clean(browser)


# --- keyboard and theme -----------------------------------------------------------------------------------


def _tab_to(page: Any, text: str, limit: int = 60) -> None:
    """Press Tab until the focused element's accessible text (or value) is `text`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.labels && e.labels[0] ? e.labels[0].textContent : e.textContent || e.value || '')"
            ".trim(); }"
        )
        if focused == text:
            assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
            return
    raise AssertionError(f"Tab never reached {text!r}")


def test_keyboard_only_connect_and_filter(browser: Browser, acme: Any, sim: Any) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/connections/")
    _tab_to(page, "Connect an Amazon account")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/connections/connect/$"))
    _tab_to(page, "Continue to Seller Central")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{sim.base_url}{CONSENT_PATH}?*")
    _tab_to(page, "Authorize")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/connections/[0-9a-f-]{36}/$"))
    assert page.get_by_text("Connected Demo Outfitters.").is_visible()

    with tenant_context(acme):
        connection = SellerConnection.objects.get()
    with working_for(acme):
        sync_listings(connection=connection)
    with tenant_context(acme):
        sku = Listing.objects.order_by("sku").values_list("sku", flat=True)[5]
    page.goto("/listings/")
    _tab_to(page, "Search")
    page.keyboard.type(sku)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q="))
    assert _rows(page, "Listings").count() == 1
    _assert_clean(browser)


CONTRAST = """
(selector) => {
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const value = rgb(getComputedStyle(e).backgroundColor);
      if (value.length === 3 || value[3] > 0) return value.slice(0, 3);
    }
    return rgb(getComputedStyle(document.body).backgroundColor);
  };
  return [...document.querySelectorAll(selector)].filter((e) => e.offsetParent !== null).map((e) => {
    const [a, b] = [luminance(rgb(getComputedStyle(e).color)), luminance(background(e))];
    return [e.tagName + "." + e.className + " " + e.textContent.trim().slice(0, 30),
            (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}
"""
#: What the Amazon pages show as text: every one must stay readable (WCAG AA, 4.5:1) in the dark theme.
TEXT = "main h1, main h2, main h3, main p, main th, main td, main a, main label, main code, main .badge"


def test_dark_theme_renders_the_amazon_pages_readably(browser: Browser, acme: Any, sim: Any) -> None:
    connection = _synced(sim, acme)
    User.objects.filter(email=OWNER).update(theme="dark")
    browser.log_in(OWNER)
    page = browser.page
    with tenant_context(acme):
        order = Order.objects.filter(items__isnull=False).first()
    assert order is not None
    pages = ("/connections/", f"/connections/{connection.public_id}/", "/listings/", "/orders/")
    for path in (*pages, f"/orders/{order.public_id}/"):
        page.goto(path)
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == DARK_BACKGROUND
        ratios = page.evaluate(CONTRAST, TEXT)
        assert ratios, path
        unreadable = [(what, round(ratio, 2)) for what, ratio in ratios if ratio < 4.5]
        assert unreadable == [], path
    page.goto(f"/connections/{connection.public_id}/")
    # The quota chart is drawn with the theme's colours, not black on dark.
    fill = page.evaluate(
        "() => { const t = document.querySelector('.quota-chart__label'); "
        "return t ? getComputedStyle(t).fill : null; }"
    )
    assert fill in (None, "rgb(231, 236, 242)")
    _assert_clean(browser)


def test_on_a_phone_the_tables_scroll_inside_the_page(browser: Browser, acme: Any, sim: Any) -> None:
    _synced(sim, acme)
    browser.new_page(viewport={"width": 375, "height": 740})
    browser.log_in(OWNER)
    page = browser.page
    for path, region in (("/listings/", "Listings"), ("/orders/", "Orders"), ("/connections/", None)):
        page.goto(path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
        if region:
            table = page.locator("div.table-wrap", has=page.locator("table"))
            assert table.evaluate("e => e.scrollWidth > e.clientWidth")  # the table scrolls, focusable
            assert table.get_attribute("tabindex") == "0"
    _assert_clean(browser)
