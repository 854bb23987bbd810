"""Writes for repricing configuration: the company's switches (kill switch, dry run, default rule),
rules, rule assignment by SKU and tag, and each SKU's cost and bounds.

Every function checks the actor's role, validates fully before writing (nothing is half-written),
records an audit event in the same transaction and raises `RepricingError` for a refusal the user
caused. The repricing run itself (decisions, submissions) lives in `repricing/pipeline.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Permission, role_allows
from amazon.models import Listing
from repricing.engine import Rule, RuleError
from repricing.engine.bounds import computed_min_price
from repricing.models import RepricingRule, RepricingSettings, SkuPricing, TagRule
from tenants.audit import audit_record


class RepricingError(Exception):
    """A refusal the user caused; `code` is stable for the API, the message is for people."""

    def __init__(
        self, message: str, *, code: str = "invalid_request", status: int = 400, field: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field


def _require(actor_role: str) -> None:
    if not role_allows(actor_role, Permission.CHANGE_AUTOMATION):
        raise RepricingError(
            "Your role does not allow changing repricing.", code="permission_denied", status=403
        )


def _settings_for_update() -> RepricingSettings:
    """The company's settings row, created on first use and locked for this transaction."""
    settings, _ = RepricingSettings.objects.get_or_create()
    return RepricingSettings.objects.select_for_update().get(pk=settings.pk)


# --- company switches ------------------------------------------------------------------------------


@transaction.atomic
def kill_switch_set(*, on: bool, reason: str = "", actor: User | None, actor_role: str) -> RepricingSettings:
    """Stop (or allow again) every price submission of the company, at once: queued submissions are
    cancelled here, and sending checks the switch again before each claim."""
    _require(actor_role)
    settings = _settings_for_update()
    if settings.kill_switch == on:
        return settings
    settings.kill_switch = on
    settings.kill_switch_reason = reason.strip()[:500] if on else ""
    settings.kill_switch_changed_at = timezone.now()
    settings.save(update_fields=["kill_switch", "kill_switch_reason", "kill_switch_changed_at", "updated_at"])
    cancelled = 0
    if on:
        from repricing.submission import submissions_cancel_queued

        # In this transaction: the switch and the cancellation are seen together or not at all.
        cancelled = submissions_cancel_queued(f"Kill switch on: {settings.kill_switch_reason}".rstrip(": "))
    audit_record(
        actor=actor,
        action="repricing.kill_switch_on" if on else "repricing.kill_switch_off",
        target=settings,
        target_label="Repricing kill switch",
        changes={"kill_switch": [not on, on], "reason": settings.kill_switch_reason, "cancelled": cancelled},
    )
    return settings


@transaction.atomic
def company_settings_update(
    *,
    actor: User | None,
    actor_role: str,
    dry_run: bool | None = None,
    default_rule: RepricingRule | None = None,
    clear_default_rule: bool = False,
    timezone_name: str | None = None,
) -> RepricingSettings:
    """Change the company's dry-run flag, default rule (or clear it) or timezone; None leaves a value."""
    _require(actor_role)
    if timezone_name is not None and timezone_name not in available_timezones():
        raise RepricingError(f"Unknown timezone {timezone_name!r}.", field="timezone")
    if default_rule is not None and not default_rule.is_active:
        raise RepricingError("The default rule must be active.", field="default_rule")
    settings = _settings_for_update()
    changes: dict[str, Any] = {}
    if dry_run is not None and dry_run != settings.dry_run:
        changes["dry_run"] = [settings.dry_run, dry_run]
        settings.dry_run = dry_run
    new_default = None if clear_default_rule else (default_rule or settings.default_rule)
    if new_default != settings.default_rule:
        old = settings.default_rule.name if settings.default_rule else None
        changes["default_rule"] = [old, new_default.name if new_default else None]
        settings.default_rule = new_default
    if timezone_name is not None and timezone_name != settings.timezone:
        ZoneInfo(timezone_name)
        changes["timezone"] = [settings.timezone, timezone_name]
        settings.timezone = timezone_name
    if changes:
        settings.save()
        audit_record(
            actor=actor,
            action="repricing.settings_update",
            target=settings,
            target_label="Repricing settings",
            changes=changes,
        )
    return settings


# --- rules -----------------------------------------------------------------------------------------


def rule_config_validate(config: Any) -> dict[str, Any]:
    """The engine's canonical form of a rule configuration, or `RepricingError` naming the field."""
    if not isinstance(config, Mapping):
        raise RepricingError("The rule configuration must be a JSON object.", field="config")
    try:
        return Rule.from_dict(config).to_dict()
    except RuleError as error:
        raise RepricingError(f"Invalid rule: {error}", code="invalid_rule", field="config") from error


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise RepricingError("A rule needs a name of 1 to 200 characters.", field="name")
    return name


