"""The repricing REST API (/api/v1/repricing/...): settings and kill switch, rules, tag rules, SKU
pricing with filters and bulk assignment, decisions ("why this price") with cursor pagination,
submissions, reprice now. Per role, across companies, with bad input, idempotency and audit."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon.tests.data_factories import make_listing
from amazon.tests.factories import make_connection
from config.redis import redis_client
from repricing.models import PriceDecision, RepricingRule, RepricingSettings, SkuPricing, TagRule
from repricing.tests.page_data import COST, Catalog, make_catalog, record_history
from tenants.context import tenant_context
from tenants.models import AuditEvent, JobRun, Tenant
from tests.factories import make_api_key, make_member, make_tenant

pytestmark = pytest.mark.django_db


def broker_messages(queue: str = "repricing") -> list[dict[str, Any]]:
    """The task messages waiting in the Celery broker's queue (a Redis list), oldest first."""
    raw: Any = redis_client().lrange(queue, 0, -1)
    return [json.loads(item) for item in reversed(raw)]


CHANGERS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
READERS = (Role.ANALYST, Role.VIEWER)


def _api(tenant: Tenant, role: str = Role.OWNER, user: Any = None) -> APIClient:
    user = user or make_member(tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="repricing-api")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def catalog() -> Catalog:
    tenant = make_tenant("Shop")
    return make_catalog(tenant, make_member(tenant, Role.OWNER, email="olivia@shop.test"))


def _error(response: Any) -> dict[str, Any]:
    return response.json()["error"]


# --- Settings and kill switch --------------------------------------------------------------------------


