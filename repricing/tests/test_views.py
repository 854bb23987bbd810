"""Repricing dashboard pages: every role reads, only change_automation changes, money only for see_money,
another company's or an ungranted connection's objects are 404, the rule form writes the engine's JSON
and shows errors per field, SKU settings and bulk assignment, "why this price" with real decisions, the
activity filters and the empty states."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.roles import Role
from amazon.tests.data_factories import make_listing
from amazon.tests.factories import make_connection
from repricing import display
from repricing.forms import RuleForm, parse_schedule
from repricing.models import PriceDecision, RepricingRule, RepricingSettings, SkuPricing, TagRule
from repricing.selectors import RuleResolver, sku_catalog, sku_pricing_of
from repricing.tests.page_data import COST, Catalog, make_catalog, record_history
from tenants.context import tenant_context
from tenants.models import AuditEvent, JobRun, Tenant
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER)
CHANGERS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
READERS = (Role.ANALYST, Role.VIEWER)


def _client(tenant: Tenant, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_member(tenant, role))
    return client


@pytest.fixture
def catalog() -> Catalog:
    tenant = make_tenant("Shop")
    return make_catalog(tenant, make_member(tenant, Role.OWNER, email="olivia@shop.test"))


def _settings(tenant: Tenant) -> RepricingSettings:
    with tenant_context(tenant):
        return RepricingSettings.objects.get()


def _pricing(catalog: Catalog, listing: Any) -> SkuPricing | None:
    with tenant_context(catalog.tenant):
        return SkuPricing.objects.filter(listing=listing).select_related("rule").first()


# --- Reading: every role, every page -------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_page_and_only_changers_see_controls(catalog: Catalog, role: str) -> None:
    record_history(catalog, hours=2)
    client = _client(catalog.tenant, role)
    pages = {
        "repricing:overview": {},
        "repricing:rules": {},
        "repricing:tag_rules": {},
        "repricing:skus": {},
        "repricing:sku_detail": {"public_id": catalog.mug.public_id},
        "repricing:activity": {},
    }
    for name, kwargs in pages.items():
        response = client.get(reverse(name, kwargs=kwargs))
        assert response.status_code == 200, name
        assert response["Cache-Control"] == "no-store"
        body = response.content.decode()
        assert 'aria-current="page"' in body
        can_change = role in CHANGERS
        assert ("Stop all price changes" in body) == (can_change and name == "repricing:overview")
        assert (reverse("repricing:rule_create") in body) == (can_change and name == "repricing:rules") or (
            name != "repricing:rules"
        )
    overview = client.get(reverse("repricing:overview")).content.decode()
    assert ('action="/repricing/settings/"' in overview) == (role in CHANGERS)


@pytest.mark.parametrize("role", READERS)
def test_readers_cannot_open_or_post_any_change(catalog: Catalog, role: str) -> None:
    client = _client(catalog.tenant, role)
    mug, rule = catalog.mug.public_id, catalog.beat.public_id
    for name, kwargs in (
        ("repricing:rule_create", {}),
        ("repricing:rule_edit", {"public_id": rule}),
        ("repricing:rule_delete", {"public_id": rule}),
        ("repricing:sku_edit", {"public_id": mug}),
    ):
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 403
    posts = [
        ("repricing:kill_switch", {}, {"on": "on", "reason": "x"}),
        ("repricing:settings", {}, {"timezone": "UTC"}),
        ("repricing:rule_toggle", {"public_id": rule}, {"active": "0"}),
        ("repricing:rule_delete", {"public_id": rule}, {}),
        ("repricing:tag_rule_delete", {"public_id": catalog.tag_rule.public_id}, {}),
        ("repricing:sku_edit", {"public_id": mug}, {"min_price": "1"}),
        ("repricing:sku_bulk", {}, {"rule": "none", "listings": [str(mug)]}),
        ("repricing:sku_reprice", {"public_id": mug}, {}),
    ]
    with tenant_context(catalog.tenant):
        audits = AuditEvent.objects.count()
    for name, kwargs, data in posts:
        assert client.post(reverse(name, kwargs=kwargs), data).status_code == 403, name
    with tenant_context(catalog.tenant):
        assert AuditEvent.objects.count() == audits
        assert RepricingRule.objects.filter(pk=catalog.beat.pk, is_active=True).exists()
    assert _settings(catalog.tenant).kill_switch is False


@pytest.mark.parametrize(("role", "sees"), [(Role.OWNER, True), (Role.ANALYST, True), (Role.VIEWER, False)])
def test_cost_is_shown_only_to_roles_that_see_money(catalog: Catalog, role: str, sees: bool) -> None:
    client = _client(catalog.tenant, role)
    for url in (
        reverse("repricing:skus"),
        reverse("repricing:sku_detail", kwargs={"public_id": catalog.mug.public_id}),
    ):
        body = client.get(url).content.decode()
        assert (COST in body) == sees, url
        assert ("Cost</th>" in body or "Unit cost" in body) == sees


def test_another_companys_objects_are_404(catalog: Catalog) -> None:
    other = make_catalog(make_tenant("Other"), label="-B")
    client = _client(catalog.tenant, Role.OWNER)
    for name, public_id in (
        ("repricing:sku_detail", other.mug.public_id),
        ("repricing:sku_edit", other.mug.public_id),
        ("repricing:rule_edit", other.beat.public_id),
        ("repricing:rule_delete", other.beat.public_id),
    ):
        assert client.get(reverse(name, kwargs={"public_id": public_id})).status_code == 404, name
    for name, public_id in (
        ("repricing:rule_toggle", other.beat.public_id),
        ("repricing:tag_rule_delete", other.tag_rule.public_id),
        ("repricing:sku_reprice", other.mug.public_id),
    ):
        assert client.post(reverse(name, kwargs={"public_id": public_id})).status_code == 404, name
    response = client.post(
        reverse("repricing:sku_bulk"), {"rule": "none", "listings": [str(other.mug.public_id)]}
    )
    assert response.status_code == 404
    with tenant_context(other.tenant):
        assert SkuPricing.objects.get(listing=other.mug).rule_id == other.beat.pk
        assert TagRule.objects.filter(pk=other.tag_rule.pk).exists()
    skus = client.get(reverse("repricing:skus")).content.decode()
    assert "MUG-RED-B" not in skus and "MUG-RED" in skus


def test_a_member_restricted_to_one_connection_sees_only_its_skus(catalog: Catalog) -> None:
    second = make_connection(catalog.tenant, name="Second store")
    hidden = make_listing(second, sku="HIDDEN-1", title="Hidden thing")
    user = make_member(catalog.tenant, Role.OPERATOR)
    assign_perm("amazon.view_sellerconnection", user, catalog.connection)
    client = Client()
    client.force_login(user)
    skus = client.get(reverse("repricing:skus")).content.decode()
    assert "MUG-RED" in skus and "HIDDEN-1" not in skus
    assert (
        client.get(reverse("repricing:sku_detail", kwargs={"public_id": hidden.public_id})).status_code == 404
    )
    response = client.post(
        reverse("repricing:sku_bulk"), {"rule": "none", "listings": [str(hidden.public_id)]}
    )
    assert response.status_code == 404
    overview = client.get(reverse("repricing:overview")).content.decode()
    assert " of 3</progress>" in overview and " of 4</progress>" not in overview  # 3 SKUs, not 4


# --- Kill switch and company settings ----------------------------------------------------------------


def test_kill_switch_on_with_reason_then_off_shows_who_when_why(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    page = client.get(reverse("repricing:overview")).content.decode()
    assert "Off: repricing may send prices" in page
    assert 'data-confirm="Stop sending every price to Amazon now?"' in page
    response = client.post(reverse("repricing:kill_switch"), {"on": "on", "reason": "Supplier price error"})
    assert response.status_code == 302
    settings = _settings(catalog.tenant)
    assert settings.kill_switch and settings.kill_switch_reason == "Supplier price error"
    page = client.get(reverse("repricing:overview")).content.decode()
    assert "On: nothing is sent to Amazon" in page
    assert "Turned on by <strong>olivia@shop.test</strong>" in page and "Supplier price error" in page
    assert "Allow price changes again" in page
    with tenant_context(catalog.tenant):
        event = AuditEvent.objects.filter(action="repricing.kill_switch_on").get()
    assert event.changes["reason"] == "Supplier price error"
    client.post(reverse("repricing:kill_switch"), {"on": "off"})
    assert _settings(catalog.tenant).kill_switch is False
    assert "Turned off by" in client.get(reverse("repricing:overview")).content.decode()
    # A bad value changes nothing.
    client.post(reverse("repricing:kill_switch"), {"on": "maybe"})
    assert _settings(catalog.tenant).kill_switch is False


def test_company_settings_save_and_errors_stay_on_the_page(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    response = client.post(
        reverse("repricing:settings"),
        {"default_rule": str(catalog.match.public_id), "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 302
    settings = _settings(catalog.tenant)
    assert settings.default_rule_id == catalog.match.pk and settings.timezone == "Europe/Berlin"
    assert settings.dry_run is False  # unticked box
    assert "Times in Europe/Berlin" in client.get(reverse("repricing:overview")).content.decode()
    response = client.post(reverse("repricing:settings"), {"timezone": "Mars/Olympus", "dry_run": "on"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert _settings(catalog.tenant).dry_run is False
    # An inactive rule cannot be the default: not even offered.
    with tenant_context(catalog.tenant):
        RepricingRule.objects.filter(pk=catalog.beat.pk).update(is_active=False)
    response = client.post(
        reverse("repricing:settings"), {"default_rule": str(catalog.beat.public_id), "timezone": "UTC"}
    )
    assert response.status_code == 400
    assert _settings(catalog.tenant).default_rule_id == catalog.match.pk


def test_dry_run_notice_on_a_new_company_and_empty_states() -> None:
    tenant = make_tenant("New")
    client = _client(tenant)
    overview = client.get(reverse("repricing:overview")).content.decode()
    assert "Dry run for the whole company." in overview
    assert "No listings yet" in overview and "No decisions yet" in overview
    assert "Go to Amazon accounts" in overview
    assert "No rules yet" in client.get(reverse("repricing:rules")).content.decode()
    assert "No tag rules yet" in client.get(reverse("repricing:tag_rules")).content.decode()
    assert "No listings yet" in client.get(reverse("repricing:skus")).content.decode()
    assert "No listings yet" in client.get(reverse("repricing:activity")).content.decode()
    viewer = _client(tenant, Role.VIEWER)
    assert (
        "Someone with the right to change automation"
        in viewer.get(reverse("repricing:rules")).content.decode()
    )
    with tenant_context(tenant):
        assert not RepricingSettings.objects.exists()  # reading wrote nothing


# --- Rules -------------------------------------------------------------------------------------------


BASE_FORM = {
    "name": "Weekend beat",
    "strategy_kind": "buy_box",
    "strategy_mode": "beat",
    "strategy_unit": "percent",
    "strategy_offset": "1.5",
    "when_no_buy_box": "hold",
    "when_alone": "max",
    "fulfillment": "FBA",
    "min_feedback_rating": "90",
    "conditions": ["new"],
    "ships_from": "us, ca",
    "exclude_amazon": "on",
    "out_of_bounds": "hold",
    "max_step_amount": "1.00",
    "max_step_percent": "5",
    "max_daily_percent": "15",
    "cooldown_minutes": "10",
    "price_war_enabled": "on",
    "price_war_undercuts": "5",
    "price_war_window_minutes": "60",
    "price_war_pause_minutes": "360",
    "anomaly_percent": "40",
    "probe_enabled": "on",
    "probe_unit": "amount",
    "probe_step": "0.10",
    "probe_when_sharing": "hold",
    "probe_sharing_below": "80",
    "schedule_enabled": "on",
    "schedule_timezone": "America/New_York",
    "schedule_entries": "sat,sun 00:00-24:00 +3%\nweekdays 22:00-06:00 pause",
    "is_active": "on",
}


def test_the_rule_form_writes_the_engines_json(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    assert client.get(reverse("repricing:rule_create")).status_code == 200
    response = client.post(reverse("repricing:rule_create"), BASE_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_context(catalog.tenant):
        rule = RepricingRule.objects.get(name="Weekend beat")
    config = rule.config
    assert config["strategy"] == {
        "kind": "buy_box",
        "mode": "beat",
        "amount": None,
        "percent": "1.5",
        "competitors": [],
        "when_no_buy_box": "hold",
        "when_alone": "max",
    }
    assert config["filters"]["fulfillment"] == "FBA" and config["filters"]["ships_from"] == ["CA", "US"]
    assert config["filters"]["min_feedback_rating"] == 90.0 and config["filters"]["exclude_amazon"] is True
    assert config["buy_box_probe"] == {
        "amount": "0.10",
        "percent": None,
        "when_sharing": "hold",
        "sharing_below": 0.8,
    }
    assert config["schedule"]["timezone"] == "America/New_York"
    assert config["schedule"]["entries"][1]["days"] == ["mon", "tue", "wed", "thu", "fri"]
    assert config["guards"]["max_step"] == {"amount": "1.00", "percent": "5"}
    assert config["guards"]["cooldown_seconds"] == 600
    assert config["guards"]["price_war"] == {"undercuts": 5, "window_seconds": 3600, "pause_seconds": 21600}
    assert config["bounds"] == {"out_of_bounds": "hold"}
    # The edit form shows the same values back, and saving unchanged keeps the version.
    edit = client.get(reverse("repricing:rule_edit", kwargs={"public_id": rule.public_id})).content.decode()
    assert (
        'value="1.5"' in edit and "weekdays" not in edit and "mon,tue,wed,thu,fri 22:00-06:00 pause" in edit
    )
    assert "&quot;kind&quot;: &quot;buy_box&quot;" in edit  # the JSON view
    initial = {k: v for k, v in RuleForm.initial_for(rule).items() if v not in (None, False, "")}
    form = RuleForm({**{k: (v if not isinstance(v, bool) else "on") for k, v in initial.items()}})
    assert form.is_valid(), form.errors
    assert form.config() == config
    rules_page = client.get(reverse("repricing:rules")).content.decode()
    assert "Beat the Buy Box by 1.5%." in rules_page and "Guards: at most 1.00 or 5%" in rules_page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"strategy_offset": ""}, "strategy_offset", "Enter how far from the competitor to price."),
        ({"strategy_kind": "named_competitors"}, "competitors", "Name at least one competitor"),
        ({"strategy_kind": "lowest_fba", "fulfillment": "FBM"}, "fulfillment", "FBM leaves no offer"),
        ({"schedule_entries": "someday 10:00-11:00 +2%"}, "schedule_entries", "is not a day"),
        ({"schedule_entries": "mon 10:00-10:00 +2%"}, "schedule_entries", "Line 1: The window is empty."),
        ({"price_war_undercuts": ""}, "price_war_undercuts", "Needed for the price-war pause."),
        ({"probe_step": "-1"}, "probe_step", "greater than or equal to 0.001"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_rule_form_errors_are_shown_next_to_their_field(
    catalog: Catalog, changes: dict[str, str], field: str, message: str
) -> None:
    client = Client()
    client.force_login(catalog.owner)
    response = client.post(reverse("repricing:rule_create"), {**BASE_FORM, **changes})
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    body = response.content.decode()
    assert 'aria-invalid="true"' in body and "Please correct the highlighted fields." in body
    with tenant_context(catalog.tenant):
        assert not RepricingRule.objects.filter(name="Weekend beat").exists()


def test_a_duplicate_name_is_a_field_error(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    response = client.post(reverse("repricing:rule_create"), {**BASE_FORM, "name": catalog.beat.name})
    assert response.status_code == 400
    assert "already exists" in response.context["form"].errors["name"][0]


def test_edit_bumps_the_version_toggle_duplicate_and_delete(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    url = reverse("repricing:rule_edit", kwargs={"public_id": catalog.match.public_id})
    form = {k: v for k, v in RuleForm.initial_for(catalog.match).items() if v not in (None, False, "")}
    form.update(is_active="on", strategy_mode="beat", strategy_unit="amount", strategy_offset="0.05")
    assert client.post(url, form).status_code == 302
    with tenant_context(catalog.tenant):
        rule = RepricingRule.objects.get(pk=catalog.match.pk)
    assert rule.version == 2 and rule.config["strategy"]["amount"] == "0.05"
    toggle = reverse("repricing:rule_toggle", kwargs={"public_id": rule.public_id})
    client.post(toggle, {"active": "0"})
    with tenant_context(catalog.tenant):
        assert not RepricingRule.objects.get(pk=rule.pk).is_active
    assert "Inactive: skipped" in client.get(reverse("repricing:tag_rules")).content.decode()
    client.post(toggle, {"active": "1"})
    copy = client.get(reverse("repricing:rule_create") + f"?from={rule.public_id}").content.decode()
    assert f'value="Copy of {rule.name}"' in copy
    # The default rule cannot be deleted; another can, and its SKUs fall back.
    client.post(reverse("repricing:settings"), {"default_rule": str(rule.public_id), "timezone": "UTC"})
    delete = reverse("repricing:rule_delete", kwargs={"public_id": rule.public_id})
    assert "This rule is the company default" in client.get(delete).content.decode()
    client.post(delete)
    with tenant_context(catalog.tenant):
        assert RepricingRule.objects.filter(pk=rule.pk).exists()
    beat_delete = reverse("repricing:rule_delete", kwargs={"public_id": catalog.beat.public_id})
    assert "1 SKU assigned to it directly" in client.get(beat_delete).content.decode()
    assert client.post(beat_delete).status_code == 302
    with tenant_context(catalog.tenant):
        assert not RepricingRule.objects.filter(pk=catalog.beat.pk).exists()
        assert SkuPricing.objects.get(listing=catalog.mug).rule_id is None


def test_tag_rules_add_change_and_remove(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    page = client.get(reverse("repricing:tag_rules")).content.decode()
    assert "clearance" in page and "kitchen" in page  # tags in use
    url = reverse("repricing:tag_rule_create")
    assert (
        client.post(url, {"tag": "kitchen", "rule": str(catalog.beat.public_id), "priority": "5"}).status_code
        == 302
    )
    response = client.post(url, {"tag": "", "rule": str(catalog.beat.public_id), "priority": "-1"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"tag", "priority"}
    with tenant_context(catalog.tenant):
        row = TagRule.objects.get(tag="kitchen")
    assert row.rule_id == catalog.beat.pk and row.priority == 5
    client.post(reverse("repricing:tag_rule_delete", kwargs={"public_id": row.public_id}))
    with tenant_context(catalog.tenant):
        assert not TagRule.objects.filter(tag="kitchen").exists()


# --- SKUs ----------------------------------------------------------------------------------------------


def test_sku_filters_and_the_effective_rule_agree_with_the_resolver(catalog: Catalog) -> None:
    client = _client(catalog.tenant, Role.VIEWER)

    def skus(**params: str) -> set[str]:
        body = client.get(reverse("repricing:skus"), params).content.decode()
        return set(re.findall(r"<code>([A-Z]+-[A-Z0-9]+)</code>", body))

    assert skus() == {"MUG-RED", "LAMP-1", "PEN-9"}
    assert skus(rule="none") == {"PEN-9"}
    assert skus(rule=str(catalog.beat.public_id)) == {"MUG-RED"}
    assert skus(rule=str(catalog.match.public_id)) == {"LAMP-1"}
    assert skus(tag="clearance") == {"LAMP-1"}
    assert skus(has_bounds="no") == {"PEN-9"}
    assert skus(has_bounds="yes") == {"MUG-RED", "LAMP-1"}
    assert skus(q="lamp") == {"LAMP-1"}
    assert skus(paused="yes") == set()
    with tenant_context(catalog.tenant):
        SkuPricing.objects.filter(listing=catalog.lamp).update(
            paused_until=timezone.now() + timedelta(hours=1)
        )
    assert skus(paused="yes") == {"LAMP-1"}
    assert "No SKU matches" in client.get(reverse("repricing:skus"), {"q": "nothing"}).content.decode()
    assert skus(rule="not-a-rule") == set()  # an invalid filter shows nothing, never everything
    # With a company default, every SKU has a rule; the SQL annotation matches RuleResolver throughout.
    with tenant_context(catalog.tenant):
        settings = RepricingSettings.objects.get()
        settings.default_rule = catalog.match
        settings.save()
        listings = list(sku_catalog(tenant=catalog.tenant, user=None))
        resolver = RuleResolver()
        pricing = sku_pricing_of(listings)
        resolved = {listing.pk: resolver.resolve(pricing.get(listing.pk))[0] for listing in listings}
        for rule in (catalog.beat, catalog.match):
            expected = {pk for pk, found in resolved.items() if found == rule}
            assert {li.pk for li in sku_catalog(tenant=catalog.tenant, user=None, rule=rule)} == expected
        assert resolved[catalog.pen.pk] == catalog.match  # no settings at all: the default
    assert skus(rule="none") == set()
    body = client.get(reverse("repricing:skus")).content.decode()
    assert "(own)" in body and "(tag clearance)" in body and "(default)" in body


def test_sku_settings_edit_with_errors_per_field_and_computed_minimum(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    url = reverse("repricing:sku_edit", kwargs={"public_id": catalog.pen.public_id})
    page = client.get(url).content.decode()
    assert "Unit cost" in page and "Min price" in page
    response = client.post(
        url, {"enabled": "on", "bounds_source": "entered", "min_price": "20.00", "max_price": "10.00"}
    )
    assert response.status_code == 400
    assert "above the maximum" in response.context["form"].errors["min_price"][0]
    assert _pricing(catalog, catalog.pen) is None  # nothing half-written
    response = client.post(
        url,
        {
            "enabled": "on",
            "rule": str(catalog.match.public_id),
            "tags": "desk, gifts",
            "cost": "5.00",
            "referral_fee_percent": "15",
            "fba_fee": "3.00",
            "bounds_source": "margin",
            "target_percent": "20",
            "max_price": "40.00",
        },
    )
    assert response.status_code == 302
    pricing = _pricing(catalog, catalog.pen)
    assert pricing is not None and pricing.rule_id == catalog.match.pk and pricing.tags == ["desk", "gifts"]
    # cost + fee + 15% referral + 20% margin: (5 + 3) / (1 - 0.15 - 0.20) = 12.31 (rounded up)
    assert pricing.min_price == Decimal("12.31") and pricing.max_price == Decimal("40.00")
    # ROI: (cost x 1.2 + FBA fee) / (1 - 15%) = 9 / 0.85 = 10.59; a cleared cost is refused on its field.
    full = {
        "enabled": "on",
        "cost": "5.00",
        "referral_fee_percent": "15",
        "fba_fee": "3.00",
        "bounds_source": "roi",
        "target_percent": "20",
        "max_price": "40.00",
    }
    assert client.post(url, full).status_code == 302
    assert _pricing(catalog, catalog.pen).min_price == Decimal("10.59")  # type: ignore[union-attr]
    response = client.post(url, {**full, "cost": ""})
    assert response.status_code == 400 and "needs cost" in response.context["form"].errors["cost"][0]
    # Without see_money there is no such role that may edit; the form itself drops the money fields.
    from repricing.forms import SkuPricingForm

    assert "cost" not in SkuPricingForm(see_money=False).fields


def test_sku_bulk_assign_to_the_ticked_and_to_all_matching(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    url = reverse("repricing:sku_bulk")
    response = client.post(
        url,
        {
            "rule": str(catalog.match.public_id),
            "listings": [str(catalog.mug.public_id), str(catalog.pen.public_id)],
            "query": "q=&per_page=50",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("?q=&per_page=50")
    with tenant_context(catalog.tenant):
        rows = {row.listing_id: row.rule_id for row in SkuPricing.objects.all()}
        event = AuditEvent.objects.filter(action="repricing.rule_assign").latest("created_at")
    assert rows[catalog.mug.pk] == rows[catalog.pen.pk] == catalog.match.pk
    assert event.changes["count"] == 2
    # "All matching" uses the list's filters: only SKUs without bounds (the pen has none).
    client.post(url, {"rule": "none", "all_matching": "on", "query": "has_bounds=no"})
    with tenant_context(catalog.tenant):
        rows = {row.listing_id: row.rule_id for row in SkuPricing.objects.all()}
    assert rows[catalog.pen.pk] is None and rows[catalog.mug.pk] == catalog.match.pk
    # Nothing ticked, or no rule chosen: a message, nothing changed.
    response = client.post(url, {"rule": str(catalog.beat.public_id)}, follow=True)
    assert "Select at least one SKU." in response.content.decode()
    response = client.post(url, {"listings": [str(catalog.mug.public_id)]}, follow=True)
    assert "Choose the rule to assign." in response.content.decode()
    with tenant_context(catalog.tenant):
        assert SkuPricing.objects.get(listing=catalog.mug).rule_id == catalog.match.pk


def test_reprice_now_for_a_sku_and_a_selection_records_a_run(catalog: Catalog) -> None:
    client = Client()
    client.force_login(catalog.owner)
    response = client.post(reverse("repricing:sku_reprice", kwargs={"public_id": catalog.mug.public_id}))
    assert response.status_code == 302
    with tenant_context(catalog.tenant):
        run = JobRun.objects.get(kind="repricing.reprice_now")
        assert run.progress_total == 1 and run.triggered_by == "user"
        assert AuditEvent.objects.filter(action="repricing.reprice_now").count() == 1
    response = client.post(
        reverse("repricing:sku_bulk"),
        {"action": "reprice", "listings": [str(catalog.mug.public_id), str(catalog.lamp.public_id)]},
    )
    assert response["Location"].endswith("#runs-title")
    with tenant_context(catalog.tenant):
        assert sorted(JobRun.objects.values_list("progress_total", flat=True)) == [1, 2]
    overview = client.get(reverse("repricing:overview")).content.decode()
    assert "Repricing runs" in overview and "repricing.reprice_now" in overview and "<progress" in overview


# --- Why this price --------------------------------------------------------------------------------------


def test_sku_history_chart_and_decisions_with_their_reasons(catalog: Catalog) -> None:
    decisions = record_history(catalog, hours=3)
    assert [d.action for d in decisions] == ["change", "change", "change"]
    client = _client(catalog.tenant, Role.VIEWER)
    url = reverse("repricing:sku_detail", kwargs={"public_id": catalog.mug.public_id})
    body = client.get(url).content.decode()
    assert re.search(r'<path class="price-chart__line price-chart__line--ours" d="M[\d. HV]+"', body)
    assert 'price-chart__line--buy-box" d="M' in body and 'price-chart__line--lowest" d="M' in body
    assert body.count('class="price-chart__marker price-chart__marker--change"') == 3
    assert body.count('class="price-chart__bound"') == 2  # min and max
    assert 'aria-current="true">1d<' in body  # three hours of history open the 1-day range
    # Each decision: its reason in plain words and the engine's trace.
    assert body.count("Beat the Buy Box</span>") == 3
    assert "Buy Box is 18.50 (seller ACOMPETITOR1, FBA); beat by 0.01 → 18.49" in body
    assert "New price 18.49 (was 20.00)" in body
    assert "Queued" in body  # the submission queued for each change
    # A marker links to its decision; the page that holds it opens, with it as the target.
    oldest = decisions[0]
    response = client.get(url, {"decision": str(oldest.public_id), "range": "1d"})
    assert f'id="decision-{oldest.public_id}"' in response.content.decode()


def test_sku_detail_pages_through_decisions_to_the_marked_one(catalog: Catalog) -> None:
    now = timezone.now()
    with tenant_context(catalog.tenant):
        rows = [
            PriceDecision.objects.create(
                listing=catalog.mug,
                trigger="schedule",
                action="hold" if n % 5 else "change",
                reason="no_change" if n % 5 else "beat_buy_box",
                currency="USD",
                old_price=Decimal("20.00"),
                new_price=None if n % 5 else Decimal("19.00"),
                submit=False,
                dry_run=True,
                observed_at=now - timedelta(minutes=n),
                decided_at=now - timedelta(minutes=n),
                trace=[{"code": "price", "message": f"step {n}", "data": {}}],
            )
            for n in range(45)
        ]
    client = _client(catalog.tenant)
    url = reverse("repricing:sku_detail", kwargs={"public_id": catalog.mug.public_id})
    first = client.get(url).content.decode()
    assert "Page 1 of 3" in first and f'id="decision-{rows[44].public_id}"' not in first
    assert first.count("price-chart__marker--dry_run") == 9  # one marker per change, none for holds
    assert "Change not sent (dry run / kill switch)" in first
    marked = client.get(url, {"decision": str(rows[40].public_id)}).content.decode()
    assert "Page 3 of 3" in marked and f'id="decision-{rows[40].public_id}"' in marked
    assert "Already at the target price" in marked


def test_history_empty_state_says_what_is_missing(catalog: Catalog) -> None:
    client = _client(catalog.tenant)
    body = client.get(
        reverse("repricing:sku_detail", kwargs={"public_id": catalog.pen.public_id})
    ).content.decode()
    assert "No price history yet" in body and "No rule applies to this SKU." in body
    body = client.get(
        reverse("repricing:sku_detail", kwargs={"public_id": catalog.lamp.public_id})
    ).content.decode()
    assert "Decisions appear when a competitor changes price" in body
    assert "Match lowest" in body and "from tag clearance" in body


# --- Activity --------------------------------------------------------------------------------------------


def test_activity_filters(catalog: Catalog) -> None:
    record_history(catalog, hours=2)
    now = timezone.now()
    with tenant_context(catalog.tenant):
        PriceDecision.objects.create(
            listing=catalog.lamp,
            trigger="manual",
            action="pause",
            reason="price_war",
            alerts=["price_war"],
            currency="USD",
            old_price=Decimal("35.00"),
            observed_at=now - timedelta(days=3),
            decided_at=now - timedelta(days=3),
            trace=[{"code": "price_war", "message": "5 undercuts in 1 hour: pausing", "data": {}}],
        )
    client = _client(catalog.tenant, Role.ANALYST)
    url = reverse("repricing:activity")

    def count(**params: str) -> int:
        body = client.get(url, params).content.decode()
        return body.count('class="decision"')

    assert count() == 3
    assert count(sku="lamp") == 1 and count(sku="MUG") == 2
    assert count(action="change") == 2 and count(action="pause") == 1
    assert count(reason="price_war") == 1 and count(alert="price_war") == 1
    assert count(trigger="manual") == 1 and count(trigger="schedule") == 2
    today = timezone.localdate()
    assert count(since=str(today - timedelta(days=1))) == 2
    assert count(until=str(today - timedelta(days=2))) == 1
    body = client.get(url, {"since": str(today), "until": str(today - timedelta(days=5))}).content.decode()
    assert "The end date is before the start date." in body and 'class="decision"' not in body
    body = client.get(url, {"action": "explode"}).content.decode()
    assert 'class="decision"' not in body
    body = client.get(url).content.decode()
    assert "Price war: repricing paused" in body and "5 undercuts in 1 hour: pausing" in body
    assert reverse("repricing:sku_detail", kwargs={"public_id": catalog.lamp.public_id}) in body
    assert "No decision matches" in client.get(url, {"sku": "zzz"}).content.decode()
    overview = client.get(reverse("repricing:overview")).content.decode()
    assert '<rect class="activity-chart__bar activity-chart__bar--change"' in overview
    assert '<rect class="activity-chart__bar activity-chart__bar--pause"' in overview


# --- Pure helpers ------------------------------------------------------------------------------------------


def test_reason_labels_and_schedule_parsing() -> None:
    assert display.reason_label("beat_buy_box") == "Beat the Buy Box"
    assert display.reason_label("match_lowest_fba") == "Matched the lowest FBA price"
    assert (
        display.reason_label("no_competitors_min")
        == "No competitor left after the filters: went to the min price"
    )
    assert display.reason_label("held_at_min") == "Stopped at the min price"
    assert display.reason_label("something_new") == "Something new"
    assert parse_schedule("fri-mon 08:00-9:30 -2.5%") == [
        {"days": ["mon", "fri", "sat", "sun"], "start": "08:00", "end": "09:30", "adjust_percent": "-2.5"}
    ]
    with pytest.raises(Exception, match="Line 2"):
        parse_schedule("mon 08:00-09:00 pause\nbogus")


def test_price_chart_geometry() -> None:
    start = timezone.now() - timedelta(days=1)
    end = timezone.now()
    chart = display.price_chart(
        start=start,
        end=end,
        series={
            "ours": [
                (start + timedelta(hours=1), Decimal("20")),
                (start + timedelta(hours=12), Decimal("18")),
            ],
            "buy_box": [(start + timedelta(hours=2), Decimal("19")), (start + timedelta(hours=3), None)],
        },
        decisions=[
            display.ChartDecision(
                at=start + timedelta(hours=12), price=Decimal("18"), kind="change", label="x", anchor="#a"
            )
        ],
        min_price=Decimal("15"),
        max_price=Decimal("25"),
    )
    assert not chart.empty
    assert chart.paths["ours"].startswith("M") and "V" in chart.paths["ours"]
    assert chart.paths["buy_box"].count("M") == 1 and chart.paths["buy_box"].endswith(
        f"H{chart.paths['buy_box'].split('H')[-1]}"
    )
    (marker,) = chart.markers
    assert chart.left < marker.x < chart.right and chart.top <= marker.y <= chart.bottom
    assert chart.bounds["max"] < chart.bounds["min"]  # higher price, higher on the chart
    labels = [float(t.label) for t in chart.y_ticks]
    assert labels == sorted(labels) and labels[0] <= 15 and labels[-1] >= 25
    assert display.price_chart(start=start, end=end, series={"ours": []}).empty