@transaction.atomic
def rule_create(
    *, name: str, config: Any, description: str = "", actor: User | None, actor_role: str
) -> RepricingRule:
    _require(actor_role)
    canonical = rule_config_validate(config)
    try:
        with transaction.atomic():
            rule = RepricingRule.objects.create(
                name=_name(name), description=description.strip(), config=canonical
            )
    except IntegrityError as error:
        raise RepricingError(
            "A rule with this name already exists.", code="duplicate", field="name"
        ) from error
    audit_record(actor=actor, action="repricing.rule_create", target=rule, changes={"config": canonical})
    return rule


@transaction.atomic
def rule_update(
    *,
    rule: RepricingRule,
    actor: User | None,
    actor_role: str,
    name: str | None = None,
    description: str | None = None,
    config: Any = None,
    is_active: bool | None = None,
) -> RepricingRule:
    """Change a rule; a changed configuration bumps `version`, so decisions name the version they used."""
    _require(actor_role)
    locked = RepricingRule.objects.select_for_update().get(pk=rule.pk)
    changes: dict[str, Any] = {}
    if name is not None and _name(name) != locked.name:
        changes["name"] = [locked.name, _name(name)]
        locked.name = _name(name)
    if description is not None and description.strip() != locked.description:
        changes["description"] = "(changed)"
        locked.description = description.strip()
    if config is not None:
        canonical = rule_config_validate(config)
        if canonical != locked.config:
            changes["config"] = [locked.config, canonical]
            locked.config = canonical
            locked.version += 1
    if is_active is not None and is_active != locked.is_active:
        if not is_active and RepricingSettings.objects.filter(default_rule=locked).exists():
            raise RepricingError(
                "This rule is the company default; choose another default first.", field="is_active"
            )
        changes["is_active"] = [locked.is_active, is_active]
        locked.is_active = is_active
    if changes:
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as error:
            raise RepricingError(
                "A rule with this name already exists.", code="duplicate", field="name"
            ) from error
        audit_record(actor=actor, action="repricing.rule_update", target=locked, changes=changes)
    return locked


@transaction.atomic
def rule_delete(*, rule: RepricingRule, actor: User | None, actor_role: str) -> None:
    """Delete a rule. SKUs and tags assigned to it fall back to the next level (tag, then default);
    past decisions keep its name, version and configuration."""
    _require(actor_role)
    if RepricingSettings.objects.filter(default_rule=rule).exists():
        raise RepricingError("This rule is the company default; choose another default first.", code="in_use")
    audit_record(actor=actor, action="repricing.rule_delete", target=rule, changes={"config": rule.config})
    rule.delete()


@transaction.atomic
def tag_rule_set(
    *, tag: str, rule: RepricingRule, priority: int = 100, actor: User | None, actor_role: str
) -> TagRule:
    """Every SKU with `tag` uses `rule` (unless the SKU has its own); lower priority wins among tags."""
    _require(actor_role)
    tag = (tag or "").strip()
    if not tag or len(tag) > 100:
        raise RepricingError("A tag has 1 to 100 characters.", field="tag")
    if priority < 0:
        raise RepricingError("Priority cannot be negative.", field="priority")
    row, created = TagRule.objects.update_or_create(tag=tag, defaults={"rule": rule, "priority": priority})
    audit_record(
        actor=actor,
        action="repricing.tag_rule_set",
        target=row,
        target_label=f"tag {tag}",
        changes={"rule": rule.name, "priority": priority, "created": created},
    )
    return row


@transaction.atomic
def tag_rule_remove(*, tag_rule: TagRule, actor: User | None, actor_role: str) -> None:
    _require(actor_role)
    audit_record(
        actor=actor, action="repricing.tag_rule_remove", target=tag_rule, target_label=f"tag {tag_rule.tag}"
    )
    tag_rule.delete()


# --- SKU pricing -----------------------------------------------------------------------------------

#: SKU pricing fields a seller sets (the rest is the pipeline's guard state).
SKU_FIELDS = (
    "enabled",
    "rule",
    "tags",
    "cost",
    "referral_fee_percent",
    "fba_fee",
    "bounds_source",
    "target_percent",
    "min_price",
    "max_price",
)


