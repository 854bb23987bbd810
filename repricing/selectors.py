"""Reads for repricing: the company's switches, which rule applies to a SKU, SKU pricing settings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from amazon import seller_data
from amazon.models import Listing, OfferSnapshot, SellerConnection
from amazon.selectors import seller_connection_list
from repricing.models import (
    PriceDecision,
    PriceSubmission,
    RepricingRule,
    RepricingSettings,
    SkuPricing,
    TagRule,
)
from tenants.models import AuditEvent, Tenant


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


# --- Dashboard and API reads: the catalogue with its repricing settings, decisions, submissions -----------
#
# Every list starts from the listings the member may see (`amazon.seller_data`: the tenant, and the
# connections a django-guardian grant restricts them to), so a member limited to one Amazon account sees
# only its SKUs, decisions and submissions; look-ups by public_id outside that set raise DoesNotExist.


def _visible_connections(tenant: Tenant, user: User | None) -> QuerySet[Any]:
    """The connections whose data the member may see (as `seller_data` scopes listings), as a subquery."""
    return seller_connection_list(tenant=tenant, user=user, include_disconnected=True).values("pk")


def _restricted_to(tenant: Tenant, user: User | None) -> list[int] | None:
    """The connection ids a member is restricted to by grants, or None when they see every connection
    (then the tenant alone scopes the rows, which keeps the newest-first index usable on big tables)."""
    visible = set(_visible_connections(tenant, user).values_list("pk", flat=True))
    every = set(SellerConnection.objects.filter(tenant=tenant).values_list("pk", flat=True))
    return None if visible == every else sorted(visible)


def visible_listings(*, tenant: Tenant, user: User | None) -> QuerySet[Listing]:
    """The member's listings, ordered by SKU, with the latest Buy Box annotated (`seller_data`)."""
    return seller_data.listing_list(tenant=tenant, user=user)


def _default_rule_id(settings: RepricingSettings) -> int | None:
    default = settings.default_rule
    return default.pk if default is not None and default.is_active else None


def pricing_with_effective_rule(settings: RepricingSettings) -> QuerySet[SkuPricing]:
    """SKU pricing rows with `effective_rule_id`: the rule `RuleResolver` picks (own active rule, else
    the first active tag rule by priority, else the active default), in SQL. A listing without a row
    gets the default; the catalogue reads below account for those with a NOT EXISTS."""
    whens = [When(rule__is_active=True, then=F("rule_id"))]
    whens += [
        When(tags__contains=[row.tag], then=Value(row.rule_id)) for row in tag_rules() if row.rule.is_active
    ]
    return SkuPricing.objects.annotate(
        effective_rule_id=Case(
            *whens, default=Value(_default_rule_id(settings)), output_field=BigIntegerField()
        )
    )


def _has_pricing(**conditions: Any) -> Q:
    """Listings whose pricing row matches (a semi-join: one pass over the pricing table, not one per SKU)."""
    return Q(pk__in=SkuPricing.objects.filter(**conditions).values("listing_id"))


def _no_pricing() -> Q:
    return ~Q(pk__in=SkuPricing.objects.values("listing_id"))


def sku_catalog(
    *,
    tenant: Tenant,
    user: User | None,
    q: str = "",
    rule: RepricingRule | str | None = None,
    tag: str = "",
    has_bounds: bool | None = None,
    paused: bool | None = None,
    enabled: bool | None = None,
    settings: RepricingSettings | None = None,
) -> QuerySet[Listing]:
    """The visible listings (`seller_data.listing_list`, by SKU), filtered: `rule` a rule (the SKUs it
    applies to, from any level) or "none" (no rule applies); `tag` carried by the SKU; `has_bounds` both
    min and max set (the engine never reprices without); `paused` paused until a future time; `enabled`
    repricing switched on for the SKU (a SKU without settings is on, without bounds, not paused)."""
    settings = settings or repricing_settings()
    listings = seller_data.listing_list(tenant=tenant, user=user, q=q)
    if rule is not None:
        wanted = None if rule == "none" else getattr(rule, "pk", None)
        pricing = pricing_with_effective_rule(settings)
        by_rule = (
            pricing.filter(Q(effective_rule_id__isnull=True))
            if wanted is None
            else pricing.filter(Q(effective_rule_id=wanted))
        )
        condition = Q(pk__in=by_rule.values("listing_id"))
        if _default_rule_id(settings) == wanted:  # SKUs without settings get the default (or none)
            condition |= _no_pricing()
        listings = listings.filter(condition)
    if tag:
        listings = listings.filter(_has_pricing(tags__contains=[tag]))
    if has_bounds is not None:
        bounded = _has_pricing(min_price__isnull=False, max_price__isnull=False)
        listings = listings.filter(bounded if has_bounds else ~bounded)
    if paused is not None:
        paused_now = _has_pricing(paused_until__gt=timezone.now())
        listings = listings.filter(paused_now if paused else ~paused_now)
    if enabled is not None:
        disabled = _has_pricing(enabled=False)
        listings = listings.filter(~disabled if enabled else disabled)
    return listings


