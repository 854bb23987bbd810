"""Repricing pages in a real headless Chromium: the kill switch (confirm prompt, who/when/why), creating
a rule through the form (fields that appear as options are chosen, errors next to their field), editing
a SKU's bounds, a SKU's price history with a marker per change leading to the reason, keyboard-only use
and the dark theme — all without a single CSP violation.

Uses the live server and Chromium fixtures of tests/browser/test_dashboard.py (skipped without Chromium).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from accounts.models import User
from accounts.roles import Role
from config.redis import redis_client
from repricing.models import RepricingRule, RepricingSettings, SkuPricing
from repricing.tests.page_data import Catalog, make_catalog, record_history
from tenants.context import tenant_context
from tests.browser.test_dashboard import Browser, sync_api
from tests.factories import make_member, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OWNER = "owner@repricing.test"


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """As in tests/browser/test_dashboard.py: one Chromium per test on the live server."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        session = Browser(playwright, live_server.url)
        try:
            yield session
        finally:
            session.close()
            connections.close_all()


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    tenant = make_tenant("Acme Repricing")
    yield make_catalog(tenant, make_member(tenant, Role.OWNER, email=OWNER, full_name="Olivia Owner"))
    # The pipeline published "send the submissions" tasks on commit; no worker runs here.
    redis_client().delete("repricing")


def _settings(catalog: Catalog) -> RepricingSettings:
    with tenant_context(catalog.tenant):
        return RepricingSettings.objects.get()


def test_kill_switch_needs_confirmation_and_shows_who_when_why(browser: Browser, catalog: Catalog) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.get_by_role("link", name="Repricing").first.click()
    page.wait_for_url(f"{browser.base_url}/repricing/")
    assert page.get_by_text("Off: repricing may send prices").is_visible()

    # Dismissing the confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_label("Why (shown to your team)").fill("Supplier sent wrong costs")
    page.get_by_role("button", name="Stop all price changes").click()
    page.wait_for_timeout(300)
    assert _settings(catalog).kill_switch is False

    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Stop all price changes").click()
    page.wait_for_url(f"{browser.base_url}/repricing/")
    assert messages == ["Stop sending every price to Amazon now?"]
    page.get_by_text("On: nothing is sent to Amazon").wait_for()
    who = page.locator(".kill-switch__who").inner_text()
    assert "Turned on by owner@repricing.test" in who and "Supplier sent wrong costs" in who
    settings = _settings(catalog)
    assert settings.kill_switch and settings.kill_switch_reason == "Supplier sent wrong costs"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Allow price changes again").click()
    page.get_by_text("Off: repricing may send prices").wait_for()
    assert _settings(catalog).kill_switch is False
    assert browser.csp_violations() == []
    assert browser.errors == []


def test_create_a_rule_through_the_form(browser: Browser, catalog: Catalog) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/repricing/rules/")
    page.get_by_role("link", name="New rule").click()
    page.wait_for_url(f"{browser.base_url}/repricing/rules/new/")
    # "Match" needs no offset: the field is hidden until "Go below it" is chosen.
    offset = page.get_by_label("By", exact=True)
    assert not offset.is_visible()
    page.get_by_label("Name").fill("Clearance undercut")
    page.get_by_label("How").select_option(label="Go below it")
    assert offset.is_visible()
    war_fields = page.get_by_label("Undercuts")
    assert not war_fields.is_visible()
    page.get_by_label("Pause on a price war").check()
    assert war_fields.is_visible()
    # Submitting without the offset and the price-war numbers: errors next to those fields.
    page.get_by_role("button", name="Create rule").click()
    page.get_by_text("Please correct the highlighted fields.").wait_for()
    assert page.get_by_text("Enter how far from the competitor to price.").is_visible()
    assert page.locator('[data-field="price_war_undercuts"] .errorlist').is_visible()
    assert page.get_by_label("By", exact=True).get_attribute("aria-invalid") == "true"

    page.get_by_label("Offset").select_option(label="by a percent")
    page.get_by_label("By", exact=True).fill("2")
    page.get_by_label("Undercuts").fill("4")
    page.get_by_label("within (minutes)").fill("30")
    page.get_by_label("pause for (minutes)").fill("120")
    page.get_by_label("Largest change per step (%)").fill("5")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url(f"{browser.base_url}/repricing/rules/")
    assert page.get_by_text("Rule “Clearance undercut” created.").is_visible()
    card = page.locator(".rule-card", has_text="Clearance undercut")
    assert "Beat the Buy Box by 2%." in card.inner_text()
    assert "4 undercuts within 30 minutes pause the SKU for 2 hours" in card.inner_text()
    with tenant_context(catalog.tenant):
        config = RepricingRule.objects.get(name="Clearance undercut").config
    assert config["strategy"]["percent"] == "2" and config["guards"]["price_war"]["undercuts"] == 4
    assert browser.csp_violations() == []
    assert browser.errors == []


def test_edit_a_skus_bounds(browser: Browser, catalog: Catalog) -> None:
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/repricing/skus/")
    page.get_by_role("link", name="PEN-9").click()
    page.get_by_text("Not set: never repriced").wait_for()
    page.get_by_role("link", name="Edit repricing settings").click()
    page.get_by_label("Min price", exact=True).fill("30")
    page.get_by_label("Max price").fill("20")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("is above the maximum").wait_for()
    page.get_by_label("Min price", exact=True).fill("9.50")
    page.get_by_label("Max price").fill("24")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Repricing settings of PEN-9 saved.").wait_for()
    assert "9.50 \u2013 24.00" in page.locator("dl.facts").inner_text()
    with tenant_context(catalog.tenant):
        pricing = SkuPricing.objects.get(listing=catalog.pen)
    assert (str(pricing.min_price), str(pricing.max_price)) == ("9.50", "24.00")
    assert browser.csp_violations() == []


