"""Reads for repricing: the company's switches, which rule applies to a SKU, SKU pricing settings."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from amazon.models import Listing
from repricing.models import (
    PriceDecision,
    PriceSubmission,
    RepricingRule,
    RepricingSettings,
    SkuPricing,
    TagRule,
)


def repricing_settings() -> RepricingSettings:
    """The company's settings; an unsaved default (dry run on, kill switch off) until first changed."""
    return RepricingSettings.objects.select_related("default_rule").first() or RepricingSettings(dry_run=True)


def rules() -> QuerySet[RepricingRule]:
    return RepricingRule.objects.all()


def tag_rules() -> QuerySet[TagRule]:
    return TagRule.objects.select_related("rule").order_by("priority", "tag", "id")


def sku_pricing_of(listings: Iterable[Listing]) -> dict[int, SkuPricing]:
    """Listing id -> its pricing settings (listings without any are absent)."""
    ids = [listing.pk for listing in listings]
    return {
        row.listing_id: row for row in SkuPricing.objects.filter(listing_id__in=ids).select_related("rule")
    }


class RuleResolver:
    """Which rule applies to a SKU: its own rule, else the first of its tags' rules (by priority),
    else the company default. Inactive rules are skipped at every level. Built once per batch."""

    def __init__(self, settings: RepricingSettings | None = None) -> None:
        settings = settings or repricing_settings()
        self.default = settings.default_rule if settings.default_rule_id else None
        self.by_tag: list[tuple[str, RepricingRule]] = [(row.tag, row.rule) for row in tag_rules()]

    def resolve(self, pricing: SkuPricing | None) -> tuple[RepricingRule | None, str]:
        """(rule, where it came from: "sku", "tag:<tag>", "default" or "none")."""
        if pricing is not None:
            if pricing.rule_id and pricing.rule is not None and pricing.rule.is_active:
                return pricing.rule, "sku"
            tags = set(pricing.tags)
            for tag, rule in self.by_tag:
                if tag in tags and rule.is_active:
                    return rule, f"tag:{tag}"
        if self.default is not None and self.default.is_active:
            return self.default, "default"
        return None, "none"


def decisions() -> QuerySet[PriceDecision]:
    return PriceDecision.objects.select_related("listing")


def decisions_of_listing(listing: Listing) -> QuerySet[PriceDecision]:
    return PriceDecision.objects.filter(listing=listing)


def submissions() -> QuerySet[PriceSubmission]:
    return PriceSubmission.objects.select_related("listing", "decision")
