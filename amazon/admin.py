"""Staff admin for seller connections: status only, never a secret (not even the ciphertext), read-only
through the audited platform connection."""

from __future__ import annotations

from django.contrib import admin

from amazon.models import AdsProfile, SellerConnection
from tenants.admin import PlatformReadOnlyAdmin


@admin.register(SellerConnection)
class SellerConnectionAdmin(PlatformReadOnlyAdmin):
    list_display = ("__str__", "tenant", "region", "selling_partner_id", "status", "auth_kind", "created_at")
    list_filter = ("status", "region", "auth_kind")
    search_fields = ("selling_partner_id", "name", "public_id")
    # Explicit, so a secret column can never appear by default.
    fields = (
        "public_id",
        "tenant",
        "name",
        "region",
        "selling_partner_id",
        "marketplaces",
        "status",
        "status_detail",
        "auth_kind",
        "disconnected_at",
        "purge_after",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


@admin.register(AdsProfile)
class AdsProfileAdmin(PlatformReadOnlyAdmin):
    list_display = ("profile_id", "tenant", "connection", "country_code", "name", "is_enabled")
    list_filter = ("country_code", "is_enabled")
    fields = (
        "public_id",
        "tenant",
        "connection",
        "profile_id",
        "marketplace_id",
        "country_code",
        "currency_code",
        "name",
        "is_enabled",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
