"""Repricing: the seller's rules, each SKU's pricing settings and state, and the record of every
decision and every price sent to Amazon ("why this price").

The decision itself is made by the pure engine in `repricing/engine/`; these tables hold what it
needs (rules as the engine's JSON, bounds, per-SKU history) and what it decided. Writes go through
`repricing/services.py`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from amazon.models import Listing
from tenants.models import JobRun, TenantOwned


def money_field(**options: Any) -> models.DecimalField:
    """An amount in the listing's currency (the same precision as amazon.Listing.price)."""
    return models.DecimalField(max_digits=12, decimal_places=2, **options)


class RepricingRule(TenantOwned):
    """A named repricing rule: a strategy with its filters, adjustments, bounds policy and guards.

    `config` is the engine's rule (`repricing.engine.Rule.to_dict()`), validated on every write.
    `version` grows on each change so a decision records exactly which rule produced it."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    config = models.JSONField()
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="repricingrule_public_id"),
            models.UniqueConstraint(fields=["tenant", "name"], name="repricingrule_name"),
        ]

    def __str__(self) -> str:
        return self.name


class RepricingSettings(TenantOwned):
    """The company's repricing switches (one row per tenant).

    New companies start in dry run: decisions are made and shown, nothing is sent to Amazon until
    the seller turns it off. The kill switch stops every submission at once, whatever the rules say."""

    kill_switch = models.BooleanField(default=False, help_text="Stop sending any price to Amazon.")
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    kill_switch_changed_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(
        default=True, help_text="Decide and show, but send nothing to Amazon (whole company)."
    )
    default_rule = models.ForeignKey(
        RepricingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The seller's day for daily limits and schedules (an IANA name).
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="repricingsettings_one_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "public_id"], name="repricingsettings_public_id"),
        ]
        verbose_name_plural = "repricing settings"

    def __str__(self) -> str:
        return f"repricing settings of tenant {self.tenant_id}"


class TagRule(TenantOwned):
    """Assigns a rule to every SKU carrying a tag. A SKU's own rule wins over its tags; among tags the
    lowest `priority` wins; the company default applies to the rest."""

    tag = models.CharField(max_length=100)
    rule = models.ForeignKey(RepricingRule, on_delete=models.CASCADE, related_name="tag_assignments")
    priority = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["priority", "tag", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="tagrule_public_id"),
            models.UniqueConstraint(fields=["tenant", "tag"], name="tagrule_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.tag} → {self.rule_id}"


class SkuPricing(TenantOwned):
    """One listing's repricing settings (rule, tags, cost, bounds) and the state the engine's guards
    need between decisions (last change, the day's opening price, recent undercuts, pause)."""

    class BoundsSource(models.TextChoices):
        ENTERED = "entered", "Entered"
        MARGIN = "margin", "From cost and a target margin"
        ROI = "roi", "From cost and a target ROI"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True, help_text="Reprice this SKU.")
    rule = models.ForeignKey(
        RepricingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="sku_assignments"
    )
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)

    cost = money_field(null=True, blank=True, help_text="Unit cost (landed at Amazon).")
    referral_fee_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Amazon's referral fee, percent."
    )
    fba_fee = money_field(null=True, blank=True, help_text="FBA fulfilment fee per unit.")
    bounds_source = models.CharField(
        max_length=10, choices=BoundsSource.choices, default=BoundsSource.ENTERED
    )
    target_percent = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True, help_text="Target margin or ROI, percent."
    )
    min_price = money_field(null=True, blank=True)
    max_price = money_field(null=True, blank=True)

    # Guard state, written by the repricing service only.
    last_changed_at = models.DateTimeField(null=True, blank=True)
    day_open_date = models.DateField(null=True, blank=True)
    day_open_price = money_field(null=True, blank=True)
    undercut_times = ArrayField(models.DateTimeField(), default=list, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["listing_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="skupricing_public_id"),
            models.UniqueConstraint(fields=["tenant", "listing"], name="skupricing_listing"),
            models.CheckConstraint(
                condition=models.Q(min_price__isnull=True)
                | models.Q(max_price__isnull=True)
                | models.Q(min_price__lte=models.F("max_price")),
                name="skupricing_min_not_above_max",
            ),
        ]

    def __str__(self) -> str:
        return f"pricing of listing {self.listing_id}"


class PriceDecision(TenantOwned):
    """One decision of the engine for one SKU, with everything needed to explain it: the input
    snapshot (our offer, the competitors, the Buy Box), the rule as it was, the trace, the outcome
    and timings. Append-only."""

    class Trigger(models.TextChoices):
        NOTIFICATION = "notification", "Competitor price change"
        SCHEDULE = "schedule", "Scheduled check"
        MANUAL = "manual", "Reprice now"

    class Action(models.TextChoices):
        CHANGE = "change", "Change price"
        HOLD = "hold", "Hold price"
        PAUSE = "pause", "Pause"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(
        RepricingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_name = models.CharField(max_length=200, blank=True)
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    rule_config = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)

    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=60)
    currency = models.CharField(max_length=3, blank=True)
    old_price = money_field(null=True, blank=True)
    target_price = money_field(null=True, blank=True)
    new_price = money_field(null=True, blank=True)
    submit = models.BooleanField(default=False, help_text="Whether the decision was to be sent to Amazon.")
    dry_run = models.BooleanField(default=False)
    kill_switch = models.BooleanField(default=False)
    alerts = ArrayField(models.CharField(max_length=40), default=list, blank=True)

    #: What the engine saw: listing state, competitors' offers, Buy Box, history (JSON, Decimals as text).
    inputs = models.JSONField(default=dict)
    #: The engine's reason trace: [{"code", "message", "data"}...].
    trace = models.JSONField(default=list)

    observed_at = models.DateTimeField(help_text="When the offers the decision used were observed.")
    decided_at = models.DateTimeField()
    decide_ms = models.FloatField(default=0.0, help_text="Time inside the engine, milliseconds.")
    #: For notification-triggered decisions: when the notification reached our intake.
    notification_received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="pricedecision_public_id")
        ]
        indexes = [
            models.Index(fields=["tenant", "listing", "-decided_at"], name="pricedecision_listing_time"),
            models.Index(fields=["tenant", "-decided_at"], name="pricedecision_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.old_price} → {self.new_price} ({self.reason})"


class PriceSubmission(TenantOwned):
    """A price sent (or to be sent) to Amazon for one decision. At most one per decision (a unique
    constraint, so a retried or duplicated task cannot send it twice), followed until Amazon applied
    or rejected it."""

    class Channel(models.TextChoices):
        LISTINGS_PATCH = "listings_patch", "Listings API (single change)"
        LISTINGS_FEED = "listings_feed", "JSON listings feed (bulk)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        ACCEPTED = "accepted", "Accepted by Amazon"
        APPLIED = "applied", "Live on Amazon"
        REJECTED = "rejected", "Rejected by Amazon"
        FAILED = "failed", "Failed to send"
        SUPERSEDED = "superseded", "Replaced by a newer price"
        CANCELLED = "cancelled", "Cancelled (kill switch)"

    decision = models.ForeignKey(PriceDecision, on_delete=models.CASCADE, related_name="submissions")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    price = money_field()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    #: Amazon's submissionId (Listings API) or feedId (Feeds API).
    amazon_reference = models.CharField(max_length=100, blank=True)
    #: Amazon's issues for this SKU (errors and warnings), verbatim.
    issues = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="pricesubmission_public_id"),
            models.UniqueConstraint(fields=["tenant", "decision"], name="pricesubmission_once_per_decision"),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "queued_at"], name="pricesubmission_status"),
            models.Index(fields=["tenant", "listing", "-queued_at"], name="pricesubmission_listing"),
        ]

    def __str__(self) -> str:
        return f"{self.price} {self.currency} via {self.channel} ({self.status})"