def test_settings_read_and_change(catalog: Catalog) -> None:
    client = _api(catalog.tenant, Role.VIEWER)
    body = client.get(reverse("api:repricing-settings")).json()
    assert body == {
        "kill_switch": False,
        "kill_switch_reason": "",
        "kill_switch_changed_at": None,
        "kill_switch_changed_by": None,
        "dry_run": False,
        "default_rule": None,
        "timezone": "UTC",
    }
    assert (
        client.patch(reverse("api:repricing-settings"), {"dry_run": True}, format="json").status_code == 403
    )
    operator = _api(catalog.tenant, Role.OPERATOR)
    response = operator.patch(
        reverse("api:repricing-settings"),
        {"dry_run": True, "default_rule": str(catalog.beat.public_id), "timezone": "Asia/Tokyo"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["default_rule"] == str(catalog.beat.public_id)
    assert response.json()["dry_run"] is True and response.json()["timezone"] == "Asia/Tokyo"
    response = operator.patch(reverse("api:repricing-settings"), {"default_rule": None}, format="json")
    assert response.json()["default_rule"] is None and response.json()["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "invalid_request", "timezone"),
        ({"dry_run": "yes"}, "validation_error", "dry_run"),
        ({"default_rule": "00000000-0000-0000-0000-000000000000"}, "validation_error", "default_rule"),
        ({"kill_switch": True}, "validation_error", "kill_switch"),
    ],
)
def test_settings_bad_input(catalog: Catalog, body: dict[str, Any], code: str, field: str) -> None:
    response = _api(catalog.tenant).patch(reverse("api:repricing-settings"), body, format="json")
    assert response.status_code == 400
    assert _error(response)["code"] == code and field in _error(response)["fields"]
    with tenant_context(catalog.tenant):
        settings = RepricingSettings.objects.get()
    assert settings.timezone == "UTC" and settings.dry_run is False and not settings.kill_switch


def test_kill_switch_on_off_audited_idempotent(
    catalog: Catalog, django_capture_on_commit_callbacks: Any
) -> None:
    client = _api(catalog.tenant, user=catalog.owner)
    url = reverse("api:repricing-kill-switch")
    headers = {"HTTP_IDEMPOTENCY_KEY": f"stop-{catalog.tenant.pk}"}
    with django_capture_on_commit_callbacks(execute=True):  # the response is kept once committed
        response = client.post(url, {"on": True, "reason": "Costs changed"}, format="json", **headers)
    assert response.status_code == 200
    body = response.json()
    assert body["kill_switch"] is True and body["kill_switch_reason"] == "Costs changed"
    assert body["kill_switch_changed_by"] == "olivia@shop.test" and body["kill_switch_changed_at"]
    replay = client.post(url, {"on": True, "reason": "Costs changed"}, format="json", **headers)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == body
    reused = client.post(url, {"on": False}, format="json", **headers)
    assert reused.status_code == 422 and _error(reused)["code"] == "idempotency_key_reused"
    with tenant_context(catalog.tenant):
        assert AuditEvent.objects.filter(action="repricing.kill_switch_on").count() == 1
    assert client.post(url, {"on": False}, format="json").json()["kill_switch"] is False
    assert client.post(url, {"reason": "x"}, format="json").status_code == 400
    assert client.post(url, {"on": "true"}, format="json").status_code == 400
    assert _api(catalog.tenant, Role.ANALYST).post(url, {"on": True}, format="json").status_code == 403


def test_an_api_key_acts_with_its_role_and_is_named_in_the_audit(catalog: Catalog) -> None:
    _, raw = make_api_key(catalog.tenant, role=Role.OPERATOR, name="ERP")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(reverse("api:repricing-kill-switch"), {"on": True}, format="json")
    assert response.status_code == 200 and response.json()["kill_switch_changed_by"].startswith("API key ERP")
    _, viewer_raw = make_api_key(catalog.tenant, role=Role.VIEWER, name="BI")
    viewer = APIClient(HTTP_AUTHORIZATION=f"Bearer {viewer_raw}")
    assert viewer.post(reverse("api:repricing-kill-switch"), {"on": False}, format="json").status_code == 403


# --- Rules -----------------------------------------------------------------------------------------------


def test_rules_crud(catalog: Catalog) -> None:
    client = _api(catalog.tenant, Role.OPERATOR)
    listing = client.get(reverse("api:repricing-rule-list")).json()
    assert [r["name"] for r in listing["results"]] == ["Beat the Buy Box", "Match lowest"]
    beat = listing["results"][0]
    assert beat["config"]["strategy"]["amount"] == "0.01" and beat["version"] == 1
    assert "Beat the Buy Box by 0.01." in beat["summary"]
    config = {
        "strategy": {"kind": "lowest_fba", "mode": "above", "percent": "2"},
        "guards": {"cooldown_seconds": 600},
    }
    response = client.post(
        reverse("api:repricing-rule-list"),
        {"name": "FBA above", "config": config, "is_active": False},
        format="json",
        HTTP_IDEMPOTENCY_KEY="rule-1",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["is_active"] is False and created["config"]["guards"]["cooldown_seconds"] == 600
    assert created["config"]["filters"]["fulfillment"] == "any"  # canonical: every key present
    detail = reverse("api:repricing-rule-detail", kwargs={"public_id": created["public_id"]})
    assert client.get(detail).json()["name"] == "FBA above"
    response = client.patch(
        detail,
        {"config": {"strategy": {"kind": "lowest", "mode": "match"}}, "is_active": True},
        format="json",
    )
    assert response.json()["version"] == 2 and response.json()["is_active"] is True
    assert client.patch(detail, {"description": "Notes"}, format="json").json()["version"] == 2
    assert client.delete(detail).status_code == 204
    assert client.get(detail).status_code == 404
    with tenant_context(catalog.tenant):
        actions = list(
            AuditEvent.objects.filter(action__startswith="repricing.rule_").values_list("action", flat=True)
        )
    assert {"repricing.rule_create", "repricing.rule_update", "repricing.rule_delete"} <= set(actions)


@pytest.mark.parametrize(
    ("body", "code", "field", "words"),
    [
        (
            {"name": "X", "config": {"strategy": {"kind": "buy_box", "mode": "beat"}}},
            "invalid_rule",
            "config",
            "strategy.amount",
        ),
        (
            {"name": "X", "config": {"strategy": {"kind": "buy_box"}, "bogus": 1}},
            "invalid_rule",
            "config",
            "bogus: unknown field",
        ),
        ({"name": "X", "config": "beat the buy box"}, "validation_error", "config", ""),
        (
            {"name": "X", "config": {"strategy": {"kind": "lowest"}}, "owner": "me"},
            "validation_error",
            "owner",
            "",
        ),
        (
            {"name": "Beat the Buy Box", "config": {"strategy": {"kind": "lowest"}}},
            "duplicate",
            "name",
            "already",
        ),
        ({"name": " ", "config": {"strategy": {"kind": "lowest"}}}, "validation_error", "name", "blank"),
    ],
)
def test_rule_create_bad_input_names_the_field(
    catalog: Catalog, body: dict[str, Any], code: str, field: str, words: str
) -> None:
    response = _api(catalog.tenant).post(reverse("api:repricing-rule-list"), body, format="json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == code and field in error["fields"], error
    assert words in error["message"] or words in str(error["fields"])
    with tenant_context(catalog.tenant):
        assert RepricingRule.objects.count() == 2


def test_the_default_rule_cannot_be_deleted_or_deactivated(catalog: Catalog) -> None:
    client = _api(catalog.tenant)
    client.patch(
        reverse("api:repricing-settings"), {"default_rule": str(catalog.match.public_id)}, format="json"
    )
    detail = reverse("api:repricing-rule-detail", kwargs={"public_id": catalog.match.public_id})
    response = client.delete(detail)
    assert response.status_code == 400 and _error(response)["code"] == "in_use"
    response = client.patch(detail, {"is_active": False}, format="json")
    assert response.status_code == 400 and "is_active" in _error(response)["fields"]
    assert client.get(detail).json()["is_default"] is True


# --- Tag rules -----------------------------------------------------------------------------------------


def test_tag_rules_crud(catalog: Catalog) -> None:
    client = _api(catalog.tenant, Role.ADMIN)
    rows = client.get(reverse("api:repricing-tag-rule-list")).json()["results"]
    assert [(r["tag"], r["rule_name"], r["priority"]) for r in rows] == [("clearance", "Match lowest", 10)]
    url = reverse("api:repricing-tag-rule-list")
    response = client.post(
        url, {"tag": "kitchen", "rule": str(catalog.beat.public_id), "priority": 5}, format="json"
    )
    assert response.status_code == 201
    again = client.post(url, {"tag": "kitchen", "rule": str(catalog.match.public_id)}, format="json")
    assert again.status_code == 200 and again.json()["rule"] == str(catalog.match.public_id)
    detail = reverse("api:repricing-tag-rule-detail", kwargs={"public_id": response.json()["public_id"]})
    assert client.patch(detail, {"priority": 1}, format="json").json()["priority"] == 1
    bad = client.patch(detail, {"rule": "00000000-0000-0000-0000-000000000000"}, format="json")
    assert bad.status_code == 400 and "rule" in _error(bad)["fields"]
    assert client.patch(detail, {"tag": "renamed"}, format="json").status_code == 400
    assert client.delete(detail).status_code == 204
    with tenant_context(catalog.tenant):
        assert not TagRule.objects.filter(tag="kitchen").exists()
    assert (
        _api(catalog.tenant, Role.VIEWER)
        .delete(reverse("api:repricing-tag-rule-detail", kwargs={"public_id": catalog.tag_rule.public_id}))
        .status_code
        == 403
    )


# --- SKUs ------------------------------------------------------------------------------------------------


def test_sku_list_filters_and_money_only_for_see_money(catalog: Catalog) -> None:
    owner = _api(catalog.tenant)
    url = reverse("api:repricing-sku-list")
    rows = {r["sku"]: r for r in owner.get(url).json()["results"]}
    assert set(rows) == {"LAMP-1", "MUG-RED", "PEN-9"}
    mug = rows["MUG-RED"]
    assert mug["cost"] == COST and mug["min_price"] == "15.00" and mug["max_price"] == "30.00"
    assert mug["rule"] == mug["effective_rule"] == str(catalog.beat.public_id) and mug["rule_source"] == "sku"
    assert rows["LAMP-1"]["rule"] is None and rows["LAMP-1"]["rule_source"] == "tag:clearance"
    assert rows["PEN-9"]["effective_rule"] is None and rows["PEN-9"]["rule_source"] == "none"
    viewer = _api(catalog.tenant, Role.VIEWER).get(url).json()["results"]
    assert all("cost" not in r and "fba_fee" not in r and "target_percent" not in r for r in viewer)
    assert COST not in str(viewer)

    def skus(**params: str) -> set[str]:
        response = owner.get(url, params)
        assert response.status_code == 200, response.json()
        return {r["sku"] for r in response.json()["results"]}

    assert skus(rule="none") == {"PEN-9"}
    assert skus(rule=str(catalog.match.public_id)) == {"LAMP-1"}
    assert skus(tag="kitchen") == {"MUG-RED"}
    assert skus(has_bounds="false") == {"PEN-9"}
    assert skus(enabled="true") == {"LAMP-1", "MUG-RED", "PEN-9"}
    assert skus(q="red") == {"MUG-RED"}
    for bad in ({"rule": "nope"}, {"has_bounds": "yes"}, {"colour": "red"}):
        response = owner.get(url, bad)
        assert response.status_code == 400 and _error(response)["code"] == "validation_error", bad


def test_sku_cursor_pagination(catalog: Catalog) -> None:
    for n in range(5):
        make_listing(catalog.connection, sku=f"ZZ-{n}")
    client = _api(catalog.tenant)
    first = client.get(reverse("api:repricing-sku-list"), {"page_size": 3}).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    seen = [r["sku"] for page in (first, second, third) for r in page["results"]]
    assert seen == ["LAMP-1", "MUG-RED", "PEN-9", "ZZ-0", "ZZ-1", "ZZ-2", "ZZ-3", "ZZ-4"]
    assert third["next"] is None


def test_sku_get_and_patch(catalog: Catalog) -> None:
    client = _api(catalog.tenant, Role.OPERATOR)
    url = reverse("api:repricing-sku-detail", kwargs={"public_id": catalog.pen.public_id})
    body = client.get(url).json()
    assert body["enabled"] is True and body["tags"] == [] and body["min_price"] is None
    response = client.patch(
        url,
        {
            "rule": str(catalog.match.public_id),
            "tags": ["b", "a"],
            "cost": "5.00",
            "referral_fee_percent": "15",
            "fba_fee": "3.00",
            "bounds_source": "margin",
            "target_percent": "20",
            "max_price": 40,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["min_price"] == "12.31" and body["max_price"] == "40.00" and body["tags"] == ["a", "b"]
    assert body["effective_rule"] == str(catalog.match.public_id) and body["rule_source"] == "sku"
    response = client.patch(url, {"bounds_source": "entered", "min_price": "50.00"}, format="json")
    assert response.status_code == 400 and "min_price" in _error(response)["fields"]
    response = client.patch(url, {"rule": None, "enabled": False}, format="json")
    assert response.json()["rule"] is None and response.json()["enabled"] is False
    for bad in (
        {"cost": "-1"},
        {"tags": "a,b"},
        {"enabled": "no"},
        {"paused_until": None},
        {"min_price": "abc"},
    ):
        response = client.patch(url, bad, format="json")
        assert response.status_code == 400, bad
    with tenant_context(catalog.tenant):
        pricing = SkuPricing.objects.get(listing=catalog.pen)
    assert pricing.cost == Decimal("5.00") and pricing.enabled is False
    assert _api(catalog.tenant, Role.ANALYST).patch(url, {"enabled": True}, format="json").status_code == 403


def test_bulk_assign_all_or_nothing(catalog: Catalog) -> None:
    client = _api(catalog.tenant)
    url = reverse("api:repricing-sku-assign-rule")
    ids = [str(catalog.mug.public_id), str(catalog.lamp.public_id), str(catalog.pen.public_id)]
    response = client.post(url, {"listings": ids, "rule": str(catalog.match.public_id)}, format="json")
    assert response.status_code == 200
    assert response.json() == {"assigned": 3, "rule": str(catalog.match.public_id)}
    with tenant_context(catalog.tenant):
        assert set(SkuPricing.objects.values_list("rule_id", flat=True)) == {catalog.match.pk}
    other = make_catalog(make_tenant("Other"), label="-B")
    response = client.post(url, {"listings": [ids[0], str(other.mug.public_id)], "rule": None}, format="json")
    assert response.status_code == 400 and "listings" in _error(response)["fields"]
    with tenant_context(catalog.tenant):
        assert SkuPricing.objects.get(listing=catalog.mug).rule_id == catalog.match.pk  # nothing changed
    assert client.post(url, {"listings": [], "rule": None}, format="json").status_code == 400
    response = client.post(url, {"listings": ids, "rule": str(other.beat.public_id)}, format="json")
    assert response.status_code == 400 and "rule" in _error(response)["fields"]
    response = client.post(url, {"listings": [ids[0]], "rule": None}, format="json")
    assert response.json() == {"assigned": 1, "rule": None}


def test_a_member_restricted_to_one_connection_cannot_reach_other_skus(catalog: Catalog) -> None:
    second = make_connection(catalog.tenant, name="Second store")
    hidden = make_listing(second, sku="HIDDEN-1")
    user = make_member(catalog.tenant, Role.OPERATOR)
    assign_perm("amazon.view_sellerconnection", user, catalog.connection)
    client = _api(catalog.tenant, user=user)
    skus = {r["sku"] for r in client.get(reverse("api:repricing-sku-list")).json()["results"]}
    assert "HIDDEN-1" not in skus and "MUG-RED" in skus
    assert (
        client.get(reverse("api:repricing-sku-detail", kwargs={"public_id": hidden.public_id})).status_code
        == 404
    )
    response = client.post(
        reverse("api:repricing-sku-assign-rule"),
        {"listings": [str(hidden.public_id)], "rule": None},
        format="json",
    )
    assert response.status_code == 400
    # Decisions of the ungranted account stay out of reach too.
    now = timezone.now()
    with tenant_context(catalog.tenant):
        hidden_decision = PriceDecision.objects.create(
            listing=hidden,
            trigger="manual",
            action="hold",
            reason="no_change",
            observed_at=now,
            decided_at=now,
        )
        shown_decision = PriceDecision.objects.create(
            listing=catalog.mug,
            trigger="manual",
            action="hold",
            reason="no_change",
            observed_at=now,
            decided_at=now,
        )
    listed = {r["public_id"] for r in client.get(reverse("api:repricing-decision-list")).json()["results"]}
    assert listed == {str(shown_decision.public_id)}
    detail = reverse("api:repricing-decision-detail", kwargs={"public_id": hidden_decision.public_id})
    assert client.get(detail).status_code == 404
    everyone = _api(catalog.tenant, Role.VIEWER)
    assert len(everyone.get(reverse("api:repricing-decision-list")).json()["results"]) == 2


# --- Decisions and submissions ------------------------------------------------------------------------


def test_decisions_list_detail_and_filters(catalog: Catalog) -> None:
    decisions = record_history(catalog, hours=3)
    client = _api(catalog.tenant, Role.VIEWER)
    url = reverse("api:repricing-decision-list")
    results = client.get(url).json()["results"]
    assert [r["public_id"] for r in results] == [str(d.public_id) for d in reversed(decisions)]
    newest = results[0]
    assert newest["action"] == "change" and newest["reason"] == "beat_buy_box"
    assert newest["reason_label"] == "Beat the Buy Box" and newest["new_price"] == "18.49"
    assert newest["sku"] == "MUG-RED" and newest["rule"] == str(catalog.beat.public_id)
    assert newest["submission_status"] == "queued" and newest["trigger"] == "schedule"
    detail = client.get(
        reverse("api:repricing-decision-detail", kwargs={"public_id": newest["public_id"]})
    ).json()
    assert [step["code"] for step in detail["trace"]][-1] == "price"
    assert any("beat by 0.01" in step["message"] for step in detail["trace"])
    assert detail["inputs"]["buy_box"] and detail["inputs"]["listing"]["min_price"] == "15.00"
    assert detail["rule_config"]["strategy"]["mode"] == "beat"
    (submission,) = detail["submissions"]
    assert submission["price"] == "18.49" and submission["status"] == "queued"
    page = client.get(url, {"page_size": 2}).json()
    rest = client.get(page["next"]).json()
    assert len(page["results"]) == 2 and len(rest["results"]) == 1 and rest["next"] is None
    mid = decisions[1].decided_at
    assert len(client.get(url, {"since": mid.isoformat()}).json()["results"]) == 2
    assert len(client.get(url, {"until": mid.isoformat()}).json()["results"]) == 1
    assert client.get(url, {"action": "hold"}).json()["results"] == []
    assert len(client.get(url, {"listing": str(catalog.mug.public_id)}).json()["results"]) == 3
    assert client.get(url, {"listing": str(catalog.pen.public_id)}).json()["results"] == []
    assert (
        len(
            client.get(url, {"sku": "mug", "reason": "beat_buy_box", "trigger": "schedule"}).json()["results"]
        )
        == 3
    )
    assert client.get(url, {"alert": "price_war"}).json()["results"] == []
    for bad in ({"action": "explode"}, {"since": "yesterday"}, {"colour": "red"}):
        assert client.get(url, bad).status_code == 400, bad
    other = make_catalog(make_tenant("Other"), label="-B")
    other_decision = record_history(other, hours=1)[0]
    assert client.get(url, {"listing": str(other.mug.public_id)}).status_code == 404
    response = client.get(
        reverse("api:repricing-decision-detail", kwargs={"public_id": other_decision.public_id})
    )
    assert response.status_code == 404 and _error(response)["code"] == "not_found"


def test_submissions_list(catalog: Catalog) -> None:
    record_history(catalog, hours=2)
    client = _api(catalog.tenant, Role.ANALYST)
    url = reverse("api:repricing-submission-list")
    rows = client.get(url).json()["results"]
    assert [r["price"] for r in rows] == ["18.99", "19.49"] and {r["sku"] for r in rows} == {"MUG-RED"}
    assert all(r["channel"] == "listings_patch" for r in rows)
    # The newer decision's price replaced the older one still waiting to be sent.
    assert [r["status"] for r in rows] == ["queued", "superseded"]
    assert len(client.get(url, {"status": "queued"}).json()["results"]) == 1
    assert client.get(url, {"status": "applied"}).json()["results"] == []
    assert client.get(url, {"listing": str(catalog.lamp.public_id)}).json()["results"] == []
    assert client.get(url, {"status": "lost"}).status_code == 400


def test_reprice_now(catalog: Catalog, django_capture_on_commit_callbacks: Any) -> None:
    client = _api(catalog.tenant, Role.OPERATOR)
    url = reverse("api:repricing-reprice-now")
    with django_capture_on_commit_callbacks(execute=True):  # the run's task is published, the answer kept
        response = client.post(
            url,
            {"listings": [str(catalog.mug.public_id), str(catalog.lamp.public_id)]},
            format="json",
            HTTP_IDEMPOTENCY_KEY="now-1",
        )
    assert response.status_code == 202
    body = response.json()
    assert body["kind"] == "repricing.reprice_now" and body["progress_total"] == 2
    replay = client.post(
        url,
        {"listings": [str(catalog.mug.public_id), str(catalog.lamp.public_id)]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="now-1",
    )
    assert replay.status_code == 202 and replay.json()["public_id"] == body["public_id"]
    assert replay["Idempotent-Replayed"] == "true"
    (message,) = [m for m in broker_messages() if m["headers"]["task"] == "repricing.reprice_now"]
    assert body["public_id"] in json.dumps(message)
    redis_client().delete("repricing")
    with tenant_context(catalog.tenant):
        assert JobRun.objects.filter(kind="repricing.reprice_now").count() == 1
    assert client.post(url, {"listings": []}, format="json").status_code == 400
    response = client.post(url, {"listings": ["00000000-0000-0000-0000-000000000000"]}, format="json")
    assert response.status_code == 400 and "listings" in _error(response)["fields"]
    assert (
        _api(catalog.tenant, Role.VIEWER)
        .post(url, {"listings": [str(catalog.mug.public_id)]}, format="json")
        .status_code
        == 403
    )


def test_every_repricing_endpoint_needs_credentials(catalog: Catalog) -> None:
    anonymous = APIClient()
    for name in (
        "api:repricing-settings",
        "api:repricing-rule-list",
        "api:repricing-sku-list",
        "api:repricing-decision-list",
    ):
        response = anonymous.get(reverse(name))
        assert response.status_code == 401 and _error(response)["code"] == "not_authenticated"


def test_decisions_of_a_quiet_company_are_an_empty_list() -> None:
    tenant = make_tenant("Quiet")
    client = _api(tenant)
    assert client.get(reverse("api:repricing-decision-list")).json() == {
        "next": None,
        "previous": None,
        "results": [],
    }
    assert client.get(reverse("api:repricing-settings")).json()["dry_run"] is True
    with tenant_context(tenant):
        assert not PriceDecision.objects.exists() and not RepricingSettings.objects.exists()


def test_decisions_from_before_now_filter_by_time(catalog: Catalog) -> None:
    start = timezone.now() - timedelta(days=10)
    record_history(catalog, hours=2, start=start)
    client = _api(catalog.tenant)
    url = reverse("api:repricing-decision-list")
    recent = client.get(url, {"since": (timezone.now() - timedelta(days=1)).isoformat()}).json()["results"]
    assert recent == []
    assert len(client.get(url).json()["results"]) == 2
