"""Repricing configuration services: permissions, validation before any write, audit, rule resolution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.roles import Role
from amazon.tests.data_factories import make_listing
from amazon.tests.factories import make_connection
from repricing.models import RepricingRule, RepricingSettings, SkuPricing
from repricing.selectors import RuleResolver, repricing_settings
from repricing.services import (
    RepricingError,
    company_settings_update,
    kill_switch_set,
    rule_assign_to_listings,
    rule_create,
    rule_delete,
    rule_update,
    sku_pricing_update,
    tag_rule_set,
)
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

BEAT = {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}}
MATCH = {"strategy": {"kind": "lowest", "mode": "match"}}


@pytest.fixture
def world() -> Any:
    tenant = make_tenant()
    owner = make_member(tenant)
    connection = make_connection(tenant)
    listings = [make_listing(connection) for _ in range(3)]
    with tenant_context(tenant):
        yield tenant, owner, listings


def test_a_new_company_starts_in_dry_run_with_the_kill_switch_off(world: Any) -> None:
    settings = repricing_settings()
    assert settings.dry_run is True
    assert settings.kill_switch is False
    assert settings.pk is None  # nothing written by a read


def test_kill_switch_on_and_off_is_audited_with_its_reason(world: Any) -> None:
    _, owner, _ = world
    kill_switch_set(on=True, reason="Supplier price error", actor=owner, actor_role=Role.OWNER)
    settings = repricing_settings()
    assert settings.kill_switch and settings.kill_switch_reason == "Supplier price error"
    assert settings.kill_switch_changed_at is not None
    kill_switch_set(on=False, actor=owner, actor_role=Role.OPERATOR)
    assert repricing_settings().kill_switch is False
    actions = list(
        AuditEvent.objects.filter(action__startswith="repricing.kill").values_list("action", flat=True)
    )
    assert sorted(actions) == ["repricing.kill_switch_off", "repricing.kill_switch_on"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_read_only_roles_cannot_change_repricing(world: Any, role: str) -> None:
    _, owner, listings = world
    with pytest.raises(RepricingError) as refused:
        kill_switch_set(on=True, actor=owner, actor_role=role)
    assert refused.value.status == 403
    with pytest.raises(RepricingError):
        rule_create(name="x", config=BEAT, actor=owner, actor_role=role)
    with pytest.raises(RepricingError):
        sku_pricing_update(listing=listings[0], values={"min_price": "1"}, actor=owner, actor_role=role)
    assert not RepricingSettings.objects.exists()
    assert not RepricingRule.objects.exists()
    assert not SkuPricing.objects.exists()


def test_rule_config_is_validated_and_stored_in_canonical_form(world: Any) -> None:
    _, owner, _ = world
    rule = rule_create(name=" Beat by a cent ", config=BEAT, actor=owner, actor_role=Role.OWNER)
    assert rule.name == "Beat by a cent"
    assert rule.config["strategy"]["amount"] == "0.01"
    assert "guards" in rule.config  # canonical: every section present
    with pytest.raises(RepricingError) as bad:
        rule_create(name="bad", config={"strategy": {"kind": "cheapest"}}, actor=owner, actor_role=Role.OWNER)
    assert bad.value.code == "invalid_rule" and "strategy.kind" in bad.value.message
    with pytest.raises(RepricingError) as dup:
        rule_create(name="Beat by a cent", config=MATCH, actor=owner, actor_role=Role.OWNER)
    assert dup.value.code == "duplicate"
    with pytest.raises(RepricingError):
        rule_create(name="list", config=[1, 2], actor=owner, actor_role=Role.OWNER)
    assert RepricingRule.objects.count() == 1


def test_changing_a_rules_configuration_bumps_its_version_only_when_it_changes(world: Any) -> None:
    _, owner, _ = world
    rule = rule_create(name="r", config=BEAT, actor=owner, actor_role=Role.OWNER)
    rule = rule_update(rule=rule, config=BEAT, actor=owner, actor_role=Role.OWNER)
    assert rule.version == 1
    rule = rule_update(rule=rule, config=MATCH, actor=owner, actor_role=Role.OWNER)
    assert rule.version == 2
    rule = rule_update(rule=rule, name="renamed", actor=owner, actor_role=Role.OWNER)
    assert rule.version == 2 and rule.name == "renamed"


def test_the_default_rule_cannot_be_deactivated_or_deleted(world: Any) -> None:
    _, owner, _ = world
    rule = rule_create(name="r", config=BEAT, actor=owner, actor_role=Role.OWNER)
    company_settings_update(default_rule=rule, actor=owner, actor_role=Role.OWNER)
    with pytest.raises(RepricingError):
        rule_update(rule=rule, is_active=False, actor=owner, actor_role=Role.OWNER)
    with pytest.raises(RepricingError):
        rule_delete(rule=rule, actor=owner, actor_role=Role.OWNER)
    company_settings_update(clear_default_rule=True, actor=owner, actor_role=Role.OWNER)
    rule_delete(rule=rule, actor=owner, actor_role=Role.OWNER)
    assert not RepricingRule.objects.exists()


def test_settings_refuse_an_unknown_timezone(world: Any) -> None:
    _, owner, _ = world
    with pytest.raises(RepricingError) as bad:
        company_settings_update(timezone_name="Mars/Olympus", actor=owner, actor_role=Role.OWNER)
    assert bad.value.field == "timezone"
    settings = company_settings_update(
        timezone_name="Europe/Berlin", dry_run=False, actor=owner, actor_role=Role.OWNER
    )
    assert settings.timezone == "Europe/Berlin" and settings.dry_run is False


def test_rule_resolution_prefers_the_sku_then_tags_by_priority_then_the_default(world: Any) -> None:
    _, owner, (first, second, third) = world
    own, tag_a, tag_b, default = (
        rule_create(name=name, config=BEAT, actor=owner, actor_role=Role.OWNER)
        for name in ("own", "tag a", "tag b", "default")
    )
    company_settings_update(default_rule=default, actor=owner, actor_role=Role.OWNER)
    tag_rule_set(tag="clearance", rule=tag_a, priority=20, actor=owner, actor_role=Role.OWNER)
    tag_rule_set(tag="summer", rule=tag_b, priority=10, actor=owner, actor_role=Role.OWNER)
    a = sku_pricing_update(
        listing=first, values={"tags": ["clearance", "summer"]}, actor=owner, actor_role=Role.OWNER
    )
    rule_assign_to_listings(rule=own, listings=[second], actor=owner, actor_role=Role.OWNER)
    resolver = RuleResolver()
    assert resolver.resolve(a) == (tag_b, "tag:summer")  # lower priority number wins
    assert resolver.resolve(SkuPricing.objects.get(listing=second)) == (own, "sku")
    assert resolver.resolve(None) == (default, "default")
    rule_update(rule=tag_b, is_active=False, actor=owner, actor_role=Role.OWNER)
    assert RuleResolver().resolve(SkuPricing.objects.get(listing=first))[0] == tag_a
    assert third  # a SKU with no pricing settings at all takes the default (resolve(None) above)


def test_sku_bounds_are_validated_before_anything_is_written(world: Any) -> None:
    _, owner, (listing, *_) = world
    with pytest.raises(RepricingError) as bad:
        sku_pricing_update(
            listing=listing, values={"min_price": "20", "max_price": "10"}, actor=owner, actor_role=Role.OWNER
        )
    assert bad.value.field == "min_price"
    for values, field in (
        ({"min_price": "abc"}, "min_price"),
        ({"cost": "-1"}, "cost"),
        ({"referral_fee_percent": "100"}, "referral_fee_percent"),
        ({"bounds_source": "magic"}, "bounds_source"),
        ({"bounds_source": "margin", "cost": "5"}, "referral_fee_percent"),
        ({"tags": "not-a-list"}, "tags"),
        ({"enabled": "yes"}, "enabled"),
        ({"surprise": 1}, "surprise"),
    ):
        with pytest.raises(RepricingError) as refused:
            sku_pricing_update(listing=listing, values=values, actor=owner, actor_role=Role.OWNER)
        assert refused.value.field == field, values
    assert not SkuPricing.objects.exists()


def test_a_computed_minimum_covers_cost_fees_and_the_target_margin(world: Any) -> None:
    _, owner, (listing, *_) = world
    row = sku_pricing_update(
        listing=listing,
        values={
            "cost": "6.00",
            "referral_fee_percent": "15",
            "fba_fee": "3.00",
            "bounds_source": "margin",
            "target_percent": "10",
            "max_price": "30",
        },
        actor=owner,
        actor_role=Role.OWNER,
    )
    # profit = p - 0.15 p - 3 - 6 >= 0.10 p  =>  p >= 9 / 0.75 = 12.00
    assert row.min_price == Decimal("12.00")
    profit = row.min_price * (1 - Decimal("0.15")) - Decimal("9")
    assert profit >= Decimal("0.10") * row.min_price
    # Changing only the cost recomputes the minimum from the stored fees and target.
    row = sku_pricing_update(listing=listing, values={"cost": "7.50"}, actor=owner, actor_role=Role.OWNER)
    assert row.min_price == Decimal("14.00")  # 10.50 / 0.75
    assert AuditEvent.objects.filter(action="repricing.sku_pricing_update").count() == 2


def test_a_rule_assigned_to_many_skus_at_once(world: Any) -> None:
    _, owner, listings = world
    rule = rule_create(name="bulk", config=BEAT, actor=owner, actor_role=Role.OWNER)
    assert rule_assign_to_listings(rule=rule, listings=listings, actor=owner, actor_role=Role.OWNER) == 3
    assert set(SkuPricing.objects.values_list("rule__name", flat=True)) == {"bulk"}
    rule_assign_to_listings(rule=None, listings=listings[:1], actor=owner, actor_role=Role.OWNER)
    assert SkuPricing.objects.filter(rule__isnull=True).count() == 1


def test_the_kill_switch_cancels_every_queued_price_at_once(world: Any) -> None:
    from django.utils import timezone

    from repricing.models import PriceDecision, PriceSubmission

    _, owner, listings = world
    now = timezone.now()
    for listing in listings:
        decision = PriceDecision.objects.create(
            listing=listing,
            trigger=PriceDecision.Trigger.MANUAL,
            action=PriceDecision.Action.CHANGE,
            reason="beat_buy_box",
            new_price=Decimal("9.99"),
            submit=True,
            observed_at=now,
            decided_at=now,
        )
        PriceSubmission.objects.create(
            decision=decision,
            listing=listing,
            channel=PriceSubmission.Channel.LISTINGS_PATCH,
            price=Decimal("9.99"),
            currency="USD",
            queued_at=now,
            status=PriceSubmission.Status.QUEUED,
        )
    PriceSubmission.objects.filter(listing=listings[0]).update(status=PriceSubmission.Status.APPLIED)
    kill_switch_set(on=True, reason="Supplier error", actor=owner, actor_role=Role.OWNER)
    statuses = dict(PriceSubmission.objects.values_list("listing_id", "status"))
    assert statuses == {
        listings[0].pk: PriceSubmission.Status.APPLIED,
        listings[1].pk: PriceSubmission.Status.CANCELLED,
        listings[2].pk: PriceSubmission.Status.CANCELLED,
    }
    assert PriceSubmission.objects.filter(error__contains="Supplier error").count() == 2
    event = AuditEvent.objects.get(action="repricing.kill_switch_on")
    assert event.changes["cancelled"] == 2