# --- Tools: SKU pricing imported from a CSV file, and backtests of a rule (repricing/bounds_import.py,
# repricing/backtest.py) ---------------------------------------------------------------------------------


class BoundsImport(TenantOwned):
    """A CSV file of SKU costs, fees, bounds, rules and tags: checked row by row, previewed, and applied
    all at once (or not at all) when the seller confirms. The file is kept until it is applied."""

    class Status(models.TextChoices):
        VALIDATING = "validating", "Checking"
        INVALID = "invalid", "Has errors"
        READY = "ready", "Ready to apply"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.VALIDATING)
    file_name = models.CharField(max_length=255, blank=True)
    file_size = models.PositiveIntegerField(default=0)
    delimiter = models.CharField(max_length=1, default=",")
    columns = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    #: The uploaded file (UTF-8 text), kept until applied; emptied once applied or found invalid.
    csv_text = models.TextField(blank=True)
    #: Every problem found, [[row, column, message], ...] (row 1 is the header), up to a cap.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    #: What applying would change (counts and a sample), from the last check.
    preview = models.JSONField(default=dict, blank=True)
    #: What applying did change (counts).
    result = models.JSONField(default=dict, blank=True)
    failure = models.TextField(blank=True)
    job_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "public_id"], name="boundsimport_public_id")]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="boundsimport_time")]

    def __str__(self) -> str:
        return f"import {self.file_name or self.public_id} ({self.status})"


class Backtest(TenantOwned):
    """A rule (saved, or an edited configuration not yet saved) replayed over the stored offer history
    of some SKUs for a period: what our price would have been, next to what it was."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    rule = models.ForeignKey(
        RepricingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_name = models.CharField(max_length=200, blank=True)
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    #: The engine's rule as replayed (canonical `Rule.to_dict()`).
    rule_config = models.JSONField()
    #: Which SKUs: {"kind": "all"} | {"kind": "tag", "tag": ...} | {"kind": "skus", "skus": [...]}.
    selection = models.JSONField(default=dict)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    #: Across SKUs: counts, shares, average price difference, speed.
    summary = models.JSONField(default=dict, blank=True)
    #: Per SKU: counts and the price series (capped in SKUs and points).
    results = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    job_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "public_id"], name="backtest_public_id")]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="backtest_time")]

    def __str__(self) -> str:
        return f"backtest {self.name or self.public_id} ({self.status})"
