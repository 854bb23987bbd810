"""Staff admin for tenants and the cross-tenant records. Tenant-owned rows are read through the audited
platform connection (tenants.platform); they are read-only here: changes go through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Membership
from tenants.middleware import client_ip
from tenants.models import AuditEvent, JobRun, PlatformAccess, Tenant
from tenants.platform import platform_queryset


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "require_mfa", "created_at")
    list_filter = ("is_active", "require_mfa")
    search_fields = ("name", "slug", "public_id")
    readonly_fields = ("public_id", "created_at", "updated_at")
    inlines = [MembershipInline]


class PlatformReadOnlyAdmin(admin.ModelAdmin):
    """Cross-tenant, read-only, every read recorded in the platform access log."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The admin asks for the queryset several times a page; one access record per page is enough.
        logged: set[str] = request.__dict__.setdefault("_platform_access_logged", set())
        reason = f"admin:{self.model._meta.label_lower}"
        if reason in logged:
            return self.model.all_tenants.using("platform").select_related("tenant")
        logged.add(reason)
        return platform_queryset(
            self.model,
            actor=request.user if request.user.is_authenticated else None,
            reason=reason,
            detail=request.get_full_path()[:500],
            ip_address=client_ip(request),
        ).select_related("tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(PlatformReadOnlyAdmin):
    list_display = (
        "created_at",
        "tenant",
        "actor_label",
        "action",
        "target_type",
        "target_label",
        "ip_address",
    )
    list_filter = ("action",)
    search_fields = ("actor_label", "action", "target_label")
    date_hierarchy = "created_at"


@admin.register(JobRun)
class JobRunAdmin(PlatformReadOnlyAdmin):
    list_display = (
        "started_at",
        "tenant",
        "kind",
        "outcome",
        "progress_done",
        "progress_total",
        "finished_at",
    )
    list_filter = ("outcome", "kind")


@admin.register(PlatformAccess)
class PlatformAccessAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "reason", "detail", "ip_address")
    search_fields = ("actor_label", "reason")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PlatformAccess]:
        return PlatformAccess.objects.using("platform")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