def _visible_pricing(tenant: Tenant, user: User | None, settings: RepricingSettings) -> QuerySet[SkuPricing]:
    rows = pricing_with_effective_rule(settings).filter(tenant=tenant)
    restricted = _restricted_to(tenant, user)
    if restricted is not None:
        rows = rows.filter(listing__connection_id__in=restricted)
    return rows


def _visible_listing_count(tenant: Tenant, user: User | None) -> int:
    listings = Listing.objects.filter(tenant=tenant)
    restricted = _restricted_to(tenant, user)
    if restricted is not None:
        listings = listings.filter(connection_id__in=restricted)
    return listings.count()


def sku_counts(
    *, tenant: Tenant, user: User | None, settings: RepricingSettings | None = None
) -> dict[str, int]:
    """How many visible SKUs have a rule, bounds, are paused or switched off (for the overview). Counted
    over the pricing rows in one pass; listings without a row add to the total (and to "with rule" when
    there is an active default)."""
    settings = settings or repricing_settings()
    bounded = Q(min_price__isnull=False, max_price__isnull=False)
    counts = _visible_pricing(tenant, user, settings).aggregate(
        rows=Count("pk"),
        with_rule=Count("pk", filter=Q(effective_rule_id__isnull=False)),
        with_bounds=Count("pk", filter=bounded),
        ready=Count("pk", filter=bounded & Q(effective_rule_id__isnull=False, enabled=True)),
        paused=Count("pk", filter=Q(paused_until__gt=timezone.now())),
        disabled=Count("pk", filter=Q(enabled=False)),
    )
    total = _visible_listing_count(tenant, user)
    bare = max(total - counts.pop("rows"), 0)
    if _default_rule_id(settings) is not None:
        counts["with_rule"] += bare
    counts["total"] = total
    counts["without_rule"] = total - counts["with_rule"]
    counts["without_bounds"] = total - counts["with_bounds"]
    return counts


def sku_counts_by_rule(
    *, tenant: Tenant, user: User | None, settings: RepricingSettings | None = None
) -> dict[int, int]:
    """Rule id -> how many visible SKUs it applies to (from any level)."""
    settings = settings or repricing_settings()
    rows = _visible_pricing(tenant, user, settings).order_by().values("effective_rule_id")  # type: ignore[misc]
    counts = {
        row["effective_rule_id"]: row["n"]
        for row in rows.annotate(n=Count("pk"))
        if row["effective_rule_id"] is not None
    }
    default_id = _default_rule_id(settings)
    if default_id is not None:
        bare = _visible_listing_count(tenant, user) - _visible_pricing(tenant, user, settings).count()
        counts[default_id] = counts.get(default_id, 0) + max(bare, 0)
    return counts


def sku_get(*, tenant: Tenant, user: User | None, public_id: UUID | str) -> Listing:
    """One visible listing by its public_id, or Listing.DoesNotExist."""
    return seller_data.listing_list(tenant=tenant, user=user).get(public_id=public_id)


def known_tags() -> list[str]:
    """Every tag in use (on SKUs or in tag rules), sorted."""
    on_skus = SkuPricing.objects.annotate(tag=Func(F("tags"), function="unnest")).values_list(
        "tag", flat=True
    )
    return sorted(set(on_skus) | set(TagRule.objects.values_list("tag", flat=True)))


