"""Staff admin for repricing: read-only through the audited platform connection (changes go through
the seller's dashboard or API, where they are validated and audited)."""

from __future__ import annotations

from django.contrib import admin

from repricing.models import (
    Backtest,
    BoundsImport,
    PriceDecision,
    PriceSubmission,
    RepricingRule,
    RepricingSettings,
)
from tenants.admin import PlatformReadOnlyAdmin


@admin.register(RepricingSettings)
class RepricingSettingsAdmin(PlatformReadOnlyAdmin):
    list_display = ("tenant", "kill_switch", "dry_run", "default_rule", "timezone", "updated_at")
    list_filter = ("kill_switch", "dry_run")
    fields = ("public_id", "tenant", "kill_switch", "kill_switch_reason", "kill_switch_changed_at", "dry_run")
    readonly_fields = fields


@admin.register(RepricingRule)
class RepricingRuleAdmin(PlatformReadOnlyAdmin):
    list_display = ("name", "tenant", "is_active", "version", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "public_id")
    fields = ("public_id", "tenant", "name", "description", "config", "is_active", "version", "updated_at")
    readonly_fields = fields


@admin.register(PriceDecision)
class PriceDecisionAdmin(PlatformReadOnlyAdmin):
    list_display = ("decided_at", "tenant", "listing", "action", "reason", "old_price", "new_price", "submit")
    list_filter = ("action", "trigger", "dry_run", "kill_switch")
    fields = (
        "public_id",
        "tenant",
        "listing",
        "rule_name",
        "rule_version",
        "trigger",
        "action",
        "reason",
        "old_price",
        "target_price",
        "new_price",
        "submit",
        "dry_run",
        "kill_switch",
        "alerts",
        "trace",
        "observed_at",
        "decided_at",
        "decide_ms",
    )
    readonly_fields = fields


@admin.register(PriceSubmission)
class PriceSubmissionAdmin(PlatformReadOnlyAdmin):
    list_display = ("queued_at", "tenant", "listing", "price", "currency", "channel", "status")
    list_filter = ("status", "channel")
    fields = (
        "public_id",
        "tenant",
        "decision",
        "listing",
        "channel",
        "price",
        "currency",
        "status",
        "amazon_reference",
        "issues",
        "error",
        "attempts",
        "queued_at",
        "sent_at",
        "accepted_at",
        "finished_at",
    )
    readonly_fields = fields


@admin.register(BoundsImport)
class BoundsImportAdmin(PlatformReadOnlyAdmin):
    # The file itself (csv_text: costs) is not shown; its counts and errors are.
    list_display = ("created_at", "tenant", "file_name", "status", "row_count", "error_count", "applied_at")
    list_filter = ("status",)
    fields = (
        "public_id",
        "tenant",
        "status",
        "file_name",
        "file_size",
        "row_count",
        "columns",
        "error_count",
        "preview",
        "result",
        "failure",
        "created_at",
        "applied_at",
    )
    readonly_fields = fields


@admin.register(Backtest)
class BacktestAdmin(PlatformReadOnlyAdmin):
    list_display = (
        "created_at",
        "tenant",
        "name",
        "status",
        "progress_done",
        "progress_total",
        "finished_at",
    )
    list_filter = ("status",)
    fields = (
        "public_id",
        "tenant",
        "name",
        "status",
        "rule_name",
        "rule_version",
        "selection",
        "period_start",
        "period_end",
        "progress_done",
        "progress_total",
        "summary",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