def test_a_skus_history_shows_each_change_with_its_reason(browser: Browser, catalog: Catalog) -> None:
    decisions = record_history(catalog, hours=3)
    browser.log_in(OWNER)
    page = browser.page
    page.goto(f"/repricing/skus/{catalog.mug.public_id}/")
    chart = page.locator("figure.price-chart svg")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    markers = page.locator("a.price-chart__marker")
    assert markers.count() == 3
    # The newest decision's explanation is open; the others open on demand.
    assert page.get_by_text("Buy Box is 18.50 (seller ACOMPETITOR1, FBA); beat by 0.01 → 18.49").is_visible()
    oldest = decisions[0]
    assert not page.get_by_text("beat by 0.01 → 19.49").is_visible()
    page.locator(f'a.price-chart__marker[href*="{oldest.public_id}"]').click()
    page.wait_for_url(f"**decision={oldest.public_id}**")
    target = page.locator(f"#decision-{oldest.public_id}")
    assert target.is_visible()
    assert page.evaluate("() => document.querySelector(':target').id") == f"decision-{oldest.public_id}"
    target.get_by_text("Why this price").click()
    assert target.get_by_text("beat by 0.01 → 19.49").is_visible()
    # Its price was still waiting when the next decision replaced it.
    assert "Beat the Buy Box" in target.inner_text() and "Replaced by a newer price" in target.inner_text()
    # The same decisions in the catalogue-wide activity, filtered by reason.
    page.goto("/repricing/activity/")
    page.get_by_label("Reason").select_option(label="Beat the Buy Box")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("li.decision").count() == 3
    assert browser.csp_violations() == []
    assert browser.errors == []


def test_keyboard_only_kill_switch_and_chart_markers(browser: Browser, catalog: Catalog) -> None:
    record_history(catalog, hours=2)
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/repricing/")
    # From the reason field, Tab reaches the kill switch button; Enter submits, the prompt is accepted.
    page.get_by_label("Why (shown to your team)").focus()
    page.keyboard.type("Keyboard stop")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Stop all price changes"
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")
    page.get_by_text("On: nothing is sent to Amazon").wait_for()
    assert _settings(catalog).kill_switch_reason == "Keyboard stop"

    # The sub-navigation and the chart's markers are reachable with Tab; Enter follows a marker.
    page.goto(f"/repricing/skus/{catalog.mug.public_id}/")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('price-chart__marker')"):
            break
    else:
        pytest.fail("no chart marker reachable with Tab")
    stroke = page.evaluate(
        "() => getComputedStyle(document.activeElement.querySelector('circle, rect')).strokeWidth"
    )
    assert stroke == "4px"  # the focused marker is ringed
    page.keyboard.press("Enter")
    page.wait_for_url("**decision=**")
    assert page.evaluate("() => document.querySelector(':target') !== null")
    assert browser.csp_violations() == []


def test_dark_theme_on_repricing_pages(browser: Browser, catalog: Catalog) -> None:
    record_history(catalog, hours=2)
    User.objects.filter(email=OWNER).update(theme="dark")
    browser.log_in(OWNER)
    page = browser.page
    for url in (
        "/repricing/",
        "/repricing/rules/",
        "/repricing/tags/",
        "/repricing/skus/",
        f"/repricing/skus/{catalog.mug.public_id}/",
        "/repricing/activity/",
        "/repricing/rules/new/",
    ):
        page.goto(url)
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark", url
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(14, 19, 25)"
        card = page.locator(".card").first
        assert card.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(22, 29, 38)", url
    page.goto(f"/repricing/skus/{catalog.mug.public_id}/")
    line = page.locator(".price-chart__line--ours")
    assert line.evaluate("el => getComputedStyle(el).stroke") == "rgb(106, 168, 255)"
    axis = page.locator(".chart__axis").first
    assert axis.evaluate("el => getComputedStyle(el).fill") == "rgb(163, 174, 187)"
    assert browser.csp_violations() == []
    assert browser.errors == []


def test_bulk_assignment_of_many_skus_shows_progress(browser: Browser, catalog: Catalog) -> None:
    from amazon.tests.data_factories import make_listing
    from tenants.models import AuditEvent

    for n in range(147):
        make_listing(catalog.connection, sku=f"BULK-{n:03d}")
    browser.log_in(OWNER)
    page = browser.page
    page.goto("/repricing/skus/?per_page=200")
    page.get_by_label("Select every SKU on this page").check()
    assert page.locator("[data-selection-count]").inner_text() == "150 selected"
    page.get_by_label("Rule for the selected SKUs").select_option(label=catalog.match.name)
    # More than one batch: the page assigns through the API in batches of 100 with a progress bar.
    with page.expect_navigation():
        page.get_by_role("button", name="Assign rule").click()
        page.locator("progress.bulk__progress").wait_for(state="attached")
    page.wait_for_load_state()
    with tenant_context(catalog.tenant):
        assert SkuPricing.objects.filter(rule=catalog.match).count() == 150
        counts = sorted(
            event.changes["count"] for event in AuditEvent.objects.filter(action="repricing.rule_assign")
        )
    assert counts == [50, 100]
    assert browser.csp_violations() == []
    assert browser.errors == []