def decision_list(
    *,
    tenant: Tenant,
    user: User | None,
    listing: Listing | None = None,
    sku: str = "",
    action: str = "",
    reason: str = "",
    alert: str = "",
    trigger: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[PriceDecision]:
    """Decisions on the member's listings, newest first, each with `submission_status` (None when
    nothing was to be sent). `sku` matches SKU or ASIN (contains, any case)."""
    rows = PriceDecision.objects.filter(tenant=tenant)
    restricted = _restricted_to(tenant, user)
    if restricted is not None:
        rows = rows.filter(listing__connection_id__in=restricted)
    if listing is not None:
        rows = rows.filter(listing=listing)
    if sku.strip():
        rows = rows.filter(Q(listing__sku__icontains=sku.strip()) | Q(listing__asin__icontains=sku.strip()))
    if action:
        rows = rows.filter(action=action)
    if reason:
        rows = rows.filter(reason=reason)
    if alert:
        rows = rows.filter(alerts__contains=[alert])
    if trigger:
        rows = rows.filter(trigger=trigger)
    if since is not None:
        rows = rows.filter(decided_at__gte=since)
    if until is not None:
        rows = rows.filter(decided_at__lt=until)
    status = PriceSubmission.objects.filter(decision=OuterRef("pk")).values("status")[:1]
    return (
        rows.select_related("listing", "listing__connection")
        .annotate(submission_status=Subquery(status))
        .order_by("-decided_at", "-id")
    )


def decision_get(*, tenant: Tenant, user: User | None, public_id: UUID | str) -> PriceDecision:
    """One visible decision with its submissions prefetched, or PriceDecision.DoesNotExist."""
    return (
        decision_list(tenant=tenant, user=user)
        .prefetch_related(
            Prefetch("submissions", queryset=PriceSubmission.objects.order_by("queued_at", "id"))
        )
        .get(public_id=public_id)
    )


def decision_reasons() -> list[str]:
    """The reason codes that occur in the company's decisions (for filter choices)."""
    return sorted(PriceDecision.objects.order_by().values_list("reason", flat=True).distinct())


def decision_alerts() -> list[str]:
    rows = PriceDecision.objects.annotate(alert=Func(F("alerts"), function="unnest")).values_list(
        "alert", flat=True
    )
    return sorted(set(rows))


def submission_list(
    *, tenant: Tenant, user: User | None, status: str = "", listing: Listing | None = None
) -> QuerySet[PriceSubmission]:
    """Submissions for the member's listings, newest first."""
    rows = PriceSubmission.objects.filter(tenant=tenant)
    restricted = _restricted_to(tenant, user)
    if restricted is not None:
        rows = rows.filter(listing__connection_id__in=restricted)
    if status:
        rows = rows.filter(status=status)
    if listing is not None:
        rows = rows.filter(listing=listing)
    return rows.select_related("listing", "decision").order_by("-queued_at", "-id")


def decisions_per_day(
    *, tenant: Tenant, user: User | None, since: datetime, tzinfo: tzinfo | None = None
) -> list[dict[str, Any]]:
    """[{"day": date, "action": ..., "count": n}] for decisions since `since`, days in `tzinfo`."""
    rows = decision_list(tenant=tenant, user=user, since=since)
    return list(
        rows.annotate(day=TruncDate("decided_at", tzinfo=tzinfo))
        .values("day", "action")
        .annotate(count=Count("pk"))
        .order_by("day", "action")
    )


def offer_history(*, listing: Listing, since: datetime) -> QuerySet[OfferSnapshot]:
    """The listing's offers snapshots since `since`, oldest first (Buy Box, lowest price, our offer)."""
    return (
        OfferSnapshot.objects.filter(listing=listing, observed_at__gte=since)
        .only("observed_at", "buy_box_price", "lowest_landed_price", "currency", "offers", "we_hold_buy_box")
        .order_by("observed_at", "id")
    )


def kill_switch_last_change() -> AuditEvent | None:
    """Who last turned the kill switch on or off, when, and why (from the audit log)."""
    return (
        AuditEvent.objects.filter(action__in=("repricing.kill_switch_on", "repricing.kill_switch_off"))
        .order_by("-created_at", "-id")
        .first()
    )
