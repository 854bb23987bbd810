"""Tenants, the base for everything a tenant owns, and the records every tenant shares the shape of:
the audit log and automation runs (JobRun)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models

from tenants.context import require_tenant


class Tenant(models.Model):
    """A seller's company. Platform-wide table (no RLS): it is what RLS keys on."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    require_mfa = models.BooleanField(
        default=False, help_text="Every member must use two-factor authentication to see this company."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantScopedManager(models.Manager):
    """Default manager of tenant-owned models: filters by the active tenant, refuses without one."""

    def get_queryset(self) -> models.QuerySet:
        tenant = require_tenant()
        return super().get_queryset().filter(tenant_id=tenant.pk)


class TenantOwned(models.Model):
    """Base of every tenant-owned model.

    - `tenant` is indexed and first in every index and unique constraint the subclass declares.
    - `public_id` (UUID) is what URLs and the API show; the integer key never leaves the database.
    - `objects` fails closed without a tenant. `all_tenants` is the greppable escape hatch, allowed only
      in the places tests/test_escape_hatch.py lists.
    - Every table of a subclass gets row-level security (tenants/rls.py) after each migrate.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=True)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[TenantScopedManager] = TenantScopedManager()
    all_tenants: ClassVar[models.Manager] = models.Manager()

    class Meta:
        abstract = True
        base_manager_name = "all_tenants"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            self.tenant = require_tenant()
        super().save(*args, **kwargs)


class AuditEvent(TenantOwned):
    """Append-only record of a change made through a service. UPDATE and DELETE are refused by a
    database trigger (tenants/rls.py), not only by the code."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=255, help_text="Who acted, kept if the user is deleted.")
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "public_id"], name="audit_public_id")]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_created")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"


class JobRun(TenantOwned):
    """One run of a job for a tenant (a sync, a repricing cycle, an export...). Sellers see these."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        PARTIAL = "partial", "Partly succeeded"
        SKIPPED = "skipped", "Skipped"

    kind = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    triggered_by = models.CharField(max_length=100, default="schedule")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "public_id"], name="jobrun_public_id")]
        indexes = [models.Index(fields=["tenant", "kind", "-started_at"], name="jobrun_tenant_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.outcome}"


class PlatformAccess(models.Model):
    """Audit of every use of the cross-tenant (BYPASSRLS) connection: who, why, when, what."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=255)
    reason = models.CharField(max_length=200)
    detail = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "platform access log"

    def __str__(self) -> str:
        return f"{self.actor_label}: {self.reason}"