def _money(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError as error:
        raise RepricingError(f"{field} must be a number.", field=field) from error
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
        raise RepricingError(f"{field} must be a positive amount below 10,000,000,000.", field=field)
    return amount.quantize(Decimal("0.01"))


def sku_pricing_values_clean(
    values: Mapping[str, Any], current: SkuPricing | None = None, *, currency: str = "USD"
) -> dict[str, Any]:
    """Validate and complete a SKU's pricing settings (merged over `current`): amounts are positive,
    min ≤ max, and bounds from cost + fees + a target margin/ROI are computed here. Pure apart from
    the rule lookup the caller already did (`rule` is a RepricingRule or None)."""
    unknown = set(values) - set(SKU_FIELDS)
    if unknown:
        raise RepricingError(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    merged: dict[str, Any] = (
        {name: getattr(current, name) for name in SKU_FIELDS}
        if current
        else {
            "enabled": True,
            "rule": None,
            "tags": [],
            "cost": None,
            "referral_fee_percent": None,
            "fba_fee": None,
            "bounds_source": SkuPricing.BoundsSource.ENTERED,
            "target_percent": None,
            "min_price": None,
            "max_price": None,
        }
    )
    merged.update(values)
    for field in ("cost", "fba_fee", "min_price", "max_price"):
        merged[field] = _money(merged[field], field)
    for field in ("referral_fee_percent", "target_percent"):
        value = _money(merged[field], field)
        if value is not None and field == "referral_fee_percent" and value >= 100:
            raise RepricingError("The referral fee must be below 100%.", field=field)
        merged[field] = value
    tags = merged["tags"] or []
    if not isinstance(tags, list | tuple) or not all(
        isinstance(t, str) and 0 < len(t.strip()) <= 100 for t in tags
    ):
        raise RepricingError("Tags are a list of 1 to 100 character names.", field="tags")
    merged["tags"] = sorted({t.strip() for t in tags})
    if merged["bounds_source"] not in SkuPricing.BoundsSource.values:
        raise RepricingError("bounds_source is one of entered, margin, roi.", field="bounds_source")
    if merged["bounds_source"] != SkuPricing.BoundsSource.ENTERED:
        missing = [f for f in ("cost", "referral_fee_percent", "target_percent") if merged[f] is None]
        if missing:
            raise RepricingError(f"Computing the minimum price needs {', '.join(missing)}.", field=missing[0])
        try:
            merged["min_price"] = computed_min_price(
                merged["cost"],
                merged["referral_fee_percent"],
                merged["fba_fee"] or Decimal(0),
                target_margin_percent=merged["target_percent"]
                if merged["bounds_source"] == "margin"
                else None,
                target_roi_percent=merged["target_percent"] if merged["bounds_source"] == "roi" else None,
                currency=currency,
            )
        except (ValueError, ArithmeticError) as error:
            raise RepricingError(
                f"Cannot compute the minimum price: {error}", field="target_percent"
            ) from error
    if (
        merged["min_price"] is not None
        and merged["max_price"] is not None
        and merged["min_price"] > merged["max_price"]
    ):
        raise RepricingError(
            f"The minimum price {merged['min_price']} is above the maximum {merged['max_price']}.",
            field="min_price",
        )
    if not isinstance(merged["enabled"], bool):
        raise RepricingError("enabled is true or false.", field="enabled")
    return merged


@transaction.atomic
def sku_pricing_update(
    *, listing: Listing, values: Mapping[str, Any], actor: User | None, actor_role: str
) -> SkuPricing:
    """Set a SKU's rule, tags, cost, fees and bounds (only the given fields change)."""
    _require(actor_role)
    current = SkuPricing.objects.select_for_update().filter(listing=listing).first()
    clean = sku_pricing_values_clean(values, current, currency=listing.currency or "USD")
    row = current or SkuPricing(listing=listing)
    changes: dict[str, Any] = {}
    for name, value in clean.items():
        old = getattr(row, name) if current else None
        if old != value:
            changes[name] = [_plain(old), _plain(value)]
            setattr(row, name, value)
    if changes or current is None:
        row.save()
        audit_record(
            actor=actor,
            action="repricing.sku_pricing_update",
            target=row,
            target_label=listing.sku,
            changes=changes,
        )
    return row


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, RepricingRule):
        return value.name
    return value


@transaction.atomic
def rule_assign_to_listings(
    *, rule: RepricingRule | None, listings: Iterable[Listing], actor: User | None, actor_role: str
) -> int:
    """Give (or with None, take away) a rule of their own to many SKUs at once; returns how many."""
    _require(actor_role)
    listings = list(listings)
    # Set-based, so "all matching SKUs" of a large catalogue is two statements, not one per SKU.
    existing = set(
        SkuPricing.objects.select_for_update()
        .filter(listing__in=listings)
        .values_list("listing_id", flat=True)
    )
    SkuPricing.objects.filter(listing_id__in=existing).update(rule=rule, updated_at=timezone.now())
    SkuPricing.objects.bulk_create(
        [
            SkuPricing(tenant_id=listing.tenant_id, listing=listing, rule=rule)
            for listing in listings
            if listing.pk not in existing
        ]
    )
    audit_record(
        actor=actor,
        action="repricing.rule_assign",
        target=rule,
        target_label=rule.name if rule else "no own rule",
        changes={"skus": [listing.sku for listing in listings[:50]], "count": len(listings)},
    )
    return len(listings)
